/*
 * bench-procmem.c - what measuring memory costs.
 *
 *   1. One read of statm, status, smaps_rollup and smaps, for processes of
 *      1 MB to 10 GB resident; ratio against statm.
 *   2. The sampler on 256 processes of 300 MB (shared copy-on-write) at a
 *      1 s interval with the default 1% budget: its CPU share and the worst
 *      PSS age, against reading every smaps_rollup every tick.
 *   3. One snapshot of 5 processes sharing 300 MB by `cohort top --once
 *      --json`, `smem` and `ps`, as ratios.
 *
 * Every figure is a median. Environment: COHORT_BUILD (the build directory),
 * BENCH_MAX_GB (largest process, default 10; skipped when RAM is short),
 * BENCH_SAMPLER_S (sampler run, default 120), BENCH_QUICK=1 (short runs),
 * BENCH_ONLY=reads|snapshot|sampler (one part).
 */
#include "cohort.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MB (1024ULL * 1024)

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static uint64_t median(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n ? v[n / 2] : 0;
}

/*
 * What a child of spawn_tree does when told to move its memory: SIGUSR1
 * maps and touches MOVE_BYTES more (its RSS grows by 5.3% of 300 MB);
 * SIGUSR2 writes to MOVE_BYTES of the memory it shares copy-on-write, so
 * the kernel copies those pages (its PSS and USS move, its RSS does not).
 */
#define MOVE_BYTES (16 * MB)
static volatile sig_atomic_t move_asked;
static char *shared_mem;
static size_t shared_size, moved_off;

static void on_move(int sig)
{
	move_asked = sig;
}

