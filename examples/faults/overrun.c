/*
 * overrun.c - a write past the end of a shared segment.
 *
 * What it does wrong: workers fill a grid of ROWS x COLS doubles in a
 * segment sized for ROWS x COLS, but the loop runs to ROWS inclusive (the
 * classic off-by-one), so the last row lands past the segment's end. With
 * a plain shm_open + mmap that write silently corrupts whatever follows, or
 * raises SIGBUS far from the bug. A cohort segment is followed by a guard
 * page: the first byte past the end faults at once, and cohort's report
 * says the address lies in the guard page after the segment.
 *
 * The right way (--fixed): loop to ROWS exclusive; derive the bound from
 * cohort_seg_size() rather than from a second copy of the dimensions.
 *
 *   overrun [--fixed]
 */
#include "cohort.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ROWS 256
#define COLS 512

int main(int argc, char **argv)
{
	struct cohort_seg *seg;
	char why[COHORT_MSG_MAX], name[64];
	struct cohort_seg_options o = { .why = why, .why_size = sizeof(why) };
	int fixed = argc > 1 && strcmp(argv[1], "--fixed") == 0;
	double *grid;
	int r;

	snprintf(name, sizeof(name), "grid-%d", (int)getpid());
	r = cohort_seg_create(name, ROWS * COLS * sizeof(double), &o, &seg);
	if (r < 0) {
		fprintf(stderr, "cannot create the segment: %s\n", why[0] ? why : cohort_strerror(r));
		return 1;
	}
	cohort_seg_unlink(name, &o);   /* gone when the last process unmaps it */
	grid = cohort_seg_data(seg);
	for (int row = 0; fixed ? row < ROWS : row <= ROWS; row++)
		for (int col = 0; col < COLS; col++)
			grid[row * COLS + col] = row + col / 1000.0;
	printf("grid filled\n");
	cohort_seg_close(seg);
	return 0;
}
