/*
 * internal.h - helpers shared by libcohort's source files. Not installed.
 * Non-static internals are named cohort__name().
 */
#ifndef COHORT_INTERNAL_H
#define COHORT_INTERNAL_H

#include "cohort.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>

#define COHORT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Read a whole small file (a /proc or cgroup file) into buf with one bounded
 * read loop, retrying on EINTR, and NUL-terminate it. Returns the number of
 * bytes read, or -errno. A file longer than size-1 bytes gives -EFBIG, so
 * a truncated read is never mistaken for the whole.
 */
ssize_t cohort__slurp(const char *path, char *buf, size_t size);

/* Like cohort__slurp(), for a path made by snprintf(fmt, ...). */
ssize_t cohort__slurpf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Parse an unsigned decimal integer at the start of s, skipping leading
 * blanks. Stores the value and the end pointer. Returns 0, COHORT_EPARSE when
 * there are no digits, or COHORT_ESIZE_RANGE on overflow.
 */
int cohort__parse_u64(const char *s, uint64_t *ret, const char **ret_end);

/*
 * Parse a whole cgroup value file: a decimal number, or "max" (v2) which
 * gives UINT64_MAX. Trailing whitespace is allowed, anything else is
 * COHORT_EPARSE.
 */
int cohort__parse_cgroup_value(const char *text, uint64_t *ret);

/*
 * Find "key" at the start of a line in a "key value" file (meminfo,
 * memory.stat, memory.events, status) and parse its number. unit_kb
 * expects and checks a " kB" unit and multiplies by 1024. Returns 0,
 * -ENOENT when the key is absent, or COHORT_EPARSE.
 */
int cohort__kv_u64(const char *text, const char *key, bool unit_kb, uint64_t *ret);

/* snprintf that never overflows and reports truncation as -ENAMETOOLONG. */
int cohort__pathf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Look a variable up in envp (NULL: the process environment). */
const char *cohort__getenv(const char *const *envp, const char *name);

/* Bounded string copy that always NUL-terminates (size > 0). */
void cohort__strlcpy(char *dst, const char *src, size_t size);

/*
 * Copy src as a token fit for a file name (task.c): letters, digits, '-',
 * '_', and '.' after the first character; anything else becomes '-'.
 */
void cohort__name_token(char *dst, const char *src, size_t size);

/* ---- SLURM (slurmctl.c) ---- */

/*
 * Set the flags and the task period of a configuration from its raw
 * jobacct_gather_params and jobacct_gather_frequency, as
 * cohort_slurm_config_parse() does: for a configuration put together from
 * a recording's strings.
 */
void cohort__slurm_config_flags(struct cohort_slurm_config *cfg);

/* ---- measuring (procmem.c, cgroup.c, shmscan.c) ---- */

/*
 * The sampler's clocks and readers (sampler.c), replaced by its tests: a
 * fake clock and fake processes make its choice of walks deterministic.
 * now_ns is the monotonic wall clock, cpu_ns the calling thread's CPU
 * clock; statm and smaps read one process as cohort_proc_statm() and
 * cohort_proc_smaps() do (statm may keep the file open in *fd, which the
 * sampler closes). Set before the first add; ctx is passed to each.
 */
struct cohort__sampler_ops {
	uint64_t (*now_ns)(void *ctx);
	uint64_t (*cpu_ns)(void *ctx);
	int (*statm)(void *ctx, pid_t pid, int *fd, struct cohort_statm *ret); /* *fd: kept open, or -1 */
	int (*smaps)(void *ctx, pid_t pid, struct cohort_procmem *ret);
	void *ctx;
};
void cohort__sampler_set_ops(struct cohort_sampler *s, const struct cohort__sampler_ops *ops);

/* Parse the text of <proc>/PID/statm (pages, made bytes). Returns 0 or COHORT_EPARSE. */
int cohort__statm_parse(const char *text, struct cohort_statm *ret);

/* The probe's roots, or the real ones. */
const char *cohort__proc_root(const struct cohort_probe *probe);
const char *cohort__cgroup_root(const struct cohort_probe *probe);

/* A /proc entry name that is a pid, or 0. */
pid_t cohort__pid_of_name(const char *name);

/*
 * The parent of pid, and its start time in clock ticks after boot (field 22
 * of <proc>/pid/stat) when ret_start is not NULL. -ESRCH when gone.
 */
int cohort__proc_ppid(const char *proc_root, pid_t pid, pid_t *ret_ppid, uint64_t *ret_start);

/*
 * What cohort reads of <proc>/PID/stat, proc_root being a probe's root
 * (cohort__proc_root()). The one parser of stat: peer liveness, process
 * sets, trees and identities all use it. Returns 0, -ESRCH (no such pid,
 * or pid <= 0), COHORT_EPARSE.
 */
