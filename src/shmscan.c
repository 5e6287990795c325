/*
 * shmscan.c - the files in /dev/shm: who owns them, which job made them,
 * which processes map them, and whether they may be removed.
 *
 * cohort's segments are named cohort.<uid>.<job>.<name>. Nothing here
 * reads a segment's contents: a leftover file is judged by its name, its
 * owner, /proc/<pid>/maps and fd scans, and at removal time by a write
 * lease, which the kernel grants only when no other open file (and so no
 * mapping, which keeps its file open) refers to the file.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

static const char *shm_root(const struct cohort_probe *probe)
{
	return probe && probe->shm_path ? probe->shm_path : "/dev/shm";
}

int cohort_shm_name_parse(const char *file, uid_t *ret_uid, char *ret_job, size_t job_size)
{
	const char *p, *dot;
	uint64_t uid;

	if (strncmp(file, "cohort.", 7) != 0)
		return 0;
	if (cohort__parse_u64(file + 7, &uid, &p) < 0 || file[7] == ' ' || *p != '.' ||
	    uid > UINT_MAX - 1)
		return 0;
	p++;
	dot = strchr(p, '.');
	if (!dot || dot == p || dot[1] == '\0' || (size_t)(dot - p) >= job_size)
		return 0;
	*ret_uid = (uid_t)uid;
	memcpy(ret_job, p, (size_t)(dot - p));
	ret_job[dot - p] = '\0';
	return 1;
}

void cohort_shm_files_free(struct cohort_shm_file *files, size_t n)
{
	if (!files)
		return;
	for (size_t i = 0; i < n; i++)
		free(files[i].mappers);
	free(files);
}

/* Which listed file does a mapping or an fd refer to? -1 for none. */
struct shm_index {
	struct cohort_shm_file *files;
	size_t n;
	dev_t *dev;
	ino_t *ino;
	char real[PATH_MAX];        /* the shm directory, resolved */
};

