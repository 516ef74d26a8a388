#!/usr/bin/env bash
# Slow and abusive clients against the running system (issue 13 item 3). Builds release binaries,
# starts `crm up` on a fresh temporary data folder and a free port (127.0.0.1 only), logs in,
# then for each slowhttptest mode — slow headers (Slowloris), slow body (R-U-Dead-Yet), slow
# read — holds SLOW_CONNECTIONS connections (slowhttptest is started again whenever the gateway
# has closed all of them) while a parallel `wrk -t1 -c16 -d20s` measures the
# latency of an authenticated `GET /api/user/group`. Prints, per mode: wrk's p50/p99 and
# requests (with non-2xx answers and socket errors), the gateway's RSS before/peak during/after
# (from /proc), its open file descriptors during and after, and slowhttptest's closing
# counts. Everything runs with `nice -n 19` (a shared machine). It prints figures only; it
# exits 1 if the system or a tool fails. See docs/BENCHMARKS.md ("Slow clients").
#
#   scripts/slow-clients.sh                       all three modes (about 4 minutes)
#   SLOW_MODES="headers read" scripts/slow-clients.sh
#   SLOW_CONNECTIONS=1000 SLOW_SECONDS=60 scripts/slow-clients.sh   (the defaults)
#   SLOW_SKIP_BUILD=1 scripts/slow-clients.sh     reuse .build-bench/release as it is
#   SLOW_KEEP=1 scripts/slow-clients.sh           keep the temporary folder (logs, raw output)
#
# Needs slowhttptest and wrk (apt-get install slowhttptest wrk).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

MODES=(${SLOW_MODES:-headers body read})
CONNECTIONS=${SLOW_CONNECTIONS:-1000}
LENGTH=${SLOW_SECONDS:-60}      # how long slowhttptest runs per mode
WRK_SECONDS=20
SETTLE=6                        # seconds after the attack starts before wrk measures (1,000 connections at 200/s take 5 s)
ADMIN_PASSWORD=slow-password-1
BIN=.build-bench/release
NICE=(nice -n 19)
PROCESS_NAMES=(crm Gateway UserService CustomerService RecordService ContractService StatsService)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/crm-slow.XXXXXX")
LOG=$TMP/crm.log
CRM_PID=
SLOW_PID=
SAMPLER_PID=

say() { printf '%s\n' "$*"; }
die() { printf 'slow-clients: %s\n' "$*" >&2; exit 1; }

child_pids() {
    local status
    for status in /proc/[0-9]*/status; do
        awk -v parent="$1" '/^PPid:/ { if ($2 == parent) { split(FILENAME, p, "/"); print p[3] } exit }' "$status" 2>/dev/null || true
    done
}
is_gone() { local s; s=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0; [[ -z $s || $s == Z ]]; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -n $SAMPLER_PID ]] && kill "$SAMPLER_PID" 2>/dev/null || true
    if [[ -n $SLOW_PID ]]; then
        local child
        for child in $(child_pids "$SLOW_PID"); do kill "$child" 2>/dev/null || true; done
        kill "$SLOW_PID" 2>/dev/null || true
    fi
    if [[ -n $CRM_PID ]]; then
        local children
        children=$(child_pids "$CRM_PID")
        kill -TERM "$CRM_PID" 2>/dev/null || true
        for _ in $(seq 200); do is_gone "$CRM_PID" && break; sleep 0.1; done
        kill -KILL "$CRM_PID" 2>/dev/null || true
        wait "$CRM_PID" 2>/dev/null || true
        local pid name
        for pid in $children; do
            name=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
            [[ " ${PROCESS_NAMES[*]} " == *" $name "* ]] && ! is_gone "$pid" && kill -KILL "$pid" 2>/dev/null || true
        done
    fi
    if [[ $rc -ne 0 && -s $LOG ]]; then tail -n 20 "$LOG" >&2; fi
    if [[ ${SLOW_KEEP:-0} == 1 ]]; then say "kept: $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port, http_code
# shellcheck source=lib/common.sh
source "$ROOT/scripts/lib/common.sh"
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f MB", kb / 1024 }'; }

