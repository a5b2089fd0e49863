"""Optimal subarchitecture extraction (bort/extraction): the search space, the exact surrogates, the
W-coefficient, the loop's interval bookkeeping and guarantee, resuming, errors, and the whole command on a tiny
teacher, in one process and over 2 Horovod ranks."""
import json
import os
import shutil
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from bort.config import BortConfig
from bort.distributed import SingleProcess
from bort.errors import CheckpointError, ConfigError, ParamsError
from bort.extraction.coefficient import WCoefficient
from bort.extraction.error import ErrorSettings
from bort.extraction.loop import ExtractionRun, LoopSettings
from bort.extraction.operations import count_operations
from bort.extraction.parameters import count_parameters
from bort.extraction.space import RELEASED_BORT, candidate_key, load_space, paper_space, space_from_spec
from bort.extraction.teacher import TeacherSpec, load_teacher_spec

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
SCRIPT = os.path.join(REPO, "scripts", "extract_subarchitecture.py")
VOCAB = 40
TEACHER = BortConfig(num_layers=2, num_heads=4, hidden_size=64, units=32, max_length=32, vocab_size=VOCAB)
GRID = {"num_layers": [1, 2], "num_heads": [2, 4], "units": [16, 32], "hidden_size": [32, 64]}


# ------------------------------------------------------------------------------------------------ space
def test_paper_space_has_the_papers_grid_minus_the_indivisible_widths():
    space = paper_space(BortConfig(num_layers=24, num_heads=16, hidden_size=4096, units=1024, vocab_size=50265))
    # 4 A x 6 D x 3 H x 5 I = 360; A = 12 divides neither 512 nor 1024: 2 x 6 x 5 = 60 rejected.
    assert len(space) == 300 and len(space.rejected) == 60
    assert all(fields["num_heads"] == 12 and fields["units"] in (512, 1024) for fields, _ in space.rejected)
    assert all("divisible" in reason for _, reason in space.rejected)
    assert candidate_key(RELEASED_BORT) in space.by_key() and candidate_key(RELEASED_BORT) == "D4-A8-H1024-I768"
    assert space.by_key()["D4-A8-H1024-I768"].config.vocab_size == 50265


@pytest.mark.parametrize("spec,message", [
    ({"num_layers": [1], "depth": [2]}, "'depth' is not a BortConfig field"),
    ({"vocab_size": [10]}, "it comes from the teacher"),
    ({"num_layers": []}, "non-empty list"),
    ({"num_layers": [1, 1]}, "lists a value twice"),
    ({"num_heads": [3], "units": [16]}, "no valid candidate.*divisible"),
    ([{"num_layers": 1}, {"num_layers": 1}], "appears twice"),
    ("not a grid", "expected a grid object"),
])
def test_invalid_spaces_are_refused_with_the_reason(spec, message):
    with pytest.raises(ConfigError, match=message):
        space_from_spec(spec, TEACHER, "grid.json")


def test_space_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "grid.json"
    bad.write_text('{"num_layers": [1,\n')
    with pytest.raises(ConfigError, match=r"grid.json is not valid JSON: line 2"):
        load_space(str(bad), TEACHER)
    with pytest.raises(ConfigError, match="does not exist"):
        load_space(str(tmp_path / "missing.json"), TEACHER)
    mixed = space_from_spec({"num_heads": [3, 4], "units": [16, 32]}, TEACHER)
    assert [c.key for c in mixed.candidates] == ["A4-H16", "A4-H32"] and len(mixed.rejected) == 2


# ------------------------------------------------------------------------------------------------ surrogates
def _unique_parameter_count(model):
    seen, total = set(), 0
    for param in model.collect_params().values():
        if id(param) not in seen:
            seen.add(id(param))
            total += int(np.prod(param.shape))
    return total


@pytest.mark.parametrize("shape", [dict(num_layers=1, num_heads=2, hidden_size=24, units=16, max_length=20),
                                   dict(num_layers=3, num_heads=4, hidden_size=48, units=32, max_length=64)])
