/*
 * bench-watch-scale.c - what `cohort run` costs as the workers grow: 64,
 * 256 and 1024 workers running sleep(1), one sample a second, against the
 * least any per-process sampler must do, measured in the same run.
 *
 *   build/bench/bench-watch-scale [REPEATS] [SECONDS]
 *
 * For each size, REPEATS times (default 3): `cohort run -q --no-record
 * --enforce watch -i 1 -n N -- sleep ...`; after 5 s of start-up (the
 * spawns and first page walks are not timed), the supervisor's CPU
 * (utime + stime from /proc) over SECONDS (default 10). Then, with the
 * same workers alive, the baseline: a child process that reads
 * /proc/PID/statm of every worker once a second for as long, its CPU from
 * getrusage. Printed: the supervisor's share of one core (median, min and
 * max), the baseline's, and their ratio.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXW 1024

/* The supervisor's children: the workers. */
static int workers_of(pid_t sup, pid_t *pids, int max)
{
	char path[64], buf[1 << 16];
	int fd, n = 0;
	ssize_t len;
	char *p, *end;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)sup, (int)sup);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	/* A seq_file gives at most a page a read: read to the end. */
	for (size_t used = 0;;) {
		len = read(fd, buf + used, sizeof(buf) - 1 - used);
		if (len <= 0) {
			buf[used] = '\0';
			break;
		}
		used += (size_t)len;
	}
	close(fd);
	for (p = buf; n < max; p = end) {
		long v = strtol(p, &end, 10);

		if (end == p)
			break;
		pids[n++] = (pid_t)v;
	}
	return n;
}

/* The baseline: statm of every worker, once a second, for seconds. */
static void statm_reader(const pid_t *pids, int n, int seconds)
{
	char path[64], buf[256];

	for (int s = 0; s < seconds; s++) {
		double t = bench_now();

		for (int i = 0; i < n; i++) {
			int fd;

			snprintf(path, sizeof(path), "/proc/%d/statm", (int)pids[i]);
			fd = open(path, O_RDONLY);
			if (fd >= 0) {
				if (read(fd, buf, sizeof(buf)) < 0)
					_exit(1);
				close(fd);
			}
		}
		if (bench_now() - t < 1)
			bench_nap(1 - (bench_now() - t));
	}
}

/* One run at n workers: the supervisor's share and the baseline's. Returns 0 or -1. */
static int one(const char *build, int n, int seconds, double *ret_sup, double *ret_base)
{
	char cohort[1024], nw[16], secs[16];
	static pid_t pids[MAXW];
	double c0, c1, t0, t1, b0, b1, span;
	pid_t sup, reader;
	int st, got;

	snprintf(cohort, sizeof(cohort), "%s/cohort", build);
	snprintf(nw, sizeof(nw), "%d", n);
	snprintf(secs, sizeof(secs), "%d", 2 * seconds + 20);
	sup = fork();
	if (sup == 0) {
		int nul = open("/dev/null", O_WRONLY);

		dup2(nul, 1);
		dup2(nul, 2);
		execl(cohort, "cohort", "run", "-q", "--no-record", "--enforce", "watch", "-i", "1", "-n", nw,
		      "--", "sleep", secs, (char *)NULL);
		_exit(127);
	}
	bench_nap(5);   /* start-up is not timed */
	got = workers_of(sup, pids, MAXW);
	c0 = bench_cpu_of(sup);
	t0 = bench_now();
	bench_nap(seconds);
	c1 = bench_cpu_of(sup);
	t1 = bench_now();
	if (c0 < 0 || c1 < 0 || got != n) {
		fprintf(stderr, "bench-watch-scale: %d workers: cohort run ended early or has %d workers\n", n, got);
		kill(sup, SIGKILL);
		waitpid(sup, &st, 0);
		return -1;
	}
	b0 = bench_children_cpu();
	span = bench_now();
	reader = fork();
	if (reader == 0) {
		statm_reader(pids, got, seconds);
		_exit(0);
	}
	waitpid(reader, &st, 0);
	b1 = bench_children_cpu();
	span = bench_now() - span;
	kill(sup, SIGTERM);
	waitpid(sup, &st, 0);
	*ret_sup = (c1 - c0) / (t1 - t0);
	*ret_base = (b1 - b0) / span;
	return 0;
}

int main(int argc, char **argv)
{
	const char *build = getenv("COHORT_BUILD") ? getenv("COHORT_BUILD") : "build";
	int repeats = argc > 1 ? atoi(argv[1]) : 3, seconds = argc > 2 ? atoi(argv[2]) : 10;
	static const int sizes[] = { 64, 256, 1024 };
	int rc = 0;

	if (repeats < 1 || repeats > 20 || seconds < 2 || seconds > 600) {
		fprintf(stderr, "usage: bench-watch-scale [REPEATS 1-20] [SECONDS 2-600]\n");
		return 2;
	}
	printf("cohort run -i 1 --enforce watch -n N -- sleep: supervisor CPU over %d s after 5 s of "
	       "start-up, %d runs each;\nbaseline: statm of every worker once a second (the least a "
	       "per-process sampler reads), same workers, same run\n", seconds, repeats);
	printf("%6s  %-28s  %-28s  %s\n", "N", "supervisor, % of a core", "baseline, % of a core",
	       "ratio (median)");
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		double sup[20], base[20];
		int got = 0;

		for (int i = 0; i < repeats; i++)
			if (one(build, sizes[k], seconds, &sup[got], &base[got]) == 0)
				got++;
		if (!got) {
			rc = 1;
			continue;
		}
		/* The median sorts in place: the ends are then the min and the max. */
		double sup_med = bench_median(sup, got), base_med = bench_median(base, got);

		printf("%6d  %6.3f (%.3f-%.3f)%9s  %6.3f (%.3f-%.3f)%9s  %.1fx\n", sizes[k],
		       100 * sup_med, 100 * sup[0], 100 * sup[got - 1], "",
		       100 * base_med, 100 * base[0], 100 * base[got - 1], "",
		       base_med > 0 ? sup_med / base_med : 0);
		fflush(stdout);
	}
	return rc;
}