command -v slowhttptest >/dev/null || die "slowhttptest not found (apt-get install slowhttptest)"
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
if ! command -v swift >/dev/null && [[ -x /opt/swift/usr/bin/swift ]]; then PATH=/opt/swift/usr/bin:$PATH; fi
if [[ ${SLOW_SKIP_BUILD:-0} != 1 ]]; then
    "${NICE[@]}" swift build -c release --scratch-path .build-bench >"$TMP/build.log" 2>&1 || { cat "$TMP/build.log" >&2; die "release build failed"; }
fi
[[ -x $BIN/crm ]] || die "$BIN/crm is missing"
# 1,000 slow connections plus wrk need more descriptors than the usual 1,024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
CRM_DATA_DIR=$TMP/data CRM_PORT=$PORT CRM_HOST=127.0.0.1 CRM_ADMIN_PASSWORD=$ADMIN_PASSWORD CRM_LOG_LEVEL=warn \
    "${NICE[@]}" "$BIN/crm" up >"$LOG" 2>&1 &
CRM_PID=$!
deadline=$((SECONDS + 60))
until [[ $(http_code "$BASE/healthz") == 200 ]]; do
    is_gone "$CRM_PID" && die "crm exited during start-up"
    (( SECONDS < deadline )) || die "$BASE/healthz did not answer 200 within 60 s"
    sleep 0.2
done
GATEWAY=
for pid in $(child_pids "$CRM_PID"); do [[ $(cat "/proc/$pid/comm" 2>/dev/null) == Gateway ]] && GATEWAY=$pid; done
[[ -n $GATEWAY ]] || die "no Gateway process under crm ($CRM_PID)"

LOGIN=$(curl -s --max-time 10 -X POST "$BASE/api/user/login" -d "phoneNumber=admin&password=$ADMIN_PASSWORD")
TOKEN=$(sed -n 's/.*"token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' <<<"$LOGIN")
[[ -n $TOKEN ]] || die "login failed: $LOGIN"
AUTH="Authorization: Bearer $TOKEN"
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" "$BASE/api/user/group") == 200 ]] || die "GET /api/user/group is not 200"

say "Slow clients"
say "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
say "commit:   $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
say "system:   crm up on 127.0.0.1:$PORT (gateway pid $GATEWAY), everything under nice -n 19"
say "attack:   slowhttptest -c $CONNECTIONS -r 200, restarted whenever all its connections are closed, for $LENGTH s per mode; measured: wrk -t1 -c16 -d${WRK_SECONDS}s GET /api/user/group (Bearer), ${SETTLE} s after the attack starts"
say ""

# wrk's figures as "p50 p99 requests non2xx errors".
measure() {
    local out=$1
    "${NICE[@]}" wrk -t1 -c16 -d"${WRK_SECONDS}s" --latency -H "$AUTH" "$BASE/api/user/group" >"$out" 2>&1 || true
    local p50 p99 reqs non2xx errors
    p50=$(awk '$1 == "50%" { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { print $2 }' "$out")
    reqs=$(awk '/requests in/ { print $1 }' "$out")
    non2xx=$(awk '/Non-2xx/ { print $NF }' "$out")
    errors=$(sed -n 's/.*Socket errors: \(.*\)/\1/p' "$out")
    printf '%s %s %s %s %s' "${p50:-?}" "${p99:-?}" "${reqs:-?}" "${non2xx:-0}" "${errors:-none}"
}

# Keeps CONNECTIONS slow clients of mode $1 for LENGTH seconds: slowhttptest stops once the
# gateway has closed all its connections (e.g. the 10 s head deadline), so it is started again
# until the time is up. Each run leaves slow-<mode>-<n>.csv/.txt in $TMP.
attack() {
    local mode=$1 end=$((SECONDS + LENGTH)) run=0
    shift
    while (( SECONDS < end - 2 )); do
        run=$((run + 1))
        "${NICE[@]}" slowhttptest "$@" -c "$CONNECTIONS" -r 200 -l $((end - SECONDS)) -p 5 -v 1 -g \
            -o "$TMP/slow-$mode-$run" >"$TMP/slow-$mode-$run.txt" 2>&1 || true
    done
}

