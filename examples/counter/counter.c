/*
 * counter: the right way. The counter and its lock both live in the
 * segment, and the lock is cohort_mutex: process-shared, so it excludes
 * the other workers, and robust, so a worker killed while holding it does
 * not deadlock the rest (the next locker repairs and goes on). The count
 * is exact. With --kill one worker is killed while it works, to show the
 * others finish and report the recovery.
 *
 *   counter [--kill] [WORKERS [INCREMENTS]]
 */
#include <cohort.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct shared {
	cohort_mutex_t lock;
	long counter;
	long done[256];       /* increments each worker completed */
	int recovered;
};

static int worker(struct shared *s, int w, long increments)
{
	for (long i = 0; i < increments; i++) {
		int r = cohort_mutex_lock(&s->lock, 10000);

		if (r == COHORT_EOWNERDEAD) {
			/*
			 * A worker died holding the lock. Each increment and its
			 * "done" entry change together under the lock, so the
			 * counter is repaired from the done entries.
			 */
			long sum = 0;

			for (int k = 0; k < 256; k++)
				sum += s->done[k];
			s->counter = sum;
			s->recovered++;
			cohort_mutex_consistent(&s->lock);
		} else if (r < 0) {
			fprintf(stderr, "counter: worker %d: %s\n", w, cohort_strerror(r));
			return 1;
		}
		s->counter++;
		s->done[w]++;
		cohort_mutex_unlock(&s->lock);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cohort_seg_options opt = { 0 };
	struct cohort_seg *seg;
	char why[512] = "";
	int kill_one = 0, a = 1, r;

	if (argc > 1 && strcmp(argv[1], "--kill") == 0) {
		kill_one = 1;
		a++;
	}
	int workers = argc > a ? atoi(argv[a]) : 4;
	long increments = argc > a + 1 ? atol(argv[a + 1]) : 200000;
	if (workers < 1 || workers > 256 || increments < 1) {
		fprintf(stderr, "usage: counter [--kill] [WORKERS (1-256) [INCREMENTS]]\n");
		return 2;
	}
	opt.why = why;
	opt.why_size = sizeof(why);
	r = cohort_seg_create("counter", sizeof(struct shared), &opt, &seg);
	if (r < 0) {
		fprintf(stderr, "counter: %s\n", why[0] ? why : cohort_strerror(r));
		return 1;
	}
	cohort_seg_unlink("counter", &opt);
	struct shared *s = cohort_seg_data(seg);
	cohort_mutex_init(&s->lock);

	pid_t first = 0;
	for (int w = 0; w < workers; w++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0)
			_exit(worker(s, w, increments));
		if (w == 0)
			first = pid;
	}
	if (kill_one) {
		while (s->done[0] < increments / 10)
			usleep(100);
		kill(first, SIGKILL);
	}
	int status, failed = 0;
	while (wait(&status) > 0)
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			failed = 1;

	long expected = 0;
	for (int w = 0; w < workers; w++)
		expected += s->done[w];
	if (!kill_one)
		printf("expected %ld, got %ld\n", (long)workers * increments, s->counter);
	else
		printf("expected %ld (worker 0 killed after %ld), got %ld, lock recovered %d time(s)\n",
		       expected, s->done[0], s->counter, s->recovered);
	r = failed || s->counter != (kill_one ? expected : (long)workers * increments);
	cohort_seg_close(seg);
	return r;
}
