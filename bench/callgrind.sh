#!/usr/bin/env bash
# Instructions per request of one figure of simulator/examples/bench_server.rs, for the
# simulator and for its ceiling, counted by valgrind's callgrind (installed from Debian's
# packages when missing): the server runs under callgrind, its counters are zeroed once
# it is seeded, wrk loads the ceiling for SECONDS and callgrind dumps, then the same for
# the simulator. Unlike throughput, the counts do not move with the machine's load, so
# they tell whether a change to the hot path helped; the dumps are left in the printed
# directory for `callgrind_annotate`.
# Usage: bench/callgrind.sh FIGURE [SECONDS, default 5] [USERS, default 10000]
#   e.g. bench/callgrind.sh load_by_id
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/bench_server.sh
FIGURE=${1:?usage: bench/callgrind.sh FIGURE [SECONDS] [USERS]}
SECONDS_PER=${2:-5}
USERS=${3:-10000}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
install() {
  sudo apt-get install -y "$@" 2>/dev/null || apt-get install -y "$@"
}
command -v wrk >/dev/null || install wrk
command -v valgrind >/dev/null || install valgrind
cargo build --release -q -p acs-simulator --example bench_server
dir=$(mktemp -d)
valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.%p.out" \
  "$TARGET_DIR/release/examples/bench_server" "$USERS" 100000 "$dir" > "$dir/urls" 2> "$dir/valgrind.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
wait_for_bench_server "$dir" "$server" "$dir/valgrind.log"
command=$(awk -v f="$FIGURE" '$1 == "FIGURE" && $2 == f {print $3}' "$dir/urls")
[ -n "$command" ] || { echo "no figure $FIGURE in:"; grep '^FIGURE' "$dir/urls"; exit 1; }
for target in ceiling simulator; do
  if [ $target = ceiling ]; then url="$CEILING/$FIGURE"; else url="$SIM/$command.fcgi?session=$S"; fi
  callgrind_control -z $server >/dev/null 2>&1
  requests=$(wrk -t1 -c4 -d"${SECONDS_PER}s" -s "$dir/$FIGURE.lua" "$url" | awk '/requests in/ {print $1}')
  callgrind_control -d $target $server >/dev/null 2>&1
  sleep 1
  dump=$(ls -t "$dir"/callgrind.*.out.* | head -1)
  total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo "$FIGURE ($USERS users), $target: $requests requests, $((total / requests)) instructions a request ($dump)"
done