static ssize_t match_path(const struct shm_index *ix, const char *path)
{
	const char *name = NULL;
	size_t rlen = strlen(ix->real);

	if (strncmp(path, "/dev/shm/", 9) == 0)
		name = path + 9;
	else if (strncmp(path, ix->real, rlen) == 0 && path[rlen] == '/')
		name = path + rlen + 1;
	if (!name)
		return -1;
	/* "/dev/shm/x (deleted)" is an unlinked file, not the one listed under that name. */
	if (strstr(name, " (deleted)"))
		return -1;
	for (size_t i = 0; i < ix->n; i++)
		if (strcmp(ix->files[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

static ssize_t match_inode(const struct shm_index *ix, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < ix->n; i++)
		if (ix->ino[i] == ino && ix->dev[i] == dev)
			return (ssize_t)i;
	return -1;
}

static int add_mapper(struct cohort_shm_file *f, pid_t pid)
{
	pid_t *p;

	if (f->nmappers > 0 && f->mappers[f->nmappers - 1] == pid)
		return 0;
	p = realloc(f->mappers, (f->nmappers + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	f->mappers = p;
	f->mappers[f->nmappers++] = pid;
	return 0;
}

/*
 * Scan one process's maps. A line: "start-end perms offset MM:mm inode  path".
 * Returns 0, -ESRCH when gone, -EACCES when not ours to read.
 */
static int scan_maps(struct shm_index *ix, const char *proc, pid_t pid)
{
	char path[COHORT_PATH_MAX];
	char *line = NULL;
	size_t cap = 0;
	FILE *f;
	int r = 0;

	if (cohort__pathf(path, sizeof(path), "%s/%d/maps", proc, (int)pid) < 0)
		return -ENAMETOOLONG;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
	for (;;) {
		ssize_t len = getline(&line, &cap, f);
		unsigned maj, min;
		unsigned long long ino;
		int off = 0;
		ssize_t i;

		if (len < 0) {
			if (ferror(f))
				r = errno == EACCES || errno == EPERM ? -EACCES : -ESRCH;
			break;
		}
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (sscanf(line, "%*s %*s %*s %x:%x %llu %n", &maj, &min, &ino, &off) != 3 || off == 0)
			continue;
		if (ino == 0)
			continue;   /* anonymous memory */
		i = match_inode(ix, makedev(maj, min), (ino_t)ino);
		if (i < 0)
			i = match_path(ix, line + off);
		if (i >= 0 && add_mapper(&ix->files[i], pid) < 0) {
			r = -ENOMEM;
			break;
		}
	}
	free(line);
	fclose(f);
	return r;
}

/* Scan one process's open files. */
static int scan_fds(struct shm_index *ix, const char *proc, pid_t pid)
{
	char dir[COHORT_PATH_MAX];
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (cohort__pathf(dir, sizeof(dir), "%s/%d/fd", proc, (int)pid) < 0)
		return -ENAMETOOLONG;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
	while ((de = readdir(d)) != NULL) {
		char link[COHORT_PATH_MAX], target[PATH_MAX];
		ssize_t n, i;

		if (de->d_name[0] == '.')
			continue;
		if (cohort__pathf(link, sizeof(link), "%s/%s", dir, de->d_name) < 0)
			continue;
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		i = match_path(ix, target);
		if (i >= 0 && add_mapper(&ix->files[i], pid) < 0) {
			r = -ENOMEM;
			break;
		}
	}
	closedir(d);
	return r;
}

int cohort_shm_list(const struct cohort_probe *probe, struct cohort_shm_file **ret_files,
                    size_t *ret_n)
{
	const char *shm = shm_root(probe), *proc = cohort__proc_root(probe);
	struct shm_index ix = { 0 };
	size_t cap = 0;
	struct dirent *de;
	DIR *d;
	bool complete = true;
	size_t uninspected = 0, denied = 0;
	int r = 0;

	d = opendir(shm);
	if (!d)
		return -errno;
	if (!realpath(shm, ix.real))
		cohort__strlcpy(ix.real, shm, sizeof(ix.real));
	while ((de = readdir(d)) != NULL) {
		struct cohort_shm_file *f;
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;   /* gone meanwhile, or a directory, a link, a socket */
		if (strlen(de->d_name) >= sizeof(f->name))
			continue;
		if (ix.n == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			void *a = realloc(ix.files, ncap * sizeof(*ix.files));
			void *b = a ? realloc(ix.dev, ncap * sizeof(*ix.dev)) : NULL;
			void *c = b ? realloc(ix.ino, ncap * sizeof(*ix.ino)) : NULL;

			if (a)
				ix.files = a;
			if (b)
				ix.dev = b;
			if (!c) {
				r = -ENOMEM;
				goto out;
			}
			ix.ino = c;
			cap = ncap;
		}
		f = &ix.files[ix.n];
		memset(f, 0, sizeof(*f));
		cohort__strlcpy(f->name, de->d_name, sizeof(f->name));
		f->size = (uint64_t)st.st_size;
		f->allocated = (uint64_t)st.st_blocks * 512;
		f->uid = st.st_uid;
		f->ctime_s = (int64_t)st.st_ctim.tv_sec;
		f->cohort = cohort_shm_name_parse(f->name, &f->name_uid, f->job, sizeof(f->job));
		ix.dev[ix.n] = st.st_dev;
		ix.ino[ix.n] = st.st_ino;
		ix.n++;
	}
	if (ix.n > 0) {
		DIR *pd = opendir(proc);

		if (!pd) {
			r = -errno;
			goto out;
		}
		while ((de = readdir(pd)) != NULL) {
			pid_t pid = cohort__pid_of_name(de->d_name);

			if (!pid)
				continue;
			r = scan_maps(&ix, proc, pid);
			if (r == 0)
				r = scan_fds(&ix, proc, pid);
			if (r == -ENOMEM) {
				closedir(pd);
				goto out;
			}
			if (r < 0 && r != -ESRCH) {
				complete = false;
				uninspected++;
				if (r == -EACCES || r == -EPERM)
					denied++;
			}
			r = 0;
		}
		closedir(pd);
	}
	for (size_t i = 0; i < ix.n; i++) {
		ix.files[i].mappers_complete = complete;
		ix.files[i].uninspected = uninspected;
		ix.files[i].denied = denied;
		cohort__pids_sort_unique(ix.files[i].mappers, &ix.files[i].nmappers);
	}
	*ret_files = ix.files;
	*ret_n = ix.n;
	ix.files = NULL;
	ix.n = 0;
out:
	closedir(d);
	cohort_shm_files_free(ix.files, ix.n);
	free(ix.dev);
	free(ix.ino);
	return r;
}

/* Seconds since the epoch at which pid started, or -1 when it is gone. */
static int64_t start_time(const char *proc, pid_t pid)
{
	char buf[8192];
	uint64_t ticks, btime;
	pid_t ppid;
	long hz = sysconf(_SC_CLK_TCK);

	if (cohort__proc_ppid(proc, pid, &ppid, &ticks) < 0)
		return -1;
	if (cohort__slurpf(buf, sizeof(buf), "%s/stat", proc) < 0 ||
	    cohort__kv_u64(buf, "btime", false, &btime) < 0 || hz <= 0)
		return 0;   /* cannot tell when: take it as started long ago (alive) */
	return (int64_t)(btime + ticks / (uint64_t)hz);
}

enum cohort_job_state cohort_shm_job_state(const struct cohort_probe *probe,
                                           const struct cohort_shm_file *f)
{
	const char *proc = cohort__proc_root(probe);
	char dir[COHORT_PATH_MAX];
	const char *own;
	uint64_t v;
	const char *end;

	if (!f->cohort)
		return COHORT_JOB_UNKNOWN;
	if (strncmp(f->job, "local-", 6) == 0) {
		int64_t started;

		if (cohort__parse_u64(f->job + 6, &v, &end) < 0 || *end != '\0' || f->job[6] == ' ' ||
		    v == 0 || v > 0x7fffffff)
			return COHORT_JOB_UNKNOWN;
		/*
		 * The pid is the one the job saw in its own pid namespace, which
		 * may not be ours: the job's lease (a read lock its processes
		 * hold in their user's lease file, which the kernel drops at
		 * their death) is asked first. Without it (no lease file, or
		 * the job could not take one) the pid can only keep the file:
		 * a live process with that pid, started before the file.
		 */
		if (!probe || !probe->proc_root) {   /* not when replaying a fixture */
			if (cohort__lease_job_held(f->name_uid, (pid_t)v) == 1)
				return COHORT_JOB_ALIVE;
		}
		started = start_time(proc, (pid_t)v);
		if (started < 0)
			return COHORT_JOB_GONE;
		/*
		 * The creator started before it made the file, and the file's
		 * ctime is no earlier than its creation: a process with this pid
		 * that started after the ctime is a reuse of the pid. btime has
		 * a one-second grain, hence the slack.
		 */
		if (started > f->ctime_s + 1)
			return COHORT_JOB_GONE;
		return COHORT_JOB_ALIVE;
	}
	if (cohort__parse_u64(f->job, &v, &end) < 0 || *end != '\0' || f->job[0] == ' ')
		return COHORT_JOB_UNKNOWN;
	own = cohort__getenv(probe ? probe->envp : NULL, "SLURM_JOB_ID");
	if (own && strcmp(own, f->job) == 0)
		return COHORT_JOB_ALIVE;
	switch (cohort_cgroup_find_job(probe, f->job, dir, sizeof(dir))) {
	case 0:
		return COHORT_JOB_ALIVE;
	case -ENOENT:
		return COHORT_JOB_GONE;
	default:
		return COHORT_JOB_UNKNOWN;
	}
}

const char *cohort_shm_verdict_name(enum cohort_shm_verdict v)
{
	switch (v) {
	case COHORT_SHM_REMOVED:          return "removed";
	case COHORT_SHM_ORPHANED:         return "orphaned";
	case COHORT_SHM_KEEP_NOT_COHORT:  return "not a cohort segment";
	case COHORT_SHM_KEEP_OTHER_USER:  return "belongs to another user";
	case COHORT_SHM_KEEP_MAPPED:      return "mapped or open";
	case COHORT_SHM_KEEP_JOB_ALIVE:   return "its job still runs";
	case COHORT_SHM_KEEP_JOB_UNKNOWN: return "its job cannot be judged";
	case COHORT_SHM_KEEP_CHANGED:     return "changed since it was listed";
	}
	return "unknown";
}

enum cohort_shm_verdict cohort_shm_judge(const struct cohort_probe *probe,
                                         const struct cohort_shm_file *f, uid_t uid)
{
	enum cohort_job_state js;

	if (!f->cohort)
		return COHORT_SHM_KEEP_NOT_COHORT;
	if (f->uid != uid || f->name_uid != uid)
		return COHORT_SHM_KEEP_OTHER_USER;
	if (f->nmappers > 0)
		return COHORT_SHM_KEEP_MAPPED;
	js = cohort_shm_job_state(probe, f);
	if (js == COHORT_JOB_ALIVE)
		return COHORT_SHM_KEEP_JOB_ALIVE;
	if (js == COHORT_JOB_UNKNOWN)
		return COHORT_SHM_KEEP_JOB_UNKNOWN;
	return COHORT_SHM_ORPHANED;
}

int cohort_shm_remove(const struct cohort_probe *probe, const struct cohort_shm_file *f, uid_t uid,
                      int dry_run)
{
	const char *shm = shm_root(probe);
	struct stat st, again;
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	int dfd, fd, v, r;

	v = (int)cohort_shm_judge(probe, f, uid);
	if (v != COHORT_SHM_ORPHANED)
		return v;
	dfd = open(shm, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	/* O_NONBLOCK: never wait on someone else's lease. */
	fd = openat(dfd, f->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = errno == ENOENT ? (int)COHORT_SHM_KEEP_CHANGED : -errno;
		close(dfd);
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != uid ||
	    st.st_ctim.tv_sec != f->ctime_s) {
		r = COHORT_SHM_KEEP_CHANGED;
		goto out;
	}
	/*
	 * A write lease is granted only when ours is the file's one open
	 * file: any other opener, or a mapping (which holds its file open),
	 * makes it fail with EAGAIN. While we hold it, a new opener blocks
	 * (and we would get SIGIO, ignored here), so the check and the unlink
	 * do not race with a new user.
	 */
	sigaction(SIGIO, &ign, &old);
	if (fcntl(fd, F_SETLEASE, F_WRLCK) < 0) {
		r = errno == EAGAIN || errno == EBUSY ? (int)COHORT_SHM_KEEP_MAPPED : -errno;
		sigaction(SIGIO, &old, NULL);
		goto out;
	}
	if (fstatat(dfd, f->name, &again, AT_SYMLINK_NOFOLLOW) < 0 ||
	    again.st_ino != st.st_ino || again.st_dev != st.st_dev) {
		r = COHORT_SHM_KEEP_CHANGED;
	} else if (dry_run) {
		r = COHORT_SHM_ORPHANED;
	} else if (unlinkat(dfd, f->name, 0) < 0) {
		r = -errno;
	} else {
		r = COHORT_SHM_REMOVED;
	}
	fcntl(fd, F_SETLEASE, F_UNLCK);
	sigaction(SIGIO, &old, NULL);
out:
	close(fd);
	close(dfd);
	return r;
}
