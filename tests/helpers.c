/*
 * helpers.c - small programs the tests run in other contexts (under srun,
 * as another user...), reached as `runner --helper NAME ARGS`.
 */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* touch SIZE: allocate SIZE bytes and write every page, then exit 0. */
static int helper_touch(int argc, char **argv)
{
	uint64_t size;
	char *p;

	if (argc < 1 || cohort_size_parse(argv[0], &size) < 0) {
		fprintf(stderr, "touch: bad size\n");
		return 2;
	}
	p = malloc(size);
	if (!p) {
		fprintf(stderr, "touch: malloc failed\n");
		return 3;
	}
	for (uint64_t i = 0; i < size; i += 4096)
		p[i] = (char)i;
	printf("touched %llu bytes\n", (unsigned long long)size);
	fflush(stdout);
	free(p);
	return 0;
}

static void nap(double secs)
{
	struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };

	while (nanosleep(&ts, &ts) < 0)
		;
}

static uint64_t size_arg(const char *s)
{
	uint64_t v;

	if (cohort_size_parse(s, &v) < 0) {
		fprintf(stderr, "helper: bad size '%s'\n", s);
		exit(2);
	}
	return v;
}

/* Touch n bytes at p, one write per page. */
static void touch(char *p, uint64_t n, char value)
{
	for (uint64_t i = 0; i < n; i += 4096)
		p[i] = value;
}

/*
 * worker [--hold SIZE] [--seconds S] [--exit-rank R --exit-code C]
 *
 * A steady worker: holds SIZE for S seconds, in steps of 0.1 s; rank R
 * (COHORT_RANK) exits with C. Workers that leak or grow are the programs
 * of examples/faults (leak, grow), the one catalog of faulty workloads.
 */
static int helper_worker(int argc, char **argv)
{
	const char *r = getenv("COHORT_RANK");
	long rank = r ? atol(r) : 0, exit_rank = -1;
	uint64_t hold = 0;
	double seconds = 5;
	int exit_code = 0;
	char *base;

	for (int i = 0; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--hold") == 0) hold = size_arg(argv[i + 1]);
		else if (strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[i + 1]);
		else if (strcmp(argv[i], "--exit-rank") == 0) exit_rank = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--exit-code") == 0) exit_code = atoi(argv[i + 1]);
		else {
			fprintf(stderr, "worker: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	base = hold ? malloc(hold) : NULL;
	if (hold && !base)
		return 3;
	if (base)
		touch(base, hold, 1);
	nap(seconds);
	return rank == exit_rank ? exit_code : 0;
}

/*
 * cow SIZE CHILDREN SECONDS: the forked-workers pattern. The parent fills
 * SIZE, forks CHILDREN that wait 3 s (so that a sampler has read them as
 * they were at fork), then write every page over 2 s (each write copies a
 * page shared with the parent), then hold until SECONDS.
 */
static int helper_cow(int argc, char **argv)
{
	uint64_t size;
	int children;
	double seconds;
	char *p;

	if (argc < 3)
		return 2;
	size = size_arg(argv[0]);
	children = atoi(argv[1]);
	seconds = atof(argv[2]);
	p = malloc(size);
	if (!p)
		return 3;
	touch(p, size, 1);
	for (int c = 0; c < children; c++) {
		pid_t pid = fork();

		if (pid == 0) {
			nap(3);
			/* Write a tenth of the pages every 0.2 s. */
			for (int step = 0; step < 10; step++) {
				uint64_t from = size / 10 * (uint64_t)step, to = size / 10 * (uint64_t)(step + 1);

				for (uint64_t i = from; i < to; i += 4096)
					p[i] = (char)(c + 2);
				nap(0.2);
			}
			nap(seconds - 5 > 0 ? seconds - 5 : 0);
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
	return 0;
}

/*
 * cow-now SIZE CHILDREN SECONDS: the parent fills SIZE and forks CHILDREN;
 * child c (0-based) writes the first (c+1)/CHILDREN of it at once, copying
 * that much, then every process holds until SECONDS. The truth: SIZE x
 * (CHILDREN+1)/2 copied in all, whenever a sampler first looks.
 */
static int helper_cow_now(int argc, char **argv)
{
	uint64_t size;
	int children;
	double seconds;
	char *p;

	if (argc < 3)
		return 2;
	size = size_arg(argv[0]);
	children = atoi(argv[1]);
	seconds = atof(argv[2]);
	p = malloc(size);
	if (!p || children < 1)
		return 3;
	touch(p, size, 1);
	for (int c = 0; c < children; c++) {
		pid_t pid = fork();

		if (pid == 0) {
			uint64_t upto = size / (uint64_t)children * (uint64_t)(c + 1);

			for (uint64_t i = 0; i < upto; i += 4096)
				p[i] = (char)(c + 2);
			nap(seconds);
			_exit(0);
		}
	}
	nap(seconds);
	while (wait(NULL) > 0)
		;
	return 0;
}

/*
 * spike SIZE AT HOLD AFTER: at AT seconds, map and touch SIZE, hold it HOLD
 * seconds, unmap it, then live AFTER seconds more: a peak that a sampler
 * at a 1 s interval sees only by luck.
 */
static int helper_spike(int argc, char **argv)
{
	uint64_t size;
	char *p;

	if (argc < 4)
		return 2;
	size = size_arg(argv[0]);
	nap(atof(argv[1]));
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 3;
	touch(p, size, 1);
	nap(atof(argv[2]));
	munmap(p, size);
	nap(atof(argv[3]));
	return 0;
}

/* ignore-term SECONDS: a worker that ignores SIGTERM. */
static int helper_ignore_term(int argc, char **argv)
{
	signal(SIGTERM, SIG_IGN);
	nap(argc ? atof(argv[0]) : 30);
	return 0;
}

/* grandchild FILE: fork a grandchild that sleeps, write its pid to FILE, exit. */
static int helper_grandchild(int argc, char **argv)
{
	FILE *f;
	pid_t pid;

	if (argc < 1)
		return 2;
	pid = fork();
	if (pid == 0) {
		nap(100);
		_exit(0);
	}
	f = fopen(argv[0], "w");
	if (!f)
		return 3;
	fprintf(f, "%d\n", (int)pid);
	fclose(f);
	return 0;
}

/* bus-error FILE: map a file past its end and touch the page beyond: SIGBUS. */
static int helper_bus_error(int argc, char **argv)
{
	char *p;
	int fd;

	if (argc < 1)
		return 2;
	fd = open(argv[0], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 4096) < 0)
		return 3;
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 3;
	p[4096 + 100] = 1;
	return 0;
}

/*
 * children N BAD [HOW]: fork N children that each sleep a little and exit
 * 0, except child BAD (1-based, in fork order), which dies: HOW "segv"
 * (the default) writes through a null pointer, "kill" is killed by the
 * parent with SIGKILL. The parent reaps them all with waitpid and exits 1
 * when one did not end well.
 */
static int helper_children(int argc, char **argv)
{
	int n = argc >= 1 ? atoi(argv[0]) : 4, bad = argc >= 2 ? atoi(argv[1]) : 3, failed = 0;
	bool kill_it = argc >= 3 && strcmp(argv[2], "kill") == 0;
	pid_t pids[64];

	if (n < 1 || n > 64)
		return 2;
	/* Seen by a sample before anything dies: the children get their identity alive. */
	nap(0.5);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			return 3;
		if (pids[i] == 0) {
			nap(1.5);
			if (i + 1 == bad && !kill_it) {
				volatile int *null = NULL;

				*null = 1;
			}
			nap(i + 1 == bad ? 30 : 0.5);
			_exit(0);
		}
	}
	if (kill_it) {
		nap(1.5);
		kill(pids[bad - 1], SIGKILL);
	}
	for (int i = 0; i < n; i++) {
		int st;

		if (waitpid(pids[i], &st, 0) == pids[i] && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
			failed++;
	}
	printf("children: %d of %d failed\n", failed, n);
	return failed ? 1 : 0;
}

/* seg-leave NAME: a segment of the job (COHORT_JOB, SLURM_JOB_ID) created and left behind. */
static int helper_seg_leave(int argc, char **argv)
{
	struct cohort_seg *seg;
	int r;

	if (argc < 1)
		return 2;
	r = cohort_seg_create(argv[0], 1 << 20, NULL, &seg);
	if (r < 0) {
		fprintf(stderr, "seg-leave: %s: %s\n", argv[0], cohort_strerror(r));
		return 1;
	}
	cohort_seg_close(seg);  /* closed, never unlinked: what a crashed job leaves */
	return 0;
}

int test_helper_main(int argc, char **argv);

int test_helper_main(int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "touch") == 0)
		return helper_touch(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "worker") == 0)
		return helper_worker(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "cow") == 0)
		return helper_cow(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "spike") == 0)
		return helper_spike(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "cow-now") == 0)
		return helper_cow_now(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "ignore-term") == 0)
		return helper_ignore_term(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "bus-error") == 0)
		return helper_bus_error(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "grandchild") == 0)
		return helper_grandchild(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "children") == 0)
		return helper_children(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "seg-leave") == 0)
		return helper_seg_leave(argc - 1, argv + 1);
	fprintf(stderr, "runner: no helper '%s'\n", argc ? argv[0] : "");
	return 2;
}
