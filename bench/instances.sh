#!/usr/bin/env bash
# Several instances (BENCHMARKS.md): people writes/s, convergence and decisions/s with p99
# for PEOPLE people × TERMINALS simulated terminals, served by one `acs-core serve` on
# SQLite, then by 1, 2 and 3 on PostgreSQL sharing one tenant, then by 2 and 3 on
# PostgreSQL with a tenant each (the people and terminals dealt out over them) – same
# machine, same run. PostgreSQL is the server in ACS_BENCH_POSTGRES_URL, or a throwaway
# cluster started (and stopped) here. MODES="shared per-instance" by default.
# Usage: bench/instances.sh PEOPLE TERMINALS [DECISION_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
PEOPLE=${1:-10000}
TERMINALS=${2:-100}
SECONDS_OF_DECISIONS=${3:-10}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p acs-core --bins --examples
url=${ACS_BENCH_POSTGRES_URL:-}
if [ -z "$url" ]; then
    eval "$(scripts/throwaway-postgres.sh start)"
    trap 'scripts/throwaway-postgres.sh stop "$ACS_THROWAWAY_POSTGRES_DIR"' EXIT
    url=$ACS_TEST_POSTGRES_URL
fi
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(date -u '+%F %H:%M UTC')"
run() { # backend instances mode
    RUST_LOG=warn /usr/bin/time -f "  whole run: max RSS of the example (fleet included) %M KiB, %e s wall" \
        "$TARGET_DIR/release/examples/instances_scale" "$1" "$2" "$PEOPLE" "$TERMINALS" "$SECONDS_OF_DECISIONS" "$3"
}
for mode in ${MODES:-shared per-instance}; do
    if [ "$mode" = shared ]; then
        run sqlite 1 shared
        for n in 1 2 3; do run "$url" "$n" shared; done
    else
        for n in 2 3; do run "$url" "$n" per-instance; done
    fi
done
