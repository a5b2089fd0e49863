"""Pretraining: shard creation and format, masking statistics, the distillation loss against numpy and
finite differences, the release's double-softmax loss, batching that uses every sample, exact resume after
SIGKILL, and a 2-worker Horovod run whose workers stay identical."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from bort.errors import ConfigError, DataError
from bort.model import get_bort_model
from bort.params import save_parameters
from bort.pretraining.data import create_pretraining_data
from bort.pretraining.dataset import DataPosition, PretrainingData, restore_tokens
from bort.pretraining.loss import distillation_loss
from bort.pretraining.masking import MaskingPolicy
from bort.pretraining.shards import KEYS, read_shard, write_shard
from bort.pretraining.teacher import load_teacher
from bort.pretraining.trainer import PretrainConfig, pretrain
from bort.tokenizer import BortTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB_DIR = os.path.join(REPO, "data", "demo", "vocab")
SCRIPT = os.path.join(REPO, "scripts", "run_pretraining_distillation.py")
TINY = dict(num_layers=1, num_heads=2, units=32, hidden_size=64, max_length=64)
WORDS = ("river stone light quiet garden market winter letter number silver paper window orange "
         "morning candle harbor").split()


@pytest.fixture(scope="module")
def tokenizer():
    return BortTokenizer.from_directory(VOCAB_DIR)


def _corpus(path, num_docs=6, seed=0):
    """ASCII documents of random sentences: blank lines between documents."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(num_docs):
        sentences = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))).capitalize() + "."
                     for _ in range(int(rng.integers(2, 9)))]
        docs.append(sentences)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n\n".join("\n".join(doc) for doc in docs) + "\n")
    return docs


