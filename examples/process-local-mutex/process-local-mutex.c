/*
 * process-local-mutex: a lock that looks right and excludes no one. The
 * counter is in shared memory, but the mutex is an ordinary variable of each process:
 * after fork every worker locks its own copy, so the lock excludes no one
 * and updates are still lost. Prints the count expected and the count got.
 *
 *   process-local-mutex [WORKERS [INCREMENTS]]
 */
#include <cohort.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* In each process's own memory: the mistake. */
static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;

int main(int argc, char **argv)
{
	int workers = argc > 1 ? atoi(argv[1]) : 4;
	long increments = argc > 2 ? atol(argv[2]) : 1000000;
	struct cohort_seg_options opt = { 0 };
	struct cohort_seg *seg;
	char why[512] = "";
	int r;

	if (workers < 1 || workers > 256 || increments < 1) {
		fprintf(stderr, "usage: process-local-mutex [WORKERS (1-256) [INCREMENTS]]\n");
		return 2;
	}
	opt.why = why;
	opt.why_size = sizeof(why);
	r = cohort_seg_create("process-local-mutex", 2 * sizeof(long), &opt, &seg);
	if (r < 0) {
		fprintf(stderr, "process-local-mutex: %s\n", why[0] ? why : cohort_strerror(r));
		return 1;
	}
	cohort_seg_unlink("process-local-mutex", &opt);
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
			for (long i = 0; i < increments; i++) {
				pthread_mutex_lock(&mtx);      /* this process's copy only */
				*counter = *counter + 1;
				pthread_mutex_unlock(&mtx);
			}
			_exit(0);
		}
	}
	*go = 1;
	while (wait(NULL) > 0)
		;
	long expected = workers * increments;
	printf("expected %ld, got %ld (%ld increments lost despite the mutex)\n", expected,
	       *counter, expected - *counter);
	cohort_seg_close(seg);
	return 0;
}
