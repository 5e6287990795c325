/*
 * bench-mutex: cohort_mutex against glibc's robust process-shared pthread
 * mutex, lock + unlock, in ns per pair (lower is better):
 *
 *   uncontended: one process, the mutex in shared memory
 *   contended:   PROCS processes taking the same mutex around a shared
 *                counter increment (total time / total pairs)
 *
 * Each figure is the median of RUNS runs; the baseline runs in the same
 * process, interleaved with cohort's runs.
 */
#include <cohort.h>

#include "bench.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUNS 7
#define PROCS 4

static long uncontended_iters = 10000000;
static long contended_iters = 200000;   /* per process */

struct shared {
	cohort_mutex_t cm;
	_Alignas(64) pthread_mutex_t pm;
	_Alignas(64) volatile long counter;
};

static struct shared *sh;

static void glibc_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t at;

	pthread_mutexattr_init(&at);
	pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(m, &at);
	pthread_mutexattr_destroy(&at);
}

static void loop(int cohort, long n)
{
	if (cohort) {
		for (long i = 0; i < n; i++) {
			cohort_mutex_lock(&sh->cm, -1);
			sh->counter++;
			cohort_mutex_unlock(&sh->cm);
		}
	} else {
		for (long i = 0; i < n; i++) {
			pthread_mutex_lock(&sh->pm);
			sh->counter++;
			pthread_mutex_unlock(&sh->pm);
		}
	}
}

static double uncontended(int cohort)
{
	double t0 = bench_now();

	loop(cohort, uncontended_iters);
	return (bench_now() - t0) * 1e9 / (double)uncontended_iters;
}

static double contended(int cohort)
{
	pid_t pids[PROCS];
	double t0;

	sh->counter = 0;
	t0 = bench_now();
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			loop(cohort, contended_iters);
			_exit(0);
		}
	}
	for (int p = 0; p < PROCS; p++)
		waitpid(pids[p], NULL, 0);
	double t = bench_now() - t0;
	if (sh->counter != PROCS * contended_iters) {
		fprintf(stderr, "bench-mutex: lost updates (%ld)\n", sh->counter);
		exit(1);
	}
	return t * 1e9 / (double)(PROCS * contended_iters);
}

int main(int argc, char **argv)
{
	double c[RUNS], g[RUNS], mc, mg;

	if (argc > 1 && strcmp(argv[1], "--quick") == 0) {
		uncontended_iters /= 10;
		contended_iters /= 10;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	cohort_mutex_init(&sh->cm);
	glibc_init(&sh->pm);

	for (int r = 0; r < RUNS; r++) {
		g[r] = uncontended(0);
		c[r] = uncontended(1);
	}
	mg = bench_median(g, RUNS);
	mc = bench_median(c, RUNS);
	printf("lock+unlock, uncontended, %ld pairs per run, median of %d runs:\n", uncontended_iters, RUNS);
	printf("  glibc robust pshared   %7.1f ns\n  cohort_mutex           %7.1f ns\n", mg, mc);
	printf("  ratio cohort / glibc = %.2fx\n", mc / mg);

	for (int r = 0; r < RUNS; r++) {
		g[r] = contended(0);
		c[r] = contended(1);
	}
	mg = bench_median(g, RUNS);
	mc = bench_median(c, RUNS);
	printf("lock+unlock, %d processes contending, %ld pairs each per run, median of %d runs:\n",
	       PROCS, contended_iters, RUNS);
	printf("  glibc robust pshared   %7.1f ns\n  cohort_mutex           %7.1f ns\n", mg, mc);
	printf("  ratio cohort / glibc = %.2fx\n", mc / mg);
	return 0;
}
