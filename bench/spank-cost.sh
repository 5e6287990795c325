#!/bin/sh
# What the SLURM plugin costs a job, against SLURM's own accounting
# gatherers (BENCHMARKS.md, "What the SLURM plugin costs a job").
#
#   sh bench/spank-cost.sh          (make bench runs it)
#
# Needs root, slurm-wlm and munge; without them it says why and skips
# (exit 0). It takes /tmp/cohort-bench.lock and /tmp/cohort-slurm.lock
# (unless a process it runs under holds them already), starts the private
# test cluster (tests/slurm/cluster.sh) in a temporary directory and runs
# the same job in each configuration:
#
#   none            jobacct_gather/none, no plugin: the baseline
#   cohort-1        jobacct_gather/none + spank_cohort.so mode=record interval=1
#   cohort-0.5      the same at interval=0.5
#   linux           jobacct_gather/linux, JobAcctGatherFrequency=task=1
#   cgroup          jobacct_gather/cgroup, JobAcctGatherFrequency=task=1
#   cgroup+cohort-1 jobacct_gather/cgroup (task=1) + the plugin, interval=1
#
# (SLURM's frequency is whole seconds: its gatherers have no 0.5 s.)
# The job is `srun -n NTASKS` of bench/spank-cost-task.c: each task holds
# MB of touched memory, steady, for T seconds, at next to no CPU of its own.
# In each configuration the script reads the CPU time of the step's
# slurmstepd (which holds SLURM's gathering thread) and of the plugin's
# helper `cohort spank-watch` (a child of slurmstepd), user and system
# together, as the sum of their threads' /proc/PID/task/TID/schedstat
# (nanoseconds; utime+stime of /proc/PID/stat, in 10 ms ticks, is too
# coarse for slurmstepd and is kept as a check), WARM seconds after every
# task is steady and again T - 2 WARM seconds later, before any task ends:
# start-up and tear-down of the step are outside the window. Repetitions are interleaved (every configuration once per round)
# so that the load of the shared machine falls on all of them alike; the
# baseline of the same round is subtracted.
#
# Environment: BENCH_SPANK_T (seconds a task runs, 24), BENCH_SPANK_REPS
# (rounds, 3), BENCH_SPANK_NTASKS (4), BENCH_SPANK_MB (200 per task),
# BENCH_SPANK_CONFIGS (a subset of the names above, in that order),
# BENCH_SPANK_KEEP=1 keeps the temporary directory (logs, raw figures).
set -u

B=${COHORT_BUILD:-build}
T=${BENCH_SPANK_T:-24}
REPS=${BENCH_SPANK_REPS:-3}
NTASKS=${BENCH_SPANK_NTASKS:-4}
MB=${BENCH_SPANK_MB:-200}
CONFIGS=${BENCH_SPANK_CONFIGS:-none cohort-1 cohort-0.5 linux cgroup cgroup+cohort-1}
WARM=3

say() { echo "spank-cost: $*" >&2; }
skip() { echo "spank-cost: skipped: $*"; exit 0; }

case "$T$REPS$NTASKS$MB" in *[!0-9]*) echo "spank-cost: BENCH_SPANK_T, _REPS, _NTASKS and _MB are whole numbers" >&2; exit 2 ;; esac
[ "$T" -ge 10 ] || { echo "spank-cost: BENCH_SPANK_T must be at least 10 (seconds)" >&2; exit 2; }
[ "$REPS" -ge 1 ] && [ "$NTASKS" -ge 1 ] && [ "$MB" -ge 1 ] ||
	{ echo "spank-cost: BENCH_SPANK_REPS, _NTASKS and _MB must be at least 1" >&2; exit 2; }
for c in $CONFIGS; do
	case "$c" in
	none|cohort-1|cohort-0.5|linux|cgroup|cgroup+cohort-1) ;;
	*) echo "spank-cost: unknown configuration '$c' in BENCH_SPANK_CONFIGS" >&2; exit 2 ;;
	esac
done
case " $CONFIGS " in *" none "*) ;; *) echo "spank-cost: BENCH_SPANK_CONFIGS needs the baseline, none" >&2; exit 2 ;; esac

[ "$(id -u)" = 0 ] || skip "needs root (it starts a private SLURM cluster)"
for p in slurmctld slurmd srun munged flock; do
	command -v "$p" >/dev/null 2>&1 || skip "no $p (slurm-wlm and munge are not installed)"
done
[ -f "$B/spank_cohort.so" ] || skip "no $B/spank_cohort.so (libslurm-dev is not installed: make spank)"
[ -x "$B/cohort" ] || skip "no $B/cohort (make)"
[ -r /proc/self/stat ] || skip "no /proc"

