#!/usr/bin/env bash
# run.sh [HARNESS...] - build the libFuzzer harnesses and fuzz each one.
#
# Builds fuzz/fuzz_*.c with clang (-fsanitize=fuzzer,address,undefined)
# against every src/**/*.c but src/main.c and src/cli/, and the code the
# harnesses share (every other fuzz/*.c but replay_main.c, with -Ifuzz), as
# the Makefile does, into $BUILD/fuzz/ (BUILD defaults to build), then runs
# each harness for FUZZ_SECONDS (default 60) seconds, one after the other,
# starting from its committed corpus fuzz/corpus/<harness>/. That directory
# is only read: inputs the fuzzer finds interesting go to
# $BUILD/fuzz/work/<harness>/ (kept between runs, never committed), crash
# reproducers to $BUILD/fuzz/artifacts/<harness>/, logs to $BUILD/fuzz/logs/.
#
# HARNESS: fuzz_bs_conn, fuzz_bs_parse, fuzz_fcgi_proto, fuzz_http_conn,
# fuzz_opts, fuzz_settings, fuzz_wal_decode, fuzz_wal_replay (or without
# "fuzz_"); default all.
# Environment: FUZZ_SECONDS, BUILD, CLANG (default clang), FUZZ_ARGS (extra
# libFuzzer flags, e.g. "-jobs=2 -workers=2"), FUZZ_CFLAGS (extra compiler
# flags, e.g. "-fno-sanitize=pointer-overflow" to fuzz on past a known UB
# report).
#
# Exit status: 0 when nothing was found; 1 when a harness crashed, leaked,
# hung or hit UB - each reproducer's path is printed, with how to replay it;
# 2 when the build failed.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2

BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
CLANG=${CLANG:-clang}
FUZZ_ARGS=${FUZZ_ARGS:-}
FUZZ_CFLAGS=${FUZZ_CFLAGS:-}
OUT="$BUILD/fuzz"
# Stack traces for UBSan reports too.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# Longest input per harness: a command line is at most 224 bytes; a
# connection script has room for a few dozen commands and put bodies (and
# can repeat reads with ~R), an HTTP one for a few dozen requests with
# their headers and JSON bodies; an argv of a dozen options; a run of log
# records; a log file as large as the biggest seed (a small snapshot); a
# few php-fpm responses; a config file of a few queues.
declare -A MAX_LEN=([fuzz_bs_parse]=512 [fuzz_bs_conn]=4096 [fuzz_http_conn]=8192
                    [fuzz_opts]=512 [fuzz_wal_decode]=4096 [fuzz_wal_replay]=16384
                    [fuzz_fcgi_proto]=16384 [fuzz_settings]=4096)