def test_parameter_counts_are_exactly_those_of_the_built_model(shape):
    from bort.model import BortModel

    config = BortConfig(vocab_size=37, **shape)
    counts = count_parameters(config)
    for use_decoder, expected in ((False, counts["total"]), (True, counts["with_decoder"])):
        model = BortModel(config, use_decoder=use_decoder)
        model.initialize(mx.init.Normal(0.02))
        assert _unique_parameter_count(model) == expected
    units = shape["units"]
    assert counts["embeddings"] == 37 * units + shape["max_length"] * units + 2 * units
    assert counts["effective"] == counts["total"] - counts["embeddings"]


def test_operation_count_on_hand_computed_numbers():
    # L=2 tokens, H=2, A=1 (head 2), I=4, GELU; see the conventions in bort/extraction/operations.py.
    # embedding: positions 4 add; LayerNorm (2 rows of 2): 12 mul, 14 add, 6 other
    # layer: QKV 24 mul 24 add | attention: scale 4 + QK 8 + WV 8 = 20 mul; QK sums 4 + WV sums 4 + mask 4
    #        + softmax subtract 4 + row sums 2 = 18 add; max 4 + exp 4 + div 4 = 12 other | out proj 8 mul 8 add
    #        | residual 4 add | LN 12/14/6 | FFN1 16/16 | GELU (8 elements) 24 mul 8 add 8 other | FFN2 16/16
    #        | residual 4 add | LN 12/14/6  -> 132 mul, 126 add, 32 other
    config = BortConfig(num_layers=1, num_heads=1, hidden_size=4, units=2, vocab_size=10)
    assert count_operations(config, 2) == dict(mul=144, add=144, other=38, total=326)
    two_layers = count_operations(BortConfig(num_layers=2, num_heads=1, hidden_size=4, units=2, vocab_size=10), 2)
    assert two_layers["total"] == 326 + (132 + 126 + 32)
    with pytest.raises(ValueError, match="seq_len"):
        count_operations(config, 513)


def test_w_coefficient_on_hand_computed_numbers():
    ratio = WCoefficient()  # the default: e^c / ((1 - p)^a (1 - i)^b)
    assert ratio(0.5, 0.25, 1.2) == pytest.approx(1.2 / (0.5 * 0.75))
    assert ratio.lower_bound(0.5, 0.25) == pytest.approx(1 / 0.375)
    assert WCoefficient(beta=2.0)(0.5, 0.5, 1.5) == pytest.approx(12.0)
    assert ratio(1.0, 0.5, 1.0) == float("inf")  # T's own size: no gain at all
    product = WCoefficient("product")
    assert product(0.5, 0.25, 1.2) == pytest.approx(0.15)
    assert WCoefficient("product", alpha=2.0)(0.5, 0.25, 1.2) == pytest.approx(0.075)
    assert WCoefficient("product", gamma=0.0)(0.5, 0.25, 7.0) == pytest.approx(0.125)
    assert product.lower_bound(0.5, 0.25) == pytest.approx(0.125)
    weighted = WCoefficient("sum", 1.0, 2.0, 0.5)
    assert weighted(0.5, 0.25, 1.2) == pytest.approx(0.5 + 0.5 + 0.6)
    assert weighted.lower_bound(0.5, 0.25) == pytest.approx(1.5)
    for bad in (dict(form="max"), dict(alpha=-1.0), dict(alpha=0.0, beta=0.0, gamma=0.0)):
        with pytest.raises(ConfigError):
            WCoefficient(**bad)


# ------------------------------------------------------------------------------------------------ the loop
class TableErrors:
    """e* from a table (the loop's bookkeeping, without training); `fail_after` simulates a crash."""

    def __init__(self, table, reference=2.0, fail_after=None):
        self.table, self.reference_value, self.fail_after, self.calls = table, reference, fail_after, []

    def reference(self):
        return dict(e_star=self.reference_value)

    def evaluate(self, candidate):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("simulated crash")
        self.calls.append(candidate.key)
        return dict(e_star=self.table[candidate.key], seconds=0.0)


