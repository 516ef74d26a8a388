#!/usr/bin/env bash
# The CRM benchmark. Builds release binaries, starts the whole system (`crm up`) on a fresh
# temporary data folder and a free port, and measures each scenario with wrk. It only prints
# figures: nothing here asserts anything about speed. See docs/BENCHMARKS.md.
# Before the customer-* scenarios it seeds organizations and customers through the API with
# scripts/bench/seed.py. It exits 1 if a scenario had non-2xx answers or a child process exited.
#
#   scripts/bench.sh                          build, then 10 s per scenario
#   CRM_BENCH_SECONDS=30 scripts/bench.sh     longer runs
#   CRM_BENCH_SKIP_BUILD=1 scripts/bench.sh   reuse .build-bench/release as it is
#   CRM_BENCH_BIN=/tmp/old scripts/bench.sh   measure the binaries in /tmp/old (no build), e.g. old against new
#   CRM_BENCH_ONLY="livez" scripts/bench.sh   only the named scenarios
#   CRM_BENCH_KEEP=1 scripts/bench.sh         keep the temporary folder (launcher log, raw wrk output)
#   CRM_BENCH_FLOOR_ROUNDS=5 scripts/bench.sh alternated rounds of nginx-livez and livez (default 3; the median counts)
#   CRM_BENCH_CUSTOMERS=100000 scripts/bench.sh   seed 100,000 customers instead of 10,000 (about 1 min)
#   CRM_BENCH_ORGS=2000 scripts/bench.sh      organizations to seed (default 1000)
#   CRM_BENCH_FOLLOWS=100000 scripts/bench.sh follow-up records to seed before the record-*
#                                             scenarios (default 10000; 100,000 take a few minutes)
#   CRM_BENCH_POTENTIALS=5000 scripts/bench.sh potential records they belong to (default 5000)
# `event-lag` (selected by name or when CRM_BENCH_ONLY is unset) runs scripts/bench/event_lag.py;
# `gateway-connections` (likewise) scripts/bench/connections.py: the gateway's VmRSS, RssAnon and
# VmHWM with 1,000 open keep-alive connections.
# Before the record scenarios (follow-page, potential-page, follow-create) it seeds their own
# CRM_BENCH_ORGS organizations, potential and follow-up records with scripts/bench/seed_records.py.
#   CRM_BENCH_CONTRACTS=5000 scripts/bench.sh contracts to seed before the contract-* scenarios (default 20000)
#   CRM_BENCH_FOLLOW_DAYS=60 scripts/bench.sh spread the seeded follow-up records over 60 days (default 6)
# stats-sign and stats-sign-cold run with the contract scenarios (after the contract seeding),
# stats-follow and stats-follow-cold with the record scenarios; `stats-lag` runs
# scripts/bench/stats_lag.py. The figures of docs/BENCHMARKS.md:
#   CRM_BENCH_FOLLOWS=100000 CRM_BENCH_FOLLOW_DAYS=60 \
#       CRM_BENCH_ONLY="stats-sign stats-sign-cold stats-follow stats-follow-cold stats-lag" scripts/bench.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${CRM_BENCH_SECONDS:-10}   # seconds per measured run
WARMUP=2                            # seconds of an unmeasured run before each one
CONNECTIONS=64
THREADS=2
ADMIN_PASSWORD=bench-password-1
BIN=${CRM_BENCH_BIN:-.build-bench/release}   # CRM_BENCH_BIN: measure other binaries (e.g. a copy of an older build); no build then
GENERIC_LUA=scripts/bench/request.lua
PROCESS_NAMES=(crm Gateway UserService CustomerService RecordService ContractService StatsService)
SEED_ORGS=${CRM_BENCH_ORGS:-1000}           # organizations seeded before the customer scenarios
SEED_CUSTOMERS=${CRM_BENCH_CUSTOMERS:-10000} # customers seeded before the customer scenarios
BENCH_CONTRACTS=${CRM_BENCH_CONTRACTS:-20000} # contracts seeded before the contract scenarios
BENCH_CONTRACT_ORGS=200                       # organizations seeded for them
SEED_CONNECTIONS=16
SEED_FOLLOWS=${CRM_BENCH_FOLLOWS:-10000}       # follow-up records seeded before the record scenarios
SEED_POTENTIALS=${CRM_BENCH_POTENTIALS:-5000}  # potential records they belong to
SEED_FOLLOW_DAYS=${CRM_BENCH_FOLLOW_DAYS:-6}   # days the follow-up records' times spread over
[[ $SEED_FOLLOWS =~ ^[1-9][0-9]*$ && $SEED_POTENTIALS =~ ^[1-9][0-9]*$ && $SEED_FOLLOW_DAYS =~ ^[1-9][0-9]*$ ]] \
    || { echo "bench: CRM_BENCH_FOLLOWS, CRM_BENCH_POTENTIALS and CRM_BENCH_FOLLOW_DAYS must be positive integers" >&2; exit 1; }
