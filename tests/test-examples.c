/* test-examples.c - the shared-memory programs of examples/ behave as their comments say. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static bool example_path(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/examples/%s/%s", test_build_dir(), name, name);
	return access(buf, X_OK) == 0;
}

/* "expected E, got G": the figures an example printed. */
static void expected_got(const char *out, long *e, long *g)
{
	const char *p = strstr(out, "expected "), *q = strstr(out, ", got ");

	CHECK_MSG(p && q, "output: %s", out);
	*e = strtol(p + strlen("expected "), NULL, 10);
	*g = strtol(q + strlen(", got "), NULL, 10);
}

TEST_TIMEOUT(shm_examples_behave_as_described, 120)
{
	struct cmd_result r;
	char path[4096];
	long e, g;

	if (!example_path("counter", path, sizeof(path)))
		SKIP("examples not built (make builds them under %s/examples)", test_build_dir());

	cmd_run(&r, "%s 4 50000", path);
	CHECK_EQ(r.status, 0);
	expected_got(r.out, &e, &g);
	CHECK_EQ(e, 200000);
	CHECK_EQ(g, e);
	cmd_free(&r);

	cmd_run(&r, "%s --kill 3 100000", path);
	CHECK_MSG(r.status == 0, "counter --kill: %s%s", r.out, r.err);
	CHECK_CONTAINS(r.out, "lock recovered");
	expected_got(r.out, &e, &g);
	CHECK_EQ(g, e);
	cmd_free(&r);

	CHECK(example_path("workqueue", path, sizeof(path)));
	cmd_run(&r, "%s 3 50000", path);
	CHECK_MSG(r.status == 0, "workqueue: %s%s", r.out, r.err);
	CHECK_CONTAINS(r.out, "50000 received");
	CHECK_CONTAINS(r.out, ": match");
	cmd_free(&r);

	/* The wrong ways: they run, and never count more than was added. */
	CHECK(example_path("race-counter", path, sizeof(path)));
	cmd_run(&r, "%s 2 200000", path);
	CHECK_EQ(r.status, 0);
	expected_got(r.out, &e, &g);
	CHECK_EQ(e, 400000);
	CHECK(g > 0 && g <= e);
	cmd_free(&r);

	CHECK(example_path("process-local-mutex", path, sizeof(path)));
	cmd_run(&r, "%s 2 200000", path);
	CHECK_EQ(r.status, 0);
	expected_got(r.out, &e, &g);
	CHECK_EQ(e, 400000);
	CHECK(g > 0 && g <= e);
	cmd_free(&r);
}