@pytest.fixture(scope="module")
def shards(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("shards")
    docs = _corpus(str(root / "corpus.txt"), num_docs=12)
    summary = create_pretraining_data([str(root / "corpus.txt")], str(root / "out"), tokenizer, max_seq_length=48,
                                      max_predictions_per_seq=8, dupe_factor=2, seed=7, num_shards=2,
                                      show_progress=False)
    return dict(dir=str(root / "out"), docs=docs, summary=summary,
                paths=sorted(glob.glob(str(root / "out" / "part-*.npz"))))


def _contiguous_in(needle, haystack):
    n = len(needle)
    return any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


# ------------------------------------------------------------------------------------------------ shards
def test_shards_decode_to_the_original_text_except_masked_positions(shards, tokenizer):
    doc_tokens = [[t for line in doc for t in tokenizer.encode(line, add_special_tokens=False)]
                  for doc in shards["docs"]]
    doc_texts = ["".join(doc) for doc in shards["docs"]]
    count = 0
    for path in shards["paths"]:
        shard = read_shard(path)
        for i, ids in enumerate(shard["input_ids"]):
            positions, labels = shard["masked_lm_positions"][i], shard["masked_lm_ids"][i]
            original = restore_tokens(ids, positions, labels).tolist()
            unmasked = np.setdiff1d(np.arange(len(ids)), positions)
            assert tokenizer.mask_id not in ids[unmasked].tolist()
            # <s> A </s></s> B </s>: the RoBERTa layout, specials only there.
            assert original[0] == tokenizer.bos_id and original[-1] == tokenizer.eos_id
            sep = original.index(tokenizer.eos_id)
            assert original[sep + 1] == tokenizer.eos_id
            segment_a, segment_b = original[1:sep], original[sep + 2:-1]
            for segment in (segment_a, segment_b):
                assert segment and not set(segment) & set(tokenizer.special_ids.values())
                assert any(_contiguous_in(segment, tokens) for tokens in doc_tokens)
                assert any(tokenizer.decode(segment) in text for text in doc_texts)
            assert shard["segment_ids"][i].tolist() == [0] * (sep + 2) + [1] * (len(ids) - sep - 2)
            assert shard["valid_lengths"][i] == len(ids) <= 48
            count += 1
    assert count == shards["summary"]["num_instances"] > 20


def test_masking_statistics_follow_15_percent_and_80_10_10():
    special = [0, 1, 2, 3]
    policy = MaskingPolicy(vocab_size=500, mask_id=499, special_ids=special, max_predictions_per_seq=1000)
    rng = np.random.default_rng(0)
    counts = dict(masked=0, candidates=0, mask=0, random=0, kept=0)
    for _ in range(1500):
        tokens = np.concatenate([[0], rng.integers(4, 499, size=int(rng.integers(20, 120))), [2, 2], [1, 1]])
        output, positions, labels = policy.mask(tokens, rng)
        assert np.array_equal(labels, tokens[positions]) and np.all(np.diff(positions) > 0)
        assert not np.isin(tokens[positions], special).any()
        assert len(positions) == round(0.15 * len(tokens))
        counts["masked"] += len(positions)
        counts["candidates"] += int((~np.isin(tokens, special)).sum())
        counts["mask"] += int((output[positions] == 499).sum())
        counts["kept"] += int((output[positions] == labels).sum())
        counts["random"] += int(((output[positions] != 499) & (output[positions] != labels)).sum())
        unchanged = np.setdiff1d(np.arange(len(tokens)), positions)
        assert np.array_equal(output[unchanged], tokens[unchanged])
    share = counts["masked"] / counts["candidates"]
    assert 0.15 < share < 0.19  # 15% of all tokens, the specials excluded from candidates
    assert abs(counts["mask"] / counts["masked"] - 0.8) < 0.015
    assert abs(counts["random"] / counts["masked"] - 0.1) < 0.012
    assert abs(counts["kept"] / counts["masked"] - 0.1) < 0.012


def test_random_replacements_never_draw_special_or_out_of_range_ids(shards, tokenizer):
    policy = MaskingPolicy(vocab_size=8, mask_id=7, special_ids=[0, 1, 2, 3], masked_lm_prob=1.0, mask_prob=0.0,
                           random_prob=1.0)
    rng = np.random.default_rng(1)
    drawn = np.concatenate([policy.mask([0, 4, 5, 6, 4, 5, 2], rng)[0][1:-1] for _ in range(500)])
    assert set(drawn.tolist()) == {4, 5, 6}
    for path in shards["paths"]:
        shard = read_shard(path)
        for key in ("input_ids", "masked_lm_ids"):
            values = np.concatenate(shard[key])
            assert values.min() >= 0 and values.max() < tokenizer.vocab_size
    metadata = json.load(open(os.path.join(shards["dir"], "metadata.json")))
    assert metadata["vocab_size"] == tokenizer.vocab_size and metadata["special_ids"] == tokenizer.special_ids


def test_shards_are_reproducible_whatever_the_number_of_workers(tmp_path, tokenizer):
    _corpus(str(tmp_path / "c.txt"), num_docs=8, seed=3)
    outputs = []
    for workers in (1, 2):
        create_pretraining_data(str(tmp_path / "c.txt"), str(tmp_path / f"w{workers}"), tokenizer, max_seq_length=40,
                                num_workers=workers, seed=5, show_progress=False)
        outputs.append(read_shard(str(tmp_path / f"w{workers}" / "part-000.npz")))
    for key in KEYS:
        assert all(np.array_equal(a, b) for a, b in zip(outputs[0][key], outputs[1][key]))


def test_shards_load_in_either_layout(tmp_path, shards):
    ours = np.load(shards["paths"][0], allow_pickle=True)
    assert sorted(ours.files) == sorted(KEYS)
    for key in ("input_ids", "segment_ids", "masked_lm_positions", "masked_lm_ids"):
        assert ours[key].dtype == object and ours[key].ndim == 1 and ours[key][0].dtype == np.int32
    assert ours["masked_lm_weights"][0].dtype == np.float32
    assert ours["valid_lengths"].dtype == np.int32 and ours["next_sentence_labels"].dtype == np.int32

    # Equal-length samples: always a 1-D object array here; the release wrote a 2-D one.
    rows = [np.arange(5, 11, dtype=np.int32), np.arange(6, 12, dtype=np.int32)]
    samples = dict(input_ids=rows, segment_ids=[np.zeros(6, np.int32)] * 2, masked_lm_positions=[[1, 2], [3, 4]],
                   masked_lm_ids=[[9, 9], [8, 8]], masked_lm_weights=[[1.0, 1.0], [1.0, 1.0]],
                   next_sentence_labels=[0, 1], valid_lengths=[6, 6])
    write_shard(str(tmp_path / "ours.npz"), samples)
    stored = np.load(str(tmp_path / "ours.npz"), allow_pickle=True)
    assert stored["input_ids"].shape == (2,) and stored["input_ids"].dtype == object
    # The release's writer: np.array(list, dtype=object) (2-D for equal lengths), valid_lengths as (N,).
    release = {key: np.array([np.asarray(v, dtype=np.float32 if key == "masked_lm_weights" else np.int32)
                              for v in samples[key]], dtype=object) for key in KEYS[:5]}
    release.update(next_sentence_labels=np.array([0, 1], np.int32), valid_lengths=np.array([6, 6], np.int32))
    assert release["input_ids"].ndim == 2
    np.savez_compressed(str(tmp_path / "release.npz"), **release)
    for name in ("ours.npz", "release.npz"):
        loaded = read_shard(str(tmp_path / name))
        for key in KEYS:
            assert [np.asarray(v).tolist() for v in loaded[key]] == [np.asarray(v).tolist() for v in samples[key]]
        batch, _ = next(PretrainingData([str(tmp_path / name)], batch_size=2, shuffle=False).batches())
        assert batch.input_ids.shape == (2, 6) and batch.masked_ids.tolist() == [[9, 9], [8, 8]]
    with pytest.raises(DataError, match="outside the vocabulary"):
        next(PretrainingData([str(tmp_path / "ours.npz")], batch_size=2, vocab_size=10).batches())


# ------------------------------------------------------------------------------------------------ batching
def _indexed_shards(tmp_path, sizes):
    """Shards whose sample k of shard s carries the id 100*s + k + 10 at position 1 (lengths vary)."""
    paths, rng = [], np.random.default_rng(0)
    for shard, size in enumerate(sizes):
        rows = [np.array([0, 100 * shard + k + 10] + [5] * int(rng.integers(0, 30)) + [2], np.int32)
                for k in range(size)]
        samples = dict(input_ids=rows, segment_ids=[np.zeros(len(r), np.int32) for r in rows],
                       masked_lm_positions=[[1]] * size, masked_lm_ids=[[r[1]] for r in rows],
                       masked_lm_weights=[[1.0]] * size, next_sentence_labels=[0] * size,
                       valid_lengths=[len(r) for r in rows])
        paths.append(write_shard(str(tmp_path / f"s{shard}.npz"), samples))
    return paths


def _seen(data, epochs=1):
    return [int(v) for batch, _ in data.batches(epochs=epochs) for v in batch.input_ids[:, 1]]


@pytest.mark.parametrize("use_avg_len,batch_size", [(False, 3), (True, 60)])
def test_every_batch_of_every_shard_is_used(tmp_path, use_avg_len, batch_size):
    paths = _indexed_shards(tmp_path, [7, 11, 5])
    everything = sorted(100 * s + k + 10 for s, n in enumerate([7, 11, 5]) for k in range(n))
    data = PretrainingData(paths, batch_size, use_avg_len=use_avg_len, num_buckets=3, seed=4)
    assert sorted(_seen(data)) == everything
    if use_avg_len:
        for batch, _ in data.batches(epochs=1):
            assert len(batch.input_ids) == 1 or batch.input_ids.size <= batch_size
    for size, files in ((2, paths), (4, paths[:1])):  # split by file, then by sample (fewer files than workers)
        parts = [_seen(PretrainingData(files, batch_size, use_avg_len, 3, seed=4, rank=r, size=size))
                 for r in range(size)]
        union = sorted(v for part in parts for v in part)
        assert union == sorted(v for v in everything if files is paths or v < 100)


def test_data_position_resumes_the_stream_exactly(tmp_path):
    paths = _indexed_shards(tmp_path, [6, 9])
    data = PretrainingData(paths, 2, num_buckets=2, seed=1)
    stream = [(b.input_ids.tolist(), p) for (b, p), _ in zip(data.batches(), range(25))]
    resumed = [b.input_ids.tolist() for (b, _), _ in zip(data.batches(stream[9][1]), range(15))]
    assert resumed == [ids for ids, _ in stream[10:25]]
    assert stream[-1][1].epoch >= 2  # crossed epochs, with a different order in each
    assert DataPosition.from_list(stream[9][1].to_list()) == stream[9][1]


def test_dynamic_masking_changes_masks_each_epoch_not_tokens(shards, tokenizer):
    policy = MaskingPolicy(tokenizer.vocab_size, tokenizer.mask_id, tokenizer.special_ids.values())
    data = PretrainingData(shards["paths"][:1], 1000, shuffle=False, masking_policy=policy, seed=2)
    epochs = [batch for batch, _ in data.batches(epochs=2)]
    assert len(epochs) == 2
    first, second = epochs
    assert not np.array_equal(first.masked_positions, second.masked_positions)
    for batch in (first, second):
        restored = [restore_tokens(ids, pos[w > 0], lab[w > 0]) for ids, pos, lab, w in
                    zip(batch.input_ids, batch.masked_positions, batch.masked_ids, batch.masked_weights)]
        static = read_shard(shards["paths"][0])
        for row, (ids, pos, lab) in enumerate(zip(static["input_ids"], static["masked_lm_positions"],
                                                  static["masked_lm_ids"])):
            assert restored[row][:len(ids)].tolist() == restore_tokens(ids, pos, lab).tolist()


# ------------------------------------------------------------------------------------------------ loss
def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _numpy_loss(s, t, labels, w, mlm_weight, ce_weight, T, release):
    s, t, labels, w = s.reshape(-1, s.shape[-1]), t.reshape(-1, t.shape[-1]), labels.reshape(-1), w.reshape(-1)
    norm = w.sum() + 1e-8
    ce = -_log_softmax(s)[np.arange(len(labels)), labels]
    mlm = (ce * w).sum() / norm
    p_t = np.exp(_log_softmax(t / T))
    p_s = np.exp(_log_softmax(s / T))
    if release:
        kd = (p_t * (np.log(p_t + 1e-12) - _log_softmax(p_s))).mean(-1)
    else:
        kd = (p_t * (np.log(p_t) - np.log(p_s))).sum(-1)
    kd = T ** 2 * (kd * w).sum() / norm
    return mlm_weight * mlm + ce_weight * kd, mlm, kd


def _example(dtype="float64"):
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(2, 3, 7)) * 2, rng.normal(size=(2, 3, 7)) * 2
    labels = rng.integers(0, 7, size=(2, 3))
    w = np.array([[1, 1, 0], [1, 1, 1]], dtype=np.float64)
    return s, t, labels, w


