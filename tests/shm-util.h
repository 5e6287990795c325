/* shm-util.h - helpers of the shared-memory tests; see shm-util.c. */
#ifndef COHORT_TEST_SHM_UTIL_H
#define COHORT_TEST_SHM_UTIL_H

#include "cohort.h"

#include <stddef.h>
#include <sys/types.h>

/* Shared anonymous memory of size bytes, inherited by helper processes; fails the test when mmap does. */
void *shm_test_shared(size_t size);

/* Options for segments in the test's own directory, job "test", the message into why (why_size bytes, may be 0). */
void shm_test_opts(struct cohort_seg_options *o, char *why, size_t why_size);

/* Wait (20 s at most) for helper pid: its exit code, or 128 + the signal that killed it. */
int shm_test_wait(pid_t pid);

#endif
