"""The extraction loop (the FPTAS of docs/extraction.md, "Readings"), resumable, with a JSON-lines log.

    compute p*, i* for every candidate and for T (cheap); e*(T) on the held-out slice
    sort the candidates by the lower bound LB(ξ) = W(p̂, î, ê = 1) of their W-coefficient
    for each interval of `interval_size` candidates in that order:
        if a best candidate exists and LB(first of the interval) >= (1 - ε) W(best): stop
        distil every candidate of the interval for n steps (split over the ranks), measure e*, compute W
    return the candidate with the smallest W

Guarantee: when the loop stops, every candidate not evaluated has W >= LB >= (1 - ε) W(pick), and the pick is the
best of those evaluated, so (1 - ε) W(pick) <= W(optimum) <= W(pick) for the objective measured with budget n.
With ε = 0 the pick is the exact optimum; `exhaustive=True` evaluates everything (the experiment's reference).

Outputs under `out_dir`: `state.json` (atomic, after every interval), `log.jsonl` (rank 0), `candidates/<key>/`
(each candidate's training and `result.json`), `timings.json` (the measured i* cache), and the report files.
"""
import dataclasses
import json
import os

from ..errors import ConfigError
from ..training.logs import JsonlLogger, truncate_log
from ..training.run_state import read_run_state, write_run_state
from .coefficient import WCoefficient
from .operations import count_operations
from .parameters import count_parameters

STATE_FILE, LOG_FILE, CANDIDATES_DIR, TIMINGS_FILE = "state.json", "log.jsonl", "candidates", "timings.json"
STATE_VERSION = 1
PARAM_KINDS = ("effective", "total")
SPEED_KINDS = ("ops", "time")


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """epsilon: tolerance of the guarantee, in [0, 1). interval_size: candidates evaluated between two stop checks
    (the sources' "interval size", 1 <= interval_size <= |Ξ|). param_kind: p* without embeddings ('effective') or
    with ('total'). speed_kind: i* as the operation count ('ops') or the measured time ('time'), both at seq_len.
    timing_*: batch size and repeats of the measured time. exhaustive: never stop early."""
    w: WCoefficient = WCoefficient()
    epsilon: float = 0.1
    interval_size: int = 4
    param_kind: str = "effective"
    speed_kind: str = "ops"
    seq_len: int = 128
    timing_batch_size: int = 1
    timing_repeats: int = 10
    measure_times: bool = False
    exhaustive: bool = False

    def validate(self, space_size):
        if not 0.0 <= self.epsilon < 1.0:
            raise ConfigError(f"epsilon must lie in [0, 1), got {self.epsilon}")
        if not 1 <= self.interval_size <= space_size:
            raise ConfigError(f"interval_size must lie in [1, |Ξ| = {space_size}], got {self.interval_size}")
        if self.param_kind not in PARAM_KINDS:
            raise ConfigError(f"param_kind must be one of {PARAM_KINDS}, got {self.param_kind!r}")
        if self.speed_kind not in SPEED_KINDS:
            raise ConfigError(f"speed_kind must be one of {SPEED_KINDS}, got {self.speed_kind!r}")
        if self.seq_len < 1 or self.timing_repeats < 1 or self.timing_batch_size < 1:
            raise ConfigError("seq_len, timing_repeats and timing_batch_size must be >= 1")


@dataclasses.dataclass
class ExtractionResult:
    pick: str
    pick_w: float
    rows: list  # one dict per candidate, ranked (evaluated by W, then the rest by lower bound)
    reference: dict  # T's surrogates
    evaluated: int
    space_size: int
    stopped: str
    bound: object  # LB of the first candidate not evaluated (None when all were)
    out_dir: str
    state_path: str
    log_path: str


def cheap_surrogates(config, settings, timings=None):
    """p* (both kinds), i* (operations, and the measured time when a TimingCache is given) of one config."""
    params = count_parameters(config)
    row = dict(params_effective=params["effective"], params_total=params["total"],
               ops=count_operations(config, settings.seq_len)["total"])
    if timings is not None:
        record = timings.get_or_measure(config, settings.seq_len, settings.timing_batch_size, settings.timing_repeats)
        row.update(time_s=record["median_s"], isa=record["isa"], cpu=record["cpu"])
    return row


