"""GPU support that can be checked without a GPU: the CUDA library loader (on real tiny shared libraries built
here with gcc, laid out like the nvidia-*-cu11 wheels), the ELF reader, the GPU/wheel decision table, and the
check_gpu command on a machine whose GPUs are hidden."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from bort.errors import GpuError
from bort.gpu import cuda_libs
from bort.gpu.cuda_libs import (
    cuda_mxnet_distribution,
    index_libraries,
    load_in_order,
    missing_message,
    nvidia_lib_dirs,
    plan_loads,
)
from bort.gpu.devices import GpuInfo, GpuQuery, apply_visible_devices, parse_nvidia_smi_csv
from bort.gpu.elf import NotElfError, read_dynamic
from bort.gpu.preflight import build_report, compatible_kernel, decide, installed_mxnet, parse_version

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_library(directory, soname, needs=(), body="", filename=None):
    """Compile a real shared library named `soname` that links against the SONAMEs `needs` (found in the same
    site tree only through -L at link time, never at run time)."""
    os.makedirs(directory, exist_ok=True)
    stem = cuda_libs.library_stem(soname)
    source = os.path.join(directory, stem + ".c")
    with open(source, "w") as handle:
        handle.write(body or f"int {stem[3:]}_answer(void) {{ return {len(stem)}; }}\n")
    path = os.path.join(directory, filename or soname)
    # linked by full path: DT_NEEDED records each SONAME (of a library whose symbols are used), and no -rpath
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", path, source, f"-Wl,-soname,{soname}", *needs], check=True)
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A fake site-packages with CUDA-like wheels: cublas needs cublasLt (another file of the same wheel),
    cuDNN's cnn sub-library needs its ops sub-library, and a fake libmxnet.so needs runtime, cublas and cuDNN."""
    root = tmp_path_factory.mktemp("site")
    sp = root / "site-packages"
    runtime = build_library(str(sp / "nvidia" / "cuda_runtime" / "lib"), "libcudart.so.11.0")
    cublas_lt = build_library(str(sp / "nvidia" / "cublas" / "lib"), "libcublasLt.so.11")
    cublas = build_library(str(sp / "nvidia" / "cublas" / "lib"), "libcublas.so.11", [cublas_lt],
                           "int cublasLt_answer(void);\nint cublas_answer(void) { return 100 + cublasLt_answer(); }\n")
    ops = build_library(str(sp / "nvidia" / "cudnn" / "lib"), "libcudnn_ops_infer.so.8")
    build_library(str(sp / "nvidia" / "cudnn" / "lib"), "libcudnn_cnn_infer.so.8", [ops],
                  "int cudnn_ops_infer_answer(void);\nint cnn(void) { return cudnn_ops_infer_answer(); }\n")
    cudnn = build_library(str(sp / "nvidia" / "cudnn" / "lib"), "libcudnn.so.8")
    mxnet_dir = root / "mxnet"
    libmxnet = build_library(str(mxnet_dir), "libmxnet.so", [runtime, cublas, cudnn],
                             "int cudart_answer(void); int cublas_answer(void); int cudnn_answer(void);\n"
                             "int mx_answer(void) { return cudart_answer() + cublas_answer() + cudnn_answer(); }\n")
    return {"sp": str(sp), "libmxnet": libmxnet}


def test_elf_reader_reads_soname_and_needed(site):
    info = read_dynamic(site["libmxnet"])
    assert info.soname == "libmxnet.so"
    assert {"libcudart.so.11.0", "libcublas.so.11", "libcudnn.so.8"} <= set(info.needed)
    assert read_dynamic(os.path.join(site["sp"], "nvidia", "cublas", "lib", "libcublas.so.11")).needed[0] == \
        "libcublasLt.so.11"


