#!/bin/sh
# Run every fuzz target under libFuzzer (clang) for FUZZ_SECONDS each.
# New inputs land in fuzz/corpus/<name>/ (commit the interesting ones);
# crashes in fuzz/out/<name>/ (add them to the corpus once fixed: they
# then replay in make check). FUZZ_TARGETS="procmem cgroup" runs only those.
set -eu
SECS=${FUZZ_SECONDS:-60}
CLANG=${CLANG:-clang}
command -v "$CLANG" >/dev/null || { echo "fuzz: clang is needed (apt-get install clang)" >&2; exit 2; }
mkdir -p build-fuzz fuzz/out
targets=
for t in fuzz/fuzz-*.c; do
	name=$(basename "$t" .c)
	[ "$name" = fuzz-main ] || targets="$targets ${name#fuzz-}"
done
for short in ${FUZZ_TARGETS:-$targets}; do
	t=fuzz/fuzz-$short.c
	name=fuzz-$short
	[ -f "$t" ] || { echo "fuzz: no target $t" >&2; exit 2; }
	$CLANG -g -O1 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o "build-fuzz/$name" "$t" src/*.c -pthread -lrt -ljansson -lm
	mkdir -p "fuzz/corpus/$short" "fuzz/out/$short" "build-fuzz/work/$short"
	echo "## $name for $SECS s"
	# Fuzz in a scratch corpus seeded from the kept one, then merge back only
	# the inputs that reach new code, so fuzz/corpus/ stays small.
	"build-fuzz/$name" -max_total_time="$SECS" -artifact_prefix="fuzz/out/$short/" \
		-print_final_stats=1 "build-fuzz/work/$short" "fuzz/corpus/$short" 2>&1 |
		grep -E 'stat::|ERROR|SUMMARY|Done|Test unit written' || true
	"build-fuzz/$name" -merge=1 "fuzz/corpus/$short" "build-fuzz/work/$short" 2>&1 |
		grep -E 'MERGE-OUTER: [0-9]+ new files' || true
done
