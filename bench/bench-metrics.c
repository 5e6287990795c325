/*
 * bench-metrics - the cost of one metrics file (cohort_metrics_format and
 * cohort_metrics_publish, as `cohort run --metrics` writes it), against
 * writing the same bytes in place, measured in the same run, for tasks of
 * 1, 16, 256 and 4096 workers. It tells what writing at every sample
 * (0.1 s while sampling is dense) would cost against every 5 s.
 *
 *   bench-metrics [DIR]     (default: a new directory under /tmp)
 *   COHORT_BENCH_QUICK=1    fewer repetitions
 */
#include "cohort.h"
#include "bench.h"

#include <fcntl.h>
#include <sys/stat.h>

static void die(const char *what, int err)
{
	fprintf(stderr, "bench-metrics: %s: %s\n", what, cohort_strerror(err));
	exit(1);
}

static void write_in_place(const char *path, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		die(path, -errno);
	if (write(fd, buf, len) != (ssize_t)len)
		die("write", -errno);
	close(fd);
}

int main(int argc, char **argv)
{
	static const unsigned sizes[] = { 1, 16, 256, 4096 };
	int quick = getenv("COHORT_BENCH_QUICK") != NULL;
	char dir[256], path[512], inplace[512];
	struct cohort_watch_totals tot = { .t = 10, .rss_sum = 1ULL << 30, .pss_sum = 1ULL << 29,
	                                   .uss_sum = 1ULL << 28, .has_cgroup = 1, .cg_usage = 1ULL << 30,
	                                   .cg_peak = 1ULL << 31, .cg_limit = 1ULL << 33, .ticks = 1000 };
	uint64_t events[COHORT_EVENT_KIND_MAX] = { 0 };

	if (argc > 1) {
		snprintf(dir, sizeof(dir), "%s", argv[1]);
	} else {
		snprintf(dir, sizeof(dir), "/tmp/bench-metrics-XXXXXX");
		if (!mkdtemp(dir))
			die("mkdtemp", -errno);
	}
	snprintf(path, sizeof(path), "%s/cohort.prom", dir);
	snprintf(inplace, sizeof(inplace), "%s/inplace.prom", dir);
	printf("workers  bytes     format      publish(NOSYNC)  write-in-place  publish/write  busy share at 5 s | at 0.1 s\n");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		unsigned n = sizes[s];
		int rounds = quick ? 10 : (n >= 4096 ? 40 : 400);
		struct cohort_worker_state *ws = calloc(n, sizeof(*ws));
		double *tf = calloc((size_t)rounds, sizeof(double)), *tp = calloc((size_t)rounds, sizeof(double)),
		       *tw = calloc((size_t)rounds, sizeof(double));
		struct cohort_publish_opts po = { .flags = COHORT_PUBLISH_NOSYNC };
		struct cohort_metrics_task t = {
			.jobid = "123456", .step = "0", .task = "3", .host = "node042", .totals = &tot,
			.workers = ws, .nworkers = n, .events = events,
		};
		size_t len = 0;
		double mf, mp, mw;

		if (!ws || !tf || !tp || !tw)
			die("calloc", -ENOMEM);
		for (unsigned k = 0; k < n; k++)
			ws[k] = (struct cohort_worker_state){
				.rank = k, .pid = 1000 + (pid_t)k, .running = 1, .nprocs = 4, .rss = 123456789,
				.pss = 23456789, .uss = 3456789, .used = 23456789, .peak_used = 33456789,
				.has_cgroup_usage = 1, .cg_usage = 22345678, .peak_cgroup = 32345678,
			};
		for (unsigned k = 0; k < n; k++)
			snprintf(ws[k].cgroup, sizeof(ws[k].cgroup), "/sys/fs/cgroup/w%u", k);
		/* Interleaved round by round, so that noise falls on the three alike. */
		for (int r = 0; r < rounds; r++) {
			char *text = NULL;
			double t0 = bench_now();
			int e = cohort_metrics_format(&t, 1, &text, &len);

			tf[r] = bench_now() - t0;
			if (e < 0)
				die("format", e);
			t0 = bench_now();
			e = cohort_metrics_publish(path, &t, 1, &po);
			tp[r] = bench_now() - t0;
			if (e < 0)
				die("publish", e);
			t0 = bench_now();
			write_in_place(inplace, text, len);
			tw[r] = bench_now() - t0;
			free(text);
		}
		mf = bench_median(tf, rounds);
		mp = bench_median(tp, rounds);
		mw = bench_median(tw, rounds);
		printf("%-8u %-9zu %8.1f us  %10.1f us   %10.1f us    %6.2f x       %7.4f %% | %7.3f %%\n", n, len,
		       mf * 1e6, mp * 1e6, mw * 1e6, mp / mw, mp / 5 * 100, mp / 0.1 * 100);
		free(ws);
		free(tf);
		free(tp);
		free(tw);
	}
	unlink(path);
	unlink(inplace);
	if (argc <= 1)
		rmdir(dir);
	return 0;
}
