#!/usr/bin/env bash
# Run the fault-injection suite N times in a row (default 10); stop at the first failing run.
# Usage: tools/fault_runs.sh [N] [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
shift || true
export QT_QPA_PLATFORM=offscreen
for i in $(seq 1 "$n"); do
  start=$(date +%s)
  if ! .venv/bin/python -m pytest -q -p no:cacheprovider tests/faults "$@" > "/tmp/fault_run_$i.log" 2>&1; then
    echo "run $i: FAILED (log /tmp/fault_run_$i.log)"
    tail -n 30 "/tmp/fault_run_$i.log"
    exit 1
  fi
  echo "run $i: $(tail -n 1 "/tmp/fault_run_$i.log") ($(( $(date +%s) - start )) s)"
done
echo "all $n runs passed"
