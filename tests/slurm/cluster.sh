#!/bin/sh
# A throwaway SLURM cluster in a private directory, for tests.
#
#   tests/slurm/cluster.sh start DIR    munged, slurmctld and slurmd, all files in DIR
#   tests/slurm/cluster.sh start DIR --nodes N
#                                       the same with N nodes (see below)
#   tests/slurm/cluster.sh stop DIR     stop every daemon started in DIR, remove
#                                       the cgroups slurmd made, keep the logs
#   tests/slurm/cluster.sh env DIR      print the environment clients need
#
# Needs root, slurm-wlm and munge. It uses its own ports and its own munge
# socket, so it does not touch a system SLURM or munge that may be running.
# Clients (srun, sbatch, sinfo...) need SLURM_CONF=DIR/slurm.conf.
#
# Without --nodes the cluster is one node named after this host (the
# single-node suite). With --nodes N it is N nodes, node1..nodeN, on this
# one machine through SLURM's multiple-slurmd mode (Debian's slurm-wlm is
# built with it): one slurmd per node, started as `slurmd -N nodeI`, each
# with its own NodeName, port (SlurmdPort + I), spool (spool/nodeI), log
# (slurmd-nodeI.log), pid file and memory cgroup tree (cgroup v1:
# /sys/fs/cgroup/memory/slurm_nodeI/...), so task/cgroup enforces each
# node's job limit apart.
#
# Each node's slurmd also runs in a mount namespace of its own
# (`unshare --mount --propagation private`), with two tmpfs mounts that
# only it and what it forks see: /dev/shm (cohort-nodeI-shm, as large as
# this host's /dev/shm, or SIZE with --shm-size nodeI=SIZE) and
# DIR/tmp/node (cohort-nodeI-tmp). Every slurmstepd, and every task of a
# step, is forked by its node's slurmd and so sees its node's /dev/shm: a
# node with a smaller /dev/shm than the others is a real mount, and
# `srun --mpi=pmix` works across the nodes, because mpi.conf's
# PMIxCliTmpDirBase is DIR/tmp/node, where each node's slurmstepd makes
# its spmix_appdir_<uid>_<job>.<step> (in the one /tmp of this host the
# second node's failed with "File exists"). Everything else (/tmp, DIR,
# the working directory, /sys/fs/cgroup) is the host's, shared by all
# nodes. Nothing unmounts: a namespace and its mounts go when its last
# process exits, so `stop` (every slurmd, then their steps) leaves none.
#
#   tests/slurm/cluster.sh start DIR --nodes N [--shm-size nodeI=SIZE]...
#                                       SIZE with K, M or G, for this start
#                                       only: a later start without it gives
#                                       the node this host's size again
#
# The nodes share this host's address, kernel, RAM, CPUs and /tmp: what
# needs a node's own kernel or a node-local /tmp cannot be shown here.
# The node count is kept in DIR/nodes (and the
# port in DIR/port): a later `start`
# (reconfiguring) and `stop` know them. A lost node (its slurmd killed)
# is marked down after SlurmdTimeout=20 s; `start` again brings it back.
#
# Extra slurm.conf lines can be given in COHORT_SLURM_EXTRA (one per line);
# a later `start` on the same DIR rewrites the configuration, which is how
# the suite reconfigures the cluster between cases.
set -eu

cmd=${1:-}
D=${2:-}
[ -n "$cmd" ] && [ -n "$D" ] || { echo "usage: $0 start|stop|env DIR [--nodes N]" >&2; exit 2; }
shift 2

# Nodes: 0 is the single-node cluster named after this host; N >= 1 is
# node1..nodeN in multiple-slurmd mode.
nodes=0
[ -f "$D/nodes" ] && nodes=$(cat "$D/nodes")
# --shm-size NODE=SIZE, as "node3=32M node1=1G": for this start only.
shm_sizes=
while [ $# -gt 0 ]; do
	case "$1" in
	--nodes)
		n=${2:-}
		case "$n" in
		[1-9]|1[0-6]) nodes=$n ;;
		*) echo "$0: --nodes '$n': not a count of nodes (1-16)" >&2; exit 2 ;;
		esac
		shift 2
		;;
	--shm-size)
		v=${2:-}
		case "$v" in
		node[1-9]=[1-9]*[KMG] | node1[0-6]=[1-9]*[KMG]) ;;
		*) echo "$0: --shm-size '$v': want NODE=SIZE, as node3=32M (K, M or G)" >&2; exit 2 ;;
		esac
		case "${v#*=}" in
		*[!0-9KMG]* | *[KMG]*[KMG]*) echo "$0: --shm-size '$v': SIZE is digits and one of K, M, G" >&2; exit 2 ;;
		esac
		shm_sizes="$shm_sizes ${v%%=*}=${v#*=}"
		shift 2
		;;
	*)
		echo "$0: unknown option $1" >&2
		exit 2
		;;
	esac
done

