/*
 * file.c - workers that exchange data through files: atomic publish,
 * cleaning of dead writers' temporary files, OFD file locks that die with
 * their holder, and per-rank output gathered in rank order.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define TMP_TAG ".cohort-tmp-"
#define TMP_HEX 16
/* The longest part of the target's name kept in the temporary name. */
#define TMP_NAME_KEEP (255 - 1 - (sizeof(TMP_TAG) - 1) - TMP_HEX)

/*
 * The marker byte of cohort_flock: far past any real data, locked with a
 * classic POSIX lock by the holder so that a waiter can name it. The OFD
 * lock covers [0, FLOCK_MARK), so the two never overlap.
 */
#define FLOCK_MARK ((off_t)1 << 62)

static void seterr(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (!buf || size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

#define PERR(pub, ...) seterr((pub)->why, sizeof((pub)->why), __VA_ARGS__)

static void copy_error(const struct cohort_publish_opts *opts, const char *msg)
{
	if (opts && opts->why && opts->why_size > 0)
		cohort__strlcpy(opts->why, msg, opts->why_size);
}

static void close_keep_errno(int fd)
{
	int e = errno;

	if (fd >= 0)
		close(fd);
	errno = e;
}

/* Split path into its directory ("." when none) and its last component. */
static int split_path(const char *path, char *dir, size_t dsize, char *name, size_t nsize)
{
	const char *slash = strrchr(path, '/');
	size_t dlen;

	if (!slash) {
		cohort__strlcpy(dir, ".", dsize);
		slash = path - 1;
	} else {
		dlen = (size_t)(slash - path);
		if (dlen == 0)
			dlen = 1; /* "/name" */
		if (dlen >= dsize)
			return -ENAMETOOLONG;
		memcpy(dir, path, dlen);
		dir[dlen] = '\0';
	}
	if (slash[1] == '\0' || strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0)
		return -EISDIR;
	if (strlen(slash + 1) >= nsize)
		return -ENAMETOOLONG;
	cohort__strlcpy(name, slash + 1, nsize);
	return 0;
}

static uint64_t random64(void)
{
	static unsigned counter;
	uint64_t v = 0;
	struct timespec ts;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
	/* No entropy yet (early boot): O_EXCL still keeps names unique. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	v = (uint64_t)getpid() << 40 ^ (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 20 ^
	    __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	return v * 0x9e3779b97f4a7c15ULL;
}

int cohort_publish_is_temp(const char *name)
{
	size_t len, tag = sizeof(TMP_TAG) - 1;
	const char *p;

	if (!name || name[0] != '.')
		return 0;
	len = strlen(name);
	if (len < 1 + tag + TMP_HEX)
		return 0;
	p = name + len - TMP_HEX - tag;
	if (memcmp(p, TMP_TAG, tag) != 0)
		return 0;
	for (p += tag; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

/* A lock (F_WRLCK or F_RDLCK) on the start of fd's file, of the open file
 * description; len 0 means the whole file. */
static int ofd_lock_type(int fd, int cmd, short type, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = len };
	int r;

	do
		r = fcntl(fd, cmd, &fl);
	while (r < 0 && errno == EINTR && cmd == F_OFD_SETLKW);
	return r < 0 ? -errno : 0;
}

static int ofd_lock(int fd, int cmd, off_t len)
{
	return ofd_lock_type(fd, cmd, F_WRLCK, len);
}

/*
 * Create the temporary file, exclusively, and lock it. A cleaner may open
 * the file between our create and our lock, take the lock first, and
 * remove it: it removes only while holding the lock, so once we hold it a
 * link count of 0 tells us, and we start over with a new name.
 */
static int create_temp(struct cohort_publish *pub, mode_t mode)
{
	for (int attempt = 0; attempt < 100; attempt++) {
		struct stat st;
		int fd, r;

		snprintf(pub->tmp, sizeof(pub->tmp), ".%.*s" TMP_TAG "%016llx",
		         (int)TMP_NAME_KEEP, pub->name, (unsigned long long)random64());
		fd = openat(pub->tmp_dir_fd, pub->tmp,
		            O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
		if (fd < 0) {
			if (errno == EEXIST)
				continue;
			return -errno;
		}
		r = ofd_lock(fd, F_OFD_SETLKW, 0);
		if (r == -ENOLCK || r == -EINVAL || r == -EOPNOTSUPP) {
			/* No locks here: the cleaner cannot test ours either,
			 * and it keeps what it cannot test. */
			r = 0;
		}
		if (r < 0) {
			unlinkat(pub->tmp_dir_fd, pub->tmp, 0);
			close(fd);
			return r;
		}
		if (fstat(fd, &st) < 0) {
			r = -errno;
			close(fd);
			return r;
		}
		if (st.st_nlink == 0) {
			close(fd);
			continue;
		}
		return fd;
	}
	return -EEXIST;
}

static const char *fix_for(int err)
{
	switch (err) {
	case -EACCES:
	case -EPERM:
		return "make the directory writable for this user (the temporary file must live on the target's filesystem, so it is created beside the target)";
	case -EROFS:
		return "the filesystem is mounted read-only: publish to a writable directory";
	case -ENOSPC:
	case -EDQUOT:
		return "free space on that filesystem (or raise the quota), or publish elsewhere; the target was not touched";
	case -EXDEV:
		return "create the temporary file on the target's filesystem: leave tmp_dir unset so it is made beside the target";
	case -ENOENT:
		return "create the directory first";
	case -ENOTDIR:
		return "a part of the path is a file, not a directory: give a path in an existing directory";
	default:
		return "";
	}
}

/* The fix for err after sep, as two %s arguments; nothing (not a bare separator) when there is none. */
#define FIX(sep, err) (fix_for(err)[0] ? (sep) : ""), fix_for(err)

int cohort_publish_open(struct cohort_publish *pub, const char *path,
                        const struct cohort_publish_opts *opts)
{
	struct stat st, tst;
	mode_t mode = opts && opts->mode ? opts->mode : 0644;
	int r;

	memset(pub, 0, sizeof(*pub));
	pub->fd = pub->dir_fd = pub->tmp_dir_fd = -1;
	pub->flags = opts ? opts->flags : 0;
	if (!path || !*path) {
		PERR(pub, "no path to publish to");
		r = -EINVAL;
		goto out;
	}
	r = split_path(path, pub->dir, sizeof(pub->dir), pub->name, sizeof(pub->name));
	if (r < 0) {
		PERR(pub, "cannot publish to '%s': %s", path,
		     r == -EISDIR ? "the path names a directory, not a file" : "name too long");
		goto out;
	}
	pub->dir_fd = open(pub->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pub->dir_fd < 0) {
		r = -errno;
		PERR(pub, "cannot open directory '%s' to publish '%s': %s%s%s", pub->dir, pub->name,
		     strerror(-r), FIX("; ", r));
		goto out;
	}
	if (fstatat(pub->dir_fd, pub->name, &st, 0) == 0 && S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		PERR(pub, "cannot publish to '%s': it is a directory", path);
		goto out;
	}
	if (opts && opts->tmp_dir) {
		pub->tmp_dir_fd = open(opts->tmp_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pub->tmp_dir_fd < 0) {
			r = -errno;
			PERR(pub, "cannot open the temporary directory '%s': %s", opts->tmp_dir,
			     strerror(-r));
			goto out;
		}
		if (fstat(pub->dir_fd, &st) < 0 || fstat(pub->tmp_dir_fd, &tst) < 0) {
			r = -errno;
			PERR(pub, "cannot stat '%s' or '%s': %s", pub->dir, opts->tmp_dir, strerror(-r));
			goto out;
		}
		if (st.st_dev != tst.st_dev) {
			r = -EXDEV;
			PERR(pub, "the temporary directory '%s' (device %u:%u) is not on the filesystem of '%s' (device %u:%u): "
			     "a rename between them would be a copy, which a reader can see half done%s%s",
			     opts->tmp_dir, major(tst.st_dev), minor(tst.st_dev), pub->dir,
			     major(st.st_dev), minor(st.st_dev), FIX("; ", r));
			goto out;
		}
	} else {
		pub->tmp_dir_fd = pub->dir_fd;
	}
	r = create_temp(pub, mode);
	if (r < 0) {
		PERR(pub, "cannot create a temporary file in '%s' to publish '%s': %s%s%s",
		     opts && opts->tmp_dir ? opts->tmp_dir : pub->dir, pub->name, strerror(-r),
		     FIX("; ", r));
		goto out;
	}
	pub->fd = r;
	r = 0;
out:
	if (r < 0) {
		if (pub->tmp_dir_fd >= 0 && pub->tmp_dir_fd != pub->dir_fd)
			close(pub->tmp_dir_fd);
		if (pub->dir_fd >= 0)
			close(pub->dir_fd);
		pub->fd = pub->dir_fd = pub->tmp_dir_fd = -1;
	}
	return r;
}

/* End a publication, keeping pub->why. */
static void pub_end(struct cohort_publish *pub, bool unlink_tmp)
{
	if (pub->fd >= 0) {
		if (unlink_tmp)
			unlinkat(pub->tmp_dir_fd, pub->tmp, 0);
		close(pub->fd);
	}
	if (pub->tmp_dir_fd >= 0 && pub->tmp_dir_fd != pub->dir_fd)
		close(pub->tmp_dir_fd);
	if (pub->dir_fd >= 0)
		close(pub->dir_fd);
	pub->fd = pub->dir_fd = pub->tmp_dir_fd = -1;
}

void cohort_publish_abort(struct cohort_publish *pub)
{
	if (pub)
		pub_end(pub, true);
}

int cohort_publish_write(struct cohort_publish *pub, const void *buf, size_t len)
{
	const char *p = buf;
	size_t done = 0;

	if (pub->fd < 0)
		return -EBADF;
	while (done < len) {
		ssize_t n = write(pub->fd, p + done, len - done);

		if (n < 0) {
			int r = -errno;

			if (r == -EINTR)
				continue;
			PERR(pub, "writing the new contents of '%s/%s' failed after %zu of %zu bytes: %s%s%s",
			     pub->dir, pub->name, done, len, strerror(-r), FIX("; ", r));
			pub_end(pub, true);
			return r;
		}
		done += (size_t)n;
	}
	return 0;
}

int cohort_publish_commit(struct cohort_publish *pub)
{
	bool sync = !(pub->flags & COHORT_PUBLISH_NOSYNC);
	int r;

	if (pub->fd < 0)
		return -EBADF;
	if (sync && fsync(pub->fd) < 0) {
		r = -errno;
		PERR(pub, "flushing the new contents of '%s/%s' to disk failed: %s; the target was not touched.%s%s",
		     pub->dir, pub->name, strerror(-r), FIX(" ", r));
		pub_end(pub, true);
		return r;
	}
	/* Rename while still holding the temporary file's lock, so that no
	 * cleaner can take it for a dead writer's file. */
	if (renameat(pub->tmp_dir_fd, pub->tmp, pub->dir_fd, pub->name) < 0) {
		r = -errno;
		if (r == -EXDEV)
			PERR(pub, "cannot rename the temporary file over '%s/%s': the two are on different mounts, "
			     "and a rename across mounts is not atomic; the target was not touched.%s%s",
			     pub->dir, pub->name, FIX(" ", r));
		else
			PERR(pub, "cannot rename the temporary file over '%s/%s': %s; the target was not touched",
			     pub->dir, pub->name, strerror(-r));
		pub_end(pub, true);
		return r;
	}
	close(pub->fd);
	pub->fd = -1;
	if (sync && fsync(pub->dir_fd) < 0 && errno != EINVAL && errno != EROFS) {
		/* EINVAL: a filesystem whose directories cannot be synced
		 * (some FUSE and network ones); nothing more can be done. */
		r = -errno;
		PERR(pub, "'%s/%s' has its new contents, but flushing the directory failed: %s; "
		     "a power loss may bring back the old contents", pub->dir, pub->name, strerror(-r));
		pub_end(pub, false);
		return r;
	}
	pub_end(pub, false);
	return 0;
}

int cohort_publish_data(const char *path, const void *data, size_t len,
                        const struct cohort_publish_opts *opts)
{
	struct cohort_publish pub;
	int r;

	r = cohort_publish_open(&pub, path, opts);
	if (r >= 0)
		r = cohort_publish_write(&pub, data, len);
	if (r >= 0)
		r = cohort_publish_commit(&pub);
	if (r < 0)
		copy_error(opts, pub.why);
	return r;
}

int cohort_publish_clean(const char *dir, unsigned *ret_removed)
{
	unsigned removed = 0;
	struct dirent *de;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		struct stat fst, st;
		int fd;

		if (!cohort_publish_is_temp(de->d_name))
			continue;
		/* Read-only, with a read lock: that conflicts with the writer's
		 * write lock just as well, and works on a file whose mode
		 * denies writing (a publication with mode 0444). */
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
		if (fd < 0)
			continue;         /* gone already, or not ours to test */
		if (fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode) ||
		    ofd_lock_type(fd, F_OFD_SETLK, F_RDLCK, 0) < 0) {
			close(fd);        /* a live writer holds it, or untestable */
			continue;
		}
		/* Ours now: remove it if the name still means this file. */
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_dev == fst.st_dev && st.st_ino == fst.st_ino &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
		close(fd);
	}
	closedir(d);
	if (ret_removed)
		*ret_removed = removed;
	return 0;
}

/* ---- file locks ---- */

int cohort_flock_open(struct cohort_flock *lk, const char *path, mode_t mode)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, mode ? mode : 0644);

	if (fd < 0)
		return -errno;
	lk->fd = fd;
	lk->locked = 0;
	return 0;
}

