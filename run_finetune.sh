#!/usr/bin/env bash
# Fine-tune Bort on one task, then write its test-set submission file(s).
#
#   ./run_finetune.sh TASK [bort-finetune flags...]
#
# TASK: a task name (CoLA, SST, MRPC, QQP, STS-B, MNLI, QNLI, RTE, WNLI, AX, BoolQ, CB, COPA, MultiRC, ReCoRD,
#   SuperGLUERTE, WiC, WSC, AXb, AXg, RACE-H, RACE-M) with the `release` preset (the release's settings:
#   1 epoch, batch 8, lr 5e-5, weight decay 110, warm-up 0.45, early stop 200; model/bort.params when there), or
#   DEMO   the `demo` preset: a small bundled sentiment task (data/demo/glue) on a CPU, in minutes;
#   TEST1  the release's GLUE smoke test (`smoke` preset): WNLI, 1 epoch, CPU, bundled data;
#   TEST2  the release's SuperGLUE smoke test (`smoke` preset): WSC, 1 epoch, CPU, bundled data.
# The presets live in bort/presets.py. Flags after TASK override them (see `bort-finetune --help`), e.g.
#   ./run_finetune.sh RTE --data_dir ~/glue_data --epochs 3       ./run_finetune.sh RTE --print_config
# NUM_PROCS=N (N > 1) trains data-parallel on N Horovod workers on this machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# --help (the header comment above, then scripts/finetune_bort.py) before any set-up; usage errors exit 2.
source scripts/launcher_help.sh
answer_help 1 "scripts/finetune_bort.py" "$@"
scripts/setup_env.sh
TASK="$1"
shift

case "$TASK" in
  DEMO)  ARGS=(--preset demo) ;;
  TEST1) ARGS=(--preset smoke --task_name WNLI --data_dir data/demo/glue) ;;
  TEST2) ARGS=(--preset smoke --task_name WSC --data_dir data/demo/superglue) ;;
  *)     ARGS=(--preset release --task_name "$TASK") ;;
esac
ARGS+=("$@")

NUM_PROCS="${NUM_PROCS:-1}"
if ! [[ "$NUM_PROCS" =~ ^[1-9][0-9]*$ ]]; then
  echo "error: NUM_PROCS must be a whole number >= 1, got '$NUM_PROCS'" >&2
  exit 2
fi
if [[ "$NUM_PROCS" -gt 1 && ! -x .venv/bin/horovodrun ]]; then
  echo "error: NUM_PROCS=$NUM_PROCS needs Horovod, which this environment lacks (it was installed with" \
       "BORT_SKIP_HOROVOD=1?); rerun scripts/setup_env.sh without it, or use NUM_PROCS=1" >&2
  exit 2
fi
# Before any work, once for all workers: stop if this machine's GPUs cannot run the installed MXNet wheel.
.venv/bin/python scripts/check_gpu.py --count "$NUM_PROCS" --flags "${ARGS[@]}"
if [[ "$NUM_PROCS" -gt 1 ]]; then
  PATH="$PWD/.venv/bin:$PATH" exec .venv/bin/horovodrun -np "$NUM_PROCS" -H "localhost:$NUM_PROCS" --gloo \
    .venv/bin/python scripts/finetune_bort.py "${ARGS[@]}" --distributed true
fi
exec .venv/bin/python scripts/finetune_bort.py "${ARGS[@]}"
