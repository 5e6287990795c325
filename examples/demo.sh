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
echo "script can refuse to start workers that would be killed: see README.md."
exit 0