struct cohort__stat {
	char comm[16];            /* the command name (field 2, truncated by the kernel to 15) */
	char state;               /* R, S, Z, ... */
	pid_t ppid;
	uint64_t start;           /* starttime, clock ticks since boot */
	uint64_t minflt;          /* minor faults: every copy-on-write copy is one */
	uint64_t startstack;      /* the stack's start: kept by fork, new at exec (0 when hidden) */
};
int cohort__proc_stat(const char *proc_root, pid_t pid, struct cohort__stat *ret);

/* cohort_proc_identity_read() with the caller's buffer for the environment (envsize bytes read at most). */
struct cohort_proc_identity;
int cohort__proc_identity(const struct cohort_probe *probe, pid_t pid, char *env, size_t envsize,
                          struct cohort_proc_identity *ret);

/*
 * One record of the kernel log (a /dev/kmsg read, "6,1234,5678,-;text"):
 * an OOM kill's victim. "Killed process PID (COMM)" gives pid and comm;
 * "oom-kill:...,task_memcg=/path,task=COMM,pid=PID,..." gives pid, comm
 * and the victim's memory cgroup (relative to the hierarchy's root), else
 * memcg is "". Returns 1 for such a record, 0 for any other.
 */
int cohort__kmsg_oom(const char *rec, size_t len, pid_t *ret_pid, char *comm, size_t comm_size,
                     char *memcg, size_t memcg_size);

/* Tasks on this node from a SLURM tasks-per-node list ("2(x3),1") and SLURM_NODEID; -1 unknown. */
long cohort__tasks_on_node(const char *list, long node_index);

/* Set a->task_share from the limit and the tasks on this node (see struct cohort_alloc). */
struct cohort_alloc;
void cohort__alloc_share(struct cohort_alloc *a);

/* Append to a growing pid array. */
int cohort__pids_push(pid_t **pids, size_t *n, size_t *cap, pid_t pid);

/* Sort a pid array and drop duplicates. */
void cohort__pids_sort_unique(pid_t *pids, size_t *n);

/* A process's memory cgroup: its hierarchy's root, its path there, and the directory. */
struct cohort__memcg {
	int version;                     /* 1 or 2 */
	char base[COHORT_PATH_MAX];      /* the hierarchy's root directory */
	char rel[COHORT_PATH_MAX];       /* the path named in /proc/PID/cgroup */
	char dir[COHORT_PATH_MAX];       /* the directory, under base (see cohort_cgroup_of_pid()) */
};

/*
 * Find the memory cgroup of pid (0: the caller) from <proc>/PID/cgroup:
 * the v1 memory hierarchy when there is one, else v2. Returns 0, -ESRCH,
 * -ENAMETOOLONG or COHORT_ENOCGROUP.
 */
int cohort__memory_cgroup(const struct cohort_probe *probe, pid_t pid, struct cohort__memcg *ret);

/* Resolve a cgroup given by the user to its directory (see cohort_pids_cgroup()). */
int cohort__cgroup_dir(const struct cohort_probe *probe, const char *dir, char *out, size_t size);

/* ---- shared memory internals (peer.c) ---- */

/*
 * Start time of a process in clock ticks since boot (field 22 of
 * /proc/<pid>/stat) and its state letter. Together with the pid the start
 * time names one process for good: a recycled pid has a later start time.
 * Returns 0, -ESRCH when there is no such process, or COHORT_EPARSE.
 * cohort__proc_stat() on the real /proc (procmem.c): one parser of stat.
 */
int cohort__proc_start(pid_t pid, uint64_t *ret_start, char *ret_state);

/*
 * The calling process's pid, cached (getpid is a system call); reset in
 * the child of fork() through pthread_atfork. A child made with a raw
 * clone() that skips the fork handlers must not use cohort's shared
 * objects before it execs.
 */
extern _Atomic pid_t cohort__pid_cache __attribute__((visibility("hidden")));
pid_t cohort__pid_slow(void);

static inline pid_t cohort__pid(void)
{
	pid_t p = atomic_load_explicit(&cohort__pid_cache, memory_order_relaxed);

	return __builtin_expect(p != 0, 1) ? p : cohort__pid_slow();
}

/* The calling process's start time (cached per pid, so right after fork). */
uint64_t cohort__self_start(void);

/*
 * Is the process (pid, start) still alive? A zombie counts as dead, and so
 * does a pid now worn by another process (start differs; start 0 skips that
 * check). Uses a pidfd where the kernel has pidfd_open, else kill(pid, 0).
 */
bool cohort__pid_alive(pid_t pid, uint64_t start);

/*
 * Leases (peer.c): each process that takes part in a barrier, semaphore or
 * queue holds an OFD write lock on one byte (its token, 1 ..
 * COHORT__LEASE_TOKEN_MAX-1) of the user's lease file
 * /dev/shm/.cohort-lease.<uid>. The kernel drops it when the process dies
 * (not when a thread exits), it is seen from every pid namespace that
 * shares /dev/shm, and a process that reuses a pid does not hold it.
 */
#define COHORT__LEASE_TOKEN_MAX ((uint64_t)1 << 39)

