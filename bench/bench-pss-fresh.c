/*
 * bench-pss-fresh.c - how fresh the sampler keeps PSS where memory moves:
 * 256 processes of 300 MB, one tick a second, the default budget (1% of a
 * core), some processes moving their memory by 5% or more at random times.
 *
 *   build/bench/bench-pss-fresh [SECONDS [PROCESSES [MB]]]
 *
 * Defaults: 240 s, 256 processes, 300 MB. One parent touches MB of private
 * memory and forks PROCESSES - 1 children that share it copy-on-write (256
 * private copies of 300 MB would need 75 GB), so that every process is MB
 * resident. 32 children move (one in eight): from 10 s on, each second
 * with probability 1/3, one of them that has a PSS and no move waiting
 * moves, at random:
 *   - growth: maps and touches 20 MB more, or frees it again (RSS +-6.7%);
 *   - copy-on-write (root, with a memory cgroup hierarchy only): writes to
 *     20 MB of the memory it shares, so the kernel copies it; its RSS does
 *     not move, the usage of the cgroup the bench put it in does, and the
 *     bench gives that usage to the sampler (cohort_sampler_set_usage).
 * Printed at the end: the age of each PSS (median, p95, max) for idle and
 * moving processes, the worst age from the end of the first rotation on,
 * the time from each move to the end of the first tick whose walk of that
 * process came after it (median, p95, max), the CPU share (the process's
 * own, getrusage; and the sampler's count), and what a walk costs (the
 * sampler's mean, and the baseline: every process walked once back to
 * back), in ms per walk and per GiB resident.
 *
 * Then the same with transparent huge pages: the parent and the growth
 * madvise(MADV_HUGEPAGE). /sys/kernel/mm/transparent_hugepage/enabled must
 * be "always" or "madvise"; when it is "never" and the bench runs as root
 * it sets "madvise" for the run and restores it. The first run asks for
 * MADV_NOHUGEPAGE, so that "always" does not turn it into a THP run.
 * BENCH_THP=0 or 1 runs one of the two; BENCH_BUDGET=PCT sets the budget
 * (percent of a core, default 1); BENCH_QUICK=1 (as for make bench's
 * other benchmarks) makes the defaults 60 s and 64 processes.
 */
#include "bench.h"
#include "cohort.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MB (1024ULL * 1024)
#define MOVE_BYTES (20 * MB)
#define NPROC_MAX 1024
#define MOVES_MAX 4096
#define THP_PATH "/sys/kernel/mm/transparent_hugepage/enabled"

/* ---- the processes ---- */

static volatile sig_atomic_t move_asked;
static char *shared_mem;
static size_t shared_size, cow_off;
static int use_thp;

static void on_move(int sig)
{
	move_asked = sig;
}

