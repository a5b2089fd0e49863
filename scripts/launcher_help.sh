# Sourced by the run_*.sh launchers (after they cd to the repository): their --help and their usage errors.
# usage: the launcher's header comment, up to its first non-comment line.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

# answer_help MIN_ARGS SCRIPT "$@": with -h/--help, print the usage (then SCRIPT's own flags when .venv exists;
# SCRIPT may be empty) and exit 0, before any environment set-up; with fewer than MIN_ARGS arguments, print the
# usage and exit 2.
answer_help() {
  local min_args="$1" script="$2"
  shift 2
  if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    usage
    if [[ -n "$script" && -x .venv/bin/python ]]; then
      echo
      echo "Flags of $script:"
      .venv/bin/python "$script" --help
    fi
    exit 0
  fi
  if [[ $# -lt $min_args ]]; then
    usage
    exit 2
  fi
}
