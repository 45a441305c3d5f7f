#!/usr/bin/env bash
# The reference results in assets/reference/, batch by batch, resumable: run it again and every
# finished session is skipped. After each batch the tables are re-made and committed (those paths
# only), with the command and its wall time in assets/reference/RUNS.md.
#
#   FVTUI_DATA_DIR=../shared/datasets benchmarks/reference_runs.sh [FIRST_BATCH]
set -uo pipefail
cd "$(dirname "$0")/.."
FVTUI=${FVTUI:-.venv/bin/fvtui}
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

[ -f "$RUNS" ] || printf '# Reference runs\n\nEvery batch of `benchmarks/reference_runs.sh`: the command, when it ran and its wall time, on %s (%s cores, no GPU).\n\n' \
  "$(uname -m)" "$(nproc)" > "$RUNS"

for i in "${!batches[@]}"; do
  [ "$i" -lt "${1:-0}" ] && continue
  read -r dataset name rest <<< "${batches[$i]}"
  out=assets/reference/${name#bench-}
  cmd="fvtui bench --dataset $dataset --name $name $rest --seeds $SEEDS"
  start=$(date +%s); started=$(date -u +%FT%TZ)
  # shellcheck disable=SC2086
  $FVTUI bench --dataset "$dataset" --name "$name" $rest --seeds "$SEEDS" > "sessions/$name.batch$i.log" 2>&1
  rc=$?
  wall=$(( $(date +%s) - start ))
  $FVTUI bench --name "$name" --report-only --out "$out" >> "sessions/$name.batch$i.log" 2>&1
  echo "- batch $i, started $started, exit $rc, $((wall / 60)) min $((wall % 60)) s: \`$cmd\`" >> "$RUNS"
  git add "$out" "$RUNS" && git commit -q -m "Reference results: $name batch $i ($rest, seeds $SEEDS), $((wall / 60)) min" -- "$out" "$RUNS" \
    || echo "commit of batch $i failed" >&2
done