static void child_loop(void)
{
	struct sigaction sa = { .sa_handler = on_move };

	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	for (;;) {
		pause();
		if (move_asked == SIGUSR1) {
			char *q = mmap(NULL, MOVE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (q != MAP_FAILED)
				for (size_t off = 0; off < MOVE_BYTES; off += 4096)
					q[off] = 1;
		} else if (move_asked == SIGUSR2 && moved_off + MOVE_BYTES <= shared_size) {
			for (size_t off = 0; off < MOVE_BYTES; off += 4096)
				shared_mem[moved_off + off]++;
			moved_off += MOVE_BYTES;
		}
		move_asked = 0;
	}
}

/*
 * A process holding size bytes of touched private memory, with nchildren
 * forked after the touch (sharing it copy-on-write). Returns the parent's
 * pid once all are ready. The children move their memory when told (see
 * child_loop).
 */
static pid_t spawn_tree(size_t size, int nchildren)
{
	int fds[2];
	pid_t pid;
	char c;

	if (pipe(fds) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		close(fds[0]);
		if (p == MAP_FAILED)
			_exit(1);
		for (size_t off = 0; off < size; off += 4096)
			p[off] = 1;
		for (int i = 0; i < nchildren; i++) {
			pid_t k = fork();

			if (k < 0)
				_exit(1);
			if (k == 0) {
				close(fds[1]);
				shared_mem = p;
				shared_size = size;
				child_loop();
			}
		}
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	if (read(fds[0], &c, 1) != 1) {
		close(fds[0]);
		return -1;
	}
	close(fds[0]);
	return pid;
}

static void kill_tree(pid_t pid)
{
	pid_t *pids;
	size_t n;

	if (cohort_pids_descendants(NULL, pid, &pids, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		cohort_pids_free(pids);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* ---- 1: cost per read ---- */

enum { R_STATM, R_STATUS, R_ROLLUP, R_SMAPS, R_COUNT };
static const char *const read_names[R_COUNT] = { "statm", "status", "smaps_rollup", "smaps" };

static int read_file(pid_t pid, int what)
{
	char path[64], buf[65536];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, read_names[what]);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	close(fd);
	return n < 0 ? -1 : 0;
}

static void bench_reads(void)
{
	static const unsigned sizes_mb[] = { 1, 300, 1024, 4096, 10240 };
	const char *maxs = getenv("BENCH_MAX_GB");
	struct cohort_alloc a;
	double max_mb = (maxs ? atof(maxs) : 10.0) * 1024;
	uint64_t avail_mb = 0;

	if (cohort_alloc_detect(NULL, &a) == 0)
		avail_mb = a.ram_available / MB;
	printf("### cost of one read (median CPU time of the reading thread; ratio to statm)\n");
	printf("%-10s %12s %12s %12s %12s   %s\n", "resident", "statm", "status", "smaps_rollup", "smaps",
	       "rollup/statm");
	for (size_t s = 0; s < sizeof(sizes_mb) / sizeof(sizes_mb[0]); s++) {
		uint64_t med[R_COUNT];
		pid_t pid;

		if (sizes_mb[s] > max_mb)
			continue;
		if (sizes_mb[s] + 2048 > avail_mb) {
			printf("%-10u skipped: %llu MB available\n", sizes_mb[s], (unsigned long long)avail_mb);
			continue;
		}
		pid = spawn_tree((size_t)sizes_mb[s] * MB, 0);
		if (pid < 0) {
			printf("%u MB: cannot start the process\n", sizes_mb[s]);
			continue;
		}
		for (int w = 0; w < R_COUNT; w++) {
			uint64_t t[41], deadline = now_ns(CLOCK_MONOTONIC) + 3000000000ULL;
			size_t n = 0;

			/* Up to 41 reads, at most ~3 s per file, after one warm-up read. */
			read_file(pid, w);
			while (n < 41 && (n < 5 || now_ns(CLOCK_MONOTONIC) < deadline)) {
				uint64_t t0 = now_ns(CLOCK_THREAD_CPUTIME_ID);

				read_file(pid, w);
				t[n++] = now_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
			}
			med[w] = median(t, n);
		}
		printf("%-10s %9.1f us %9.1f us %9.1f us %9.1f us   %.0fx\n",
		       sizes_mb[s] >= 1024 ? (sizes_mb[s] == 1024 ? "1 GB" : sizes_mb[s] == 4096 ? "4 GB" : "10 GB")
		                           : sizes_mb[s] == 1 ? "1 MB" : "300 MB",
		       med[R_STATM] / 1e3, med[R_STATUS] / 1e3, med[R_ROLLUP] / 1e3, med[R_SMAPS] / 1e3,
		       (double)med[R_ROLLUP] / (double)(med[R_STATM] ? med[R_STATM] : 1));
		fflush(stdout);
		kill_tree(pid);
	}
}

/* ---- 2: the sampler ---- */

#define MOVES_MAX 64

static void bench_sampler(int quick)
{
	const char *ds = getenv("BENCH_SAMPLER_S");
	int nproc = quick ? 32 : 256, seconds = ds ? atoi(ds) : quick ? 10 : 120;
	pid_t root = spawn_tree(300 * MB, nproc - 1), *pids;
	struct cohort_sampler *s;
	struct cohort_sampler_stats st;
	size_t n;
	uint64_t round = 0, worst = 0, p0, w0;
	uint64_t *round_t;
	struct {
		size_t index;
		int cow;
		uint64_t at_ns, fresh_ns;
	} moves[MOVES_MAX];
	int nmoves = 0;

	printf("\n### sampler: %d processes sharing 300 MB copy-on-write, 1 s interval, budget 1%%, %d s\n",
	       nproc, seconds);
	if (root < 0 || cohort_pids_descendants(NULL, root, &pids, &n) < 0) {
		printf("cannot start the processes\n");
		return;
	}
	/* Baseline: read every smaps_rollup once per tick (median of 3 full rounds). */
	round_t = calloc(3, sizeof(*round_t));
	for (int r = 0; r < 3; r++) {
		uint64_t t0 = now_ns(CLOCK_THREAD_CPUTIME_ID);

		for (size_t i = 0; i < n; i++) {
			struct cohort_procmem m;

			cohort_proc_smaps(NULL, pids[i], &m);
		}
		round_t[r] = now_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
	}
	round = median(round_t, 3);
	free(round_t);

	cohort_sampler_create(NULL, &s);
	for (size_t i = 0; i < n; i++)
		cohort_sampler_add(s, pids[i]);
	p0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	w0 = now_ns(CLOCK_MONOTONIC);
	for (int t = 0; t < seconds; t++) {
		struct timespec ts = { 1, 0 };
		uint64_t tick0 = now_ns(CLOCK_MONOTONIC), tick1;

		cohort_sampler_tick(s);
		tick1 = now_ns(CLOCK_MONOTONIC);
		cohort_sampler_stats(s, &st);
		if (st.worst_age_ns > worst)
			worst = st.worst_age_ns;
		/* Has a moved process been walked since its move? */
		for (int m = 0; m < nmoves; m++) {
			struct cohort_sample smp;

			if (moves[m].fresh_ns || cohort_sampler_get(s, moves[m].index, &smp) < 0 || !smp.have_pss)
				continue;
			if (tick0 - smp.mem_age_ns >= moves[m].at_ns)
				moves[m].fresh_ns = tick1 - moves[m].at_ns;
		}
		/*
		 * From 20 s on, every 3 s one child that has a PSS (so that it
		 * can move "since its last walk") and has not moved yet moves its
		 * memory: growth and copy-on-write in turn.
		 */
		if (t >= 20 && t % 3 == 2 && nmoves < MOVES_MAX && n > 1) {
			size_t idx = 0;
			struct cohort_sample smp;

			for (size_t j = 0; j + 1 < n && !idx; j++) {
				size_t c = 1 + ((size_t)nmoves * 37 + j) % (n - 1);
				int taken = 0;

				for (int m = 0; m < nmoves; m++)
					taken |= moves[m].index == c;
				if (!taken && cohort_sampler_get(s, c, &smp) == 0 && smp.have_pss && !smp.gone)
					idx = c;
			}
			if (idx) {
				moves[nmoves].index = idx;
				moves[nmoves].cow = nmoves % 2;
				moves[nmoves].at_ns = now_ns(CLOCK_MONOTONIC);
				moves[nmoves].fresh_ns = 0;
				kill(smp.pid, moves[nmoves].cow ? SIGUSR2 : SIGUSR1);
				nmoves++;
			}
		}
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	uint64_t cpu = now_ns(CLOCK_PROCESS_CPUTIME_ID) - p0, wall = now_ns(CLOCK_MONOTONIC) - w0;
	cohort_sampler_stats(s, &st);
	printf("every PSS every tick (baseline): %.1f ms CPU per 1 s tick = %.1f%% of a core\n", round / 1e6,
	       round / 1e7);
	printf("sampler: %.2f%% of a core (process CPU %.0f ms over %.0f s wall; reads alone %.0f ms), "
	       "%llu smaps reads in %llu ticks\n",
	       100.0 * (double)cpu / (double)wall, cpu / 1e6, wall / 1e9, st.cpu_ns / 1e6,
	       (unsigned long long)st.smaps_reads, (unsigned long long)st.ticks);
	double per_read = st.smaps_reads ? (double)st.smaps_cpu_ns / (double)st.smaps_reads : 0;
	printf("CPU per tick: statm of all %zu processes %.2f ms; per smaps_rollup read %.2f ms in the sampler "
	       "(%.2f ms in the back-to-back baseline round)\n",
	       n, (double)(st.cpu_ns - st.smaps_cpu_ns) / (double)st.ticks / 1e6, per_read / 1e6,
	       (double)round / (double)n / 1e6);
	printf("worst PSS age: %.0f s at the end, %.0f s at most during the run "
	       "(a full rotation at the sampler's cost per read: about %.0f s)\n",
	       st.worst_age_ns / 1e9, worst / 1e9,
	       (double)n * per_read / 1e9 / (0.01 - (double)(st.cpu_ns - st.smaps_cpu_ns) / (double)st.wall_ns));
	printf("ratio: sampler CPU / baseline CPU = 1/%.0f\n", (round / 1e9) / ((double)cpu / (double)wall));
	for (int cow = 0; cow < 2; cow++) {
		uint64_t lat[MOVES_MAX], worst_lat = 0;
		size_t nf = 0, nm = 0;

		for (int m = 0; m < nmoves; m++) {
			if (moves[m].cow != cow)
				continue;
			nm++;
			if (moves[m].fresh_ns) {
				lat[nf++] = moves[m].fresh_ns;
				if (moves[m].fresh_ns > worst_lat)
					worst_lat = moves[m].fresh_ns;
			}
		}
		printf("moved by %llu MB (%s): %zu processes, %zu walked since their move; time to a fresh PSS "
		       "median %.1f s, at most %.1f s\n", (unsigned long long)(MOVE_BYTES / MB),
		       cow ? "copy-on-write, RSS unchanged" : "RSS growth", nm, nf,
		       nf ? median(lat, nf) / 1e9 : 0.0, worst_lat / 1e9);
	}
	cohort_sampler_free(s);
	cohort_pids_free(pids);
	kill_tree(root);
}

/* ---- 3: one snapshot: cohort vs smem vs ps ---- */

/* Run argv, output to /dev/null; returns wall ns, and child CPU ns in *cpu. */
static int64_t run(char *const argv[], uint64_t *cpu)
{
	posix_spawn_file_actions_t fa;
	struct rusage ru;
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	int status;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	*cpu = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ULL +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ULL;
	return (int64_t)(now_ns(CLOCK_MONOTONIC) - t0);
}

static void bench_snapshot(const char *self, int quick)
{
	const char *b = getenv("COHORT_BUILD");
	char cohort[1024], pidarg[32], pslist[256];
	int fds[2], runs = quick ? 5 : 15;
	pid_t tree;
	char c;

	printf("\n### one snapshot of 5 processes sharing 300 MB (median of %d runs each, interleaved)\n", runs);
	snprintf(cohort, sizeof(cohort), "%s/cohort", b ? b : "build");
	/* The tree runs under its own name, so that smem -P selects exactly it. */
	if (pipe(fds) < 0)
		return;
	tree = fork();
	if (tree == 0) {
		char fd[16];

		close(fds[0]);
		snprintf(fd, sizeof(fd), "%d", fds[1]);
		execl(self, "cohort-bench-tree", "--tree", fd, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	if (read(fds[0], &c, 1) != 1) {
		printf("cannot start the tree\n");
		return;
	}
	close(fds[0]);
	pid_t *pids;
	size_t n, len = 0;
	if (cohort_pids_descendants(NULL, tree, &pids, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(pslist + len, sizeof(pslist) - len, "%s%d", i ? "," : "", (int)pids[i]);
	cohort_pids_free(pids);
	snprintf(pidarg, sizeof(pidarg), "%d", (int)tree);

	char *argv_cohort[] = { cohort, strdup("top"), strdup("--once"), strdup("--json"), strdup("--pid"), pidarg, NULL };
	char *argv_smem[] = { strdup("smem"), strdup("-c"), strdup("pid uss pss rss"), strdup("-P"),
	                      strdup("^cohort-bench-tree"), NULL };
	char *argv_ps[] = { strdup("ps"), strdup("-o"), strdup("pid,rss,comm"), strdup("-p"), pslist, NULL };
	char *const *argvs[3] = { argv_cohort, argv_smem, argv_ps };
	static const char *const names[3] = { "cohort top --once --json (RSS, PSS, USS, swap, cgroup)",
	                                      "smem -c 'pid uss pss rss' -P (RSS, PSS, USS)",
	                                      "ps -o pid,rss (RSS only)" };
	uint64_t wall[3][15], cpu[3][15], mw[3], mc[3];
	int ok[3] = { 1, 1, 1 };

	for (int r = 0; r < runs; r++)
		for (int k = 0; k < 3; k++) {
			int64_t w = ok[k] ? run(argvs[k], &cpu[k][r]) : -1;

			if (w < 0)
				ok[k] = 0;
			else
				wall[k][r] = (uint64_t)w;
		}
	for (int k = 0; k < 3; k++) {
		if (!ok[k]) {
			printf("%-58s failed or missing\n", names[k]);
			continue;
		}
		mw[k] = median(wall[k], (size_t)runs);
		mc[k] = median(cpu[k], (size_t)runs);
		printf("%-58s wall %7.1f ms  CPU %7.1f ms", names[k], mw[k] / 1e6, mc[k] / 1e6);
		if (k > 0 && ok[0])
			printf("   %.1fx cohort's wall, %.1fx its CPU", (double)mw[k] / (double)mw[0],
			       (double)mc[k] / (double)(mc[0] ? mc[0] : 1));
		printf("\n");
	}
	kill_tree(tree);
}

int main(int argc, char **argv)
{
	int quick = getenv("BENCH_QUICK") != NULL;

	if (argc == 3 && strcmp(argv[1], "--tree") == 0) {
		/* The tree for the snapshot: 300 MB, then 4 children. */
		int fd = atoi(argv[2]);
		char *p = mmap(NULL, 300 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return 1;
		memset(p, 1, 300 * MB);
		for (int i = 0; i < 4; i++)
			if (fork() == 0) {
				close(fd);
				for (;;)
					pause();
			}
		if (write(fd, "x", 1) != 1)
			return 1;
		close(fd);
		for (;;)
			pause();
	}
	const char *only = getenv("BENCH_ONLY");

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("bench-procmem: the cost of measuring memory\n");
	if (!only || strcmp(only, "reads") == 0)
		bench_reads();
	if (!only || strcmp(only, "snapshot") == 0)
		bench_snapshot(argv[0][0] == '/' ? argv[0] : realpath(argv[0], NULL), quick);
	if (!only || strcmp(only, "sampler") == 0)
		bench_sampler(quick);
	return 0;
}