def test_elf_reader_rejects_other_files(tmp_path):
    text = tmp_path / "libfake.so.1"
    text.write_text("INPUT(-lfoo)\n")  # a linker script, as some distributions ship
    with pytest.raises(NotElfError):
        read_dynamic(str(text))


def test_finds_wheel_folders_and_indexes_by_soname(site, tmp_path):
    dirs = nvidia_lib_dirs([str(tmp_path), site["sp"], site["sp"]])
    assert [os.path.basename(os.path.dirname(d)) for d in dirs] == ["cublas", "cuda_runtime", "cudnn"]
    index = index_libraries(dirs)
    assert set(index) == {"libcudart.so.11.0", "libcublasLt.so.11", "libcublas.so.11", "libcudnn.so.8",
                          "libcudnn_ops_infer.so.8", "libcudnn_cnn_infer.so.8"}
    # a copy under another file name is indexed by its SONAME, and the first folder wins
    other = build_library(str(tmp_path / "nvidia" / "cuda_runtime" / "lib"), "libcudart.so.11.0",
                          filename="libcudart-copy.so")
    assert index_libraries(nvidia_lib_dirs([str(tmp_path), site["sp"]]))["libcudart.so.11.0"][0] == other


def test_plan_puts_dependencies_first_and_adds_runtime_opened_libraries(site):
    index = index_libraries(nvidia_lib_dirs([site["sp"]]))
    required = read_dynamic(site["libmxnet"]).needed
    plan = plan_loads(required, index, system_has=lambda soname: False)
    names = [os.path.basename(p) for p in plan.paths]
    assert names.index("libcublasLt.so.11") < names.index("libcublas.so.11")
    assert names.index("libcudnn_ops_infer.so.8") < names.index("libcudnn_cnn_infer.so.8")
    assert set(names) == set(index)  # cuDNN's dlopened sub-libraries ride along with libcudnn.so.8
    assert not plan.missing and not plan.needs_driver  # libc.so.6 is the system's business


def test_plan_names_missing_libraries_and_driver(site):
    index = index_libraries(nvidia_lib_dirs([site["sp"]]))
    required = ("libcuda.so.1", "libcudart.so.11.0", "libnccl.so.2", "libcusparse.so.11", "libgomp.so.1")
    plan = plan_loads(required, index, system_has=lambda soname: soname == "libcusparse.so.11")
    assert plan.missing == {"libnccl.so.2": "nvidia-nccl-cu11>=2,<3"}
    assert plan.needs_driver
    message = missing_message(plan, "mxnet-cu117==1.9.1")
    assert "libnccl.so.2" in message and "pip install 'nvidia-nccl-cu11>=2,<3'" in message
    assert "BORT_CUDA=cu117 scripts/setup_env.sh" in message
    assert "libcuda.so.1" in message and "pip install mxnet==1.9.1" in message
    with_driver = plan_loads(("libcuda.so.1",), index, system_has=lambda soname: True)
    assert missing_message(with_driver, "mxnet-cu117==1.9.1") is None


LOAD_SCRIPT = textwrap.dedent("""
    import ctypes, json, sys
    from bort.gpu.cuda_libs import index_libraries, load_in_order, nvidia_lib_dirs, plan_loads
    from bort.gpu.elf import read_dynamic
    site, libmxnet, preload = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    result = {}
    if preload:
        plan = plan_loads(read_dynamic(libmxnet).needed, index_libraries(nvidia_lib_dirs([site])), lambda s: False)
        load_in_order(plan.paths)
    try:
        result["answer"] = ctypes.CDLL(libmxnet).mx_answer()
    except OSError as err:
        result["error"] = str(err)
    print(json.dumps(result))
""")


