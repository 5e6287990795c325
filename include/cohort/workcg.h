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
COHORT_EXPORT int cohort_workcg_attach(const struct cohort_workcg *cg, pid_t pid);

/*
 * Remove the cgroup and, depth first, any cgroup below it. Returns 0,
 * -EBUSY while processes remain in it, or -errno. Accepts NULL.
 */
COHORT_EXPORT int cohort_workcg_destroy(const struct cohort_workcg *cg);

#ifdef __cplusplus
}
#endif

#endif /* COHORT_WORKCG_H */
