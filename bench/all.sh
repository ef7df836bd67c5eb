#!/usr/bin/env bash
# Every figure of BENCHMARKS.md in one go (about 70 minutes on a 2-core machine at the
# default sizes, release builds included), each with the same command BENCHMARKS.md gives
# for it; each output goes to $CARGO_TARGET_DIR/bench-all/<figure>.txt (target/ by
# default). Every figure ends in one line of the shape
#   RESULT: <figure> = <value> (target <target>, ratio <r>, met|missed)
# (the ratio is the value over the target's bound, `-` for a figure that is only
# recorded); they are printed again together at the end. Outputs that do not print that
# line themselves (the simulator's fleet, the conformance run, criterion) are turned into
# it here.
#
# Sizes (environment, defaults in brackets); smaller ones give a quick run:
#   HTTP_SECONDS [3] HTTP_RUNS [3]     bench/http.sh: seconds per wrk run, runs per figure
#   ONLINE_MEMBERS [10000] ONLINE_SECONDS [10]     bench/online.sh
#   FLEET_SMALL [1000] FLEET_LARGE [10000]          fleet_footprint terminals
#   SYNC_PEOPLE [10000] SYNC_TERMINALS [20] SYNC_TRIALS [100]
#   ENROLL_PEOPLE [100000]
#   STORE_WRITERS [4] STORE_WRITES [2000]   store_writes (ACS_BENCH_POSTGRES_URL adds PostgreSQL)
#   READ_MEMBERS [10000] READ_SECONDS [20] READ_WRITES [200]
#   STARTUP_SIZES ["100000x10 1000x1000 100000x1000x100"]
#                                          tenant start-up, MEMBERSxTERMINALS[xFACILITIES] each
#   INSTANCES_SIZE ["10000x100"]           bench/instances.sh, PEOPLExTERMINALS ("" skips it)
#   DOMAIN [1]                             0 skips the criterion benches
# Usage: bench/all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
out=$TARGET_DIR/bench-all
mkdir -p "$out"
rm -f "$out"/*.txt "$out"/*.results
run() { # name command...
    local name=$1
    shift
    local started=$SECONDS
    if "$@" > "$out/$name.txt" 2>&1; then
        echo "$name: done in $((SECONDS - started)) s, load average $(cut -d' ' -f1-3 /proc/loadavg) ($out/$name.txt)"
    else
        echo "$name: FAILED after $((SECONDS - started)) s ($out/$name.txt)"
        echo "RESULT: $name = failed (target the run completes, ratio -, missed)" >> "$out/$name.txt"
    fi
    grep '^RESULT:' "$out/$name.txt" || true
}
# Turns the lines of outputs that do not print the shape above into it (stdin: the output).
normalize() { # kind
    python3 -c '
import re, sys
kind, text = sys.argv[1], sys.stdin.read()
def result(figure, value, target, ratio, met):
    verdict = "met" if met else "missed"
    print(f"RESULT: {figure} = {value} (target {target}, ratio {ratio}, {verdict})")
if kind == "fleet":
    for m in re.finditer(r"RESULT: fleet of (\d+)(?: \([\d,]+ address(?:es)?\))?: started in (\d+) ms", text):
        ms = float(m[2]); result(f"fleet of {m[1]} start-up", f"{ms:.0f} ms", "<= 5,000 ms", f"{ms / 5000:.2f}", ms <= 5000)
    for m in re.finditer(r"RESULT: fleet of (\d+): (\d+) KiB resident per terminal", text):
        kib = float(m[2]); result(f"fleet of {m[1]} RSS per terminal", f"{kib:.0f} KiB", "<= 300 KiB", f"{kib / 300:.2f}", kib <= 300)
    for m in re.finditer(r"RESULT: fleet of (\d+): login p99 ([\d.]+) ms", text):
        result(f"fleet of {m[1]} login p99, 1 % busy", f"{m[2]} ms", "recorded", "-", True)
elif kind == "conformance":
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if wall:
        s = int(wall[1] or 0) * 3600 + int(wall[2]) * 60 + float(wall[3])
        result("conformance suite against the in-process simulator", f"{s:.2f} s", "<= 15 s", f"{s / 15:.2f}", s <= 15)
    if rss:
        result("conformance suite max RSS", f"{int(rss[1]) // 1024} MiB", "recorded", "-", True)
elif kind == "domain":
    for m in re.finditer(r"^(\S.*?)\s*\n?\s+time:\s+\[\S+ \S+ (\S+ \S+) \S+ \S+\]", text, re.M):
        result(f"domain bench {m[1].strip()}", m[2], "recorded", "-", True)
' "$1"
}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(date -u '+%F %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
run http bash bench/http.sh "${HTTP_SECONDS:-3}" "${HTTP_RUNS:-3}"
run online bash bench/online.sh "${ONLINE_MEMBERS:-10000}" "${ONLINE_SECONDS:-10}"
run fleet-small cargo run --release -q -p acs-simulator --example fleet_footprint -- "${FLEET_SMALL:-1000}" 0.01
normalize fleet < "$out/fleet-small.txt" | tee -a "$out/fleet-small.txt.results"
# A closed login leaves its terminal's port in TIME_WAIT for a minute, and binding a
# fleet's ports meanwhile makes the kernel search past them (1,000 terminals took 1.4 s
# instead of 0.1 s right after a 10,000-terminal run).
sleep 60
run fleet-large cargo run --release -q -p acs-simulator --example fleet_footprint -- "${FLEET_LARGE:-10000}" 0.01
normalize fleet < "$out/fleet-large.txt" | tee -a "$out/fleet-large.txt.results"
cargo build --release -q -p acs-conformance
run conformance /usr/bin/time -v "$TARGET_DIR/release/acs-conformance"
normalize conformance < "$out/conformance.txt" | tee -a "$out/conformance.txt.results"
run sync cargo run --release -q -p acs-core --example sync_convergence -- "${SYNC_PEOPLE:-10000}" "${SYNC_TERMINALS:-20}" "${SYNC_TRIALS:-100}"
run enroll cargo run --release -q -p acs-core --example enroll_throughput -- "${ENROLL_PEOPLE:-100000}"
run store-writes cargo run --release -q -p acs-core --example store_writes -- "${STORE_WRITERS:-4}" "${STORE_WRITES:-2000}"
run read-under-writes cargo run --release -q -p acs-core --example read_under_writes -- "${READ_MEMBERS:-10000}" "${READ_SECONDS:-20}" "${READ_WRITES:-200}"
for size in ${STARTUP_SIZES:-100000x10 1000x1000 100000x1000x100}; do
    IFS=x read -r members terminals facilities <<< "$size"
    run "tenant-startup-$size" bash bench/tenant_startup.sh "$members" "$terminals" "${facilities:-1}"
done
instances_size=${INSTANCES_SIZE-10000x100}
if [ -n "$instances_size" ]; then
    run "instances-$instances_size" bash bench/instances.sh "${instances_size%x*}" "${instances_size#*x}"
fi
if [ "${DOMAIN:-1}" != 0 ]; then
    run domain cargo bench -p acs-core --bench domain
    normalize domain < "$out/domain.txt" | tee -a "$out/domain.txt.results"
fi
echo "== every figure"
# The fleet's own lines have the older shape: only their normalized form is repeated.
for f in "$out"/*.txt; do
    case $f in
    */fleet-*) ;;
    *) grep '^RESULT:' "$f" || true ;;
    esac
    if [ -f "$f.results" ]; then cat "$f.results"; fi
done
echo "finished: $(date -u '+%F %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
