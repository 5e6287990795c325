/*
 * cohort/shm.h - shared memory between workers: segments, robust mutex, barrier, semaphore, queue, arena.
 *
 * Part of libcohort; include <cohort.h> for all of it. The conventions of
 * the whole API are at the top of cohort.h.
 */
#ifndef COHORT_SHM_H
#define COHORT_SHM_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- shared memory: segments, mutex, barrier, semaphore, queue, arena ---- */

/*
 * Timeouts: every call below that can wait takes timeout_ms: a negative
 * value waits without limit, 0 does not wait at all, and a positive value
 * waits at most that many milliseconds (CLOCK_MONOTONIC).
 */

#define COHORT_SEG_NAME_MAX 64      /* longest segment name, [A-Za-z0-9_-] */
#define COHORT_SEG_ABI 1            /* the segment header's layout version */
#define COHORT_SEG_HEADER_SIZE 4096 /* the header page before the data */

/* A mapped segment. Process-local: each process opens its own. */
struct cohort_seg;

/*
 * How to create or open a segment. Zero-initialise, then set what you need;
 * a NULL options pointer means all defaults.
 */
struct cohort_seg_options {
	const char *dir;     /* directory of the segment files; NULL: probe->shm_path, else /dev/shm */
	const char *job;     /* job scope; NULL: COHORT_JOB, else SLURM_JOB_ID, else local-<pid> */
	uint32_t layout;     /* the caller's layout tag: stored by create, checked by open (0 on open: any) */
	mode_t mode;         /* file mode at creation; 0 means 0600 */
	int no_check;        /* 1: skip the free-space and headroom check (pages are still reserved) */
	const struct cohort_probe *probe; /* where the capacity check reads; NULL: the real system */
	char *why;           /* when not NULL, a failure writes a sentence with the figures here */
	size_t why_size;
};

/*
 * The job scope segment names use: options->job when set, else COHORT_JOB,
 * else SLURM_JOB_ID, else "local-<pid>" of the first process of the program
 * that asked (children forked afterwards inherit it; a program started with
 * exec in another process must be given COHORT_JOB). Writes it into buf
 * (size bytes). Returns 0, or -EINVAL when the scope holds a character
 * other than [A-Za-z0-9_-] or is longer than 63 characters, or
 * -ENAMETOOLONG when buf is too small.
 */
COHORT_EXPORT int cohort_seg_job(const struct cohort_seg_options *options, char *buf, size_t size);

/*
 * Whether job is a job scope segments accept: 1 to 63 characters of
 * [A-Za-z0-9_-]. The one rule cohort_seg_job(), cohort_seg_create() and
 * `cohort run` (which refuses a bad COHORT_JOB before it starts a worker)
 * apply. Returns 1 or 0; NULL is 0.
 */
COHORT_EXPORT int cohort_job_scope_valid(const char *job);

/*
 * The file path of segment name: <dir>/cohort.<uid>.<job>.<name>. Returns
 * 0, -EINVAL for a bad name (empty, longer than COHORT_SEG_NAME_MAX, or a
 * character outside [A-Za-z0-9_-]), or -ENAMETOOLONG.
 */
COHORT_EXPORT int cohort_seg_path(const char *name, const struct cohort_seg_options *options,
                                  char *buf, size_t size);

/*
 * Create segment name with size bytes of data, and map it. The file is
 * created with O_EXCL, O_NOFOLLOW and mode 0600 (options->mode), so an
 * existing segment or a planted symlink is never reused. Before creating,
 * the size (plus the header page) is checked against the free space of the
 * segment directory and against the job's memory headroom (cgroup limit
 * minus usage, since tmpfs pages are charged to the job's cgroup; MemAvailable
 * when there is no cgroup limit). Then every page is reserved with
 * posix_fallocate: a segment that cannot fit fails here, never with a SIGBUS
 * later. The data is zero-filled, page aligned, and followed by an
 * inaccessible guard page, so a write past its end faults at once.
 *
 * On success stores a handle in *ret_seg (free it with cohort_seg_close)
 * and returns 0. Errors: -EINVAL (bad name, size 0), -EEXIST (the segment
 * exists), COHORT_ENOSPACE (it does not fit: options->why names both
 * figures), or another -errno. On failure nothing is left behind.
 */
