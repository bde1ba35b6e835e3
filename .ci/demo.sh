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
cleanup() { kill "$HUB" 2>/dev/null && wait "$HUB" 2>/dev/null; echo "démonstration arrêtée"; }
trap cleanup EXIT
trap 'exit 0' INT TERM
# The hub says "hub à l'écoute sur ADRESSE — …" on stdout once it listens.
for _ in $(seq 100); do grep -q "^hub à l'écoute sur" "$DIR/hub.log" 2>/dev/null && break; sleep 0.1; done
grep "^hub à l'écoute sur" "$DIR/hub.log" || { cat "$DIR/hub.log"; exit 1; }

CODE=$("$BIN/hub" enroll --data "$DIR/hub" --device numeribus-1 --team cd88 --json | sed 's/.*"code":"\([^"]*\)".*/\1/')
"$BIN/agent" init --data "$DIR/agent" "${P[@]}" | grep -v '^$'
"$BIN/agent" enroll --data "$DIR/agent" "${P[@]}" "$CODE"
"$BIN/agent" seed --data "$DIR/agent" "${P[@]}" --n 300 --seed 1
# A coordinator plans today's stop at the hub; the sync brings it to the laptop.
"$BIN/hub" plan add --data "$DIR/hub" --team cd88 --vehicle "Numéribus 1" --date "$(date +%F)" \
  --start 09:30 --end 12:00 --place "Place de la mairie" --commune 88160
printf 'demo-coordinateur\n' > "$DIR/coordinator-password"
"$BIN/hub" user add --data "$DIR/hub" --email coordination@cd88.fr --role coordinator --territory dep:88 \
  --password-file "$DIR/coordinator-password"
"$BIN/agent" sync --data "$DIR/agent" "${P[@]}"
"$BIN/agent" status --data "$DIR/agent"
echo
echo "== hub stats (--json pour les scripts)"
"$BIN/hub" stats --data "$DIR/hub"
"$BIN/hub" devices --data "$DIR/hub"
if [ -n "${DEMO_ONESHOT:-}" ]; then exit 0; fi

# The mediator's web interface, unlocked, syncing in the background.
"$BIN/agent" serve --data "$DIR/agent" "${P[@]}" --listen 127.0.0.1:0 >"$DIR/agent.log" 2>&1 &
AGENT=$!
cleanup() { kill "$AGENT" "$HUB" 2>/dev/null; wait "$AGENT" "$HUB" 2>/dev/null; echo "démonstration arrêtée"; }
for _ in $(seq 100); do grep -q "Interface web" "$DIR/agent.log" 2>/dev/null && break; sleep 0.1; done
HUBADDR=$(sed -n "s/^hub à l'écoute sur \([^ ]*\) .*/\1/p" "$DIR/hub.log" | head -1)
echo
echo "Interface du médiateur : $(grep -o 'http://[^ ]*' "$DIR/agent.log" | head -1) (phrase de passe : demo-passphrase)"
echo "Tableau de bord des coordinateurs : https://$HUBADDR/ (certificat auto-signé ; coordination@cd88.fr / demo-coordinateur)"
echo "Ctrl-C pour arrêter."
wait "$HUB"
