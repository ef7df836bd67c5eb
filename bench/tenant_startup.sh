#!/usr/bin/env bash
# Tenant start-up (BENCHMARKS.md): a core starting over a tenant of MEMBERS members (each
# with a card) and TERMINALS terminals, timed from opening the store until every terminal
# is known in sync holding its members; the core's resident set then. The terminals are
# served by `acs-sim fleet` in a process of its own, so the core's memory is measured
# alone; the fleet's resident set is printed too. With FACILITIES (1 by default) the
# members and terminals are spread over that many facilities of one card door each, every
# member a member of one facility only, so each terminal holds MEMBERS / FACILITIES people
# (both sizes must then be multiples of FACILITIES).
# Usage: bench/tenant_startup.sh MEMBERS TERMINALS [FACILITIES]
set -euo pipefail
cd "$(dirname "$0")/.."
MEMBERS=${1:-100000}
TERMINALS=${2:-10}
FACILITIES=${3:-1}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p acs-simulator --bin acs-sim
cargo build --release -q -p acs-core --example tenant_startup
tmp=$(mktemp -d)
fleet=
trap '[ -n "$fleet" ] && kill $fleet 2>/dev/null; rm -rf "$tmp"' EXIT
RUST_LOG=warn "$TARGET_DIR/release/acs-sim" fleet --count "$TERMINALS" --time-scale 0 \
  --manifest "$tmp/fleet.json" > "$tmp/fleet.out" 2>&1 &
fleet=$!
while ! grep -q 'terminals listening' "$tmp/fleet.out"; do
  kill -0 $fleet 2>/dev/null || { cat "$tmp/fleet.out"; exit 1; }
  sleep 0.2
done
grep -o 'started in [0-9]* ms' "$tmp/fleet.out" || true
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(date -u '+%F %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$TARGET_DIR/release/examples/tenant_startup" build "$tmp/acs.db" "$tmp/fleet.json" "$MEMBERS" "$FACILITIES"
RUST_LOG=warn /usr/bin/time -f 'core process: max RSS %M KiB, %e s wall, %U s user, %S s system' \
  "$TARGET_DIR/release/examples/tenant_startup" start "$tmp/acs.db" "$MEMBERS" "$TERMINALS" "$FACILITIES"
echo "fleet process RSS after sync: $(awk '/VmRSS/ {print int($2 / 1024) " MiB"}' /proc/$fleet/status)"
