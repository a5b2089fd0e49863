#!/usr/bin/env bash
# Agora fine-tuning of Bort (README.md, section "Agora"). Creates .venv/ first when it is missing.
#
#   ./run_agora.sh DEMO                      end to end on the bundled demo task (data/demo, CPU, a few minutes):
#                                            trains a small labelling model S on the whole demo training set,
#                                            runs Agora with only 48 training examples, then plain fine-tuning
#                                            of the same grid with the same total budget, and prints both scores
#                                            on dev and on 100 training sentences no candidate trains on.
#   ./run_agora.sh TASK [agora.py flags]     Agora on a GLUE/SuperGLUE/RACE task, e.g.
#       LABELLER=teacher/model_bort_RTE.params ./run_agora.sh RTE --lrs 1e-5,9e-6 --seeds 0,1 --budget 25000
#
# Environment: DATA_DIR (task files; default $BORT_DATA), MODEL_DIR (bort.params, vocab.json, merges.txt;
# default model), LABELLER (S: a classifier fine-tuned on TASK; without it each round's best candidate labels
# its own points), OUT (default runs/agora/<TASK>). Rerunning the same command resumes an interrupted run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# --help (the header comment above, then scripts/agora.py) before any set-up; usage errors exit 2.
source scripts/launcher_help.sh
answer_help 1 "scripts/agora.py" "$@"
TASK="$1"
shift
scripts/setup_env.sh
PY=.venv/bin/python

if [[ "$TASK" == "DEMO" ]]; then
  # The demo's tiny models are bound by per-operator overhead: extra OpenMP threads only add contention.
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
  OUT="${OUT:-runs/agora/DEMO}"
  DEMO_FLAGS=(--task_name SST --data_dir data/demo/glue --vocab data/demo/vocab/vocab.json
              --merges data/demo/vocab/merges.txt --num_layers 1 --num_heads 4 --units 64 --hidden_size 128
              --model_max_length 32 --max_len 32 --init xavier --dev_batch_size 100)
  if [[ ! -f "$OUT/labeller/model_bort_SST.params" ]]; then
    echo "[DEMO] training the labelling model S on all 800 demo training sentences"
    "$PY" scripts/finetune_bort.py "${DEMO_FLAGS[@]}" --output_dir "$OUT/labeller" --epochs 5 --ramp_up_epochs 5 \
      --batch_size 32 --lr 1e-3 --warmup_ratio 0.1 --weight_decay 0 --seed 0 --predict false --progress true
  fi
  echo "[DEMO] Agora with 48 training examples, S labelling the generated points"
  exec "$PY" scripts/agora.py "${DEMO_FLAGS[@]}" --output_dir "$OUT/agora" --train_limit 48 --dev_limit 100 \
    --labeller_parameters "$OUT/labeller/model_bort_SST.params" --seeds 0,1 --lrs 1e-3,5e-4 --wds 0 \
    --warmups 0.1 --batch_sizes 32 --budget 1600 --points_per_mistake 4 --max_drift 0.25 \
    --compare_baseline true --held_out 100 --progress true "$@"
fi

# Threads: the commands size their pools themselves (bort/threads.py).
MODEL_DIR="${MODEL_DIR:-model}"
ARGS=(--task_name "$TASK" --output_dir "${OUT:-runs/agora/$TASK}")
[[ -n "${DATA_DIR:-}" ]] && ARGS+=(--data_dir "$DATA_DIR")
[[ -f "$MODEL_DIR/bort.params" ]] && ARGS+=(--pretrained_parameters "$MODEL_DIR/bort.params")
[[ -f "$MODEL_DIR/vocab.json" ]] && ARGS+=(--vocab "$MODEL_DIR/vocab.json" --merges "$MODEL_DIR/merges.txt")
[[ -n "${LABELLER:-}" ]] && ARGS+=(--labeller_parameters "$LABELLER")
# Before any work: stop if the GPU asked for (--gpu) cannot run the installed MXNet wheel.
"$PY" scripts/check_gpu.py --flags "${ARGS[@]}" "$@"
exec "$PY" scripts/agora.py "${ARGS[@]}" "$@"
