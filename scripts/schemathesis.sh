#!/usr/bin/env bash
# Contract fuzzing: schemathesis (PyPI) generates requests for every operation of the running
# system's /openapi.json, logged in as the administrator, and checks every answer: no 5xx, a
# documented status, the documented content type, and a body matching the documented schema.
#
#   scripts/schemathesis.sh                  10 examples per operation, seed 1 (about 30 s)
#   CRM_ST_EXAMPLES=50 CRM_ST_SEED=7 scripts/schemathesis.sh
#   CRM_BIN=.build/release scripts/schemathesis.sh   use other binaries (default .build/debug)
#
# Left out: logout and password change (they would end the session the run uses). Not checked: that every
# schema-valid request is accepted (ST202) — the API refuses many well-typed values on purpose
# (unknown ids, windows that end before they start) — and ST401, which flags the cookie scheme as
# ignored because the run authenticates with Authorization: Bearer.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=${CRM_BIN:-.build/debug}
EXAMPLES=${CRM_ST_EXAMPLES:-10}
SEED=${CRM_ST_SEED:-1}
command -v schemathesis >/dev/null || { echo "schemathesis: not installed (pip install schemathesis)" >&2; exit 1; }
[[ -x $BIN/crm ]] || { echo "schemathesis.sh: $BIN/crm not built (swift build)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/crm-st.XXXXXX")
PORT=$(python3 -c 'import socket,random
while True:
    p=random.randint(20000,32000); s=socket.socket()
    try: s.bind(("127.0.0.1",p)); s.close(); print(p); break
    except OSError: pass')
PASSWORD=schemathesis-password-1
CRM_DATA_DIR=$TMP/data CRM_PORT=$PORT CRM_HOST=127.0.0.1 CRM_ADMIN_PASSWORD=$PASSWORD "$BIN/crm" up >"$TMP/crm.log" 2>&1 &
CRM_PID=$!
cleanup() { kill "$CRM_PID" 2>/dev/null || true; wait "$CRM_PID" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
for _ in $(seq 1 300); do
    curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz" 2>/dev/null | grep -q 200 && break
    sleep 0.2
done
TOKEN=$(curl -s -X POST "http://127.0.0.1:$PORT/api/user/login" -d "phoneNumber=admin&password=$PASSWORD" \
    | python3 -c 'import sys, json; print(json.load(sys.stdin)["data"]["token"])')
echo "schemathesis: $EXAMPLES examples per operation, seed $SEED, against http://127.0.0.1:$PORT"
status=0
timeout 600 schemathesis run "http://127.0.0.1:$PORT/openapi.json" -H "Authorization: Bearer $TOKEN" \
    --max-examples "$EXAMPLES" --seed "$SEED" --no-color \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --exclude-path /api/user/logout --exclude-path /api/user/password \
    >"$TMP/st.log" 2>&1 || status=$?
# Its summary only (the full log goes to the console on failure).
if (( status != 0 )); then cat "$TMP/st.log"; else grep -E 'generated|Tested:' "$TMP/st.log" | sed 's/^ */schemathesis: /'; fi
exit "$status"
