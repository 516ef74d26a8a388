#!/usr/bin/env bash
# Instructions per request, repeatable on a busy machine: runs the gateway and one service under
# valgrind's callgrind, sends one page request pattern through the gateway, and prints the
# instructions (Ir) each process spent per request plus its top functions.
#
#   scripts/profile.sh                         release build in .build-bench, then every pattern
#   CRM_PROFILE_BIN=/path/to/release scripts/profile.sh   profile other binaries (e.g. an older build)
#   CRM_PROFILE_ONLY="follow-page" scripts/profile.sh     some patterns only
#   CRM_PROFILE_DATA=/tmp/crm-profile-data scripts/profile.sh   seed there once, reuse it later
#   CRM_PROFILE_REQUESTS=500                   requests measured per pattern (default 300)
#   CRM_PROFILE_GATEWAY_LOG=info               the gateway's log level (default warn: no access lines;
#                                              info, as `crm up` runs it, counts them too)
#   CRM_PROFILE_WRK=10                         instead of one request at a time, `wrk -t1 -c16` for that
#                                              many seconds (after 3 s of warm-up), the requests
#                                              counted by wrk: per-request figures with the batching
#                                              of a loaded system (loop iterations, sends and reads
#                                              shared by many requests). Read patterns only.
#
# Patterns: customer-page, customer-search (name=$CRM_PROFILE_SEARCH, default fang), follow-page, potential-page, contract-page, livez, group-list, and the writes
# customer-create and follow-create (one at a time: no group commit) (as in scripts/bench.sh).
# Seeding (first run on a data folder) goes through the API with `crm up`; the measured runs
# start the processes one by one, the gateway and the pattern's service under callgrind, the
# others as they are. Only figures are printed; nothing is asserted. Needs valgrind (installed
# with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "profile: $*" >&2; exit 1; }
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

REQUESTS=${CRM_PROFILE_REQUESTS:-300}
WARMUP=50
PATTERNS=${CRM_PROFILE_ONLY:-"customer-page follow-page potential-page contract-page livez group-list"}
PASSWORD=profile-password-1

command -v valgrind >/dev/null || { apt-get install -y valgrind >/dev/null 2>&1 || die "valgrind is missing (apt-get install valgrind)"; }
if [[ -n ${CRM_PROFILE_BIN:-} ]]; then
    BIN=$CRM_PROFILE_BIN
else
    swift build -c release --scratch-path .build-bench >/dev/null || die "release build failed"
    BIN=.build-bench/release
fi
BIN=$(cd "$BIN" && pwd)
[[ -x $BIN/Gateway ]] || die "$BIN/Gateway is missing"

TMP=$(mktemp -d /tmp/crm-profile.XXXXXX)
DATA=${CRM_PROFILE_DATA:-$TMP/data}
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ ${CRM_PROFILE_KEEP:-0} == 1 ]] || rm -rf "$TMP"
}
trap cleanup EXIT

# valgrind 3.19 writes into the signal mask that sigsuspend is given (to hide its own signal),
# and libdispatch's main thread passes one in read-only memory: valgrind dies. This shim hands
# sigsuspend a copy.
cat >"$TMP/vgshim.c" <<'C'
#define _GNU_SOURCE
#include <signal.h>
#include <unistd.h>
#include <sys/syscall.h>
int sigsuspend(const sigset_t *mask) { sigset_t copy = *mask; return (int)syscall(SYS_rt_sigsuspend, &copy, 8); }
C
cc -shared -fPIC -O2 -o "$TMP/vgshim.so" "$TMP/vgshim.c" || die "cannot build the sigsuspend shim (cc)"
callgrind() { LD_PRELOAD=$TMP/vgshim.so exec valgrind --tool=callgrind "$@"; }   # run with &: $! is valgrind

SERVICES=(users:UserService customers:CustomerService records:RecordService contracts:ContractService stats:StatsService)

