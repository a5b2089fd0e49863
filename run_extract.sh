#!/usr/bin/env bash
# Optimal subarchitecture extraction (docs/extraction.md). Creates .venv/ first when it is missing.
#
#   ./run_extract.sh DEMO          CPU, about a minute: builds MLM shards from the bundled demo sentences
#                                  (data/demo/glue/SST-2: train -> training shards, dev -> held-out shards), makes a
#                                  tiny random teacher (D3-A4-H64-I256, random init with a sharpened MLM head, no
#                                  training), then extracts from a 12-candidate space (runs/extract/DEMO/extraction).
#   ./run_extract.sh EXPERIMENT    CPU, about 4 minutes: the same data and teacher; on a 24-candidate space, the
#                                  extraction vs the exhaustive search vs random search with the same cost
#                                  (runs/extract/EXPERIMENT/experiment.md).
#   ./run_extract.sh PAPER TEACHER_PARAMS TRAIN_GLOB EVAL_GLOB [extract_subarchitecture.py flags]
#                                  the paper's space (300 candidates) with a RoBERTa-large teacher in the Bort
#                                  format (TEACHER_CONFIG=roberta_24_1024_16 by default), on GPU (DEVICE=gpu;
#                                  DEVICE=cpu runs too, slowly). NUM_PROCS>1: horovodrun on this machine.
#   ./run_extract.sh PAPER_TABLE   no training: p*/i* of the paper's space, where the released Bort sits, this
#                                  CPU's inference times for a few candidates (runs/extract/PAPER_TABLE).
# Rerunning the same command resumes an interrupted run (--resume); OUT changes the output directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# --help (the header comment above, then scripts/extract_subarchitecture.py) before any set-up; usage errors exit 2.
source scripts/launcher_help.sh
answer_help 1 "scripts/extract_subarchitecture.py" "$@"
MODE="$1"
shift
# Check the arguments before anything is installed or written.
case "$MODE" in
  DEMO|EXPERIMENT|PAPER_TABLE) ;;
  PAPER)
    if [[ $# -lt 3 ]]; then
      echo "error: PAPER needs TEACHER_PARAMS TRAIN_GLOB EVAL_GLOB (usage: ./run_extract.sh --help)" >&2
      exit 2
    fi
    if ! [[ "${NUM_PROCS:-1}" =~ ^[1-9][0-9]*$ ]]; then
      echo "error: NUM_PROCS must be a whole number >= 1, got '${NUM_PROCS}'" >&2
      exit 2
    fi
    ;;
  *)
    echo "error: unknown mode '$MODE'; use DEMO, EXPERIMENT, PAPER or PAPER_TABLE (./run_extract.sh --help)" >&2
    exit 2
    ;;
esac
scripts/setup_env.sh
PY=.venv/bin/python
export PATH="$PWD/.venv/bin:$PATH"

demo_data() {  # $1: directory for the shards and the teacher (made once, reused)
  local dir="$1"
  mkdir -p "$dir"
  if [[ ! -f "$dir/train/metadata.json" ]]; then
    for split in train dev; do
      # One sentence per line, a blank line after every 8 sentences (documents for sentence pairs).
      tail -n +2 "data/demo/glue/SST-2/$split.tsv" | cut -f1 | awk '{print} NR % 8 == 0 {print ""}' > "$dir/$split.txt"
    done
    "$PY" scripts/create_pretraining_data.py --input_file "$dir/train.txt" --output_dir "$dir/train" \
      --vocab data/demo/vocab --max_seq_length 64 --max_predictions_per_seq 10 --dupe_factor 5 --progress false
    "$PY" scripts/create_pretraining_data.py --input_file "$dir/dev.txt" --output_dir "$dir/heldout" \
      --vocab data/demo/vocab --max_seq_length 64 --max_predictions_per_seq 10 --dupe_factor 1 --progress false
  fi
  if [[ ! -f "$dir/teacher.params" ]]; then
    # A random teacher (no training): Normal(0.02) weights, with the MLM head's LayerNorm scale raised to 25 so
    # that its predictions are sharp (entropy about 2.2 nats) and depend on the context, which the candidates
    # then have to learn in n steps. (A teacher pretrained for a few hundred steps on the demo text predicts
    # little more than token frequencies, which every candidate matches within 40 steps: e* cannot tell them
    # apart.)
    "$PY" - "$dir/teacher.params" <<'PYEOF'
import sys
import mxnet as mx
from bort.checkpoint import get_bort_model
from bort.params import save_parameters
from bort.tokenizer import BortTokenizer
mx.random.seed(0)
teacher, _ = get_bort_model(None, vocab_size=BortTokenizer.from_directory("data/demo/vocab").vocab_size,
                            num_layers=3, num_heads=4, units=64, hidden_size=256, max_length=64)
scale = teacher.decoder[2].gamma
scale.set_data(mx.nd.ones_like(scale.data()) * 25.0)
save_parameters(teacher, sys.argv[1])
PYEOF
  fi
}

DEMO_TEACHER=(--teacher_config '{"num_heads": 4}' --seq_len 64 --steps 60 --lr 2e-3 --warmup_ratio 0.05
              --batch_size 16 --batch_size_eval 32)
case "$MODE" in
  DEMO|EXPERIMENT)
    # Tiny models are bound by per-operator overhead: extra OpenMP threads only add contention.
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    DATA=runs/extract/demo_data
    demo_data "$DATA"
    OUT="${OUT:-runs/extract/$MODE}"
    mkdir -p "$OUT"
    if [[ "$MODE" == DEMO ]]; then
      echo '{"num_layers": [1, 2, 3], "num_heads": [4], "units": [32, 64], "hidden_size": [64, 128]}' > "$OUT/space.json"
      RUN=(--output_dir "$OUT/extraction" --epsilon 0.1 --interval_size 4)
    else
      echo '{"num_layers": [1, 2, 3], "num_heads": [2, 4], "units": [32, 64], "hidden_size": [64, 128]}' > "$OUT/space.json"
      RUN=(--output_dir "$OUT" --experiment --experiment_forms ratio,product --epsilon 0.1 --interval_size 2)
    fi
    RESUME=()
    [[ -f "$OUT/extraction/state.json" || -f "$OUT/exhaustive/state.json" ]] && RESUME=(--resume)
    exec "$PY" scripts/extract_subarchitecture.py --teacher_params "$DATA/teacher.params" "${DEMO_TEACHER[@]}" \
      --space "$OUT/space.json" --train_files "$DATA/train/*.npz" --eval_files "$DATA/heldout/*.npz" \
      "${RUN[@]}" "${RESUME[@]}" "$@"
    ;;
  PAPER)
    TEACHER="$1" TRAIN="$2" EVAL="$3"
    shift 3
    OUT="${OUT:-runs/extract/PAPER}"
    ARGS=(--teacher_params "$TEACHER" --teacher_config "${TEACHER_CONFIG:-roberta_24_1024_16}" --space paper
          --train_files "$TRAIN" --eval_files "$EVAL" --output_dir "$OUT" --device "${DEVICE:-gpu}"
          --steps "${STEPS:-2000}" --seq_len 128 --batch_size 32 --lr 1e-4 --epsilon 0.1 --interval_size 8)
    [[ -f "$OUT/state.json" ]] && ARGS+=(--resume)
    NUM_PROCS="${NUM_PROCS:-1}"
    # Before any work, once for all workers: stop if this machine's GPUs cannot run the installed MXNet wheel.
    "$PY" scripts/check_gpu.py --count "$NUM_PROCS" --flags "${ARGS[@]}" "$@"
    if [[ "$NUM_PROCS" -gt 1 ]]; then
      exec horovodrun -np "$NUM_PROCS" -H "localhost:$NUM_PROCS" --gloo \
        "$PY" scripts/extract_subarchitecture.py --horovod "${ARGS[@]}" "$@"
    fi
    exec "$PY" scripts/extract_subarchitecture.py "${ARGS[@]}" "$@"
    ;;
  PAPER_TABLE)
    # One thread by default: on a small shared machine a second OpenMP thread waiting on a busy core made single
    # timings jump 20x; set OMP_NUM_THREADS to time with more.
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    OUT="${OUT:-runs/extract/PAPER_TABLE}"
    exec "$PY" scripts/extract_subarchitecture.py --surrogates_only --teacher_config roberta_24_1024_16 --space paper \
      --seq_len 128 --mark bort=D4-A8-H1024-I768 --output_dir "$OUT" --force \
      --time_candidates "D4-A8-H1024-I768,D2-A4-H512-I256,D2-A8-H1024-I768,D4-A8-H768-I1024,D4-A8-H512-I3072,D6-A8-H768-I3072,D12-A12-H768-I3072,D12-A16-H1024-I3072,D8-A16-H1024-I256,D4-A4-H1024-I256" \
      --timing_repeats 11 "$@"
    ;;
esac
