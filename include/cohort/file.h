/*
 * cohort/file.h - files: atomic publish, file locks, per-rank output.
 *
 * Part of libcohort; include <cohort.h> for all of it. The conventions of
 * the whole API are at the top of cohort.h.
 */
#ifndef COHORT_FILE_H
#define COHORT_FILE_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- files: atomic publish, file locks, per-rank output ---- */

/*
 * Atomic publish. A file is published by writing its new contents to a
 * temporary file in the target's directory, flushing it to disk, renaming
 * it over the target and flushing the directory. A reader that opens the
 * target sees the old contents or the new, never a mix, whenever the
 * writer is killed and (unless COHORT_PUBLISH_NOSYNC) whenever the node
 * loses power.
 *
 * The temporary file is named ".NAME.cohort-tmp-XXXXXXXXXXXXXXXX" (16 hex
 * digits) and its writer holds an open file description lock on it while
 * writing, which the kernel drops when the writer dies: that is how
 * cohort_publish_clean() tells a dead writer's leftover from a file being
 * written right now, on this node or, on a filesystem with working locks,
 * on another.
 */

/* Skip both flushes to disk: still atomic against the writer's death, but
 * after a power loss the target may hold the old contents, the new, or (on
 * some filesystems) an empty file. */
#define COHORT_PUBLISH_NOSYNC 0x1u

/* Options of a publication. Zero-initialise; NULL options mean all defaults. */
struct cohort_publish_opts {
	unsigned flags;      /* COHORT_PUBLISH_* */
	mode_t mode;         /* permissions of the new file before umask; 0 means 0644 */
	const char *tmp_dir; /* where to create the temporary file; NULL: beside the
	                        target (the right choice). Another directory must be
	                        on the target's filesystem, or the call fails with
	                        -EXDEV, since a rename across filesystems is a copy
	                        that a reader can see half done. */
	char *why;           /* if not NULL, a failure writes here what failed, on
	                        which path, with the figures and the fix */
	size_t why_size;
};

/*
 * A publication in progress, owned by the caller. fd is the temporary
 * file, open for writing: write to it directly or with
 * cohort_publish_write(). The other fields are private.
 */
struct cohort_publish {
	int fd;
	int dir_fd;
	int tmp_dir_fd;
	unsigned flags;
	char name[256];
	char tmp[256];
	char dir[COHORT_PATH_MAX];
	char why[COHORT_MSG_MAX];   /* after a failure: what failed, and the fix */
};

/*
 * Start publishing the file at path: create and lock the temporary file.
 * Nothing is visible at path until cohort_publish_commit().
 *
 * Returns 0, or: -EACCES, -EROFS (the directory is not writable: the
 * temporary file must live there), -ENOENT (no such directory), -EISDIR
 * (path is a directory or ends in '/'), -ENAMETOOLONG, -EXDEV (opts->tmp_dir
 * is on another filesystem), or another -errno. On failure nothing is left
 * behind, pub->why says what failed, and pub needs no cleanup.
 */
COHORT_EXPORT int cohort_publish_open(struct cohort_publish *pub, const char *path,
                                      const struct cohort_publish_opts *opts);

/*
 * Append len bytes to the temporary file, retrying short writes and EINTR.
 * Returns 0, or -errno (-ENOSPC when the filesystem is full); on failure
 * the publication is abandoned as by cohort_publish_abort() and the target
 * is untouched.
 */
COHORT_EXPORT int cohort_publish_write(struct cohort_publish *pub, const void *buf, size_t len);

/*
 * Make the new contents visible at the target: flush the temporary file to
 * disk, rename it over the target, close it, and flush the directory (the
 * flushes are skipped with COHORT_PUBLISH_NOSYNC). Always ends the
 * publication: afterwards pub holds no file.
 *
 * Returns 0, or -errno: -ENOSPC or -EIO from the flush (the target is then
 * untouched and the temporary file removed), -EXDEV when the rename crosses
 * mounts (the target is untouched), or an error of the final directory
 * flush (the target has its new contents, but a power loss may still undo
 * the rename). pub->why says which.
 */
COHORT_EXPORT int cohort_publish_commit(struct cohort_publish *pub);

/*
 * Abandon a publication: remove the temporary file and close it. The
 * target is untouched. Accepts NULL and a publication already ended.
 */
COHORT_EXPORT void cohort_publish_abort(struct cohort_publish *pub);

/*
 * Publish len bytes of data at path in one call (open, write, commit).
 * Returns 0 or a negative error code as those calls do; on failure the
 * target is untouched and no temporary file remains.
 */
COHORT_EXPORT int cohort_publish_data(const char *path, const void *data, size_t len,
                                      const struct cohort_publish_opts *opts);

/*
 * Whether a file name (not a path) has the form of cohort's temporary
 * files. Returns 1 or 0.
 */
COHORT_EXPORT int cohort_publish_is_temp(const char *name);