static void mark_set(struct cohort_flock *lk)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = FLOCK_MARK, .l_len = 1 };

	/* Best effort: only the naming of the holder depends on it. */
	(void)fcntl(lk->fd, F_SETLK, &fl);
}

static void mark_clear(struct cohort_flock *lk)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = FLOCK_MARK, .l_len = 1 };

	(void)fcntl(lk->fd, F_SETLK, &fl);
}

/* The pid marking fd's file as held, or 0. */
static pid_t mark_holder(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = FLOCK_MARK, .l_len = 1 };

	/* F_OFD_GETLK sees POSIX locks of the calling process too. */
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0 || fl.l_type == F_UNLCK || fl.l_pid <= 0)
		return 0;
	return fl.l_pid;
}

int cohort_flock_lock(struct cohort_flock *lk)
{
	int r;

	if (lk->locked)
		return -EDEADLK;
	r = ofd_lock(lk->fd, F_OFD_SETLKW, FLOCK_MARK);
	if (r < 0)
		return r;
	lk->locked = 1;
	mark_set(lk);
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nap_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int cohort_flock_timedlock(struct cohort_flock *lk, unsigned timeout_ms, pid_t *ret_holder)
{
	uint64_t deadline = mono_ms() + timeout_ms;
	unsigned nap = 1;

	if (lk->locked)
		return -EDEADLK;
	for (;;) {
		int r = ofd_lock(lk->fd, F_OFD_SETLK, FLOCK_MARK);
		uint64_t now;

		if (r == 0) {
			lk->locked = 1;
			mark_set(lk);
			return 0;
		}
		if (r != -EAGAIN && r != -EACCES)
			return r;
		now = mono_ms();
		if (now >= deadline) {
			if (ret_holder)
				*ret_holder = mark_holder(lk->fd);
			return COHORT_ETIMEDOUT;
		}
		if (nap > deadline - now)
			nap = (unsigned)(deadline - now);
		nap_ms(nap);
		if (nap < 50)
			nap = nap * 2 > 50 ? 50 : nap * 2;
	}
}

int cohort_flock_unlock(struct cohort_flock *lk)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = FLOCK_MARK };

	if (!lk->locked)
		return -EPERM;
	/* The mark goes first, so that it never names a process that no
	 * longer holds the lock. */
	mark_clear(lk);
	if (fcntl(lk->fd, F_OFD_SETLK, &fl) < 0)
		abort(); /* unlocking a lock we hold cannot fail */
	lk->locked = 0;
	return 0;
}