/* The lease file of uid. Returns 0 or -ENAMETOOLONG. */
int cohort__lease_path(uid_t uid, char *buf, size_t size);

/*
 * The calling process's token, taking its lease on first use (and again in
 * a fork child, which never shares its parent's). 0 when it has none (no
 * writable /dev/shm, a lease file planted by another user, no OFD locks):
 * cohort then falls back to judging by pid and start time.
 */
uint64_t cohort__lease(void);

/*
 * Does a live process hold the lease of token? True also when it cannot be
 * told (no lease file here, an error): a living holder is never declared
 * dead. False for 0 and tokens out of range, which no process holds.
 */
bool cohort__lease_alive(uint64_t token);

/*
 * Hold a read lock for the local job "local-<job_pid>" as long as this
 * process (and, once they use cohort, its fork children) lives, so that
 * `cohort shm gc` sees the job alive whatever pid namespace it runs in.
 */
void cohort__lease_job(pid_t job_pid);

/*
 * Does any live process hold local job job_pid's lock in uid's lease file?
 * Returns 1, 0, or -errno (no lease file, another user's).
 */
int cohort__lease_job_held(uid_t uid, pid_t job_pid);

/*
 * A member's identity in a shared table (64 bits): COHORT__ID_LEASE | token
 * when the process has a lease; else its start time, or COHORT__ID_NOSTART
 * when that cannot be read. Never 0.
 */
#define COHORT__ID_LEASE   ((uint64_t)1 << 63)
#define COHORT__ID_NOSTART ((uint64_t)1 << 62)
uint64_t cohort__self_id(void);

/* Is the process (pid, id) alive? By its lease when id has one, else by pid and start time. */
bool cohort__holder_alive(pid_t pid, uint64_t id);

/*
 * Wait on a process-shared futex while *addr == val, for at most
 * timeout_ms (negative: no limit). Returns 0 when woken or when *addr had
 * already changed, COHORT_ETIMEDOUT, or -EINTR.
 */
int cohort__futex_wait(_Atomic uint32_t *addr, uint32_t val, int timeout_ms);

/* Wake up to n waiters of a process-shared futex. */
void cohort__futex_wake(_Atomic uint32_t *addr, int n);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t cohort__now_ms(void);

/*
 * Milliseconds left before deadline (deadline 0: none, gives -1 = forever),
 * capped at cap_ms when cap_ms >= 0 and the wait has no earlier end.
 */
int cohort__ms_left(uint64_t deadline, int cap_ms);

/* A deadline for timeout_ms from now: 0 when timeout_ms < 0 (none). */
uint64_t cohort__deadline(int timeout_ms);

/*
 * Who holds a shared object's lock, for the owner-death tests: they stop a
 * process, look whether it is inside the critical section, and only then
 * kill it. Each returns the pid (a thread id for the mutex) that the lock
 * word names, 0 when the lock is free. The answer is exact only while the
 * holder cannot run (stopped or dead).
 *
 * cohort__mutex_holder reads the word the kernel itself judges at a
 * thread's death (glibc's robust lock word), so a holder it names dies
 * with the lock marked FUTEX_OWNER_DIED, also in the instructions around
 * taking and releasing it where cohort_mutex_owner() says 0.
 */
pid_t cohort__mutex_holder(const cohort_mutex_t *m);

/*
 * The pid of the process holding the oldest claim on a queue slot of the
 * producers' side (producers true: a message being written) or of the
 * consumers' (a message being copied out, or a dead taker's being
 * recovered); 0 when there is none.
 */
pid_t cohort__queue_holder(const cohort_queue_t *q, bool producers);

/*
 * For the kill matrix: when set (in a victim process only), the queue
 * calls it at these points of its protocol, so that a test can end the
 * process at exactly that instant. NULL in normal use.
 */
enum {
	COHORT__QK_CLAIMED = 1,   /* a producer's claim taken, nothing written yet */
	COHORT__QK_WRITTEN,       /* the message written, not yet published */
	COHORT__QK_TAKEN,         /* a consumer's claim taken, the head not yet moved */
	COHORT__QK_RECOVERING,    /* a dead taker's slot claimed for recovery, not yet freed */
};
extern void (*cohort__queue_hook)(int point);

/* The holder of an arena's lock. */
pid_t cohort__arena_holder(const cohort_arena_t *a);

/*
 * For tests that play a hostile process of the job: the address of a
 * shared field of a queue ("capacity", "max_msg", "region", "tail",
 * "head", "tail_seen", "head_seen") or of an arena ("size"), or NULL for
 * another name; and the packed word of an arena block header, so that a
 * test can forge a block the way someone who read src/arena.c would.
 */
void *cohort__queue_field(const cohort_queue_t *q, const char *name);
void *cohort__arena_field(const cohort_arena_t *a, const char *name);
uint64_t cohort__arena_block_word(uint64_t off, uint64_t size, bool used);

/* Relax the CPU inside a spin loop. */
static inline void cohort__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif
