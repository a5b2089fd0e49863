"""Learning-rate schedule: linear warm-up, then linear decay to a floor."""
from ..errors import ConfigError


class WarmupLinearSchedule:
    """lr(step) for step = 1, 2, ... (the update about to be applied).

    Warm-up: `base_lr * step / warmup_steps`. Then linear decay from `base_lr` at the end of warm-up to 0 at
    `total_steps`, never below `min_lr` (the release's fine-tuning floor, 1e-7). Unlike the release's
    pretraining schedule, decay starts where warm-up ends, so the rate does not jump there.
    """

    def __init__(self, base_lr, total_steps, warmup_ratio=0.1, warmup_steps=None, min_lr=1e-7):
        if total_steps <= 0:
            raise ConfigError(f"the schedule needs at least one step, got total_steps={total_steps}")
        if not 0 <= warmup_ratio <= 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1], got {warmup_ratio}")
        self.base_lr = base_lr
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps if warmup_steps is not None else total_steps * warmup_ratio)
        self.min_lr = min_lr

    def __call__(self, step):
        if self.warmup_steps and step <= self.warmup_steps:
            return self.base_lr * step / self.warmup_steps
        remaining = self.total_steps - self.warmup_steps
        progress = (step - self.warmup_steps) / remaining if remaining > 0 else 1.0
        return max(self.min_lr, self.base_lr * (1.0 - progress))