def _space():
    return space_from_spec(GRID, TEACHER)


def _run(tmp_path, errors, resume=False, name="run", **settings):
    spec = TeacherSpec(None, TEACHER)
    run = ExtractionRun(_space(), spec, errors, LoopSettings(seq_len=16, **settings), tmp_path / name, SingleProcess(),
                        progress=False)
    return run.run(resume=resume)


def _table(seed):
    rng = np.random.default_rng(seed)
    return {c.key: 2.0 * float(rng.uniform(1.0, 4.0)) for c in _space().candidates}


def test_intervals_follow_the_lower_bound_and_stop_at_the_bound(tmp_path):
    table = _table(0)
    errors = TableErrors(table)
    result = _run(tmp_path, errors, epsilon=0.1, interval_size=3)
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    order, rows = state["order"], state["rows"]
    bounds = [rows[k]["lower_bound"] for k in order]
    assert bounds == sorted(bounds)
    # Evaluated: whole intervals from the start of the order, and nothing else.
    assert errors.calls == order[:len(errors.calls)] and len(errors.calls) % 3 == 0 or len(errors.calls) == 16
    w = {k: WCoefficient()(rows[k]["p_ratio"], rows[k]["i_ratio"], table[k] / 2.0) for k in order}
    best = min(errors.calls, key=lambda k: (w[k], k))
    assert result.pick == best and result.pick_w == pytest.approx(w[best])
    if len(errors.calls) < 16:  # stopped early: the next interval's bound certified it, the previous one did not
        assert bounds[len(errors.calls)] >= 0.9 * result.pick_w
        before = min(errors.calls[:-3], key=lambda k: (w[k], k)) if len(errors.calls) > 3 else None
        assert before is None or bounds[len(errors.calls) - 3] < 0.9 * w[before]
    optimum = min(w.values())
    assert 0.9 * result.pick_w <= optimum <= result.pick_w
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["key"] for r in log if r["event"] == "candidate"] == errors.calls
    assert log[-1]["event"] == "finished" and log[-1]["pick"] == result.pick


@pytest.mark.parametrize("seed", range(6))
def test_guarantee_holds_and_epsilon_zero_is_exact(tmp_path, seed):
    table = _table(seed)
    exhaustive = _run(tmp_path, TableErrors(table), name="all", exhaustive=True, interval_size=5)
    assert exhaustive.evaluated == 16 and exhaustive.stopped == "all candidates evaluated"
    optimum = exhaustive.pick_w
    for epsilon in (0.0, 0.3):
        errors = TableErrors(table)
        result = _run(tmp_path, errors, name=f"eps{epsilon}", epsilon=epsilon, interval_size=2)
        assert (1 - epsilon) * result.pick_w <= optimum + 1e-12
        if epsilon == 0.0:
            assert result.pick == exhaustive.pick


def test_resume_after_a_crash_gives_the_same_pick(tmp_path):
    table = _table(3)
    # e* of the small candidates is made poor, so the loop has to go through several intervals.
    table = {k: v * (4.0 if k.startswith("D1") else 1.0) for k, v in table.items()}
    whole = _run(tmp_path, TableErrors(table), name="whole", epsilon=0.0, interval_size=2)
    assert whole.evaluated >= 6
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, TableErrors(table, fail_after=3), name="crashed", epsilon=0.0, interval_size=2)
    with pytest.raises(ConfigError, match="--resume"):
        _run(tmp_path, TableErrors(table), name="crashed", epsilon=0.0, interval_size=2)
    with pytest.raises(CheckpointError, match="settings"):
        _run(tmp_path, TableErrors(table), name="crashed", resume=True, epsilon=0.2, interval_size=2)
    again = TableErrors(table)
    resumed = _run(tmp_path, again, name="crashed", resume=True, epsilon=0.0, interval_size=2)
    assert resumed.pick == whole.pick and resumed.pick_w == whole.pick_w and resumed.evaluated == whole.evaluated
    assert len(again.calls) == whole.evaluated - 2  # the first interval (2 candidates) was saved before the crash
    log = [json.loads(line) for line in (tmp_path / "crashed" / "log.jsonl").read_text().splitlines()]
    keys = [r["key"] for r in log if r["event"] == "candidate"]
    assert len(keys) == len(set(keys)) == whole.evaluated