/* A child: on SIGUSR1 grow by MOVE_BYTES or free the growth; on SIGUSR2 copy MOVE_BYTES of the shared memory. */
static void child_loop(void)
{
	struct sigaction sa = { .sa_handler = on_move };
	char *grown = NULL;

	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	for (;;) {
		pause();
		if (move_asked == SIGUSR1 && grown) {
			munmap(grown, MOVE_BYTES);
			grown = NULL;
		} else if (move_asked == SIGUSR1) {
			char *q = mmap(NULL, MOVE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (q != MAP_FAILED) {
				madvise(q, MOVE_BYTES, use_thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
				for (size_t off = 0; off < MOVE_BYTES; off += 4096)
					q[off] = 1;
				grown = q;
			}
		} else if (move_asked == SIGUSR2 && cow_off + MOVE_BYTES <= shared_size) {
			for (size_t off = 0; off < MOVE_BYTES; off += 4096)
				shared_mem[cow_off + off]++;
			cow_off += MOVE_BYTES;
		}
		move_asked = 0;
	}
}

/*
 * The parent of the processes: touches size bytes (huge pages or not),
 * forks n - 1 children, then writes their pids to the pipe. Returns its
 * pid and fills pids[0..n-1] (itself first), or -1.
 */
static pid_t spawn(size_t size, int n, int thp, pid_t *pids)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* Aligned to 2 MiB, so that all of it can be huge pages. */
		char *p = mmap(NULL, size + 2 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		close(fds[0]);
		if (p == MAP_FAILED)
			_exit(1);
		p = (char *)(((uintptr_t)p + 2 * MB - 1) & ~(uintptr_t)(2 * MB - 1));
		madvise(p, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
		for (size_t off = 0; off < size; off += 4096)
			p[off] = 1;
		shared_mem = p;
		shared_size = size;
		use_thp = thp;
		for (int i = 1; i < n; i++) {
			pid_t k = fork();

			if (k < 0)
				_exit(1);
			if (k == 0) {
				close(fds[1]);
				child_loop();
			}
			if (write(fds[1], &k, sizeof(k)) != sizeof(k))
				_exit(1);
		}
		close(fds[1]);
		for (;;)
			pause();
	}
	close(fds[1]);
	pids[0] = pid;
	for (int i = 1; i < n; i++)
		if (read(fds[0], &pids[i], sizeof(pids[i])) != sizeof(pids[i])) {
			close(fds[0]);
			kill(pid, SIGKILL);
			return -1;
		}
	close(fds[0]);
	return pid;
}

static void kill_all(pid_t parent, const pid_t *pids, int n)
{
	for (int i = 1; i < n; i++)
		kill(pids[i], SIGKILL);
	kill(parent, SIGKILL);
	for (int i = 1; i < n; i++)
		waitpid(pids[i], NULL, WNOHANG);
	while (waitpid(parent, NULL, 0) < 0 && errno == EINTR)
		;
}

/* AnonHugePages of a process, bytes (0 when unknown). */
static uint64_t anon_huge(pid_t pid)
{
	char path[64], buf[4096];
	ssize_t len;
	const char *p;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return 0;
	buf[len] = '\0';
	p = strstr(buf, "AnonHugePages:");
	return p ? strtoull(p + 14, NULL, 10) * 1024 : 0;
}

/* ---- memory cgroups for the copy-on-write movers (root only) ---- */

static char cg_base[256];
static int cg_v2;

/* Make the bench's cgroup directory. Returns 0, or -1 when there is none to use. */
static int cg_setup(void)
{
	char path[300];

	if (geteuid() != 0)
		return -1;
	if (access("/sys/fs/cgroup/memory/cgroup.procs", F_OK) == 0) {
		snprintf(cg_base, sizeof(cg_base), "/sys/fs/cgroup/memory/cohort-bench-pss-%d", (int)getpid());
		cg_v2 = 0;
	} else if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
		snprintf(cg_base, sizeof(cg_base), "/sys/fs/cgroup/cohort-bench-pss-%d", (int)getpid());
		cg_v2 = 1;
	} else {
		return -1;
	}
	if (mkdir(cg_base, 0755) < 0)
		return -1;
	if (cg_v2) {
		int fd;

		snprintf(path, sizeof(path), "%s/cgroup.subtree_control", cg_base);
		fd = open(path, O_WRONLY);
		if (fd < 0 || write(fd, "+memory", 7) != 7) {
			if (fd >= 0)
				close(fd);
			rmdir(cg_base);
			return -1;
		}
		close(fd);
	}
	return 0;
}

/* Put pid in a cgroup of its own, m<i>. Returns 0 or -1. */
static int cg_put(int i, pid_t pid)
{
	char path[300], num[16];
	int fd, len, ok;

	snprintf(path, sizeof(path), "%s/m%d", cg_base, i);
	if (mkdir(path, 0755) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/m%d/cgroup.procs", cg_base, i);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	len = snprintf(num, sizeof(num), "%d", (int)pid);
	ok = write(fd, num, (size_t)len) == len;
	close(fd);
	return ok ? 0 : -1;
}

static uint64_t cg_usage(int i)
{
	char path[300], buf[64];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "%s/m%d/%s", cg_base, i, cg_v2 ? "memory.current" : "memory.usage_in_bytes");
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return 0;
	buf[len] = '\0';
	return strtoull(buf, NULL, 10);
}

/* Remove the cgroups (their processes are dead: the kernel waits for the exits). */
static void cg_teardown(int n)
{
	char path[300];

	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/m%d", cg_base, i);
		for (int t = 0; t < 100 && rmdir(path) < 0 && errno == EBUSY; t++)
			bench_nap(0.05);
	}
	rmdir(cg_base);
}

