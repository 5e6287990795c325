/*
 * segfault.c - a write through a bad pointer.
 *
 * What it does wrong: it indexes an array with a count read from its
 * input without checking it, and writes far past the array's end into
 * memory that is not mapped: SIGSEGV. (A write just past the end of a
 * cohort segment lands in the segment's guard page instead, and cohort's
 * report says so.)
 *
 * The right way (--checked): check the index against the array's length.
 *
 *   segfault [--index N] [--checked]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int table[1024];   /* not static: the store must happen */

void store(long index, int value, int checked);

void store(long index, int value, int checked)
{
	if (checked && (index < 0 || index >= (long)(sizeof(table) / sizeof(table[0])))) {
		fprintf(stderr, "index %ld out of range 0..%zu\n", index, sizeof(table) / sizeof(table[0]) - 1);
		exit(1);
	}
	table[index] = value;
}

int main(int argc, char **argv)
{
	long index = 1L << 40;
	int checked = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--index") == 0 && i + 1 < argc)
			index = atol(argv[++i]);
		else if (strcmp(argv[i], "--checked") == 0)
			checked = 1;
		else {
			fprintf(stderr, "usage: segfault [--index N] [--checked]\n");
			return 2;
		}
	}
	store(index, 42, checked);
	printf("stored\n");
	return 0;
}