# ---- Seed once (through the API, with the launcher) -------------------------------------------
if [[ ! -f $DATA/profile.env ]]; then
    mkdir -p "$DATA"
    PORT=$(free_port)
    CRM_DATA_DIR=$DATA CRM_PORT=$PORT CRM_ADMIN_PASSWORD=$PASSWORD CRM_LOG_LEVEL=warn "$BIN/crm" up >"$TMP/seed-crm.log" 2>&1 &
    CRM=$!
    PIDS+=("$CRM")
    for _ in $(seq 300); do [[ $(http_code "http://127.0.0.1:$PORT/healthz") == 200 ]] && break; sleep 0.2; done
    TOKEN=$(curl -s -X POST "http://127.0.0.1:$PORT/api/user/login" -d "phoneNumber=admin&password=$PASSWORD" \
        | sed -n 's/.*"token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
    [[ -n $TOKEN ]] || die "login failed"
    python3 scripts/bench/seed.py --port "$PORT" --token="$TOKEN" --organizations 200 --customers 2000 --env "$TMP/c.env" >/dev/null
    python3 scripts/bench/seed.py --port "$PORT" --token="$TOKEN" --organizations 50 --customers 0 --contracts 3000 --random-seed 2 >/dev/null
    python3 scripts/bench/seed_records.py --port "$PORT" --token="$TOKEN" --organizations 200 --potentials 1000 --follows 10000 \
        --env "$TMP/r.env" >/dev/null
    # shellcheck disable=SC1091
    source "$TMP/r.env"
    echo "RECORD_ORG_ID=$SEED_RECORD_ORGANIZATION_ID" >"$DATA/profile.env.new"
    sleep 2   # let the projections catch up
    kill "$CRM"; wait "$CRM" 2>/dev/null || true
    PIDS=()
    mv "$DATA/profile.env.new" "$DATA/profile.env"
fi
# shellcheck disable=SC1091
source "$DATA/profile.env"

path_of() {
    case $1 in
        customer-page) echo "/api/customers/customers?page=1&count=20" ;;
        customer-search) echo "/api/customers/customers?name=${CRM_PROFILE_SEARCH:-fang}" ;;
        follow-page) echo "/api/record/follow?organization_id=$RECORD_ORG_ID" ;;
        potential-page) echo "/api/record/potential?page=1&count=20" ;;
        contract-page) echo "/api/contract/contract?page=1&count=20" ;;
        livez) echo "/livez" ;;
        group-list) echo "/api/user/group" ;;
        customer-create) echo "/api/customers/customers" ;;
        follow-create) echo "/api/record/follow" ;;
        *) die "unknown pattern $1" ;;
    esac
}
service_of() {
    case $1 in group-list) echo users ;; customer-page|customer-search|customer-create) echo customers ;; follow-page|potential-page|follow-create) echo records ;; contract-page) echo contracts ;; *) echo "" ;; esac
}

# Total instructions of a callgrind output file.
total_ir() { awk '/^summary:/ { print $2 } /^totals:/ { t = $2 } END { if (t) print t }' "$1" | tail -1; }

printf '%-16s %14s %14s\n' pattern "gateway Ir/req" "service Ir/req"
for pattern in $PATTERNS; do
    path=$(path_of "$pattern")
    target=$(service_of "$pattern")
    run=$TMP/$pattern
    mkdir -p "$run"
    sources=()
    for entry in "${SERVICES[@]}"; do sources+=(--source "${entry%%:*}=unix:$DATA/run/${entry%%:*}.sock"); done
    gateway_args=()
    service_pid=
    mkdir -p "$DATA/run"
    for entry in "${SERVICES[@]}"; do
        name=${entry%%:*} exe=${entry##*:}
        args=(--socket "unix:$DATA/run/$name.sock" --db "$DATA/$name.sqlite" "${sources[@]}")
        if [[ $name == "$target" ]]; then
            CRM_LOG_LEVEL=warn callgrind --callgrind-out-file="$run/service.out" "$BIN/$exe" "${args[@]}" \
                >"$run/$name.log" 2>&1 &
            service_pid=$!
        else
            CRM_LOG_LEVEL=warn "$BIN/$exe" "${args[@]}" >"$run/$name.log" 2>&1 &
        fi
        PIDS+=($!)
        gateway_args+=(--service "$name=unix:$DATA/run/$name.sock")
    done
    PORT=$(free_port)
    CRM_LOG_LEVEL=${CRM_PROFILE_GATEWAY_LOG:-warn} callgrind --callgrind-out-file="$run/gateway.out" "$BIN/Gateway" --host 127.0.0.1 --port "$PORT" \
        "${gateway_args[@]}" >"$run/gateway.log" 2>&1 &
    gateway_pid=$!
    PIDS+=("$gateway_pid")
    for _ in $(seq 1500); do [[ $(http_code "http://127.0.0.1:$PORT/healthz") == 200 ]] && break; sleep 0.2; done
    [[ $(http_code "http://127.0.0.1:$PORT/healthz") == 200 ]] || die "$pattern: the system did not come up (logs in $run)"
    TOKEN=$(curl -s -X POST "http://127.0.0.1:$PORT/api/user/login" -d "phoneNumber=admin&password=$PASSWORD" \
        | sed -n 's/.*"token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
    [[ -n $TOKEN ]] || die "login failed"
    if [[ -n ${CRM_PROFILE_WRK:-} ]]; then
        case $pattern in *-create) die "$pattern: CRM_PROFILE_WRK profiles read patterns only" ;; esac
        command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || die "wrk is missing (apt-get install wrk)"; }
        printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$TOKEN" >"$run/auth.lua"
        wrk -t1 -c16 -d3s -s "$run/auth.lua" "http://127.0.0.1:$PORT$path" >/dev/null
        for pid in $gateway_pid $service_pid; do callgrind_control -z "$pid" >/dev/null 2>&1; done
        wrk -t1 -c16 -d"${CRM_PROFILE_WRK}s" -s "$run/auth.lua" "http://127.0.0.1:$PORT$path" >"$run/wrk.txt"
        for pid in $gateway_pid $service_pid; do callgrind_control -d "$pid" >/dev/null 2>&1; done
        REQUESTS=$(awk '/requests in/ { print $1 }' "$run/wrk.txt")
        [[ ${REQUESTS:-0} -gt 0 ]] || die "$pattern: wrk made no request (logs in $run)"
        if grep -q "Non-2xx" "$run/wrk.txt"; then die "$pattern: wrk had non-2xx answers (logs in $run)"; fi
    else
    # One keep-alive connection: WARMUP requests, zero the counters, REQUESTS requests, dump.
    # The write patterns send a different body every time (as scripts/bench/*-create.lua do).
    python3 - "$PORT" "$TOKEN" "$path" "$WARMUP" "$REQUESTS" "$gateway_pid" "$service_pid" "$pattern" "$RECORD_ORG_ID" <<'PY'
