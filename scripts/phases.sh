#!/usr/bin/env bash
# phases.sh NAME=COMMAND...: runs each COMMAND (with bash -c) in turn, then prints how long each
# phase took. The first phase that fails stops the run: the times so far are printed, with the
# failed phase marked, and its exit status is returned. `make test` and `make check` use it.
set -uo pipefail
[ $# -gt 0 ] || { echo "usage: scripts/phases.sh NAME=COMMAND..." >&2; exit 2; }

names=() secs=() marks=()
now() { date +%s%N; }
started=$(now)

report() {
  local i total
  total=$(( ($(now) - started) / 1000000 ))
  echo "== phases"
  for i in "${!names[@]}"; do
    printf '   %-10s %8s%s\n' "${names[$i]}" "${secs[$i]}" "${marks[$i]}"
  done
  printf '   %-10s %8s\n' total "$(fmt "$total")"
}

# fmt MS: milliseconds as "12.3s" or "4m05.6s" (integer arithmetic: no locale's decimal point)
fmt() {
  local ms=$1 tenths=$(($1 / 100 % 10)) s=$(($1 / 1000 % 60))
  if [ "$ms" -ge 60000 ]; then
    printf '%dm%02d.%ds' $((ms / 60000)) "$s" "$tenths"
  else
    printf '%d.%ds' $((ms / 1000)) "$tenths"
  fi
}

for phase in "$@"; do
  name=${phase%%=*}
  cmd=${phase#*=}
  [ "$name" != "$phase" ] && [ -n "$name" ] || { echo "phases.sh: $phase: want NAME=COMMAND" >&2; exit 2; }
  echo "== $name: $cmd"
  t0=$(now)
  bash -c "$cmd"
  rc=$?
  names+=("$name")
  secs+=("$(fmt $((($(now) - t0) / 1000000)))")
  if [ $rc -ne 0 ]; then
    marks+=("  FAILED (exit $rc)")
    report
    exit $rc
  fi
  marks+=("")
done
report
