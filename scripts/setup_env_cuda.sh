# Sourced by scripts/setup_env.sh (not run on its own): the GPU mode (BORT_CUDA=cu117) and --dry-run.
# Uses ROOT, VENV, PYTHON, REQ, read_pins, BASE_PINS, GLUONNLP_PIN and HOROVOD_PIN from setup_env.sh.

# BORT_CUDA=cu117: mxnet-cu117 replaces mxnet in BASE_PINS, and the nvidia-*-cu11 runtime libraries join it.
# torch (for exports) then comes from PyTorch's CPU index (BORT_TORCH_INDEX; empty: the configured indexes only):
# PyPI's Linux torch is the CUDA 12 build, whose nvidia-nccl-cu12 wheel would overwrite the CUDA 11 libnccl.so.2
# that MXNet needs (same folder, same file name).
INDEX_ARGS=()
# The mode is remembered in the environment ($VENV/.bort_cuda), so that the launchers' plain
# `scripts/setup_env.sh` keeps a GPU environment a GPU one; BORT_CUDA=cpu switches back to the CPU build.
CUDA_MODE_FILE="${VENV:-.venv}/.bort_cuda"
apply_cuda_pins() {
  if [[ -z "${BORT_CUDA+set}" && -f "$CUDA_MODE_FILE" ]]; then
    BORT_CUDA="$(cat "$CUDA_MODE_FILE")"
  fi
  [[ "${BORT_CUDA:-}" == cpu ]] && BORT_CUDA=""
  case "${BORT_CUDA:-}" in
    "") return 0 ;;
    cu117) ;;
    *) echo "[setup_env] BORT_CUDA=$BORT_CUDA is not supported: use BORT_CUDA=cu117 (mxnet-cu117, the newest CUDA" \
            "build of MXNet 1.9.1), or BORT_CUDA=cpu for the CPU build" >&2
       exit 2 ;;
  esac
  local pin kept=()
  for pin in "${BASE_PINS[@]}"; do
    [[ "$pin" == mxnet==* ]] || kept+=("$pin")
  done
  mapfile -t CUDA_PINS < <(read_pins "$REQ/cuda11.txt")
  BASE_PINS=("${kept[@]}" "${CUDA_PINS[@]}")
  local torch_index="${BORT_TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
  [[ -n "$torch_index" ]] && INDEX_ARGS=(--extra-index-url "$torch_index")
  return 0
}

# After a successful set-up: remember which build this environment holds.
record_cuda_mode() {
  if [[ -n "${BORT_CUDA:-}" ]]; then printf '%s\n' "$BORT_CUDA" > "$CUDA_MODE_FILE"; else rm -f "$CUDA_MODE_FILE"; fi
}

# The CPU and CUDA builds install the same `mxnet` package directory: remove the other one before installing,
# never after (uninstalling it afterwards would delete files the new one shares).
remove_other_mxnet() {
  local installed others
  installed="$("$VENV/bin/python" -m pip list --format=freeze 2>/dev/null | sed 's/==.*//' | tr 'A-Z_' 'a-z-')"
  if [[ -n "${BORT_CUDA:-}" ]]; then
    others="$(grep -x 'mxnet' <<<"$installed" || true)"
  else
    others="$(grep -x 'mxnet-cu[0-9a-z]*' <<<"$installed" || true)"
  fi
  if [[ -n "$others" ]]; then
    echo "[setup_env] replacing $others (BORT_CUDA=${BORT_CUDA:-unset})"
    # shellcheck disable=SC2086  # one name per word
    "$VENV/bin/python" -m pip uninstall -y -q $others
  fi
}

# The environment's nvidia/*/lib folders, ':'-joined (for processes started by this script: Horovod's build).
nvidia_library_path() {
  PYTHONPATH="$ROOT" "$VENV/bin/python" -c \
    'import sys; from bort.gpu.cuda_libs import nvidia_lib_dirs; print(":".join(nvidia_lib_dirs(sys.path)))'
}

