/*
 * workcg.c - memory cgroups made for workers, so that the kernel enforces
 * each worker's share and attributes every page of it, its children's
 * included.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_text(const char *dir, const char *file, const char *text)
{
	char path[COHORT_PATH_MAX + 64];
	ssize_t n, len = (ssize_t)strlen(text);
	int fd, r = 0;

	if (cohort__pathf(path, sizeof(path), "%s/%s", dir, file) < 0)
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	do
		n = write(fd, text, (size_t)len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		r = -errno;
	else if (n != len)
		r = -EIO;
	close(fd);
	return r;
}

static bool has_file(const char *dir, const char *file)
{
	char path[COHORT_PATH_MAX + 64];

	return cohort__pathf(path, sizeof(path), "%s/%s", dir, file) >= 0 && access(path, F_OK) == 0;
}

/* "+memory" into subtree_control, unless the memory controller is already on. */
static int v2_enable_memory(const char *dir)
{
	char buf[512], path[COHORT_PATH_MAX + 64];

	if (cohort__pathf(path, sizeof(path), "%s/cgroup.subtree_control", dir) < 0)
		return -ENAMETOOLONG;
	if (cohort__slurp(path, buf, sizeof(buf)) >= 0) {
		for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n"))
			if (strcmp(tok, "memory") == 0)
				return 0;
	}
	return write_text(dir, "cgroup.subtree_control", "+memory");
}

int cohort_workcg_create(const struct cohort_probe *probe, const char *parent,
                         const char *name, uint64_t limit, struct cohort_workcg *ret)
{
	struct cohort_workcg cg;
	char parent_dir[COHORT_PATH_MAX], value[32];
	int version = 0, r;

	if (!name || !*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	if (parent) {
		cohort__strlcpy(parent_dir, parent, sizeof(parent_dir));
		version = has_file(parent_dir, "cgroup.controllers") ? 2 : 1;
		if (version == 1 && !has_file(parent_dir, "memory.limit_in_bytes"))
			return COHORT_ENOCGROUP;
	} else {
		r = cohort_cgroup_of_pid(probe, 0, parent_dir, sizeof(parent_dir), &version);
		if (r < 0)
			return r;
	}
	memset(&cg, 0, sizeof(cg));
	cg.version = version;
	if (cohort__pathf(cg.dir, sizeof(cg.dir), "%s/%s", parent_dir, name) < 0)
		return -ENAMETOOLONG;
	if (version == 2) {
		r = v2_enable_memory(parent_dir);
		if (r < 0)
			return r;
	}
	if (mkdir(cg.dir, 0755) < 0)
		return -errno;
	if (limit) {
		snprintf(value, sizeof(value), "%llu", (unsigned long long)limit);
		r = write_text(cg.dir, version == 1 ? "memory.limit_in_bytes" : "memory.max", value);
		if (r < 0) {
			rmdir(cg.dir);
			return r;
		}
		/*
		 * The limit holds swap too: with swap on, a worker over its limit
		 * would otherwise swap instead of being stopped. v1 has the knob
		 * only with swap accounting (memsw files), v2 only with swap
		 * (memory.swap.max); without them there is no swap to hold.
		 */
		if (version == 1 && has_file(cg.dir, "memory.memsw.limit_in_bytes"))
			(void)write_text(cg.dir, "memory.memsw.limit_in_bytes", value);
		else if (version == 2 && has_file(cg.dir, "memory.swap.max"))
			(void)write_text(cg.dir, "memory.swap.max", "0");
	}
	*ret = cg;
	return 0;
}

int cohort_workcg_attach(const struct cohort_workcg *cg, pid_t pid)
{
	char text[32];

	snprintf(text, sizeof(text), "%d", (int)(pid ? pid : getpid()));
	return write_text(cg->dir, "cgroup.procs", text);
}

/* rmdir dir after its sub-cgroups; cgroup directories hold only files the kernel made. */
static int remove_tree(const char *dir, int depth)
{
	DIR *d;
	struct dirent *e;
	int r = 0;

	if (depth > 16)
		return -ELOOP;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d)) != NULL) {
		char sub[COHORT_PATH_MAX];

		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		if (cohort__pathf(sub, sizeof(sub), "%s/%s", dir, e->d_name) < 0)
			continue;
		int rr = remove_tree(sub, depth + 1);
		if (rr < 0 && r == 0)
			r = rr;
	}
	closedir(d);
	if (rmdir(dir) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	return r;
}

int cohort_workcg_destroy(const struct cohort_workcg *cg)
{
	if (!cg || !cg->dir[0])
		return 0;
	return remove_tree(cg->dir, 0);
}
