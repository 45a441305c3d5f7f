#!/usr/bin/env bash
# The reference results in assets/reference/, batch by batch, resumable: run it again and every
# finished session is skipped, on another machine too (the output folders keep a digest of each
# finished session, committed with the tables). After each batch the tables are re-made and
# committed (those paths only), with the command and its wall time in assets/reference/RUNS.md.
#
#   FVTUI_DATA_DIR=../shared/datasets benchmarks/reference_runs.sh [FIRST_BATCH [LAST_BATCH]]
#
# FVTUI_CODE=DIR runs the fvtui of another checkout (e.g. a `git worktree` of a fixed commit), so
# that editing this one cannot change a benchmark that is running; sessions and results stay here.
set -uo pipefail
cd "$(dirname "$0")/.."
HERE=$(pwd)
CODE=$(cd "${FVTUI_CODE:-.}" && pwd)
PYTHON=${PYTHON:-$HERE/.venv/bin/python}
fvtui() { (cd "$CODE" && PYTHONPATH="$CODE" "$PYTHON" -m fvtui --sessions-dir "$HERE/sessions" "$@"); }
RUNS=assets/reference/RUNS.md
CHEAP=random+none,random+fgsm,badge+none,badge+fgsm,dfal+deepfool,dfal+none,dfal+fgsm,fvaal+none
FV=fvaal+fv,dfal+fv,badge+fv
SEEDS=0-4

batches=(
  "fashionmnist bench-fashionmnist --methods $CHEAP --jobs 2"
  "mnist bench-mnist --methods $CHEAP --jobs 2"
  "fashionmnist bench-fashionmnist --methods $FV --jobs 1"
  "mnist bench-mnist --methods $FV --jobs 1"
  "fashionmnist bench-fashionmnist-torch-init --methods $CHEAP --init torch --jobs 2"
  "mnist bench-mnist-torch-init --methods $CHEAP --init torch --jobs 2"
  "fashionmnist bench-fashionmnist --methods random+fv --jobs 1"
  "mnist bench-mnist --methods random+fv --jobs 1"
)

code_commit=$(git -C "$CODE" rev-parse --short HEAD)
[ -f "$RUNS" ] || printf '# Reference runs\n\nEvery batch of `benchmarks/reference_runs.sh`: the command, when it ran and its wall time, on %s (%s cores, no GPU).\n\n' \
  "$(uname -m)" "$(nproc)" > "$RUNS"

for i in "${!batches[@]}"; do
  [ "$i" -lt "${1:-0}" ] && continue
  [ "$i" -gt "${2:-99}" ] && continue
  read -r dataset name rest <<< "${batches[$i]}"
  out=assets/reference/${name#bench-}
  cmd="fvtui bench --dataset $dataset --name $name $rest --seeds $SEEDS"
  start=$(date +%s); started=$(date -u +%FT%TZ)
  # shellcheck disable=SC2086
  fvtui bench --dataset "$dataset" --name "$name" $rest --seeds "$SEEDS" --out "$HERE/$out" > "sessions/$name.batch$i.log" 2>&1
  rc=$?
  wall=$(( $(date +%s) - start ))
  fvtui bench --name "$name" --report-only --out "$HERE/$out" >> "sessions/$name.batch$i.log" 2>&1
  echo "- batch $i, started $started, exit $rc, $((wall / 60)) min $((wall % 60)) s, code $code_commit: \`$cmd\`" >> "$RUNS"
  # two batches side by side may end together: one commit at a time (git's index lock refuses the other)
  ( flock 9 && git add "$out" "$RUNS" \
      && git commit -q -m "Reference results: $name batch $i ($rest, seeds $SEEDS), $((wall / 60)) min" -- "$out" "$RUNS" ) \
    9> "$(git rev-parse --git-dir)/reference-runs.lock" || echo "commit of batch $i failed" >&2
done
