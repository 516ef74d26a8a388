#!/bin/bash
# Restarts under load against a release build: 8 clients (scripts/load-clients.py, a new
# connection per request, creating and listing customers) while, five times over, the gateway
# is SIGKILLed, a customers replica is SIGKILLed, customers is scaled 3 -> 1 -> 3 and restarted
# replica by replica (`crm restart`). Prints requests, refused connections, requests lost in
# flight (on a killed gateway), HTTP errors, the slowest answer, and whether every
# acknowledged create is stored exactly once. Figures: docs/ARCHITECTURE.md, "Replicas".
#
#   swift build -c release && scripts/restart-chaos.sh [seconds, default 60]
set -u
cd "$(dirname "$0")/.."
die() { echo "restart-chaos: $*" >&2; exit 1; }
source scripts/lib/common.sh
BIN=.build/release
[ -x "$BIN/crm" ] || die "build first: swift build -c release"
SECS=${1:-60}
DATA=$(mktemp -d /tmp/crm-chaos.XXXXXX)
PORT=$(free_port)
PASSWORD=chaos-password-1
CRM_DATA_DIR=$DATA CRM_PORT=$PORT CRM_ADMIN_PASSWORD=$PASSWORD CRM_LOG_LEVEL=warn "$BIN/crm" up --replicas customers=3 > "$DATA/crm.log" 2>&1 &
LAUNCHER=$!
trap 'kill $LAUNCHER 2>/dev/null; wait $LAUNCHER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 300); do [ "$(http_code "http://127.0.0.1:$PORT/healthz")" = 200 ] && break; sleep 0.2; done
[ "$(http_code "http://127.0.0.1:$PORT/healthz")" = 200 ] || die "the system did not come up: $(tail -5 "$DATA/crm.log")"

PW=$PASSWORD python3 scripts/load-clients.py "$PORT" "$SECS" 8 "chaos$$" > "$DATA/load.txt" 2>&1 &
CLIENTS=$!
pid() { CRM_DATA_DIR=$DATA "$BIN/crm" status | awk -v s="$1" -v r="$2" '$1==s && $2==r {print $3}'; }
crm() { CRM_DATA_DIR=$DATA "$BIN/crm" "$@" > /dev/null; }
interval=$((SECS / 6)); [ "$interval" -ge 2 ] || interval=2
for _ in 1 2 3 4 5; do
    sleep "$interval"; kill -9 "$(pid gateway 1)"
    sleep 2; kill -9 "$(pid customers 2)"
    sleep 2; crm scale customers=1; crm scale customers=3
    crm restart customers
done
wait $CLIENTS
cat "$DATA/load.txt"
CRM_DATA_DIR=$DATA "$BIN/crm" status
