"""Bad inputs, faults and misuse: each test builds the shape of a real problem (an AX-g file with one pair_id
per row, AX-b's string ids, a learning rate that diverges, two runs in one directory, a crash mid-checkpoint,
a full disk, ...) and checks for a correct result or a clear error that leaves the data safe."""
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import textwrap

import mxnet as mx
import numpy as np
import pytest

from bort.errors import BortError, CheckpointError, ConfigError, DataError, OutputError, ParamsError, TrainingError
from bort.finetune.config import FinetuneConfig
from bort.finetune.trainer import finetune
from bort.tasks import get_task

from conftest import FIXTURES_DIR, REPO_ROOT, SAMPLE_TEXT

DEMO_VOCAB = os.path.join(REPO_ROOT, "data", "demo", "vocab")
TEST_DATA = os.path.join(REPO_ROOT, "tests", "data")
TINY = dict(vocab=os.path.join(DEMO_VOCAB, "vocab.json"), merges=os.path.join(DEMO_VOCAB, "merges.txt"),
            num_layers=1, units=16, hidden_size=32, num_heads=2, model_max_length=64, max_len=48, batch_size=4,
            dev_batch_size=16, epochs=1, ramp_up_epochs=1, progress=False, init="gaussian", prob=0.02, lr=1e-3,
            task_name="SST", data_dir=os.path.join(TEST_DATA, "glue"))
HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from bort.locking import output_lock
    with output_lock(sys.argv[1], what="test holder"):
        print("locked", flush=True)
        time.sleep(120)