@pytest.mark.parametrize("preload", [False, True])
def test_loading_in_plan_order_makes_libmxnet_loadable_without_ld_library_path(site, preload):
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    env["PYTHONPATH"] = ROOT
    run = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, site["sp"], site["libmxnet"], "1" if preload else "0"],
                         capture_output=True, text=True, env=env, check=True)
    result = json.loads(run.stdout)
    if preload:
        assert result == {"answer": len("libcudart") + 100 + len("libcublasLt") + len("libcudnn")}
    else:  # the dynamic loader alone does not look in site-packages/nvidia/*/lib
        assert "cannot open shared object file" in result["error"]


def test_load_error_names_the_file(tmp_path):
    broken = tmp_path / "libcudnn.so.8"
    broken.write_bytes(b"\x7fELF not really")
    with pytest.raises(GpuError, match=r"libcudnn\.so\.8.*setup_env\.sh"):
        load_in_order([str(broken)])


def test_cuda_wheel_detection():
    assert cuda_mxnet_distribution([("numpy", "1.23.5"), ("mxnet", "1.9.1")]) is None
    assert cuda_mxnet_distribution([("mxnet-cu117", "1.9.1")]) == ("mxnet-cu117", "1.9.1")
    assert cuda_mxnet_distribution([("MXNet_CU112", "1.9.1")]) == ("mxnet-cu112", "1.9.1")
    assert cuda_mxnet_distribution([("mxnet-cu117mkl", "1.6.0")]) == ("mxnet-cu117mkl", "1.6.0")
    assert installed_mxnet(["numpy", "mxnet"]) == "mxnet"
    assert installed_mxnet(["mxnet-cu117", "numpy"]) == "mxnet-cu117"
    assert installed_mxnet(["numpy"]) is None


def test_prepare_is_a_no_op_with_the_cpu_wheel():
    # this environment has the CPU build of MXNet (the project's tests run on it)
    assert cuda_mxnet_distribution() is None
    assert cuda_libs.prepare_cuda_libraries() is None


# (compute capability, examples, runs, how, kernel the GPU runs)
ARCHITECTURES = [
    ((3, 7), "K80", False, "cannot", None),
    ((5, 0), "GTX 750 Ti", True, "native", 50),
    ((5, 2), "M60, GTX 980", True, "compatible", 50),
    ((6, 0), "P100", True, "native", 60),
    ((6, 1), "P40, GTX 1080", True, "compatible", 60),
    ((7, 0), "V100", True, "native", 70),
    ((7, 5), "T4, RTX 20xx", True, "compatible", 70),
    ((8, 0), "A100, A30", True, "native", 80),
    ((8, 6), "A10, RTX 30xx", True, "native", 86),
    ((8, 9), "L4, L40, RTX 40xx", True, "compatible", 86),
    ((9, 0), "H100, H200", False, "cannot", None),
    ((10, 0), "B200", False, "cannot", None),
    ((12, 0), "RTX 50xx", False, "cannot", None),
]


@pytest.mark.parametrize("capability,examples,runs,how,kernel", ARCHITECTURES)
def test_decision_table_every_architecture(capability, examples, runs, how, kernel):
    for wheel in ("mxnet-cu117", "mxnet-cu112"):
        verdict = decide(capability, wheel, nvrtc=(11, 8), gpu_name=examples)
        assert (verdict.runs, verdict.how, verdict.kernel_arch) == (runs, how, kernel)
        assert f"sm_{capability[0]}{capability[1]}" in verdict.message
        assert verdict.environment == {}  # NVRTC 11.8 knows every architecture the wheels can run


def test_hopper_and_blackwell_messages_give_the_options():
    hopper = decide((9, 0), "mxnet-cu117", (11, 8), "H100").message
    assert "cannot run any PyPI MXNet 1.9.1 build" in hopper and "no kernel image" in hopper
    assert "MXNET_CUDA_ARCH including 9.0 on CUDA >= 11.8" in hopper
    assert "run on CPU" in hopper and "Hugging Face" in hopper
    blackwell = decide((12, 0), "mxnet-cu117", (11, 8), "RTX 5090").message
    assert "CUDA >= 12.8" in blackwell and "Hugging Face" in blackwell


