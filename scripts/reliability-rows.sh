# Sourced by scripts/chaos and scripts/history: turns the summary lines a
# reliability test prints ("<prefix>: ..."; the fault list after
# "faults: ") into rows of the Results table of docs/reliability.md, so the
# table is regenerated from runs rather than written by hand.
#
#   results_row RUN COMMAND LOG PREFIX STATUS SECONDS
results_row() {
  local run=$1 cmd=$2 log=$3 prefix=$4 status=$5 secs=$6
  local lines faults ops
  lines=$(grep -E "^${prefix}: " "$log" | sed -E "s/^${prefix}: //" || true)
  # Each fault once, with how often it was injected (member names dropped).
  faults=$(printf '%s\n' "$lines" | grep -oE 'faults: .*' | sed -E 's/^faults: //; s/ (Delay|Lossy) \{[^}]*\}//g' \
    | tr ',' '\n' \
    | sed -E 's/^ +//; s/ m[0-9]+//g' | grep -v '^$' | sort | uniq -c | sort -rn \
    | awk '{n=$1; $1=""; sub(/^ /, ""); printf "%s%s ×%d", (NR > 1 ? ", " : ""), $0, n}' || true)
  ops=$(printf '%s\n' "$lines" | grep -vE '^seed [0-9]+,|checked in ' | sed -E 's/;? ?faults: .*$//' \
    | awk '{printf "%s%s", (NR > 1 ? "; " : ""), $0}' || true)
  printf '| %s | `%s` | %s | %s | %s (%s s) |\n' "$run" "$cmd" "${faults:-none}" "${ops:-see log}" "$status" "$secs"
}

# The table's head, as in docs/reliability.md.
results_head() {
  echo "| run | command | faults injected | operations | result |"
  echo "|---|---|---|---|---|"
}