for kv in $shm_sizes; do
	i=${kv%%=*}
	i=${i#node}
	if [ "$nodes" -eq 0 ] || [ "$i" -gt "$nodes" ]; then
		echo "$0: --shm-size ${kv%%=*}: no such node (the cluster has node1..node$nodes; --nodes N first)" >&2
		exit 2
	fi
done

host=$(hostname -s)
# A cluster keeps the port it was started with (DIR/port), so that
# reconfiguring or stopping it needs no COHORT_SLURM_PORT again.
saved_port=
[ -f "$D/port" ] && saved_port=$(cat "$D/port")
ctld_port=${COHORT_SLURM_PORT:-${saved_port:-16817}}
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
EOF
	if [ "$nodes" -eq 0 ]; then
		cat >> "$D/slurm.conf" <<EOF
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
	else
		write_nodes_conf
	fi
	# ---- spank_cohort.so: one marked block ----
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

# The node lines of a multiple-slurmd cluster: every node on 127.0.0.1,
# told apart by its port, with an equal part of the memory and all the
# CPUs, which the nodes share. Per-node files are named through %n.
write_nodes_conf() {
	node_mb=$((mem_mb / nodes))
	# A node lost on purpose (its slurmd killed) is seen in 20 s, not 5 min.
	echo "SlurmdTimeout=20" >> "$D/slurm.conf"
	sed -i -e "s|^SlurmdSpoolDir=.*|SlurmdSpoolDir=$D/spool/%n|" \
	       -e "s|^SlurmdPidFile=.*|SlurmdPidFile=$D/slurmd-%n.pid|" \
	       -e "s|^SlurmdLogFile=.*|SlurmdLogFile=$D/slurmd-%n.log|" "$D/slurm.conf"
	for n in $(node_names); do
		echo "NodeName=$n NodeHostname=$host NodeAddr=127.0.0.1 Port=$((slurmd_port + ${n#node})) CPUs=$cpus RealMemory=$node_mb State=UNKNOWN"
	done >> "$D/slurm.conf"
	echo "PartitionName=debug Nodes=node[1-$nodes] Default=YES MaxTime=INFINITE State=UP" >> "$D/slurm.conf"
	# srun --mpi=pmix: each node's slurmstepd makes its PMIx client
	# directory (spmix_appdir_<uid>_<job>.<step>) under this one path,
	# which is a tmpfs of that node's own (start_node): no "File exists".
	echo "PMIxCliTmpDirBase=$D/tmp/node" > "$D/mpi.conf"
}

node_names() {
	i=1
	while [ $i -le "$nodes" ]; do echo "node$i"; i=$((i + 1)); done
}

# Remove the cgroups slurmd created (deepest first); they are empty once
# every step has ended.
clean_cgroups() {
	for base in /sys/fs/cgroup/memory /sys/fs/cgroup/cpuset /sys/fs/cgroup/freezer \
	            /sys/fs/cgroup/devices /sys/fs/cgroup/cpuacct /sys/fs/cgroup/cpu \
	            /sys/fs/cgroup/system.slice; do
		# A cluster of nodes removes only its nodes' trees: the
		# single-node cluster may be up beside it.
		dirs="$base/slurm $base/slurm_$host $base/slurmstepd.scope"
		[ "$nodes" -eq 0 ] || dirs=$(node_names | sed "s|^|$base/slurm_|")
		for d in $dirs; do
			[ -d "$d" ] || continue
			find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
		done
	done
}

stop_slurmds() {
	stop_pidfile "$D/slurmd.pid"
	for n in $(node_names); do stop_pidfile "$D/slurmd-$n.pid"; done
}

# The size of node $1's /dev/shm: its --shm-size, else that of this host's.
shm_size_of() {
	for kv in $shm_sizes; do
		[ "${kv%%=*}" = "$1" ] && { echo "${kv#*=}"; return; }
	done
	echo "$(df -k --output=size /dev/shm | tail -n 1 | tr -d ' ')K"
}

# Start node $1's slurmd in a mount namespace of its own, with its own
# tmpfs on /dev/shm and on $D/tmp/node (see the header). slurmd forks
# into the background and unshare returns; the namespace lives on in
# slurmd and in every slurmstepd and task it forks, and goes, with its
# mounts, when the last of them exits.
start_node() {
	mkdir -p "$D/spool/$1" "$D/tmp/node"
	unshare --mount --propagation private -- sh -c '
		mount -t tmpfs -o "size=$2,mode=1777,nosuid,nodev" "cohort-$1-shm" /dev/shm &&
		mount -t tmpfs -o "mode=1777,nosuid,nodev" "cohort-$1-tmp" "$3/tmp/node" &&
		exec slurmd -f "$3/slurm.conf" -N "$1"' sh "$1" "$(shm_size_of "$1")" "$D"
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
	echo "$nodes" > "$D/nodes"
	echo "$ctld_port" > "$D/port"
	write_conf
	export SLURM_CONF="$D/slurm.conf"
	if ! kill -0 "$(pid_of "$D/munge/munged.pid")" 2>/dev/null; then
		munged --force --socket="$D/munge/munge.socket" --key-file="$D/munge/munge.key" \
		       --pid-file="$D/munge/munged.pid" --log-file="$D/munged.log" \
		       --seed-file="$D/munge/munged.seed"
		wait_for munged 50 test -S "$D/munge/munge.socket"
	fi
	stop_slurmds
	stop_pidfile "$D/slurmctld.pid"
	slurmctld -f "$D/slurm.conf" -i
	wait_for slurmctld 100 scontrol ping
	if [ "$nodes" -eq 0 ]; then
		slurmd -f "$D/slurm.conf"
		want=1
	else
		for n in $(node_names); do start_node "$n"; done
		want=$nodes
	fi
	# The cluster is usable when sinfo shows every node idle.
	if ! wait_for slurmd 150 sh -c "[ \$(sinfo -h -N -o %T | grep -c '^idle') -ge $want ]"; then
		sinfo -N >&2 || true
		exit 1
	fi
	log "up in $D (SLURM_CONF=$D/slurm.conf)"
	;;
stop)
	export SLURM_CONF="$D/slurm.conf"
	scancel --quiet --user=root 2>/dev/null || true
	stop_slurmds
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
