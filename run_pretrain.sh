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
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
if [[ $# -lt 2 ]]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
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
from bort.tokenizer import BortTokenizer
teacher, _ = get_bort_model(None, vocab_size=BortTokenizer.from_directory("data/demo/vocab").vocab_size,
                            num_layers=2, num_heads=4, units=128, hidden_size=256)
save_parameters(teacher, sys.argv[1])
PYEOF
  TRAIN="$TEST_DIR/shards/*.npz"
  EVAL="$TEST_DIR/shards/*.npz"
  ARGS=(--teacher_model bort --teacher_num_heads 4 --teacher_params "$TEST_DIR/teacher.params" --vocab data/demo/vocab
        --num_steps 4 --batch_size 2 --batch_size_eval 2 --log_interval 2 --ckpt_interval 2 --eval_interval 2
        --dtype float32 --device cpu --progress false --rank_digests true --ckpt_dir "$TEST_DIR/${MODEL}_model")
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
  ARGS=(--teacher_model roberta_24_1024_16 --num_steps 2000000 --lr 1e-4 --batch_size 1024 --use_avg_len true
        --num_buckets 20 --batch_size_eval 16 --accumulate 1 --log_interval 10 --ckpt_interval 1000
        --eval_interval 1000 "${DEVICE_ARGS[@]}" --ckpt_dir "${CKPT_DIR:-runs/pretraining/$MODEL}")
  [[ -n "$TEACHER" ]] && ARGS+=(--teacher_params "$TEACHER")
  [[ -n "$EVAL" ]] && ARGS+=(--data_eval "$EVAL")
fi
ARGS=(--model "$MODEL" --data "$TRAIN" --mlm_weight 0.1 --teacher_ce_weight 0.5 --distillation_temperature 2.0
      "${ARGS[@]}" "${EXTRA[@]}")
[[ "$TRAIN" == runs/pretraining_test/* ]] && ARGS+=(--data_eval "$EVAL")
# Before training, once for all workers: stop if this machine's GPUs cannot run the installed MXNet wheel.
"$PY" scripts/check_gpu.py --count "$NUM_PROCS" --flags "${ARGS[@]}"

if [[ "$NUM_PROCS" -gt 1 && "$TRAIN" == runs/pretraining_test/* ]]; then
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