COHORT_EXPORT int cohort_seg_create(const char *name, size_t size,
                                    const struct cohort_seg_options *options,
                                    struct cohort_seg **ret_seg);

/*
 * Open and map an existing segment of this user and job. The header is
 * validated first: magic, ABI version, checksum, sizes against the file's
 * size, owner, name and job, and options->layout when it is not 0. Errors:
 * -ENOENT (no such segment), COHORT_EBADSEG (not a cohort segment, a
 * foreign layout or ABI, or a corrupt header: options->why says which),
 * -EAGAIN (its creator has not finished creating it yet; retry), -ELOOP
 * (a symlink), or another -errno. On success *ret_seg holds a handle to
 * free with cohort_seg_close.
 */
COHORT_EXPORT int cohort_seg_open(const char *name, const struct cohort_seg_options *options,
                                  struct cohort_seg **ret_seg);

/* Unmap a segment and free its handle. The file stays. NULL is accepted. Returns 0. */
COHORT_EXPORT int cohort_seg_close(struct cohort_seg *seg);

/*
 * Remove segment name of this user and job. Processes that have it mapped
 * keep their mapping; the memory returns when the last one unmaps it.
 * Returns 0, -ENOENT, -EINVAL for a bad name, or another -errno.
 */
COHORT_EXPORT int cohort_seg_unlink(const char *name, const struct cohort_seg_options *options);

/*
 * Remove every segment of this user and job (options->job, or the job
 * scope as for create) from the segment directory: what a supervisor does
 * when the job ends, so that no segment outlives it. Only files named
 * cohort.<uid>.<job>.<name> with a valid name are touched, never followed
 * if symlinks. Returns the number removed (>= 0), or -errno when the
 * directory cannot be read; *ret_failed, when not NULL, gets the number
 * that could not be removed.
 */
COHORT_EXPORT int cohort_seg_unlink_job(const struct cohort_seg_options *options,
                                        unsigned *ret_failed);

/* The data of a segment (page aligned), and its size in bytes as created. */
COHORT_EXPORT void *cohort_seg_data(const struct cohort_seg *seg);
COHORT_EXPORT size_t cohort_seg_size(const struct cohort_seg *seg);

/* What a segment file's header says, for listings. */
struct cohort_seg_info {
	char name[COHORT_SEG_NAME_MAX + 1];
	char job[COHORT_ID_MAX];
	uint32_t abi;            /* header ABI version */
	uint32_t layout;         /* the creator's layout tag */
	uid_t uid;               /* the creating user */
	pid_t creator_pid;
	uint64_t creator_start;  /* the creator's start time, clock ticks since boot */
	uint64_t size;           /* data bytes */
	uint64_t file_size;      /* header + data + padding, all reserved */
	uint64_t created;        /* creation time, seconds since the epoch */
	int creator_alive;       /* 1 when the creator process still runs */
};

/*
 * Read and validate the header of the segment file at path without mapping
 * it. Returns 0 and fills *ret_info, COHORT_EBADSEG for a file that is not a
 * valid cohort segment, -EAGAIN for one still being created, or -errno.
 */
COHORT_EXPORT int cohort_seg_stat(const char *path, struct cohort_seg_info *ret_info);

/*
 * cohort_mutex: a process-shared, robust mutex to place in a segment.
 * When its owner dies holding it, the next locker gets COHORT_EOWNERDEAD
 * and owns the mutex: it repairs the protected data, calls
 * cohort_mutex_consistent(), and the mutex is usable as before. Unlocking
 * without marking it consistent makes it COHORT_ENOTRECOVERABLE for good.
 * The owner's death is seen by the kernel (the robust futex list), at any
 * instruction, not guessed.
 */