@pytest.mark.parametrize("release", [False, True])
def test_distillation_loss_equals_a_hand_computed_value(release):
    s, t, labels, w = _example()
    parts = distillation_loss(mx.nd.array(s, dtype="float64"), mx.nd.array(labels, dtype="float64"),
                              mx.nd.array(w, dtype="float64"), mx.nd.array(t, dtype="float64"), 0.1, 0.5, 2.0, release)
    total, mlm, kd = _numpy_loss(s, t, labels, w, 0.1, 0.5, 2.0, release)
    assert parts["loss"].asscalar() == pytest.approx(total, rel=1e-12)
    assert parts["mlm"].asscalar() == pytest.approx(mlm, rel=1e-12)
    assert parts["teacher_ce"].asscalar() == pytest.approx(kd, rel=1e-12)
    assert parts["num_masks"].asscalar() == 5


@pytest.mark.parametrize("release", [False, True])
def test_distillation_gradient_matches_finite_differences(release):
    s, t, labels, w = _example()
    student = mx.nd.array(s, dtype="float64")
    student.attach_grad()
    args = (mx.nd.array(labels, dtype="float64"), mx.nd.array(w, dtype="float64"))
    with mx.autograd.record():
        loss = distillation_loss(student, *args, mx.nd.array(t, dtype="float64"), 0.1, 0.5, 2.0, release)["loss"]
    loss.backward()
    numeric, eps = np.zeros_like(s), 1e-6
    for index in np.ndindex(s.shape):
        plus, minus = s.copy(), s.copy()
        plus[index] += eps
        minus[index] -= eps
        numeric[index] = (_numpy_loss(plus, t, labels, w, 0.1, 0.5, 2.0, release)[0]
                          - _numpy_loss(minus, t, labels, w, 0.1, 0.5, 2.0, release)[0]) / (2 * eps)
    assert np.allclose(student.grad.asnumpy(), numeric, rtol=1e-6, atol=1e-9)
    assert np.abs(numeric[1, 2]).max() > 1e-3 and np.all(numeric[0, 2] == 0)  # weight 0 position: no gradient
    if not release:  # the textbook gradient: (mlm_w (p - onehot) + ce_w T (p_s,T - p_t,T)) w / sum w
        p = np.exp(_log_softmax(s))
        onehot = np.eye(7)[labels]
        expected = (0.1 * (p - onehot) + 0.5 * 2.0 * (np.exp(_log_softmax(s / 2)) - np.exp(_log_softmax(t / 2))))
        assert np.allclose(numeric, expected * w[..., None] / (w.sum() + 1e-8), atol=1e-8)