@pytest.mark.parametrize("nvrtc,fusion_off", [(None, True), ((11, 7), True), ((11, 8), False), ((12, 4), False)])
def test_ada_turns_fusion_off_unless_nvrtc_knows_sm89(nvrtc, fusion_off):
    verdict = decide((8, 9), "mxnet-cu117", nvrtc, "L4")
    assert verdict.runs and verdict.kernel_arch == 86
    assert (verdict.environment == {"MXNET_USE_FUSION": "0"}) == fusion_off
    assert ("MXNET_USE_FUSION=0" in verdict.message) == fusion_off
    # the older architectures never need it, whatever the NVRTC
    assert decide((8, 6), "mxnet-cu117", None).environment == {}


def test_wheel_rows():
    cpu = decide((8, 0), "mxnet", None, "A100")
    assert not cpu.runs and cpu.how == "cpu-wheel" and "CPU build" in cpu.message and "BORT_CUDA=cu117" in cpu.message
    assert decide((8, 0), None, None).how == "cpu-wheel"
    unknown = decide((8, 0), "mxnet-cu102", None)
    assert not unknown.runs and unknown.how == "unknown-wheel" and "mxnet-cu117" in unknown.message
    assert compatible_kernel((7, 5), (50, 60, 70, 80, 86)) == 70
    assert compatible_kernel((9, 0), (50, 60, 70, 80, 86)) is None


def test_nvidia_smi_parsing_and_visible_devices():
    text = "0, NVIDIA H100 80GB HBM3, 9.0\n1, NVIDIA A100-SXM4-40GB, 8.0\n\n2, Tesla T4, 7.5\n"
    gpus = parse_nvidia_smi_csv(text)
    assert gpus[0] == GpuInfo(0, "NVIDIA H100 80GB HBM3", (9, 0)) and gpus[2].sm == "sm_75"
    with pytest.raises(ValueError, match="line 1"):
        parse_nvidia_smi_csv("0, Tesla T4, [N/A]\n")  # drivers too old for compute_cap
    seen = apply_visible_devices(gpus, "2,1")
    assert [(g.index, g.name) for g in seen] == [(0, "Tesla T4"), (1, "NVIDIA A100-SXM4-40GB")]
    assert apply_visible_devices(gpus, "") == []
    assert apply_visible_devices(gpus, "GPU-8a1b2c3d") == []
    assert apply_visible_devices(gpus, None) == gpus


def test_report_checks_the_gpus_asked_for():
    query = GpuQuery((GpuInfo(0, "NVIDIA H100", (9, 0)), GpuInfo(1, "NVIDIA A100", (8, 0))), "driver")
    everything = build_report(query, "mxnet-cu117", (11, 8))
    assert not everything.ok and any(line.startswith("CANNOT RUN: GPU 0 NVIDIA H100") for line in everything.lines)
    assert build_report(query, "mxnet-cu117", (11, 8), wanted=[1]).ok
    assert not build_report(query, "mxnet-cu117", (11, 8), wanted=[3]).ok
    too_few = build_report(query, "mxnet-cu117", (11, 8), wanted=[0, 1, 2], count=3)
    assert not too_few.ok and any("3 GPUs were asked for" in line for line in too_few.lines)
    ada = build_report(GpuQuery((GpuInfo(0, "NVIDIA L4", (8, 9)),), "nvidia-smi"), "mxnet-cu117", (11, 7))
    assert ada.ok and ada.environment == {"MXNET_USE_FUSION": "0"}
    none = build_report(GpuQuery((), None, "nvidia-smi not found"), "mxnet-cu117", None)
    assert none.no_gpu and not none.ok and "nvidia-smi not found" in none.lines[1]
    assert parse_version("11.8.89") == (11, 8) and parse_version("") is None


