#!/usr/bin/env bash
# make demo: a hub on loopback with its own data dir, one enrolled agent
# seeded with realistic data, one sync, the hub's consolidated stats.
# The hub keeps running until Ctrl-C, which stops everything cleanly.
set -euo pipefail
BIN=${BIN:-bin}
DIR=${DEMO_DIR:-demo-data}
rm -rf "$DIR" && mkdir -p "$DIR"
printf 'demo-passphrase\n' > "$DIR/passphrase"
P=(--passphrase-file "$DIR/passphrase")

"$BIN/hub" serve --data "$DIR/hub" --listen 127.0.0.1:0 >"$DIR/hub.log" 2>&1 &
HUB=$!
cleanup() { kill "$HUB" 2>/dev/null && wait "$HUB" 2>/dev/null; echo "demo stopped"; }
trap cleanup EXIT
trap 'exit 0' INT TERM
for _ in $(seq 100); do grep -q "hub listening" "$DIR/hub.log" 2>/dev/null && break; sleep 0.1; done
grep "hub listening" "$DIR/hub.log" || { cat "$DIR/hub.log"; exit 1; }

CODE=$("$BIN/hub" enroll --data "$DIR/hub" --device numeribus-1 --team cd88 --json | sed 's/.*"code":"\([^"]*\)".*/\1/')
"$BIN/agent" init --data "$DIR/agent" "${P[@]}" | grep -v '^$'
"$BIN/agent" enroll --data "$DIR/agent" "${P[@]}" "$CODE"
"$BIN/agent" seed --data "$DIR/agent" "${P[@]}" --n 300 --seed 1
"$BIN/agent" sync --data "$DIR/agent" "${P[@]}"
"$BIN/agent" status --data "$DIR/agent"
echo
echo "== hub stats (hub stats --data $DIR/hub --json)"
"$BIN/hub" stats --data "$DIR/hub" --json
"$BIN/hub" devices --data "$DIR/hub"
if [ -n "${DEMO_ONESHOT:-}" ]; then exit 0; fi
echo
echo "The hub keeps running ($(grep -o 'wss://[^ ]*' "$DIR/hub.log" | head -1)); Ctrl-C to stop."
wait "$HUB"
