/*
 * bench-seg: creating a 1 GiB segment with every page reserved, against
 * the bare system calls doing the same reservation: shm_open(O_EXCL),
 * posix_fallocate, mmap, then munmap, close and shm_unlink. cohort adds the
 * capacity check (reading the allocation: cgroup, meminfo, statvfs), the
 * header, the guard page and the validation of the name. Median of RUNS
 * runs each, interleaved.
 */
#include <cohort.h>

#include "bench.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUNS 7
static size_t size = (size_t)1 << 30;

static double bare(void)
{
	char name[64];
	double t0 = bench_now();

	snprintf(name, sizeof(name), "/bench-seg-bare-%d", (int)getpid());
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || posix_fallocate(fd, 0, (off_t)size) != 0) {
		perror("bare shm_open/posix_fallocate");
		exit(1);
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	munmap(p, size);
	close(fd);
	shm_unlink(name);
	return (bench_now() - t0) * 1e3;
}

static double with_cohort(void)
{
	struct cohort_seg_options o = { .job = "bench" };
	struct cohort_seg *s;
	char why[512];
	double t0 = bench_now();

	o.why = why;
	o.why_size = sizeof(why);
	int r = cohort_seg_create("bench-seg", size, &o, &s);
	if (r < 0) {
		fprintf(stderr, "bench-seg: %s\n", why);
		exit(1);
	}
	cohort_seg_close(s);
	cohort_seg_unlink("bench-seg", &o);
	return (bench_now() - t0) * 1e3;
}

int main(int argc, char **argv)
{
	double b[RUNS], c[RUNS], mb, mc;

	if (argc > 1 && strcmp(argv[1], "--quick") == 0)
		size >>= 4;
	for (int r = 0; r < RUNS; r++) {
		b[r] = bare();
		c[r] = with_cohort();
	}
	mb = bench_median(b, RUNS);
	mc = bench_median(c, RUNS);
	printf("create + reserve + map + close + unlink of %zu MiB in /dev/shm, median of %d runs:\n",
	       size >> 20, RUNS);
	printf("  shm_open + posix_fallocate + mmap   %8.1f ms\n", mb);
	printf("  cohort_seg_create (checked)         %8.1f ms\n", mc);
	printf("  ratio cohort / bare = %.2fx\n", mc / mb);
	return 0;
}