[[ $SEED_ORGS =~ ^[1-9][0-9]*$ && $SEED_CUSTOMERS =~ ^[1-9][0-9]*$ && $BENCH_CONTRACTS =~ ^[1-9][0-9]*$ ]] \
    || { echo "bench: CRM_BENCH_ORGS, CRM_BENCH_CUSTOMERS and CRM_BENCH_CONTRACTS must be positive integers" >&2; exit 1; }

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
SC_NAME=() SC_METHOD=() SC_PATH=() SC_BODY=() SC_TYPE=() SC_SCRIPT=() SC_BASE=()
add_scenario() {
    local name=$1 method=$2 path=$3 body=${4:-} type=${5:-} script=${6:-}
    if [[ -z $script && ( $method != GET || -n $body ) ]]; then script=$GENERIC_LUA; fi
    SC_NAME+=("$name") SC_METHOD+=("$method") SC_PATH+=("$path")
    SC_BODY+=("$body") SC_TYPE+=("$type") SC_SCRIPT+=("$script") SC_BASE+=("${SCENARIO_BASE:-}")
}

# The floor: nginx (Debian's nginx-light, one worker per core) answering the bytes of /livez on
# another port, measured like every scenario; each scenario's ratio to it is printed at the end.
SCENARIO_BASE=nginx add_scenario nginx-livez GET /livez
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

# Run after seeding CRM_BENCH_ORGS organizations, CRM_BENCH_POTENTIALS potential records and
# CRM_BENCH_FOLLOWS follow-up records (spread evenly over them) with scripts/bench/seed_records.py.
# RECORD_ORG_ID is a seeded organization (about FOLLOWS/ORGS follow-up records in the default
# window), POTENTIAL_ID a seeded potential record.
# stats-follow: the follow-up statistic over the last 60 days (every seeded record when
# CRM_BENCH_FOLLOW_DAYS ≤ 60), all organizations, first page; one fixed window, so after the
# first request every answer comes from StatsService's answer cache (valid until the next
# event). stats-follow-cold: the same with another end_time in every request (stats-cold.lua),
# so every answer is computed from the read model.
RECORD_SCENARIOS=(follow-page potential-page follow-create stats-follow stats-follow-cold)
add_record_scenarios() {
    add_scenario follow-page    GET "/api/record/follow?organization_id=$RECORD_ORG_ID"
    add_scenario potential-page GET "/api/record/potential?page=1&count=20"
    add_scenario follow-create  POST /api/record/follow \
        "{\"protent_id\":$POTENTIAL_ID,\"follower_id\":[1],\"record_time\":\"$(date '+%Y-%m-%d %H:%M:%S')\"}" \
        application/json scripts/bench/follow-create.lua
    local start end
    start=$(date -d '60 days ago' '+%Y-%m-%d%%20%H:%M:%S') end=$(date '+%Y-%m-%d%%20%H:%M:%S')
    add_scenario stats-follow      GET "/api/stats/follow?start_time=$start&end_time=$end"
    add_scenario stats-follow-cold GET "/api/stats/follow?start_time=$start" "" "" scripts/bench/stats-cold.lua
}

# Run after seeding BENCH_CONTRACT_ORGS organizations and CRM_BENCH_CONTRACTS contracts (signed
# over the last 540 days) with scripts/bench/seed.py --contracts. CONTRACT_ORG_ID is a seeded
# organization. contract-page is the default list: one year of sign_time, newest first, with
# page_info.total; contract-create one write (contract, follower link, day count, outbox).
# stats-sign: the signing statistic over one year, all organizations, first page (one fixed
# window: cached answers); stats-sign-cold: another end_time in every request (computed answers).
CONTRACT_SCENARIOS=(contract-page contract-create stats-sign stats-sign-cold)
add_contract_scenarios() {
    local start end
    start=$(date -d '365 days ago' '+%Y-%m-%d%%20%H:%M:%S') end=$(date '+%Y-%m-%d%%20%H:%M:%S')
    add_scenario stats-sign      GET "/api/stats/sign?start_time=$start&end_time=$end"
    add_scenario stats-sign-cold GET "/api/stats/sign?start_time=$start" "" "" scripts/bench/stats-cold.lua
    add_scenario contract-page   GET "/api/contract/contract?page=1&count=20"
    add_scenario contract-create POST /api/contract/contract \
        "{\"organization_id\":$CONTRACT_ORG_ID,\"name\":\"压测合同\",\"code\":\"HT-WRK\",\"amount\":\"112.50\",\"sign_time\":\"$(date '+%Y-%m-%d %H:%M:%S')\",\"follower_id\":[1]}" \
        application/json
}

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/crm-bench.XXXXXX")
LOG=$TMP/crm.log
CRM_PID=
WRK_PID=
SEED_PID=
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
    if [[ -n $SEED_PID ]]; then kill "$SEED_PID" 2>/dev/null || true; fi
    if [[ -n ${NGINX_PID:-} ]]; then kill -TERM "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; fi
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

