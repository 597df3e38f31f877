#!/usr/bin/env bash
# Load-tests a real node over HTTP: start-up time, RSS idle and under load,
# and JSON-RPC kv-store `set`/`get` with 1 and 32 keep-alive clients.
# Usage: scripts/bench-node.sh [seconds-per-run]   (everything on 127.0.0.1)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
cargo build --release -q -p merod -p meroctl
cargo build --release -q -p mero-e2e --bin mero-load
BIN=target/release
HOME_DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PID=
trap 'kill $PID 2>/dev/null || true; rm -rf "$HOME_DIR"' EXIT
$BIN/merod --home "$HOME_DIR" --node bench init --server-port "$PORT" --swarm-port 0 >/dev/null
# The root credential authenticates mero-load (meroctl reads it itself).
export MERO_TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$HOME_DIR/bench/credential.json")
START=$(date +%s%N)
RUST_LOG=warn,mero_node=info $BIN/merod --home "$HOME_DIR" --node bench run 2>"$HOME_DIR/merod.log" &
PID=$!
until curl -sf "http://127.0.0.1:$PORT/admin-api/health" >/dev/null; do sleep 0.005; done
END=$(date +%s%N)
echo "start-up to healthy: $(( (END - START) / 1000000 )) ms"
rss() { awk '/VmRSS/ {r=$2} /RssAnon/ {a=$2} /RssFile/ {f=$2} END {printf "%.1f MB (heap %.1f, mapped files %.1f)", r/1024, a/1024, f/1024}' /proc/$PID/status; }
echo "RSS idle (fresh): $(rss)"
CTL="$BIN/meroctl --home $HOME_DIR --node bench --output-format json"
APP=$($CTL app install --path "$(pwd)/target/guest/wasm32-wasip2/wasm/kv_store.wasm" | python3 -c 'import json,sys; print(json.load(sys.stdin)["applicationId"])')
CTX=$($CTL namespace create --application-id "$APP" | python3 -c 'import json,sys; print(json.load(sys.stdin)["contextId"])')
for i in $(seq 0 99); do $CTL call set --context "$CTX" --args "{\"key\":\"warm-$i\",\"value\":\"v\"}" >/dev/null; done
echo "RSS idle (app loaded, 100 keys): $(rss)"
# The HTTP floor: the same client and server answering /admin-api/health.
$BIN/mero-load --url "http://127.0.0.1:$PORT" --method health --clients 1 --seconds "$SECS"
# CPU time merod used (user + system), in clock ticks.
cpu() { awk '{print $14 + $15}' /proc/$PID/stat; }
TICKS=$(getconf CLK_TCK)
for method in get set; do
  for clients in 1 32; do
    BEFORE=$(cpu)
    $BIN/mero-load --url "http://127.0.0.1:$PORT" --context "$CTX" --method $method --clients $clients --seconds "$SECS"
    awk -v a="$(cpu)" -v b="$BEFORE" -v t="$TICKS" -v s="$SECS" 'BEGIN {printf "node CPU: %.2f cores over the run\n", (a - b) / t / s}'
  done
  echo "RSS after $method load: $(rss)"; sleep 3; echo "RSS 3 s after $method load: $(rss)"
done
# Where a mutating call's time goes, as the executor measured it.
kill -TERM $PID; wait $PID 2>/dev/null || true; PID=
grep -a -o 'executor: .*' "$HOME_DIR/merod.log" || true
