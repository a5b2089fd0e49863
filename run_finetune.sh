#!/usr/bin/env bash
# Fine-tune Bort on one task with the release's settings, then write its test-set submission file(s).
#
#   ./run_finetune.sh TASK [extra finetune_bort.py flags...]
#
# TASK: a task name (CoLA, SST, MRPC, QQP, STS-B, MNLI, QNLI, RTE, WNLI, AX, BoolQ, CB, COPA, MultiRC, ReCoRD,
#   SuperGLUERTE, WiC, WSC, AXb, AXg, RACE-H, RACE-M), or
#   DEMO   fine-tune on a small bundled sentiment task (data/demo/glue/SST-2) and predict, on CPU, in minutes;
#   TEST1  the release's GLUE smoke test: WNLI, 1 epoch, CPU, on bundled data (data/demo/glue/WNLI);
#   TEST2  the release's SuperGLUE smoke test: WSC, 1 epoch, CPU, on bundled data (data/demo/superglue/WSC).
# DEMO/TEST1/TEST2 use model/bort.params when it is there (with RoBERTa's vocabulary from model/ or GluonNLP's
# cache); otherwise they say where to get it and go on with a small randomly initialised model and the
# bundled vocabulary (data/demo/vocab).
#
# Every setting can be changed by an environment variable (the release's run_finetune.sh values by default):
#   EPS=1 REPS=1 BSZ=8 SEED=2 LR=5e-5 MAXLEN=512 WD=110.0 WMUP=0.45 EARLY_STOP=200
#   GPU=auto (GPU 0 when MXNet sees one, else CPU; 'cpu' forces CPU)   DTYPE=float32
#   PARAMS=model/bort.params   DATA_DIR (default: $BORT_DATA, else $MXNET_HOME/datasets)
#   OUTPUT_DIR (default: runs/finetune/<TASK>-<date>)   NUM_PROCS=1 (>1: horovodrun on this machine)
# Anything after TASK is passed on to scripts/finetune_bort.py (see its --help), e.g. --accumulate 4.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [[ $# -lt 1 ]]; then
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
scripts/setup_env.sh
TASK="$1"
shift

PARAMS="${PARAMS:-model/bort.params}"
PYTHON=.venv/bin/python
DEMO_VOCAB=(--vocab data/demo/vocab/vocab.json --merges data/demo/vocab/merges.txt)
# A small architecture the bundled vocabulary fits, for runs without the released weights.
SMALL_MODEL=(--num_layers 2 --units 64 --hidden_size 128 --num_heads 4 --model_max_length 128 --init gaussian
             --prob 0.02)

have_roberta_vocab() {
  [[ -f model/vocab.json && -f model/merges.txt ]] && return 0
  compgen -G "${MXNET_HOME:-$HOME/.mxnet}/models/openwebtext_ccnews_stories_books_cased-*.vocab" >/dev/null
}

# Model flags for the bundled tasks: the released model if present, else the small random one.
bundled_model_flags() {
  if [[ -f "$PARAMS" ]] && have_roberta_vocab; then
    MODEL_FLAGS=(--pretrained_parameters "$PARAMS")
    PRETRAINED=1
  else
    if [[ ! -f "$PARAMS" ]]; then
      echo "[run_finetune] $PARAMS not found: download the released Bort weights and RoBERTa's vocabulary with" >&2
      echo "    .venv/bin/python scripts/download_model.py --out model" >&2
    else
      echo "[run_finetune] $PARAMS found but no RoBERTa vocabulary: get vocab.json and merges.txt with" >&2
      echo "    .venv/bin/python scripts/download_model.py --out model --what vocab" >&2
    fi
    echo "[run_finetune] continuing with a small randomly initialised model and the bundled vocabulary" >&2
    MODEL_FLAGS=("${DEMO_VOCAB[@]}" "${SMALL_MODEL[@]}")
    PRETRAINED=0
  fi
}

STAMP="$(date +%Y%m%d-%H%M%S)"
case "$TASK" in
  DEMO)
    bundled_model_flags
    # The demo's own defaults (a small task from scratch needs a few epochs and a larger rate); environment
    # variables still win.
    if [[ "$PRETRAINED" == 1 ]]; then : "${LR:=5e-5}"; else : "${LR:=5e-4}"; fi
    : "${EPS:=3}" "${REPS:=3}" "${MAXLEN:=64}" "${WD:=0.01}" "${WMUP:=0.1}"
    TASK_NAME=SST DATA_DIR="${DATA_DIR:-data/demo/glue}"
    EXTRA=("${MODEL_FLAGS[@]}" --dev_batch_size 64)
    ;;
  TEST1|TEST2)
    bundled_model_flags
    if [[ "$TASK" == TEST1 ]]; then TASK_NAME=WNLI; DATA_DIR=data/demo/glue; else TASK_NAME=WSC; DATA_DIR=data/demo/superglue; fi
    # The release's smoke tests: one epoch on CPU, single process.
    EPS=1 REPS=1 GPU=cpu NUM_PROCS=1
    if [[ "$PRETRAINED" == 0 ]]; then : "${MAXLEN:=128}"; fi
    EXTRA=("${MODEL_FLAGS[@]}")
    ;;
  *)
    TASK_NAME="$TASK"
    EXTRA=()
    if [[ -f "$PARAMS" ]]; then
      EXTRA=(--pretrained_parameters "$PARAMS")
    else
      echo "[run_finetune] warning: $PARAMS not found; fine-tuning from random weights (get it with" >&2
      echo "    .venv/bin/python scripts/download_model.py --out model)" >&2
    fi
    ;;
esac
OUTPUT_DIR="${OUTPUT_DIR:-runs/finetune/${TASK}-${STAMP}}"
EPS="${EPS:-1}" REPS="${REPS:-1}" BSZ="${BSZ:-8}" SEED="${SEED:-2}" LR="${LR:-5e-5}" MAXLEN="${MAXLEN:-512}"
WD="${WD:-110.0}" WMUP="${WMUP:-0.45}" EARLY_STOP="${EARLY_STOP:-200}" GPU="${GPU:-auto}" DTYPE="${DTYPE:-float32}"
NUM_PROCS="${NUM_PROCS:-1}"

ARGS=(--task_name "$TASK_NAME" --epochs "$EPS" --ramp_up_epochs "$REPS" --batch_size "$BSZ" --seed "$SEED"
      --lr "$LR" --max_len "$MAXLEN" --weight_decay "$WD" --warmup_ratio "$WMUP" --early_stop "$EARLY_STOP"
      --gpu "$GPU" --dtype "$DTYPE" --output_dir "$OUTPUT_DIR")
[[ -n "${DATA_DIR:-}" ]] && ARGS+=(--data_dir "$DATA_DIR")
ARGS+=("${EXTRA[@]}" "$@")

echo "[run_finetune] $TASK -> $OUTPUT_DIR" >&2
if [[ "$NUM_PROCS" -gt 1 ]]; then
  PATH="$PWD/.venv/bin:$PATH" exec .venv/bin/horovodrun -np "$NUM_PROCS" -H "localhost:$NUM_PROCS" --gloo \
    "$PYTHON" scripts/finetune_bort.py "${ARGS[@]}" --distributed true
fi
exec "$PYTHON" scripts/finetune_bort.py "${ARGS[@]}"