# A lock is held already when a process this script runs under holds it
# (`flock /tmp/cohort-bench.lock make bench`): taking it again through a
# file opened anew would wait for ourselves forever. Either an fd we
# inherited holds it (its fdinfo lists the lock), or the holder that
# /proc/locks names is one of our ancestors.
held_by_ancestor() {
	[ -e "$1" ] || return 1
	ino=$(stat -c %i "$1") || return 1
	for fd in /proc/$$/fd/*; do
		[ "$(readlink "$fd" 2>/dev/null)" = "$1" ] || continue
		grep -q '^lock:.*FLOCK' "/proc/$$/fdinfo/${fd##*/}" 2>/dev/null && return 0
	done
	holders=$(awk -v ino="$ino" '$2 == "FLOCK" { n = split($6, a, ":"); if (a[n] == ino) print $5 }' /proc/locks)
	[ -n "$holders" ] || return 1
	p=$$
	while [ "$p" -gt 1 ] 2>/dev/null; do
		for h in $holders; do [ "$h" = "$p" ] && return 0; done
		p=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $2 }')
		[ -n "$p" ] || return 1
	done
	return 1
}

# Both locks, at first never waiting for one while holding the other
# (tests hold the SLURM lock for minutes, benchmarks the other): wait for
# one, try the other, and when that is busy let the first go and wait for
# the other in turn. A waiting flock never has the held lock's file open
# (only this shell has), so a killed script leaves no lock held.
BL=/tmp/cohort-bench.lock SL=/tmp/cohort-slurm.lock
# Asked before our own fds 8 and 9 replace any inherited ones.
have_b=0 have_s=0
held_by_ancestor "$BL" && have_b=1
held_by_ancestor "$SL" && have_s=1
exec 8>>"$BL" 9>>"$SL"
take() { # fd other-fd file: wait for a lock, holding nothing
	flock -n "$1" && return 0
	say "waiting for $3"
	eval "flock $1 $2>&-"
}
if [ $have_b = 1 ]; then
	[ $have_s = 1 ] || take 9 8 "$SL"
elif [ $have_s = 1 ]; then
	take 8 9 "$BL"
else
	# After three rounds lost to a busy machine it keeps the bench lock
	# and waits for the SLURM lock (tests hold it for minutes, not hours).
	round=0
	while :; do
		take 8 9 "$BL"
		flock -n 9 && break
		round=$((round + 1))
		if [ $round -ge 3 ]; then
			say "waiting for $SL, holding $BL"
			flock 9 8>&-
			break
		fi
		flock -u 8
		take 9 8 "$SL"
		flock -n 8 && break
		flock -u 9
	done
fi

ABS_B=$(cd "$B" && pwd)
HERE=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/cohort-spank-cost.XXXXXX)
D=$TMP/cluster
RAW=$TMP/raw
export SLURM_CONF=$D/slurm.conf
HZ=$(getconf CLK_TCK)
SRUN_PID=

cleanup() {
	[ -n "$SRUN_PID" ] && kill "$SRUN_PID" 2>/dev/null
	if [ -d "$D" ]; then
		COHORT_BUILD=$ABS_B sh "$HERE/tests/slurm/cluster.sh" stop "$D" 8>&- 9>&- || true
	fi
	if [ "${BENCH_SPANK_KEEP:-0}" = 1 ]; then
		say "kept $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

${CC:-cc} -O2 -o "$TMP/task" "$HERE/bench/spank-cost-task.c" || { say "cannot build the task"; exit 1; }

# utime+stime of a process in clock ticks (all its threads, those that
# ended included); nothing when it is gone.
cpu_ticks() {
	sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'
}

# The helper: the child of slurmstepd named cohort.
helper_of() {
	want=$1
	for d in /proc/[0-9]*; do
		{ read -r l < "$d/stat"; } 2>/dev/null || continue
		comm=${l#*\(}
		comm=${comm%%\)*}
		[ "$comm" = cohort ] || continue
		set -- ${l##*) }
		[ "$2" = "$want" ] && { echo "${d#/proc/}"; return 0; }
	done
}

# CPU time of process $1 in ns into SUM, exact: the sum of its threads' run
# time (/proc/PID/task/TID/schedstat); its thread ids into TIDS. A thread
# that ends between two readings takes its time with it: lost_threads
# tells, and the clock ticks above, coarse but whole, stand in then.
cpu_ns() {
	SUM=0 TIDS=
	for t in /proc/$1/task/[0-9]*; do
		{ read -r ns _ < "$t/schedstat"; } 2>/dev/null || continue
		SUM=$((SUM + ns))
		TIDS="$TIDS ${t##*/}"
	done
}

lost_threads() { # tids-before tids-after
	n=0
	for a in $1; do
		case " $2 " in *" $a "*) ;; *) n=$((n + 1)) ;; esac
	done
	echo $n
}

