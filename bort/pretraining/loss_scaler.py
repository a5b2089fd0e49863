"""Dynamic loss scaling for float16 training.

The loss is multiplied by `scale` before backward so small float16 gradients do not flush to zero; the
gradients are divided by it again before clipping and the update. When a gradient overflows (inf/nan) the
update is skipped and the scale halves; after `window` clean steps it doubles. The release started at
1.5**15 where its comment says 2**15; this starts at 2**15.
"""


class DynamicLossScaler:
    def __init__(self, init_scale=2.0 ** 15, factor=2.0, window=2000, min_scale=1.0):
        self.scale = float(init_scale)
        self.factor = float(factor)
        self.window = int(window)
        self.min_scale = float(min_scale)
        self.clean_steps = 0
        self.skipped_steps = 0

    def update(self, overflow):
        """Record one step; returns True when the step's update must be skipped."""
        if overflow:
            self.scale = max(self.min_scale, self.scale / self.factor)
            self.clean_steps = 0
            self.skipped_steps += 1
            return True
        self.clean_steps += 1
        if self.clean_steps >= self.window:
            self.scale *= self.factor
            self.clean_steps = 0
        return False

    def state_dict(self):
        return dict(scale=self.scale, clean_steps=self.clean_steps, skipped_steps=self.skipped_steps)

    def load_state_dict(self, state):
        self.scale = float(state["scale"])
        self.clean_steps = int(state["clean_steps"])
        self.skipped_steps = int(state.get("skipped_steps", 0))


class NoLossScaler(DynamicLossScaler):
    """float32: scale 1, never changes; a non-finite gradient still skips the update."""

    def __init__(self):
        super().__init__(init_scale=1.0, window=1)

    def update(self, overflow):
        if overflow:
            self.skipped_steps += 1
        return bool(overflow)
