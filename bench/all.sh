#!/usr/bin/env bash
# Every figure of BENCHMARKS.md in one go (about 10 minutes on a 2-core machine, release
# builds included), each with the same command BENCHMARKS.md gives for it; output goes to
# target/bench-all/<figure>.txt and a summary line per figure to standard output.
# Usage: bench/all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench-all
mkdir -p "$out"
run() { # name command...
    local name=$1
    shift
    local started=$SECONDS
    "$@" > "$out/$name.txt" 2>&1
    echo "$name: done in $((SECONDS - started)) s ($out/$name.txt)"
}
run http bash bench/http.sh 10
run online bash bench/online.sh 10000 10
run fleet-1000 cargo run --release -q -p acs-simulator --example fleet_footprint -- 1000
run fleet-5000 cargo run --release -q -p acs-simulator --example fleet_footprint -- 5000
cargo build --release -q -p acs-conformance
run conformance /usr/bin/time -v ./target/release/acs-conformance
run sync cargo run --release -q -p acs-core --example sync_convergence -- 10000 20 100
run enroll cargo run --release -q -p acs-core --example enroll_throughput -- 100000
run domain cargo bench -p acs-core --bench domain
