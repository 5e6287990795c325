/*
 * cohort/base.h - conventions, version, errors, sizes, and where the library reads from.
 *
 * Part of libcohort; include <cohort.h> for all of it. The conventions of
 * the whole API are at the top of cohort.h.
 */
#ifndef COHORT_BASE_H
#define COHORT_BASE_H


#ifdef __cplusplus
extern "C" {
#endif

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(__GNUC__)
#define COHORT_EXPORT __attribute__((visibility("default")))
#else
#define COHORT_EXPORT
#endif

/* Alignment of objects placed in shared memory (one cache line). */
#ifdef __cplusplus
#define COHORT_ALIGN64 alignas(64)
#else
#define COHORT_ALIGN64 _Alignas(64)
#endif

/* ------------------------------------------------------------------------
 * Version and errors
 * ------------------------------------------------------------------------ */

#define COHORT_VERSION_MAJOR 0
#define COHORT_VERSION_MINOR 1
#define COHORT_VERSION_PATCH 0
/* The three above as "MAJOR.MINOR.PATCH" (the Makefile reads them too). */
#define COHORT_VERSION_STR_(x) #x
#define COHORT_VERSION_STR(x) COHORT_VERSION_STR_(x)
#define COHORT_VERSION_STRING COHORT_VERSION_STR(COHORT_VERSION_MAJOR) "." \
	COHORT_VERSION_STR(COHORT_VERSION_MINOR) "." COHORT_VERSION_STR(COHORT_VERSION_PATCH)

/*
 * The version of the library the program runs with, as "MAJOR.MINOR.PATCH"
 * (COHORT_VERSION_STRING is the one it was compiled against). The string
 * is static.
 */
COHORT_EXPORT const char *cohort_version(void);

/*
 * cohort's own error codes. They lie far below any -errno value, so a
 * negative return is either -errno or one of these.
 *
 * Four of them have an errno of the same name, and exist because a cohort
 * call also passes on the -errno of the system calls it makes, which would
 * then mean two things:
 *
 *   COHORT_ETIMEDOUT        every wait of cohort that ran out, a timeout of
 *                           0 ("try once") included: the one code for
 *                           "timed out". -ETIMEDOUT may come from below
 *                           (a file system, a futex) for another reason.
 *   COHORT_EOWNERDEAD       the caller now holds a lock whose holder died:
 *                           it must repair the data and mark it consistent,
 *                           which a passed-on EOWNERDEAD would not promise.
 *   COHORT_ENOTRECOVERABLE  a lock given up unrepaired by cohort's protocol.
 *   COHORT_ENOSPACE         a segment, queue or arena is full, or /dev/shm
 *                           or the limit cannot hold a segment: the caller
 *                           resizes or waits, while a passed-on -ENOSPC is
 *                           a full file system.
 */
enum {
	COHORT_EFIRST          = -10000,
	COHORT_ESIZE_SYNTAX    = -10000, /* not a size: "4Q", "", "1..5G" */
	COHORT_ESIZE_RANGE     = -10001, /* a size above 2^64-1 bytes */
	COHORT_ESIZE_FRACTION  = -10002, /* a fraction that is not a whole byte */
	COHORT_EPARSE          = -10003, /* a /proc or cgroup file with odd contents */
	COHORT_ENOCGROUP       = -10004, /* no memory cgroup found for the process */
	COHORT_EPLAN           = -10005, /* a plan with impossible figures */
	COHORT_EBADSEG         = -10006, /* a segment whose header is not cohort's or is corrupt */
	COHORT_EOWNERDEAD      = -10007, /* the holder of a lock died; data may need repair */
	COHORT_ENOTRECOVERABLE = -10008, /* a lock whose data was never repaired */
	COHORT_EPEERDEAD       = -10009, /* a participant died while others waited */
	COHORT_ETIMEDOUT       = -10010, /* a timed wait ran out */
	COHORT_ELOST           = -10011, /* a message was lost with its dead sender */
	COHORT_ECORRUPT        = -10012, /* shared data failed a bounds or canary check */
	COHORT_ENOSPACE        = -10013, /* a segment, queue or arena is full */
	COHORT_EBADREC         = -10014, /* not a cohort recording, or a newer format */
	COHORT_ECOMMAND        = -10015, /* a command cohort ran (scontrol) exited non-zero or died */
	COHORT_EMIXEDJOB       = -10016, /* recordings of different jobs or steps given as one job */
	COHORT_ELAST           = -10099
};

/*
 * A short English description of an error code returned by any cohort call
 * (a negative -errno value or a COHORT_E* code). The string is static.
 * Unknown codes give "unknown error".
 */
COHORT_EXPORT const char *cohort_strerror(int err);

/* ------------------------------------------------------------------------
 * Sizes
 * ------------------------------------------------------------------------ */

/*
 * Parse a memory size written as SLURM writes them: a decimal number with an
 * optional fraction and an optional unit suffix K, M, G or T (either case,
 * optionally followed by "B" or "iB"). Units are binary (1K = 1024). A bare
 * number means megabytes, as in `srun --mem=500`.
 *
 * Examples: "500M" = 524288000, "4G", "1.5T", "2048" = 2 GiB, "64KiB".
 *
 * On success stores the number of bytes in *ret_bytes and returns 0. On
 * failure returns COHORT_ESIZE_SYNTAX (not a size), COHORT_ESIZE_RANGE (more
 * than 2^64-1 bytes) or COHORT_ESIZE_FRACTION (a fraction that does not
 * come to a whole number of bytes, such as "0.1K"); nothing is rounded or
 * truncated silently.
 */
COHORT_EXPORT int cohort_size_parse(const char *text, uint64_t *ret_bytes);

/*
 * Write a size for people into buf, with a binary unit and one decimal
 * where it helps: "512 B", "1.5 KiB", "300.0 MiB", "4.0 GiB". Always
 * NUL-terminates when size > 0. Returns buf.
 */
COHORT_EXPORT char *cohort_size_format(uint64_t bytes, char *buf, size_t size);

/* ------------------------------------------------------------------------
 * Roots and buffers
 * ------------------------------------------------------------------------ */

/* Where to read from. Zero-initialise, then override roots to replay fixtures. */
struct cohort_probe {
	const char *proc_root;    /* default "/proc" */
	const char *cgroup_root;  /* default "/sys/fs/cgroup" */
	const char *shm_path;     /* default "/dev/shm" */
	const char *const *envp;  /* default: the process environment */
	const char *scontrol;     /* SLURM's scontrol command; default "scontrol" found through PATH */
};

#define COHORT_PATH_MAX 512
#define COHORT_ID_MAX 64
#define COHORT_MSG_MAX 1024
#define COHORT_CMDLINE_MAX 256   /* a process's command line as cohort keeps it, NUL included */

#ifdef __cplusplus
}
#endif

#endif /* COHORT_BASE_H */
