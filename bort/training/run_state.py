"""The resumable state of a long search (Agora, extraction): one JSON file rewritten atomically, and read back
only by a run with the same fingerprint (the arguments that decide its results)."""
import json
import os

from ..errors import CheckpointError, ConfigError
from ..io_utils import atomic_open


def read_run_state(path, version, fingerprint, what, resume, resume_hint):
    """The state at `path`, or None when there is none yet.

    A state that exists is refused without `resume` (naming `resume_hint`, the flag that resumes), and when it
    is unreadable, of another `version`, or written with another `fingerprint` (naming the keys that differ)."""
    if not os.path.exists(path):
        return None
    if not resume:
        raise ConfigError(f"{os.path.dirname(path)} already holds {what} ({os.path.basename(path)}); "
                          f"{resume_hint}")
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: unreadable state of {what} ({err})") from None
    if not isinstance(state, dict) or state.get("version") != version:
        found = state.get("version") if isinstance(state, dict) else None
        raise CheckpointError(f"{path}: state version {found}, expected {version}")
    written = state.get("fingerprint") or {}
    if written != fingerprint:
        changed = sorted(k for k in set(fingerprint) | set(written) if written.get(k) != fingerprint.get(k))
        raise CheckpointError(f"{path} was written by a run with other {', '.join(changed)}; resume with the same "
                              "arguments or use a new output directory")
    return state


def write_run_state(path, state):
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=1, sort_keys=True)
