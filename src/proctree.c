/*
 * proctree.c - a worker's process tree by its children files, cheaply
 * enough to be walked every sampling tick.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool listed(const pid_t *pids, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

/*
 * Parse a children file ("12 34 ") onto the list. A pid already listed is
 * skipped: the kernel never makes a cycle, but a pid reused during the walk,
 * or a hostile tree, could, and the walk would then visit the same
 * processes over and over.
 */
static int push_children(const char *text, pid_t **out, size_t *n, size_t *cap)
{
	const char *p = text;
	int r = 0;

	while (r == 0 && *p) {
		uint64_t v;

		if (cohort__parse_u64(p, &v, &p) < 0)
			break;
		if (v > 0 && v <= INT32_MAX && !listed(*out, *n, (pid_t)v))
			r = cohort__pids_push(out, n, cap, (pid_t)v);
	}
	return r;
}

/* Append the children of pid's main thread (or of every thread) to the list. */
static int children_of(const char *root, pid_t pid, bool all_threads, pid_t **out, size_t *n,
                       size_t *cap)
{
	char dir[COHORT_PATH_MAX], buf[16384];
	struct dirent *e;
	DIR *d;
	int r = 0;
	ssize_t len;

	if (!all_threads) {
		len = cohort__slurpf(buf, sizeof(buf), "%s/%d/task/%d/children", root, (int)pid, (int)pid);
		if (len >= 0)
			return push_children(buf, out, n, cap);
		if (len != -ENOENT)
			return (int)len;
		/* Gone, or no children files on this kernel: tell them apart. */
		if (cohort__pathf(dir, sizeof(dir), "%s/%d", root, (int)pid) >= 0 && access(dir, F_OK) == 0)
			return -ENOSYS;
		return -ESRCH;
	}

	if (cohort__pathf(dir, sizeof(dir), "%s/%d/task", root, (int)pid) < 0)
		return -ENAMETOOLONG;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	while (r == 0 && (e = readdir(d)) != NULL) {

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		len = cohort__slurpf(buf, sizeof(buf), "%s/%s/children", dir, e->d_name);
		if (len == -ENOENT) {
			/* The thread went, or the kernel has no children files. */
			char probe_path[COHORT_PATH_MAX + 64];

			if (cohort__pathf(probe_path, sizeof(probe_path), "%s/%s", dir, e->d_name) >= 0 &&
			    access(probe_path, F_OK) == 0) {
				r = -ENOSYS;
				break;
			}
			continue;
		}
		if (len < 0)
			continue;
		r = push_children(buf, out, n, cap);
	}
	closedir(d);
	return r;
}

int cohort_pids_tree(const struct cohort_probe *probe, pid_t pid, int flags,
                     pid_t **ret_pids, size_t *ret_n)
{
	const char *root = cohort__proc_root(probe);
	pid_t *out = NULL;
	size_t n = 0, cap = 0;
	int r;

	if (pid <= 0)
		return -EINVAL;
	r = cohort__pids_push(&out, &n, &cap, pid);
	/* Breadth first over out[]; a pid seen twice (a race with reparenting) is kept once below. */
	for (size_t head = 0; r == 0 && head < n && n < 65536; head++) {
		r = children_of(root, out[head], flags & COHORT_TREE_ALL_THREADS, &out, &n, &cap);
		if (r == -ESRCH && head > 0)
			r = 0;   /* a descendant that just exited */
	}
	if (r == -ENOSYS) {
		free(out);
		return cohort_pids_descendants(probe, pid, ret_pids, ret_n);
	}
	if (r < 0) {
		free(out);
		return r;
	}
	cohort__pids_sort_unique(out, &n);
	*ret_pids = out;
	*ret_n = n;
	return 0;
}
