#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in .venv/ at the repository root.
# Idempotent: when .venv already holds exactly the pinned stack, it returns in seconds.
#   BORT_SKIP_HOROVOD=1  skip the Horovod build (about 10 minutes on 2 cores); the 2-rank tests then fail.
#   PYTHON=python3.11    the interpreter used to create the environment.
#   BORT_CUDA=cu117      GPU machines: mxnet-cu117 instead of mxnet, plus the CUDA 11 libraries it links against
#                        from PyPI's nvidia-*-cu11 wheels (requirements/cuda11.txt; only the NVIDIA driver comes
#                        from the system), and Horovod with NCCL when a CUDA 11 nvcc is found (docs/gpu.md).
#                        The environment remembers it (later runs keep the GPU build); BORT_CUDA=cpu switches back.
#   BORT_TORCH_INDEX=URL with BORT_CUDA: where torch's CPU build comes from (default: PyTorch's CPU index).
#   --dry-run            resolve every pin against the package index and print name==version; installs nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3

# The pins live in requirements/*.txt, the same files pyproject.toml reads, so `pip install .` and this
# environment agree. numpy is pinned there below 1.24: mxnet 1.9.1 cannot import with a newer one, and
# gluonnlp and horovod compile against what is already installed.
REQ="$ROOT/requirements"
read_pins() { sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$@" | grep -v '^$'; }
mapfile -t BASE_PINS < <(read_pins "$REQ/build.txt" "$REQ/runtime.txt" "$REQ/test.txt" "$REQ/export.txt" |
                         grep -v '^gluonnlp')
GLUONNLP_PIN="$(read_pins "$REQ/runtime.txt" | grep '^gluonnlp')"
HOROVOD_PIN="$(read_pins "$REQ/dist.txt" | grep '^horovod')"
# shellcheck source=scripts/setup_env_cuda.sh
source "$ROOT/scripts/setup_env_cuda.sh"
apply_cuda_pins  # BORT_CUDA=cu117: the CUDA build and its libraries replace mxnet in BASE_PINS
STAMP_TEXT="$(printf '%s\n' "${BASE_PINS[@]}" "$GLUONNLP_PIN" "$HOROVOD_PIN" "skip_horovod=${BORT_SKIP_HOROVOD:-0}")"
STAMP="$VENV/.bort_env_stamp"

# The C tokenizer (bort/tokenizer/_bytelevel.c, the 'native' byte-level BPE engine) is built in place by the
# editable install at the end; this rebuilds it when the environment is ready but the checkout's .so is
# missing (a fresh clone) or older than the .c (an edit). Optional: without it byte-level BPE encodes with
# tiktoken (same ids, slower) and says why.
build_native_tokenizer() {
  local source="$ROOT/bort/tokenizer/_bytelevel.c" suffix built
  suffix="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
  built="$ROOT/bort/tokenizer/_bytelevel$suffix"
  if [[ ! -f "$built" || "$source" -nt "$built" ]]; then
    echo "[setup_env] building the C tokenizer $source"
    (cd "$ROOT" && "$VENV/bin/python" setup.py -q build_ext --inplace) ||
      echo "[setup_env] warning: the C tokenizer did not build; byte-level BPE encodes with tiktoken (slower)"
  fi
}

build_kernels() {
  # Bort's CPU kernels (bort/kernels: LayerNorm, distillation loss), built once into the user's cache; without a
  # C++ compiler the commands fall back to MXNet's own operators.
  "$VENV/bin/python" -m bort.kernels --quiet ||
    echo "[setup_env] warning: training and inference will use MXNet's operators"
}

if [[ "${1:-}" == "--dry-run" ]]; then
  dry_run
  exit 0
fi

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_TEXT" ]] && "$VENV/bin/python" -c "import bort" 2>/dev/null; then
  build_native_tokenizer
  build_kernels
  exit 0
fi

echo "[setup_env] creating the environment in $VENV (first run: about 15 minutes, Horovod is built from source)"
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade "pip<25"
remove_other_mxnet
"${PIP[@]}" install "${INDEX_ARGS[@]}" "${BASE_PINS[@]}"
# gluonnlp 0.10.0 ships only as an sdist with Cython code; build it against the numpy installed above.
"${PIP[@]}" install --no-build-isolation "$GLUONNLP_PIN"
if [[ "${BORT_SKIP_HOROVOD:-0}" != "1" && -n "${BORT_CUDA:-}" ]]; then
  build_horovod_nccl
elif [[ "${BORT_SKIP_HOROVOD:-0}" != "1" ]]; then
  if ! "$VENV/bin/python" -c "import horovod.mxnet" 2>/dev/null; then
    echo "[setup_env] building Horovod with MXNet and Gloo (about 10 minutes on 2 cores)"
    HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITH_GLOO=1 \
    HOROVOD_WITHOUT_MPI=1 HOROVOD_CPU_OPERATIONS=GLOO CMAKE_POLICY_VERSION_MINIMUM=3.5 \
      "${PIP[@]}" install --no-build-isolation "$HOROVOD_PIN"
  fi
fi
"${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT"
printf '%s' "$STAMP_TEXT" > "$STAMP"
record_cuda_mode
build_kernels
echo "[setup_env] ready: $VENV"