def test_loop_settings_are_checked(tmp_path):
    for bad in (dict(epsilon=1.0), dict(epsilon=-0.1), dict(interval_size=0), dict(interval_size=17),
                dict(param_kind="all"), dict(speed_kind="flops")):
        with pytest.raises(ConfigError):
            _run(tmp_path, TableErrors(_table(0)), **bad)


def test_a_teacher_smaller_than_a_candidate_is_refused(tmp_path):
    small = TeacherSpec(None, BortConfig(num_layers=1, num_heads=4, hidden_size=32, units=32, vocab_size=VOCAB))
    run = ExtractionRun(_space(), small, TableErrors(_table(0)), LoopSettings(seq_len=16), tmp_path / "r",
                        SingleProcess(), progress=False)
    with pytest.raises(ConfigError, match="not the maximum point.*candidate D1-A2-H32-I64"):
        run.run()


# ------------------------------------------------------------------------------------------------ real data
def _shard(path, rng, count):
    from bort.pretraining.shards import write_shard

    rows = [np.concatenate([[0], rng.integers(5, VOCAB, size=int(rng.integers(8, 20))), [2]]).astype(np.int32)
            for _ in range(count)]
    positions = [np.sort(rng.choice(np.arange(1, len(r) - 1), size=3, replace=False)) for r in rows]
    write_shard(str(path), dict(input_ids=rows, segment_ids=[np.zeros(len(r), np.int32) for r in rows],
                                masked_lm_positions=positions, masked_lm_ids=[r[p] for r, p in zip(rows, positions)],
                                masked_lm_weights=[np.ones(3, np.float32)] * count, next_sentence_labels=[0] * count,
                                valid_lengths=[len(r) for r in rows]))


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory):
    """Random shards (ids 5..39, 3 masked positions each) and a teacher trained on them for a few MLM steps."""
    from bort.checkpoint import get_bort_model
    from bort.params import save_parameters

    root = tmp_path_factory.mktemp("ose")
    rng = np.random.default_rng(0)
    _shard(root / "train.npz", rng, 48)
    _shard(root / "heldout.npz", rng, 12)
    mx.random.seed(0)
    teacher, _ = get_bort_model(None, vocab_size=VOCAB, num_layers=2, num_heads=4, units=32, hidden_size=64,
                                max_length=32)
    save_parameters(teacher, str(root / "teacher.params"))
    (root / "grid.json").write_text(json.dumps({"num_layers": [1, 2], "num_heads": [2], "units": [16, 32],
                                                "hidden_size": [32]}))
    return root


def _cli_args(root, out, *extra):
    return ["--teacher_params", str(root / "teacher.params"), "--teacher_config", '{"num_heads": 4}',
            "--space", str(root / "grid.json"), "--train_files", str(root / "train.npz"),
            "--eval_files", str(root / "heldout.npz"), "--steps", "3", "--seq_len", "16", "--lr", "1e-3",
            "--batch_size", "4", "--interval_size", "2", "--epsilon", "0", "--output_dir", str(out),
            "--progress", "false", *extra]


def _env():
    return dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), OMP_NUM_THREADS="1", PYTHONPATH=REPO)


