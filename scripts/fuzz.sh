#!/usr/bin/env bash
# Fuzzes the data and checkpoint readers with libFuzzer (issue 9).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    SECONDS per target (default 600); all targets by default
#   FUZZ_BUILD_ONLY=1 scripts/fuzz.sh        only build .build/fuzz/dann-fuzz
#   FUZZ_JOBS=N                              targets fuzzed at once (default 1; each is one process)
#   FUZZ_RSS_MB=N                            libFuzzer's -rss_limit_mb and -malloc_limit_mb (default 2048)
#   FUZZ_MERGE=1 scripts/fuzz.sh 0 [TARGET...]   instead of fuzzing, minimise what earlier runs found
#                                            (.build/fuzz/corpus/TARGET) against the committed corpus with
#                                            -merge=1 and copy the inputs that add coverage into
#                                            Fuzz/corpus/TARGET/cov-SHA1, for committing
#
# Build: one binary, .build/fuzz/dann-fuzz. SwiftPM cannot add -sanitize=fuzzer to one product without
# instrumenting the whole package (and its test runner would then have no main), so the script calls
# swiftc itself: the DANN library sources, Tests/DANNTests/FuzzTargets.swift (the per-target functions,
# shared with FuzzCorpusReplayTests) and Fuzz/Entry.swift (libFuzzer's entry points) are compiled as
# one module named DANN with -D DANN_FUZZ_BUILD, so the targets reach internal readers without
# -enable-testing. The system libraries come through the same module maps as in the package
# (-I Sources/C*) with pkg-config's include and library paths. -O keeps Swift's bounds and overflow
# checks (a trap there is a finding); -sanitize=address adds ASan and LeakSanitizer to the Swift and
# shim code (libpng, libjpeg and zlib are the system's uninstrumented builds). The binary picks its target
# from DANN_FUZZ_TARGET (see Fuzz/Entry.swift).
#
# Run: each target with its corpus folder Fuzz/corpus/TARGET (committed seeds plus any crash inputs, read
# only: new coverage goes to .build/fuzz/corpus/TARGET, not into the repository), -timeout=10 (s per input),
# -rss_limit_mb / -malloc_limit_mb 2048, -detect_leaks=1, -print_final_stats=1. Crash, leak, timeout and
# OOM inputs are written to .build/fuzz/findings/TARGET/. The table at the end is read from each run's log.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-600}
shift || true
ALL_TARGETS=(idx mat tar image safetensors checkpoint config mnistm)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL_TARGETS[@]}")
OUT=$ROOT/.build/fuzz
BIN=$OUT/dann-fuzz
RSS_MB=${FUZZ_RSS_MB:-2048}
JOBS=${FUZZ_JOBS:-1}
mkdir -p "$OUT"