# Horovod with NCCL for the GPU build. Horovod compiles CUDA kernels, and no PyPI wheel carries a CUDA 11 nvcc
# (nvidia-cuda-nvcc-cu11 holds only ptxas), so this needs a CUDA 11.x toolkit: $CUDA_HOME, nvcc on PATH, or
# /usr/local/cuda. Its build also imports MXNet, which needs the driver (libcuda.so.1). Without either it says
# why and goes on without Horovod: one GPU per process still works.
build_horovod_nccl() {
  local check='from bort.gpu.cuda_libs import prepare_cuda_libraries; prepare_cuda_libraries()
import horovod.mxnet as hvd; raise SystemExit(0 if hvd.nccl_built() else 1)'
  if PYTHONPATH="$ROOT" "$VENV/bin/python" -c "$check" 2>/dev/null; then
    return 0
  fi
  local nvcc="" cuda_home nccl_dir link_dir libpath
  for candidate in "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" "$(command -v nvcc || true)" /usr/local/cuda/bin/nvcc; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then nvcc="$candidate"; break; fi
  done
  local release=""
  [[ -n "$nvcc" ]] && release="$("$nvcc" --version | sed -n 's/.*release \([0-9][0-9.]*\),.*/\1/p')"
  if [[ "$release" != 11.* ]]; then
    # Horovod would link the toolkit's own libcudart: a second, different CUDA runtime next to MXNet's 11.x.
    echo "[setup_env] warning: Horovod not built: its NCCL build needs a CUDA 11.x toolkit's nvcc (CUDA_HOME," \
         "PATH or /usr/local/cuda; found: ${nvcc:-none} ${release:+(CUDA $release)}), which PyPI does not carry;" \
         "single-process GPU runs work, NUM_PROCS>1 does not. Install the CUDA 11.8 toolkit and rerun with" \
         "CUDA_HOME pointing to it, or use docker/Dockerfile.gpu" >&2
    return 0
  fi
  if ! "$VENV/bin/python" -c 'import ctypes; ctypes.CDLL("libcuda.so.1")' 2>/dev/null; then
    echo "[setup_env] warning: Horovod not built: its build imports MXNet, which needs the NVIDIA driver" \
         "(libcuda.so.1); run this on the GPU machine" >&2
    return 0
  fi
  cuda_home="$(cd "$(dirname "$nvcc")/.." && pwd)"
  nccl_dir="$("$VENV/bin/python" -c 'import os, nvidia.nccl as n; print(os.path.dirname(n.__file__))')"
  # The wheel has libnccl.so.2 only; linking with -lnccl wants the unversioned name.
  link_dir="$VENV/lib/nccl-link"
  mkdir -p "$link_dir"
  ln -sf "$nccl_dir/lib/libnccl.so.2" "$link_dir/libnccl.so"
  libpath="$(nvidia_library_path)"
  local gcc_major
  gcc_major="$(gcc -dumpversion | cut -d. -f1)"
  # CUDA 11.8's nvcc accepts gcc <= 11; newer ones work for Horovod's few kernels but need the override.
  local nvcc_flags="${NVCC_APPEND_FLAGS:-}"
  [[ "$gcc_major" -gt 11 ]] && nvcc_flags="$nvcc_flags -allow-unsupported-compiler"
  echo "[setup_env] building Horovod with MXNet, NCCL ($nccl_dir) and CUDA ($cuda_home) (about 15 minutes)"
  # --no-cache-dir: a Horovod wheel built earlier without CUDA must not be reused from pip's cache.
  HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITH_GLOO=1 \
  HOROVOD_WITHOUT_MPI=1 HOROVOD_CPU_OPERATIONS=GLOO HOROVOD_GPU_OPERATIONS=NCCL HOROVOD_CUDA_HOME="$cuda_home" \
  HOROVOD_NCCL_INCLUDE="$nccl_dir/include" HOROVOD_NCCL_LIB="$link_dir" HOROVOD_NCCL_LINK=SHARED \
  NVCC_APPEND_FLAGS="$nvcc_flags" CMAKE_POLICY_VERSION_MINIMUM=3.5 \
  LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$VENV/bin/python" -m pip --disable-pip-version-check -q install --no-cache-dir --no-build-isolation \
      --force-reinstall --no-deps "$HOROVOD_PIN"
}

# --dry-run: resolve every pin (with its dependencies) against the package index and print what would be
# installed, without installing or building anything. The sdists built from source (gluonnlp, horovod) are
# only downloaded: building their metadata needs the stack installed first.
dry_run() {
  local python="$PYTHON" tmp
  [[ -x "$VENV/bin/python" ]] && python="$VENV/bin/python"
  tmp="$(mktemp -d)"
  DRY_RUN_TMP="$tmp"
  trap 'rm -rf "$DRY_RUN_TMP"' EXIT
  echo "[setup_env] --dry-run (BORT_CUDA=${BORT_CUDA:-unset}): resolving ${#BASE_PINS[@]} pins with $python" >&2
  "$python" -m pip --disable-pip-version-check install --dry-run --ignore-installed --quiet \
    --report "$tmp/report.json" "${INDEX_ARGS[@]}" "${BASE_PINS[@]}" 2> >(grep -v "^WARNING: Location" >&2)
  "$python" -m pip --disable-pip-version-check download --quiet --no-deps --no-binary :all: --no-build-isolation \
    -d "$tmp/sdists" "$GLUONNLP_PIN" "$HOROVOD_PIN" 2> >(grep -v "^WARNING: Location" >&2) || {
      # metadata of an sdist may not build without the stack; the file itself is what we check
      echo "[setup_env] note: pip could not prepare the sdists' metadata; checked that the files download" >&2
    }
  "$python" - "$tmp/report.json" "$tmp/sdists" "${BASE_PINS[@]}" "$GLUONNLP_PIN" "$HOROVOD_PIN" <<'PYEOF'
import json, os, re, sys
report, sdists, pins = sys.argv[1], sys.argv[2], sys.argv[3:]
def key(name):
    return re.sub(r"[-_.]+", "-", name).lower()
resolved = {key(item["metadata"]["name"]): item["metadata"]["version"] for item in json.load(open(report))["install"]}
for name in os.listdir(sdists) if os.path.isdir(sdists) else []:
    match = re.match(r"(.+?)-(\d[^-]*)\.(tar\.gz|zip)$", name)
    if match:
        resolved[key(match.group(1))] = match.group(2) + " (sdist)"
missing = []
for pin in pins:
    name = key(re.split(r"[<>=!~ \[;]", pin, maxsplit=1)[0])
    print(f"{pin:40s} -> {name}=={resolved[name]}" if name in resolved else f"{pin:40s} -> NOT RESOLVED")
    if name not in resolved:
        missing.append(pin)
pinned = {key(re.split(r"[<>=!~ \[;]", p, maxsplit=1)[0]) for p in pins}
extra = sorted(f"{n}=={v}" for n, v in resolved.items() if n not in pinned)
print(f"+ {len(extra)} dependencies: {' '.join(extra)}")
sys.exit(1 if missing else 0)
PYEOF
}