typedef struct cohort_mutex {
	COHORT_ALIGN64 unsigned char opaque[64];
} cohort_mutex_t;

/* Initialise a mutex in caller-placed memory (once, before any process uses it). Returns 0 or -errno. */
COHORT_EXPORT int cohort_mutex_init(cohort_mutex_t *m);

/*
 * Lock, waiting at most timeout_ms. Returns 0, COHORT_EOWNERDEAD (the lock
 * is held and the previous owner died: repair, then cohort_mutex_consistent),
 * COHORT_ENOTRECOVERABLE, COHORT_ETIMEDOUT (at once when timeout_ms is 0), or
 * -EDEADLK when the caller already holds it.
 */
COHORT_EXPORT int cohort_mutex_lock(cohort_mutex_t *m, int timeout_ms);

/* Mark the data consistent after COHORT_EOWNERDEAD. Returns 0 or -EINVAL. */
COHORT_EXPORT int cohort_mutex_consistent(cohort_mutex_t *m);

/* Unlock. Returns 0, or -EPERM when the caller does not hold it. */
COHORT_EXPORT int cohort_mutex_unlock(cohort_mutex_t *m);

/* The pid of the process holding the mutex, or 0 when free (for diagnostics; it may change at once). */
COHORT_EXPORT pid_t cohort_mutex_owner(const cohort_mutex_t *m);

/*
 * The pid of the last owner that died holding the mutex; 0 if none, or if
 * it cannot be told for sure (a death in the few instructions around
 * taking or releasing the lock). It never names a process that is alive.
 */
COHORT_EXPORT pid_t cohort_mutex_last_dead(const cohort_mutex_t *m);

#define COHORT_MEMBERS_MAX 64   /* processes in one barrier or semaphore */

/*
 * A barrier for n processes, placed in a segment. Members join (wait
 * joins too); a waiter checks the members' liveness (their leases, as
 * for cohort_queue) while it waits, so
 * when a member dies the waiters return COHORT_EPEERDEAD instead of hanging,
 * and cohort_barrier_dead() names the dead process. A broken barrier stays
 * broken until it is initialised again.
 */
typedef struct cohort_barrier {
	COHORT_ALIGN64 unsigned char opaque[1152];
} cohort_barrier_t;

/* Initialise for n processes (1..COHORT_MEMBERS_MAX). Returns 0 or -EINVAL. */
COHORT_EXPORT int cohort_barrier_init(cohort_barrier_t *b, unsigned n);

/*
 * Join the barrier's members so that others see this process if it dies
 * before it reaches the barrier. Idempotent. Returns 0, or -ENOSPC when
 * COHORT_MEMBERS_MAX processes are already members.
 */
COHORT_EXPORT int cohort_barrier_join(cohort_barrier_t *b);

/*
 * Leave the barrier for good, cleanly: the barrier now waits for one
 * process fewer (releasing the round if everyone else is already there),
 * and this process's exit will not be taken for a death. Returns 0, or
 * -ENOENT when the caller is not a member.
 */
COHORT_EXPORT int cohort_barrier_leave(cohort_barrier_t *b);

/*
 * Wait until n members have arrived. Returns 1 in exactly one process of
 * each round, 0 in the others, or COHORT_EPEERDEAD (a member died: see
 * cohort_barrier_dead), COHORT_ETIMEDOUT (the barrier is then broken for
 * all: others get COHORT_EPEERDEAD with dead pid 0), or -ENOSPC.
 */
COHORT_EXPORT int cohort_barrier_wait(cohort_barrier_t *b, int timeout_ms);

/* The pid of the member whose death broke the barrier, or 0. */
COHORT_EXPORT pid_t cohort_barrier_dead(const cohort_barrier_t *b);