# free_port, http_code
# shellcheck source=lib/common.sh
source "$ROOT/scripts/lib/common.sh"

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
say "loadavg: $(cut -d' ' -f1-3 /proc/loadavg) before the start (anything else running skews the figures)"
say "load:    wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency per scenario, after a ${WARMUP} s warm-up run"

if ! command -v swift >/dev/null && [[ -x /opt/swift/usr/bin/swift ]]; then PATH=/opt/swift/usr/bin:$PATH; fi
if [[ -n ${CRM_BENCH_BIN:-} ]]; then
    say "build:   skipped, binaries from $BIN (CRM_BENCH_BIN)"
elif [[ ${CRM_BENCH_SKIP_BUILD:-0} == 1 ]]; then
    say "build:   skipped (CRM_BENCH_SKIP_BUILD=1)"
else
    started=$(date +%s)
    # Sources edited while swift builds make it fail with "was modified during the build";
    # try again a few times before giving up.
    for attempt in 1 2 3 4 5; do
        swift build -c release --scratch-path .build-bench >"$TMP/build.log" 2>&1 && break
        if (( attempt < 5 )) && grep -q 'was modified during the build' "$TMP/build.log"; then sleep 5; continue; fi
        cat "$TMP/build.log" >&2
        die "release build failed"
    done
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

# Fields of a JSON answer saved in a file, printed as "total rows" (page_info.total, or - when
# there is none; the number of elements in data, or - when it is not a list).
page_figures() {
    python3 - "$1" <<'PY' 2>/dev/null || echo "- -"
import json, sys
answer = json.load(open(sys.argv[1], encoding="utf-8"))
total = (answer.get("page_info") or {}).get("total", "-")
data = answer.get("data")
# The statistics' nested [[rows], {total, page, count}].
if isinstance(data, list) and len(data) == 2 and isinstance(data[0], list) and isinstance(data[1], dict):
    total, data = data[1].get("total", "-"), data[0]
print(total, len(data) if isinstance(data, list) else "-")
PY
}

scenario_url() {   # scenario_url INDEX
    if [[ ${SC_BASE[$1]} == nginx ]]; then echo "$NGINX_BASE${SC_PATH[$1]}"; else echo "$BASE${SC_PATH[$1]}"; fi
}

verify_scenario() {
    local i=$1 code body figures
    local args=(-s -o "$TMP/verify.body" -w '%{http_code}' --max-time 10 -X "${SC_METHOD[i]}" -H "$AUTH")
    [[ -n ${SC_TYPE[i]} ]] && args+=(-H "Content-Type: ${SC_TYPE[i]}")
    [[ -n ${SC_BODY[i]} ]] && args+=(--data-binary "${SC_BODY[i]}")
    code=$(curl "${args[@]}" "$(scenario_url "$i")" || true)
    body=$(head -c 400 "$TMP/verify.body" 2>/dev/null || true)
    if [[ $code != 2?? ]] || ! grep -Eq '"status"[[:space:]]*:[[:space:]]*0[[:space:]]*[,}]' <<<"$body"; then
        die "scenario ${SC_NAME[i]} does not work: ${SC_METHOD[i]} ${SC_PATH[i]} answered HTTP $code: $body"
    fi
    case ${SC_NAME[i]} in
        customer-page|customer-search|contract-page|follow-page|potential-page|stats-*)
            read -r VERIFY_TOTAL VERIFY_ROWS <<<"$(page_figures "$TMP/verify.body")"
            [[ $VERIFY_ROWS =~ ^[1-9] ]] || die "scenario ${SC_NAME[i]}: GET ${SC_PATH[i]} answered no rows: $body"
            ;;
    esac
    case ${SC_NAME[i]} in
        customer-page)
            say "check:   customer-page: page_info.total $VERIFY_TOTAL (seeded $SEED_CUSTOMERS), $VERIFY_ROWS rows on page 1" ;;
        customer-search)
            say "check:   customer-search: name=$SEARCH_TERM: page_info.total $VERIFY_TOTAL (seed.py counted $SEED_SEARCH_MATCHES), $VERIFY_ROWS rows on page 1"
            [[ $VERIFY_TOTAL == "$SEED_SEARCH_MATCHES" ]] \
                || say "WARNING: the service found $VERIFY_TOTAL customers for name=$SEARCH_TERM, seed.py expected $SEED_SEARCH_MATCHES"
            ;;
        customer-create)
            say "check:   customer-create: answered $(head -c 200 "$TMP/verify.body")" ;;
        contract-page)
            say "check:   contract-page: page_info.total $VERIFY_TOTAL (seed.py: $CONTRACTS_IN_WINDOW of $BENCH_CONTRACTS in the last 365 days), $VERIFY_ROWS rows on page 1" ;;
        stats-sign|stats-sign-cold)
            say "check:   ${SC_NAME[i]}: $VERIFY_TOTAL organizations signed in the window, $VERIFY_ROWS rows on page 1" ;;
        stats-follow|stats-follow-cold)
            say "check:   ${SC_NAME[i]}: $VERIFY_TOTAL organizations with follow-up records in the window, $VERIFY_ROWS rows on page 1" ;;
        contract-create|follow-create)
            say "check:   ${SC_NAME[i]}: answered $(head -c 200 "$TMP/verify.body")" ;;
    esac
}

