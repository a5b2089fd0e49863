#!/usr/bin/env bash
# The whole Bort recipe on a teacher of your own, one step after the other:
#   import   a Hugging Face BERT or RoBERTa checkpoint -> teacher.params + its record teacher.json
#   extract  the optimal subarchitecture of the teacher (scripts/extract_subarchitecture.py)
#   distil   pretrain the picked architecture by distillation from the teacher (run_pretraining_distillation.py)
#   agora    fine-tune it on a task with Agora (scripts/agora.py)
#   export   the fine-tuned model as a Hugging Face directory, checked against MXNet (scripts/export_weights.py)
#
#   ./run_recipe.sh DEMO [--out DIR] [--force | --resume]
#       End to end on CPU in about a minute (3 on a busy machine), no network: a small RoBERTa made with
#       transformers (trained for a few masked-LM steps on data/sample_text.txt, demo vocabulary data/demo/vocab),
#       an 8-candidate space, a short distillation on data/sample_text.txt, Agora on the demo SST-2 task
#       (data/demo/glue), export.
#   ./run_recipe.sh TEACHER_DIR --corpus FILES --task TASK --data_dir DIR [options]
#       TEACHER_DIR: config.json + model.safetensors or pytorch_model.bin (BERT or RoBERTa with its MLM head),
#       and vocab.json + merges.txt unless --vocab is given. Meant for GPU machines (--device gpu).
#
# Options:
#   --out DIR             run directory (default runs/recipe/<DEMO or the teacher directory's name>)
#   --force               delete an existing run directory and start over
#   --resume              continue the run in --out: steps already finished (<step>/DONE) are skipped
#   --vocab DIR           tokenizer directory (vocab.json + merges.txt; default TEACHER_DIR), shared by all steps
#   --corpus FILES        distillation text, comma-separated (one sentence per line, blank line between documents)
#   --task NAME           fine-tuning task (SST, RTE, MNLI, ...), files in --data_dir DIR
#   --space FILE          extraction search space, a JSON grid (default: the paper's)
#   --pretrain_steps N    distillation steps (default 100000; DEMO 300)
#   --seq_length N        tokens per pretraining sequence and extraction's i* length (default: 128, at most the
#                         teacher's max_length)
#   --device cpu|gpu      where extraction, distillation and Agora run (default gpu; DEMO cpu)
#   --extract_flags "..." --pretrain_flags "..." --agora_flags "..." --export_flags "..."
#                         more flags for one step (split on spaces), e.g. --pretrain_flags "--lr 5e-5"
# Outputs in the run directory: teacher/, shards/, extract/ (ranking.md, plot.png), student.json (the pick),
# pretrain/ (checkpoints, train_log.jsonl), agora/ (best_model/), export/ (HF directory), recipe.log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
fail() { echo "error: $*" >&2; exit 2; }
source scripts/launcher_help.sh
answer_help 1 "" "$@"
MODE="$1"
shift
OUT="" FORCE=0 RESUME=0 VOCAB="" CORPUS="" TASK="" DATA_DIR="" SPACE="" STEPS="" DEVICE="" SEQ_LENGTH=""
EXTRACT_FLAGS="" PRETRAIN_FLAGS="" AGORA_FLAGS="" EXPORT_FLAGS=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out|--vocab|--corpus|--task|--data_dir|--space|--pretrain_steps|--seq_length|--device|--extract_flags|\
--pretrain_flags|--agora_flags|--export_flags)
      [[ $# -ge 2 ]] || fail "$1 needs a value"
      case "$1" in
        --out) OUT="$2" ;; --vocab) VOCAB="$2" ;; --corpus) CORPUS="$2" ;; --task) TASK="$2" ;;
        --data_dir) DATA_DIR="$2" ;; --space) SPACE="$2" ;; --pretrain_steps) STEPS="$2" ;; --device) DEVICE="$2" ;;
        --seq_length) SEQ_LENGTH="$2" ;;
        --extract_flags) EXTRACT_FLAGS="$2" ;; --pretrain_flags) PRETRAIN_FLAGS="$2" ;;
        --agora_flags) AGORA_FLAGS="$2" ;; --export_flags) EXPORT_FLAGS="$2" ;;
      esac
      shift 2 ;;
    --force) FORCE=1; shift ;;
    --resume) RESUME=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) fail "unknown argument $1 (see ./run_recipe.sh --help)" ;;
  esac
done

