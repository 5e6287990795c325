#!/bin/sh
# Every cohort command under valgrind memcheck: any memory error, or any
# definitely lost block, fails. Run by `make valgrind` (and in CI).
#
#   COHORT_BUILD=build tests/valgrind.sh
set -u
B=${COHORT_BUILD:-build}
command -v valgrind >/dev/null 2>&1 || { echo "valgrind: not installed (apt-get install valgrind)" >&2; exit 2; }
work=$(mktemp -d /tmp/cohort-valgrind-XXXXXX)
trap 'rm -rf "$work"' EXIT
COHORT=$(cd "$B" && pwd)/cohort
SRC=$(pwd)
pass=0
fail=0

# --trace-children=no: workers (true, sleep) are not ours to check.
vg() {
	name=$1
	shift
	if (cd "$work" && valgrind -q --error-exitcode=99 --leak-check=full \
	        --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	        --trace-children=no --log-file="$work/$name.vg" "$@" >"$work/$name.out" 2>"$work/$name.err"); then
		st=0
	else
		st=$?
	fi
	# 99 is valgrind's verdict; any other status is the command's own answer
	# (1 "no", 3 an error), which is not what this checks.
	if [ "$st" = 99 ] || [ -s "$work/$name.vg" ]; then
		echo "not ok - $name (valgrind: see below)"
		sed 's/^/# /' "$work/$name.vg"
		fail=$((fail + 1))
	else
		echo "ok - $name (exit $st)"
		pass=$((pass + 1))
	fi
}

vg check "$COHORT" check -n 2 --mem-per-worker 10M
vg check-json "$COHORT" check --json -n 2 --mem-per-worker 10M
vg top-once "$COHORT" top --once
vg top-once-json "$COHORT" top --once --json
vg shm-ls "$COHORT" shm ls
vg shm-ls-json "$COHORT" shm ls --json
vg run "$COHORT" run -n 2 -i 0.05 -o "$work/rec.ndjson" -- sleep 0.3
vg run-norecord "$COHORT" run -n 2 --no-record -- true
vg report "$COHORT" report "$work/rec.ndjson"
vg report-json "$COHORT" report --json "$work/rec.ndjson"
vg report-html "$COHORT" report --html "$work/rec.html" "$work/rec.ndjson"
for f in "$SRC"/fuzz/corpus/recording/oom "$SRC"/fuzz/corpus/recording/segfault "$SRC"/fuzz/corpus/recording/odd; do
	[ -f "$f" ] && vg "report-$(basename "$f")" "$COHORT" report --json "$f"
done
vg gather-missing "$COHORT" gather --ranks 2 --timeout 0.2 "$work/none"
vg bad-option "$COHORT" run --no-such-option
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
