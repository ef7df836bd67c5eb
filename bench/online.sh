#!/usr/bin/env bash
# Issue 8, figure 6: how fast the core answers an Enterprise terminal's new_card.fcgi
# (decision, access event and idempotency record committed per request), with wrk from
# Debian's packages (installed when missing). Every request carries a new uuid and a card
# of one of the N members, so every answer is a recorded grant.
# Every row is measured next to the ceiling: a bare axum handler in the same process.
# wrk runs closed-loop (as fast as the connections allow); the target's own condition, p99
# at a steady 1,000 requests/s, is measured open-loop with oha from crates.io (installed
# with cargo when missing), whose latencies count from when each request was due.
# Usage: bench/online.sh [people, default 10000] [seconds, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
PEOPLE=${1:-10000}
SECONDS_PER=${2:-10}
command -v wrk >/dev/null || { sudo apt-get install -y wrk 2>/dev/null || apt-get install -y wrk; }
command -v oha >/dev/null || cargo install --locked oha
cargo build --release -q -p acs-core --example online_server
TARGET_DIR=${CARGO_TARGET_DIR:-target}
tmp=$(mktemp -d)
"$TARGET_DIR"/release/examples/online_server "$PEOPLE" > "$tmp/url" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$tmp"' EXIT
while ! grep -q RECEIVER "$tmp/url"; do sleep 0.2; done
read -r _ URL < <(grep '^RECEIVER' "$tmp/url")
read -r _ CEILING < <(grep '^CEILING' "$tmp/url")
cat > "$tmp/card.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
counter = 0
request = function()
  counter = counter + 1
  local card = 4294967296 + (counter % $PEOPLE)
  return wrk.format(nil, nil, nil, "device_id=7&identifier_id=2003398144&portal_id=1&panic=0&time=0&block_read_data=&block_read_error=0&card_value=" .. card .. "&uuid=" .. string.format("%08x", counter) .. string.format("%04x", math.random(0, 65535)))
end
LUA
echo "sample answer: $(curl -s -X POST "$URL/new_card.fcgi?session=" -d 'device_id=7&identifier_id=2003398144&portal_id=1&card_value=4294967297&uuid=sample01')"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(date -u +%F); $PEOPLE members"
# Each row side by side with the ceiling (same generator, same connections, same requests).
for c in 1 4 16; do
  echo "-- $c connection(s), ceiling (bare axum, fixed JSON):"
  wrk -t1 -c$c -d"${SECONDS_PER}s" --latency -s "$tmp/card.lua" "$CEILING/new_card.fcgi?session=" \
    | grep -E 'Requests/sec|^ +(50|90|99)%'
  echo "-- $c connection(s), the core's new_card.fcgi:"
  wrk -t1 -c$c -d"${SECONDS_PER}s" --latency -s "$tmp/card.lua" "$URL/new_card.fcgi?session=" \
    | grep -E 'Requests/sec|^ +(50|90|99)%'
done
# oha draws each URL from a pattern: a fresh uuid and one of 1,000 members' cards per
# request (the receiver reads the fields from the query as well as the body; the dots and
# the question mark are written as classes so that the pattern keeps them literal).
FIELDS='session=&device_id=7&identifier_id=2003398144&portal_id=1&card_value=4294970[0-9]{3}&uuid=[0-9a-f]{16}'
for target in "ceiling $CEILING" "new_card.fcgi $URL"; do
  set -- $target
  echo "-- 1,000 requests/s open-loop (oha), $1:"
  oha -z "${SECONDS_PER}s" -q 1000 --no-tui --rand-regex-url -m POST \
    "http://localhost:${2##*:}/new_card[.]fcgi[?]$FIELDS" > "$tmp/oha-$1.txt"
  grep -E 'Requests/sec|(50|90|99|99\.90)\.00% in|99\.90% in|\[[0-9]+\] [0-9]+ resp' "$tmp/oha-$1.txt"
done
# The target's own figure: p99 of new_card.fcgi at a steady 1,000 requests/s, with the
# ceiling's p99 under the same load beside it.
# oha prints the unit after the figure (secs or ms).
p99() { awk '/99\.00% in/ {printf "%.3f", ($4 == "ms" ? $3 : $3 * 1000); exit}' "$tmp/oha-$1.txt"; }
python3 - "$(p99 new_card.fcgi)" "$(p99 ceiling)" "$PEOPLE" <<'PY'
import sys
p99, ceiling, people = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
verdict = "met" if p99 <= 5 else "missed"
print(f"RESULT: online decision new_card.fcgi p99 at 1,000 req/s open-loop ({people:,} members) "
      f"= {p99:.2f} ms (target <= 5 ms, ratio {p99 / 5:.2f}, {verdict}; ceiling p99 {ceiling:.2f} ms)")
PY