# CPU time of each system process and of wrk during a measured run, from /proc/<pid>/stat
# (utime + stime) and, for wrk, which has been reaped by then, from the shell's `times`.
TICKS=$(getconf CLK_TCK 2>/dev/null || echo 100)
declare -A CPU_BEFORE=()
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }   # busy idle
children_ms() {   # CHILDREN_MS = CPU time of the shell's reaped children (call it without $(…))
    times >"$TMP/times"
    CHILDREN_MS=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60000 + a[2] * 1000 } printf "%d\n", t }' "$TMP/times")
}
cpu_begin() {
    local pid
    CPU_BEFORE=()
    # nginx (master and workers) is counted too when it runs, so its CPU is not "other".
    for pid in $(child_pids "$CRM_PID") "$CRM_PID" ${NGINX_PID:+"$NGINX_PID" $(child_pids "$NGINX_PID")}; do CPU_BEFORE[$pid]=$(proc_ticks "$pid"); done
    read -r CPU_BUSY0 CPU_IDLE0 <<<"$(machine_ticks)"
    children_ms
    CPU_CHILDREN0=$CHILDREN_MS
    CPU_T0=$(date +%s%N)
}
cpu_line() {   # one line: % of one core used by each process during the run
    local elapsed_ms pid name pct line="" busy idle sum=0
    elapsed_ms=$(( ($(date +%s%N) - CPU_T0) / 1000000 ))
    (( elapsed_ms > 0 )) || return 0
    for pid in "${!CPU_BEFORE[@]}"; do
        name=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
        pct=$(( ($(proc_ticks "$pid") - CPU_BEFORE[$pid]) * 1000 * 100 / TICKS / elapsed_ms ))
        sum=$(( sum + pct ))
        (( pct >= 1 )) && line+="$name $pct, "
    done
    children_ms
    pct=$(( (CHILDREN_MS - CPU_CHILDREN0) * 100 / elapsed_ms ))
    sum=$(( sum + pct ))
    line+="wrk $pct"
    read -r busy idle <<<"$(machine_ticks)"
    busy=$(( busy - CPU_BUSY0 )) idle=$(( idle - CPU_IDLE0 ))
    if (( busy + idle > 0 )); then
        busy=$(( busy * 100 * $(nproc) / (busy + idle) ))
        # "other": everything else on the machine (another build, the test suite…), roughly.
        line+="; machine busy $busy of $(( 100 * $(nproc) )), other $(( busy > sum ? busy - sum : 0 ))"
    fi
    printf '%-18s %s\n' "" "cpu %: $line"
}

# wrk stops with requests still queued in the services (a slow scenario can leave seconds of
# work behind). Wait until the system is idle, so that one scenario does not overlap the next:
# until its processes together use at most about 4 % of one core over half a second, for at
# most 30 s.
settle() {
    local started=$SECONDS before after pid
    while (( SECONDS - started < 30 )); do
        before=0 after=0
        for pid in $(child_pids "$CRM_PID"); do before=$(( before + $(proc_ticks "$pid") )); done
        sleep 0.5
        for pid in $(child_pids "$CRM_PID"); do after=$(( after + $(proc_ticks "$pid") )); done
        (( (after - before) * 200 <= 4 * TICKS )) && break
    done
    if (( SECONDS - started >= 2 )); then say "                   (waited $(( SECONDS - started )) s for the system to become idle)"; fi
}

