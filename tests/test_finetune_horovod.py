"""Data-parallel fine-tuning with Horovod: 2 CPU ranks over Gloo end with identical weights, equal to one
process trained on the same global batches."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
DEMO = os.path.join(REPO, "data", "demo")

# Settings shared by the 2-rank and the 1-process run; dropout 0 so no random masks differ between them.
SETTINGS = dict(task_name="WNLI", data_dir=os.path.join(DEMO, "glue"), vocab=os.path.join(DEMO, "vocab", "vocab.json"),
                merges=os.path.join(DEMO, "vocab", "merges.txt"), num_layers=1, units=16, hidden_size=32, num_heads=2,
                model_max_length=64, max_len=64, epochs=2, ramp_up_epochs=2, dropout=0.0, init="gaussian", prob=0.02,
                lr=1e-3, dev_batch_size=5, progress=False, seed=7)

WORKER = """
import sys
import mxnet as mx
from bort.finetune.config import FinetuneConfig
from bort.finetune.trainer import finetune
settings = dict({settings!r}, output_dir=sys.argv[1], batch_size=int(sys.argv[2]), distributed=sys.argv[3] == "1")
result = finetune(FinetuneConfig(**settings))
import horovod.mxnet as hvd
rank = hvd.rank() if settings["distributed"] else 0
weights = {{name: p.data() for name, p in result["model"]._collect_params_with_prefix().items()}}
mx.nd.save(sys.argv[1] + "/rank%d.weights" % rank, weights)
print("steps", result["steps"], "best", result["best_score"])
"""


def load(path):
    return {name: value.asnumpy() for name, value in __import__("mxnet").nd.load(path).items()}


def test_two_horovod_ranks_match_each_other_and_a_single_process(tmp_path):
    assert shutil.which("horovodrun", path=BIN), f"horovodrun is not installed in {BIN}"
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER.format(settings=SETTINGS))
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), OMP_NUM_THREADS="1",
               PYTHONPATH=REPO)
    two = tmp_path / "two"
    two.mkdir()
    ran = subprocess.run([os.path.join(BIN, "horovodrun"), "-np", "2", "-H", "localhost:2", "--gloo",
                          sys.executable, str(worker), str(two), "4", "1"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    one = tmp_path / "one"
    one.mkdir()
    single = subprocess.run([sys.executable, str(worker), str(one), "8", "0"], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]

    rank0, rank1 = load(str(two / "rank0.weights")), load(str(two / "rank1.weights"))
    alone = load(str(one / "rank0.weights"))
    assert set(rank0) == set(rank1) == set(alone)
    for name in rank0:
        assert np.array_equal(rank0[name], rank1[name]), name
        assert np.allclose(rank0[name], alone[name], rtol=1e-5, atol=1e-5), \
            f"{name}: max difference {np.abs(rank0[name] - alone[name]).max()}"
    # Both trained 10 updates with non-zero gradients, so the comparison is not between untouched weights.
    assert "steps 10" in ran.stdout and "steps 10" in single.stdout
    records = [json.loads(line) for line in (two / "metrics.jsonl").read_text().splitlines()]
    assert all(r["grad_norm"] > 0 and r["lr"] > 0 for r in records if r["event"] == "train")
    # One writer: only rank 0 wrote the log, checkpoints and predictions.
    assert [r["event"] for r in records].count("start") == 1 and records[0]["world_size"] == 2
    assert (two / "WNLI.tsv").exists() and (two / "model_bort_WNLI.params").exists()
    print("max |2 ranks - 1 process|:", max(np.abs(rank0[n] - alone[n]).max() for n in rank0))
