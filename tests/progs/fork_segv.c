/*
 * fork_segv.c - a C program that forks 4 children, one of which crashes.
 *
 * Each child says its index and pid, then works (sleeps) for SECONDS;
 * child CRASH dereferences a bad pointer after 1 s instead (SIGSEGV).
 * The parent waits for all of them and, as most such programs do, exits
 * 1 when one failed, having said which.
 *
 *     fork_segv [CRASH [SECONDS]]     (defaults: 2, 4)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void nap(double secs)
{
	struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };

	while (nanosleep(&ts, &ts) != 0)
		;
}

int main(int argc, char **argv)
{
	int crash = argc > 1 ? atoi(argv[1]) : 2, failed = 0;
	double seconds = argc > 2 ? atof(argv[2]) : 4;
	pid_t pids[4];

	for (int k = 0; k < 4; k++) {
		pids[k] = fork();
		if (pids[k] < 0) {
			perror("fork_segv: fork");
			return 2;
		}
		if (pids[k] == 0) {
			printf("child %d is pid %d\n", k, (int)getpid());
			fflush(stdout);
			if (k == crash) {
				int *volatile bad = (int *)(uintptr_t)16;   /* no mapping holds it */

				nap(1);
				*bad = 1;
			}
			nap(seconds);
			_exit(0);
		}
	}
	for (int n = 0; n < 4; n++) {
		int st;
		pid_t pid = wait(&st);

		if (pid < 0)
			break;
		if (WIFSIGNALED(st)) {
			fprintf(stderr, "fork_segv: child pid %d killed by signal %d\n", (int)pid, WTERMSIG(st));
			failed = 1;
		} else if (WEXITSTATUS(st) != 0) {
			failed = 1;
		}
	}
	return failed;
}
