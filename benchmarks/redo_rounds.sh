#!/usr/bin/env bash
# Run a reference session's rounds again from round R on, at the code it ran with: for rounds whose
# samples were cut short by something outside the protocol (the SIGSTOP pauses of 2026-12-01/02, which
# ran a paused query's wall-clock cap down). Rounds R.. are moved to sessions/aside/ (kept, in no
# table), the session is resumed headless to its 20 rounds (run again, the script resumes the redo),
# the tables and digests are made again, and the redo is logged in assets/reference/RUNS.md and
# committed (those paths only).
#
#   FVTUI_DATA_DIR=../shared/datasets FVTUI_CODE=<worktree at the session's commit> \
#     benchmarks/redo_rounds.sh DATASET SESSION ROUND
set -uo pipefail
cd "$(dirname "$0")/.."
HERE=$(pwd)
CODE=$(cd "${FVTUI_CODE:?set FVTUI_CODE to a worktree at the commit the session ran}" && pwd)
PYTHON=${PYTHON:-$HERE/.venv/bin/python}
dataset=$1 session=$2 round=$3
bench=sessions/bench-$dataset out=assets/reference/$dataset RUNS=assets/reference/RUNS.md
fvtui() { (cd "$CODE" && PYTHONPATH="$CODE" "$PYTHON" -m fvtui "$@"); }

[ -d "$bench/$session/rounds" ] || { echo "no session $bench/$session" >&2; exit 2; }
aside=sessions/aside/bench-$dataset/$session
if [ -z "$(ls -A "$aside" 2>/dev/null)" ]; then  # else a redo already began: it resumes
  mkdir -p "$aside"
  for r in "$bench/$session"/rounds/[0-9]*; do
    [ "$((10#$(basename "$r")))" -ge "$round" ] && mv "$r" "$aside/"
  done
fi
start=$(date +%s); started=$(date -u +%FT%TZ)
fvtui --sessions-dir "$HERE/$bench" resume "$session" --headless --rounds 20 > "sessions/redo-$dataset-$session.log" 2>&1
rc=$?
wall=$(( $(date +%s) - start ))
# the tables with this checkout's fvtui: an older one cannot read the digests newer code wrote
(PYTHONPATH="$HERE" "$PYTHON" -m fvtui --sessions-dir "$HERE/sessions" bench --name "bench-$dataset" --report-only \
  --out "$HERE/$out") >> "sessions/redo-$dataset-$session.log" 2>&1 || rc=$?
echo "- redo, started $started, exit $rc, $((wall / 60)) min $((wall % 60)) s, code $(git -C "$CODE" rev-parse --short HEAD): $dataset $session from round $round (rounds $round.. before in sessions/aside/): \`fvtui resume $session --headless --rounds 20\`" >> "$RUNS"
( flock 9 && git add "$out" "$RUNS" \
    && git commit -q -m "Reference results: $dataset $session from round $round again (cut short by a pause before), $((wall / 60)) min" -- "$out" "$RUNS" ) \
  9> "$(git rev-parse --git-dir)/reference-runs.lock" || echo "commit of the redo failed" >&2
exit $rc
