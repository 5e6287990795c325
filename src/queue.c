/*
 * queue.c - a bounded MPMC queue of variable-size messages in shared
 * memory that a kill -9 cannot wedge.
 *
 * Lock-free bounded queues (Vyukov's, ck_ring's multi-producer enqueue)
 * let a producer claim a slot and fill it later: killed in between, it
 * leaves a slot that is claimed and never filled, and every consumer stops
 * there for good. This queue never publishes a claim. The ring is a byte
 * ring with two monotonic positions, tail (producers) and head (consumers).
 * Producers serialise on one robust mutex, consumers on another, so one
 * producer and one consumer never touch each other's lock. A producer
 * writes its record beyond the tail, then publishes the new tail with one
 * store; a consumer copies a record out, then publishes the new head with
 * one store. Whatever instruction a process dies at, the positions are
 * consistent: the kernel hands its lock to the next comer with
 * COHORT_EOWNERDEAD, which only has to settle the books (was the dead
 * process's message published or taken?) before going on.
 *
 * Waking a sleeper needs a store-load fence on the fast path (publish the
 * position, then look for sleepers): a locked instruction, which waits for
 * the record's stores to reach the other CPU and costs more than the rest
 * of the operation. Where the kernel offers it, the fence moves to the
 * slow path instead: a process about to sleep calls
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which runs a full barrier
 * on every CPU running a process of the queue, so that either the
 * publisher's position is visible to the sleeper or the sleeper's count
 * is visible to the publisher. Processes register for it on their first
 * operation; where it is missing, publishing uses a locked store.
 *
 * Records: a u32 length, a u32 tag, the payload padded to 8 bytes. A
 * record never wraps: when it does not fit before the ring's end a WRAP
 * tag fills the rest.
 *
 * Any process of the job can write the shared header, so nothing in it is
 * trusted after init or attach: the geometry (ring capacity, longest
 * message, region size) is copied then into the process-local handle, and
 * every position read from shared memory is bounded by the local copy
 * before it indexes the ring. A header that no longer matches the local
 * copy, a position not on a record boundary or a record that does not fit
 * is COHORT_ECORRUPT, and nothing is written through it.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/membarrier.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define QUEUE_MAGIC 0x3145554555514843ULL   /* "CHQUEUE1" */
#define TAG_MSG  0x4d534731u
#define TAG_WRAP 0x50415257u
#define SPIN_MIN 64
#define SPIN_MAX 8192
#define SPIN_START 1024

/*
 * A side's progress word: count << 1 | busy. One store both finishes an
 * operation and counts it, so recovery never has to guess whether the
 * dead process had counted its message.
 */
#define BUSY 1u
#define NO_TARGET UINT64_MAX

/*
 * A side's lock. The lock word names the holder, set by the one
 * compare-and-swap that takes the lock: there is no instant at which a
 * holder is not named. It holds the holder's pid (for messages) and its
 * lease token (an OFD lock the kernel drops when the process dies, never
 * at a thread's exit, seen from any pid namespace and not inherited by a
 * process that reuses the pid: peer.c), or the low bits of its start time
 * where it has no lease. A waiter that finds the holder dead takes the
 * lock over with a compare-and-swap from the dead word, so exactly one
 * waiter recovers. Release is a plain store, not a locked instruction;
 * sleepers are woken through gen, a futex word, with the same membarrier
 * fence as the positions (see above).
 */
struct qlock {
	_Alignas(64) _Atomic uint64_t owner;   /* see self_word(); 0: free */
	_Atomic uint32_t waiters;
	_Atomic uint32_t gen;
};

/*
 * The header, one cache line per group of fields written together, so
 * that a producer and a consumer on two CPUs exchange as few lines as
 * possible: the tail line and the record's lines per message. Each side
 * keeps a cached copy of the other side's position and reads the real one
 * only when the cached one says full (producers) or empty (consumers).
 */