import http.client, json, subprocess, sys, time
port, token, path, warmup, requests, gateway, service, pattern, org = sys.argv[1:10]
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=120)
sent = 0
def next_body():
    global sent
    sent += 1
    if pattern == "customer-create":
        return {"realName": "压测客户", "nickName": f"wrk-{sent}", "phoneNumber": f"198{sent:08d}", "organization_id": [int(org)]}
    if pattern == "follow-create":
        return {"protent_id": 1, "follower_id": [1], "record_time": time.strftime("%Y-%m-%d %H:%M:%S"), "event": 3, "event_note": f"profile {sent}"}
    return None
def send(n):
    for _ in range(n):
        data = next_body()
        headers = {"Authorization": "Bearer " + token}
        if data is None:
            conn.request("GET", path, headers=headers)
        else:
            headers["Content-Type"] = "application/json"
            conn.request("POST", path, body=json.dumps(data, ensure_ascii=False).encode(), headers=headers)
        answer = conn.getresponse()
        answered = answer.read()
        if answer.status != 200 or b'"status":0' not in answered:
            sys.exit(f"{path} answered {answer.status}: {answered[:300]!r}")
pids = [p for p in (gateway, service) if p]
send(int(warmup))
for pid in pids: subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
send(int(requests))
for pid in pids: subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
PY
    fi
    # The dumps are written asynchronously: wait for them before stopping anything.
    for _ in $(seq 300); do
        [[ -f $run/gateway.out.1 && ( -z $service_pid || -f $run/service.out.1 ) ]] && break
        sleep 0.2
    done
    sleep 1
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
    gw_file=$run/gateway.out.1
    gw=$(( $(total_ir "$gw_file") / REQUESTS ))
    sv=-
    if [[ -n $service_pid ]]; then
        sv_file=$run/service.out.1
        sv=$(( $(total_ir "$sv_file") / REQUESTS ))
    fi
    printf '%-16s %14s %14s\n' "$pattern" "$gw" "$sv"
    if [[ -n ${CRM_PROFILE_TOP:-} ]]; then
        mkdir -p "$CRM_PROFILE_TOP"
        callgrind_annotate --threshold=100 --inclusive=no "$gw_file" 2>/dev/null >"$CRM_PROFILE_TOP/$pattern-gateway.txt"
        callgrind_annotate --threshold=100 --inclusive=yes "$gw_file" 2>/dev/null >"$CRM_PROFILE_TOP/$pattern-gateway-inclusive.txt"
        if [[ -n $service_pid ]]; then
            callgrind_annotate --threshold=100 --inclusive=no "$sv_file" 2>/dev/null >"$CRM_PROFILE_TOP/$pattern-service.txt"
            callgrind_annotate --threshold=100 --inclusive=yes "$sv_file" 2>/dev/null >"$CRM_PROFILE_TOP/$pattern-service-inclusive.txt"
        fi
    fi
done