run_wrk() {   # run_wrk INDEX SECONDS OUTPUT_FILE
    local i=$1 seconds=$2 out=$3
    local args=(-t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --latency -H "$AUTH")
    [[ -n ${SC_SCRIPT[i]} ]] && args+=(-s "${SC_SCRIPT[i]}")
    # In the background, so that Ctrl-C or SIGTERM stops the benchmark at once (see cleanup).
    WRK_METHOD=${SC_METHOD[i]} WRK_BODY=${SC_BODY[i]} WRK_CONTENT_TYPE=${SC_TYPE[i]} WRK_ORG_ID=${ORG_ID:-1} \
        wrk "${args[@]}" "$(scenario_url "$i")" >"$out" 2>&1 &
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
    RESULT_NAMES+=("$1") RESULT_RPS+=("${rps:-}") RESULT_P99+=("${p99:-}")
    if [[ -n $non2xx && $non2xx != 0 ]]; then NON2XX_SCENARIOS+=("$1 ($non2xx)"); fi
}
NON2XX_SCENARIOS=()
RESULT_NAMES=() RESULT_RPS=() RESULT_P99=()

# nginx-livez and livez, when both run, are measured FLOOR_ROUNDS times each in alternation and
# the median round of each is the figure: every ratio divides by livez, and one 10 s run of each
# swings by ±15 % on these machines (nginx alone 58,500–74,200 requests/s in three runs within
# minutes), more than the 0.9 the gateway is held to.
FLOOR_ROUNDS=${CRM_BENCH_FLOOR_ROUNDS:-3}
[[ $FLOOR_ROUNDS =~ ^[1-9][0-9]*$ ]] || die "CRM_BENCH_FLOOR_ROUNDS must be a positive integer"
floor_index() { local i; for (( i = 0; i < ${#SC_NAME[@]}; i++ )); do if [[ ${SC_NAME[i]} == "$1" ]]; then echo "$i"; fi; done; }
both_floors() { selected nginx-livez && selected livez; }

run_floor_rounds() {   # measures nginx-livez and livez in alternation; reports each one's median round
    local r i name rps out
    local -A rounds=()
    for (( r = 1; r <= FLOOR_ROUNDS; r++ )); do
        for name in nginx-livez livez; do
            i=$(floor_index "$name")
            out="$TMP/$name.round$r.txt"
            settle
            run_wrk "$i" "$WARMUP" "$TMP/$name.warmup.txt"
            cpu_begin
            run_wrk "$i" "$DURATION" "$out"
            remember_children
            rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
            printf '%-18s %12s %10s %10s   (round %d of %d)\n' "$name" "${rps:-?}" \
                "$(awk '$1 == "50%" { print $2 }' "$out")" "$(awk '$1 == "99%" { print $2 }' "$out")" "$r" "$FLOOR_ROUNDS"
            cpu_line
            rounds[$name]+="${rps:-0} $out"$'\n'
        done
    done
    for name in nginx-livez livez; do
        # The median round by requests/s (the lower middle one of an even count).
        out=$(printf '%s' "${rounds[$name]}" | sort -n | awk -v n="$FLOOR_ROUNDS" 'NR == int((n + 1) / 2) { print $2 }')
        report_line "$name" "$out"
        printf '%-18s %s\n' "" "(median of $FLOOR_ROUNDS alternated rounds)"
    done
}

run_scenarios() {   # run_scenarios FIRST_INDEX: check, then measure, scenarios FIRST_INDEX…
    local first=$1 i any=0
    for (( i = first; i < ${#SC_NAME[@]}; i++ )); do
        if selected "${SC_NAME[i]}"; then verify_scenario "$i"; any=1; fi
    done
    (( any )) || return 0
    say ""
    printf '%-18s %12s %10s %10s %8s  %s\n' scenario requests/s p50 p99 non-2xx "socket errors"
    for (( i = first; i < ${#SC_NAME[@]}; i++ )); do
        selected "${SC_NAME[i]}" || continue
        if both_floors && [[ ${SC_NAME[i]} == nginx-livez || ${SC_NAME[i]} == livez ]]; then
            [[ ${SC_NAME[i]} == nginx-livez ]] && run_floor_rounds
            continue
        fi
        settle
        run_wrk "$i" "$WARMUP" "$TMP/${SC_NAME[i]}.warmup.txt"
        cpu_begin
        run_wrk "$i" "$DURATION" "$TMP/${SC_NAME[i]}.txt"
        remember_children
        report_line "${SC_NAME[i]}" "$TMP/${SC_NAME[i]}.txt"
        cpu_line
    done
}

# nginx-livez: nginx-light from Debian (installed when missing), one worker per core, answering
# what the gateway's /livez answers, on another free port. Stopped with everything else.
NGINX_PID=
if selected nginx-livez; then
    if ! command -v nginx >/dev/null; then
        say "nginx:   not found; installing nginx-light with apt-get"
        { apt-get update -qq -o DPkg::Lock::Timeout=300 && apt-get install -y -qq -o DPkg::Lock::Timeout=300 nginx-light; } >"$TMP/apt-nginx.log" 2>&1 \
            || { cat "$TMP/apt-nginx.log" >&2; die "could not install nginx-light"; }
    fi
    NGINX_PORT=$(free_port)
    NGINX_BASE=http://127.0.0.1:$NGINX_PORT
    mkdir -p "$TMP/nginx"
    cat >"$TMP/nginx/nginx.conf" <<NGINX
worker_processes $(nproc);
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /livez {
            default_type "application/json; charset=utf-8";
            add_header X-Content-Type-Options nosniff;
            add_header Cache-Control no-store;
            return 200 '{"status":0}';
        }
    }
}
NGINX
    nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' >"$TMP/nginx/out.log" 2>&1 &
    NGINX_PID=$!
    for _ in $(seq 50); do [[ $(http_code "$NGINX_BASE/livez") == 200 ]] && break; sleep 0.1; done
    [[ $(http_code "$NGINX_BASE/livez") == 200 ]] || { cat "$TMP/nginx/out.log" "$TMP/nginx/error.log" >&2 2>/dev/null; die "nginx did not answer on $NGINX_BASE/livez"; }
    say "nginx:   $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(nproc) workers, $NGINX_BASE/livez"
fi

run_scenarios 0

# ---------------------------------------------------------------------------------------------
# Seeded scenarios: seed through the API, then measure
# ---------------------------------------------------------------------------------------------
size_of() { if [[ -f $1 ]]; then awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; else echo "none"; fi; }
any_selected() { local name; for name in "$@"; do selected "$name" && return 0; done; return 1; }

# run_helper LOG COMMAND…: runs a seeding or measuring helper in the background (so Ctrl-C
# stops it at once, see cleanup), prints its output indented, and stops the benchmark with
# that output if it fails.
run_helper() {
    local log=$1; shift
    "$@" >"$log" 2>&1 &
    SEED_PID=$!
    wait "$SEED_PID" || { sed 's/^/         /' "$log" >&2; SEED_PID=; die "$(basename "$2") failed"; }
    SEED_PID=
    sed 's/^/         /' "$log"
}

# await_checkpoint DATABASE: after seeding, until the service's idle checkpoint (every 30 s
# once no write came for a second) has emptied a WAL of more than 4 MiB, for at most 35 s — so
# that copying the seeding's last WAL pages into the file (about a second of the writer's
# time after 100,000 customers) is not measured as part of the first scenario after it.
await_checkpoint() {
    local wal=$1-wal started=$SECONDS
    [[ -f $wal ]] && (( $(stat -c %s "$wal") > 4194304 )) || return 0
    while (( SECONDS - started < 35 )) && [[ -f $wal ]] && (( $(stat -c %s "$wal") > 0 )); do sleep 0.5; done
    say "         (waited $(( SECONDS - started )) s for the checkpoint after seeding: $(basename "$wal") $(size_of "$wal"))"
}

# seed NAME DATABASE SEED_ARGS…: runs scripts/bench/seed.py with SEED_ARGS, prints its output
# and the database's size, and loads the SEED_* figures it wrote.
seed() {
    local name=$1 file=$2 db=$TMP/data/$2.sqlite
    shift 2
    python3 scripts/bench/seed.py --port "$PORT" --token="$TOKEN" --connections "$SEED_CONNECTIONS" \
        --env "$TMP/seed-$name.env" "$@" >"$TMP/seed-$name.log" 2>&1 &
    SEED_PID=$!
    wait "$SEED_PID" || { sed 's/^/         /' "$TMP/seed-$name.log" >&2; SEED_PID=; die "seeding $name failed"; }
    SEED_PID=
    sed 's/^/         /' "$TMP/seed-$name.log"
    say "         $file.sqlite $(size_of "$db"), $file.sqlite-wal $(size_of "$db-wal") after seeding"
    await_checkpoint "$db"
    # shellcheck disable=SC1090
    source "$TMP/seed-$name.env"
}

# after_figures PATH DATABASE: the list's page_info.total and the database's size after the runs.
after_figures() {
    local db=$TMP/data/$2.sqlite
    say ""
    curl -s -o "$TMP/after.body" --max-time 10 -H "$AUTH" "$BASE$1?page=1&count=1" || true
    say "after:   page_info.total of GET $1: $(page_figures "$TMP/after.body" | cut -d' ' -f1)"
    say "after:   $2.sqlite $(size_of "$db"), $2.sqlite-wal $(size_of "$db-wal")"
}

if any_selected "${CUSTOMER_SCENARIOS[@]}"; then
    say ""
    say "seed:    $SEED_ORGS organizations, $SEED_CUSTOMERS customers (scripts/bench/seed.py, $SEED_CONNECTIONS connections)"
    seed customers customers --organizations "$SEED_ORGS" --customers "$SEED_CUSTOMERS"
    SEARCH_TERM=$SEED_SEARCH_TERM
    ORG_ID=$SEED_ORGANIZATION_ID
    [[ $SEARCH_TERM =~ ^[a-z]{4}$ ]] || die "seed.py gave no usable search term: '$SEARCH_TERM'"
    first_customer_scenario=${#SC_NAME[@]}
    add_customer_scenarios
    run_scenarios "$first_customer_scenario"
    after_figures /api/customers/customers customers
fi

if any_selected "${CONTRACT_SCENARIOS[@]}"; then
    say ""
    say "seed:    $BENCH_CONTRACT_ORGS organizations, $BENCH_CONTRACTS contracts (scripts/bench/seed.py --contracts, $SEED_CONNECTIONS connections)"
    seed contracts contracts --organizations "$BENCH_CONTRACT_ORGS" --customers 0 --contracts "$BENCH_CONTRACTS" --random-seed 2
    CONTRACT_ORG_ID=$SEED_ORGANIZATION_ID
    CONTRACTS_IN_WINDOW=$(sed -n 's/.* \([0-9]*\) signed in the last 365 days.*/\1/p' "$TMP/seed-contracts.log")
    first_contract_scenario=${#SC_NAME[@]}
    add_contract_scenarios
    run_scenarios "$first_contract_scenario"
    after_figures /api/contract/contract contracts
fi


if any_selected "${RECORD_SCENARIOS[@]}"; then
    say ""
    say "seed:    $SEED_ORGS organizations, $SEED_POTENTIALS potential records, $SEED_FOLLOWS follow-up records over $SEED_FOLLOW_DAYS days (scripts/bench/seed_records.py, $SEED_CONNECTIONS connections)"
    run_helper "$TMP/seed_records.log" python3 scripts/bench/seed_records.py --port "$PORT" --token="$TOKEN" --organizations "$SEED_ORGS" \
        --potentials "$SEED_POTENTIALS" --follows "$SEED_FOLLOWS" --follow-days "$SEED_FOLLOW_DAYS" --connections "$SEED_CONNECTIONS" \
        --env "$TMP/seed_records.env"
    rdb=$TMP/data/records.sqlite
    say "         records.sqlite $(size_of "$rdb"), records.sqlite-wal $(size_of "$rdb-wal") after seeding"
    await_checkpoint "$rdb"
    # shellcheck disable=SC1091
    source "$TMP/seed_records.env"
    RECORD_ORG_ID=$SEED_RECORD_ORGANIZATION_ID
    POTENTIAL_ID=$SEED_POTENTIAL_ID

    first_record_scenario=${#SC_NAME[@]}
    add_record_scenarios
    run_scenarios "$first_record_scenario"
fi

# Event lag (CRM_BENCH_ONLY="event-lag", or every scenario): from an acknowledged employee
# rename to the new name in a follow-up list, under a steady write load (scripts/bench/event_lag.py).
if selected event-lag; then
    if [[ -z ${POTENTIAL_ID:-} ]]; then
        POTENTIAL_ID=$(curl -s --max-time 10 -H "$AUTH" -H 'Content-Type: application/json' -X POST "$BASE/api/record/potential" \
            --data-binary "{\"organization_id\":$(curl -s --max-time 10 -H "$AUTH" -X POST "$BASE/api/customers/organization" -d 'groupName=lag' \
                | sed -n 's/.*"id":\([0-9]*\).*/\1/p'),\"director_id\":1,\"record_time\":\"$(date '+%Y-%m-%d %H:%M:%S')\"}" \
            | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
    fi
    say ""
    say "event-lag: scripts/bench/event_lag.py on potential record $POTENTIAL_ID"
    run_helper "$TMP/event_lag.log" python3 scripts/bench/event_lag.py --port "$PORT" --token="$TOKEN" --potential "$POTENTIAL_ID"
fi

# Stats lag (CRM_BENCH_ONLY="stats-lag", or every scenario): from an acknowledged contract or
# follow-up write to the statistic showing it, under a steady follow-up write load
# (scripts/bench/stats_lag.py).
if selected stats-lag; then
    say ""
    say "stats-lag: scripts/bench/stats_lag.py"
    run_helper "$TMP/stats_lag.log" python3 scripts/bench/stats_lag.py --port "$PORT" --token="$TOKEN"
fi

# Gateway connections (CRM_BENCH_ONLY="gateway-connections", or every scenario): the gateway's
# memory with 1,000 open keep-alive connections, each after one authenticated request, twice
# (scripts/bench/connections.py). Run after the other scenarios, so the gateway has already
# carried their load.
if selected gateway-connections; then
    GATEWAY_PID=
    for pid in $(child_pids "$CRM_PID"); do [[ $(cat "/proc/$pid/comm" 2>/dev/null) == Gateway ]] && GATEWAY_PID=$pid; done
    [[ -n $GATEWAY_PID ]] || die "gateway-connections: no Gateway process under crm"
    say ""
    say "gateway-connections: scripts/bench/connections.py, 1,000 keep-alive connections to the gateway (pid $GATEWAY_PID, open-file limit $(awk '/^Max open files/ { print $4 }' "/proc/$GATEWAY_PID/limits")), loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
    run_helper "$TMP/connections.log" python3 scripts/bench/connections.py --port "$PORT" --token="$TOKEN" --pid "$GATEWAY_PID" --connections 1000
fi


# Every scenario against the floor: nginx answering the same bytes on the same machine.
nginx_rps=
for (( i = 0; i < ${#RESULT_NAMES[@]}; i++ )); do [[ ${RESULT_NAMES[i]} == nginx-livez ]] && nginx_rps=${RESULT_RPS[i]}; done
if [[ -n $nginx_rps ]]; then
    say ""
    say "against nginx-livez ($nginx_rps requests/s): requests/s as a share of it"
    for (( i = 0; i < ${#RESULT_NAMES[@]}; i++ )); do
        [[ -n ${RESULT_RPS[i]} ]] || continue
        printf '%-18s %12s %10s  %s\n' "${RESULT_NAMES[i]}" "${RESULT_RPS[i]}" "${RESULT_P99[i]}" \
            "$(awk -v a="${RESULT_RPS[i]}" -v b="$nginx_rps" 'BEGIN { printf "%.3f of nginx (1/%.1f)", a / b, b / a }')"
    done
fi

# ---------------------------------------------------------------------------------------------
# Memory, and whether anything died
# ---------------------------------------------------------------------------------------------
say ""
# RssAnon is the process's own memory; RssFile is mostly SQLite's memory-mapped database
# pages, which are the kernel's page cache (shared, reclaimable) rather than heap.
printf '%-16s %8s %12s %12s %12s %12s\n' process pid VmRSS RssAnon RssFile VmHWM
for pid in "$CRM_PID" $(child_pids "$CRM_PID"); do
    printf '%-16s %8s %12s %12s %12s %12s\n' "$(cat "/proc/$pid/comm" 2>/dev/null || echo '?')" "$pid" \
        "$(awk '/^VmRSS:/ { print $2 " " $3 }' "/proc/$pid/status" 2>/dev/null)" \
        "$(awk '/^RssAnon:/ { print $2 " " $3 }' "/proc/$pid/status" 2>/dev/null)" \
        "$(awk '/^RssFile:/ { print $2 " " $3 }' "/proc/$pid/status" 2>/dev/null)" \
        "$(awk '/^VmHWM:/ { print $2 " " $3 }' "/proc/$pid/status" 2>/dev/null)"
done

say ""
if (( ${#NON2XX_SCENARIOS[@]} )); then
    say "WARNING: non-2xx responses in: ${NON2XX_SCENARIOS[*]}"
    NON2XX_FAILED=1
fi
if grep -q 'exited' "$LOG"; then
    FAILED_CHILDREN=$(grep -c 'exited' "$LOG")
    say "WARNING: the launcher reported $FAILED_CHILDREN child exit(s) during the benchmark:"
    grep 'exited' "$LOG"
    exit 1
fi
say "launcher: no child process exited during the benchmark"
if [[ ${NON2XX_FAILED:-0} == 1 ]]; then exit 1; fi
