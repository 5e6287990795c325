/*
 * helpers.c - small programs the tests run in other contexts (under srun,
 * as another user...), reached as `runner --helper NAME ARGS`.
 */
#include "harness.h"

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

int test_helper_main(int argc, char **argv);

int test_helper_main(int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "touch") == 0)
		return helper_touch(argc - 1, argv + 1);
	fprintf(stderr, "runner: no helper '%s'\n", argc ? argv[0] : "");
	return 2;
}
