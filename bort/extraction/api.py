"""`extract(...)`: the whole extraction in one call (what `scripts/extract_subarchitecture.py` runs), and
`tabulate_space(...)`: p* and i* of a space without any training (where an architecture sits among the others)."""
import os
import shutil

from ..errors import ConfigError
from .error import ErrorSettings, ErrorSurrogate
from .loop import CANDIDATES_DIR, LOG_FILE, STATE_FILE, TIMINGS_FILE, ExtractionRun, LoopSettings, cheap_surrogates
from .space import load_space, paper_space, space_from_spec
from .teacher import load_teacher_spec

#: What an extraction writes; --force removes only these from an existing output directory.
OUTPUTS = (STATE_FILE, LOG_FILE, CANDIDATES_DIR, TIMINGS_FILE, "ranking.csv", "ranking.md", "plot.png",
           "summary.json", "surrogates.csv", "surrogates.md", "surrogates_ops.png", "surrogates_time.png")


def resolve_space(space, base_config):
    """None or 'paper': the paper's grid; a path: a JSON grid file; a dict or list: a grid given in code."""
    if space is None or space == "paper":
        return paper_space(base_config)
    if isinstance(space, (dict, list)):
        return space_from_spec(space, base_config)
    return load_space(space, base_config)


def prepare_output_dir(out_dir, resume=False, force=False, is_main=True):
    """Refuse a non-empty directory unless resuming; --force clears an earlier extraction's outputs only."""
    out_dir = os.path.abspath(out_dir)
    entries = [e for e in os.listdir(out_dir) if not e.startswith(".")] if os.path.isdir(out_dir) else []
    if not entries or resume:
        return out_dir
    if not force:
        raise ConfigError(f"output directory {out_dir} is not empty; pass --resume to continue the extraction in it or "
                          "--force to start over")
    foreign = sorted(set(entries) - set(OUTPUTS))
    if foreign:
        raise ConfigError(f"--force would delete {out_dir}, which holds files an extraction does not write "
                          f"({', '.join(foreign[:5])}); choose another --output_dir")
    if is_main:
        for entry in entries:
            path = os.path.join(out_dir, entry)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    return out_dir


def base_config_for(teacher_config, overrides=None):
    """The candidates' fixed settings: the teacher's (vocabulary, positions, epsilons), with `overrides`."""
    import dataclasses
    return dataclasses.replace(teacher_config, **(overrides or {}))


def extract(teacher_params, teacher_config, train_files, eval_files, out_dir, space=None,
            loop_settings=LoopSettings(), error_settings=None, horovod=False, resume=False, force=False,
            progress=True, base_overrides=None):
    """Run (or resume) the extraction; returns (ExtractionResult, report paths).

    teacher_params: a Bort-format .params file with its MLM decoder; teacher_config: its BortConfig as a
    predefined name, a JSON string/file or a dict (shapes are read from the file). error_settings: an
    ErrorSettings (the files and the step budget n come from train_files/eval_files when it is None).
    """
    from .. import distributed
    from .report import write_report

    dist = distributed.init_distributed(horovod)
    teacher = load_teacher_spec(teacher_params, teacher_config)
    space = resolve_space(space, base_config_for(teacher.config, base_overrides))
    settings = error_settings or ErrorSettings(tuple(train_files), tuple(eval_files))
    out_dir = prepare_output_dir(out_dir, resume, force, dist.is_main)
    dist.barrier()
    errors = ErrorSurrogate(teacher, settings, os.path.join(out_dir, CANDIDATES_DIR))
    extra = {"error_settings": {k: (list(v) if isinstance(v, tuple) else v)
                                for k, v in settings.__dict__.items() if k != "keep_models"}}
    run = ExtractionRun(space, teacher, errors, loop_settings, out_dir, dist, fingerprint_extra=extra,
                        progress=progress)
    result = run.run(resume=resume)
    paths = {}
    if dist.is_main:
        paths = write_report(result, loop_settings, out_dir)
    return result, paths


def tabulate_space(space, teacher_spec, settings, timed_keys=(), timings_path=None, base_overrides=None):
    """Rows of p*, i* (and the measured time for `timed_keys`, or every candidate when timed_keys == 'all') for
    every candidate of `space`, plus T's row; no training."""
    from .timing import TimingCache

    space = resolve_space(space, base_config_for(teacher_spec.config, base_overrides))
    cache = TimingCache(timings_path)
    timed = {c.key for c in space.candidates} if timed_keys == "all" else set(timed_keys)
    unknown = sorted(timed - {c.key for c in space.candidates})
    if unknown:
        raise ConfigError(f"--time_candidates names candidates not in the space: {', '.join(unknown)}")
    reference = cheap_surrogates(teacher_spec.config, settings, cache if timed else None)
    rows = []
    for candidate in space.candidates:
        row = dict(key=candidate.key, **candidate.fields,
                   **cheap_surrogates(candidate.config, settings, cache if candidate.key in timed else None))
        row["p_ratio"] = row[f"params_{settings.param_kind}"] / reference[f"params_{settings.param_kind}"]
        row["i_ratio"] = row["ops"] / reference["ops"]
        rows.append(row)
    return space, reference, rows
