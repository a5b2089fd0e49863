#!/usr/bin/env bash
# Runs the whole test suite. Creates .venv/ first when it is missing (scripts/setup_env.sh).
# Extra arguments go to pytest, e.g. ./run_tests.sh tests/test_model.py -k fixtures
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
scripts/setup_env.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MXNET_ENGINE_TYPE="${MXNET_ENGINE_TYPE:-ThreadedEnginePerDevice}"
exec .venv/bin/python -m pytest "${@:-tests}" -q -p no:cacheprovider