/*
 * A counting semaphore placed in a segment. Members join (wait joins
 * too), and each member's holdings (waits not yet matched by its
 * posts) are tracked, so that when a member dies waiters get
 * COHORT_EPEERDEAD naming it instead of waiting forever for units the dead
 * process took with it. cohort_sem_reap() then removes dead members and
 * gives back what they held.
 */
typedef struct cohort_sem {
	COHORT_ALIGN64 unsigned char opaque[1152];
} cohort_sem_t;

/* Initialise with value units. Returns 0 or -EINVAL. */
COHORT_EXPORT int cohort_sem_init(cohort_sem_t *s, unsigned value);

/* Join the members. Idempotent. Returns 0, or -ENOSPC. */
COHORT_EXPORT int cohort_sem_join(cohort_sem_t *s);

/*
 * Leave the members cleanly, so that this process's exit is not taken for
 * a death; units it still holds are posted back. Returns the number of
 * units given back (>= 0), or -ENOENT when the caller is not a member.
 */
COHORT_EXPORT int cohort_sem_leave(cohort_sem_t *s);

/*
 * Take one unit, waiting at most timeout_ms. Returns 0, COHORT_ETIMEDOUT
 * (at once when timeout_ms is 0 and no unit is free), COHORT_EPEERDEAD
 * when a member has died (see cohort_sem_dead and cohort_sem_reap), or
 * -ENOSPC when the caller cannot become a member.
 */
COHORT_EXPORT int cohort_sem_wait(cohort_sem_t *s, int timeout_ms);

/*
 * Give one unit back. Any process may post; a member's post first settles
 * a unit it holds. Returns 0, or -EOVERFLOW at 2^31-1 units.
 */
COHORT_EXPORT int cohort_sem_post(cohort_sem_t *s);

/* The units free now. */
COHORT_EXPORT unsigned cohort_sem_value(const cohort_sem_t *s);

/* The pid of a dead member found by the last failed wait, or 0. */
COHORT_EXPORT pid_t cohort_sem_dead(const cohort_sem_t *s);

/*
 * Remove every dead member and post back the units each held. Returns the
 * number of dead members removed (>= 0); *ret_units, when not NULL, gets
 * the units given back.
 */
COHORT_EXPORT int cohort_sem_reap(cohort_sem_t *s, unsigned *ret_units);

/*
 * cohort_queue: a bounded multi-producer multi-consumer queue of
 * variable-size messages in a caller-placed region of a segment, with no
 * lock on its fast path. The ring is an array of 128-byte slots, each with
 * a state word (Vyukov's bounded MPMC queue): a producer claims the slots
 * of its message with one compare-and-swap that also names it (its entry
 * in the queue's table of up to 128 processes, and through that its lease:
 * an OFD lock on /dev/shm/.cohort-lease.<uid> that the kernel drops when
 * the process dies, so that a thread's exit, another pid namespace or a
 * reused pid never passes for a death or a life: docs/shm.md), writes the
 * message, then publishes it with one store; a consumer claims a published
 * message the same way, copies it out and frees its slots. A process
 * killed in the middle of an operation therefore leaves a slot that names
 * it: whoever next waits at that slot sees the claimant dead, recovers the
 * slot (exactly one does) and goes on, and at most the dead process's own
 * message is lost, which the queue's statistics report. A preempted
 * producer holds up only the consumers that reach its slot, not the other
 * producers. Waits spin adaptively, then sleep on a futex. Liveness is per
 * process: a thread that exits while inside an operation of a process that
 * lives on holds up that slot.
 *
 * The handle is process-local: it holds the queue's geometry (slot count,
 * longest message, region size) as this process validated it at init or
 * open, and only that copy bounds an index into the ring, so a process
 * that rewrites the shared header or positions cannot make another one
 * read or write outside the region: it gets COHORT_ECORRUPT instead. A
 * child forked after init or open may use its parent's handle. Close a
 * handle only when none of its process's threads is inside an operation.
 */
