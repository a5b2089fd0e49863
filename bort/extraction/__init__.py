"""Optimal subarchitecture extraction (de Wynter 2020, arXiv 2010.08512; Bort, arXiv 2010.10499): find the
architecture of a search space with the best W-coefficient of parameters, inference cost and error relative to a
teacher, training only as many candidates as the (1 - ε) guarantee needs. docs/extraction.md has the details.

    from bort.extraction import extract, LoopSettings, ErrorSettings
    result, report = extract("teacher.params", '{"num_heads": 4}', train_files, eval_files, "runs/ose",
                             space="grid.json", loop_settings=LoopSettings(epsilon=0.1, interval_size=4),
                             error_settings=ErrorSettings(tuple(train_files), tuple(eval_files), steps=100))
"""
from .api import extract, tabulate_space
from .coefficient import WCoefficient
from .error import ErrorSettings
from .loop import LoopSettings

__all__ = ["extract", "tabulate_space", "WCoefficient", "ErrorSettings", "LoopSettings"]