def test_release_flag_reproduces_the_release_double_softmax_with_gluon_losses():
    s, t, labels, w = _example()
    S, Tt = mx.nd.array(s.reshape(-1, 7)), mx.nd.array(t.reshape(-1, 7))
    W = mx.nd.array(w.reshape(-1, 1))
    # The release's expressions (utils/pretraining_distillation_utils.forward), on MXNet 1.5 where KLDivLoss
    # averaged over the vocabulary; 1.9's KLDivLoss sums, hence the division by V.
    kl = mx.gluon.loss.KLDivLoss(from_logits=False)(mx.nd.softmax(S, temperature=2.0),
                                                    mx.nd.softmax(Tt, temperature=2.0), W) / 7
    mlm = mx.gluon.loss.SoftmaxCELoss()(S, mx.nd.array(labels.reshape(-1)), W)
    num_masks = W.sum() + 1e-8
    release = 0.1 * mlm.sum() / num_masks + 0.5 * 4.0 * kl.sum() / num_masks
    ours = distillation_loss(mx.nd.array(s), mx.nd.array(labels), mx.nd.array(w), mx.nd.array(t), 0.1, 0.5, 2.0, True)
    assert ours["loss"].asscalar() == pytest.approx(release.asscalar(), rel=1e-5)


# ------------------------------------------------------------------------------------------------ teacher
def test_teachers_load_and_refuse_another_vocabulary(tmp_path):
    import gluonnlp

    small = dict(num_layers=1, units=32, hidden_size=64, num_heads=2, max_length=64, embed_size=32)
    roberta, _ = gluonnlp.model.get_model("roberta_12_768_12", vocab=list(range(50)), pretrained=False,
                                          hparam_allow_override=True, **small)
    roberta.initialize(mx.init.Normal(0.02))
    inputs = mx.nd.array([[0, 5, 6, 7, 2]], dtype="int32")
    roberta(inputs, mx.nd.array([5]), mx.nd.array([[1, 2]]))
    roberta.save_parameters(str(tmp_path / "roberta.params"))
    teacher = load_teacher("roberta_12_768_12", str(tmp_path / "roberta.params"), 50, overrides=small)
    logits = teacher(inputs, mx.nd.array([5]), mx.nd.array([[1, 2]], dtype="int32"))
    assert logits.shape == (1, 2, 50)
    assert all(p.grad_req == "null" for p in teacher.block.collect_params().values())
    with pytest.raises(ConfigError, match="vocabulary of 50 tokens"):
        load_teacher("roberta_12_768_12", str(tmp_path / "roberta.params"), 60, overrides=small)
    bort, _ = get_bort_model(None, vocab_size=50, **TINY)
    save_parameters(bort, str(tmp_path / "bort.params"))
    teacher = load_teacher("bort", str(tmp_path / "bort.params"), 50, num_heads=2)
    first = teacher(inputs, mx.nd.array([5]), mx.nd.array([[1, 2]], dtype="int32")).asnumpy()
    second = teacher(inputs, mx.nd.array([5]), mx.nd.array([[1, 2]], dtype="int32")).asnumpy()
    assert np.array_equal(first, second)  # inference mode: no dropout
    with pytest.raises(ConfigError, match="same vocabulary"):
        load_teacher("bort", str(tmp_path / "bort.params"), 51, num_heads=2)


