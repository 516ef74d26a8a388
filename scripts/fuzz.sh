#!/usr/bin/env bash
# Builds and runs the libFuzzer targets in Fuzz/ (see docs/FUZZING.md).
#
#   scripts/fuzz.sh [target|all] [seconds]
#
# target: HTTPRequestParser, FrameDecoder, JSONParser, FormDecoder, Params, Message, or all (default).
# seconds: how long each target runs (default 600; 0 = only build and replay the seed corpus).
#
# Each target is built with plain swiftc (-sanitize=fuzzer,address -parse-as-library) from the
# component's own source files plus Fuzz/FuzzSupport.swift and Fuzz/<target>Fuzz.swift, into
# .build-fuzz/<target>. It runs with the seed corpus Fuzz/corpus/<target>/ (read only) and a
# working corpus .build-fuzz/<target>/corpus/ (what it finds; not committed). A crash, an
# invariant violated, a leak, a hang (-timeout) or an RSS above -rss_limit_mb stops it and
# leaves the input in .build-fuzz/<target>/artifacts/. Prints executions and coverage (the
# final cov:/ft: of libFuzzer) per target and exits non-zero when any target failed.
#
# Environment: FUZZ_JOBS_NICE (default 19), FUZZ_RSS_MB (2048), FUZZ_TIMEOUT (10 s per input),
# SWIFTC (default: swiftc on PATH, else /opt/swift/usr/bin/swiftc).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGETS=(HTTPRequestParser FrameDecoder JSONParser FormDecoder Params Message)
WHICH=${1:-all}
SECONDS_EACH=${2:-600}
NICE=${FUZZ_JOBS_NICE:-19}
RSS_MB=${FUZZ_RSS_MB:-2048}
TIMEOUT=${FUZZ_TIMEOUT:-10}
SWIFTC=${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}
export SWIFT_BACKTRACE=enable=no   # let the sanitizer report crashes, not Swift's backtracer

W=Sources/WireProtocol
JSON_SOURCES=("$W/JSON.swift" "$W/JSONParser.swift" "$W/JSONSerializer.swift")

# The component's sources and the module name they are compiled as. Files that
# `import WireProtocol` are compiled together with the WireProtocol files they need in one
# module named WireProtocol (the self-import is ignored), so no library has to be built.
sources_of() {
    case $1 in
        HTTPRequestParser) echo Gateway Sources/Gateway/HTTPRequestParser.swift ;;
        FrameDecoder) echo WireProtocol "$W/FrameDecoder.swift" "${JSON_SOURCES[@]}" ;;
        JSONParser) echo WireProtocol "${JSON_SOURCES[@]}" ;;
        FormDecoder) echo WireProtocol Sources/Gateway/FormDecoder.swift "${JSON_SOURCES[@]}" ;;
        Params) echo WireProtocol Sources/ServiceKit/Params.swift Sources/ServiceKit/APIError.swift \
            Sources/ServiceKit/Reply.swift "$W/Message.swift" "$W/FrameDecoder.swift" "$W/Timestamp.swift" "$W/JSONText.swift" "$W/Log.swift" "$W/Syscall.swift" "${JSON_SOURCES[@]}" ;;
        Message) echo WireProtocol "$W/Message.swift" "$W/FrameDecoder.swift" "$W/Timestamp.swift" "${JSON_SOURCES[@]}" ;;
        *) echo "unknown target $1 (one of: ${TARGETS[*]}, all)" >&2; return 1 ;;
    esac
}

max_len_of() {
    case $1 in
        FrameDecoder) echo 16384 ;;  # long enough to cross the decoder's 4 KiB compaction
        HTTPRequestParser | JSONParser | Message) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

build() {
    local target=$1 out=.build-fuzz/$1
    local -a spec
    read -r -a spec <<<"$(sources_of "$target")"
    mkdir -p "$out/corpus" "$out/artifacts"
    echo "== building $target"
    # -suppress-warnings: the self-import of WireProtocol warns; the normal build stays warning-free.
    nice -n "$NICE" "$SWIFTC" -module-name "${spec[0]}" -parse-as-library -swift-version 6 -O -g \
        -sanitize=fuzzer,address -suppress-warnings -use-ld=lld -Xcc -fmodule-map-file=Sources/CLinux/module.modulemap \
        "${spec[@]:1}" Fuzz/FuzzSupport.swift "Fuzz/${target}Fuzz.swift" -o "$out/fuzz"
}

run() {
    local target=$1 out=.build-fuzz/$1 log=.build-fuzz/$1/fuzz.log
    local -a time_args=(-max_total_time="$SECONDS_EACH")
    [[ $SECONDS_EACH == 0 ]] && time_args=(-runs=0)
    echo "== running $target for ${SECONDS_EACH}s (log: $log)"
    local start=$EPOCHSECONDS status=0
    nice -n "$NICE" "$out/fuzz" "$out/corpus" "Fuzz/corpus/$target" \
        "${time_args[@]}" -rss_limit_mb="$RSS_MB" -timeout="$TIMEOUT" -max_len="$(max_len_of "$target")" \
        -artifact_prefix="$out/artifacts/" -print_final_stats=1 -detect_leaks=1 >"$log" 2>&1 || status=$?
    local wall=$((EPOCHSECONDS - start))
    local last execs
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
    local cov ft corp
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([^ ]+).*/\1/p' <<<"$last")
    if [[ $status == 0 ]]; then
        printf '%-18s ok      execs %-10s cov %-5s ft %-6s corpus %-12s wall %ss\n' "$target" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$wall"
    else
        printf '%-18s FAILED  (exit %s) execs %s cov %s ft %s wall %ss — see %s and %s\n' "$target" "$status" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$wall" "$log" "$out/artifacts/"
        grep -E 'ERROR|invariant violated|Fatal error|SUMMARY|leak' "$log" | head -5 >&2 || true
    fi
    return "$status"
}

selected=("${TARGETS[@]}")
[[ $WHICH != all ]] && { sources_of "$WHICH" >/dev/null; selected=("$WHICH"); }

for target in "${selected[@]}"; do build "$target"; done
failed=0
summary=()
for target in "${selected[@]}"; do
    if line=$(run "$target"); then :; else failed=1; fi
    echo "$line" | tail -1
    summary+=("$(echo "$line" | tail -1)")
done
echo
echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