def test_command_extracts_reports_and_resumes(tiny_teacher, tmp_path):
    from bort.cli.extract import main

    out = tmp_path / "out"
    assert main(_cli_args(tiny_teacher, out)) == 0
    summary = json.loads((out / "summary.json").read_text())
    state = json.loads((out / "state.json").read_text())
    scored = {k: r for k, r in state["rows"].items() if "e_star" in r}
    assert summary["pick"] in scored and summary["evaluated"] == len(scored) >= 2
    # e*(ξ) >= e*(T): a cross-entropy is never below the reference's own entropy.
    assert all(r["e_star"] >= state["reference"]["e_star"] - 1e-6 for r in scored.values())
    assert len({round(r["e_star"], 8) for r in scored.values()}) == len(scored)  # really trained apart
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv_lines = (out / "ranking.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 4 and csv_lines[1].split(",")[1] == summary["pick"]
    for key in scored:
        assert (out / "candidates" / key / "result.json").exists()
        assert not (out / "candidates" / key / "training").exists()
        assert json.loads((out / "candidates" / key / "train_log.jsonl").read_text().splitlines()[-1])["step"] == 3
    # A non-empty output directory is refused; --resume finishes at once with the same pick, training nothing.
    ran = subprocess.run([sys.executable, SCRIPT, *_cli_args(tiny_teacher, out)], capture_output=True, text=True,
                         env=_env(), cwd=REPO, timeout=300)
    assert ran.returncode == 2 and "not empty" in ran.stderr and "--resume" in ran.stderr
    stamp = {k: os.path.getmtime(out / "candidates" / k / "result.json") for k in scored}
    assert main(_cli_args(tiny_teacher, out, "--resume")) == 0
    assert json.loads((out / "summary.json").read_text())["pick"] == summary["pick"]
    assert stamp == {k: os.path.getmtime(out / "candidates" / k / "result.json") for k in scored}


def test_kept_candidate_models_carry_their_record(tiny_teacher, tmp_path):
    """--keep_models writes each trained candidate with the record every command rebuilds it from (its heads are 2,
    not the default 8)."""
    from bort.checkpoint import get_bort_model
    from bort.cli.extract import main

    out = tmp_path / "kept"
    assert main(_cli_args(tiny_teacher, out, "--keep_models", "true")) == 0
    kept = sorted((out / "candidates").glob("*/model.params"))
    assert kept
    for path in kept:
        record = json.loads(path.with_suffix(".json").read_text())
        assert record["architecture"]["num_heads"] == 2
        model, _ = get_bort_model(None, params_path=str(path))
        assert model.config.num_heads == 2


def test_a_second_run_into_a_locked_output_directory_is_refused(tiny_teacher, tmp_path):
    from bort.cli.extract import main
    from bort.errors import ConfigError
    from bort.locking import output_lock

    out = tmp_path / "locked"
    with output_lock(out, what="extraction run", sibling=True):
        with pytest.raises(ConfigError, match=f"pid {os.getpid()}"):
            main(_cli_args(tiny_teacher, out))
    assert not (out / "state.json").exists()


def test_invalid_teachers_and_data_give_clear_errors(tiny_teacher, tmp_path):
    from bort.checkpoint import get_bort_model
    from bort.params import save_parameters

    root = tiny_teacher
    with pytest.raises(ParamsError, match="does not exist"):
        load_teacher_spec(str(tmp_path / "missing.params"), '{"num_heads": 4}')
    headless, _ = get_bort_model(None, vocab_size=VOCAB, num_layers=1, num_heads=2, units=16, hidden_size=32,
                                 use_decoder=False)
    save_parameters(headless, str(tmp_path / "headless.params"))
    with pytest.raises(ParamsError, match="no MLM decoder"):
        load_teacher_spec(str(tmp_path / "headless.params"), '{"num_heads": 2}')
    with pytest.raises(ConfigError, match="units=64 but .* has units=32"):
        load_teacher_spec(str(root / "teacher.params"), '{"num_heads": 4, "units": 64}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_teacher_spec(str(root / "teacher.params"), '{"num_heads": 4')
    with pytest.raises(ConfigError, match="neither a known name"):
        load_teacher_spec(str(root / "teacher.params"), "roberta_huge")
    spec = load_teacher_spec(str(root / "teacher.params"), '{"num_heads": 4}')
    assert (spec.config.num_layers, spec.config.units, spec.config.hidden_size, spec.config.vocab_size) == (2, 32, 64,
                                                                                                            VOCAB)
    # The record this package writes beside a checkpoint supplies the heads (and must agree with the flags).
    from bort.checkpoint import make_record, write_record
    recorded, _ = get_bort_model(None, vocab_size=VOCAB, num_layers=1, num_heads=2, units=16, hidden_size=32,
                                 layer_norm_eps=1e-12)
    save_parameters(recorded, str(tmp_path / "recorded.params"))
    write_record(str(tmp_path / "recorded.params"), make_record(recorded))
    spec = load_teacher_spec(str(tmp_path / "recorded.params"))
    assert (spec.config.num_heads, spec.config.layer_norm_eps) == (2, 1e-12)
    with pytest.raises(ConfigError, match="record beside .* says num_heads=2"):
        load_teacher_spec(str(tmp_path / "recorded.params"), '{"num_heads": 4}')
    with pytest.raises(ConfigError, match="held-out slice must not be trained on"):
        ErrorSettings((str(root / "train.npz"),), (str(root / "train.npz"),)).validate()
    from bort.cli.extract import main
    with pytest.raises(ConfigError, match="number of heads is unknown"):
        main(_cli_args(root, tmp_path / "o1")[:2] + _cli_args(root, tmp_path / "o1")[4:])
    with pytest.raises(ConfigError, match="no file matches"):
        main(_cli_args(root, tmp_path / "o2", "--eval_files", str(tmp_path / "none*.npz")))


@pytest.mark.horovod
def test_two_horovod_ranks_pick_what_one_process_picks(tiny_teacher, tmp_path):
    assert shutil.which("horovodrun", path=BIN), f"horovodrun is not installed in {BIN}"
    two, one = tmp_path / "two", tmp_path / "one"
    ran = subprocess.run([os.path.join(BIN, "horovodrun"), "-np", "2", "-H", "localhost:2", "--gloo", sys.executable,
                          SCRIPT, "--horovod", *_cli_args(tiny_teacher, two)], capture_output=True, text=True,
                         env=_env(), cwd=REPO, timeout=600)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    single = subprocess.run([sys.executable, SCRIPT, *_cli_args(tiny_teacher, one)], capture_output=True, text=True,
                            env=_env(), cwd=REPO, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    states = [json.loads((d / "state.json").read_text()) for d in (two, one)]
    assert states[0]["best"] == states[1]["best"] and states[0]["evaluations"] == states[1]["evaluations"]
    scored = [{k for k, r in state["rows"].items() if "e_star" in r} for state in states]
    assert scored[0] == scored[1] and len(scored[0]) >= 2  # each rank trained part of every interval
    for key in scored[1]:
        assert states[1]["rows"][key]["e_star"] == pytest.approx(states[0]["rows"][key]["e_star"], rel=1e-6)
    log = [json.loads(line) for line in (two / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in log].count("start") == 1 and log[0]["workers"] == 2  # one writer


@pytest.mark.parametrize("argv, message", [
    (["BOGUS"], "unknown mode 'BOGUS'"),
    (["PAPER", "teacher.params"], "PAPER needs TEACHER_PARAMS TRAIN_GLOB EVAL_GLOB"),
])
def test_run_extract_checks_its_arguments_before_any_work(argv, message, tmp_path):
    ran = subprocess.run(["bash", os.path.join(REPO, "run_extract.sh"), *argv], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert ran.returncode == 2 and ran.stderr.startswith("error: ") and message in ran.stderr
    assert "[setup_env]" not in ran.stdout + ran.stderr  # refused before the environment is even checked


def test_run_extract_help_explains_the_modes():
    ran = subprocess.run(["bash", os.path.join(REPO, "run_extract.sh"), "--help"], capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0
    for mode in ("DEMO", "EXPERIMENT", "PAPER", "PAPER_TABLE"):
        assert f"./run_extract.sh {mode}" in ran.stdout
    assert "set -euo" not in ran.stdout