# ------------------------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory, tokenizer):
    path = str(tmp_path_factory.mktemp("teacher") / "teacher.params")
    mx.random.seed(3)
    teacher, _ = get_bort_model(None, vocab_size=tokenizer.vocab_size, **TINY)
    save_parameters(teacher, path)
    return path


def test_student_mlm_loss_falls_on_a_tiny_corpus(tmp_path, shards, teacher_file):
    cfg = PretrainConfig(train_files=shards["paths"], eval_files=shards["paths"][:1], ckpt_dir=str(tmp_path / "run"),
                         model=None, model_overrides=dict(TINY, dropout=0.0, embed_dropout=0.0), teacher_model="bort",
                         teacher_params=teacher_file, teacher_num_heads=2, num_steps=40, batch_size=16, lr=3e-3,
                         warmup_ratio=0.1, log_interval=10, ckpt_interval=100, progress=False)
    summary = pretrain(cfg)
    log = [json.loads(line) for line in open(tmp_path / "run" / "train_log.jsonl")]
    train = [r for r in log if "mlm_loss" in r]
    losses = [r["mlm_loss"] for r in train]
    assert losses[-1] < losses[0] - 0.5 and max(losses[1:]) < losses[0], losses
    assert all(np.isfinite(r["teacher_ce"]) and r["teacher_ce"] > 0 for r in train)
    assert summary["last_eval"]["eval_mlm_loss"] < losses[0] - 0.5
    assert os.path.isdir(summary["checkpoint"])


