"""Training curves from the JSON-lines logs that every run writes, drawn to PNG (and optionally for TensorBoard).

Runs and their logs:
- fine-tuning: `<output_dir>/metrics.jsonl` (`train` events: loss, lr at a step; `dev` events: metrics per split)
- pretraining: `<ckpt_dir>/train_log.jsonl` (loss, mlm_loss, lr at a step; eval_* at eval steps)
- Agora: `<output_dir>/log.jsonl` (`round` events: best dev score so far against the updates spent)
- extraction: `<out_dir>/log.jsonl` (`candidate` events: each candidate's error and objective, in order)

A curve is a named list of (x, y) points; curves fall into three panels: losses, learning rate and dev
metrics. Several runs are drawn on the same panels, one colour per run.
"""
import json
import math
import os

from .errors import InputError

LOG_NAMES = ("metrics.jsonl", "train_log.jsonl", "log.jsonl")
PANELS = ("loss", "learning rate", "dev metric")
# Numbers in the logs that are not curves (counters, sizes, times).
NOT_CURVES = {"step", "epoch", "time", "world_size", "round", "replay_pass", "trainings", "budget_spent",
              "train_size", "train_size_before", "theta_before", "theta_left", "mistakes", "points_generated",
              "evaluations", "tokens", "seconds", "train_seconds", "total_steps", "train_units",
              "resumed_at_step"}


def find_log(run):
    """The JSON-lines log of a run directory (or `run` itself when it is a log file)."""
    if os.path.isfile(run):
        return run
    if not os.path.isdir(run):
        raise InputError(f"{run}: no such run directory or log file")
    for name in LOG_NAMES:
        path = os.path.join(run, name)
        if os.path.isfile(path):
            return path
    raise InputError(f"{run} holds none of {', '.join(LOG_NAMES)}: is it the output directory of a fine-tuning, "
                     "pretraining, Agora or extraction run?")


def read_records(path):
    """The log's records. A last line cut short (a run killed while writing) is dropped; a broken line
    elsewhere is an error naming it."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if number >= len(lines) - 1:
                break
            raise InputError(f"{path}:{number}: not a JSON record ({err.msg})") from None
        if isinstance(record, dict):
            records.append(record)
    return records


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def curves_from_records(records):
    """{curve name: [(x, y), ...]}: x is the update step where the log has one, else the event's position
    (Agora: updates spent; extraction: candidates evaluated)."""
    curves = {}

    def add(name, x, y):
        if _number(x) and _number(y):
            curves.setdefault(name, []).append((x, y))

    candidates = 0
    for record in records:
        event = record.get("event")
        if event == "dev":  # fine-tuning: one record per dev split
            for metric, value in (record.get("metrics") or {}).items():
                add(f"dev {record.get('split', '')} {metric}".replace("  ", " "), record.get("step"), value)
        elif event == "round":  # Agora
            x = record.get("budget_spent", record.get("round"))
            add("dev best_so_far_score", x, record.get("best_so_far_score"))
            add("dev best_of_round_score", x, record.get("best_of_round_score"))
        elif event == "candidate":  # extraction
            candidates += 1
            for key in ("e_star", "e_ratio", "w"):
                add(f"candidate {key}", candidates, record.get(key))
        elif "step" in record and event in (None, "train"):
            for key, value in record.items():
                if key not in NOT_CURVES:
                    add(key, record["step"], value)
    return curves


def panel_of(name):
    """Which panel a curve belongs on, or None for numbers that are not drawn (gradient norms, speeds)."""
    if "loss" in name or name.endswith("teacher_ce"):
        return "loss"
    if name in ("lr", "learning_rate"):
        return "learning rate"
    if name.startswith(("dev ", "eval_", "candidate ")) or "score" in name or "accuracy" in name:
        return "dev metric"
    return None


def load_runs(runs):
    """[(label, curves)] for run directories or log files; the label is the run directory's name."""
    loaded = []
    for run in runs:
        path = find_log(run)
        curves = curves_from_records(read_records(path))
        if not curves:
            raise InputError(f"{path} holds no curves yet (no logged steps or dev results)")
        label = os.path.basename(os.path.normpath(run if os.path.isdir(run) else os.path.dirname(path) or "."))
        loaded.append((label, curves))
    return loaded


def draw(loaded, output, title=None):
    """Draw the runs' curves on the panels they have and write a PNG (atomically). Returns the panels drawn."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    from .io_utils import atomic_path

    panels = [panel for panel in PANELS
              if any(panel_of(name) == panel for _, curves in loaded for name in curves)]
    if not panels:
        raise InputError("nothing to draw: the logs have no loss, learning rate or dev metric")
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, 3.2 * len(panels)), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ("-", "--", ":", "-.")
    for axis, panel in zip(axes[:, 0], panels):
        for run_index, (label, curves) in enumerate(loaded):
            names = [name for name in sorted(curves) if panel_of(name) == panel]
            for name_index, name in enumerate(names):
                xs, ys = zip(*curves[name])
                axis.plot(xs, ys, styles[name_index % len(styles)], color=colours[run_index % len(colours)],
                          label=f"{label}: {name}" if len(loaded) > 1 else name, marker="." if len(xs) < 30 else None)
        axis.set_ylabel(panel)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(output) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return panels


def tensorboard_writer_class():
    """A SummaryWriter class from tensorboardX or torch, or None when neither is installed."""
    for module, attribute in (("tensorboardX", "SummaryWriter"), ("torch.utils.tensorboard", "SummaryWriter")):
        try:
            imported = __import__(module, fromlist=[attribute])
        except ImportError:
            continue
        return getattr(imported, attribute)
    return None


def write_tensorboard(loaded, log_dir):
    """Write every curve as TensorBoard scalars under log_dir/<run label>/. Returns the number of points."""
    writer_class = tensorboard_writer_class()
    if writer_class is None:
        raise InputError("--tensorboard needs tensorboardX (pip install tensorboardX) or torch's tensorboard "
                         "support; neither is installed")
    points = 0
    for label, curves in loaded:
        writer = writer_class(os.path.join(log_dir, label))
        try:
            for name, values in curves.items():
                for x, y in values:
                    writer.add_scalar(name.replace(" ", "/"), y, int(x))
                    points += 1
        finally:
            writer.close()
    return points