# Highest RSS of the gateway while the file $1 exists, written to $2.
sample_peak() {
    local flag=$1 out=$2 peak=0 now
    while [[ -e $flag ]]; do
        now=$(rss_kb "$GATEWAY"); (( now > peak )) && peak=$now
        echo "$peak" >"$out"
        sleep 0.5
    done
}

read -r p50 p99 reqs non2xx errors <<<"$(measure "$TMP/wrk-baseline.txt")"
say "baseline (no attack): wrk p50 $p50, p99 $p99, $reqs requests, non-2xx $non2xx, socket errors: $errors"
say "  gateway RSS $(mb "$(rss_kb "$GATEWAY")"), $(fds "$GATEWAY") fds"
say ""

for mode in "${MODES[@]}"; do
    case $mode in
        headers) args=(-H -i 5 -x 24 -u "$BASE/api/user/group") ;;
        body) args=(-B -i 5 -s 8192 -x 24 -u "$BASE/api/user/login") ;;
        # Slow read of the largest public answer, several requests per connection, tiny windows.
        read) args=(-X -k 4 -n 2 -w 1 -y 64 -z 32 -u "$BASE/openapi.json") ;;
        *) die "unknown mode $mode (headers, body, read)" ;;
    esac
    is_gone "$GATEWAY" && die "the gateway exited"
    before=$(rss_kb "$GATEWAY"); fds_before=$(fds "$GATEWAY")
    touch "$TMP/sampling"
    sample_peak "$TMP/sampling" "$TMP/peak" &
    SAMPLER_PID=$!
    attack "$mode" "${args[@]}" &
    SLOW_PID=$!
    sleep "$SETTLE"
    fds_during=$(fds "$GATEWAY")
    read -r p50 p99 reqs non2xx errors <<<"$(measure "$TMP/wrk-$mode.txt")"
    fds_late=$(fds "$GATEWAY")
    wait "$SLOW_PID" || true
    SLOW_PID=
    rm -f "$TMP/sampling"; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=
    peak=$(cat "$TMP/peak" 2>/dev/null || echo 0)
    sleep 3
    after=$(rss_kb "$GATEWAY"); fds_after=$(fds "$GATEWAY")
    runs=$(ls "$TMP"/slow-"$mode"-*.txt 2>/dev/null | wc -l || true)
    # slowhttptest's CSV: Seconds,Closed,Pending,Connected,Service Available.
    max_connected=$(cat "$TMP"/slow-"$mode"-*.csv 2>/dev/null | awk -F, '$1 ~ /^[0-9]+$/ && $4 > m { m = $4 } END { print m + 0 }' || true)
    unavailable=$(cat "$TMP"/slow-"$mode"-*.csv 2>/dev/null | awk -F, '$1 ~ /^[0-9]+$/ && $5 == 0 { n++ } END { print n + 0 }' || true)
    say "mode $mode: slowhttptest ${args[*]} -c $CONNECTIONS -r 200 ($runs run(s) back to back for ${LENGTH} s)"
    say "  wrk during the attack: p50 $p50, p99 $p99, $reqs requests, non-2xx $non2xx, socket errors: $errors"
    say "  gateway RSS before $(mb "$before"), peak $(mb "$peak"), after $(mb "$after")"
    say "  gateway fds before $fds_before, at ${SETTLE} s $fds_during, at $((SETTLE + WRK_SECONDS)) s $fds_late, 3 s after the attack $fds_after"
    say "  slowhttptest: at most $max_connected connected at once; $unavailable one-second samples where its probe found the service unavailable"
    say "  how its runs ended: $(grep -h 'Exit status' "$TMP"/slow-"$mode"-*.txt 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g; s/.*Exit status: *//' | sort | uniq -c | sed 's/^ *//' | paste -sd ';' - || true)"
    say ""
done
is_gone "$GATEWAY" && die "the gateway exited"
say "gateway still up: /healthz $(http_code "$BASE/healthz")"
