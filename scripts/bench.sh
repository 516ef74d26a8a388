#!/usr/bin/env bash
# The CRM benchmark. Builds release binaries, starts the whole system (`crm up`) on a fresh
# temporary data folder and a free port, and measures each scenario with wrk. It only prints
# figures: nothing here asserts anything about speed. See docs/BENCHMARKS.md.
#
#   scripts/bench.sh                          build, then 10 s per scenario
#   CRM_BENCH_SECONDS=30 scripts/bench.sh     longer runs
#   CRM_BENCH_SKIP_BUILD=1 scripts/bench.sh   reuse .build-bench/release as it is
#   CRM_BENCH_ONLY="livez" scripts/bench.sh   only the named scenarios
#   CRM_BENCH_KEEP=1 scripts/bench.sh         keep the temporary folder (launcher log, raw wrk output)
#   CRM_BENCH_CUSTOMERS=100000 scripts/bench.sh   seed 100,000 customers instead of 10,000
#   CRM_BENCH_ORGS=1000                       organizations to seed (default 1000)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${CRM_BENCH_SECONDS:-10}   # seconds per measured run
WARMUP=2                            # seconds of an unmeasured run before each one
CONNECTIONS=64
THREADS=2
ADMIN_PASSWORD=bench-password-1
BIN=.build-bench/release
GENERIC_LUA=scripts/bench/request.lua
PROCESS_NAMES=(crm Gateway UserService CustomerService RecordService ContractService StatsService)
SEED_ORGS=${CRM_BENCH_ORGS:-1000}           # organizations seeded before the customer scenarios
SEED_CUSTOMERS=${CRM_BENCH_CUSTOMERS:-10000} # customers seeded before the customer scenarios
SEED_CONNECTIONS=16
[[ $SEED_ORGS =~ ^[1-9][0-9]*$ && $SEED_CUSTOMERS =~ ^[1-9][0-9]*$ ]] \
    || { echo "bench: CRM_BENCH_ORGS and CRM_BENCH_CUSTOMERS must be positive integers" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Scenarios
#
#   add_scenario NAME METHOD PATH [BODY] [CONTENT_TYPE] [LUA_SCRIPT]
#
# A GET without a body is plain wrk. Anything else runs wrk with `-s LUA_SCRIPT` (by default
# scripts/bench/request.lua, which takes the method, body and content type from WRK_METHOD,
# WRK_BODY and WRK_CONTENT_TYPE). Every request carries the admin's `Authorization: Bearer`.
# Before it is measured, each scenario is requested once with curl and must answer 2xx with
# "status":0, or the benchmark stops.
# ---------------------------------------------------------------------------------------------
SC_NAME=() SC_METHOD=() SC_PATH=() SC_BODY=() SC_TYPE=() SC_SCRIPT=()
add_scenario() {
    local name=$1 method=$2 path=$3 body=${4:-} type=${5:-} script=${6:-}
    if [[ -z $script && ( $method != GET || -n $body ) ]]; then script=$GENERIC_LUA; fi
    SC_NAME+=("$name") SC_METHOD+=("$method") SC_PATH+=("$path")
    SC_BODY+=("$body") SC_TYPE+=("$type") SC_SCRIPT+=("$script")
}

add_scenario livez       GET /livez             # answered by the gateway itself
add_scenario group-list  GET /api/user/group    # one hop to UserService

# Run after seeding CRM_BENCH_ORGS organizations and CRM_BENCH_CUSTOMERS customers with
# scripts/bench/seed.py (only when at least one of them is selected). SEARCH_TERM is a 4-letter
# piece of seeded nickNames that the seeder picked to match about 1 % of the customers;
# ORG_ID is a seeded organization.
CUSTOMER_SCENARIOS=(customer-page customer-search customer-create)
add_customer_scenarios() {
    add_scenario customer-page   GET "/api/customers/customers?page=1&count=20"
    add_scenario customer-search GET "/api/customers/customers?name=$SEARCH_TERM"
    add_scenario customer-create POST /api/customers/customers \
        "{\"realName\":\"压测客户\",\"nickName\":\"wrk-0\",\"phoneNumber\":\"19800000000\",\"organization_id\":[$ORG_ID]}" \
        application/json scripts/bench/customer-create.lua
}

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/crm-bench.XXXXXX")
LOG=$TMP/crm.log
CRM_PID=
WRK_PID=
SEEN_PIDS=()   # every child pid observed under crm, for the final sweep
FAILED_CHILDREN=0

say() { printf '%s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# Direct children of a pid (from /proc, so no procps needed).
child_pids() {
    local status
    for status in /proc/[0-9]*/status; do
        awk -v parent="$1" '/^PPid:/ { if ($2 == parent) { split(FILENAME, p, "/"); print p[3] } exit }' "$status" 2>/dev/null || true
    done
}

remember_children() {
    [[ -n $CRM_PID ]] || return 0
    local pid
    for pid in $(child_pids "$CRM_PID"); do SEEN_PIDS+=("$pid"); done
}

is_ours() {   # a live process whose name is one of the system's
    local name
    name=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
    [[ " ${PROCESS_NAMES[*]} " == *" $name "* ]]
}

is_gone() {   # exited, or a zombie waiting for us
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
    [[ -z $state || $state == Z ]]
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $WRK_PID ]]; then kill "$WRK_PID" 2>/dev/null || true; fi
    if [[ -n $CRM_PID ]]; then
        remember_children
        kill -TERM "$CRM_PID" 2>/dev/null || true
        # The launcher gives each child up to 15 s before SIGKILL; allow it that and a little more.
        for _ in $(seq 200); do is_gone "$CRM_PID" && break; sleep 0.1; done
        kill -KILL "$CRM_PID" 2>/dev/null || true
        wait "$CRM_PID" 2>/dev/null || true
        local pid
        for pid in "${SEEN_PIDS[@]}"; do
            if ! is_gone "$pid" && is_ours "$pid"; then
                say "bench: $(cat "/proc/$pid/comm" 2>/dev/null) (pid $pid) outlived the launcher; killing it" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done
    fi
    if [[ $rc -ne 0 && -s $LOG ]]; then
        say "--- last lines of the launcher's output ($LOG) ---" >&2
        tail -n 30 "$LOG" >&2
    fi
    if [[ ${CRM_BENCH_KEEP:-0} == 1 ]]; then
        say "kept: $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    local port
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 40000))
        # Nothing listening there if a connection is refused.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
    done
    die "no free port found"
}

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true; }

