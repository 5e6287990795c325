/*
 * grow.c - a worker that needs more than its share.
 *
 * What it does wrong: it loads its whole input into memory (SIZE, in
 * steps of 16 MiB) although the job gave each worker less. Under SLURM the
 * kernel's OOM killer then ends one process of the job, and the job dies
 * with "Detected 1 oom-kill event". cohort run --enforce watch stops it
 * first and says why; --enforce cgroup lets the kernel do it, in a cgroup
 * of the worker's own, so the right one is killed and the kill is recorded.
 *
 * The right way: process the input in chunks (--chunked keeps 64 MiB at a
 * time), or ask for the memory it needs: cohort check says how much.
 *
 *   grow [--size SIZE_MiB] [--rank R] [--chunked] [--hold S]
 *
 * With --rank R only that worker grows; the others hold 32 MiB.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STEP (16 << 20)

int main(int argc, char **argv)
{
	long size_mib = 1024, only = -1;
	int chunked = 0;
	double hold = 2;
	const char *r = getenv("COHORT_RANK");
	long rank = r ? atol(r) : 0;
	struct timespec pause = { 0, 50 * 1000 * 1000 };

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
			size_mib = atol(argv[++i]);
		else if (strcmp(argv[i], "--rank") == 0 && i + 1 < argc)
			only = atol(argv[++i]);
		else if (strcmp(argv[i], "--chunked") == 0)
			chunked = 1;
		else if (strcmp(argv[i], "--hold") == 0 && i + 1 < argc)
			hold = atof(argv[++i]);
		else {
			fprintf(stderr, "usage: grow [--size SIZE_MiB] [--rank R] [--chunked] [--hold S]\n");
			return 2;
		}
	}
	if (only >= 0 && rank != only)
		size_mib = 32;
	long steps = size_mib * (1 << 20) / STEP;
	char *chunk[4096] = { 0 };

	for (long i = 0; i < steps && i < 4096; i++) {
		if (chunked && i >= 4) {              /* the right way: 4 chunks at a time */
			free(chunk[i - 4]);
			chunk[i - 4] = NULL;
		}
		chunk[i] = malloc(STEP);
		if (!chunk[i]) {
			fprintf(stderr, "rank %ld: out of memory after %ld MiB\n", rank, i * 16);
			return 3;
		}
		memset(chunk[i], 1, STEP);
		nanosleep(&pause, NULL);
	}
	struct timespec h = { (time_t)hold, (long)((hold - (double)(time_t)hold) * 1e9) };
	nanosleep(&h, NULL);
	printf("rank %ld: done\n", rank);
	return 0;
}
