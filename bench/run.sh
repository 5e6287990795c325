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
# The Python package against multiprocessing (make python builds it).
if [ -f "$B/python/cohort/__init__.py" ] && [ -x /usr/bin/python3 ]; then
	echo "## python_ipc.py"
	PYTHONPATH="$B/python" /usr/bin/python3 bench/python_ipc.py || status=1
fi
# What the SLURM plugin costs a job, in a private test cluster: as root
# with slurm-wlm and munge only; elsewhere it says why it skips.
echo "## spank-cost.sh"
COHORT_BUILD="$B" sh bench/spank-cost.sh || status=1
exit $status