/*
 * Remove the temporary files that dead writers left in the directory dir:
 * those whose lock no process holds. Files being written right now, and
 * files whose lock cannot be tested (a filesystem without locks), are kept.
 * Stores the number removed in *ret_removed (which may be NULL) and returns
 * 0, or -errno when dir cannot be read. Safe to run at any time, while
 * writers are publishing.
 */
COHORT_EXPORT int cohort_publish_clean(const char *dir, unsigned *ret_removed);

/*
 * File locks for workers that update one shared file in place, built on
 * open file description locks (F_OFD_SETLKW): the kernel releases the lock
 * when its holder dies, however it dies, so a killed worker never blocks
 * the others. The holder also marks one byte far past any data with a
 * classic POSIX lock, so that a waiter that times out can name the holder's
 * pid (an OFD lock records no pid).
 *
 * A lock belongs to its struct cohort_flock (its open file description),
 * not to the process or thread: two structs exclude each other, even in one
 * thread. A child forked while the lock is held shares it; do not fork
 * while holding. The kernel releases the lock but does not undo a
 * half-done update in place: to change a file whole, lock a separate file
 * (such as "PATH.lock"), read PATH, and publish its new version with
 * cohort_publish_data(). Never lock the published file itself: publishing
 * replaces it with a new file, whose lock is a different one.
 */
struct cohort_flock {
	int fd;      /* the locked file, open read-write: update it through this */
	int locked;
};

/*
 * Open (creating it with mode, 0 meaning 0644, when absent) the file at
 * path to lock it. Returns 0, or -errno. lk is written only on success.
 */
COHORT_EXPORT int cohort_flock_open(struct cohort_flock *lk, const char *path, mode_t mode);

/*
 * Take the lock, waiting as long as it takes. Returns 0, or -errno
 * (-ENOLCK when the filesystem has no locks, -EDEADLK when the kernel
 * detects a deadlock).
 */
COHORT_EXPORT int cohort_flock_lock(struct cohort_flock *lk);

/*
 * Take the lock, waiting at most timeout_ms milliseconds (0: try once).
 * Returns 0, or COHORT_ETIMEDOUT with the holder's pid stored in
 * *ret_holder (if not NULL; 0 when the holder cannot be named: it runs on
 * another node, in another pid namespace, or is between its lock and its
 * mark), or another negative error code. The wait polls, so the lock may
 * be taken up to 50 ms after it is released.
 */
COHORT_EXPORT int cohort_flock_timedlock(struct cohort_flock *lk, unsigned timeout_ms,
                                         pid_t *ret_holder);

/* Release the lock. Returns 0, or -EPERM when lk does not hold it. */
COHORT_EXPORT int cohort_flock_unlock(struct cohort_flock *lk);

/* Release the lock if held and close the file. Accepts NULL. */
COHORT_EXPORT void cohort_flock_close(struct cohort_flock *lk);

/*
 * Who holds the lock on the file at path, without taking it. Returns 1
 * when it is held, with the holder's pid in *ret_pid (0 when it cannot be
 * named), 0 when it is free (*ret_pid = 0), or -errno.
 */
COHORT_EXPORT int cohort_flock_holder(const char *path, pid_t *ret_pid);

/*
 * Per-rank output. Each worker publishes its part as PATH.rank-K
 * atomically; once every rank 0..nranks-1 has published, the parts are
 * gathered in rank order into PATH, itself published atomically, so PATH
 * either does not exist yet or holds every part whole.
 */

/* Write "PATH.rank-K" into buf. Returns 0 or -ENAMETOOLONG. */
COHORT_EXPORT int cohort_rank_path(const char *path, unsigned rank, char *buf, size_t size);

/* Publish a rank's part, as cohort_publish_data() on PATH.rank-K. */
COHORT_EXPORT int cohort_rank_publish(const char *path, unsigned rank, const void *data,
                                      size_t len, const struct cohort_publish_opts *opts);

struct cohort_gather_opts {
	unsigned timeout_ms;   /* how long to wait for missing parts; 0: do not wait */
	int remove_parts;      /* remove the parts once the whole is published */
	struct cohort_publish_opts publish; /* how to publish the whole; its why
	                                       buffer also receives gather errors */
};

/*
 * Gather the parts of ranks 0..nranks-1 of path, in rank order, into path.
 * Waits up to opts->timeout_ms for missing parts (opts may be NULL: no
 * wait, no removal, durable publish). Stores the size of the whole in
 * *ret_bytes (may be NULL) and returns 0; or COHORT_ETIMEDOUT when parts are
 * still missing (the error buffer lists them; path is not created), -EINVAL
 * when nranks is 0, or an error of reading a part or of publishing.
 */
COHORT_EXPORT int cohort_rank_gather(const char *path, unsigned nranks,
                                     const struct cohort_gather_opts *opts,
                                     uint64_t *ret_bytes);

#ifdef __cplusplus
}
#endif

#endif /* COHORT_FILE_H */
