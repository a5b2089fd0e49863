"""The 21 fine-tuning tasks of the Bort release (GLUE, SuperGLUE, RACE), one declarative `Task` each.

    from bort.tasks import get_task, TASKS
    task = get_task('RTE')                  # names are the release's keys; leaderboard names are aliases
    examples = task.read(data_dir, 'dev')   # data_dir None -> default_data_dir()

`TASKS` maps each release key (CoLA, SST, MRPC, QQP, STS-B, MNLI, QNLI, RTE, WNLI, AX, BoolQ, CB, COPA,
MultiRC, ReCoRD, SuperGLUERTE, WiC, WSC, AXb, AXg, RACE-H, RACE-M) to its `Task`. `bort.tasks.base`
documents the Task/Example API the training loop uses; docs/tasks.md the data layout and formats.
This package is pure Python + numpy: it never imports MXNet.
"""
from ..errors import ConfigError
from .base import HEADS, Example, Instances, Task
from .glue import GLUE_TASKS
from .race import RACE_TASKS
from .readers import default_data_dir
from .superglue import SUPERGLUE_TASKS

TASKS = {task.name: task for task in GLUE_TASKS + SUPERGLUE_TASKS + RACE_TASKS}

_BY_LOWER_NAME = {}
for _task in TASKS.values():
    for _name in (_task.name,) + _task.aliases:
        assert _name.lower() not in _BY_LOWER_NAME, f"task name {_name} declared twice"
        _BY_LOWER_NAME[_name.lower()] = _task
del _task, _name


def get_task(name):
    """The task called `name` (a release key or an alias, any case); `ConfigError` listing valid names."""
    task = _BY_LOWER_NAME.get(str(name).lower())
    if task is None:
        aliases = sorted(a for t in TASKS.values() for a in t.aliases)
        raise ConfigError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)} (aliases: {', '.join(aliases)})")
    return task


__all__ = ["TASKS", "get_task", "Task", "Example", "Instances", "HEADS", "default_data_dir"]