struct qshm {
	/* set once by init; compared with the handle's copy, never trusted */
	_Atomic uint64_t magic;
	uint64_t capacity;      /* ring bytes, a multiple of 16 */
	uint64_t max_msg;
	uint64_t region;        /* bytes of the whole region */
	uint32_t asym;          /* 1: sleepers fence with membarrier (see above) */

	struct qlock plock;
	struct qlock clock;

	/* producers only, under plock */
	_Alignas(64) _Atomic uint64_t pword;     /* sent << 1 | busy */
	_Atomic uint64_t ptarget;   /* the tail the busy producer will publish */
	_Atomic uint64_t head_seen; /* the head as producers last read it */
	_Atomic uint32_t pspin;     /* producers' current spin budget */

	/* written by producers, read by consumers */
	_Alignas(64) _Atomic uint64_t tail;
	_Atomic uint32_t pgen;      /* futex word consumers sleep on */

	/* consumers only, under clock */
	_Alignas(64) _Atomic uint64_t cword;     /* received << 1 | busy */
	_Atomic uint64_t ctarget;
	_Atomic uint64_t tail_seen; /* the tail as consumers last read it */
	_Atomic uint32_t cspin;     /* consumers' current spin budget */

	/* written by consumers, read by producers */
	_Alignas(64) _Atomic uint64_t head;
	_Atomic uint32_t cgen;      /* futex word producers sleep on */

	/* written only by processes about to sleep: read-mostly */
	_Alignas(64) _Atomic uint32_t cwaiters;  /* consumers asleep waiting for a message */
	_Alignas(64) _Atomic uint32_t pwaiters;  /* producers asleep waiting for room */

	/* recovery statistics */
	_Alignas(64) _Atomic uint64_t lost_send;
	_Atomic uint64_t lost_recv;
	_Atomic uint64_t recovered;
	_Atomic int32_t last_dead;
};

_Static_assert(sizeof(struct qshm) <= COHORT_QUEUE_HEADER, "queue header too large");

/*
 * The process-local handle: the geometry as this process validated it at
 * init or attach. Only these copies bound an index into the ring.
 */
struct cohort_queue {
	struct qshm *shm;
	uint64_t capacity;
	uint64_t max_msg;
	uint64_t region;
};

