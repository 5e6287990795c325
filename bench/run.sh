#!/bin/sh
# Run every benchmark built from bench/bench-*.c, one after the other.
# Each prints its own figures, with the baseline it measured in the same run.
set -u
B=${COHORT_BUILD:-build}
echo "# machine: $(uname -srm), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); $(date -u +%Y-%m-%dT%H:%MZ)"
status=0
for b in "$B"/bench/bench-*; do
	[ -x "$b" ] || continue
	echo "## $(basename "$b")"
	"$b" || status=1
done
exit $status
