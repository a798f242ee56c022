#!/usr/bin/env bash
# The service's load scenarios on loopback: starts stockroom-service
# (release) on 127.0.0.1:$PORT, runs the generator's scenarios against it,
# stops it by its pid. Each scenario exits non-zero if its checks fail
# (0 oversold, 0 duplicates, the generator's tally = the service's audit).
#
#   scripts/load.sh --short     CI form: seconds per scenario (< 1 min total)
#   scripts/load.sh             full form: flash sale 1,000,000 attempts on
#                               200 connections, retry storm, 60 s sustained,
#                               overload at --overload-rate (default 2x sustained)
#   JSON=1 scripts/load.sh      --json summaries on stdout
#   SERVICE_FLAGS="--shed-lag-target-us 0" scripts/load.sh
#                               extra flags for the service (here: admission
#                               by scheduling lag off)
#
# Bounded: every scenario has a request count and a duration cap; the
# service is stopped on exit whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
short=0
[ "${1:-}" = "--short" ] && short=1
port=${PORT:-18480}
rate=${RATE:-20000}
json=()
[ "${JSON:-0}" = 1 ] && json=(--json)
cargo build --release --quiet -p stockroom-service -p stockroom-loadgen
bin="${CARGO_TARGET_DIR:-target}/release"
"$bin/stockroom-service" --demo --listen "127.0.0.1:$port" --queue 8192 --workers 2 ${SERVICE_FLAGS:-} 2>/tmp/stockroom-service.$port.log &
service=$!
trap 'kill "$service" 2>/dev/null; wait "$service" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.1
done
gen() { "$bin/stockroom-loadgen" --target "127.0.0.1:$port" "${json[@]}" "$@"; }
if [ "$short" = 1 ]; then
    gen --scenario flash --requests 20000 --rate 5000 --connections 50 --duration 10
    gen --scenario retry --requests 20000 --rate 5000 --connections 50 --duration 10
    gen --scenario sustained --requests 30000 --rate 5000 --connections 50 --duration 10
    gen --scenario overload --requests 40000 --rate 20000 --connections 100 --duration 5
else
    gen --scenario flash --requests 1000000 --rate "$rate" --connections 200 --duration 120
    gen --scenario retry --requests 400000 --rate "$rate" --connections 200 --duration 60
    gen --scenario sustained --requests $((rate * 60)) --rate "$rate" --connections 200 --duration 60
    overload_rate=${OVERLOAD_RATE:-$((rate * 2))}
    gen --scenario overload --requests $((overload_rate * 30)) --rate "$overload_rate" --connections 400 --duration 30
fi
