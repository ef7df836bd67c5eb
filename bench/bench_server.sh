# Sourced by bench/http.sh and bench/callgrind.sh: waits for the bench_server example
# started with output in DIR/urls (process PID) to be seeded and reads where it serves.
# Sets SIM (the simulator's URL), SESSION (its session token), S (the token
# percent-encoded for a query) and CEILING (the ceiling's URL).
# Usage: wait_for_bench_server DIR PID [WHAT TO SHOW WHEN IT DIED]
wait_for_bench_server() {
  local dir=$1 pid=$2 why=${3:-}
  while ! grep -q '^READY' "$dir/urls" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "bench_server died${why:+: $why}"; exit 1; }
    sleep 0.2
  done
  read -r _ SIM SESSION < <(grep '^SIM' "$dir/urls")
  read -r _ CEILING < <(grep '^CEILING' "$dir/urls")
  S=$(python3 -c "import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=''))" "$SESSION")
}