# Process $1's CPU ns over the window: from schedstat, or from the ticks
# when a thread ended inside it.
window_ns() { # ns1 ns2 tids1 tids2 ticks1 ticks2
	if [ "$(lost_threads "$3" "$4")" -eq 0 ]; then
		echo $(($2 - $1))
	else
		echo $((($6 - $5) * 1000000000 / HZ))
	fi
}

now() { date +%s.%N; }

# The cluster with the gatherer of configuration $1 (reconfigured).
gatherer_of() {
	case "$1" in
	none|cohort-*) echo none ;;
	linux) echo linux ;;
	cgroup*) echo cgroup ;;
	esac
}

start_cluster() { # gatherer
	extra="JobAcctGatherType=jobacct_gather/$1
JobAcctGatherFrequency=task=1"
	COHORT_BUILD=$ABS_B COHORT_SLURM_EXTRA=$extra \
		sh "$HERE/tests/slurm/cluster.sh" start "$D" >>"$TMP/cluster.log" 2>&1 8>&- 9>&-
}

# plugstack.conf of configuration $1: empty without the plugin (slurmstepd
# reads it at each step).
plugstack() {
	case "$1" in
	*cohort-1) iv=1 ;;
	*cohort-0.5) iv=0.5 ;;
	*) : > "$D/plugstack.conf"; return 0 ;;
	esac
	echo "optional $ABS_B/spank_cohort.so mode=record interval=$iv spool=$D/cohort-spool cohort=$ABS_B/cohort" \
		> "$D/plugstack.conf"
}