""")


def tiny_config(tmp_path, **overrides):
    return FinetuneConfig(**dict(TINY, **dict(dict(output_dir=str(tmp_path / "out")), **overrides)))


def write_jsonl(path, records):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in records)


def run_python(*args, **kwargs):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=600, **kwargs)


@pytest.fixture
def lock_holder(tmp_path):
    """Start a process that holds the lock of a directory; yields a function taking the directory."""
    processes = []

    def hold(directory):
        env = dict(os.environ, PYTHONPATH=REPO_ROOT)
        process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(directory)], env=env,
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "locked"
        processes.append(process)
        return process

    yield hold
    for process in processes:
        process.kill()
        process.wait()


# ------------------------------------------------------------------------------------ silent wrong results
def test_axg_pairs_are_consecutive_rows_even_with_one_pair_id_per_row(tmp_path):
    """The official AX-g.jsonl gives each row its own pair_id; rows 2i and 2i+1 are the minimal pair."""
    rows = []
    for pair in range(3):
        for pronoun in ("his", "her"):
            rows.append(dict(idx=len(rows), pair_id=1000 + len(rows), label="entailment", hypothesis=f"Someone "
                             f"{pair} lost keys.", premise=f"The doctor {pair} lost {pronoun} keys."))
    write_jsonl(tmp_path / "AX-g" / "AX-g.jsonl", rows)
    task = get_task("AX-g")
    examples = task.read(str(tmp_path), "test")
    alternating = ["entailment", "not_entailment"] * 3
    assert task.evaluate(examples, alternating)["gender_parity"] == 0.0
    assert task.evaluate(examples, ["entailment"] * 6)["gender_parity"] == 1.0

    rows[3]["hypothesis"] = "Not the same hypothesis."
    write_jsonl(tmp_path / "AX-g" / "AX-g.jsonl", rows)
    with pytest.raises(DataError, match=r"AX-g\.jsonl:4: its hypothesis differs"):
        task.read(str(tmp_path), "test")
    write_jsonl(tmp_path / "AX-g" / "AX-g.jsonl", rows[:5])
    with pytest.raises(DataError, match="5 rows"):
        task.read(str(tmp_path), "test")


def test_axb_submission_ids_are_integers_though_the_file_has_strings(tmp_path):
    write_jsonl(tmp_path / "AX-b" / "AX-b.jsonl", [dict(idx=str(i), sentence1=f"A {i}.", sentence2=f"B {i}.",
                                                        label="entailment") for i in range(3)])
    task = get_task("AX-b")
    examples = task.read(str(tmp_path), "test")
    path = task.write_predictions(examples, ["entailment", "not_entailment", "entailment"], str(tmp_path / "out"))
    ids = [json.loads(line)["idx"] for line in open(path, encoding="utf-8")]
    assert ids == [0, 1, 2] and all(type(i) is int for i in ids)


def test_duplicate_ids_in_a_test_file_are_refused(tmp_path):
    write_jsonl(tmp_path / "AX-b" / "AX-b.jsonl", [dict(idx=i % 2, sentence1="a", sentence2="b") for i in range(3)])
    with pytest.raises(DataError, match=r"AX-b\.jsonl: id 0 appears more than once"):
        get_task("AX-b").read(str(tmp_path), "test")


def test_training_stops_on_a_non_finite_loss_or_gradient(tmp_path):
    """A learning rate this large sends the weights to inf after one update; the next loss is NaN."""
    with pytest.raises(TrainingError, match=r"update \d+: the (loss|gradient norm) is (nan|inf)"):
        finetune(tiny_config(tmp_path, lr=1e38, max_grad_norm=0.0, use_scheduler=False, batch_size=2, epochs=2))
    assert not os.path.exists(tmp_path / "out" / "model_bort_SST.params")


def test_pretraining_stops_on_a_non_finite_gradient_in_float32(tmp_path, shards):
    from bort.pretraining.trainer import PretrainConfig, pretrain

    config = PretrainConfig(train_files=shards, ckpt_dir=str(tmp_path / "ckpt"), model=None, progress=False,
                            model_overrides=dict(num_layers=1, units=16, hidden_size=32, num_heads=2, max_length=128),
                            teacher_ce_weight=0.0, mlm_weight=1.0, num_steps=6, batch_size=2, lr=1e38,
                            max_grad_norm=0.0, warmup_ratio=0.0, ckpt_interval=0)
    with pytest.raises(TrainingError, match=r"step \d+: the (loss|gradient norm) is (nan|inf)"):
        pretrain(config)


@pytest.mark.parametrize("command", ["finetune", "pretrain"])
@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
def test_learning_rate_must_be_finite_and_positive_at_parse_time(command, value, capsys):
    from bort.cli import finetune as finetune_cli
    from bort.cli import pretrain as pretrain_cli

    parser = (finetune_cli if command == "finetune" else pretrain_cli).build_parser()
    required = ["--task_name", "SST"] if command == "finetune" else ["--data", "x.npz"]
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(required + ["--lr", value])
    assert exit_info.value.code == 2
    assert "--lr: expected a finite number > 0" in capsys.readouterr().err


def test_max_len_must_hold_the_special_tokens_and_one_token(tmp_path):
    with pytest.raises(ConfigError, match=r"--max_len 2 cannot hold the 2 special tokens of a SST sequence"):
        finetune(tiny_config(tmp_path, max_len=2))
    with pytest.raises(ConfigError, match=r"--max_len 3 cannot hold the 3 special tokens of a RTE sequence"):
        finetune(tiny_config(tmp_path, task_name="RTE", max_len=3))


@pytest.fixture(scope="module")
def vocab300(tmp_path_factory):
    """A 300-token byte-level BPE, the size of the fixtures' tiny models (<mask> last, id 299)."""
    from bort.tokenizer import train_byte_level_bpe

    directory = tmp_path_factory.mktemp("vocab")
    train_byte_level_bpe([SAMPLE_TEXT], str(directory), 300)
    return str(directory / "vocab.json"), str(directory / "merges.txt")


def predict(task, vocab300, source, output, *extra, params="tiny_fp32.params"):
    from bort.cli import predict as predict_cli

    return predict_cli.main([task, "--params", os.path.join(FIXTURES_DIR, params), "--vocab", vocab300[0],
                             "--merges", vocab300[1], "--num-heads", "4", "--input", str(source), "--output",
                             str(output), "--progress", "false", *extra])