static long membarrier(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

/* Does this kernel offer the expedited global membarrier? */
static bool asym_supported(void)
{
	long r = membarrier(MEMBARRIER_CMD_QUERY);

	return r > 0 && (r & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
	       (r & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
}

/*
 * May this process publish without a locked store? Only once it is
 * registered, so that a sleeper's membarrier reaches it.
 */
static bool fast_publish(const struct qshm *q)
{
	static _Atomic pid_t registered;
	pid_t me;

	if (!q->asym)
		return false;
	me = cohort__pid();
	if (atomic_load_explicit(&registered, memory_order_relaxed) == me)
		return true;
	if (membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0)
		return false;
	atomic_store(&registered, me);
	return true;
}

/*
 * Before sleeping, after announcing ourselves: make every publisher's
 * position visible to us, or our announcement visible to it. Returns the
 * longest we may sleep: without the fence, a wake-up can be missed, so
 * sleep in short slices.
 */
static int fence_before_sleep(const struct qshm *q, int left)
{
	if (q->asym && membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0)
		return left;
	if (!q->asym)
		return left;   /* every publisher used a locked store */
	return left < 0 || left > 10 ? 10 : left;
}

/*
 * Adaptive spinning: spin up to the side's budget for the position to
 * move. A wait that ends while spinning doubles the budget (the peer is
 * running and quick); one that has to sleep halves it (spinning only
 * burned a CPU the peer may have needed). The budget is a shared hint:
 * racing updates are harmless.
 */
static bool spin_until_moved(_Atomic uint64_t *pos, uint64_t seen, _Atomic uint32_t *budget)
{
	uint32_t n = atomic_load_explicit(budget, memory_order_relaxed);

	if (n < SPIN_MIN || n > SPIN_MAX)
		n = SPIN_START;
	for (uint32_t i = 0; i < n; i++) {
		cohort__cpu_relax();
		if (atomic_load_explicit(pos, memory_order_relaxed) != seen) {
			if (n < SPIN_MAX)
				atomic_store_explicit(budget, n * 2, memory_order_relaxed);
			return true;
		}
	}
	if (n > SPIN_MIN)
		atomic_store_explicit(budget, n / 2, memory_order_relaxed);
	return false;
}

static unsigned char *ring(struct qshm *q)
{
	return (unsigned char *)q + COHORT_QUEUE_HEADER;
}

size_t cohort_queue_footprint(size_t capacity)
{
	capacity = (capacity + 15) & ~(size_t)15;
	return COHORT_QUEUE_HEADER + capacity;
}

/* A local handle for the queue at q, with the geometry read from it now. */
static cohort_queue_t *handle_new(struct qshm *q)
{
	cohort_queue_t *queue = malloc(sizeof(*queue));

	if (!queue)
		return NULL;
	queue->shm = q;
	queue->capacity = q->capacity;
	queue->max_msg = q->max_msg;
	queue->region = q->region;
	return queue;
}

int cohort_queue_init(void *mem, size_t size, cohort_queue_t **ret_q)
{
	struct qshm *q = mem;
	cohort_queue_t *queue;
	uint64_t cap;

	if (!mem || !ret_q || ((uintptr_t)mem & 63) || size < cohort_queue_footprint(1024))
		return -EINVAL;
	cap = (size - COHORT_QUEUE_HEADER) & ~(uint64_t)15;
	if (cap > (uint64_t)INT_MAX * 2)
		cap = (uint64_t)INT_MAX * 2 & ~(uint64_t)15;
	queue = malloc(sizeof(*queue));
	if (!queue)
		return -ENOMEM;
	memset(q, 0, COHORT_QUEUE_HEADER);
	q->capacity = cap;
	q->max_msg = q->capacity / 2 - 8;
	q->region = size;
	q->asym = asym_supported();
	atomic_store(&q->magic, QUEUE_MAGIC);
	*queue = (cohort_queue_t){ .shm = q, .capacity = cap, .max_msg = cap / 2 - 8, .region = size };
	*ret_q = queue;
	return 0;
}

int cohort_queue_open(void *mem, size_t size, cohort_queue_t **ret_q)
{
	struct qshm *q = mem;
	cohort_queue_t *queue;

	if (!mem || !ret_q || ((uintptr_t)mem & 63) || size < COHORT_QUEUE_HEADER)
		return -EINVAL;
	queue = handle_new(q);
	if (!queue)
		return -ENOMEM;
	/* Validate the copies, not the shared fields: those may change meanwhile. */
	if (atomic_load(&q->magic) != QUEUE_MAGIC || queue->region != size ||
	    queue->capacity < 1024 || queue->capacity % 16 ||
	    queue->capacity > size - COHORT_QUEUE_HEADER ||
	    queue->capacity > ((uint64_t)INT_MAX * 2 & ~(uint64_t)15) ||
	    queue->max_msg != queue->capacity / 2 - 8 || q->asym > 1) {
		free(queue);
		return COHORT_EBADSEG;
	}
	*ret_q = queue;
	return 0;
}

int cohort_queue_close(cohort_queue_t *q)
{
	free(q);
	return 0;
}

size_t cohort_queue_max_message(const cohort_queue_t *q)
{
	return (size_t)q->max_msg;
}

/*
 * Does the shared header still say what it said when this process
 * attached? The local copies are what bound every access, so a rewritten
 * header cannot make this process read or write outside the region; it is
 * refused all the same, since the writer of the header is broken or
 * hostile and its positions cannot be trusted either.
 */
static int geometry_intact(const cohort_queue_t *queue)
{
	const struct qshm *q = queue->shm;

	if (atomic_load_explicit(&q->magic, memory_order_relaxed) != QUEUE_MAGIC ||
	    q->capacity != queue->capacity || q->max_msg != queue->max_msg ||
	    q->region != queue->region)
		return COHORT_ECORRUPT;
	return 0;
}

static uint64_t rec_size(uint64_t len)
{
	return 8 + ((len + 7) & ~(uint64_t)7);
}

/*
 * Lock words: pid << 40 | kind << 39 | value. kind 1: value is the
 * holder's lease token; kind 0: the low 39 bits of its start time (0:
 * unknown), for a process without a lease.
 */
#define WORD_PID_SHIFT 40
#define WORD_LEASE ((uint64_t)1 << 39)
#define WORD_VALUE (WORD_LEASE - 1)

_Static_assert(COHORT__LEASE_TOKEN_MAX == WORD_LEASE, "a token fits the lock word");

/* This process's lock word. */
static uint64_t self_word(void)
{
	uint64_t token = cohort__lease();
	uint64_t w = (uint64_t)(uint32_t)cohort__pid() << WORD_PID_SHIFT;

	return token ? w | WORD_LEASE | token : w | (cohort__self_start() & WORD_VALUE);
}

/*
 * Is the holder named by lock word w dead? A process that cannot be
 * proven dead is alive: a lock is never taken from the living. With a
 * lease, only the kernel's word counts: the pid may be another
 * namespace's, or reused.
 */
static bool holder_dead(uint64_t w)
{
	pid_t pid = (pid_t)(w >> WORD_PID_SHIFT);
	uint64_t start39 = w & WORD_VALUE;
	uint64_t start;

	if (w & WORD_LEASE)
		return !cohort__lease_alive(start39);
	if (!cohort__pid_alive(pid, 0))
		return true;
	/* The pid is alive: is it still the same process? (0: start unknown) */
	return start39 != 0 && cohort__proc_start(pid, &start, NULL) == 0 &&
	       (start & WORD_VALUE) != start39;
}

#define LOCK_SPINS 256

/*
 * Take lock l. Returns 0, or the pid (> 0) of a dead holder it was taken
 * from, or COHORT_ETIMEDOUT.
 */
static int qlock_take(struct qshm *q, struct qlock *l, uint64_t deadline, int timeout_ms)
{
	uint64_t me = self_word();
	int slice = 1;

	for (;;) {
		uint64_t w = 0;

		if (atomic_compare_exchange_strong_explicit(&l->owner, &w, me, memory_order_acquire,
		                                            memory_order_relaxed))
			return 0;
		/* Held: its holders are brief, so spin for the release first. */
		for (int i = 0; i < LOCK_SPINS && w != 0; i++) {
			cohort__cpu_relax();
			w = atomic_load_explicit(&l->owner, memory_order_relaxed);
		}
		if (w == 0)
			continue;
		if (holder_dead(w)) {
			if (atomic_compare_exchange_strong_explicit(&l->owner, &w, me, memory_order_acquire,
			                                            memory_order_relaxed)) {
				/* > 0 says "taken from a dead holder", even for a word without a pid. */
				pid_t dead = (pid_t)(w >> WORD_PID_SHIFT);

				return dead > 0 ? (int)dead : 1;
			}
			continue;
		}
		if (timeout_ms == 0)
			return COHORT_ETIMEDOUT;
		if (deadline && cohort__ms_left(deadline, -1) == 0)
			return COHORT_ETIMEDOUT;
		/* Sleep in slices, to check the holder's liveness between them. */
		int left = cohort__ms_left(deadline, slice);
		if (slice < 50)
			slice *= 2;
		atomic_fetch_add(&l->waiters, 1);
		left = fence_before_sleep(q, left);
		uint32_t g = atomic_load(&l->gen);
		if (atomic_load(&l->owner) == w)
			cohort__futex_wait(&l->gen, g, left);
		atomic_fetch_sub(&l->waiters, 1);
	}
}

static void qlock_release(struct qlock *l, bool fast)
{
	if (fast)
		atomic_store_explicit(&l->owner, 0, memory_order_release);
	else
		atomic_store(&l->owner, 0);
	atomic_signal_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&l->waiters, memory_order_relaxed)) {
		atomic_fetch_add(&l->gen, 1);
		cohort__futex_wake(&l->gen, 1);
	}
}

/*
 * Take a side's lock. If its holder died, settle that side's books: the
 * dead process's operation happened iff the position reached its target.
 */
static int lock_side(struct qshm *q, bool producer, uint64_t deadline, int timeout_ms)
{
	int r = qlock_take(q, producer ? &q->plock : &q->clock, deadline, timeout_ms);

	if (r <= 0)
		return r;

	_Atomic uint64_t *word = producer ? &q->pword : &q->cword;
	uint64_t w = atomic_load(word);

	if (w & BUSY) {
		uint64_t pos = atomic_load(producer ? &q->tail : &q->head);
		uint64_t target = atomic_load(producer ? &q->ptarget : &q->ctarget);
		bool done = pos == target;

		if (producer) {
			/* Published: it counts as sent. Not published: lost. */
			if (!done)
				atomic_fetch_add(&q->lost_send, 1);
		} else {
			/* Taken but never returned: lost with the consumer. Not taken: still queued. */
			if (done)
				atomic_fetch_add(&q->lost_recv, 1);
		}
		atomic_store(word, ((w >> 1) + (done ? 1 : 0)) << 1);
	}
	atomic_fetch_add(&q->recovered, 1);
	atomic_store(&q->last_dead, (int32_t)r);
	return 0;
}

int cohort_queue_send(cohort_queue_t *queue, const void *msg, size_t len, int timeout_ms)
{
	struct qshm *q = queue->shm;
	uint64_t deadline = cohort__deadline(timeout_ms), cap = queue->capacity;
	uint64_t rec = rec_size(len);
	int r;

	if (len == 0 || len > queue->max_msg)
		return -EMSGSIZE;
	r = geometry_intact(queue);
	if (r < 0)
		return r;
	bool fast = fast_publish(q);
	for (;;) {
		r = lock_side(q, true, deadline, timeout_ms);
		if (r < 0)
			return r;
		/*
		 * Busy from here on: a death before the tail is published
		 * loses this message, and recovery counts it.
		 */
		uint64_t w = atomic_load_explicit(&q->pword, memory_order_relaxed);
		atomic_store_explicit(&q->ptarget, NO_TARGET, memory_order_relaxed);
		atomic_store_explicit(&q->pword, w | BUSY, memory_order_relaxed);

		uint64_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
		uint64_t h = atomic_load_explicit(&q->head_seen, memory_order_relaxed);
		uint64_t idx = t % cap, pad = cap - idx < rec ? cap - idx : 0;

		if (t - h > cap || t - h + pad + rec > cap) {
			/* Full by the cached head: read the real one. */
			h = atomic_load_explicit(&q->head, memory_order_acquire);
			atomic_store_explicit(&q->head_seen, h, memory_order_relaxed);
		}

		/* Records are 8-byte multiples: an odd tail would put one across the ring's end. */
		if (t % 8 || t - h > cap) {
			atomic_store_explicit(&q->pword, w, memory_order_relaxed);
			qlock_release(&q->plock, fast);
			return COHORT_ECORRUPT;
		}
		if (t - h + pad + rec <= cap) {
			unsigned char *p;
			uint32_t hdr[2] = { (uint32_t)len, TAG_MSG };

			atomic_store_explicit(&q->ptarget, t + pad + rec, memory_order_relaxed);
			if (pad) {
				uint32_t wrap[2] = { 0, TAG_WRAP };

				memcpy(ring(q) + idx, wrap, sizeof(wrap));
				idx = 0;
			}
			p = ring(q) + idx;
			memcpy(p, hdr, sizeof(hdr));
			memcpy(p + 8, msg, len);
			/* Publish: see the top of the file for why a plain store may do. */
			if (fast)
				atomic_store_explicit(&q->tail, t + pad + rec, memory_order_release);
			else
				atomic_store(&q->tail, t + pad + rec);
			atomic_store_explicit(&q->pword, ((w >> 1) + 1) << 1, memory_order_release);
			qlock_release(&q->plock, fast);
			/* The compiler must not read the sleepers before publishing. */
			atomic_signal_fence(memory_order_seq_cst);
			if (atomic_load_explicit(&q->cwaiters, memory_order_relaxed)) {
				atomic_fetch_add(&q->pgen, 1);
				cohort__futex_wake(&q->pgen, INT_MAX);
			}
			return 0;
		}
		atomic_store_explicit(&q->pword, w, memory_order_relaxed);
		qlock_release(&q->plock, fast);
		if (timeout_ms == 0)
			return COHORT_ETIMEDOUT;

		/* Full: wait for the head to move. */
		if (!spin_until_moved(&q->head, h, &q->pspin)) {
			int left = cohort__ms_left(deadline, -1);

			if (left == 0)
				return COHORT_ETIMEDOUT;
			/*
			 * Sleep until a consumer sees half the ring free (see recv).
			 * The condition is checked after announcing ourselves, so a
			 * consumer that frees the space before we sleep either sees
			 * pwaiters or we see the space.
			 */
			atomic_fetch_add(&q->pwaiters, 1);
			left = fence_before_sleep(q, left);
			uint32_t g = atomic_load(&q->cgen);
			uint64_t hn = atomic_load(&q->head);
			if (hn == h || atomic_load(&q->tail) - hn > cap / 2)
				cohort__futex_wait(&q->cgen, g, left);
			atomic_fetch_sub(&q->pwaiters, 1);
		}
	}
}

int cohort_queue_recv(cohort_queue_t *queue, void *buf, size_t size, int timeout_ms)
{
	struct qshm *q = queue->shm;
	uint64_t deadline = cohort__deadline(timeout_ms), cap = queue->capacity;
	bool fast = fast_publish(q);
	int r = geometry_intact(queue);

	if (r < 0)
		return r;

	for (;;) {
		uint64_t t = atomic_load_explicit(&q->tail_seen, memory_order_relaxed);
		uint64_t h0 = atomic_load_explicit(&q->head, memory_order_relaxed);

		if (t == h0)
			t = atomic_load_explicit(&q->tail, memory_order_acquire);
		/* Take the lock only when there is something to take. */
		if (t != h0) {
			r = lock_side(q, false, deadline, timeout_ms);
			if (r < 0)
				return r;
			uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
			t = atomic_load_explicit(&q->tail_seen, memory_order_relaxed);
			if (t == h || t - h > cap) {
				/* Empty by the cached tail: read the real one. */
				t = atomic_load_explicit(&q->tail, memory_order_acquire);
				atomic_store_explicit(&q->tail_seen, t, memory_order_relaxed);
			}
			if (h % 8 || t - h > cap) {
				r = COHORT_ECORRUPT;
				goto unlock;
			}
			if (t != h) {
				uint64_t idx = h % cap, skip = 0, rec;
				uint32_t hdr[2];

				memcpy(hdr, ring(q) + idx, sizeof(hdr));
				if (hdr[1] == TAG_WRAP) {
					skip = cap - idx;
					idx = 0;
					if (t - h <= skip) {
						r = COHORT_ECORRUPT;
						goto unlock;
					}
					memcpy(hdr, ring(q), sizeof(hdr));
				}
				rec = rec_size(hdr[0]);
				if (hdr[1] != TAG_MSG || hdr[0] == 0 || hdr[0] > queue->max_msg ||
				    skip + rec > t - h || idx + rec > cap) {
					r = COHORT_ECORRUPT;
					goto unlock;
				}
				if (hdr[0] > size) {
					r = -EMSGSIZE;
					goto unlock;
				}
				uint64_t w = atomic_load_explicit(&q->cword, memory_order_relaxed);
				atomic_store_explicit(&q->ctarget, h + skip + rec, memory_order_relaxed);
				atomic_store_explicit(&q->cword, w | BUSY, memory_order_relaxed);
				memcpy(buf, ring(q) + idx + 8, hdr[0]);
				if (fast)
					atomic_store_explicit(&q->head, h + skip + rec, memory_order_release);
				else
					atomic_store(&q->head, h + skip + rec);
				atomic_store_explicit(&q->cword, ((w >> 1) + 1) << 1, memory_order_release);
				qlock_release(&q->clock, fast);
				/*
				 * Wake sleeping producers only once half the ring is free:
				 * woken per message, a producer would sleep again at once,
				 * a system call per message on both sides.
				 */
				atomic_signal_fence(memory_order_seq_cst);
				if (atomic_load_explicit(&q->pwaiters, memory_order_relaxed) &&
				    t - (h + skip + rec) <= cap / 2) {
					atomic_fetch_add(&q->cgen, 1);
					cohort__futex_wake(&q->cgen, INT_MAX);
				}
				return (int)hdr[0];
			}
			qlock_release(&q->clock, fast);
		}
		if (timeout_ms == 0)
			return COHORT_ETIMEDOUT;

		/* Empty: wait for the tail to move. */
		if (!spin_until_moved(&q->tail, t, &q->cspin)) {
			int left = cohort__ms_left(deadline, -1);

			if (left == 0)
				return COHORT_ETIMEDOUT;
			atomic_fetch_add(&q->cwaiters, 1);
			left = fence_before_sleep(q, left);
			uint32_t g = atomic_load(&q->pgen);
			if (atomic_load(&q->tail) == t)
				cohort__futex_wait(&q->pgen, g, left);
			atomic_fetch_sub(&q->cwaiters, 1);
		}
	}
unlock:
	qlock_release(&q->clock, fast);
	return r;
}

pid_t cohort__queue_holder(const cohort_queue_t *queue, bool producers)
{
	const struct qshm *q = queue->shm;
	const struct qlock *l = producers ? &q->plock : &q->clock;

	return (pid_t)(atomic_load(&l->owner) >> WORD_PID_SHIFT);
}

void *cohort__queue_field(const cohort_queue_t *queue, const char *name)
{
	struct qshm *q = queue->shm;

	if (!strcmp(name, "capacity"))
		return &q->capacity;
	if (!strcmp(name, "max_msg"))
		return &q->max_msg;
	if (!strcmp(name, "region"))
		return &q->region;
	if (!strcmp(name, "tail"))
		return &q->tail;
	if (!strcmp(name, "head"))
		return &q->head;
	if (!strcmp(name, "tail_seen"))
		return &q->tail_seen;
	if (!strcmp(name, "head_seen"))
		return &q->head_seen;
	return NULL;
}

int cohort_queue_stats(const cohort_queue_t *cq, struct cohort_queue_stats *ret)
{
	struct qshm *q = cq->shm;
	struct cohort_queue_stats s;
	uint64_t h = atomic_load(&q->head), t = atomic_load(&q->tail);

	memset(&s, 0, sizeof(s));
	s.capacity = cq->capacity;
	s.used = t >= h ? t - h : 0;
	s.sent = atomic_load(&q->pword) >> 1;
	s.received = atomic_load(&q->cword) >> 1;
	s.lost_send = atomic_load(&q->lost_send);
	s.lost_recv = atomic_load(&q->lost_recv);
	s.recovered = atomic_load(&q->recovered);
	s.last_dead = (pid_t)atomic_load(&q->last_dead);
	*ret = s;
	return 0;
}
