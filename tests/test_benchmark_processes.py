"""Benchmarks in fresh processes: the environment a worker gets, and `benchmark.py train --quick` end to end
(what runs is checked, never how fast)."""
import json
import os
import subprocess
import sys

from bort.benchmarks.isolated import user_environment
from bort.threads import AUTO_MARK

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_workers_get_the_users_environment_not_the_packages_choices():
    environ = {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "4", "PATH": "/bin",
               AUTO_MARK: "OMP_NUM_THREADS=2;OPENBLAS_NUM_THREADS=1"}
    # OMP_NUM_THREADS=2 was the package's choice: removed; OPENBLAS_NUM_THREADS=4 differs from it: the user's.
    assert user_environment(environ) == {"OPENBLAS_NUM_THREADS": "4", "PATH": "/bin"}


def test_train_benchmark_quick_runs_every_worker(tmp_path):
    out = tmp_path / "train.json"
    completed = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "benchmark.py"), "train", "--quick",
                                "--output", str(out)], capture_output=True, text=True, cwd=str(tmp_path), timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert set(result["seconds"]) == {"finetune/mxnet", "finetune/torch", "pretrain/mxnet", "pretrain/torch"}
    assert all(entry["best"] > 0 for entry in result["seconds"].values())
    assert result["finetune_speedup_vs_torch"] > 0 and result["pretrain_speedup_vs_torch"] > 0
    assert result["quick"] and result["cpu"]["isa"] in completed.stdout
