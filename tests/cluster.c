/*
 * cluster.c - the SLURM test cluster for the tests that use it: whether
 * it is up, and running a case under another configuration with the
 * default restored afterwards, whatever the case did.
 */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *slurm_cluster_dir(void)
{
	const char *s = getenv("COHORT_SLURM");

	if (!s)
		SKIP("the SLURM suite runs through make check, which starts the test cluster");
	if (strncmp(s, "failed", 6) == 0)
		test_fail(__FILE__, __LINE__, "SLURM test cluster: %s", s);
	if (strncmp(s, "up: ", 4) != 0)
		SKIP("SLURM test cluster %s", s);
	CHECK_MSG(getenv("SLURM_CONF") != NULL, "SLURM_CONF is not set for the test cluster");
	return s + 4;
}

const char *slurm_spank_dir(void)
{
	const char *dir = slurm_cluster_dir();
	char so[1024];
	struct stat st;

	snprintf(so, sizeof(so), "%s/spank_cohort.so", test_build_dir());
	if (stat(so, &st) < 0)
		SKIP("no %s: libslurm-dev is not installed (make spank)", so);
	return dir;
}

void slurm_set_plugstack(const char *dir, const char *opts)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/plugstack.conf", dir);
	f = fopen(path, "w");
	CHECK_MSG(f != NULL, "cannot write %s", path);
	fprintf(f, "optional %s/spank_cohort.so cohort=%s/cohort %s\n", test_build_dir(), test_build_dir(),
	        opts);
	fclose(f);
}

void slurm_reconfigure(const char *dir, const char *env)
{
	struct cmd_result r;

	cmd_run(&r, "%s %s/tests/slurm/cluster.sh start %s", env, test_src_dir(), dir);
	CHECK_MSG(r.status == 0, "reconfiguring the cluster (%s) failed: %s", env, r.err);
	cmd_free(&r);
}

void slurm_case(const char *dir, void (*fn)(void *), unsigned timeout_ms)
{
	static char dir_copy[1024];
	struct cmd_result r;
	pid_t pid;
	int st;

	snprintf(dir_copy, sizeof(dir_copy), "%s", dir);
	pid = helper_spawn(fn, dir_copy);
	st = helper_wait(pid, timeout_ms);
	if (st == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	/* Leave the cluster as it was found. */
	cmd_run(&r, "%s/tests/slurm/cluster.sh start %s", test_src_dir(), dir);
	CHECK_MSG(r.status == 0, "restoring the cluster failed: %s", r.err);
	cmd_free(&r);
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the case failed (status %d)", st);
}