def _p(row, settings):
    return row[f"params_{settings.param_kind}"]


def _i(row, settings):
    return row["ops"] if settings.speed_kind == "ops" else row["time_s"]


class ExtractionRun:
    def __init__(self, space, teacher_spec, error_surrogate, settings, out_dir, dist, fingerprint_extra=None,
                 progress=True):
        settings.validate(len(space))
        if settings.seq_len > teacher_spec.config.max_length:
            raise ConfigError(f"seq_len {settings.seq_len} exceeds the teacher's max_length "
                              f"{teacher_spec.config.max_length}")
        self.space, self.teacher_spec, self.errors = space, teacher_spec, error_surrogate
        self.settings, self.dist, self.progress = settings, dist, progress
        self.out_dir = os.path.abspath(os.fspath(out_dir))
        self.state_path = os.path.join(self.out_dir, STATE_FILE)
        self.log_path = os.path.join(self.out_dir, LOG_FILE)
        self.fingerprint = {"settings": _jsonable(dataclasses.asdict(settings)),
                            "teacher": teacher_spec.description(),
                            "candidates": [c.key for c in space.candidates], **(fingerprint_extra or {})}

    # ------------------------------------------------------------------------------------------ state
    def _load_state(self, resume):
        state = read_run_state(self.state_path, STATE_VERSION, self.fingerprint, "an extraction", resume,
                               "pass --resume to go on with it or --force to start over")
        if state is None:
            return None
        self._truncate_log(state["log_lines"])
        return state

    def _truncate_log(self, lines):
        if self.dist.is_main:
            truncate_log(self.log_path, lines, self.state_path)

    def _save(self, state):
        if self.dist.is_main:
            write_run_state(self.state_path, state)

    def _log(self, state, **record):
        JsonlLogger(self.log_path, enabled=self.dist.is_main).log(**record)
        state["log_lines"] += 1

    # ------------------------------------------------------------------------------------------ set-up
    def _surrogates(self):
        """Cheap surrogates of T and every candidate; measured times come from rank 0 only, so they compare."""
        s = self.settings
        timed = s.measure_times or s.speed_kind == "time"
        configs = [self.teacher_spec.config] + [c.config for c in self.space.candidates]
        rows = [cheap_surrogates(config, s) for config in configs]
        if timed:
            from .timing import TimingCache

            mine = {}
            if self.dist.is_main:
                cache = TimingCache(os.path.join(self.out_dir, TIMINGS_FILE))
                from bort.progress import tqdm
                for index, config in enumerate(tqdm(configs, desc="timing", unit="model", disable=not self.progress)):
                    mine[index] = [cache.get_or_measure(config, s.seq_len, s.timing_batch_size,
                                                        s.timing_repeats)["median_s"]]
            for row, (value,) in zip(rows, self.dist.gather_shares(len(configs), 1, mine)):
                row["time_s"] = value
        reference, candidates = rows[0], dict(zip((c.key for c in self.space.candidates), rows[1:]))
        for key, row in candidates.items():
            if _p(row, s) > _p(reference, s) or _i(row, s) > _i(reference, s):
                raise ConfigError(
                    f"the teacher is not the maximum point of the space: candidate {key} has more parameters or a "
                    f"higher inference cost ({_p(row, s)}, {_i(row, s)}) than the teacher ({_p(reference, s)}, "
                    f"{_i(reference, s)}); use a larger teacher or a smaller space")
        return reference, candidates

    def _new_state(self):
        s = self.settings
        reference, rows = self._surrogates()
        mine = {0: [self.errors.reference()["e_star"]]} if self.dist.is_main else {}
        reference["e_star"] = self.dist.gather_shares(1, 1, mine)[0][0]
        for row in rows.values():
            row["p_ratio"] = _p(row, s) / _p(reference, s)
            row["i_ratio"] = _i(row, s) / _i(reference, s)
            row["lower_bound"] = s.w.lower_bound(row["p_ratio"], row["i_ratio"])
        order = sorted(rows, key=lambda key: (rows[key]["lower_bound"], key))
        return {"version": STATE_VERSION, "fingerprint": self.fingerprint, "reference": reference, "rows": rows,
                "order": order, "next": 0, "best": None, "evaluations": 0, "stopped": None, "bound": None,
                "log_lines": 0, "done": False}

    # ------------------------------------------------------------------------------------------ the loop
    def run(self, resume=False):
        from bort.progress import tqdm

        if self.dist.is_main:
            os.makedirs(self.out_dir, exist_ok=True)
        self.dist.barrier()
        state = self._load_state(resume)
        if state is None:
            state = self._new_state()
            self._log(state, event="start", space=self.space.source, candidates=len(self.space),
                      rejected=len(self.space.rejected), teacher=self.teacher_spec.description(),
                      workers=self.dist.size, reference=state["reference"], settings=self.fingerprint["settings"])
            self._save(state)
        elif state["done"]:
            return self._result(state)  # a finished run: nothing to redo or log
        else:
            self._log(state, event="resumed", next=state["next"], evaluations=state["evaluations"])
        s, rows, order = self.settings, state["rows"], state["order"]
        by_key = self.space.by_key()
        with tqdm(total=len(order), initial=state["next"], desc="extraction", unit="candidate",
                  disable=not (self.progress and self.dist.is_main)) as bar:
            while not state["done"]:
                if state["next"] >= len(order):
                    state.update(done=True, stopped="all candidates evaluated", bound=None)
                    break
                bound = rows[order[state["next"]]]["lower_bound"]
                best_w = rows[state["best"]]["w"] if state["best"] else None
                if not s.exhaustive and best_w is not None and bound >= (1 - s.epsilon) * best_w:
                    state.update(done=True, bound=bound,
                                 stopped=f"lower bound {bound:.6g} >= (1 - {s.epsilon}) x W(best) {best_w:.6g}")
                    break
                interval = order[state["next"]:state["next"] + s.interval_size]
                mine = {}
                for index in range(self.dist.rank, len(interval), self.dist.size):
                    result = self.errors.evaluate(by_key[interval[index]])
                    mine[index] = [result["e_star"], result["seconds"]]
                for key, (e_star, seconds) in zip(interval, self.dist.gather_shares(len(interval), 2, mine)):
                    row = rows[key]
                    row.update(e_star=e_star, e_ratio=e_star / state["reference"]["e_star"], train_seconds=seconds)
                    row["w"] = s.w(row["p_ratio"], row["i_ratio"], row["e_ratio"])
                    if state["best"] is None or (row["w"], key) < (rows[state["best"]]["w"], state["best"]):
                        state["best"] = key
                    self._log(state, event="candidate", key=key, **row)
                state["evaluations"] += len(interval)
                state["next"] += len(interval)
                self._log(state, event="interval", candidates=interval, first_lower_bound=bound,
                          best=state["best"], best_w=rows[state["best"]]["w"])
                self._save(state)
                bar.update(len(interval))
                bar.set_postfix(best=state["best"], W=f"{rows[state['best']]['w']:.4g}")
        self._log(state, event="finished", pick=state["best"], w=rows[state["best"]]["w"], stopped=state["stopped"],
                  evaluations=state["evaluations"], space=len(order), bound=state["bound"])
        self._save(state)
        return self._result(state)

    def _result(self, state):
        rows = state["rows"]
        ranked = sorted((k for k in rows if "w" in rows[k]), key=lambda k: (rows[k]["w"], k))
        ranked += [k for k in state["order"] if "w" not in rows[k]]
        by_key = self.space.by_key()
        table = [dict(rank=index + 1 if "w" in rows[key] else None, key=key, **by_key[key].fields, **rows[key])
                 for index, key in enumerate(ranked)]
        return ExtractionResult(pick=state["best"], pick_w=rows[state["best"]]["w"], rows=table,
                                reference=state["reference"], evaluated=state["evaluations"],
                                space_size=len(state["order"]), stopped=state["stopped"], bound=state["bound"],
                                out_dir=self.out_dir, state_path=self.state_path, log_path=self.log_path)


def _jsonable(value):
    return json.loads(json.dumps(value, default=lambda v: list(v) if isinstance(v, (tuple, set)) else str(v)))
