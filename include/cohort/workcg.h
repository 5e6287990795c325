/*
 * cohort/workcg.h - a memory cgroup per worker.
 *
 * Part of libcohort; include <cohort.h> for all of it. The conventions of
 * the whole API are at the top of cohort.h.
 */
#ifndef COHORT_WORKCG_H
#define COHORT_WORKCG_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- child cgroups for workers ---- */

/*
 * A memory cgroup cohort made for workers, under the caller's own (cgroup
 * v1, or a delegated v2 subtree). The kernel then enforces each worker's
 * limit and counts its memory exactly, descendants included.
 */
struct cohort_workcg {
	int version;                    /* 1 or 2 */
	char dir[COHORT_PATH_MAX];      /* absolute directory */
};

/*
 * Create the memory cgroup NAME under parent (an absolute cgroup directory,
 * or NULL for the caller's own memory cgroup) with a memory limit (v1
 * memory.limit_in_bytes, v2 memory.max; 0 leaves it unlimited). On v2 the
 * memory controller is enabled in the parent's cgroup.subtree_control
 * first, which the kernel refuses when the parent holds processes and is
 * not the root: then -EBUSY. Returns 0 and fills *ret; -EEXIST when it
 * exists, -EACCES or -EPERM without the right, -EROFS when cgroups are
 * mounted read-only, COHORT_ENOCGROUP without a memory cgroup.
 */
COHORT_EXPORT int cohort_workcg_create(const struct cohort_probe *probe, const char *parent,
                                       const char *name, uint64_t limit,
                                       struct cohort_workcg *ret);

/* Move process pid (0: the caller) into the cgroup. Returns 0 or -errno. */
COHORT_EXPORT int cohort_workcg_add_pid(const struct cohort_workcg *cg, pid_t pid);

/*
 * Remove the cgroup and, depth first, any cgroup below it. Returns 0,
 * -EBUSY while processes remain in it, or -errno. Accepts NULL.
 */
COHORT_EXPORT int cohort_workcg_remove(const struct cohort_workcg *cg);


/* ---- what a killed supervisor left ---- */

/*
 * The name of the cgroup a supervisor makes for its workers,
 * "cohort-<pid>-<starttime>" (the caller's pid and its start time in clock
 * ticks after boot, field 22 of /proc/PID/stat): a later process that
 * gets the same pid has another start time, so a dead supervisor's
 * cgroups cannot be taken for a live one's. Returns 0, or -ESRCH /
 * COHORT_EPARSE when the caller's stat cannot be read, -ENAMETOOLONG.
 */
COHORT_EXPORT int cohort_workcg_supervisor_name(const struct cohort_probe *probe, char *buf,
                                                size_t size);

/*
 * Mark cg as in use for as long as the caller keeps the returned
 * descriptor open: an flock(2) on its directory, which the kernel drops
 * when the caller dies however it dies. cohort_workcg_orphans() never
 * lists a cgroup so held, whatever its name says (a supervisor in another
 * pid namespace). Returns a descriptor (close-on-exec) or -errno;
 * -EWOULDBLOCK when another process holds it.
 */
COHORT_EXPORT int cohort_workcg_hold(const struct cohort_workcg *cg);

/* A supervisor's cgroup whose supervisor is gone. */
struct cohort_workcg_orphan {
	struct cohort_workcg cg;        /* cohort-<pid>-<start>, its rank-K cgroups below */
	pid_t supervisor;               /* the dead supervisor's pid */
	int lock_fd;                    /* its hold, taken by cohort_workcg_orphans() */
};

/*
 * The supervisors' cgroups (cohort-<pid>-<start>, and cohort-<pid> of
 * older versions) directly under parent (an absolute directory, or NULL
 * for the caller's own memory cgroup) whose supervisor is dead: no
 * process with that pid and start time (for the old name: no process
 * with that pid), and no process holds it (cohort_workcg_hold()). Each
 * is returned held by the caller, so that two callers never reap the
 * same one. On success *ret is a malloc'd array (free it with
 * cohort_workcg_orphans_free()) and *ret_n its length, possibly 0.
 * Returns 0, the errors of cohort_cgroup_of_pid(), -errno of the
 * directory, or -ENOMEM.
 */
COHORT_EXPORT int cohort_workcg_orphans(const struct cohort_probe *probe, const char *parent,
                                        struct cohort_workcg_orphan **ret, size_t *ret_n);

/* Release the holds and free the array. Accepts NULL. */
COHORT_EXPORT void cohort_workcg_orphans_free(struct cohort_workcg_orphan *o, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* COHORT_WORKCG_H */