def _run_args(shards, teacher_file, ckpt_dir, extra=()):
    return [sys.executable, SCRIPT, "--data", ",".join(shards["paths"]), "--model", "custom", "--num_layers", "1",
            "--num_heads", "2", "--units", "32", "--hidden_size", "64", "--max_length", "64",
            "--teacher_model", "bort", "--teacher_params", teacher_file, "--teacher_num_heads", "2",
            "--num_steps", "40", "--batch_size", "4", "--accumulate", "2", "--lr", "1e-3", "--log_interval", "5",
            "--ckpt_interval", "5", "--progress", "false", "--ckpt_dir", ckpt_dir, *extra]


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO)


def _final_params(ckpt_dir):
    return mx.nd.load(os.path.join(ckpt_dir, "checkpoint-00000040", "model.params"))


@pytest.mark.slow
def test_run_killed_between_checkpoints_resumes_to_identical_weights(tmp_path, shards, teacher_file):
    straight = str(tmp_path / "straight")
    subprocess.run(_run_args(shards, teacher_file, straight), check=True, env=_env(), capture_output=True)

    killed = str(tmp_path / "killed")
    process = subprocess.Popen(_run_args(shards, teacher_file, killed), env=_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not glob.glob(os.path.join(killed, "checkpoint-0000001[05]")) and time.time() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    steps = sorted(int(p.rsplit("-", 1)[1]) for p in glob.glob(os.path.join(killed, "checkpoint-*")))
    assert steps and steps[-1] < 40
    subprocess.run(_run_args(shards, teacher_file, killed, ["--resume", "true"]), check=True, env=_env(),
                   capture_output=True)
    events = [json.loads(line) for line in open(os.path.join(killed, "train_log.jsonl"))]
    assert any(e.get("event") == "resumed" and e["step"] == steps[-1] for e in events)
    expected, resumed = _final_params(straight), _final_params(killed)
    assert sorted(expected) == sorted(resumed)
    for name in expected:
        assert np.array_equal(expected[name].asnumpy(), resumed[name].asnumpy()), name


def test_two_horovod_workers_stay_identical(tmp_path, shards, teacher_file):
    horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    ckpt = str(tmp_path / "hvd")
    args = _run_args(shards, teacher_file, ckpt, ["--horovod", "true", "--rank_digests", "true", "--num_steps", "6",
                                                   "--data_eval", shards["paths"][0]])
    env = _env()
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    result = subprocess.run([horovodrun, "-np", "2", "-H", "localhost:2", "--gloo", *args], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    digests = [open(os.path.join(ckpt, "rank_digests", f"rank-{r}.sha256")).read() for r in (0, 1)]
    assert digests[0] == digests[1]
    state = json.load(open(os.path.join(ckpt, "checkpoint-00000006", "state.json")))
    assert state["num_workers"] == 2 and len(state["data_positions"]) == 2
    assert any(e.get("eval_num_masks") for e in map(json.loads, open(os.path.join(ckpt, "train_log.jsonl"))))


def test_dynamic_loss_scaler_skips_overflowing_steps_and_resumes_its_state(tmp_path, shards, teacher_file):
    from bort.pretraining.loss_scaler import DynamicLossScaler

    scaler = DynamicLossScaler(init_scale=8.0, window=2)
    assert scaler.update(True) and scaler.scale == 4.0
    assert not scaler.update(False) and not scaler.update(False) and scaler.scale == 8.0
    copy = DynamicLossScaler()
    copy.load_state_dict(scaler.state_dict())
    assert copy.state_dict() == scaler.state_dict() == dict(scale=8.0, clean_steps=0, skipped_steps=1)
    # The scaled path in float32 (float16 itself needs a GPU): a scale so large the gradient overflows is halved
    # step by step, those steps change nothing, then training proceeds with unscaled gradients.
    cfg = PretrainConfig(train_files=shards["paths"], ckpt_dir=str(tmp_path / "run"), model=None, model_overrides=TINY,
                         teacher_model="bort", teacher_params=teacher_file, teacher_num_heads=2, num_steps=8,
                         batch_size=8, log_interval=1, ckpt_interval=8, progress=False, dynamic_loss_scale=True,
                         init_loss_scale=2.0 ** 131, loss_scale_window=1000)
    summary = pretrain(cfg)
    log = [json.loads(line) for line in open(tmp_path / "run" / "train_log.jsonl") if '"lr"' in line]
    skipped = [r["skipped_steps"] for r in log]
    assert skipped[0] >= 1 and skipped[-1] < 8 and log[-1]["loss_scale"] < 2.0 ** 131
    assert np.isfinite(log[-1]["grad_norm"])
    state = json.load(open(os.path.join(summary["checkpoint"], "state.json")))
    assert state["loss_scaler"]["scale"] == log[-1]["loss_scale"]
