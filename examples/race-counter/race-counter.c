/*
 * race-counter: workers increment a counter in shared memory without a
 * lock. Each "*p = *p + 1" is a load and a store, not one step, so the
 * workers race: two that load the same value store the same result, and
 * one increment is lost. Prints the count expected and the count got.
 *
 *   race-counter [WORKERS [INCREMENTS]]
 */
#include <cohort.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int workers = argc > 1 ? atoi(argv[1]) : 4;
	long increments = argc > 2 ? atol(argv[2]) : 1000000;
	struct cohort_seg_options opt = { 0 };
	struct cohort_seg *seg;
	char why[512] = "";
	int r;

	if (workers < 1 || workers > 256 || increments < 1) {
		fprintf(stderr, "usage: race-counter [WORKERS (1-256) [INCREMENTS]]\n");
		return 2;
	}
	opt.why = why;
	opt.why_size = sizeof(why);
	r = cohort_seg_create("race-counter", 2 * sizeof(long), &opt, &seg);
	if (r < 0) {
		fprintf(stderr, "race-counter: %s\n", why[0] ? why : cohort_strerror(r));
		return 1;
	}
	cohort_seg_unlink("race-counter", &opt);   /* the mapping stays; nothing is left behind */
	volatile long *counter = cohort_seg_data(seg);
	volatile long *go = counter + 1;   /* all workers start together */

	for (int w = 0; w < workers; w++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			while (!*go)
				;
			for (long i = 0; i < increments; i++)
				*counter = *counter + 1;   /* the race: no lock */
			_exit(0);
		}
	}
	*go = 1;
	while (wait(NULL) > 0)
		;
	long expected = workers * increments;
	printf("expected %ld, got %ld (%ld increments lost)\n", expected, *counter,
	       expected - *counter);
	cohort_seg_close(seg);
	return 0;
}
