#!/usr/bin/env bash
# Side-by-side throughput of two server binaries (e.g. before and after a
# change): alternating rounds, a fresh data directory each, the same load.
#
#   cargo build --release -p switchboard && cp target/release/switchboard /tmp/before
#   # …change, rebuild…
#   tests/bench/ab.sh /tmp/before target/release/switchboard [rounds]
#
# Prints each round's sustained messages/s and the server's CPU ticks
# (user+system, from /proc) for the whole run.
set -euo pipefail
a=$(realpath "$1"); b=$(realpath "$2"); rounds=${3:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
cargo build --release -q -p switchboard-bench --bin loadgen --manifest-path "$root/Cargo.toml"
loadgen="$root/target/release/loadgen"
for round in $(seq "$rounds"); do
  for bin in "$a" "$b"; do
    dir=$(mktemp -d)
    (cd "$dir" && SWITCHBOARD_SERVER__LISTEN=127.0.0.1:8092 RUST_LOG=warn exec "$bin" serve >serve.log 2>&1) &
    pid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:8092/healthz >/dev/null 2>&1 && break; sleep 0.1; done
    "$loadgen" --url http://127.0.0.1:8092 --rate 0 --messages 20000 --batch 50 --concurrency 16 \
      --data-dir "$dir/data" >"$dir/loadgen.log" 2>&1
    ticks=$(awk '{print $14+$15}' "/proc/$pid/stat")
    echo "round $round $bin: $(grep sustained "$dir/loadgen.log") — server CPU ticks $ticks"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
  done
done
