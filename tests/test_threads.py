"""bort.threads: the thread pools a process gets when it imports the package (checked in fresh subprocesses,
through threadpoolctl and the environment, never by timing)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bort.cpu_features import read_cpuinfo
from bort.errors import ConfigError
from bort.mxnet_runtime import PRE_AVX2_CORES
from bort.threads import AUTO_MARK, configure_threads, plan_threads, usable_cores

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MXNET_OMP_MAX_THREADS", "MKL_NUM_THREADS", AUTO_MARK,
                    "HOROVOD_LOCAL_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "MV2_COMM_WORLD_LOCAL_SIZE")
# Reports the pools of a process after the given imports: MXNet's OpenMP runtime (libgomp, the size MXNet set
# for its team), MXNet's OpenMP-built OpenBLAS, and numpy's/scipy's pthreads OpenBLAS builds.
REPORT = """
import json, os
{imports}
import mxnet
from threadpoolctl import threadpool_info
from bort.mxnet_runtime import openblas_core, worker_team_sizes
from bort.threads import usable_cores
pools = [dict(file=os.path.basename(p["filepath"]), api=p["internal_api"], layer=p.get("threading_layer"),
              threads=p["num_threads"]) for p in threadpool_info()]
print(json.dumps(dict(cores=usable_cores(), pools=pools, omp=os.environ.get("OMP_NUM_THREADS"),
                      workers=worker_team_sizes(), blas_core=openblas_core(),
                      coretype=os.environ.get("OPENBLAS_CORETYPE"))))
