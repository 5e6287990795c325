#!/bin/sh
# A throwaway single-node SLURM cluster in a private directory, for tests.
#
#   tests/slurm/cluster.sh start DIR    munged, slurmctld and slurmd, all files in DIR
#   tests/slurm/cluster.sh stop DIR     stop every daemon started in DIR, remove
#                                       the cgroups slurmd made, keep the logs
#   tests/slurm/cluster.sh env DIR      print the environment clients need
#
# Needs root, slurm-wlm and munge. It uses its own ports and its own munge
# socket, so it does not touch a system SLURM or munge that may be running.
# Clients (srun, sbatch, sinfo...) need SLURM_CONF=DIR/slurm.conf.
#
# Extra slurm.conf lines can be given in COHORT_SLURM_EXTRA (one per line);
# a later `start` on the same DIR rewrites the configuration, which is how
# the suite reconfigures the cluster between cases.
set -eu

cmd=${1:-}
D=${2:-}
[ -n "$cmd" ] && [ -n "$D" ] || { echo "usage: $0 start|stop|env DIR" >&2; exit 2; }

host=$(hostname -s)
ctld_port=${COHORT_SLURM_PORT:-16817}
slurmd_port=$((ctld_port + 1))

log() { echo "cluster: $*" >&2; }

pid_of() { [ -f "$1" ] && cat "$1" 2>/dev/null || true; }

stop_pidfile() {
	p=$(pid_of "$1")
	[ -n "$p" ] || return 0
	kill "$p" 2>/dev/null || true
	i=0
	while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	kill -9 "$p" 2>/dev/null || true
	rm -f "$1"
}

write_conf() {
	mem_mb=$(awk '/MemTotal/ { printf "%d", $2 / 1024 - 1024 }' /proc/meminfo)
	cpus=$(nproc)
	cat > "$D/slurm.conf" <<EOF
ClusterName=cohorttest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.socket
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
InactiveLimit=0
KillWait=5
MinJobAge=300
${COHORT_SLURM_EXTRA:-JobAcctGatherType=jobacct_gather/cgroup}
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
	# ---- spank_cohort.so (issue 15): one marked block ----
	# The plugin of the build tree, when there is one, in mode=off: the
	# tests that need it rewrite $D/plugstack.conf (slurmstepd reads it at
	# each step). COHORT_SLURM_SPANK=0 leaves it out.
	spank_so=${COHORT_BUILD:-build}/spank_cohort.so
	if [ "${COHORT_SLURM_SPANK:-1}" != 0 ] && [ -f "$spank_so" ]; then
		mkdir -p "$D/cohort-spool"
		echo "optional $spank_so mode=off spool=$D/cohort-spool cohort=${COHORT_BUILD:-build}/cohort" \
			> "$D/plugstack.conf"
		echo "PlugStackConfig=$D/plugstack.conf" >> "$D/slurm.conf"
	fi
	# ---- end of spank_cohort.so ----
	cgplugin=cgroup/v1
	[ -f /sys/fs/cgroup/cgroup.controllers ] && cgplugin=cgroup/v2
	cat > "$D/cgroup.conf" <<EOF
CgroupPlugin=$cgplugin
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=no
ConstrainDevices=no
ConstrainRAMSpace=${COHORT_SLURM_CONSTRAIN_RAM:-yes}
ConstrainSwapSpace=no
AllowedRAMSpace=100
EOF
}

# Remove the cgroups slurmd created (deepest first); they are empty once
# every step has ended.
clean_cgroups() {
	for base in /sys/fs/cgroup/memory /sys/fs/cgroup/cpuset /sys/fs/cgroup/freezer \
	            /sys/fs/cgroup/devices /sys/fs/cgroup/cpuacct /sys/fs/cgroup/cpu \
	            /sys/fs/cgroup/system.slice; do
		for d in "$base"/slurm "$base"/slurm_"$host" "$base"/slurmstepd.scope; do
			[ -d "$d" ] || continue
			find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
		done
	done
}

wait_for() { # what, tries, command...
	what=$1 tries=$2
	shift 2
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -ge "$tries" ]; then
			log "$what did not come up"
			return 1
		fi
		sleep 0.2
	done
}

case "$cmd" in
start)
	mkdir -p "$D/munge" "$D/state" "$D/spool"
	chmod 0700 "$D" "$D/munge"
	if [ ! -f "$D/munge/munge.key" ]; then
		dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
		chmod 0600 "$D/munge/munge.key"
	fi
	write_conf
	export SLURM_CONF="$D/slurm.conf"
	if ! kill -0 "$(pid_of "$D/munge/munged.pid")" 2>/dev/null; then
		munged --force --socket="$D/munge/munge.socket" --key-file="$D/munge/munge.key" \
		       --pid-file="$D/munge/munged.pid" --log-file="$D/munged.log" \
		       --seed-file="$D/munge/munged.seed"
		wait_for munged 50 test -S "$D/munge/munge.socket"
	fi
	stop_pidfile "$D/slurmd.pid"
	stop_pidfile "$D/slurmctld.pid"
	slurmctld -f "$D/slurm.conf" -i
	wait_for slurmctld 100 scontrol ping
	slurmd -f "$D/slurm.conf"
	# The node is usable when sinfo shows it idle.
	if ! wait_for slurmd 150 sh -c "sinfo -h -N -o %T | grep -q '^idle'"; then
		sinfo -N >&2 || true
		exit 1
	fi
	log "up in $D (SLURM_CONF=$D/slurm.conf)"
	;;
stop)
	export SLURM_CONF="$D/slurm.conf"
	scancel --quiet --user=root 2>/dev/null || true
	stop_pidfile "$D/slurmd.pid"
	stop_pidfile "$D/slurmctld.pid"
	# slurmstepd processes outlive slurmd briefly.
	i=0
	while pgrep -f "slurmstepd.*" >/dev/null 2>&1 && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	stop_pidfile "$D/munge/munged.pid"
	clean_cgroups
	;;
env)
	echo "SLURM_CONF=$D/slurm.conf"
	;;
*)
	echo "usage: $0 start|stop|env DIR" >&2
	exit 2
	;;
esac
