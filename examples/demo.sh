#!/bin/sh
# make demo: a tour of cohort on this machine, no SLURM needed, in about a
# minute. Each failure of a multi-worker job, run under `cohort run` with
# the small programs of examples/faults/, cohort's verdict, then the right
# way; at the end one HTML report of the whole tour.
set -u
B=${COHORT_BUILD:-build}
C="$B/cohort"
F="$B/examples/faults"
COW="$B/examples/cow-workers/cow-workers"
OUT=$(mktemp -d "${TMPDIR:-/tmp}/cohort-demo-XXXXXX")

if [ -t 1 ]; then
	hr() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	hr() { printf '\n== %s\n' "$*"; }
fi

# Show a command as a user would type it (with the build paths shortened), then run it.
run() {
	printf '$ %s\n' "$(echo "$*" | sed -e "s|$B/examples/faults/||g" -e "s|$B/examples/cow-workers/||g" -e "s|$C|cohort|g")"
	"$@"
	echo "(exit status $?)"
}

hr "1. What does this job really have? cohort check"
run "$C" check --workers 4 --mem-per-worker 1G --shm 256M
limit=$("$C" check --json | sed -n 's/.*"mem_limit_bytes": \([0-9]*\).*/\1/p' | head -n 1)
big=$((limit / 1048576))
echo
run "$C" check --workers 8 --mem-per-worker "${big}M"

hr "2. A worker that needs more than its share"
echo "Rank 1 loads 300 MiB at once; each worker was given 150 MiB. cohort stops it"
echo "before the kernel's OOM killer picks a victim, and says which and why:"
run "$C" run -n 3 -i 0.1 --grace 1 --enforce watch -m 150M -o "$OUT/1-grow.ndjson" -- "$F/grow" --size 300 --rank 1 --hold 1
echo
echo "The right way: process the input in chunks (grow --chunked):"
run "$C" run -q -n 3 -i 0.1 --enforce watch -m 150M -o "$OUT/2-chunked.ndjson" -- "$F/grow" --size 300 --rank 1 --hold 1 --chunked

hr "3. A worker that keeps what it should drop"
echo "Rank 1 appends every result to a history that nothing trims (15 s):"
run "$C" run -n 2 -i 0.2 --enforce watch -o "$OUT/3-leak.ndjson" -- "$F/leak" --rate 10 --seconds 15 --rank 1
echo
echo "The right way: a bounded history (leak --fixed): no finding."
run "$C" run -q -n 2 -i 0.2 --enforce watch -o "$OUT/4-fixed.ndjson" -- "$F/leak" --rate 10 --seconds 4 --rank 1 --fixed

hr "4. Forked workers writing to memory they share with their parent"
echo "Four processes share 200 MiB; three of them write every page (as Python's"
echo "reference counts do). Their private memory grows while nothing leaks:"
run "$C" run -n 1 -i 0.2 --pss-budget 20 -o "$OUT/5-cow.ndjson" -- "$COW" --size 200M --workers 4 --write 100 --hold 3
echo
echo "The right way: workers that only read what they share copy nothing (--write 0):"
run "$C" run -q -n 1 -i 0.2 --pss-budget 20 -o "$OUT/6-nocow.ndjson" -- "$COW" --size 200M --workers 4 --write 0 --hold 3

hr "5. A write past the end of a shared segment"
echo "An off-by-one fills one row too many of a grid in a cohort segment; the"
echo "segment's guard page turns it into an immediate fault that cohort explains:"
run "$C" run -n 1 -o "$OUT/7-overrun.ndjson" -- "$F/overrun"
echo
echo "The right way: the loop bound from the segment's size (overrun --fixed):"
run "$C" run -q -n 1 -o "$OUT/8-fixed.ndjson" -- "$F/overrun" --fixed

hr "6. A shared segment that /dev/shm cannot hold"
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
	echo "A 32 MiB /dev/shm (private to this demo) and a 64 MiB segment made with"
	echo "ftruncate, which reserves nothing: the first write past the space is a SIGBUS."
	run unshare -m sh -c "mount -t tmpfs -o size=32M tmpfs /dev/shm && exec $C run -n 1 -i 0.1 -o $OUT/9-shm.ndjson -- $F/shm-full --size 64"
	echo
	echo "The right way: reserve the pages at creation (shm-full --reserve): an error there."
	run unshare -m sh -c "mount -t tmpfs -o size=32M tmpfs /dev/shm && exec $C run -q -n 1 --no-record -- $F/shm-full --size 64 --reserve"
else
	echo "(skipped: it mounts a small /dev/shm in a private mount namespace, which needs root)"
fi

hr "7. One report of the whole tour"
echo "Each run of the tour is a job of its own, and cohort report refuses to mix"
echo "jobs unless told to: --force merges them into one report."
echo "$ cohort report --force --html report.html *.ndjson"
"$C" report --force --html "$OUT/report.html" "$OUT"/[0-9]*.ndjson | sed -n '/^Findings/,/^HTML/p' | grep -v '^ *backtrace:\|^       '
echo
echo "Recordings: $OUT/*.ndjson (cohort report FILE... for text, --json for programs)"
echo "HTML report, with plots: $OUT/report.html"
exit 0