def run_check_gpu(*flags):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")  # hide any GPU, so the no-GPU path runs on every machine
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "check_gpu.py"), *flags],
                          capture_output=True, text=True, env=env, timeout=120)


def test_check_gpu_without_a_gpu():
    plain = run_check_gpu()
    assert plain.returncode == 1 and "no NVIDIA GPU is visible" in plain.stdout
    assert plain.stdout.startswith("MXNet: mxnet;")
    assert run_check_gpu("--allow-cpu").returncode == 0
    auto = run_check_gpu("--if-available", "--count", "2")
    assert auto.returncode == 0 and "runs on CPU" in auto.stdout
    bad = run_check_gpu("--gpus", "x")
    assert bad.returncode == 2 and "--gpus" in bad.stderr


def test_require_usable_gpu_stops_before_work(monkeypatch):
    from bort.gpu.preflight import require_usable_gpu

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(GpuError, match="no NVIDIA GPU is visible"):
        require_usable_gpu(0)


def test_device_asked_for_by_a_commands_flags():
    from bort.cli.check_gpu import device_from_flags

    assert device_from_flags(["--task_name", "RTE"]) == "auto"
    assert device_from_flags(["--gpu", "1", "--epochs", "2"]) == 1
    assert device_from_flags(["--gpu", "0", "--gpu=cpu"]) == "cpu"  # the last one wins, as in argparse
    assert device_from_flags(["--gpu", "999"]) == "cpu"  # the release's spelling of CPU
    assert device_from_flags(["--dtype", "float16", "--device", "gpu"]) == "gpu"
    assert device_from_flags(["--device", "cpu", "--gpu"]) == "cpu"  # a flag without a value changes nothing
    hidden = run_check_gpu("--count", "2", "--flags", "--task_name", "RTE", "--gpu", "0")
    assert hidden.returncode == 1 and "no NVIDIA GPU is visible" in hidden.stdout
    quiet = run_check_gpu("--flags", "--gpu", "cpu")
    assert quiet.returncode == 0 and quiet.stdout == ""


@pytest.mark.parametrize("launcher", ["run_finetune.sh", "run_pretrain.sh", "run_agora.sh", "run_extract.sh"])
def test_launchers_run_the_preflight_before_starting_work(launcher):
    with open(os.path.join(ROOT, launcher)) as handle:
        lines = [line.strip() for line in handle]
    check = next(i for i, line in enumerate(lines) if "scripts/check_gpu.py" in line and "--flags" in line)
    # the training command (direct or under horovodrun) that comes last is started only after the check
    starts = [i for i, line in enumerate(lines) if line.startswith(("exec ", "PATH=")) or "horovodrun -np" in line]
    assert starts and check < starts[-1]


PREPARE_SCRIPT = textwrap.dedent("""
    import json
    from bort.errors import GpuError
    from bort.gpu.cuda_libs import prepare_cuda_libraries
    try:
        loaded = prepare_cuda_libraries()
    except GpuError as err:
        print(json.dumps({"error": str(err)}))
    else:
        import mxnet  # the fake package below: loads its libmxnet.so and calls into the CUDA-like libraries
        print(json.dumps({"loaded": len(loaded), "answer": mxnet.ANSWER}))
""")


