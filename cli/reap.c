/*
 * reap.c - take what a supervisor killed with SIGKILL left (reap.h).
 *
 * A supervisor's workers die with it (parent-death signal), but their own
 * children do not: a setsid daemon or a grandchild is reparented to init
 * and runs on, still charged to the worker cgroup, and keeps the job's
 * segments mapped. Kernel and cgroup know them all; this finds the
 * cgroups whose supervisor is gone (by pid and start time, and the hold
 * the kernel drops at death) and empties them.
 */
#include "reap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EMPTY_WAIT_S 5.0

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* v2's cgroup.kill (5.14+) kills the whole subtree at once, forks in flight included. */
static bool cgroup_kill(const char *dir)
{
	char path[COHORT_PATH_MAX + 16];
	bool ok;
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.kill", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	ok = write(fd, "1", 1) == 1;
	close(fd);
	return ok;
}

/*
 * Kill every process in dir and below, until none is left or the time is
 * up. Returns how many were killed; *ret_left those still there.
 */
static unsigned empty_cgroup(const struct cohort_probe *probe, const char *dir, unsigned *ret_left)
{
	double deadline = now() + EMPTY_WAIT_S;
	unsigned killed = 0;
	bool used_kill = false;

	*ret_left = 0;
	for (;;) {
		pid_t *pids = NULL;
		size_t n = 0;

		if (cohort_pids_cgroup(probe, dir, &pids, &n) < 0 || n == 0) {
			cohort_pids_free(pids);
			return killed;
		}
		if (!used_kill && cgroup_kill(dir)) {
			used_kill = true;
			killed += (unsigned)n;
		} else if (!used_kill) {
			/* v1: one pid at a time; a process forking meanwhile shows in the next round. */
			for (size_t i = 0; i < n; i++)
				if (kill(pids[i], SIGKILL) == 0)
					killed++;
		}
		cohort_pids_free(pids);
		if (now() >= deadline) {
			*ret_left = (unsigned)n;
			return killed;
		}
		usleep(10000);
	}
}

/* rmdir after the last process has left (they leave a moment after they die). */
static int remove_cgroup(const struct cohort_workcg *cg)
{
	double deadline = now() + EMPTY_WAIT_S;
	int r;

	while ((r = cohort_workcg_remove(cg)) == -EBUSY && now() < deadline)
		usleep(20000);
	return r;
}

static unsigned count_dirs(const char *dir, int depth)
{
	struct dirent *e;
	unsigned n = 1;
	DIR *d;

	if (depth > 16 || !(d = opendir(dir)))
		return depth ? 0 : 1;
	while ((e = readdir(d)) != NULL) {
		char sub[COHORT_PATH_MAX];

		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) < sizeof(sub))
			n += count_dirs(sub, depth + 1);
	}
	closedir(d);
	return n;
}

/* The segments of job local-<pid> that the gc rules call orphaned. */
static unsigned remove_segments(const struct cohort_probe *probe, pid_t pid, bool dry_run)
{
	struct cohort_shm_file *files;
	char job[32];
	unsigned removed = 0;
	size_t n;

	snprintf(job, sizeof(job), "local-%d", (int)pid);
	if (cohort_shm_list(probe, &files, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int v;

		if (!files[i].cohort || strcmp(files[i].job, job) != 0)
			continue;
		v = cohort_shm_remove(probe, &files[i], getuid(), dry_run);
		if (v == COHORT_SHM_REMOVED || v == COHORT_SHM_ORPHANED)
			removed++;
	}
	cohort_shm_files_free(files, n);
	return removed;
}

int reap_dead_supervisors(const struct cohort_probe *probe, bool dry_run, bool segments,
                          struct reaped **ret, size_t *ret_n)
{
	struct cohort_workcg_orphan *o;
	struct reaped *out;
	size_t n;
	int r = cohort_workcg_orphans(probe, NULL, &o, &n);

	if (r < 0)
		return r;
	out = calloc(n ? n : 1, sizeof(*out));
	if (!out) {
		cohort_workcg_orphans_free(o, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct reaped *x = &out[i];
		pid_t *pids = NULL;
		size_t np = 0;

		x->supervisor = o[i].supervisor;
		snprintf(x->cgroup, sizeof(x->cgroup), "%s", o[i].cg.dir);
		if (dry_run) {
			if (cohort_pids_cgroup(probe, o[i].cg.dir, &pids, &np) == 0)
				x->killed = (unsigned)np;
			cohort_pids_free(pids);
			x->cgroups = count_dirs(o[i].cg.dir, 0);
		} else {
			unsigned dirs = count_dirs(o[i].cg.dir, 0);

			x->killed = empty_cgroup(probe, o[i].cg.dir, &x->left);
			x->error = remove_cgroup(&o[i].cg);
			if (x->error == 0)
				x->cgroups = dirs;
		}
		/* Only once its processes are gone are the segments unmapped, and so removable. */
		if (segments)
			x->segments = remove_segments(probe, x->supervisor, dry_run);
	}
	cohort_workcg_orphans_free(o, n);
	*ret = out;
	*ret_n = n;
	return 0;
}
