#!/usr/bin/env bash
# Distillation pretraining of Bort, as the release's run_pretraining_distillation.sh.
#   ./run_pretrain.sh NUM_PROCS TRAIN_GLOB EVAL_GLOB [TEACHER_PARAMS] [extra flags for run_pretraining_distillation.py]
#   ./run_pretrain.sh 1 TEST      smoke test on CPU: shards from data/sample_text.txt (tokenizer data/demo/vocab), a small
#   ./run_pretrain.sh 2 TEST      random Bort-shaped teacher, 4 steps of bort_4_8_768_1024; 2 = two Horovod workers.
# NUM_PROCS > 1 launches `horovodrun -np NUM_PROCS -H localhost:NUM_PROCS --gloo`.
# The full run uses the release's settings (RoBERTa-large teacher from TEACHER_PARAMS or GluonNLP's model cache,
# fp16 on GPU, 2M steps, 1024-token batches); override any of them with extra flags, e.g. --num_steps 1000.
# Outputs: CKPT_DIR (default runs/pretraining/bort_4_8_768_1024) with checkpoints and train_log.jsonl.
# Device: GPU=auto (default: float16 on GPU <local rank> when MXNet sees a GPU, else float32 on CPU), gpu or cpu.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# --help (the header comment above, then nothing more) before any set-up; usage errors exit 2.
source scripts/launcher_help.sh
answer_help 2 "" "$@"
NUM_PROCS=$1
TRAIN=$2
# Check the arguments before anything is created or deleted.
if ! [[ "$NUM_PROCS" =~ ^[1-9][0-9]*$ ]]; then
  echo "error: NUM_PROCS must be a positive integer, got '$NUM_PROCS' (usage: ./run_pretrain.sh --help)" >&2
  exit 2
fi
case "${GPU:-auto}" in auto|gpu|cpu) ;; *)
  echo "error: GPU must be auto, gpu or cpu, got '${GPU}'" >&2; exit 2 ;;
esac
EVAL=${3:-}
TEACHER=${4:-}
EXTRA=("${@:5}")
scripts/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH" MXNET_SAFE_ACCUMULATION=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
PY=.venv/bin/python
MODEL=bort_4_8_768_1024
# The settings themselves are presets in bort/presets.py (`bort-pretrain --preset release|test`); this script
# only adds the data, the teacher's file, the device and horovodrun.

if [[ "$TRAIN" == "TEST" ]]; then
  TEST_DIR=runs/pretraining_test
  rm -rf "$TEST_DIR"
  mkdir -p "$TEST_DIR"
  $PY scripts/create_pretraining_data.py --input_file data/sample_text.txt --output_dir "$TEST_DIR/shards" \
      --vocab data/demo/vocab --dupe_factor 1 --num_workers 1 --num_outputs "$NUM_PROCS" --progress false
  # A small random teacher of the student's vocabulary stands in for RoBERTa-large (no download here).
  $PY - "$TEST_DIR/teacher.params" <<'PYEOF'
import sys
from bort.model import get_bort_model
from bort.params import save_parameters
from bort.presets import PRETRAIN_TEST_TEACHER
from bort.tokenizer import BortTokenizer
teacher, _ = get_bort_model(None, vocab_size=BortTokenizer.from_directory("data/demo/vocab").vocab_size,
                            **PRETRAIN_TEST_TEACHER)
save_parameters(teacher, sys.argv[1])
PYEOF
  ARGS=(--preset test --data "$TEST_DIR/shards/*.npz" --data_eval "$TEST_DIR/shards/*.npz"
        --teacher_params "$TEST_DIR/teacher.params")
else
  # The release ran float16 on GPUs; without a GPU that would only end in an MXNet error, so follow the machine.
  DEVICE="${GPU:-auto}"
  if [[ "$DEVICE" == auto ]]; then
    # (a CUDA build of MXNet imports only after its pip-installed CUDA libraries are loaded: bort.gpu.cuda_libs)
    DEVICE=$($PY -c "from bort.gpu.cuda_libs import prepare_cuda_libraries as load; load(); import mxnet as mx
print('gpu' if mx.context.num_gpus() > 0 else 'cpu')")
  fi
  if [[ "$DEVICE" == gpu ]]; then DEVICE_ARGS=(--dtype float16 --device gpu); else
    echo "[run_pretrain] no GPU (GPU=${GPU:-auto}): training in float32 on the CPU, which is very slow at full size" >&2
    DEVICE_ARGS=(--dtype float32 --device cpu)
  fi
  ARGS=(--preset release --data "$TRAIN" "${DEVICE_ARGS[@]}")
  [[ -n "${CKPT_DIR:-}" ]] && ARGS+=(--ckpt_dir "$CKPT_DIR")
  [[ -n "$TEACHER" ]] && ARGS+=(--teacher_params "$TEACHER")
  [[ -n "$EVAL" ]] && ARGS+=(--data_eval "$EVAL")
fi
ARGS+=("${EXTRA[@]}")
# Before training, once for all workers: stop if this machine's GPUs cannot run the installed MXNet wheel.
"$PY" scripts/check_gpu.py --count "$NUM_PROCS" --flags "${ARGS[@]}"

if [[ "$NUM_PROCS" -gt 1 && "$TRAIN" == "TEST" ]]; then
  horovodrun -np "$NUM_PROCS" -H "localhost:$NUM_PROCS" --gloo \
      "$PY" scripts/run_pretraining_distillation.py --horovod true "${ARGS[@]}"
  # Data-parallel workers must end with identical weights: compare their digests here, not by hand.
  DIGESTS=("$TEST_DIR/${MODEL}_model"/rank_digests/rank-*.sha256)
  DISTINCT=$(cat "${DIGESTS[@]}" | sort -u | wc -l)
  if [[ "${#DIGESTS[@]}" -eq "$NUM_PROCS" && "$DISTINCT" -eq 1 ]]; then
    echo "[run_pretrain] the $NUM_PROCS ranks agree: identical final weights (sha256 $(cut -c1-16 "${DIGESTS[0]}")...)"
    exit 0
  fi
  echo "[run_pretrain] the ranks DISAGREE: ${#DIGESTS[@]} digests, $DISTINCT distinct (see ${DIGESTS[*]})" >&2
  exit 1
fi
if [[ "$NUM_PROCS" -gt 1 ]]; then
  exec horovodrun -np "$NUM_PROCS" -H "localhost:$NUM_PROCS" --gloo \
      "$PY" scripts/run_pretraining_distillation.py --horovod true "${ARGS[@]}"
fi
exec "$PY" scripts/run_pretraining_distillation.py "${ARGS[@]}"
