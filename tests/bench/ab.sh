#!/usr/bin/env bash
# Side-by-side load on two server binaries (e.g. before and after a
# change): alternating rounds, a fresh data directory each, the same load.
#
#   cargo build --release -p switchboard && cp target/release/switchboard /tmp/before
#   # …change, rebuild…
#   tests/bench/ab.sh /tmp/before target/release/switchboard [rounds]
#
# The load is the load generator's `steady` scenario (business hours pinned
# open): by default 20,000 messages in POSTs of 50 as fast as 16 requests in
# flight allow, for throughput. `AB_LOAD` replaces its arguments, e.g. the
# acknowledgement target at 1,000 messages/s, one message per POST:
#
#   AB_LOAD="--rate 1000 --messages 20000 --batch 1" tests/bench/ab.sh /tmp/before target/release/switchboard
#
# Prints each round's sustained messages/s, its acknowledgement latency and
# the server's CPU ticks (user+system, from /proc) for the whole run.
set -euo pipefail
a=$(realpath "$1"); b=$(realpath "$2"); rounds=${3:-3}
load=${AB_LOAD:---rate 0 --messages 20000 --batch 50 --concurrency 16}
root=$(cd "$(dirname "$0")/../.." && pwd)
cargo build --release -q -p switchboard-bench --bin loadgen --manifest-path "$root/Cargo.toml"
loadgen="${CARGO_TARGET_DIR:-$root/target}/release/loadgen"
for round in $(seq "$rounds"); do
  for bin in "$a" "$b"; do
    dir=$(mktemp -d)
    (cd "$dir" && SWITCHBOARD_SERVER__LISTEN=127.0.0.1:8092 RUST_LOG=warn exec "$bin" serve >serve.log 2>&1) &
    pid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:8092/healthz >/dev/null 2>&1 && break; sleep 0.1; done
    # shellcheck disable=SC2086 # the load's arguments are split on purpose
    "$loadgen" --url http://127.0.0.1:8092 $load --no-report --data-dir "$dir/data" >"$dir/loadgen.log" 2>&1 ||
      { echo "round $round $bin: the load generator failed:"; cat "$dir/loadgen.log"; }
    ticks=$(awk '{print $14+$15}' "/proc/$pid/stat")
    echo "round $round $bin: $(grep sustained "$dir/loadgen.log") — $(grep 'webhook ack' "$dir/loadgen.log") — server CPU ticks $ticks"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
  done
done