# ---------------------------------------------------------------------------------------- validation (no work yet)
[[ $FORCE -eq 1 && $RESUME -eq 1 ]] && fail "--force starts over and --resume continues: choose one"
if [[ "$MODE" == "DEMO" ]]; then
  for flag in VOCAB CORPUS TASK DATA_DIR SPACE; do
    [[ -z "${!flag}" ]] ||
      fail "DEMO chooses its own teacher, data and task; --$(tr 'A-Z' 'a-z' <<<"$flag") is for a real run"
  done
  VOCAB=data/demo/vocab CORPUS=data/sample_text.txt TASK=SST DATA_DIR=data/demo/glue
  STEPS="${STEPS:-300}" DEVICE="${DEVICE:-cpu}" OUT="${OUT:-runs/recipe/DEMO}"
else
  TEACHER_DIR="${MODE%/}"
  [[ -d "$TEACHER_DIR" ]] || fail "$TEACHER_DIR is not a directory (give DEMO or a Hugging Face teacher directory)"
  [[ -f "$TEACHER_DIR/config.json" ]] || fail "$TEACHER_DIR has no config.json"
  compgen -G "$TEACHER_DIR/model.safetensors*" >/dev/null || compgen -G "$TEACHER_DIR/pytorch_model.bin*" >/dev/null \
    || fail "$TEACHER_DIR has no weights (model.safetensors or pytorch_model.bin)"
  VOCAB="${VOCAB:-$TEACHER_DIR}"
  [[ -n "$CORPUS" ]] || fail "--corpus is required: the text to distil on"
  [[ -n "$TASK" ]] || fail "--task is required: the task to fine-tune on with Agora"
  [[ -n "$DATA_DIR" ]] || fail "--data_dir is required: the files of --task $TASK"
  [[ -d "$DATA_DIR" ]] || fail "--data_dir $DATA_DIR is not a directory"
  STEPS="${STEPS:-100000}" DEVICE="${DEVICE:-gpu}" OUT="${OUT:-runs/recipe/$(basename "$TEACHER_DIR")}"
fi
[[ -f "$VOCAB/vocab.json" && -f "$VOCAB/merges.txt" ]] || fail "$VOCAB lacks vocab.json + merges.txt (pass --vocab DIR)"
IFS=, read -r -a CORPUS_FILES <<<"$CORPUS"
for file in "${CORPUS_FILES[@]}"; do [[ -f "$file" ]] || fail "--corpus: $file does not exist"; done
[[ -z "$SPACE" || -f "$SPACE" ]] || fail "--space $SPACE does not exist"
[[ "$STEPS" =~ ^[1-9][0-9]*$ ]] || fail "--pretrain_steps must be a positive integer, got $STEPS"
[[ "$DEVICE" == cpu || "$DEVICE" == gpu ]] || fail "--device must be cpu or gpu, got $DEVICE"
[[ -z "$SEQ_LENGTH" || "$SEQ_LENGTH" =~ ^[1-9][0-9]*$ ]] ||
  fail "--seq_length must be a positive integer, got $SEQ_LENGTH"
if [[ -e "$OUT" && $RESUME -eq 0 ]]; then
  if [[ $FORCE -eq 0 ]]; then
    [[ -d "$OUT" && -z "$(ls -A "$OUT")" ]] ||
      fail "$OUT already exists; pass --resume to continue it or --force to start over"
  fi
fi
read -r -a EXTRACT_EXTRA <<<"$EXTRACT_FLAGS"
read -r -a PRETRAIN_EXTRA <<<"$PRETRAIN_FLAGS"
read -r -a AGORA_EXTRA <<<"$AGORA_FLAGS"
read -r -a EXPORT_EXTRA <<<"$EXPORT_FLAGS"

