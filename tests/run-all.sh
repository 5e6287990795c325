#!/bin/sh
# Run every test in one runner, so that there is one closing line.
#
# As root, with slurm-wlm and munge installed, a throwaway single-node SLURM
# cluster is brought up in a private directory first and torn down after,
# whatever the tests do. Otherwise the SLURM tests skip and say why.
# Beside it, on ports of its own (16917...), a 3-node cluster (node1..node3,
# cluster.sh --nodes 3) for the multi-node suite (slurm_multi_*); the two
# share no port, node name, spool or cgroup, and idle they cost nothing.
set -u
B=${COHORT_BUILD:-build}
COHORT_BUILD=$(cd "$B" && pwd)
COHORT_SRC=$(pwd)
export COHORT_BUILD COHORT_SRC

# A swap file that a killed test left on (report_oversubscribed_when_workers_swap
# turns one on for a few seconds) would turn every later OOM kill into swapping.
drop_test_swap() {
	[ "$(id -u)" = 0 ] || return 0
	awk 'NR > 1 && $1 ~ /^\/tmp\/cohort-test-/ { print $1 }' /proc/swaps 2>/dev/null |
	while read -r f; do swapoff "$f" 2>/dev/null; done
}
drop_test_swap

slurm_dir=
multi_dir=
if [ "$(id -u)" != 0 ]; then
	COHORT_SLURM="absent: not root (the test cluster needs root for munged, slurmd and cgroups)"
elif ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 ||
     ! command -v munged >/dev/null 2>&1; then
	COHORT_SLURM="absent: slurm-wlm and munge are not installed (apt-get install slurm-wlm munge)"
elif [ -n "${COHORT_NO_SLURM:-}" ]; then
	COHORT_SLURM="absent: COHORT_NO_SLURM is set"
else
	slurm_dir=$(mktemp -d /tmp/cohort-slurm-XXXXXX)
	# The 3-node cluster only when the tests chosen include the multi-node suite.
	if "$COHORT_BUILD/tests/runner" --list "$@" | grep -q '^slurm_multi_'; then
		multi_dir=$(mktemp -d /tmp/cohort-slurm3-XXXXXX)
	fi
	trap 'tests/slurm/cluster.sh stop "$slurm_dir"; [ -z "$multi_dir" ] || tests/slurm/cluster.sh stop "$multi_dir"' EXIT
	trap 'exit 130' INT TERM
	if tests/slurm/cluster.sh start "$slurm_dir"; then
		COHORT_SLURM="up: $slurm_dir"
		SLURM_CONF="$slurm_dir/slurm.conf"
		export SLURM_CONF
	else
		COHORT_SLURM="failed: the test cluster did not start; its logs are in $slurm_dir"
		tail -n 20 "$slurm_dir"/*.log 2>/dev/null | sed 's/^/# /'
	fi
fi
if [ -n "$multi_dir" ]; then
	if COHORT_SLURM_PORT=16917 tests/slurm/cluster.sh start "$multi_dir" --nodes 3; then
		COHORT_SLURM_MULTI="up: $multi_dir"
	else
		COHORT_SLURM_MULTI="failed: the 3-node test cluster did not start; its logs are in $multi_dir"
		tail -n 20 "$multi_dir"/*.log 2>/dev/null | sed 's/^/# /'
	fi
elif [ -n "$slurm_dir" ]; then
	COHORT_SLURM_MULTI="absent: no multi-node test was chosen"
else
	COHORT_SLURM_MULTI=$COHORT_SLURM
fi
export COHORT_SLURM COHORT_SLURM_MULTI
echo "# SLURM suite: $COHORT_SLURM"
echo "# multi-node SLURM suite: $COHORT_SLURM_MULTI"

"$COHORT_BUILD/tests/runner" "$@"
rc=$?
drop_test_swap
exit $rc