def test_predict_max_length_zero_is_refused_not_the_default(tmp_path, vocab300):
    source = tmp_path / "texts.jsonl"
    write_jsonl(source, [dict(text="a short text", text_b="and another")])
    for bad in ("0", "4", "-5"):  # a pair in the roberta layout needs 4 special tokens + 1
        with pytest.raises(ConfigError, match=r"--max[-_]len\w* must lie in \[5, "):
            predict("embed", vocab300, source, tmp_path / "v.npy", "--max-length", bad)
    assert not (tmp_path / "v.npy").exists()
    assert predict("embed", vocab300, source, tmp_path / "v.npy", "--max-length", "5") == 0


@pytest.mark.parametrize("layout, separator", [("roberta", "</s></s>"), ("bort_release", "</s>")])
def test_fill_mask_on_a_pair_keeps_the_separator(tmp_path, vocab300, layout, separator):
    source = tmp_path / "masked.jsonl"
    write_jsonl(source, [dict(text="the <mask> of it", text_b="and the end"), dict(text="no pair <mask>")])
    out = tmp_path / "fills.jsonl"
    assert predict("fill-mask", vocab300, source, out, "--pair-layout", layout) == 0
    pair, single = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    first, second = pair["filled"].split(separator)
    assert first.startswith("the") and second == "and the end" and "<mask>" not in first
    assert "</s>" not in single["filled"] and single["filled"].startswith("no pair")


# ---------------------------------------------------------------------------------------- data lost or mixed
@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    from bort.pretraining.data import create_pretraining_data
    from bort.tokenizer import BortTokenizer

    directory = tmp_path_factory.mktemp("shards")
    create_pretraining_data(SAMPLE_TEXT, str(directory), BortTokenizer.from_directory(DEMO_VOCAB),
                            max_seq_length=64, max_predictions_per_seq=10, num_shards=1, show_progress=False)
    return [str(directory / "part-000.npz")]


def pretrain_config(tmp_path, shards, **overrides):
    from bort.pretraining.trainer import PretrainConfig

    settings = dict(train_files=shards, ckpt_dir=str(tmp_path / "ckpt"), model=None, progress=False,
                    model_overrides=dict(num_layers=1, units=16, hidden_size=32, num_heads=2, max_length=128),
                    teacher_ce_weight=0.0, mlm_weight=1.0, num_steps=2, batch_size=2, ckpt_interval=1,
                    log_interval=1)
    settings.update(overrides)
    return PretrainConfig(**settings)


def test_pretraining_refuses_a_ckpt_dir_with_a_run_unless_resumed(tmp_path, shards):
    from bort.pretraining.trainer import pretrain

    pretrain(pretrain_config(tmp_path, shards))
    log = tmp_path / "ckpt" / "train_log.jsonl"
    before = log.read_text()
    checkpoints = sorted(os.listdir(tmp_path / "ckpt"))
    with pytest.raises(ConfigError, match="already holds a pretraining run.*--resume true"):
        pretrain(pretrain_config(tmp_path, shards))
    assert log.read_text() == before and sorted(os.listdir(tmp_path / "ckpt")) == checkpoints
    summary = pretrain(pretrain_config(tmp_path, shards, resume=True, num_steps=3))
    assert summary["start_step"] == 2 and summary["step"] == 3