# ---------------------------------------------------------------------------------------- work
scripts/setup_env.sh
PY=.venv/bin/python
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MXNET_SAFE_ACCUMULATION=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [[ $FORCE -eq 1 && -e "$OUT" ]]; then rm -rf -- "$OUT"; fi
mkdir -p "$OUT"
exec > >(tee -a "$OUT/recipe.log") 2>&1
STARTED=$(date +%s)
done_step() { [[ -f "$OUT/$1/DONE" ]]; }
finish_step() { date -u +%FT%TZ >"$OUT/$1/DONE"; echo "[recipe] $1 done after $(( $(date +%s) - STARTED )) s"; }
json_field() { "$PY" -c 'import json, sys; value = json.load(open(sys.argv[1]))
for key in sys.argv[2].split("."): value = value[key]
print(value)' "$1" "$2"; }

TEACHER="$OUT/teacher/teacher.params"
if ! done_step teacher; then
  rm -rf -- "$OUT/teacher" "$OUT/hf_teacher"
  mkdir -p "$OUT/teacher"
  if [[ "$MODE" == "DEMO" ]]; then
    echo "[recipe] DEMO teacher: a RoBERTa (2 layers, 4 heads, width 64, FFN 128) made with transformers, 200"
    echo "         masked-LM steps on $CORPUS, saved as a Hugging Face checkpoint in $OUT/hf_teacher"
    "$PY" - "$OUT/hf_teacher" "$VOCAB" "$CORPUS" <<'PYEOF'
import sys
from bort.export.hf_teacher import build_hf_teacher
build_hf_teacher(sys.argv[1], sys.argv[2], family="roberta", num_layers=2, num_heads=4, units=64, hidden_size=128,
                 max_length=64, corpus=sys.argv[3], steps=200, progress=True)
PYEOF
    TEACHER_DIR="$OUT/hf_teacher"
  fi
  echo "[recipe] import: $TEACHER_DIR -> $TEACHER"
  "$PY" scripts/export_weights.py --from_hf "$TEACHER_DIR" --output "$TEACHER"
  # The teacher's BortConfig fields on their own, for --teacher_config.
  "$PY" -c 'import json, sys
json.dump(json.load(open(sys.argv[1]))["architecture"], open(sys.argv[2], "w"), indent=1)' \
    "$OUT/teacher/teacher.json" "$OUT/teacher/teacher_config.json"
  finish_step teacher
fi
TEACHER_HEADS=$(json_field "$OUT/teacher/teacher_config.json" num_heads)
MAX_LENGTH=$(json_field "$OUT/teacher/teacher_config.json" max_length)
SEQ_LENGTH="${SEQ_LENGTH:-$(( MAX_LENGTH < 128 ? MAX_LENGTH : 128 ))}"
(( SEQ_LENGTH <= MAX_LENGTH )) || fail "--seq_length $SEQ_LENGTH exceeds the teacher's max_length $MAX_LENGTH"

if ! done_step shards; then
  rm -rf -- "$OUT/shards"
  echo "[recipe] data: ${CORPUS_FILES[*]} -> $OUT/shards (max_seq_length $SEQ_LENGTH)"
  for i in "${!CORPUS_FILES[@]}"; do
    # The last file (or the only one) also gives the held-out evaluation shards.
    "$PY" scripts/create_pretraining_data.py --input_file "${CORPUS_FILES[$i]}" --output_dir "$OUT/shards/train/$i" \
      --vocab "$VOCAB" --max_seq_length "$SEQ_LENGTH" --dupe_factor 2 --num_outputs 1 --random_seed "$i"
  done
  "$PY" scripts/create_pretraining_data.py --input_file "${CORPUS_FILES[-1]}" --output_dir "$OUT/shards/eval" \
    --vocab "$VOCAB" --max_seq_length "$SEQ_LENGTH" --dupe_factor 1 --num_outputs 1 --random_seed 1000
  mkdir -p "$OUT/shards" && finish_step shards
fi
TRAIN_SHARDS="$OUT/shards/train/*/*.npz"
EVAL_SHARDS="$OUT/shards/eval/*.npz"

if ! done_step extract; then
  mkdir -p "$OUT/extract"
  if [[ "$MODE" == "DEMO" && -z "$SPACE" ]]; then
    SPACE="$OUT/extract_space.json"
    echo '{"num_layers": [1, 2], "num_heads": [2, 4], "units": [32, 64], "hidden_size": [64]}' >"$SPACE"
  fi
  SPACE_FLAGS=()
  [[ -n "$SPACE" ]] && SPACE_FLAGS=(--space "$SPACE")
  echo "[recipe] extract: the optimal subarchitecture of the teacher${SPACE:+ over $SPACE}"
  if [[ "$MODE" == "DEMO" ]]; then
    BUDGET=(--steps 40 --batch_size 8 --lr 2e-3 --warmup_ratio 0.1 --max_eval_batches 4 --interval_size 2)
  else
    BUDGET=(--steps 1000 --batch_size 32)
  fi
  RESUME_FLAG=()
  [[ -f "$OUT/extract/state.json" ]] && RESUME_FLAG=(--resume)
  "$PY" scripts/extract_subarchitecture.py --teacher_params "$TEACHER" \
    --teacher_config "$OUT/teacher/teacher_config.json" --train_files "$TRAIN_SHARDS" --eval_files "$EVAL_SHARDS" \
    --output_dir "$OUT/extract" --seq_len "$SEQ_LENGTH" --device "$DEVICE" "${RESUME_FLAG[@]}" "${BUDGET[@]}" \
    "${SPACE_FLAGS[@]}" "${EXTRACT_EXTRA[@]}"
  "$PY" - "$OUT/extract/summary.json" "$OUT/teacher/teacher_config.json" "$OUT/student.json" <<'PYEOF'
import json, re, sys
summary, teacher, out = (json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3])
pick = summary["pick"] if isinstance(summary["pick"], str) else summary["pick"]["key"]
sizes = dict(zip(("num_layers", "num_heads", "units", "hidden_size"),
                 map(int, re.match(r"D(\d+)-A(\d+)-H(\d+)-I(\d+)", pick).groups())))