@pytest.mark.parametrize("with_wheels", [True, False])
def test_prepare_detects_the_cuda_wheel_and_loads_before_import(site, tmp_path, with_wheels):
    """A site folder with an `mxnet` package from a dist named mxnet_cu117 (its libmxnet.so needs the fake CUDA
    libraries), with or without the nvidia-*-cu11 wheels' folders beside it."""
    import shutil

    fake_site = tmp_path / "site"
    (fake_site / "mxnet").mkdir(parents=True)
    (fake_site / "mxnet_cu117-1.9.1.dist-info").mkdir()
    shutil.copy(site["libmxnet"], fake_site / "mxnet" / "libmxnet.so")
    (fake_site / "mxnet" / "__init__.py").write_text(
        "import ctypes, os\nANSWER = ctypes.CDLL(os.path.join(os.path.dirname(__file__), 'libmxnet.so')).mx_answer()\n")
    if with_wheels:
        (fake_site / "nvidia").symlink_to(os.path.join(site["sp"], "nvidia"))
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    env["PYTHONPATH"] = f"{fake_site}{os.pathsep}{ROOT}"
    run = subprocess.run([sys.executable, "-c", PREPARE_SCRIPT], capture_output=True, text=True, env=env, check=True,
                         cwd=str(tmp_path))
    result = json.loads(run.stdout)
    if with_wheels:
        assert result == {"loaded": 6, "answer": len("libcudart") + 100 + len("libcublasLt") + len("libcudnn")}
    else:
        assert "mxnet-cu117==1.9.1 is installed" in result["error"]
        for soname in ("libcudart.so.11.0", "libcublas.so.11", "libcudnn.so.8"):
            assert soname in result["error"]
        assert "BORT_CUDA=cu117 scripts/setup_env.sh" in result["error"]


PINS_SCRIPT = """
set -euo pipefail
REQ="$1/requirements"
VENV="$2"
read_pins() { sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$@" | grep -v '^$'; }
BASE_PINS=("numpy==1.23.5" "mxnet==1.9.1" "torch==2.13.0")
source "$1/scripts/setup_env_cuda.sh"
apply_cuda_pins
printf '%s\\n' "${BASE_PINS[@]}" "--" "${INDEX_ARGS[@]}"
"""


# (BORT_CUDA, BORT_TORCH_INDEX, what the environment remembers; None: unset) -> the build installed
SETUP_MODES = [
    ("", None, None, "cpu"),
    ("cu117", None, None, "cu117"),
    ("cu117", "", None, "cu117"),
    (None, None, "cu117", "cu117"),  # a launcher's plain setup_env.sh keeps a GPU environment a GPU one
    ("cpu", None, "cu117", "cpu"),  # and BORT_CUDA=cpu switches it back
    (None, None, None, "cpu"),
    ("cu118", None, None, "error"),
]


@pytest.mark.parametrize("cuda,torch_index,remembered,expected", SETUP_MODES)
def test_setup_env_gpu_mode_swaps_the_mxnet_pin(tmp_path, cuda, torch_index, remembered, expected):
    env = {k: v for k, v in os.environ.items() if k not in ("BORT_CUDA", "BORT_TORCH_INDEX")}
    if cuda is not None:
        env["BORT_CUDA"] = cuda
    if torch_index is not None:
        env["BORT_TORCH_INDEX"] = torch_index
    if remembered is not None:
        (tmp_path / ".bort_cuda").write_text(remembered + "\n")
    run = subprocess.run(["bash", "-c", PINS_SCRIPT, "pins", ROOT, str(tmp_path)], capture_output=True, text=True,
                         env=env)
    if expected == "error":
        assert run.returncode == 2 and "use BORT_CUDA=cu117" in run.stderr
        return
    pins, index_args = run.stdout.split("--\n")
    pins = pins.split()
    if expected == "cpu":  # the CPU path (what CI builds) is untouched
        assert pins == ["numpy==1.23.5", "mxnet==1.9.1", "torch==2.13.0"] and index_args.strip() == ""
        return
    with open(os.path.join(ROOT, "requirements", "cuda11.txt")) as handle:
        cuda_pins = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    assert pins == ["numpy==1.23.5", "torch==2.13.0"] + cuda_pins
    assert "mxnet-cu117==1.9.1" in pins and any(p.startswith("nvidia-cudnn-cu11==8.") for p in pins)
    assert any(p.startswith("nvidia-nccl-cu11==2.") for p in pins)
    expected_index = "" if torch_index == "" else "--extra-index-url\nhttps://download.pytorch.org/whl/cpu"
    assert index_args.strip() == expected_index
