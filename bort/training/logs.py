"""Metrics logs as JSON lines, written only by the process that owns the output (rank 0)."""
import json
import os
import time


class JsonlLogger:
    def __init__(self, path, enabled=True):
        self.path = path
        self.enabled = enabled and path is not None
        if self.enabled:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def log(self, **record):
        if not self.enabled:
            return
        record.setdefault("time", round(time.time(), 3))
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def truncate_log(log_path, lines, state_path):
    """Cut a resumable run's log back to the `lines` records its saved state counts: records written after the
    last saved state belong to work that will be redone. A log shorter than the state says is an error."""
    from ..errors import CheckpointError
    from ..io_utils import atomic_open

    if not os.path.exists(log_path):
        if lines:
            raise CheckpointError(f"{log_path} is missing but {state_path} counts {lines} records")
        return
    with open(log_path, encoding="utf-8") as handle:
        kept = handle.readlines()
    if len(kept) < lines:
        raise CheckpointError(f"{log_path} has {len(kept)} records, {state_path} expects {lines}")
    if len(kept) > lines:
        with atomic_open(log_path, "w", encoding="utf-8") as handle:
            handle.writelines(kept[:lines])