"""


def _pools_after(imports, **variables):
    """Pools of a fresh process that runs `imports`, started with no thread variables but `variables`."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(variables, PYTHONPATH=REPO_ROOT)
    completed = subprocess.run([sys.executable, "-c", REPORT.format(imports=imports)], env=env, cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    openmp = [p["threads"] for p in report["pools"] if p["api"] == "openmp"]
    pthreads_blas = [p["threads"] for p in report["pools"] if p["api"] == "openblas" and p["layer"] == "pthreads"]
    mxnet_blas = [p["threads"] for p in report["pools"] if p["file"] == "libopenblas.so.0"]
    assert openmp and pthreads_blas and mxnet_blas, report  # numpy's OpenBLAS, MXNet's and libgomp are all seen
    return report, openmp, pthreads_blas, mxnet_blas


def test_library_import_gives_mxnet_every_core_and_blas_pthreads_one():
    report, openmp, pthreads_blas, mxnet_blas = _pools_after("from bort.model import get_bort_model")
    cores = report["cores"]
    # Without the package's set-up MXNet keeps half the cores (it assumes hyper-threads): 1 of 2 here.
    assert openmp == [cores] * len(openmp)
    assert mxnet_blas == [cores]  # MXNet's OpenBLAS runs on the OpenMP team, not a pool of its own
    assert pthreads_blas == [1] * len(pthreads_blas)


def _assert_mxnet_tuned(report):
    # The team an operator gets on MXNet's worker thread, and MXNet's OpenBLAS kernels: AVX2 ones wherever the
    # CPU has AVX2 and FMA (OpenBLAS 0.3.13 falls back to SSE3 "Prescott" kernels on CPUs it does not know).
    assert report["workers"] == [report["cores"]]
    flags = read_cpuinfo()[1]
    if {"avx2", "fma"} <= flags:
        assert report["blas_core"].lower() not in PRE_AVX2_CORES, report
    assert report["coretype"] is None  # the variable was set only for MXNet's OpenBLAS, then taken away


def test_library_import_tunes_the_mxnet_loaded_after_it():
    report, *_ = _pools_after("import bort")
    _assert_mxnet_tuned(report)


@pytest.mark.parametrize("imports", ["import mxnet\nimport bort",
                                     "import mxnet\nmxnet.nd.ones((2, 2)).asnumpy()\nimport bort"])
def test_mxnet_imported_before_bort_gets_every_core(imports):
    # Without bort.mxnet_runtime MXNet keeps the half of the cores it chose when it loaded (1 of 2 here), even
    # when its worker thread already ran an operator before bort was imported.
    report, openmp, _, mxnet_blas = _pools_after(imports)
    _assert_mxnet_tuned(report)
    assert openmp == [report["cores"]] * len(openmp) and mxnet_blas == [report["cores"]]


def test_numpy_loaded_first_is_limited_after_the_fact():
    report, openmp, pthreads_blas, _ = _pools_after("import numpy\nimport scipy.linalg\nimport bort")
    assert pthreads_blas == [1] * len(pthreads_blas)
    assert openmp == [report["cores"]] * len(openmp)


def test_a_users_variables_win():
    report, openmp, pthreads_blas, mxnet_blas = _pools_after("import bort", OMP_NUM_THREADS="1",
                                                             OPENBLAS_NUM_THREADS="2")
    assert openmp == [1] * len(openmp) and mxnet_blas == [1] and report["workers"] == [1]
    assert pthreads_blas == [2] * len(pthreads_blas)


def test_horovod_ranks_share_the_cores():
    report, openmp, _, _ = _pools_after("import bort", HOROVOD_LOCAL_SIZE="2")
    expected = max(1, report["cores"] // 2)
    assert report["omp"] == str(expected) and openmp == [expected] * len(openmp)


def test_console_commands_set_threads_before_main(tmp_path):
    """run_main (every console command and script) sizes the pools before the command imports MXNet; a value
    inherited from a parent that bort configured is recomputed, not mistaken for the user's."""
    program = ("import json, os\nfrom bort.cli.common import run_main\n"
               "def main(argv):\n    import mxnet\n    from bort.threads import pool_sizes\n"
               "    print(json.dumps(dict(omp=os.environ['OMP_NUM_THREADS'], pools=pool_sizes())))\n"
               "run_main(main)\n")
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    # As if a parent configured for 2 ranks had exported its choice: this process is a single rank again.
    env.update(PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               **{AUTO_MARK: "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1"})
    completed = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["omp"] == str(usable_cores())
    assert report["pools"]["libgomp.so.1.0.0"] == usable_cores()


@pytest.mark.parametrize("environ, cores, threads, omp, source, expected", [
    ({}, 8, None, 8, "bort", {"OMP_NUM_THREADS": "8", "OPENBLAS_NUM_THREADS": "1"}),
    ({"HOROVOD_LOCAL_SIZE": "4"}, 8, None, 2, "bort", {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1"}),
    ({"OMPI_COMM_WORLD_LOCAL_SIZE": "16"}, 8, None, 1, "bort", {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}),
    ({"OMP_NUM_THREADS": "3"}, 8, None, 3, "user", {"OPENBLAS_NUM_THREADS": "1"}),
    ({"OMP_NUM_THREADS": "4,2"}, 8, None, 4, "user", {"OPENBLAS_NUM_THREADS": "1"}),
    ({"MXNET_OMP_MAX_THREADS": "2"}, 8, None, 2, "user", {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1"}),
    ({"OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "4"}, 8, 5, 5, "user",
     {"OMP_NUM_THREADS": "5", "MXNET_OMP_MAX_THREADS": "5"}),
    ({"OMP_NUM_THREADS": "4", AUTO_MARK: "OMP_NUM_THREADS=4"}, 2, None, 2, "bort",
     {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1"}),
])
def test_plan_threads(environ, cores, threads, omp, source, expected):
    wanted, _, got_omp, got_source = plan_threads(environ, cores, threads)
    assert (wanted, got_omp, got_source) == (expected, omp, source)


def test_configure_threads_marks_only_its_own_choices_and_rejects_zero():
    environ = {"OMP_NUM_THREADS": "3"}
    setup = configure_threads(environ=environ)
    assert setup.source == "user" and setup.omp_threads == 3
    assert environ[AUTO_MARK] == "OPENBLAS_NUM_THREADS=1" and environ["OMP_NUM_THREADS"] == "3"
    with pytest.raises(ConfigError, match="--threads must be at least 1"):
        configure_threads(0, environ={})


def test_usable_cores_honours_a_cgroup_quota(tmp_path):
    quota = tmp_path / "cpu.max"
    quota.write_text("50000 100000\n")
    assert usable_cores(str(quota)) == 1  # half a CPU still gets one thread
    quota.write_text("max 100000\n")
    assert usable_cores(str(quota)) == len(os.sched_getaffinity(0))


FINETUNE = """
import sys
import numpy as np
from bort.finetune.config import FinetuneConfig
from bort.finetune.trainer import finetune
demo = "{demo}"
config = FinetuneConfig(vocab=demo + "/vocab/vocab.json", merges=demo + "/vocab/merges.txt", task_name="WNLI",
                        data_dir=demo + "/glue", num_layers=2, units=64, hidden_size=128, num_heads=4,
                        model_max_length=128, max_len=96, batch_size=8, dev_batch_size=16, epochs=1,
                        ramp_up_epochs=1, progress=False, init="gaussian", prob=0.02, lr=1e-3, dropout=0.1,
                        predict=False, output_dir=sys.argv[1])
model = finetune(config)["model"]
np.savez(sys.argv[2], **{{name: p.data().asnumpy() for name, p in model._collect_params_with_prefix().items()}})
"""


def test_finetuning_weights_do_not_depend_on_the_thread_setup(tmp_path):
    """The package now gives MXNet every core where it used to keep half: same seed, same weights (to float
    tolerance) with one OpenMP thread as with the default set-up."""
    program = FINETUNE.format(demo=os.path.join(REPO_ROOT, "data", "demo"))
    weights = []
    for name, variables in (("one", {"OMP_NUM_THREADS": "1"}), ("default", {})):
        env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
        env.update(variables, PYTHONPATH=REPO_ROOT)
        out = tmp_path / f"{name}.npz"
        completed = subprocess.run([sys.executable, "-c", program, str(tmp_path / name), str(out)], env=env,
                                   capture_output=True, text=True, timeout=600)
        assert completed.returncode == 0, completed.stderr[-3000:]
        weights.append(dict(np.load(out)))
    one, default = weights
    assert one.keys() == default.keys() and len(one) > 10
    for name in one:
        np.testing.assert_allclose(default[name], one[name], rtol=1e-4, atol=1e-5, err_msg=name)
    # the run trained: the head moved away from its initialisation scale
    assert any(np.abs(value).max() > 0.1 for value in one.values())
