/*
 * bench-publish - the cost of publishing a file atomically, against
 * writing it in place, measured in the same run.
 *
 * Four ways to replace a file, each run in turn (interleaved, so that the
 * noise of a shared machine falls on all of them alike):
 *
 *   write        open(O_TRUNC) + write + close          (baseline; not atomic)
 *   publish      cohort_publish_data(COHORT_PUBLISH_NOSYNC)   (atomic, not durable)
 *   write+fsync  open(O_TRUNC) + write + fsync + close  (durable; not atomic)
 *   publish+sync cohort_publish_data()                  (atomic and durable)
 *
 * for 4 KiB files (latency per file) and 256 MiB files (throughput).
 * Medians are quoted; ratios compare medians of the same run. Before each
 * 256 MiB file the filesystem is synced (untimed), so that each starts
 * with no dirty data left by the one before.
 *
 *   bench-publish [DIR]     (default: a new directory under $TMPDIR or /tmp)
 *   COHORT_BENCH_QUICK=1    fewer repetitions
 */
#include "cohort.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

enum { WRITE, PUBLISH, WRITE_SYNC, PUBLISH_SYNC, NWAYS };

static const char *const way_name[NWAYS] = { "write", "publish", "write+fsync", "publish+sync" };

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench-publish: %s: %s\n", what, cohort_strerror(err));
	exit(1);
}

static void write_in_place(const char *path, const char *buf, size_t len, int sync)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t done = 0;

	if (fd < 0)
		die(path, -errno);
	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("write", -errno);
		}
		done += (size_t)n;
	}
	if (sync && fsync(fd) < 0)
		die("fsync", -errno);
	if (close(fd) < 0)
		die("close", -errno);
}

/* Replace path in one of the four ways; returns the seconds it took. */
static double one(int way, const char *path, const char *buf, size_t len)
{
	double t0 = now_s();
	int r = 0;

	switch (way) {
	case WRITE:
		write_in_place(path, buf, len, 0);
		break;
	case WRITE_SYNC:
		write_in_place(path, buf, len, 1);
		break;
	case PUBLISH: {
		struct cohort_publish_opts o = { .flags = COHORT_PUBLISH_NOSYNC };

		r = cohort_publish_data(path, buf, len, &o);
		break;
	}
	case PUBLISH_SYNC:
		r = cohort_publish_data(path, buf, len, NULL);
		break;
	}
	if (r < 0)
		die("cohort_publish_data", r);
	return now_s() - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Write back everything dirty on dir's filesystem, untimed, so that a
 * large file does not pay for the one written before it.
 */
static void settle_fs(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || syncfs(fd) < 0)
		die("syncfs", -errno);
	close(fd);
}

/*
 * Run n rounds; each round replaces one file per way, in a rotating order.
 * Fills med[way] with the median seconds per file.
 */
static void measure(const char *dir, size_t len, unsigned n, unsigned nways, double med[NWAYS],
                    int settle)
{
	char *buf = malloc(len);
	double *t[NWAYS];
	char path[NWAYS][1024];

	if (!buf)
		die("malloc", -ENOMEM);
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(i * 131 + (i >> 12));
	for (unsigned w = 0; w < nways; w++) {
		t[w] = calloc(n, sizeof(double));
		if (!t[w])
			die("calloc", -ENOMEM);
		snprintf(path[w], sizeof(path[w]), "%s/%s.dat", dir, way_name[w]);
		one((int)w, path[w], buf, len); /* warm up: the file exists from now on */
	}
	for (unsigned i = 0; i < n; i++)
		for (unsigned k = 0; k < nways; k++) {
			unsigned w = (i + k) % nways;

			if (settle)
				settle_fs(dir);
			t[w][i] = one((int)w, path[w], buf, len);
		}
	for (unsigned w = 0; w < nways; w++) {
		med[w] = median(t[w], n);
		free(t[w]);
		unlink(path[w]);
	}
	free(buf);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	remove(p);
	return 0;
}

int main(int argc, char **argv)
{
	int quick = getenv("COHORT_BENCH_QUICK") != NULL;
	unsigned small_n = quick ? 100 : 500, large_n = quick ? 3 : 5;
	char dir[1024], made[1024] = "";
	const char *tmp = getenv("TMPDIR");
	double s[NWAYS], l[NWAYS];
	struct statfs sf;
	time_t now = time(NULL);
	char date[64];

	if (argc > 1) {
		snprintf(dir, sizeof(dir), "%s", argv[1]);
	} else {
		snprintf(made, sizeof(made), "%s/cohort-bench-publish-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(made))
			die(made, -errno);
		snprintf(dir, sizeof(dir), "%s", made);
	}
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%MZ", gmtime(&now));
	if (statfs(dir, &sf) < 0)
		die(dir, -errno);
	printf("# bench-publish %s in %s (filesystem magic 0x%lx)\n", date, dir, (unsigned long)sf.f_type);

	measure(dir, 4096, small_n, NWAYS, s, 0);
	printf("# 4 KiB files, %u rounds, median latency per file\n", small_n);
	printf("%-14s %10s %12s  %s\n", "way", "median_us", "files_per_s", "ratio");
	printf("%-14s %10.1f %12.0f  1.00 (baseline)\n", way_name[WRITE], s[WRITE] * 1e6, 1 / s[WRITE]);
	printf("%-14s %10.1f %12.0f  %.2f x write\n", way_name[PUBLISH], s[PUBLISH] * 1e6,
	       1 / s[PUBLISH], s[PUBLISH] / s[WRITE]);
	printf("%-14s %10.1f %12.0f  %.2f x write\n", way_name[WRITE_SYNC], s[WRITE_SYNC] * 1e6,
	       1 / s[WRITE_SYNC], s[WRITE_SYNC] / s[WRITE]);
	printf("%-14s %10.1f %12.0f  %.2f x write+fsync, %.2f x write\n", way_name[PUBLISH_SYNC],
	       s[PUBLISH_SYNC] * 1e6, 1 / s[PUBLISH_SYNC], s[PUBLISH_SYNC] / s[WRITE_SYNC],
	       s[PUBLISH_SYNC] / s[WRITE]);

	measure(dir, (size_t)256 << 20, large_n, NWAYS, l, 1);
	printf("# 256 MiB files, %u rounds, median time per file\n", large_n);
	printf("%-14s %10s %12s  %s\n", "way", "median_ms", "MiB_per_s", "ratio");
	printf("%-14s %10.1f %12.0f  1.00 (baseline)\n", way_name[WRITE], l[WRITE] * 1e3, 256 / l[WRITE]);
	printf("%-14s %10.1f %12.0f  %.2f x write\n", way_name[PUBLISH], l[PUBLISH] * 1e3,
	       256 / l[PUBLISH], l[PUBLISH] / l[WRITE]);
	printf("%-14s %10.1f %12.0f  %.2f x write\n", way_name[WRITE_SYNC], l[WRITE_SYNC] * 1e3,
	       256 / l[WRITE_SYNC], l[WRITE_SYNC] / l[WRITE]);
	printf("%-14s %10.1f %12.0f  %.2f x write+fsync, %.2f x write\n", way_name[PUBLISH_SYNC],
	       l[PUBLISH_SYNC] * 1e3, 256 / l[PUBLISH_SYNC], l[PUBLISH_SYNC] / l[WRITE_SYNC],
	       l[PUBLISH_SYNC] / l[WRITE]);

	if (made[0])
		nftw(made, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}