typedef struct cohort_queue cohort_queue_t;

#define COHORT_QUEUE_HEADER 4096  /* bytes of queue bookkeeping before the ring (format 2) */

/*
 * Bytes of memory a queue with a ring of capacity bytes needs. The ring
 * holds capacity / 128 slots, rounded down to a power of two; a message
 * takes ceil(len / 112) slots.
 */
COHORT_EXPORT size_t cohort_queue_footprint(size_t capacity);

/*
 * Build a queue in mem (size bytes, 64-byte aligned, at least
 * cohort_queue_footprint(1024)). Every process then uses the same memory
 * through cohort_queue_open. Returns 0 and a handle in *ret_q (free it
 * with cohort_queue_close), -EINVAL, or -ENOMEM.
 */
COHORT_EXPORT int cohort_queue_init(void *mem, size_t size, cohort_queue_t **ret_q);

/*
 * Use a queue another process built in mem. Reads its geometry once and
 * checks it against size. Returns 0 and a handle in *ret_q (free it with
 * cohort_queue_close), COHORT_EBADSEG when mem holds no valid queue,
 * -EPROTONOSUPPORT when it holds a queue of format 1 (the side-locked
 * queue of libcohort before the lock-free one, whose layout differs: the
 * processes of a job must share one libcohort), or -ENOMEM.
 */
COHORT_EXPORT int cohort_queue_open(void *mem, size_t size, cohort_queue_t **ret_q);

/*
 * Free this process's handle and its entry in the queue's process table.
 * The queue itself, in the shared memory, is untouched and other handles
 * to it stay valid. NULL is accepted. Returns 0.
 */
COHORT_EXPORT int cohort_queue_close(cohort_queue_t *q);

/*
 * Append a message of len bytes (1..cohort_queue_max_message), waiting at
 * most timeout_ms for room. Returns 0, COHORT_ETIMEDOUT (still full; at
 * once when timeout_ms is 0), -EMSGSIZE, -EUSERS when 128 live processes
 * already use the queue, or COHORT_ECORRUPT when the queue's bookkeeping
 * fails its checks (a shared header that no longer holds the geometry of
 * open time, a position or slot state that fits no lap of the ring);
 * nothing is then written.
 */
COHORT_EXPORT int cohort_queue_send(cohort_queue_t *q, const void *msg, size_t len, int timeout_ms);

/*
 * Take the oldest message into buf (size bytes), waiting at most
 * timeout_ms for one. Returns its length (> 0), COHORT_ETIMEDOUT (still
 * empty; at once when timeout_ms is 0), -EMSGSIZE when buf is too small
 * (the message stays queued; cohort_queue_max_message bounds every
 * length), -EUSERS, or COHORT_ECORRUPT. A message whose producer died before publishing it is
 * skipped (and counted in lost_send).
 */
COHORT_EXPORT int cohort_queue_recv(cohort_queue_t *q, void *buf, size_t size, int timeout_ms);

/* The longest message the queue accepts. */
COHORT_EXPORT size_t cohort_queue_max_message(const cohort_queue_t *q);

struct cohort_queue_stats {
	uint64_t capacity;      /* ring bytes */
	uint64_t used;          /* ring bytes holding messages now */
	uint64_t sent;          /* messages sent (one whose producer died after claiming its slots may be counted, and is then in lost_send too) */
	uint64_t received;      /* messages taken (with those in lost_recv) */
	uint64_t lost_send;     /* messages a producer died writing (never published) */
	uint64_t lost_recv;     /* messages a consumer died holding (taken, never returned) */
	uint64_t recovered;     /* claims of dead processes recovered */
	pid_t last_dead;        /* the last dead producer or consumer, 0 if none */
};

