/*
 * reap.h - what a supervisor killed with SIGKILL left behind: the worker
 * cgroups it made, the processes still in them (children that escaped the
 * parent-death signal: grandchildren, setsid daemons) and the segments of
 * its local job. The next `cohort run` and `cohort shm gc` take them.
 */
#ifndef COHORT_REAP_H
#define COHORT_REAP_H

#include "cli.h"

/* What one dead supervisor left, and what became of it. */
struct reaped {
	pid_t supervisor;
	char cgroup[COHORT_PATH_MAX];
	unsigned killed;           /* processes found in its cgroups and killed */
	unsigned left;             /* processes still there when cohort gave up waiting */
	unsigned cgroups;          /* cgroups removed (its own and its workers') */
	unsigned segments;         /* segments of job local-<pid> removed */
	int error;                 /* 0, or why its cgroup could not be removed (-errno) */
};

/*
 * Find the cgroups of dead supervisors under the caller's own memory
 * cgroup (cohort_workcg_orphans()), kill every process in them (cgroup.kill
 * on v2 where there is one, else SIGKILL to each pid of cgroup.procs, in
 * rounds until none is left or 5 s have passed), remove them, and, when
 * segments is true, remove the segments of each one's local job
 * (local-<pid>) that `cohort shm gc` judges orphaned. dry_run kills and
 * removes nothing and says what would go. On return *ret is a malloc'd
 * array (the caller frees it) of *ret_n entries. Returns 0, or -errno
 * when the cgroups could not be read (no cgroup, no permission: nothing
 * is then done, which is not an error for the callers).
 */
int reap_dead_supervisors(const struct cohort_probe *probe, bool dry_run, bool segments,
                          struct reaped **ret, size_t *ret_n);

#endif
