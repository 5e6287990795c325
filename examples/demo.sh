#!/bin/sh
# make demo: what cohort says about this machine, for a plan that fits and
# for one that does not.
set -u
B=${COHORT_BUILD:-build}
C="$B/cohort"

if [ -t 1 ]; then
	hr() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	hr() { printf '\n== %s\n' "$*"; }
fi

# Run cohort check with the plan's options; print from the plan on, then the exit status.
plan() {
	echo "\$ cohort check $*"
	out=$("$C" check "$@")
	rc=$?
	printf '%s\n' "$out" | sed -n '/^Plan:/,$p'
	echo "(exit status $rc)"
}

hr "What does this job really have? (cohort check)"
"$C" check

# A plan sized from what was found: half the memory limit over the CPUs fits;
# twice the CPUs at the whole limit each cannot.
limit=$("$C" check --json | sed -n 's/.*"mem_limit_bytes": \([0-9]*\).*/\1/p' | head -n 1)
cpus=$("$C" check --json | sed -n 's/.*"cpus": \([0-9]*\).*/\1/p' | head -n 1)
each_mb=$((limit / 2 / cpus / 1048576))
big_mb=$((limit / 1048576))

hr "A plan that fits: $cpus workers x ${each_mb}M + 256M of shared segments"
plan --workers "$cpus" --mem-per-worker "${each_mb}M" --shm 256M

hr "A plan that does not: $((cpus * 2)) workers x ${big_mb}M"
plan --workers $((cpus * 2)) --mem-per-worker "${big_mb}M"
echo
echo "cohort check exits 0 when the plan fits and 1 when it does not, so a job"
echo "script can refuse to start workers that would be killed."

COW="$B/examples/cow-workers/cow-workers"
hr "Forked workers that write to memory they share with their parent (cohort run)"
echo "\$ cohort run -n 1 -i 0.2 -- cow-workers --size 200M --workers 3 --write 100 --hold 3"
"$C" run -n 1 -i 0.2 --no-record -- "$COW" --size 200M --workers 3 --write 100 --hold 3
echo "(their RSS stays flat while their private memory grows: copy-on-write, not a leak)"

hr "A worker above its share, stopped before the kernel's OOM killer picks one at random"
echo "\$ cohort run -n 2 --enforce watch --mem-per-worker 150M --grace 1 -i 0.2 -- \\"
echo "      sh -c 'exec cow-workers --size \$((100 + 100 * COHORT_RANK))M --workers 1 --hold 5'"
"$C" run -n 2 --enforce watch --mem-per-worker 150M --grace 1 -i 0.2 -o "${TMPDIR:-/tmp}/cohort-demo.ndjson" -- \
	sh -c 'exec "$0" --size $((100 + 100 * COHORT_RANK))M --workers 1 --write 0 --hold 5' "$COW"
echo "(exit status $?: rank 1 was stopped, rank 0 ran to its end;"
echo " the timeline is in ${TMPDIR:-/tmp}/cohort-demo.ndjson, see docs/recording.md)"
exit 0
