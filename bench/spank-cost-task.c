/*
 * spank-cost-task.c - the task of bench/spank-cost.sh's job: it holds MB of
 * touched private memory for SECONDS and touches a fiftieth of it again
 * every 100 ms, so that its resident set is steady and its pages stay in
 * use while its own CPU time stays negligible (the benchmark measures the
 * processes around the task, and a busy task would only load the shared
 * machine).
 *
 *   spank-cost-task MB SECONDS READY_DIR
 *
 * Once its memory is touched it writes READY_DIR/<SLURM_PROCID>, holding
 * the pid of its parent: slurmstepd forks each task itself, so that is the
 * process to measure, and every task's file there means the step is steady.
 * SECONDS count from then.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *rank = getenv("SLURM_PROCID");
	char path[4096], tmp[4200];
	long page = sysconf(_SC_PAGESIZE);
	size_t size, npages, slice, at = 0;
	double mb, secs, end;
	char *end_mb, *end_s;
	FILE *f;
	char *mem;

	if (argc != 4) {
		fprintf(stderr, "usage: %s MB SECONDS READY_DIR\n", argv[0]);
		return 2;
	}
	mb = strtod(argv[1], &end_mb);
	secs = strtod(argv[2], &end_s);
	if (*end_mb || *end_s || !(mb >= 1 && mb <= 65536) || !(secs > 0 && secs <= 86400)) {
		fprintf(stderr, "%s: MB from 1 to 65536 and SECONDS from 0 to 86400, not '%s' '%s'\n", argv[0],
		        argv[1], argv[2]);
		return 2;
	}
	if (!rank || strspn(rank, "0123456789") != strlen(rank) || !*rank) {
		fprintf(stderr, "%s: SLURM_PROCID is not set: run it with srun\n", argv[0]);
		return 2;
	}
	size = (size_t)(mb * 1048576);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "%s: mmap %zu bytes: %s\n", argv[0], size, strerror(errno));
		return 1;
	}
	memset(mem, 1, size);
	/* Written whole, then renamed: the benchmark never reads half a pid. */
	snprintf(path, sizeof(path), "%s/%s", argv[3], rank);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%ld\n", (long)getppid()) < 0 || fclose(f) != 0 || rename(tmp, path) < 0) {
		fprintf(stderr, "%s: %s: %s\n", argv[0], path, strerror(errno));
		return 1;
	}
	npages = size / (size_t)page;
	slice = npages / 50 ? npages / 50 : 1;
	end = now() + secs;
	while (now() < end) {
		struct timespec d = { 0, 100 * 1000 * 1000 };

		for (size_t i = 0; i < slice; i++, at = (at + 1) % npages)
			mem[at * (size_t)page]++;
		nanosleep(&d, NULL);
	}
	return 0;
}
