#!/usr/bin/env bash
# Smoke test of the Windows agent (dist/agent-windows-amd64.exe, from
# `make release`) under Debian's Wine, against a Linux hub on loopback:
#   1. agent.exe version, init, seed, enroll, sync, status: the records
#      reach the hub (hub stats), nothing left pending;
#   2. agent.exe app, double-click style (no --data: %APPDATA%\Numeribus):
#      first-start page, passphrase chosen, recovery code shown, unlock,
#      « Quitter » — through the same HTTP requests a browser sends — and
#      the program ends with exit code 0.
# Every step is bounded in time. Needs wine64 and
# gcc-mingw-w64-x86-64-win32 (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
DIST=${DIST:-dist}
EXE=$(pwd)/$DIST/agent-windows-amd64.exe
HUB=$(pwd)/$DIST/hub-linux-amd64
for f in "$EXE" "$HUB"; do [ -x "$f" ] || [ -f "$f" ] || { echo "wine-smoke: $f missing: run make release"; exit 1; }; done
WORK=$(mktemp -d)
export WINEPREFIX=$WORK/prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" # no Mono or Gecko prompts
HUBPID= APPPID=
cleanup() {
  [ -n "$APPPID" ] && kill "$APPPID" 2>/dev/null || true
  [ -n "$HUBPID" ] && kill "$HUBPID" 2>/dev/null && wait "$HUBPID" 2>/dev/null || true
  timeout 20 wineserver -k 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
step() { echo "wine-smoke: $*"; }
fail() { echo "wine-smoke: FAILED: $*"; exit 1; }
start=$(date +%s)

step "Wine prefix ($(wine --version))"
timeout 180 wine wineboot -i >"$WORK/wineboot.log" 2>&1 || { cat "$WORK/wineboot.log"; fail "wineboot"; }
x86_64-w64-mingw32-gcc -shared -O2 -o "$WORK/bcryptprimitives.dll" .ci/wine/processprng.c -ladvapi32
cp "$WORK/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"
C=$WINEPREFIX/drive_c
printf 'phrase de passe sous Wine\n' >"$C/passphrase.txt"
agent() { timeout 120 wine "$EXE" "$@"; }
P=(--data 'C:\numeribus' --passphrase-file 'C:\passphrase.txt')

step "agent.exe version"
v=$(agent version | tr -d '\r')
want="agent $(cat "$DIST/VERSION")"
[ "$v" = "$want" ] || fail "version: got '$v', want '$want'"

step "hub serve (Linux) on loopback"
"$HUB" serve --data "$WORK/hub" --listen 127.0.0.1:0 >"$WORK/hub.log" 2>&1 &
HUBPID=$!
for _ in $(seq 100); do grep -q "^hub à l'écoute sur" "$WORK/hub.log" 2>/dev/null && break; sleep 0.1; done
grep -q "^hub à l'écoute sur" "$WORK/hub.log" || { cat "$WORK/hub.log"; fail "hub did not start"; }
CODE=$("$HUB" enroll --data "$WORK/hub" --device bus-wine --team cd88 --json | sed 's/.*"code":"\([^"]*\)".*/\1/')

step "agent.exe init, seed, enroll, sync, status"
agent init "${P[@]}" | grep -q "CODE DE SECOURS" || fail "init"
[ -f "$C/numeribus/agent.db" ] || fail "init: no C:\\numeribus\\agent.db"
agent seed "${P[@]}" --n 50 --seed 7 | tr -d '\r'
agent enroll "${P[@]}" "$CODE" | tr -d '\r'
agent sync "${P[@]}" | tr -d '\r' | tee "$WORK/sync.out"
grep -q "0 en attente" "$WORK/sync.out" || fail "sync left changes pending"
agent status --data 'C:\numeribus' --json | tr -d '\r' >"$WORK/status.json"
grep -q '"pending_changes": 0,' "$WORK/status.json" || { cat "$WORK/status.json"; fail "status: changes pending"; }
sent=$(sed -n 's/.* \([0-9][0-9]*\) modification(s) envoyée(s).*/\1/p' "$WORK/sync.out")
"$HUB" stats --data "$WORK/hub" | tee "$WORK/stats.out"
grep -q "modifications reçues : $sent\$" "$WORK/stats.out" || fail "the hub holds other than the $sent changes sent"

step "agent.exe app: first start, unlock, « Quitter »"
wine "$EXE" app --listen 127.0.0.1:0 --no-browser >"$WORK/app.out" 2>&1 &
APPPID=$!
URL=
for _ in $(seq 600); do
  URL=$(tr -d '\r' <"$WORK/app.out" | sed -n 's/^Interface web : \(http:[^ ]*\)$/\1/p' | head -1)
  [ -n "$URL" ] && break
  kill -0 "$APPPID" 2>/dev/null || { cat "$WORK/app.out"; fail "app ended at start"; }
  sleep 0.1
done
[ -n "$URL" ] || { cat "$WORK/app.out"; fail "app gave no address"; }
J=(--silent --show-error --max-time 60 --cookie-jar "$WORK/cookies" --cookie "$WORK/cookies")
curl "${J[@]}" "$URL" | grep -q 'id="setup-form"' || fail "no first-start page at $URL"
NEW='une phrase de passe choisie sous Wine'
curl "${J[@]}" --data-urlencode "passphrase=$NEW" --data-urlencode "confirm=$NEW" "$URL" >"$WORK/code.html"
grep -q 'id="recovery-code"' "$WORK/code.html" || fail "no recovery code after the first start"
curl "${J[@]}" "${URL}unlock" | grep -q 'id="f-secret"' || fail "no unlock page after the first start"
loc=$(curl "${J[@]}" -o /dev/null -w '%{redirect_url}' --data-urlencode "secret=$NEW" "${URL}unlock")
[ "$loc" = "$URL" ] || fail "unlock: redirected to '$loc', want $URL"
curl "${J[@]}" "$URL" | grep -q 'id="quit-button"' || fail "no « Quitter » once unlocked"
curl "${J[@]}" --data '' "${URL}quitter" | grep -q 'id="stopped"' || fail "« Quitter »"
code=0
timeout 60 tail --pid="$APPPID" -f /dev/null || fail "app still running 60 s after « Quitter »"
wait "$APPPID" || code=$?
APPPID=
[ "$code" = 0 ] || { cat "$WORK/app.out"; fail "app exit code $code after « Quitter »"; }
ls "$C"/users/*/AppData/Roaming/Numeribus/agent.db >/dev/null || fail "no store in %APPDATA%\\Numeribus"
ls "$C"/users/*/AppData/Roaming/Numeribus/logs/agent.log >/dev/null || fail "no log in %APPDATA%\\Numeribus\\logs"
if grep -rqF "$NEW" "$C"/users/*/AppData/Roaming/Numeribus; then fail "the passphrase is in a file of the data directory"; fi

echo "wine-smoke: passed in $(( $(date +%s) - start )) s"
