/*
 * leak.c - a worker that keeps what it should drop.
 *
 * What it does wrong: every "request" builds a 1 MiB result and appends it
 * to a history list that nothing ever trims, so memory grows at a steady
 * rate until the job's limit. Nothing is "forgotten" here (every block is
 * still referenced, valgrind calls it "still reachable"): the bug is the
 * reference kept. The same happens in Python with a list, a dict used as a
 * cache, or a global that only grows. A function that returns a large
 * array it built is not such a leak: the array is freed when its last
 * reference goes.
 *
 * The right way: keep a bounded history (a ring of the last N results),
 * or none. Run with --fixed to see a flat line.
 *
 *   leak [--rate MiB_PER_S] [--seconds S] [--fixed] [--rank R]
 *
 * With --rank R only the worker whose COHORT_RANK is R leaks; the others
 * do the same work and keep nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BLOCK (1 << 20)
#define KEEP_FIXED 8

int main(int argc, char **argv)
{
	double rate = 8, seconds = 30;
	int fixed = 0, only = -1;
	const char *r = getenv("COHORT_RANK");
	int rank = r ? atoi(r) : 0;
	char **history = NULL;
	size_t n = 0, cap = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
			rate = atof(argv[++i]);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--fixed") == 0)
			fixed = 1;
		else if (strcmp(argv[i], "--rank") == 0 && i + 1 < argc)
			only = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: leak [--rate MiB_PER_S] [--seconds S] [--fixed] [--rank R]\n");
			return 2;
		}
	}
	if (only >= 0 && rank != only)
		fixed = 1;
	long steps = (long)(seconds * rate);
	struct timespec pause = { 0, (long)(1e9 / rate) };

	for (long i = 0; i < steps; i++) {
		char *result = malloc(BLOCK);

		if (!result)
			return 3;
		memset(result, (int)i, BLOCK);       /* the work */
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			history = realloc(history, cap * sizeof(*history));
			if (!history)
				return 3;
		}
		if (fixed && n == KEEP_FIXED) {      /* the right way: a bounded history */
			free(history[0]);
			memmove(history, history + 1, (KEEP_FIXED - 1) * sizeof(*history));
			n--;
		}
		history[n++] = result;               /* the wrong way: kept forever */
		nanosleep(&pause, NULL);
	}
	printf("rank %d: %zu results kept\n", rank, n);
	return 0;
}