# ---- build ---------------------------------------------------------------------------------------------
build() {
    local sources=() pkg
    local flags=(-sanitize=fuzzer,address -parse-as-library -O -g -wmo -num-threads 2 -module-name DANN -D DANN_FUZZ_BUILD)
    while IFS= read -r f; do sources+=("$ROOT/$f"); done < <(find Sources/DANN -name '*.swift' | sort)
    sources+=("$ROOT/Tests/DANNTests/FuzzTargets.swift" "$ROOT/Fuzz/Entry.swift")
    for dir in Sources/C*/; do flags+=(-I "$ROOT/${dir%/}"); done
    for pkg in ompi-c openblas zlib libpng libjpeg; do
        for f in $(pkg-config --cflags-only-I "$pkg"); do flags+=(-Xcc "$f"); done
        for f in $(pkg-config --libs-only-L "$pkg"); do flags+=("$f"); done
    done
    # Rebuild only when an input changed.
    local stamp=$OUT/inputs.sha
    local sum
    sum=$( (printf '%s\n' "${flags[@]}"; cat "${sources[@]}" Sources/C*/shim.h Sources/C*/module.modulemap) | sha256sum | cut -d' ' -f1)
    if [ -x "$BIN" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
        echo "fuzz: $BIN is up to date"
        return
    fi
    echo "fuzz: building $BIN (${#sources[@]} files, -O, -sanitize=fuzzer,address)"
    local started=$SECONDS
    # From inside $OUT: with -g the driver leaves the module it emits for the debugger in the working folder.
    (cd "$OUT" && swiftc "${flags[@]}" -module-cache-path "$OUT/module-cache" "${sources[@]}" -o "$BIN")
    echo "$sum" > "$stamp"
    echo "fuzz: built in $((SECONDS - started)) s"
}
build
[ "${FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

merge_target() {
    local target=$1 merged=$OUT/merged/$1 scratch=/dev/shm/dann-fuzz-$1-$$
    rm -rf "$merged"; mkdir -p "$merged" "$scratch" "$OUT/corpus/$target"
    # Committed inputs first, so merge keeps them and adds only what covers more.
    local known
    known=$(sha1sum "$ROOT/Fuzz/corpus/$target"/* | cut -d' ' -f1)
    DANN_FUZZ_TARGET=$target DANN_FUZZ_SCRATCH=$scratch "$BIN" -merge=1 -timeout=10 -rss_limit_mb="$RSS_MB" \
        -detect_leaks=0 "$merged" "$ROOT/Fuzz/corpus/$target" "$OUT/corpus/$target" > "$OUT/$target.merge.log" 2>&1
    rm -rf "$scratch"
    local added=0 f sha
    for f in "$merged"/*; do
        sha=$(basename "$f")
        grep -q "$sha" <<< "$known" && continue
        cp "$f" "$ROOT/Fuzz/corpus/$target/cov-$sha"
        added=$((added + 1))
    done
    echo "fuzz: $target: $added inputs added to Fuzz/corpus/$target ($(du -sh "$ROOT/Fuzz/corpus/$target" | cut -f1))"
}

# ---- run -----------------------------------------------------------------------------------------------
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:handle_abort=1:handle_sigill=1}
# Swift's own crash backtracer would catch a trap (SIGILL) first, take its time and trip ASan while reading
# memory; libFuzzer's handler saves the input and ASan prints the stack instead.
export SWIFT_BACKTRACE=enable=no
SYMBOLIZER=$(dirname "$(command -v swiftc)")/llvm-symbolizer
[ -x "$SYMBOLIZER" ] && export ASAN_SYMBOLIZER_PATH=$SYMBOLIZER

run_target() {
    local target=$1
    local seeds=$ROOT/Fuzz/corpus/$target work=$OUT/corpus/$target findings=$OUT/findings/$target
    local scratch=/dev/shm/dann-fuzz-$target-$$
    mkdir -p "$work" "$findings" "$scratch"
    touch "$OUT/$target.start"
    [ -d "$seeds" ] || { echo "fuzz: no seed corpus $seeds" >&2; return 1; }
    local dict=()
    [ -f "$ROOT/Fuzz/dict/$target.dict" ] && dict=(-dict="$ROOT/Fuzz/dict/$target.dict")
    # libFuzzer writes new inputs into the first corpus folder only: the work folder, seeded from the
    # committed one as a second (read-only) folder.
    DANN_FUZZ_TARGET=$target DANN_FUZZ_SCRATCH=$scratch "$BIN" \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" \
        -detect_leaks=1 -print_final_stats=1 -max_len=65536 "${dict[@]}" \
        -artifact_prefix="$findings/" "$work" "$seeds" > "$OUT/$target.log" 2>&1 || true
    rm -rf "$scratch"
}

if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    for target in "${TARGETS[@]}"; do merge_target "$target"; done
    exit 0
fi

pids=()
for target in "${TARGETS[@]}"; do
    echo "fuzz: $target for ${SECONDS_PER_TARGET} s (log: .build/fuzz/$target.log)"
    run_target "$target" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for pid in "${pids[@]}"; do wait "$pid"; done

# ---- table ---------------------------------------------------------------------------------------------
printf '\n%-12s %12s %9s %8s %8s %6s %8s  %s\n' target executions exec/s crashes peak_MB cov corpus findings
status=0
for target in "${TARGETS[@]}"; do
    log=$OUT/$target.log
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    corpus=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    # libFuzzer stops at the first crash/leak/timeout/OOM; without -print_final_stats output after a
    # crash, the last "#N" status line gives the executions.
    [ -z "$execs" ] && execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
    [ -z "$rss" ] && rss=$(grep -o 'rss: [0-9]*Mb' "$log" | tail -1 | grep -o '[0-9]*')
    # libFuzzer stops at the first finding (crash, sanitizer report, leak, timeout, OOM) and saves its input
    # under findings/TARGET/; those written during this run are the count.
    crashes=$(find "$OUT/findings/$target" -type f -newer "$OUT/$target.start" 2>/dev/null | wc -l)
    [ "$crashes" -gt 0 ] && status=1
    printf '%-12s %12s %9s %8s %8s %6s %8s  %s\n' "$target" "${execs:-?}" "${speed:-?}" "$crashes" "${rss:-?}" \
        "${cov:-?}" "${corpus:-?}" \
        "$(find "$OUT/findings/$target" -type f -newer "$OUT/$target.start" -printf '%f ' 2>/dev/null)"
done
exit $status