void cohort_flock_close(struct cohort_flock *lk)
{
	if (!lk || lk->fd < 0)
		return;
	if (lk->locked)
		cohort_flock_unlock(lk);
	close(lk->fd);
	lk->fd = -1;
}

int cohort_flock_holder(const char *path, pid_t *ret_pid)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = FLOCK_MARK };
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int r;

	if (fd < 0)
		return -errno;
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (fl.l_type == F_UNLCK) {
		*ret_pid = 0;
		r = 0;
	} else {
		*ret_pid = mark_holder(fd);
		r = 1;
	}
	close(fd);
	return r;
}

/* ---- per-rank output ---- */

int cohort_rank_path(const char *path, unsigned rank, char *buf, size_t size)
{
	int r = cohort__pathf(buf, size, "%s.rank-%u", path, rank);

	return r < 0 ? r : 0;
}

int cohort_rank_publish(const char *path, unsigned rank, const void *data, size_t len,
                        const struct cohort_publish_opts *opts)
{
	char part[COHORT_PATH_MAX * 2];
	int r = cohort_rank_path(path, rank, part, sizeof(part));

	if (r < 0)
		return r;
	return cohort_publish_data(part, data, len, opts);
}

/* Count the missing parts, listing the first few into list. */
static unsigned missing_parts(const char *path, unsigned nranks, char *list, size_t lsize)
{
	unsigned missing = 0;
	size_t used = 0;

	if (lsize)
		list[0] = '\0';
	for (unsigned k = 0; k < nranks; k++) {
		char part[COHORT_PATH_MAX * 2];

		struct stat st;

		/*
		 * Any directory entry counts, a symlink or a FIFO too (never
		 * followed here): append_part refuses it by name, rather than
		 * gather waiting for it until the deadline.
		 */
		if (cohort_rank_path(path, k, part, sizeof(part)) == 0 &&
		    fstatat(AT_FDCWD, part, &st, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		if (missing < 16 && used < lsize) {
			int n = snprintf(list + used, lsize - used, "%s%u", missing ? ", " : "", k);

			if (n > 0)
				used += (size_t)n;
		} else if (missing == 16 && used < lsize) {
			snprintf(list + used, lsize - used, ", ...");
			used = lsize;
		}
		missing++;
	}
	return missing;
}

/*
 * Open a part for reading, refusing what another user of a shared
 * directory could have planted under its name: a symlink (to /etc/shadow,
 * say) is not followed, a FIFO or device neither blocks nor is read, and a
 * file must be regular, the caller's own and have a single link (a hard
 * link to someone else's file is not a part). The checks are made on the
 * open descriptor, so the name cannot be swapped between check and read.
 * Returns the descriptor, or -errno with the reason in pub's error.
 */
static int open_part(struct cohort_publish *pub, const char *part)
{
	struct stat st;
	int fd = open(part, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
	int r;

	if (fd < 0) {
		r = -errno;
		if (r == -ELOOP)
			PERR(pub, "refusing the part '%s': it is a symbolic link, and a part must be "
			     "a regular file of yours (cohort_rank_publish writes one; anyone who can "
			     "write the directory can plant a link)", part);
		else
			PERR(pub, "cannot read the part '%s': %s", part, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		PERR(pub, "cannot read the part '%s': %s", part, strerror(-r));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		PERR(pub, "refusing the part '%s': it is a %s, not a regular file", part,
		     S_ISFIFO(st.st_mode) ? "FIFO" : S_ISDIR(st.st_mode) ? "directory" :
		     S_ISSOCK(st.st_mode) ? "socket" : "device");
		goto fail;
	}
	if (st.st_uid != geteuid()) {
		r = -EPERM;
		PERR(pub, "refusing the part '%s': it belongs to uid %u, not to you (uid %u); "
		     "a part must be published by the job's own user", part, (unsigned)st.st_uid,
		     (unsigned)geteuid());
		goto fail;
	}
	if (st.st_nlink != 1) {
		r = -EPERM;
		PERR(pub, "refusing the part '%s': it has %lu hard links, and a published part "
		     "has one", part, (unsigned long)st.st_nlink);
		goto fail;
	}
	/* Regular files never block; reads may then wait as usual. */
	if (fcntl(fd, F_SETFL, 0) < 0) {
		r = -errno;
		PERR(pub, "cannot read the part '%s': %s", part, strerror(-r));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return r;
}

/* Append the whole file at part to the publication. */
static int append_part(struct cohort_publish *pub, const char *part, char *buf, size_t bsize,
                       uint64_t *total)
{
	int fd = open_part(pub, part);
	int r = 0;

	if (fd < 0)
		return fd;
	for (;;) {
		ssize_t n = read(fd, buf, bsize);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			PERR(pub, "reading the part '%s' failed: %s", part, strerror(-r));
			break;
		}
		if (n == 0)
			break;
		r = cohort_publish_write(pub, buf, (size_t)n);
		if (r < 0)
			break;
		*total += (uint64_t)n;
	}
	close_keep_errno(fd);
	return r;
}

int cohort_rank_gather(const char *path, unsigned nranks, const struct cohort_gather_opts *opts,
                       uint64_t *ret_bytes)
{
	const struct cohort_publish_opts *popts = opts ? &opts->publish : NULL;
	unsigned timeout_ms = opts ? opts->timeout_ms : 0, nap = 1, missing;
	uint64_t deadline = mono_ms() + timeout_ms, total = 0;
	struct cohort_publish pub;
	char list[256], msg[COHORT_MSG_MAX];
	char *buf = NULL;
	int r;

	if (nranks == 0) {
		seterr(msg, sizeof(msg), "cannot gather '%s' from 0 ranks", path ? path : "(null)");
		r = -EINVAL;
		goto out;
	}
	for (;;) {
		uint64_t now;

		missing = missing_parts(path, nranks, list, sizeof(list));
		if (missing == 0)
			break;
		now = mono_ms();
		if (now >= deadline) {
			seterr(msg, sizeof(msg),
			       "%u of %u parts of '%s' still missing after %u ms: rank %s; "
			       "each rank must publish '%s.rank-K' first (or wait longer)",
			       missing, nranks, path, timeout_ms, list, path);
			r = COHORT_ETIMEDOUT;
			goto out;
		}
		if (nap > deadline - now)
			nap = (unsigned)(deadline - now);
		nap_ms(nap);
		if (nap < 100)
			nap = nap * 2 > 100 ? 100 : nap * 2;
	}
	buf = malloc(1 << 20);
	if (!buf) {
		seterr(msg, sizeof(msg), "out of memory");
		r = -ENOMEM;
		goto out;
	}
	r = cohort_publish_open(&pub, path, popts);
	for (unsigned k = 0; r >= 0 && k < nranks; k++) {
		char part[COHORT_PATH_MAX * 2];

		r = cohort_rank_path(path, k, part, sizeof(part));
		if (r < 0)
			PERR(&pub, "part name of rank %u of '%s' too long", k, path);
		else
			r = append_part(&pub, part, buf, 1 << 20, &total);
	}
	if (r >= 0)
		r = cohort_publish_commit(&pub);
	else
		cohort_publish_abort(&pub);
	if (r < 0) {
		cohort__strlcpy(msg, pub.why, sizeof(msg));
		goto out;
	}
	if (opts && opts->remove_parts) {
		for (unsigned k = 0; k < nranks; k++) {
			char part[COHORT_PATH_MAX * 2];

			if (cohort_rank_path(path, k, part, sizeof(part)) == 0)
				unlink(part);
		}
	}
	if (ret_bytes)
		*ret_bytes = total;
out:
	free(buf);
	if (r < 0)
		copy_error(popts, msg);
	return r;
}
