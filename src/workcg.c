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
#include <stdlib.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

int cohort_workcg_add_pid(const struct cohort_workcg *cg, pid_t pid)
{
	char text[32];

	snprintf(text, sizeof(text), "%d", (int)(pid ? pid : getpid()));
	return write_text(cg->dir, "cgroup.procs", text);
}

/* rmdir dir after its sub-cgroups; cgroup directories hold only files the kernel made. */
/*
 * The directory's entries through getdents64 into a buffer on the stack:
 * no opendir(), whose allocation fails when the supervisor is out of
 * memory, which is when its cgroups most need removing.
 */
struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static int remove_tree(const char *dir, int depth)
{
	char buf[4096] __attribute__((aligned(8)));
	int fd, r = 0;
	long n;

	if (depth > 16)
		return -ELOOP;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			const struct linux_dirent64 *e = (const void *)(buf + off);
			char sub[COHORT_PATH_MAX];

			off += e->d_reclen;
			if (e->d_reclen == 0)
				break;
			if (e->d_type != DT_DIR || e->d_name[0] == '.')
				continue;
			if (cohort__pathf(sub, sizeof(sub), "%s/%s", dir, e->d_name) < 0)
				continue;
			int rr = remove_tree(sub, depth + 1);
			if (rr < 0 && r == 0)
				r = rr;
		}
	}
	if (n < 0 && r == 0)
		r = -errno;
	close(fd);
	if (rmdir(dir) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	return r;
}

int cohort_workcg_remove(const struct cohort_workcg *cg)
{
	if (!cg || !cg->dir[0])
		return 0;
	return remove_tree(cg->dir, 0);
}

/* ---- what a killed supervisor left ---- */

int cohort_workcg_supervisor_name(const struct cohort_probe *probe, char *buf, size_t size)
{
	struct cohort__stat st;
	pid_t self = getpid();
	int r = cohort__proc_stat(cohort__proc_root(probe), self, &st);

	if (r < 0)
		return r;
	if (cohort__pathf(buf, size, "cohort-%d-%llu", (int)self, (unsigned long long)st.start) < 0)
		return -ENAMETOOLONG;
	return 0;
}

static int hold_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;

		close(fd);
		return e;
	}
	return fd;
}

int cohort_workcg_hold(const struct cohort_workcg *cg)
{
	return hold_dir(cg->dir);
}

/*
 * Is the supervisor a cgroup's name points to alive? "cohort-<pid>-<start>"
 * is alive while a process of that pid has that start time; the older
 * "cohort-<pid>" while a process of that pid exists (a reused pid keeps
 * it, which is the safe side). Returns 1 alive, 0 dead, -1 not a
 * supervisor's name.
 */
static int supervisor_alive(const char *proc, const char *name, pid_t *ret_pid)
{
	struct cohort__stat st;
	uint64_t pid, start = 0;
	const char *p;
	bool has_start = false;
	int r;

	if (strncmp(name, "cohort-", 7) != 0 || name[7] < '1' || name[7] > '9' ||
	    cohort__parse_u64(name + 7, &pid, &p) < 0 || pid > 0x7fffffff)
		return -1;
	if (*p == '-') {
		if (p[1] < '0' || p[1] > '9' || cohort__parse_u64(p + 1, &start, &p) < 0)
			return -1;
		has_start = true;
	}
	if (*p != '\0')
		return -1;
	*ret_pid = (pid_t)pid;
	r = cohort__proc_stat(proc, (pid_t)pid, &st);
	if (r == -ESRCH || r == -ENOENT)
		return 0;
	if (r < 0)
		return 1;   /* cannot tell: alive */
	return !has_start || st.start == start;
}

void cohort_workcg_orphans_free(struct cohort_workcg_orphan *o, size_t n)
{
	if (!o)
		return;
	for (size_t i = 0; i < n; i++)
		if (o[i].lock_fd >= 0)
			close(o[i].lock_fd);
	free(o);
}

int cohort_workcg_orphans(const struct cohort_probe *probe, const char *parent,
                          struct cohort_workcg_orphan **ret, size_t *ret_n)
{
	const char *proc = cohort__proc_root(probe);
	struct cohort_workcg_orphan *list = NULL;
	char dir[COHORT_PATH_MAX];
	size_t n = 0, cap = 0;
	struct dirent *e;
	int version = 0, r = 0;
	DIR *d;

	if (parent) {
		cohort__strlcpy(dir, parent, sizeof(dir));
		version = has_file(dir, "cgroup.controllers") ? 2 : 1;
	} else if ((r = cohort_cgroup_of_pid(probe, 0, dir, sizeof(dir), &version)) < 0) {
		return r;
	}
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		struct cohort_workcg_orphan o;
		pid_t pid = 0;
		int fd;

		if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)
			continue;
		if (supervisor_alive(proc, e->d_name, &pid) != 0)
			continue;
		memset(&o, 0, sizeof(o));
		o.cg.version = version;
		o.supervisor = pid;
		if (cohort__pathf(o.cg.dir, sizeof(o.cg.dir), "%s/%s", dir, e->d_name) < 0)
			continue;
		/* Held: a live supervisor whose pid means something else here (another namespace). */
		fd = hold_dir(o.cg.dir);
		if (fd < 0)
			continue;
		o.lock_fd = fd;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			void *p = realloc(list, ncap * sizeof(*list));

			if (!p) {
				close(fd);
				r = -ENOMEM;
				break;
			}
			list = p;
			cap = ncap;
		}
		list[n++] = o;
	}
	closedir(d);
	if (r < 0) {
		cohort_workcg_orphans_free(list, n);
		return r;
	}
	*ret = list;
	*ret_n = n;
	return 0;
}