@pytest.mark.parametrize("command", ["finetune", "pretrain", "create_pretraining_data", "agora"])
@pytest.mark.slow
def test_a_second_run_into_a_locked_directory_is_refused_naming_the_holder(tmp_path, lock_holder, shards, command):
    import socket

    out = tmp_path / "out"
    holder = lock_holder(out)
    argv = {
        "finetune": ["--task_name", "SST", "--data_dir", TINY["data_dir"], "--output_dir", str(out)],
        "pretrain": ["--data", shards[0], "--ckpt_dir", str(out), "--model", "custom", "--num_layers", "1",
                     "--num_heads", "2", "--units", "16", "--hidden_size", "32", "--teacher_ce_weight", "0"],
        "create_pretraining_data": ["--input_file", SAMPLE_TEXT, "--output_dir", str(out), "--vocab", DEMO_VOCAB],
        "agora": ["--task_name", "SST", "--data_dir", TINY["data_dir"], "--output_dir", str(out)],
    }[command]
    result = run_python("-c", f"from bort.cli.{command} import console_main; console_main()", *argv)
    assert result.returncode == 2, result.stderr
    assert f"pid {holder.pid} on host {socket.gethostname()}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_lock_left_by_a_killed_run_does_not_block(tmp_path, lock_holder):
    holder = lock_holder(tmp_path / "out")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / "out" / ".bort.lock").exists()
    result = finetune(tiny_config(tmp_path, predict=False))
    assert result["steps"] >= 1


def test_create_pretraining_data_refuses_old_shards_and_force_replaces_them(tmp_path):
    from bort.cli import create_pretraining_data as cli

    out = tmp_path / "shards"
    common = ["--input_file", SAMPLE_TEXT, "--output_dir", str(out), "--vocab", DEMO_VOCAB, "--max_seq_length", "64",
              "--progress", "false"]
    assert cli.main(common + ["--num_outputs", "3"]) == 0
    with pytest.raises(ConfigError, match="is not empty.*--force"):
        cli.main(common + ["--num_outputs", "1"])
    assert sorted(p for p in os.listdir(out) if p.endswith(".npz")) == ["part-000.npz", "part-001.npz", "part-002.npz"]
    assert cli.main(common + ["--num_outputs", "1", "--force"]) == 0
    assert sorted(p for p in os.listdir(out) if not p.startswith(".")) == ["metadata.json", "part-000.npz"]
    assert json.loads((out / "metadata.json").read_text())["num_shards"] == 1
    with pytest.raises(ConfigError, match="--num_outputs must be >= 1, got 0"):
        cli.main(common + ["--num_outputs", "0", "--force"])


def copy_launcher(tmp_path, name):
    """The launcher (and the help helper it sources) in a scratch checkout whose setup script and Python only
    record that they ran."""
    shutil.copy(os.path.join(REPO_ROOT, name), tmp_path / name)
    os.makedirs(tmp_path / "scripts")
    shutil.copy(os.path.join(REPO_ROOT, "scripts", "launcher_help.sh"), tmp_path / "scripts")  # sourced, real
    os.makedirs(tmp_path / ".venv" / "bin")
    (tmp_path / "scripts" / "setup_env.sh").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / ".venv" / "bin" / "python").write_text(
        '#!/bin/sh\nif [ "$1" = "-c" ]; then echo cpu; exit 0; fi\necho "$@" >> "$(dirname "$0")/calls"\n')
    for path in (tmp_path / "scripts" / "setup_env.sh", tmp_path / ".venv" / "bin" / "python"):
        path.chmod(0o755)
    return tmp_path / name


