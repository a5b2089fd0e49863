"""Training checkpoints that are always loadable: each is a directory written under a temporary name and
renamed into place only when complete, holding the model parameters, the optimizer state and a JSON file of
everything else needed to resume (step, data position, loss scale, seeds).

Layout: <dir>/checkpoint-<step:08d>/{model.params, model.json, trainer.states, state.json}
"""
import glob
import json
import os
import re
import shutil

from ..checkpoint import load_parameters, make_record, write_record
from ..errors import CheckpointError
from ..io_utils import atomic_directory
from ..params import save_parameters

_NAME = re.compile(r"^checkpoint-(\d{8})$")
MODEL_FILE, TRAINER_FILE, STATE_FILE = "model.params", "trainer.states", "state.json"


def save_checkpoint(directory, step, model, trainer=None, state=None, keep=3, record=None):
    """Write checkpoint `step` atomically and delete all but the newest `keep` complete checkpoints.

    The model's record (`model.json`, see `bort.checkpoint`) goes with it: `record`, else the architecture,
    dtype and kind `make_record` reads off the model, so the weights can be rebuilt from the directory alone."""
    target = os.path.join(directory, f"checkpoint-{step:08d}")
    with atomic_directory(target, force=True) as tmp:
        save_parameters(model, os.path.join(tmp, MODEL_FILE))
        write_record(os.path.join(tmp, MODEL_FILE), record or make_record(model))
        if trainer is not None:
            trainer.save_states(os.path.join(tmp, TRAINER_FILE))
        with open(os.path.join(tmp, STATE_FILE), "w", encoding="utf-8") as handle:
            json.dump(dict(state or {}, step=step), handle, indent=1, sort_keys=True)
    if keep:
        for old in list_checkpoints(directory)[:-keep]:
            shutil.rmtree(old[1], ignore_errors=True)
    return target


def remove_stale_temporaries(directory):
    """Delete the `.checkpoint-N.*.tmp` / `.old` folders a run killed while writing a checkpoint left behind.

    Call it only while holding the directory's output lock (`bort.locking`): then no live writer owns them."""
    removed = []
    for path in glob.glob(os.path.join(directory, ".checkpoint-*.tmp")) + glob.glob(
            os.path.join(directory, ".checkpoint-*.old")):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def list_checkpoints(directory):
    """Complete checkpoints as (step, path), oldest first."""
    found = []
    for path in glob.glob(os.path.join(directory, "checkpoint-*")):
        match = _NAME.match(os.path.basename(path))
        if match and os.path.exists(os.path.join(path, STATE_FILE)) and os.path.exists(
                os.path.join(path, MODEL_FILE)):
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(directory):
    """Path of the newest complete checkpoint in `directory`, or None."""
    found = list_checkpoints(directory) if directory and os.path.isdir(directory) else []
    return found[-1][1] if found else None


def load_checkpoint(path, model, trainer=None, ctx=None):
    """Restore model (and optimizer) from a checkpoint directory; returns its state dict."""
    state_file = os.path.join(path, STATE_FILE)
    if not os.path.exists(state_file):
        raise CheckpointError(f"{path} is not a complete checkpoint (no {STATE_FILE})")
    with open(state_file, encoding="utf-8") as handle:
        try:
            state = json.load(handle)
        except json.JSONDecodeError as err:
            raise CheckpointError(f"{state_file} is corrupt: {err}") from None
    load_parameters(model, os.path.join(path, MODEL_FILE), ctx=ctx)
    if trainer is not None:
        trainer_file = os.path.join(path, TRAINER_FILE)
        if not os.path.exists(trainer_file):
            raise CheckpointError(f"{path} has no optimizer state ({TRAINER_FILE}); cannot resume exactly")
        try:
            trainer.load_states(trainer_file)
        except Exception as err:  # a truncated file fails inside pickle or MXNet with no file name
            raise CheckpointError(f"{trainer_file} is unreadable (truncated or corrupt: {type(err).__name__}: "
                                  f"{err}); delete the checkpoint {path} to resume from the one before") from None
    return state
