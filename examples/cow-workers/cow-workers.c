/*
 * cow-workers - forked workers sharing their parent's memory copy-on-write,
 * as Python multiprocessing pools and DataLoader workers do.
 *
 *   cow-workers [--size SIZE] [--workers N] [--write PERCENT] [--hold SECONDS]
 *
 * The parent touches SIZE bytes (default 300M), then forks N-1 workers
 * (default N = 5). Each worker writes PERCENT of the pages (default 0):
 * every write copies a page, so each worker's private memory grows while
 * nothing leaks. All hold for SECONDS (default 60), then exit.
 *
 * Watch it with `cohort top --pid <parent>`: the RSS sum counts the shared
 * pages N times (what SLURM's jobacct_gather/linux charges), the PSS sum
 * once. It prints "ready <parent pid>" once every worker has done its writes.
 */
#include "cohort.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void usage(FILE *out)
{
	fprintf(out, "Usage: cow-workers [--size SIZE] [--workers N] [--write PERCENT] [--hold SECONDS]\n");
}

static int parse_long(const char *opt, const char *text, long min, long max, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || *end || end == text || v < min || v > max) {
		fprintf(stderr, "cow-workers: invalid value '%s' for %s: expected %ld to %ld\n", text, opt,
		        min, max);
		return -1;
	}
	*ret = v;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t size = 300ULL << 20;
	long workers = 5, write_pct = 0, hold = 60;
	int ready[2];
	char *mem;

	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (!val) {
			usage(stderr);
			return 2;
		}
		i++;
		if (strcmp(opt, "--size") == 0) {
			if (cohort_size_parse(val, &size) < 0 || size == 0) {
				fprintf(stderr, "cow-workers: invalid size '%s' for --size: expected 300M, 2G, ...\n", val);
				return 2;
			}
		} else if (strcmp(opt, "--workers") == 0) {
			if (parse_long(opt, val, 1, 4096, &workers) < 0)
				return 2;
		} else if (strcmp(opt, "--write") == 0) {
			if (parse_long(opt, val, 0, 100, &write_pct) < 0)
				return 2;
		} else if (strcmp(opt, "--hold") == 0) {
			if (parse_long(opt, val, 0, 86400, &hold) < 0)
				return 2;
		} else {
			usage(stderr);
			return 2;
		}
	}
	mem = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("cow-workers: mmap");
		return 3;
	}
	memset(mem, 1, (size_t)size);
	if (pipe(ready) < 0) {
		perror("cow-workers: pipe");
		return 3;
	}
	for (long w = 1; w < workers; w++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("cow-workers: fork");
			return 3;
		}
		if (pid == 0) {
			/* Write every page of the first PERCENT: each write copies a page. */
			size_t upto = (size_t)(size / 100 * (uint64_t)write_pct);

			close(ready[0]);
			for (size_t off = 0; off < upto; off += 4096)
				mem[off] = (char)w;
			if (write(ready[1], "w", 1) != 1)
				_exit(1);
			close(ready[1]);
			sleep((unsigned)hold);
			_exit(0);
		}
	}
	close(ready[1]);
	for (long w = 1; w < workers; w++) {
		char c;

		if (read(ready[0], &c, 1) != 1) {
			fprintf(stderr, "cow-workers: a worker died before it was ready\n");
			return 3;
		}
	}
	close(ready[0]);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	sleep((unsigned)hold);
	while (wait(NULL) > 0 || errno == EINTR)
		;
	return 0;
}