# The libraries the Makefile links the server with (libuv, zlib, pthreads,
# libhttp-parser, jansson, ...), read from its LIBS line so both stay alike.
read -ra LIBS < <(sed -n 's/^LIBS *:= *//p' Makefile)
[[ ${#LIBS[@]} -gt 0 ]] || LIBS=(-luv -lz -lpthread -lm -lhttp_parser -ljansson)

command -v "$CLANG" >/dev/null || {
  echo "run.sh: $CLANG not found (make fuzz installs clang and libclang-rt-14-dev)" >&2
  exit 2
}

harnesses=()
if [[ $# -gt 0 ]]; then
  for h in "$@"; do
    h=${h#fuzz_}
    h=${h%.c}
    [[ -f fuzz/fuzz_$h.c ]] || { echo "run.sh: no harness fuzz/fuzz_$h.c" >&2; exit 2; }
    harnesses+=("fuzz_$h")
  done
else
  for f in fuzz/fuzz_*.c; do harnesses+=("$(basename "$f" .c)"); done
fi

# ---- build ----

# shellcheck disable=SC2054 # the commas belong to -fsanitize=
CFLAGS=(-std=c11 -D_GNU_SOURCE -Isrc -g -O1 -fno-omit-frame-pointer
        -fsanitize=address,undefined -fno-sanitize-recover=all)
# shellcheck disable=SC2206 # FUZZ_CFLAGS holds several flags
CFLAGS+=($FUZZ_CFLAGS)
mkdir -p "$OUT/obj" "$OUT/logs"
# Objects built with other flags are built again.
if [[ "$(cat "$OUT/obj/.cflags" 2>/dev/null)" != "${CFLAGS[*]}" ]]; then
  rm -f "$OUT"/obj/*.o
  echo "${CFLAGS[*]}" >"$OUT/obj/.cflags"
fi
objs=()
build_failed=0
while IFS= read -r src; do
  obj="$OUT/obj/${src//\//_}"
  obj="${obj%.c}.o"
  if [[ ! -f "$obj" || "$src" -nt "$obj" || -n "$(find src -name '*.h' -newer "$obj" -print -quit)" ]]; then
    "$CLANG" "${CFLAGS[@]}" -fsanitize=fuzzer-no-link -c "$src" -o "$obj" || build_failed=1
  fi
  objs+=("$obj")
done < <(find src -name '*.c' ! -path src/main.c ! -path 'src/cli/*' | sort)
[[ $build_failed -eq 0 ]] || { echo "run.sh: building src/ failed" >&2; exit 2; }

# The harnesses and the code they share (engine_check.c, ...) get the
# sanitizers but no coverage instrumentation: their invariant checks would
# otherwise flood libFuzzer with comparisons and features of their own, and
# slow every execution several times over.
common=()
for src in fuzz/*.c; do
  name=$(basename "$src" .c)
  [[ $name == fuzz_* || $name == replay_main ]] && continue
  obj="$OUT/obj/fuzz_common_$name.o"
  "$CLANG" "${CFLAGS[@]}" -Ifuzz -c "$src" -o "$obj" ||
    { echo "run.sh: building $src failed" >&2; exit 2; }
  common+=("$obj")
done
for h in "${harnesses[@]}"; do
  echo "run.sh: building $OUT/$h"
  { "$CLANG" "${CFLAGS[@]}" -Ifuzz -c "fuzz/$h.c" -o "$OUT/obj/$h.o" &&
    "$CLANG" "${CFLAGS[@]}" -fsanitize=fuzzer "$OUT/obj/$h.o" "${common[@]}" "${objs[@]}" \
      -o "$OUT/$h" "${LIBS[@]}"; } ||
    { echo "run.sh: building $h failed" >&2; exit 2; }
done

# ---- fuzz ----

found=()
summary=()
for h in "${harnesses[@]}"; do
  seeds="fuzz/corpus/$h"
  work="$OUT/work/$h"
  arts="$OUT/artifacts/$h"
  log="$OUT/logs/$h.log"
  mkdir -p "$seeds" "$work" "$arts"
  marker="$OUT/logs/.$h.start"
  : >"$marker"
  dict=()
  [[ -f "fuzz/$h.dict" ]] && dict=(-dict="fuzz/$h.dict")
  echo "run.sh: fuzzing $h for ${FUZZ_SECONDS}s (log: $log)"
  # The first directory receives new inputs; the committed seeds are only
  # read. Leak detection is on (ASan's default with libFuzzer).
  exe="$OUT/$h"
  [[ $exe == /* ]] || exe="./$exe"
  # shellcheck disable=SC2086 # FUZZ_ARGS holds several flags
  "$exe" -max_total_time="$FUZZ_SECONDS" -max_len="${MAX_LEN[$h]:-4096}" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$arts/" "${dict[@]}" $FUZZ_ARGS "$work" "$seeds" >"$log" 2>&1
  status=$?
  stats=$(grep -E '^#[0-9]+' "$log" | tail -1)
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  summary+=("$h: ${execs:-?} execs; last status: ${stats:-none}")
  new=$(find "$arts" -type f -newer "$marker" | sort)
  if [[ $status -ne 0 || -n "$new" ]]; then
    echo "run.sh: $h FAILED (exit $status); end of its log:" >&2
    tail -n 40 "$log" >&2
    if [[ -n "$new" ]]; then
      while IFS= read -r f; do found+=("$h $f"); done <<<"$new"
    else
      found+=("$h -")
    fi
  fi
  rm -f "$marker"
done

echo
echo "run.sh: summary"
for s in "${summary[@]}"; do echo "  $s"; done
if [[ ${#found[@]} -gt 0 ]]; then
  echo
  echo "run.sh: found ${#found[@]} problem(s). Reproducers:"
  for f in "${found[@]}"; do
    h=${f%% *}
    path=${f#* }
    if [[ $path == - ]]; then
      echo "  $h: failed without writing a reproducer; see $OUT/logs/$h.log"
    else
      echo "  $path"
      echo "      replay: $OUT/$h $path"
    fi
  done
  echo "Keep a reproducer as fuzz/corpus/<harness>/<what-it-shows> so make test replays it."
  exit 1
fi
echo "run.sh: no crash, leak, hang or UB found"
