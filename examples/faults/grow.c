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
 *   grow [--size SIZE_MiB] [--rank R] [--rate MiB_PER_S] [--base MiB]
 *        [--chunked] [--hold S] [--graceful]
 *
 * It grows by rate/20 every 50 ms (--rate, 320 MiB/s by default), then
 * holds what it has for S seconds. With --rank R only that worker grows;
 * the others hold --base MiB (32 by default). --graceful makes SIGTERM an
 * exit 0, as many servers do: cohort run fails all the same when it was
 * cohort that stopped it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS (50 * 1000 * 1000)
#define MAX_CHUNKS 65536

static void graceful(int sig)
{
	(void)sig;
	_exit(0);
}

static void nap(double secs)
{
	struct timespec t = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };

	while (nanosleep(&t, &t) < 0)
		;
}

int main(int argc, char **argv)
{
	long size_mib = 1024, only = -1, base_mib = 32;
	double rate_mib = 320, hold = 2;
	int chunked = 0;
	const char *r = getenv("COHORT_RANK");
	long rank = r ? atol(r) : 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
			size_mib = atol(argv[++i]);
		else if (strcmp(argv[i], "--rank") == 0 && i + 1 < argc)
			only = atol(argv[++i]);
		else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
			rate_mib = atof(argv[++i]);
		else if (strcmp(argv[i], "--base") == 0 && i + 1 < argc)
			base_mib = atol(argv[++i]);
		else if (strcmp(argv[i], "--chunked") == 0)
			chunked = 1;
		else if (strcmp(argv[i], "--hold") == 0 && i + 1 < argc)
			hold = atof(argv[++i]);
		else if (strcmp(argv[i], "--graceful") == 0)
			signal(SIGTERM, graceful);
		else {
			fprintf(stderr, "usage: grow [--size SIZE_MiB] [--rank R] [--rate MiB_PER_S] [--base MiB] "
			        "[--chunked] [--hold S] [--graceful]\n");
			return 2;
		}
	}
	if (size_mib < 0 || base_mib < 0 || !(rate_mib >= 1 && rate_mib <= 1e6)) {
		fprintf(stderr, "grow: sizes must be >= 0 and the rate 1 to 1000000 MiB/s\n");
		return 2;
	}
	if (only >= 0 && rank != only)
		size_mib = base_mib;
	size_t step = (size_t)(rate_mib * (1 << 20) / 20);
	size_t total = (size_t)size_mib << 20, done = 0;
	static char *chunk[MAX_CHUNKS];
	static size_t chunk_len[MAX_CHUNKS];
	size_t kept = 0;
	long n = 0, first = 0;

	step = (step + 4095) & ~(size_t)4095;
	/* The others take their share at once: only the growing one grows. */
	if (only >= 0 && rank != only)
		step = total ? total : 4096;
	while (done < total && n < MAX_CHUNKS) {
		size_t len = total - done < step ? total - done : step;

		chunk[n] = malloc(len);
		if (!chunk[n]) {
			fprintf(stderr, "rank %ld: out of memory after %zu MiB\n", rank, done >> 20);
			return 3;
		}
		memset(chunk[n], 1, len);
		chunk_len[n++] = len;
		done += len;
		kept += len;
		/* The right way: 64 MiB at a time, the oldest dropped once it is processed. */
		while (chunked && kept > (size_t)64 << 20 && first < n - 1) {
			kept -= chunk_len[first];
			free(chunk[first]);
			chunk[first++] = NULL;
		}
		if (done < total)
			nap(TICK_NS / 1e9);
	}
	nap(hold);
	printf("rank %ld: done\n", rank);
	return 0;
}