json.dump(dict(teacher, **sizes, key=pick), open(out, "w"), indent=1)
print(f"[recipe] pick: {pick}")
PYEOF
  finish_step extract
fi
STUDENT_LAYERS=$(json_field "$OUT/student.json" num_layers)
STUDENT_HEADS=$(json_field "$OUT/student.json" num_heads)
STUDENT_UNITS=$(json_field "$OUT/student.json" units)
STUDENT_FFN=$(json_field "$OUT/student.json" hidden_size)
ARCH=(--num_layers "$STUDENT_LAYERS" --num_heads "$STUDENT_HEADS" --units "$STUDENT_UNITS" --hidden_size "$STUDENT_FFN")

if ! done_step pretrain; then
  mkdir -p "$OUT/pretrain"
  echo "[recipe] distil: $(json_field "$OUT/student.json" key) for $STEPS steps from the teacher"
  if [[ "$MODE" == "DEMO" ]]; then
    SCHEDULE=(--batch_size 16 --lr 2e-3 --warmup_ratio 0.1 --log_interval 50 --ckpt_interval 100 --eval_interval 100
              --max_eval_batches 4 --dtype float32)
  else
    SCHEDULE=(--batch_size 256 --lr 1e-4 --log_interval 100 --ckpt_interval 1000 --eval_interval 1000)
    # float16 with dynamic loss scaling on a GPU (as the release); MXNet's CPU float16 kernels are partial.
    [[ "$DEVICE" == gpu ]] && SCHEDULE+=(--dtype float16) || SCHEDULE+=(--dtype float32)
  fi
  "$PY" scripts/run_pretraining_distillation.py --data "$TRAIN_SHARDS" --data_eval "$EVAL_SHARDS" --vocab "$VOCAB" \
    --model custom "${ARCH[@]}" --max_length "$MAX_LENGTH" --teacher_model bort --teacher_params "$TEACHER" \
    --teacher_num_heads "$TEACHER_HEADS" --mlm_weight 0.1 --teacher_ce_weight 0.5 --distillation_temperature 2.0 \
    --num_steps "$STEPS" --device "$DEVICE" --resume true --ckpt_dir "$OUT/pretrain" "${SCHEDULE[@]}" \
    "${PRETRAIN_EXTRA[@]}"
  finish_step pretrain
fi
STUDENT=$(ls -d "$OUT"/pretrain/checkpoint-* | sort | tail -n 1)/model.params
[[ -f "$STUDENT" ]] || fail "no distilled model under $OUT/pretrain"

if ! done_step agora; then
  mkdir -p "$OUT/agora"
  echo "[recipe] Agora on $TASK from $STUDENT"
  if [[ "$MODE" == "DEMO" ]]; then
    BUDGET=(--train_limit 200 --dev_limit 200 --seeds 0,1 --lrs 1e-3,5e-4 --wds 0 --warmups 0.1 --batch_sizes 16
            --budget 2000 --points_per_mistake 2 --max_drift 0.25 --max_len 32 --dev_batch_size 100)
  else
    BUDGET=()
  fi
  [[ "$DEVICE" == gpu ]] && BUDGET+=(--gpu 0)
  "$PY" scripts/agora.py --task_name "$TASK" --data_dir "$DATA_DIR" --vocab "$VOCAB/vocab.json" \
    --merges "$VOCAB/merges.txt" --pretrained_parameters "$STUDENT" "${ARCH[@]}" --model_max_length "$MAX_LENGTH" \
    --output_dir "$OUT/agora/run" --progress true "${BUDGET[@]}" "${AGORA_EXTRA[@]}"
  finish_step agora
fi
FINAL=$(ls "$OUT"/agora/run/best_model/*.params | head -n 1)

if ! done_step export; then
  echo "[recipe] export: $FINAL -> $OUT/export/hf"
  mkdir -p "$OUT/export"
  "$PY" scripts/export_weights.py --params "$FINAL" --format hf --output "$OUT/export/hf" --num_heads "$STUDENT_HEADS" \
    --vocab "$VOCAB/vocab.json" --merges "$VOCAB/merges.txt" --force "${EXPORT_EXTRA[@]}"
  finish_step export
fi
echo "[recipe] finished in $(( $(date +%s) - STARTED )) s: teacher $TEACHER,"
echo "         pick $(json_field "$OUT/student.json" key),"
echo "         fine-tuned $FINAL, Hugging Face export $OUT/export/hf"
