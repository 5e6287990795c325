/* shm-util.c - helpers of the shared-memory tests (test-seg.c, test-mutex.c, test-sync.c, test-queue.c, test-arena.c). */
#include "harness.h"
#include "shm-util.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/wait.h>

/* Shared anonymous memory, inherited by helper processes. */
void *shm_test_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK_MSG(p != MAP_FAILED, "mmap: %s", strerror(errno));
	return p;
}

void shm_test_opts(struct cohort_seg_options *o, char *why, size_t why_size)
{
	memset(o, 0, sizeof(*o));
	o->dir = test_tmpdir();
	o->job = "test";
	o->why = why;
	o->why_size = why_size;
	if (why_size)
		why[0] = '\0';
}

int shm_test_wait(pid_t pid)
{
	int st = helper_wait(pid, 20000);

	CHECK_MSG(st != -1, "helper %d did not finish in 20 s", (int)pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