/* ---- one run ---- */

struct move {
	int proc;
	int cow;
	double at, fresh;   /* fresh: seconds from the move to a fresh PSS; < 0 not yet */
};

static double pct(double *v, int n, double p)
{
	int i;

	if (n == 0)
		return 0;
	bench_median(v, n);   /* sorts */
	i = (int)(p * (n - 1) + 0.5);
	return v[i];
}

static void print_dist(const char *what, double *v, int n)
{
	if (n == 0) {
		printf("  %-44s none\n", what);
		return;
	}
	double med = pct(v, n, 0.5), p95 = pct(v, n, 0.95), max = v[n - 1];

	printf("  %-44s median %6.1f s  p95 %6.1f s  max %6.1f s  (%d)\n", what, med, p95, max, n);
}

static double rusage_self(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int run(int thp, int seconds, int n, size_t size, double budget)
{
	struct cohort_sampler_opts so = { .cpu_budget = budget };
	static pid_t pids[NPROC_MAX];
	static struct move moves[MOVES_MAX];
	static int mover[NPROC_MAX], cgi[NPROC_MAX], pending[NPROC_MAX];
	static double ages[NPROC_MAX];
	struct cohort_sampler *s = NULL;
	struct cohort_sampler_stats st;
	int nmoves = 0, nmovers = n / 8, ncg = 0, ncow = 0, all_read_at = -1;
	double t0, c0, worst_steady = 0, baseline_ms, gib = (double)size / (double)(1024 * MB);
	uint64_t huge;
	pid_t parent;
	unsigned seed = 42u + (unsigned)thp;

	printf("\n### %d processes of %zu MB (shared copy-on-write), %s, 1 s ticks, budget %.2f%% of a core, %d s\n",
	       n, (size_t)(size / MB), thp ? "transparent huge pages (MADV_HUGEPAGE)" : "4 KiB pages (MADV_NOHUGEPAGE)",
	       100 * budget, seconds);
	fflush(stdout);
	parent = spawn(size, n, thp, pids);
	if (parent < 0) {
		printf("cannot start the processes\n");
		return -1;
	}
	huge = anon_huge(pids[n > 1 ? 1 : 0]);
	printf("AnonHugePages of a child: %.0f MB of %zu MB\n", (double)huge / MB, (size_t)(size / MB));

	/* Baseline: every process walked once, back to back (median of 3 rounds). */
	{
		double r[3];

		for (int k = 0; k < 3; k++) {
			uint64_t a = cpu_ns();

			for (int i = 0; i < n; i++) {
				struct cohort_procmem m;

				cohort_proc_smaps(NULL, pids[i], &m);
			}
			r[k] = (double)(cpu_ns() - a) / 1e6 / n;
		}
		baseline_ms = bench_median(r, 3);
	}

	/* The movers: every eighth child; a quarter of them copy-on-write, each in a cgroup of its own. */
	memset(mover, 0, sizeof(mover));
	memset(pending, 0, sizeof(pending));
	for (int i = 0; i < n; i++)
		cgi[i] = -1;
	if (cg_setup() == 0) {
		for (int k = 0; k < nmovers / 4; k++) {
			int i = 1 + 8 * k + 4;

			if (i < n && cg_put(ncg, pids[i]) == 0)
				cgi[i] = ncg++;
		}
	}
	for (int k = 0; k < nmovers; k++) {
		int i = 1 + 8 * k + 4;

		if (i < n)
			mover[i] = cgi[i] >= 0 ? 2 : 1;
	}
	if (!ncg)
		printf("copy-on-write moves: none (needs root and a memory cgroup hierarchy to see them)\n");

	if (cohort_sampler_create(&so, &s) < 0)
		return -1;
	for (int i = 0; i < n; i++)
		cohort_sampler_add(s, pids[i]);
	c0 = rusage_self();
	t0 = bench_now();
	for (int t = 0; t < seconds; t++) {
		double tick_at = bench_now();

		for (int i = 0; i < n; i++)
			if (cgi[i] >= 0)
				cohort_sampler_set_usage(s, pids[i], cg_usage(cgi[i]));
		cohort_sampler_tick(s);
		cohort_sampler_stats(s, &st);
		/* Moves walked since: the walk's time is the tick's. */
		for (int m = 0; m < nmoves; m++) {
			struct cohort_sample smp;

			if (moves[m].fresh >= 0 || cohort_sampler_get(s, (size_t)moves[m].proc, &smp) < 0 || !smp.have_pss)
				continue;
			if (tick_at - (double)smp.mem_age_ns / 1e9 >= moves[m].at) {
				moves[m].fresh = bench_now() - moves[m].at;
				pending[moves[m].proc] = 0;
			}
		}
		if (all_read_at < 0) {
			int have = 0;

			for (int i = 0; i < n; i++) {
				struct cohort_sample smp;

				have += cohort_sampler_get(s, (size_t)i, &smp) == 0 && smp.have_pss;
			}
			if (have == n)
				all_read_at = t;
		} else if ((double)st.worst_age_ns / 1e9 > worst_steady) {
			worst_steady = (double)st.worst_age_ns / 1e9;
		}
		/* From 10 s on, with probability 1/3, one mover with a PSS and no move waiting moves. */
		if (t >= 10 && rand_r(&seed) % 3 == 0 && nmoves < MOVES_MAX) {
			int i = 1 + 8 * (int)(rand_r(&seed) % (unsigned)nmovers) + 4;
			struct cohort_sample smp;

			if (i < n && mover[i] && !pending[i] && cohort_sampler_get(s, (size_t)i, &smp) == 0 &&
			    smp.have_pss) {
				int cow = mover[i] == 2;

				moves[nmoves] = (struct move){ i, cow, bench_now(), -1 };
				nmoves++;
				ncow += cow;
				pending[i] = 1;
				kill(pids[i], cow ? SIGUSR2 : SIGUSR1);
			}
		}
		if (bench_now() < t0 + t + 1)
			bench_nap(t0 + t + 1 - bench_now());
	}
	double wall = bench_now() - t0, cpu = rusage_self() - c0;

	cohort_sampler_stats(s, &st);
	{
		static double idle[NPROC_MAX], moving[NPROC_MAX], lat[MOVES_MAX], lat_cow[MOVES_MAX];
		int ni = 0, nm = 0, nl = 0, nlc = 0, notyet = 0;
		double per_walk = st.smaps_reads ? (double)st.smaps_cpu_ns / (double)st.smaps_reads / 1e6 : 0;
		double statm_ms = st.ticks ? (double)(st.cpu_ns - st.smaps_cpu_ns) / (double)st.ticks / 1e6 : 0;

		for (int i = 0; i < n; i++) {
			struct cohort_sample smp;

			if (cohort_sampler_get(s, (size_t)i, &smp) < 0)
				continue;
			ages[i] = smp.have_pss ? (double)smp.mem_age_ns / 1e9 : (double)st.wall_ns / 1e9;
			if (mover[i])
				moving[nm++] = ages[i];
			else
				idle[ni++] = ages[i];
		}
		for (int m = 0; m < nmoves; m++) {
			if (moves[m].fresh < 0)
				notyet++;
			else if (moves[m].cow)
				lat_cow[nlc++] = moves[m].fresh;
			else
				lat[nl++] = moves[m].fresh;
		}
		printf("CPU: %.2f%% of a core (the bench process, getrusage: %.2f s over %.0f s); the sampler's own "
		       "count %.2f%% (statm %.2f ms a tick, %llu walks, %llu of moved processes)\n",
		       100 * cpu / wall, cpu, wall, 100.0 * (double)st.cpu_ns / (double)st.wall_ns, statm_ms,
		       (unsigned long long)st.smaps_reads, (unsigned long long)st.moved_reads);
		printf("a walk: %.2f ms in the sampler, %.2f ms back to back (baseline) = %.2f ms per GiB resident\n",
		       per_walk, baseline_ms, baseline_ms / gib);
		printf("reserve for the oldest at the end: %.0f%% of the walk budget; a rotation at the sampler's "
		       "cost per walk: %.0f s with all of it\n", 100 * st.reserve,
		       (double)n * per_walk / 1e3 / (budget - statm_ms / 1e3));
		printf("PSS age at the end:\n");
		print_dist("idle processes", idle, ni);
		print_dist("moving processes", moving, nm);
		printf("  worst PSS age from the end of the first rotation (t=%d s) on: %.1f s\n", all_read_at,
		       worst_steady);
		printf("time from a move to a fresh PSS (%d moves, %d not walked by the end):\n", nmoves, notyet);
		print_dist("growth or release, RSS +-6.7%", lat, nl);
		if (ncg)
			print_dist("copy-on-write, cgroup usage +20 MB", lat_cow, nlc);
	}
	fflush(stdout);
	cohort_sampler_free(s);
	kill_all(parent, pids, n);
	if (ncg || cg_base[0])
		cg_teardown(ncg);
	cg_base[0] = '\0';
	return 0;
}

/* The THP mode: "always", "madvise" or "never" (the bracketed one); "" when unknown. */
static void thp_mode(char *buf, size_t size)
{
	char text[256], *a, *b;
	int fd = open(THP_PATH, O_RDONLY);
	ssize_t len = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;

	buf[0] = '\0';
	if (fd >= 0)
		close(fd);
	if (len <= 0)
		return;
	text[len] = '\0';
	a = strchr(text, '[');
	b = a ? strchr(a, ']') : NULL;
	if (a && b && (size_t)(b - a) < size) {
		memcpy(buf, a + 1, (size_t)(b - a - 1));
		buf[b - a - 1] = '\0';
	}
}

static int thp_set(const char *mode)
{
	int fd = open(THP_PATH, O_WRONLY);
	int ok = fd >= 0 && write(fd, mode, strlen(mode)) == (ssize_t)strlen(mode);

	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
	int quick = getenv("BENCH_QUICK") != NULL;
	int seconds = argc > 1 ? atoi(argv[1]) : quick ? 60 : 240, n = argc > 2 ? atoi(argv[2]) : quick ? 64 : 256;
	size_t size = (size_t)(argc > 3 ? atoi(argv[3]) : 300) * MB;
	const char *only = getenv("BENCH_THP"), *pct = getenv("BENCH_BUDGET");
	double budget = pct ? atof(pct) / 100 : 0.01;
	char mode[32];
	int rc = 0;

	if (seconds < 20 || seconds > 3600 || n < 16 || n > NPROC_MAX || size < 32 * MB || size > 8192 * MB) {
		fprintf(stderr, "usage: bench-pss-fresh [SECONDS 20-3600 [PROCESSES 16-%d [MB 32-8192]]]\n", NPROC_MAX);
		return 2;
	}
	if (!(budget > 0 && budget <= 1)) {
		fprintf(stderr, "bench-pss-fresh: BENCH_BUDGET is a percentage of a core, in (0, 100]\n");
		return 2;
	}
	thp_mode(mode, sizeof(mode));
	printf("transparent huge pages: %s is [%s]\n", THP_PATH, mode[0] ? mode : "unknown");
	if (!only || strcmp(only, "0") == 0)
		rc |= run(0, seconds, n, size, budget) < 0;
	if (!only || strcmp(only, "1") == 0) {
		if (strcmp(mode, "never") == 0 && geteuid() == 0 && thp_set("madvise") == 0) {
			printf("set to madvise for this run\n");
			rc |= run(1, seconds, n, size, budget) < 0;
			if (thp_set("never") < 0)
				fprintf(stderr, "bench-pss-fresh: could not restore %s to never\n", THP_PATH);
		} else if (strcmp(mode, "always") == 0 || strcmp(mode, "madvise") == 0) {
			rc |= run(1, seconds, n, size, budget) < 0;
		} else {
			printf("\n### transparent huge pages: not measured (the mode is '%s' and the bench is not root)\n",
			       mode);
		}
	}
	return rc;
}