/* A snapshot of the queue's counters. Returns 0. */
COHORT_EXPORT int cohort_queue_stats(const cohort_queue_t *q, struct cohort_queue_stats *ret);

/*
 * cohort_arena: an allocator inside a caller-placed region of a segment.
 * Allocations are named by offset handles (each process maps the segment
 * at its own address); every handle is bounds-checked, and a canary after
 * each allocation catches a write past its end at free or check time.
 * Allocation takes a robust mutex. Every change to the block chain is a
 * single 8-byte store, so a process that dies inside the arena leaves a
 * valid chain and the next caller goes on (a block it had just allocated
 * stays allocated; the statistics count the recovery).
 *
 * The handle is process-local: it holds the arena's size as read and
 * validated at init or open, and every block offset and length read from
 * shared memory is checked against that copy before it is used, so a
 * rewritten size or a forged block gives COHORT_ECORRUPT, never an
 * allocation or a write outside the region. A child forked after init or
 * open may use its parent's handle.
 */
typedef struct cohort_arena cohort_arena_t;

/* Offset of an allocation from the arena's start; 0 is never valid. */
typedef uint64_t cohort_off_t;

/*
 * Build an arena in mem (size bytes, 64-byte aligned, at least 4 KiB).
 * Returns 0 and a handle in *ret_a (free it with cohort_arena_close),
 * -EINVAL, or -ENOMEM.
 */
COHORT_EXPORT int cohort_arena_init(void *mem, size_t size, cohort_arena_t **ret_a);

/*
 * Use an arena built in mem by another process; its size is read once and
 * must fit in size. Returns 0 and a handle in *ret_a (free it with
 * cohort_arena_close), COHORT_EBADSEG, or -ENOMEM.
 */
COHORT_EXPORT int cohort_arena_open(void *mem, size_t size, cohort_arena_t **ret_a);

/* Free this process's handle; the arena in shared memory is untouched. NULL is accepted. Returns 0. */
COHORT_EXPORT int cohort_arena_close(cohort_arena_t *a);

/*
 * Allocate size bytes (16-byte aligned). Returns 0 and the handle in
 * *ret_off, COHORT_ENOSPACE when no free block is large enough, -EINVAL for
 * size 0, or COHORT_ECORRUPT when the arena's block chain is damaged.
 */
COHORT_EXPORT int cohort_arena_alloc(cohort_arena_t *a, size_t size, cohort_off_t *ret_off);

/*
 * Free an allocation. Returns 0, COHORT_ECORRUPT when the handle is not a
 * live allocation (out of bounds, double free) or its canary was
 * overwritten (the block is then not freed).
 */
COHORT_EXPORT int cohort_arena_free(cohort_arena_t *a, cohort_off_t off);

/* The address of an allocation in this process, or NULL for an invalid handle. */
COHORT_EXPORT void *cohort_arena_ptr(cohort_arena_t *a, cohort_off_t off);

/*
 * Check one allocation's header and canary. Returns its usable size
 * (INT_MAX for larger ones), or COHORT_ECORRUPT.
 */
COHORT_EXPORT int cohort_arena_check(cohort_arena_t *a, cohort_off_t off);

struct cohort_arena_stats {
	uint64_t size;          /* bytes managed */
	uint64_t used;          /* bytes in live allocations, headers included */
	uint64_t free;          /* bytes free */
	uint64_t largest_free;  /* the largest single free block */
	uint64_t allocations;   /* live allocations */
	uint64_t total_allocs;  /* allocations ever made */
	uint64_t failed;        /* allocations refused for lack of space */
	uint64_t recovered;     /* times a dead holder's lock was recovered */
};

/* Walk the arena and fill *ret. Returns 0 or COHORT_ECORRUPT. */
COHORT_EXPORT int cohort_arena_stats(cohort_arena_t *a, struct cohort_arena_stats *ret);

#ifdef __cplusplus
}
#endif

#endif /* COHORT_SHM_H */