def test_run_pretrain_validates_its_arguments_before_deleting_anything(tmp_path):
    script = copy_launcher(tmp_path, "run_pretrain.sh")
    keep = tmp_path / "runs" / "pretraining_test" / "keep.txt"
    os.makedirs(keep.parent)
    keep.write_text("an earlier run")
    result = subprocess.run(["bash", str(script), "abc", "TEST"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "NUM_PROCS must be a positive integer, got 'abc'" in result.stderr
    assert keep.read_text() == "an earlier run"


def test_run_pretrain_follows_the_machine_instead_of_forcing_a_gpu(tmp_path):
    script = copy_launcher(tmp_path, "run_pretrain.sh")
    result = subprocess.run(["bash", str(script), "1", "shards/*.npz"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    call = (tmp_path / ".venv" / "bin" / "calls").read_text()
    assert "--dtype float32 --device cpu" in call and "float16" not in call
    assert "no GPU" in result.stderr


def test_convert_vocab_refuses_to_overwrite_without_force(tmp_path):
    from bort.cli import convert_vocab

    out = tmp_path / "converted"
    argv = ["--to", "gluonnlp", "--vocab", TINY["vocab"], "--merges", TINY["merges"], "--output_dir", str(out)]
    assert convert_vocab.main(argv) == 0
    written = {name: (out / name).read_bytes() for name in os.listdir(out)}
    (out / "roberta_vocab.vocab").write_text("edited by hand")
    with pytest.raises(OutputError, match="already exist.*--force"):
        convert_vocab.main(argv)
    assert (out / "roberta_vocab.vocab").read_text() == "edited by hand"
    assert convert_vocab.main(argv + ["--force"]) == 0
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == written


def test_stale_checkpoint_temporaries_of_a_killed_run_are_removed_on_start(tmp_path, shards):
    from bort.pretraining.trainer import pretrain

    stale = tmp_path / "out" / "checkpoints" / ".checkpoint-00000001.k2j3.tmp"
    os.makedirs(stale)
    (stale / "model.params").write_bytes(b"\0" * 1000)
    finetune(tiny_config(tmp_path, predict=False))
    assert not stale.exists()

    pretrain(pretrain_config(tmp_path, shards, num_steps=1))
    stale = tmp_path / "ckpt" / ".checkpoint-00000002.x9.tmp"
    os.makedirs(stale)
    pretrain(pretrain_config(tmp_path, shards, num_steps=2, resume=True))
    assert not stale.exists()


# ------------------------------------------------------------------------------------------- unclear errors
@pytest.mark.slow
def test_a_full_disk_names_the_file_being_written(tmp_path, vocab300):
    """RLIMIT_FSIZE makes writes past the limit fail with EFBIG, as a full disk fails them with ENOSPC."""
    source = tmp_path / "texts.tsv"
    source.write_text("".join(f"text number {i}\n" for i in range(200)), encoding="utf-8")
    output = tmp_path / "vectors.npy"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    code = ("from bort.cli.predict import console_main; console_main()")
    result = run_python("-c", code, "embed", "--params", os.path.join(FIXTURES_DIR, "tiny_fp32.params"),
                        "--vocab", vocab300[0], "--merges", vocab300[1], "--num-heads", "4", "--input", str(source),
                        "--output", str(output), "--progress", "false", preexec_fn=limit)
    assert result.returncode == 2, result.stderr
    assert f"cannot write {output}" in result.stderr and "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == ["texts.tsv"]  # no partial output, no temporary left


def test_truncated_optimizer_state_and_random_shards_name_the_file(tmp_path):
    from bort.pretraining.shards import read_shard

    finetune(tiny_config(tmp_path, predict=False, epochs=1))
    checkpoint = os.path.join(tmp_path, "out", "checkpoints", sorted(os.listdir(tmp_path / "out" / "checkpoints"))[-1])
    states = os.path.join(checkpoint, "trainer.states")
    with open(states, "r+b") as handle:
        handle.truncate(os.path.getsize(states) // 2)
    with pytest.raises(CheckpointError, match=r"trainer\.states is unreadable \(truncated or corrupt"):
        finetune(tiny_config(tmp_path, predict=False, epochs=2, resume=True))

    shard = tmp_path / "random.npz"
    shard.write_bytes(np.random.RandomState(0).bytes(5000))
    with pytest.raises(DataError, match=r"random\.npz is not a readable \.npz shard"):
        read_shard(str(shard))


def test_an_output_path_that_is_a_file_is_refused_before_work(tmp_path, vocab300):
    from bort.cli import convert_vocab, create_pretraining_data, download

    existing = tmp_path / "a_file"
    existing.write_text("keep me")
    with pytest.raises(BortError, match="is an existing file"):
        finetune(tiny_config(tmp_path, output_dir=str(existing)))
    with pytest.raises(BortError, match="is an existing file"):
        create_pretraining_data.main(["--input_file", SAMPLE_TEXT, "--output_dir", str(existing), "--vocab",
                                      DEMO_VOCAB])
    with pytest.raises(BortError, match="is an existing file"):
        convert_vocab.main(["--to", "gluonnlp", "--vocab", TINY["vocab"], "--merges", TINY["merges"],
                            "--output_dir", str(existing)])
    with pytest.raises(BortError, match="is an existing file"):
        download.main(["--out", str(existing)])
    assert existing.read_text() == "keep me"
    source = tmp_path / "texts.tsv"
    source.write_text("one text\n", encoding="utf-8")
    # The output check comes first: the parameter file does not even exist.
    with pytest.raises(OutputError, match="is a directory"):
        predict("embed", vocab300, source, tmp_path, params="missing.params")


# ------------------------------------------------------------------------------------- launchers and messages
@pytest.mark.slow
def test_run_finetune_help_prints_help_first_without_warnings():
    result = subprocess.run([os.path.join(REPO_ROOT, "run_finetune.sh"), "--help"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0
    assert result.stdout.startswith("Fine-tune Bort on one task") and "--task_name" in result.stdout
    assert "warning" not in result.stderr.lower() and "not found" not in result.stderr


@pytest.mark.slow
def test_run_agora_help_and_no_arguments_print_usage():
    script = os.path.join(REPO_ROOT, "run_agora.sh")
    helped = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=300)
    assert helped.returncode == 0 and "./run_agora.sh DEMO" in helped.stdout and "--held_out" in helped.stdout
    bare = subprocess.run([script], capture_output=True, text=True, timeout=60)
    assert bare.returncode == 2 and "./run_agora.sh DEMO" in bare.stdout and bare.stderr == ""


def test_outputs_respect_the_umask(tmp_path):
    from bort.io_utils import atomic_directory, atomic_open

    old = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "file.txt") as handle:
            handle.write("x")
        with atomic_directory(tmp_path / "folder"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "file.txt").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "folder").st_mode) == 0o755


def test_error_messages_read_cleanly(tmp_path):
    from bort.inference.backends import make_backend
    from bort.model import get_bort_model
    from bort.params import read_params_file
    from bort.tasks.readers import read_jsonl

    garbage = tmp_path / "garbage.params"
    garbage.write_bytes(np.random.RandomState(1).bytes(300))
    with pytest.raises(ParamsError) as params_error:
        read_params_file(str(garbage))
    assert "Traceback" not in str(params_error.value) and "Invalid NDArray file format" in str(params_error.value)

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "unterminated}\n', encoding="utf-8")
    with pytest.raises(DataError) as json_error:
        list(read_jsonl(str(broken)))
    assert "at at" not in str(json_error.value) and "broken.jsonl:1" in str(json_error.value)

    model, _ = get_bort_model(None, vocab_size=50, num_layers=1, units=16, hidden_size=32, num_heads=2,
                              max_length=16, ctx=mx.cpu())
    with pytest.raises(ConfigError, match="pass --onnx FILE"):
        make_backend("onnxruntime", model, onnx_path=None)


def test_benchmark_quick_is_labelled_a_smoke_check(capsys):
    from bort.benchmarks.inference import print_report
    from bort.cpu_features import describe_cpu

    print_report(dict(quick=True, gemm_gflops={"mxnet": 10.0}, gemm_size=64, threads=1, cpu_count=2,
                      gemm_gflops_per_shape={}, runs=[], output_check={}, unavailable={}, cpu=describe_cpu(),
                      load_average=(0.0, 0.0, 0.0), isolation="inprocess",
                      summary={"goal_1_3x_torch_at_8x128": True}))
    out = capsys.readouterr().out
    assert out.startswith("SMOKE CHECK (--quick)") and "not a measurement" in out and " met" not in out


def test_agora_held_out_needs_a_train_limit(tmp_path):
    from bort.cli import agora

    with pytest.raises(ConfigError, match="--held_out N takes the N training examples after the first"):
        agora.main(["--task_name", "SST", "--data_dir", TINY["data_dir"], "--output_dir", str(tmp_path / "a"),
                    "--held_out", "10"])