# One job in configuration $1, round $2: a line of $RAW.
run_job() {
	cfg=$1 rep=$2
	R=$TMP/ready
	rm -rf "$R" "$D/cohort-spool"
	mkdir -p "$R" "$D/cohort-spool"
	plugstack "$cfg"
	srun -n "$NTASKS" -N 1 -O --mem=$((NTASKS * MB + 512))M --job-name=cohort-spank-cost \
		"$TMP/task" "$MB" "$T" "$R" >"$TMP/srun.out" 2>&1 8>&- 9>&- &
	SRUN_PID=$!
	i=0
	while [ "$(ls "$R" | grep -vc tmp)" -lt "$NTASKS" ]; do
		i=$((i + 1))
		if [ $i -gt 600 ] || ! kill -0 "$SRUN_PID" 2>/dev/null; then
			say "$cfg: the step did not start:"
			cat "$TMP/srun.out" >&2
			return 1
		fi
		sleep 0.1
	done
	stepd=$(cat "$R/0")
	for f in "$R"/*; do
		[ "$(cat "$f")" = "$stepd" ] || { say "$cfg: the tasks have different parents"; return 1; }
	done
	case "$(cat "/proc/$stepd/cmdline" 2>/dev/null | tr '\0' ' ')" in
	slurmstepd*) ;;
	*) say "$cfg: pid $stepd, the tasks' parent, is not slurmstepd"; return 1 ;;
	esac
	sleep $WARM
	helper=$(helper_of "$stepd")
	# The configuration is the one meant: what slurmstepd has loaded.
	g=$(gatherer_of "$cfg")
	grep -q "jobacct_gather_$g.so" "/proc/$stepd/maps" ||
		{ say "$cfg: slurmstepd has not loaded jobacct_gather/$g"; return 1; }
	case "$cfg" in
	*cohort*)
		[ -n "$helper" ] || { say "$cfg: no helper under slurmstepd $stepd"; return 1; } ;;
	*)
		! grep -q spank_cohort.so "/proc/$stepd/maps" && [ -z "$helper" ] ||
			{ say "$cfg: the plugin is loaded where it should not be"; return 1; } ;;
	esac
	win=$((T - 2 * WARM))
	hn1=0 hn2=0 ht1= ht2= h1=0 h2=0
	t1=$(now)
	cpu_ns "$stepd"; sn1=$SUM st1=$TIDS
	[ -n "$helper" ] && { cpu_ns "$helper"; hn1=$SUM ht1=$TIDS; }
	s1=$(cpu_ticks "$stepd")
	[ -n "$helper" ] && h1=$(cpu_ticks "$helper")
	sleep "$win"
	t2=$(now)
	cpu_ns "$stepd"; sn2=$SUM st2=$TIDS
	[ -n "$helper" ] && { cpu_ns "$helper"; hn2=$SUM ht2=$TIDS; }
	s2=$(cpu_ticks "$stepd")
	[ -n "$helper" ] && h2=$(cpu_ticks "$helper")
	[ -n "$s1" ] && [ -n "$s2" ] && [ -n "$h1" ] && [ -n "$h2" ] && [ -n "$st2" ] &&
		{ [ -z "$helper" ] || [ -n "$ht2" ]; } ||
		{ say "$cfg: a process ended inside the window (is the machine too slow for T=$T?)"; return 1; }
	sns=$(window_ns "$sn1" "$sn2" "$st1" "$st2" "$s1" "$s2")
	hns=$(window_ns "$hn1" "$hn2" "$ht1" "$ht2" "$h1" "$h2")
	lost=$(($(lost_threads "$st1" "$st2") + $(lost_threads "$ht1" "$ht2")))
	wait "$SRUN_PID"
	rc=$?
	SRUN_PID=
	[ $rc -eq 0 ] || { say "$cfg: srun exited $rc:"; cat "$TMP/srun.out" >&2; return 1; }
	case "$cfg" in
	*cohort*)
		n=$(find "$D/cohort-spool" -name '*.ndjson' | wc -l)
		[ "$n" -eq "$NTASKS" ] || { say "$cfg: $n recordings for $NTASKS tasks"; return 1; } ;;
	esac
	echo "$rep $cfg $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.3f", b - a }') $sns $hns $((s2 - s1)) $((h2 - h1)) $lost" >> "$RAW"
}

: > "$RAW"
echo "# spank-cost: $(uname -sr), $(nproc) CPUs, $(slurmd -V 2>/dev/null), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# $NTASKS tasks of $MB MB, T=${T} s, window $((T - 2 * WARM)) s, $REPS rounds, load $(cut -d' ' -f1-3 /proc/loadavg)"
rep=1
while [ $rep -le "$REPS" ]; do
	cur=
	for cfg in $CONFIGS; do
		g=$(gatherer_of "$cfg")
		if [ "$g" != "$cur" ]; then
			start_cluster "$g" || { say "the cluster did not start (log: $TMP/cluster.log)"; BENCH_SPANK_KEEP=1; exit 1; }
			cur=$g
		fi
		run_job "$cfg" "$rep" || { BENCH_SPANK_KEEP=1; exit 1; }
		say "round $rep $(tail -n 1 "$RAW")"
	done
	rep=$((rep + 1))
done
echo "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)"

# The table: per round, CPU % of one core per task of slurmstepd and of the
# helper; the extra over the same round's baseline; that extra per sample
# per task; the ratio of the total to the baseline's. Medians over rounds,
# with the range.
awk -v nt="$NTASKS" -v order="$CONFIGS" '
function med(s,   n, a, i, j, t) {
	n = split(s, a, " ")
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	lo = a[1]; hi = a[n]
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function cell(s, fmt,   m) { m = med(s); return sprintf(fmt " (" fmt "-" fmt ")", m, lo, hi) }
{
	st[$1, $2] = $4 / 1e9 / $3 / nt * 100
	he[$1, $2] = $5 / 1e9 / $3 / nt * 100
	reps[$1] = 1
}
END {
	n = split(order, cfgs, " ")
	print "| configuration | slurmstepd %/task | helper %/task | extra over baseline %/task | extra ms per task per sample | total / baseline |"
	print "|---|---:|---:|---:|---:|---:|"
	for (k = 1; k <= n; k++) {
		c = cfgs[k]
		iv = c ~ /0\.5$/ ? 0.5 : 1
		S = H = E = M = Q = ""
		nq = 0
		for (r in reps) {
			if (!((r, c) in st)) continue
			base = st[r, "none"] + he[r, "none"]
			tot = st[r, c] + he[r, c]
			S = S " " st[r, c]; H = H " " he[r, c]
			E = E " " (tot - base)
			M = M " " (tot - base) / 100 * iv * 1000
			if (base > 0) { Q = Q " " tot / base; nq++ }
		}
		printf "| %s | %s | %s | %s | %s | %s |\n", c, cell(S, "%.4f"), cell(H, "%.4f"),
			c == "none" ? "0 (baseline)" : cell(E, "%.4f"), c == "none" ? "-" : cell(M, "%.3f"),
			c == "none" ? "1" : (nq ? cell(Q, "%.1f") : "n/a (baseline 0)")
	}
}' "$RAW"
echo "# raw: round configuration window_s slurmstepd_ns helper_ns, the same in clock ticks ($HZ/s),"
echo "# threads that ended inside the window (then the ns are the ticks'):"
sed 's/^/#   /' "$RAW"
