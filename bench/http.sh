#!/usr/bin/env bash
# HTTP figures of BENCHMARKS.md with wrk (installed from Debian's packages when missing):
#  1. simulator throughput for session_is_valid, load_objects of one user by id (10,000
#     users) and create_objects of one user, each as a ratio of a bare axum handler's
#     throughput measured in the same run with the same load generator;
#  2. load_objects with a where on a non-id column over 100,000 rows: latency percentiles.
# Usage: bench/http.sh [seconds per measurement, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=${1:-10}
command -v wrk >/dev/null || { sudo apt-get install -y wrk 2>/dev/null || apt-get install -y wrk; }
cargo build --release -q -p acs-simulator --example bench_server
tmp=$(mktemp -d)
./target/release/examples/bench_server 100000 > "$tmp/urls" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$tmp"' EXIT
while [ "$(wc -l < "$tmp/urls")" -lt 2 ]; do sleep 0.2; done
read -r _ SIM SESSION < <(grep '^SIM' "$tmp/urls")
read -r _ CEILING < <(grep '^CEILING' "$tmp/urls")
S=$(python3 -c "import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=''))" "$SESSION")

post() { # file-name body
  cat > "$tmp/$1.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$2'
LUA
}
post empty '{}'
post load '{"object":"users","where":{"users":{"id":4242}}}'
cat > "$tmp/create.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
counter = 20000
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, '{"object":"users","values":[{"id":' .. counter .. ',"name":"bench"}]}')
end
LUA
post where '{"object":"cards","where":{"cards":{"user_id":4242}}}'

rps() { wrk -t2 -c32 -d"${SECONDS_PER}s" -s "$tmp/$1.lua" "$2" | awk '/Requests\/sec/ {print $2}'; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(date -u +%F)"
# The ceiling is measured right before and right after each figure, and the figure is
# taken against their mean, so that a machine whose speed drifts during the run (a shared
# host) moves both sides of the ratio alike.
for case in "session_is_valid empty $SIM/session_is_valid.fcgi?session=$S" \
            "load_objects-one-user-by-id load $SIM/load_objects.fcgi?session=$S" \
            "create_objects-one-user create $SIM/create_objects.fcgi?session=$S"; do
  set -- $case
  before=$(rps empty "$CEILING/")
  r=$(rps "$2" "$3")
  after=$(rps empty "$CEILING/")
  python3 -c "
before, r, after = $before, $r, $after
ceiling = (before + after) / 2
print(f'$1: {r:.0f} req/s = {100 * r / ceiling:.1f} % of the ceiling ({before:.0f} before, {after:.0f} after)')"
done
echo "load_objects where cards.user_id = … over 100,000 cards (1 connection):"
wrk -t1 -c1 -d"${SECONDS_PER}s" --latency -s "$tmp/where.lua" "$SIM/load_objects.fcgi?session=$S" \
  | awk '/Latency Distribution/,/Requests/' | grep -E '50%|90%|99%'
