/*
 * bench-supervisor.c - what `cohort run` itself costs while it watches
 * 64 workers at a 1 s interval, against smem taking the same figures
 * (PSS and USS of the same processes) once a second in the same run.
 *
 *   build/bench/bench-supervisor [WORKERS] [HOLD] [SECONDS] [PSS_BUDGET_PERCENT]
 *
 * Defaults: 64 workers holding 50M each, 30 s, cohort run's default
 * page-walk budget. The supervisor's own CPU
 * (utime + stime of the cohort process, read from /proc) is measured over
 * the middle of the run, after start-up. The baseline is `smem -P` over
 * the same pids, run once a second for the same span, its CPU from
 * getrusage of its children.
 */
#include "cohort.h"

#include "bench.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *build = getenv("COHORT_BUILD") ? getenv("COHORT_BUILD") : "build";
	int workers = argc > 1 ? atoi(argv[1]) : 64;
	const char *hold = argc > 2 ? argv[2] : "50M";
	int seconds = argc > 3 ? atoi(argv[3]) : 30;
	const char *pss = argc > 4 ? argv[4] : NULL;
	char cmd[4096], secs[32], nw[32];
	double c0, c1, t0, t1, s0, s1, span;
	pid_t sup;
	int st;

	snprintf(secs, sizeof(secs), "%d", seconds + 5);
	snprintf(nw, sizeof(nw), "%d", workers);
	snprintf(cmd, sizeof(cmd), "%s/tests/runner", build);
	sup = fork();
	if (sup == 0) {
		char cohort[1024];

		snprintf(cohort, sizeof(cohort), "%s/cohort", build);
		const char *av[32];
		int n = 0;

		av[n++] = "cohort"; av[n++] = "run"; av[n++] = "-q"; av[n++] = "--no-record";
		av[n++] = "--enforce"; av[n++] = "watch"; av[n++] = "-i"; av[n++] = "1";
		if (pss) {
			av[n++] = "--pss-budget";
			av[n++] = pss;
		}
		av[n++] = "-n"; av[n++] = nw; av[n++] = "--"; av[n++] = cmd; av[n++] = "--helper";
		av[n++] = "worker"; av[n++] = "--hold"; av[n++] = hold; av[n++] = "--seconds";
		av[n++] = secs; av[n] = NULL;
		char *args[32];

		memcpy(args, av, sizeof(args));   /* execv's prototype predates const */
		execv(cohort, args);
		_exit(127);
	}
	bench_nap(5);   /* start-up: every worker allocated, first page walks done */
	c0 = bench_cpu_of(sup);
	t0 = bench_now();
	bench_nap(seconds / 2.0);
	c1 = bench_cpu_of(sup);
	t1 = bench_now();
	if (c0 < 0 || c1 < 0) {
		fprintf(stderr, "bench-supervisor: cohort run ended early\n");
		return 1;
	}

	/* Baseline: smem over the same workers, once a second, for as long. */
	snprintf(cmd, sizeof(cmd), "smem -c 'pid pss uss' -P 'runner --helper worker' >/dev/null 2>&1");
	s0 = bench_children_cpu();
	span = bench_now();
	for (int i = 0; i < (int)(seconds / 2.0); i++) {
		double t = bench_now();

		if (system(cmd) != 0) {
			fprintf(stderr, "bench-supervisor: smem failed (apt-get install smem)\n");
			break;
		}
		if (bench_now() - t < 1)
			bench_nap(1 - (bench_now() - t));
	}
	s1 = bench_children_cpu();
	span = bench_now() - span;

	kill(sup, SIGTERM);
	waitpid(sup, &st, 0);

	double sup_share = (c1 - c0) / (t1 - t0), smem_share = (s1 - s0) / span;
	printf("supervisor, %d workers x %s, 1 s interval: %.3f%% of one core (%.2f s CPU over %.0f s)\n",
	       workers, hold, 100 * sup_share, c1 - c0, t1 - t0);
	printf("smem once a second on the same workers:    %.3f%% of one core (%.2f s CPU over %.0f s)\n",
	       100 * smem_share, s1 - s0, span);
	printf("ratio smem / supervisor: %.1fx\n", sup_share > 0 ? smem_share / sup_share : 0);
	return 0;
}
