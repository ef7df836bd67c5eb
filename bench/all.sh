#!/usr/bin/env bash
# Every figure of BENCHMARKS.md in one go (about half an hour on a 2-core machine, release
# builds included), each with the same command BENCHMARKS.md gives for it; each output goes
# to $CARGO_TARGET_DIR/bench-all/<figure>.txt (target/ by default). Every figure prints a
# `RESULT:` line with its value, its target, the ratio where the target is one, and whether
# it meets it; they are printed again together at the end.
# Usage: bench/all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
out=$TARGET_DIR/bench-all
mkdir -p "$out"
run() { # name command...
    local name=$1
    shift
    local started=$SECONDS
    if "$@" > "$out/$name.txt" 2>&1; then
        echo "$name: done in $((SECONDS - started)) s ($out/$name.txt)"
    else
        echo "$name: FAILED after $((SECONDS - started)) s ($out/$name.txt)"
    fi
    grep '^RESULT:' "$out/$name.txt" || true
}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(date -u '+%F %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
run http bash bench/http.sh 3 3
run online bash bench/online.sh 10000 10
run fleet-1000 cargo run --release -q -p acs-simulator --example fleet_footprint -- 1000 0.01
# A closed login leaves its terminal's port in TIME_WAIT for a minute, and binding a
# fleet's ports meanwhile makes the kernel search past them (1,000 terminals took 1.4 s
# instead of 0.1 s right after a 10,000-terminal run).
sleep 60
run fleet-10000 cargo run --release -q -p acs-simulator --example fleet_footprint -- 10000 0.01
cargo build --release -q -p acs-conformance
run conformance /usr/bin/time -v "$TARGET_DIR/release/acs-conformance"
run sync cargo run --release -q -p acs-core --example sync_convergence -- 10000 20 100
run enroll cargo run --release -q -p acs-core --example enroll_throughput -- 100000
run store-writes cargo run --release -q -p acs-core --example store_writes -- 4 2000
run read-under-writes cargo run --release -q -p acs-core --example read_under_writes -- 10000 20 200
run tenant-startup-100000x10 bash bench/tenant_startup.sh 100000 10
run tenant-startup-1000x1000 bash bench/tenant_startup.sh 1000 1000
run domain cargo bench -p acs-core --bench domain
echo "== every figure"
cat "$out"/*.txt | grep '^RESULT:' || true