# ---------------------------------------------------------------------------------------------
# Header, build, wrk
# ---------------------------------------------------------------------------------------------
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo uncommitted)
if [[ $COMMIT != uncommitted && -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    COMMIT="$COMMIT (plus uncommitted changes)"
fi
say "CRM benchmark"
say "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "cores:   $(nproc)"
say "commit:  $COMMIT"
say "load:    wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency per scenario, after a ${WARMUP} s warm-up run"

if ! command -v swift >/dev/null && [[ -x /opt/swift/usr/bin/swift ]]; then PATH=/opt/swift/usr/bin:$PATH; fi
if [[ ${CRM_BENCH_SKIP_BUILD:-0} == 1 ]]; then
    say "build:   skipped (CRM_BENCH_SKIP_BUILD=1)"
else
    started=$(date +%s)
    if ! swift build -c release --scratch-path .build-bench >"$TMP/build.log" 2>&1; then
        cat "$TMP/build.log" >&2
        die "release build failed"
    fi
    say "build:   swift build -c release --scratch-path .build-bench ($(( $(date +%s) - started )) s)"
fi
[[ -x $BIN/crm ]] || die "$BIN/crm is missing; build without CRM_BENCH_SKIP_BUILD=1"

if ! command -v wrk >/dev/null; then
    say "wrk:     not found; installing it with apt-get"
    # Waits for the dpkg lock if another apt-get is running.
    { apt-get update -qq -o DPkg::Lock::Timeout=300 && apt-get install -y -qq -o DPkg::Lock::Timeout=300 wrk; } >"$TMP/apt.log" 2>&1 \
        || { cat "$TMP/apt.log" >&2; die "cannot install wrk"; }
fi
say "wrk:     $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)"

# ---------------------------------------------------------------------------------------------
# Start the system
# ---------------------------------------------------------------------------------------------
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
CRM_DATA_DIR=$TMP/data CRM_PORT=$PORT CRM_ADMIN_PASSWORD=$ADMIN_PASSWORD "$BIN/crm" up >"$LOG" 2>&1 &
CRM_PID=$!

deadline=$((SECONDS + 60))
until [[ $(http_code "$BASE/healthz") == 200 ]]; do
    is_gone "$CRM_PID" && die "crm exited during start-up"
    (( SECONDS < deadline )) || die "$BASE/healthz did not answer 200 within 60 s"
    sleep 0.2
done
remember_children
say "system:  crm up on port $PORT, data in $TMP/data ($(child_pids "$CRM_PID" | wc -l) child processes)"

LOGIN=$(curl -s --max-time 10 -X POST "$BASE/api/user/login" -d "phoneNumber=admin&password=$ADMIN_PASSWORD")
TOKEN=$(sed -n 's/.*"token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' <<<"$LOGIN")
[[ -n $TOKEN ]] || die "login failed: $LOGIN"
AUTH="Authorization: Bearer $TOKEN"

# ---------------------------------------------------------------------------------------------
# Scenarios: check each once, then measure it
# ---------------------------------------------------------------------------------------------
selected() { [[ -z ${CRM_BENCH_ONLY:-} || " $CRM_BENCH_ONLY " == *" $1 "* ]]; }

verify_scenario() {
    local i=$1 code body
    local args=(-s -o "$TMP/verify.body" -w '%{http_code}' --max-time 10 -X "${SC_METHOD[i]}" -H "$AUTH")
    [[ -n ${SC_TYPE[i]} ]] && args+=(-H "Content-Type: ${SC_TYPE[i]}")
    [[ -n ${SC_BODY[i]} ]] && args+=(--data-binary "${SC_BODY[i]}")
    code=$(curl "${args[@]}" "$BASE${SC_PATH[i]}" || true)
    body=$(head -c 400 "$TMP/verify.body" 2>/dev/null || true)
    if [[ $code != 2?? ]] || ! grep -Eq '"status"[[:space:]]*:[[:space:]]*0[[:space:]]*[,}]' <<<"$body"; then
        die "scenario ${SC_NAME[i]} does not work: ${SC_METHOD[i]} ${SC_PATH[i]} answered HTTP $code: $body"
    fi
}

run_wrk() {   # run_wrk INDEX SECONDS OUTPUT_FILE
    local i=$1 seconds=$2 out=$3
    local args=(-t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --latency -H "$AUTH")
    [[ -n ${SC_SCRIPT[i]} ]] && args+=(-s "${SC_SCRIPT[i]}")
    # In the background, so that Ctrl-C or SIGTERM stops the benchmark at once (see cleanup).
    WRK_METHOD=${SC_METHOD[i]} WRK_BODY=${SC_BODY[i]} WRK_CONTENT_TYPE=${SC_TYPE[i]} \
        wrk "${args[@]}" "$BASE${SC_PATH[i]}" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || { cat "$out" >&2; die "wrk failed for ${SC_NAME[i]}"; }
    WRK_PID=
}

# One line of figures from wrk's output.
report_line() {   # report_line NAME OUTPUT_FILE
    local out=$2 rps p50 p99 non2xx sockets
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p50=$(awk '$1 == "50%" { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { print $2 }' "$out")
    non2xx=$(awk -F: '/Non-2xx or 3xx responses:/ { gsub(/ /, "", $2); print $2 }' "$out")
    sockets=$(sed -n 's/^ *Socket errors: *//p' "$out")
    printf '%-18s %12s %10s %10s %8s  %s\n' "$1" "${rps:-?}" "${p50:-?}" "${p99:-?}" "${non2xx:-0}" "${sockets:-none}"
}

for i in "${!SC_NAME[@]}"; do
    if selected "${SC_NAME[i]}"; then verify_scenario "$i"; fi
done

say ""
printf '%-18s %12s %10s %10s %8s  %s\n' scenario requests/s p50 p99 non-2xx "socket errors"
for i in "${!SC_NAME[@]}"; do
    selected "${SC_NAME[i]}" || continue
    run_wrk "$i" "$WARMUP" "$TMP/${SC_NAME[i]}.warmup.txt"
    run_wrk "$i" "$DURATION" "$TMP/${SC_NAME[i]}.txt"
    remember_children
    report_line "${SC_NAME[i]}" "$TMP/${SC_NAME[i]}.txt"
done

# ---------------------------------------------------------------------------------------------
# Memory, and whether anything died
# ---------------------------------------------------------------------------------------------
say ""
printf '%-16s %8s %12s %12s\n' process pid VmRSS VmHWM
for pid in "$CRM_PID" $(child_pids "$CRM_PID"); do
    printf '%-16s %8s %12s %12s\n' "$(cat "/proc/$pid/comm" 2>/dev/null || echo '?')" "$pid" \
        "$(awk '/^VmRSS:/ { print $2 " " $3 }' "/proc/$pid/status" 2>/dev/null)" \
        "$(awk '/^VmHWM:/ { print $2 " " $3 }' "/proc/$pid/status" 2>/dev/null)"
done

say ""
if grep -q 'exited' "$LOG"; then
    FAILED_CHILDREN=$(grep -c 'exited' "$LOG")
    say "WARNING: the launcher reported $FAILED_CHILDREN child exit(s) during the benchmark:"
    grep 'exited' "$LOG"
    exit 1
fi
say "launcher: no child process exited during the benchmark"
