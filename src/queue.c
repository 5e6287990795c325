/*
 * queue.c - a bounded MPMC queue of variable-size messages in shared
 * memory, lock-free on its fast path, that a kill -9 cannot wedge.
 *
 * The ring is an array of 128-byte slots, each with a state word, after
 * Vyukov's bounded MPMC queue: a slot's state says which position (a
 * monotonic count of slots) it is ready for and what is happening to it.
 * A message of len bytes fills k = ceil(len / 112) consecutive 128-byte
 * slots (a run); its first slot also holds the length.
 *
 * A producer reads the tail t, checks that the k slots from t are free for
 * positions t..t+k-1, and claims the run with one compare-and-swap on the
 * first slot's state, FREE(t) -> WRITING(t, me). The claim names its
 * claimant (an entry of the queue's peer table, see below) in the same
 * instruction: there is no instant at which a claimed slot has no owner.
 * Only the claimant of slot t moves the tail from t, so it then stamps the
 * run's other slots WCONT(me), stores the tail t+k (other producers go on
 * beside it), writes the message, marks the other slots RCONT and
 * publishes the first with one store, READY(t). A consumer claims READY(h)
 * at the head h with a compare-and-swap to READING(h, me), stores the head
 * h+k, copies the message out and frees the run's slots for the next lap,
 * FREE(h+i+N). An uncontended send or receive takes no lock: one
 * compare-and-swap on a slot line the peer has to read anyway, plain
 * stores to its side's position, and a counter on that side's own line.
 *
 * A claimant killed at any instruction leaves a slot that says who owns
 * it. Whoever waits at such a slot (a consumer at the head, a producer at
 * the tail, after a short spin) checks the owner's liveness through its
 * lease (peer.c: an OFD lock the kernel drops when the process dies) and,
 * if it is dead, recovers the slot with a compare-and-swap from the very
 * state it saw, so exactly one waiter recovers it:
 *
 *   WRITING(p, X)  -> LOST(p): the message was never published; counted
 *                     in lost_send. Consumers skip LOST slots.
 *   WCONT(p, X)    -> LOST(p): the rest of that run (not counted again).
 *   READING(p, X)  -> RECOVER(p, me): the message was taken and never
 *                     returned; counted in lost_recv, then the run is
 *                     freed (the recoverer's own claim names it, so a
 *                     recoverer killed in turn is recovered the same way).
 *
 * A claimant that dies after claiming and before moving its side's
 * position leaves that position behind; whoever finds a slot at the
 * position already past the state it expects (published, lost, freed for
 * the next lap) moves the position on with a compare-and-swap. Positions
 * in the state words make every comparison exact: a stale observation
 * never matches a later lap's state.
 *
 * The peer table: a process joins a queue on its first operation, taking
 * an entry (its 64-bit identity, cohort__self_id: the lease token, or its
 * start time where it has none) and bumping the entry's generation. A
 * claim names (entry, generation) in 19 bits, which leaves 42 bits of
 * position in the 64-bit state word. An entry of a dead process is taken
 * over only when the table is full; the bumped generation then marks the
 * dead process's leftover claims as dead, never as the newcomer's.
 *
 * Waiting: spin adaptively on the slot's state, then sleep on a futex
 * word (pgen for consumers, cgen for producers) after announcing the sleep
 * in a waiter count, so that a send or receive makes a FUTEX_WAKE only
 * when someone sleeps. Checking the count right after publishing needs a
 * store-load fence on the fast path: a locked instruction that waits for
 * the message's stores to reach the other CPU. Where the kernel offers
 * it, the fence moves to the sleeper: a process about to sleep calls
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which runs a full barrier
 * on every CPU running a process of the queue, so either the publisher's
 * state is visible to the sleeper or the sleeper's count is visible to the
 * publisher. Where it is missing, publishing uses a locked store.
 *
 * Any process of the job can write the shared header, so nothing in it is
 * trusted after init or open: the geometry (slot count, longest message,
 * region size) is copied then into the process-local handle, and every
 * index into the ring is a position masked by the local copy. A header
 * that no longer matches the local copy, a state that fits no lap of the
 * position, or a length that does not fit is COHORT_ECORRUPT, and nothing
 * is written through it.
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

#define QUEUE_MAGIC  0x3245554555514843ULL   /* "CHQUEUE2" */
#define QUEUE_MAGIC1 0x3145554555514843ULL   /* "CHQUEUE1": the format-1 queue with side locks */
#define QUEUE_FORMAT 2
#define SLOT 128
#define SLOT_DATA 112
#define MIN_SLOTS 8
#define MAX_SLOTS ((uint64_t)1 << 25)   /* capacity/2 - 8 stays below INT_MAX */
#define PEERS 128
#define SPIN_MIN 64
#define SPIN_MAX 8192
#define SPIN_START 1024
#define CLAIM_SPINS 256   /* polls of a claimed slot before its owner's liveness is checked */

/*
 * A slot's state word: kind << 61 | owner << 42 | position (42 bits).
 * owner = peer entry << 12 | generation, for the kinds that are claims.
 */
#define POS_BITS 42
#define POS_MASK (((uint64_t)1 << POS_BITS) - 1)
#define OWNER_SHIFT POS_BITS
#define GEN_BITS 12
#define GEN_MASK ((1u << GEN_BITS) - 1)
#define OWNER_MASK ((1u << 19) - 1)
#define KIND_SHIFT 61

enum {
	K_FREE,      /* free for the producer of position p */
	K_WRITING,   /* first slot of a run being written by owner */
	K_WCONT,     /* another slot of that run */
	K_READY,     /* first slot of a published message at p */
	K_RCONT,     /* another slot of a published message */
	K_READING,   /* first slot of a message a consumer is copying out */
	K_LOST,      /* a slot of a message whose producer died: skipped */
	K_RECOVER,   /* a dead consumer's run, being freed by owner */
};

static inline uint64_t st_make(unsigned kind, uint64_t pos, uint32_t owner)
{
	return (uint64_t)kind << KIND_SHIFT | (uint64_t)(owner & OWNER_MASK) << OWNER_SHIFT |
	       (pos & POS_MASK);
}

static inline unsigned st_kind(uint64_t s)
{
	return (unsigned)(s >> KIND_SHIFT);
}

static inline uint32_t st_owner(uint64_t s)
{
	return (uint32_t)(s >> OWNER_SHIFT) & OWNER_MASK;
}

/* Is s a state of position pos? */
static inline bool st_at(uint64_t s, uint64_t pos)
{
	return (s & POS_MASK) == (pos & POS_MASK);
}

static inline bool st_claim(uint64_t s)
{
	unsigned k = st_kind(s);

	return k == K_WRITING || k == K_WCONT || k == K_READING || k == K_RECOVER;
}

/*
 * One slot, two cache lines: a message of up to 112 bytes and its state
 * travel together in one slot (a 64-byte message and the state word do
 * not fit one line; the adjacent-line prefetcher brings the second).
 */
struct qslot {
	uint32_t len;            /* first slot of a message: its length */
	uint32_t pid;            /* the producer's pid, for debugging */
	_Atomic uint64_t state;
	unsigned char data[SLOT_DATA];
};

_Static_assert(sizeof(struct qslot) == SLOT, "a slot is two cache lines");

struct qpeer {
	_Atomic uint64_t id;     /* the member's cohort__self_id(); 0: free */
	_Atomic uint32_t pid;
	_Atomic uint32_t gen;    /* bumped by each new holder of the entry */
};

/*
 * The header, one cache line per group of fields written together: in
 * 1P1C the tail line stays with the producer, the head line with the
 * consumer, and only slot lines travel.
 */
struct qshm {
	/* set once by init; compared with the handle's copy, never trusted */
	_Atomic uint64_t magic;
	uint64_t capacity;      /* ring bytes: nslots * SLOT */
	uint64_t max_msg;
	uint64_t region;        /* bytes of the whole region */
	uint64_t nslots;        /* a power of two */
	uint32_t format;
	uint32_t asym;          /* 1: sleepers fence with membarrier (see above) */

	/*
	 * Producers' line. Only the claimant of slot tail moves the tail, so
	 * the claimants store sent in turn, each after reading the last one's
	 * tail: a plain store, not a locked add.
	 */
	_Alignas(64) _Atomic uint64_t tail;
	_Atomic uint64_t sent;
	_Atomic uint32_t pspin;     /* producers' current spin budget */

	/* consumers' line, likewise */
	_Alignas(64) _Atomic uint64_t head;
	_Atomic uint64_t received;
	_Atomic uint32_t cspin;

	/* written only by sleepers and their wakers: read-mostly */
	_Alignas(64) _Atomic uint32_t cwaiters;  /* consumers asleep waiting for a message */
	_Atomic uint32_t pgen;                   /* the futex word they sleep on */
	_Alignas(64) _Atomic uint32_t pwaiters;  /* producers asleep waiting for room */
	_Atomic uint32_t cgen;

	/* recovery statistics */
	_Alignas(64) _Atomic uint64_t lost_send;
	_Atomic uint64_t lost_recv;
	_Atomic uint64_t recovered;
	_Atomic int32_t last_dead;

	_Alignas(64) struct qpeer peers[PEERS];
};

_Static_assert(sizeof(struct qshm) <= COHORT_QUEUE_HEADER, "queue header too large");
_Static_assert(PEERS << GEN_BITS <= OWNER_MASK + 1, "an owner fits its 19 bits");

/*
 * The process-local handle: the geometry as this process validated it at
 * init or open. Only these copies bound an index into the ring.
 */
struct cohort_queue {
	struct qshm *shm;
	struct qslot *slots;
	uint64_t capacity;
	uint64_t max_msg;
	uint64_t region;
	uint64_t nslots;
	/* this process's peer entry: pid << 32 | owner; 0 or another pid: not joined */
	_Atomic uint64_t me;
};

void (*cohort__queue_hook)(int point);

/* A kill-matrix point (internal.h): one predictable branch when no test hooks it. */
#define KILL_POINT(p) do { \
	if (__builtin_expect(cohort__queue_hook != NULL, 0)) \
		cohort__queue_hook(p); \
} while (0)

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
 * state visible to us, or our announcement visible to it. Returns the
 * longest we may sleep: without the fence a wake-up can be missed, so
 * sleep in short slices.
 */
static int fence_before_sleep(const struct qshm *q, int left)
{
	if (!q->asym || membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0)
		return left;
	return left < 0 || left > 10 ? 10 : left;
}

/* Publish a state the other side may be about to sleep on (see the top of the file). */
static inline void publish(_Atomic uint64_t *word, uint64_t v, bool fast)
{
	if (fast)
		atomic_store_explicit(word, v, memory_order_release);
	else
		atomic_store(word, v);
}

static inline struct qslot *slot_at(const cohort_queue_t *queue, uint64_t pos)
{
	return &queue->slots[pos & (queue->nslots - 1)];
}

static inline uint64_t slots_for(uint64_t len)
{
	return (len + SLOT_DATA - 1) / SLOT_DATA;
}

static uint64_t round_down_pow2(uint64_t n)
{
	uint64_t p = 1;

	while (p <= n / 2)
		p *= 2;
	return p;
}

size_t cohort_queue_footprint(size_t capacity)
{
	capacity = (capacity + SLOT - 1) & ~(size_t)(SLOT - 1);
	return COHORT_QUEUE_HEADER + capacity;
}

int cohort_queue_init(void *mem, size_t size, cohort_queue_t **ret_q)
{
	struct qshm *q = mem;
	cohort_queue_t *queue;
	uint64_t n;

	if (!mem || !ret_q || ((uintptr_t)mem & 63) || size < cohort_queue_footprint(1024))
		return -EINVAL;
	n = round_down_pow2((size - COHORT_QUEUE_HEADER) / SLOT);
	if (n > MAX_SLOTS)
		n = MAX_SLOTS;
	queue = calloc(1, sizeof(*queue));
	if (!queue)
		return -ENOMEM;
	atomic_store(&q->magic, 0);
	memset(q, 0, COHORT_QUEUE_HEADER);
	q->format = QUEUE_FORMAT;
	q->nslots = n;
	q->capacity = n * SLOT;
	q->max_msg = q->capacity / 2 - 8;
	q->region = size;
	q->asym = asym_supported();
	struct qslot *slots = (struct qslot *)((unsigned char *)mem + COHORT_QUEUE_HEADER);
	for (uint64_t i = 0; i < n; i++) {
		slots[i].len = 0;
		slots[i].pid = 0;
		atomic_store_explicit(&slots[i].state, st_make(K_FREE, i, 0), memory_order_relaxed);
	}
	atomic_store(&q->magic, QUEUE_MAGIC);
	queue->shm = q;
	queue->slots = slots;
	queue->nslots = n;
	queue->capacity = n * SLOT;
	queue->max_msg = n * SLOT / 2 - 8;
	queue->region = size;
	*ret_q = queue;
	return 0;
}

int cohort_queue_open(void *mem, size_t size, cohort_queue_t **ret_q)
{
	struct qshm *q = mem;
	cohort_queue_t *queue;
	uint64_t magic;

	if (!mem || !ret_q || ((uintptr_t)mem & 63) || size < COHORT_QUEUE_HEADER)
		return -EINVAL;
	magic = atomic_load(&q->magic);
	if (magic == QUEUE_MAGIC1)
		return -EPROTONOSUPPORT;
	queue = calloc(1, sizeof(*queue));
	if (!queue)
		return -ENOMEM;
	/* Validate the copies, not the shared fields: those may change meanwhile. */
	queue->shm = q;
	queue->slots = (struct qslot *)((unsigned char *)mem + COHORT_QUEUE_HEADER);
	queue->nslots = q->nslots;
	queue->capacity = q->capacity;
	queue->max_msg = q->max_msg;
	queue->region = q->region;
	uint32_t format = q->format, asym = q->asym;
	if (magic != QUEUE_MAGIC || format != QUEUE_FORMAT || asym > 1 || queue->region != size ||
	    queue->nslots < MIN_SLOTS || queue->nslots > MAX_SLOTS ||
	    (queue->nslots & (queue->nslots - 1)) || queue->capacity != queue->nslots * SLOT ||
	    queue->capacity > size - COHORT_QUEUE_HEADER ||
	    queue->max_msg != queue->capacity / 2 - 8) {
		free(queue);
		return COHORT_EBADSEG;
	}
	*ret_q = queue;
	return 0;
}

int cohort_queue_close(cohort_queue_t *queue)
{
	if (!queue)
		return 0;
	uint64_t me = atomic_load(&queue->me);

	/* Leave the peer table: this process's exit is then no death to look into. */
	if (me && (pid_t)(me >> 32) == cohort__pid()) {
		struct qpeer *p = &queue->shm->peers[((uint32_t)me >> GEN_BITS) % PEERS];
		uint64_t id = cohort__self_id();

		if ((atomic_load(&p->gen) & GEN_MASK) == ((uint32_t)me & GEN_MASK))
			atomic_compare_exchange_strong(&p->id, &id, 0);
	}
	free(queue);
	return 0;
}

size_t cohort_queue_max_message(const cohort_queue_t *q)
{
	return (size_t)q->max_msg;
}

/*
 * Does the shared header still say what it said when this process
 * opened it? The local copies are what bound every access, so a rewritten
 * header cannot make this process read or write outside the region; it is
 * refused all the same, since its writer is broken or hostile and the
 * states cannot be trusted either.
 */
static int geometry_intact(const cohort_queue_t *queue)
{
	const struct qshm *q = queue->shm;

	if (atomic_load_explicit(&q->magic, memory_order_relaxed) != QUEUE_MAGIC ||
	    q->format != QUEUE_FORMAT || q->nslots != queue->nslots ||
	    q->capacity != queue->capacity || q->max_msg != queue->max_msg ||
	    q->region != queue->region)
		return COHORT_ECORRUPT;
	return 0;
}

/* Join the queue's peer table (see the top of the file). */
static int join_slow(cohort_queue_t *queue, uint32_t *ret_owner)
{
	struct qshm *q = queue->shm;
	uint64_t id = cohort__self_id();
	pid_t pid = cohort__pid();

	/* A free entry first; a dead process's only when none is left. */
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < PEERS; i++) {
			struct qpeer *p = &q->peers[i];
			uint64_t w = atomic_load(&p->id);

			if (pass == 0 ? w != 0
			              : w == 0 || cohort__holder_alive((pid_t)atomic_load(&p->pid), w))
				continue;
			if (!atomic_compare_exchange_strong(&p->id, &w, id))
				continue;
			atomic_store(&p->pid, (uint32_t)pid);
			uint32_t gen = (atomic_fetch_add(&p->gen, 1) + 1) & GEN_MASK;
			uint32_t owner = i << GEN_BITS | gen;

			atomic_store(&queue->me, (uint64_t)(uint32_t)pid << 32 | owner);
			*ret_owner = owner;
			return 0;
		}
	}
	return -EUSERS;
}

/* This process's owner stamp, joining on its first operation (and in a fork child). */
static inline int join(cohort_queue_t *queue, uint32_t *ret_owner)
{
	uint64_t me = atomic_load_explicit(&queue->me, memory_order_relaxed);

	if (__builtin_expect(me != 0 && (pid_t)(me >> 32) == cohort__pid(), 1)) {
		*ret_owner = (uint32_t)me;
		return 0;
	}
	return join_slow(queue, ret_owner);
}

/*
 * Is the claimant named by owner dead? A process that cannot be proven
 * dead is alive: a claim is never taken from the living. *ret_pid gets
 * its pid, or 0 when the entry has changed hands since (then it is dead:
 * an entry is taken over only from the dead or after a clean close).
 */
static bool owner_dead(const struct qshm *q, uint32_t owner, pid_t *ret_pid)
{
	const struct qpeer *p = &q->peers[(owner >> GEN_BITS) % PEERS];
	uint64_t id = atomic_load(&p->id);
	uint32_t gen = atomic_load(&p->gen) & GEN_MASK;
	pid_t pid = (pid_t)atomic_load(&p->pid);

	*ret_pid = 0;
	if (gen != (owner & GEN_MASK) || id == 0)
		return true;
	if (cohort__holder_alive(pid, id))
		return false;
	*ret_pid = pid;
	return true;
}

static void count_recovery(struct qshm *q, _Atomic uint64_t *lost, pid_t dead)
{
	if (lost)
		atomic_fetch_add(lost, 1);
	atomic_fetch_add(&q->recovered, 1);
	atomic_store(&q->last_dead, (int32_t)dead);
}

/*
 * Free the run of k slots from pos for the next lap: the other slots
 * first, the first slot last, so that a producer that finds the first
 * free finds the whole run free. The caller owns the first slot. A
 * recoverer frees only the slots still in the run's state (a dead taker
 * may have freed some), never another run's.
 */
static void free_run(cohort_queue_t *queue, uint64_t pos, uint64_t k, bool fast, bool recovering)
{
	uint64_t n = queue->nslots;

	for (uint64_t i = 1; i < k; i++) {
		_Atomic uint64_t *word = &slot_at(queue, pos + i)->state;
		uint64_t want = st_make(K_RCONT, pos + i, 0), next = st_make(K_FREE, pos + i + n, 0);

		if (recovering)
			atomic_compare_exchange_strong(word, &want, next);
		else
			atomic_store_explicit(word, next, memory_order_relaxed);
	}
	publish(&slot_at(queue, pos)->state, st_make(K_FREE, pos + n, 0), fast);
}

/*
 * A consumer's run at pos, claimed by us as RECOVER(pos, me): move the
 * head past it if its dead taker had not, and free it.
 */
static void finish_recovery(cohort_queue_t *queue, uint64_t pos)
{
	struct qshm *q = queue->shm;
	uint32_t len = slot_at(queue, pos)->len;
	uint64_t k = len >= 1 && len <= queue->max_msg ? slots_for(len) : 1;
	uint64_t h = pos;

	atomic_compare_exchange_strong(&q->head, &h, pos + k);
	free_run(queue, pos, k, false, true);
}

/*
 * The slot of position pos is in state s, a claim. If its owner is dead,
 * recover it (see the top of the file). Returns true when the slot's state
 * is no longer s, recovered by us or by someone else: look again.
 */
static bool recover_claim(cohort_queue_t *queue, uint64_t pos, uint64_t s, uint32_t me)
{
	struct qshm *q = queue->shm;
	_Atomic uint64_t *word = &slot_at(queue, pos)->state;
	uint64_t seen = s, t = pos;
	pid_t dead;

	if (!owner_dead(q, st_owner(s), &dead))
		return atomic_load(word) != s;
	switch (st_kind(s)) {
	case K_WRITING:
	case K_WCONT:
		if (!atomic_compare_exchange_strong(word, &seen, st_make(K_LOST, pos, 0)))
			return true;
		if (st_kind(s) == K_WRITING)
			count_recovery(q, &q->lost_send, dead);
		/* It may have died before moving the tail past its message. */
		atomic_compare_exchange_strong(&q->tail, &t, pos + 1);
		return true;
	case K_READING:
	case K_RECOVER:
		if (!atomic_compare_exchange_strong(word, &seen, st_make(K_RECOVER, pos, me)))
			return true;
		/* A dead recoverer had counted the loss already. */
		count_recovery(q, st_kind(s) == K_READING ? &q->lost_recv : NULL, dead);
		KILL_POINT(COHORT__QK_RECOVERING);
		finish_recovery(queue, pos);
		return true;
	}
	return atomic_load(word) != s;
}

/*
 * Adaptive spinning: spin up to the side's budget for either word to
 * move. A wait that ends while spinning doubles the budget (the peer is
 * running and quick); one that has to sleep halves it (spinning only
 * burned a CPU the peer may have needed). The budget is a shared hint:
 * racing updates are harmless.
 */
static bool spin_until_moved(_Atomic uint64_t *a, uint64_t av, _Atomic uint64_t *b, uint64_t bv,
                             _Atomic uint32_t *budget, uint32_t cap)
{
	uint32_t n = atomic_load_explicit(budget, memory_order_relaxed);

	if (n < SPIN_MIN || n > SPIN_MAX)
		n = SPIN_START;
	if (cap && n > cap)
		n = cap;
	for (uint32_t i = 0; i < n; i++) {
		cohort__cpu_relax();
		if (atomic_load_explicit(a, memory_order_relaxed) != av ||
		    atomic_load_explicit(b, memory_order_relaxed) != bv) {
			if (!cap && n < SPIN_MAX)
				atomic_store_explicit(budget, n * 2, memory_order_relaxed);
			return true;
		}
	}
	if (!cap && n > SPIN_MIN)
		atomic_store_explicit(budget, n / 2, memory_order_relaxed);
	return false;
}

/* One waiter's progress through its waits. */
struct wait {
	uint64_t deadline;
	int timeout_ms;
	int slice;
};

/*
 * Wait for the slot state *word to leave s or the side's position *pos to
 * leave p: spin, then (for a claim of position at) check its owner and
 * recover it if dead, then sleep on the side's futex. Returns 0 to look
 * again, or COHORT_ETIMEDOUT (at once when timeout_ms is 0).
 */
static int wait_for(cohort_queue_t *queue, struct wait *w, bool producer, _Atomic uint64_t *word,
                    uint64_t s, _Atomic uint64_t *pos, uint64_t p, uint64_t at, uint32_t me)
{
	struct qshm *q = queue->shm;
	bool claim = st_claim(s);
	_Atomic uint32_t *budget = producer ? &q->pspin : &q->cspin;

	if (!claim && w->timeout_ms == 0)
		return COHORT_ETIMEDOUT;
	if (spin_until_moved(word, s, pos, p, budget, claim ? CLAIM_SPINS : 0))
		return 0;
	if (claim && recover_claim(queue, at, s, me))
		return 0;
	if (w->timeout_ms == 0)
		return COHORT_ETIMEDOUT;
	if (w->deadline && cohort__ms_left(w->deadline, -1) == 0)
		return COHORT_ETIMEDOUT;
	/* In slices, to look at a claimant's liveness between them. */
	int left = cohort__ms_left(w->deadline, w->slice);
	if (w->slice < 50)
		w->slice *= 2;

	_Atomic uint32_t *waiters = producer ? &q->pwaiters : &q->cwaiters;
	_Atomic uint32_t *gen = producer ? &q->cgen : &q->pgen;

	atomic_fetch_add(waiters, 1);
	left = fence_before_sleep(q, left);
	uint32_t g = atomic_load(gen);
	if (atomic_load(word) == s && atomic_load(pos) == p)
		cohort__futex_wait(gen, g, left);
	atomic_fetch_sub(waiters, 1);
	return 0;
}

/*
 * Are the k - 1 slots after t free for this lap? Returns 0, or 1 with the
 * first slot that is not in *ret_at and its state in *ret_s.
 */
static int run_free(cohort_queue_t *queue, uint64_t t, uint64_t k, uint64_t *ret_at,
                    uint64_t *ret_s)
{
	for (uint64_t i = 1; i < k; i++) {
		uint64_t s = atomic_load_explicit(&slot_at(queue, t + i)->state, memory_order_acquire);

		if (s != st_make(K_FREE, t + i, 0)) {
			*ret_at = t + i;
			*ret_s = s;
			return 1;
		}
	}
	return 0;
}

/* Write msg into the run claimed at t and publish it. */
static void fill_and_publish(cohort_queue_t *queue, uint64_t t, uint64_t k, const void *msg,
                             size_t len, uint32_t me, bool fast)
{
	struct qshm *q = queue->shm;
	struct qslot *first = slot_at(queue, t);
	const unsigned char *src = msg;

	KILL_POINT(COHORT__QK_CLAIMED);
	for (uint64_t i = 1; i < k; i++)
		atomic_store_explicit(&slot_at(queue, t + i)->state, st_make(K_WCONT, t + i, me),
		                      memory_order_relaxed);
	/* Only the claimant of slot t moves the tail from t (and so writes sent). */
	atomic_store_explicit(&q->sent, atomic_load_explicit(&q->sent, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
	atomic_store_explicit(&q->tail, t + k, memory_order_release);
	first->len = (uint32_t)len;
	first->pid = (uint32_t)cohort__pid();
	for (uint64_t i = 0; i < k; i++) {
		size_t n = len - i * SLOT_DATA < SLOT_DATA ? len - i * SLOT_DATA : SLOT_DATA;

		memcpy(slot_at(queue, t + i)->data, src + i * SLOT_DATA, n);
	}
	for (uint64_t i = 1; i < k; i++)
		atomic_store_explicit(&slot_at(queue, t + i)->state, st_make(K_RCONT, t + i, 0),
		                      memory_order_relaxed);
	KILL_POINT(COHORT__QK_WRITTEN);
	publish(&first->state, st_make(K_READY, t, me), fast);
	/* The compiler must not read the sleepers before publishing. */
	atomic_signal_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&q->cwaiters, memory_order_relaxed)) {
		atomic_fetch_add(&q->pgen, 1);
		cohort__futex_wake(&q->pgen, INT_MAX);
	}
}

int cohort_queue_send(cohort_queue_t *queue, const void *msg, size_t len, int timeout_ms)
{
	struct qshm *q = queue->shm;
	struct wait w = { cohort__deadline(timeout_ms), timeout_ms, 1 };
	uint64_t n = queue->nslots, k = slots_for(len);
	uint32_t me;
	int r;

	if (len == 0 || len > queue->max_msg)
		return -EMSGSIZE;
	r = geometry_intact(queue);
	if (r < 0)
		return r;
	r = join(queue, &me);
	if (r < 0)
		return r;
	bool fast = fast_publish(q);
	for (;;) {
		uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
		_Atomic uint64_t *word = &slot_at(queue, t)->state;
		uint64_t s = atomic_load_explicit(word, memory_order_acquire);
		uint64_t at = t;

		if (s == st_make(K_FREE, t, 0)) {
			uint64_t free0 = s;

			if (k > 1 && run_free(queue, t, k, &at, &s)) {
				/* Full further on, or a stale tail. */
				if (atomic_load(&q->tail) != t)
					continue;
				if (!st_at(s, at - n)) {
					/*
					 * Claimed for this lap: another producer took slot t since
					 * we looked. With slot t still free it is a forged state.
					 */
					if (st_at(s, at) && atomic_load(word) != free0)
						continue;
					return COHORT_ECORRUPT;
				}
				word = &slot_at(queue, at)->state;
				at -= n;
			} else if (atomic_compare_exchange_weak_explicit(word, &free0,
			                                                 st_make(K_WRITING, t, me),
			                                                 memory_order_acquire,
			                                                 memory_order_relaxed)) {
				fill_and_publish(queue, t, k, msg, len, me, fast);
				return 0;
			} else {
				continue;
			}
		} else if (st_at(s, t)) {
			unsigned kind = st_kind(s);

			if (kind != K_WRITING && kind != K_WCONT) {
				/* Claimed and past: the tail lags behind a claimant that died. */
				atomic_compare_exchange_strong(&q->tail, &t, t + 1);
				continue;
			}
			/* Claimed by a producer that has not moved the tail yet. */
		} else if (s == st_make(K_FREE, t + n, 0)) {
			atomic_compare_exchange_strong(&q->tail, &t, t + 1);
			continue;
		} else if (st_at(s, t - n) && st_kind(s) != K_FREE) {
			at = t - n;   /* full: the slot still holds the last lap's message */
		} else {
			if (atomic_load(&q->tail) != t)
				continue;
			return COHORT_ECORRUPT;
		}
		r = wait_for(queue, &w, true, word, s, &q->tail, t, at, me);
		if (r < 0)
			return r;
	}
}

/* Copy the message of len bytes in the run at h into buf. */
static void copy_out(cohort_queue_t *queue, uint64_t h, uint32_t len, void *buf)
{
	unsigned char *dst = buf;

	for (uint64_t i = 0; i * SLOT_DATA < len; i++) {
		size_t n = len - i * SLOT_DATA < SLOT_DATA ? len - i * SLOT_DATA : SLOT_DATA;

		memcpy(dst + i * SLOT_DATA, slot_at(queue, h + i)->data, n);
	}
}

/* The head h, consumer h's state s is READY(h): take the message. */
static int take(cohort_queue_t *queue, uint64_t h, uint64_t s, void *buf, size_t size,
                uint32_t me, bool fast)
{
	struct qshm *q = queue->shm;
	struct qslot *first = slot_at(queue, h);
	uint32_t len = __atomic_load_n(&first->len, __ATOMIC_RELAXED), seen_len = len;
	uint64_t seen = s;
	bool copied = false;

	if (len >= 1 && len <= queue->max_msg) {
		/* Too small a buffer: the message stays (the state unchanged says len was its). */
		if (len > size) {
			if (atomic_load(&first->state) == s)
				return -EMSGSIZE;
			return 0;
		}
		/*
		 * Copy before claiming, so that fetching the payload's lines
		 * overlaps the claim's taking the state line exclusive instead
		 * of following it. The copy counts only if the claim succeeds:
		 * then the state was READY(h) from our look until the claim, and
		 * while it is, nobody writes the run. (On a failed claim buf has
		 * been written; the caller tries again.)
		 */
		copy_out(queue, h, len, buf);
		copied = true;
	}
	if (!atomic_compare_exchange_weak_explicit(&first->state, &seen, st_make(K_READING, h, me),
	                                           memory_order_acq_rel, memory_order_relaxed))
		return 0;
	len = first->len;
	if (len != seen_len)
		copied = false;
	uint64_t k = slots_for(len);
	int r = 0;

	if (len == 0 || len > queue->max_msg)
		r = COHORT_ECORRUPT;
	else if (len > size)
		r = -EMSGSIZE;
	for (uint64_t i = 1; r == 0 && i < k; i++)
		if (atomic_load_explicit(&slot_at(queue, h + i)->state, memory_order_acquire) !=
		    st_make(K_RCONT, h + i, 0))
			r = COHORT_ECORRUPT;
	if (r < 0) {
		/* Put it back as it was: nothing is written through a bad record. */
		atomic_store(&first->state, s);
		return r;
	}
	KILL_POINT(COHORT__QK_TAKEN);
	/* Only the taker of slot h moves the head from h (and so writes received). */
	atomic_store_explicit(&q->received,
	                      atomic_load_explicit(&q->received, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
	atomic_store_explicit(&q->head, h + k, memory_order_release);
	if (!copied)
		copy_out(queue, h, len, buf);
	free_run(queue, h, k, fast, false);
	/*
	 * Wake sleeping producers only once half the ring is free: woken per
	 * message, a producer would sleep again at once, a system call per
	 * message on both sides.
	 */
	atomic_signal_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&q->pwaiters, memory_order_relaxed) &&
	    atomic_load(&q->tail) - (h + k) <= queue->nslots / 2) {
		atomic_fetch_add(&q->cgen, 1);
		cohort__futex_wake(&q->cgen, INT_MAX);
	}
	return (int)len;
}

int cohort_queue_recv(cohort_queue_t *queue, void *buf, size_t size, int timeout_ms)
{
	struct qshm *q = queue->shm;
	struct wait w = { cohort__deadline(timeout_ms), timeout_ms, 1 };
	uint64_t n = queue->nslots;
	uint32_t me;
	int r = geometry_intact(queue);

	if (r < 0)
		return r;
	r = join(queue, &me);
	if (r < 0)
		return r;
	bool fast = fast_publish(q);
	for (;;) {
		uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
		_Atomic uint64_t *word = &slot_at(queue, h)->state;
		uint64_t s = atomic_load_explicit(word, memory_order_acquire), at = h;
		unsigned kind = st_kind(s);

		if (st_at(s, h)) {
			if (kind == K_READY) {
				r = take(queue, h, s, buf, size, me, fast);
				if (r != 0)
					return r;
				continue;
			}
			if (kind == K_LOST || kind == K_RCONT) {
				/* A dead producer's slot, or what a dead taker left: skip it. */
				if (atomic_compare_exchange_strong(word, &s, st_make(K_FREE, h + n, 0)))
					atomic_compare_exchange_strong(&q->head, &h, h + 1);
				continue;
			}
			if (kind == K_FREE) {
				/* Empty. A tail more than a ring ahead is a rewritten position. */
				int64_t ahead = (int64_t)(atomic_load(&q->tail) - h);

				/* (It may lag behind by a slot or so while a dead producer's is recovered.) */
				if (ahead > (int64_t)n && atomic_load(&q->head) == h)
					return COHORT_ECORRUPT;
			}
			/* Else being written, or taken by a consumer that has not moved the head yet. */
		} else if (s == st_make(K_FREE, h + n, 0)) {
			atomic_compare_exchange_strong(&q->head, &h, h + 1);
			continue;
		} else if (st_at(s, h - n) && (kind == K_READING || kind == K_RECOVER)) {
			at = h - n;   /* the last lap's message is still being copied out */
		} else {
			if (atomic_load(&q->head) != h)
				continue;
			return COHORT_ECORRUPT;
		}
		r = wait_for(queue, &w, false, word, s, &q->head, h, at, me);
		if (r < 0)
			return r;
	}
}

pid_t cohort__queue_holder(const cohort_queue_t *queue, bool producers)
{
	const struct qshm *q = queue->shm;
	uint64_t h = atomic_load(&q->head), n = queue->nslots;

	/* The oldest claim of that side, from the last lap's slots on. */
	for (uint64_t i = 0; i < 2 * n; i++) {
		uint64_t pos = h - n + i, s = atomic_load(&slot_at(queue, pos)->state);
		unsigned kind = st_kind(s);

		if (!st_at(s, pos) || !st_claim(s))
			continue;
		if (producers != (kind == K_WRITING || kind == K_WCONT))
			continue;
		const struct qpeer *p = &q->peers[(st_owner(s) >> GEN_BITS) % PEERS];
		if ((atomic_load(&p->gen) & GEN_MASK) != (st_owner(s) & GEN_MASK))
			continue;
		return (pid_t)atomic_load(&p->pid);
	}
	return 0;
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
	if (!strcmp(name, "nslots"))
		return &q->nslots;
	if (!strcmp(name, "tail"))
		return &q->tail;
	if (!strcmp(name, "head"))
		return &q->head;
	return NULL;
}

int cohort_queue_stats(const cohort_queue_t *cq, struct cohort_queue_stats *ret)
{
	struct qshm *q = cq->shm;
	struct cohort_queue_stats s;
	uint64_t h = atomic_load(&q->head), t = atomic_load(&q->tail);

	memset(&s, 0, sizeof(s));
	s.capacity = cq->capacity;
	s.used = t >= h ? (t - h) * SLOT : 0;
	if (s.used > s.capacity)
		s.used = s.capacity;
	s.sent = atomic_load(&q->sent);
	s.received = atomic_load(&q->received);
	s.lost_send = atomic_load(&q->lost_send);
	s.lost_recv = atomic_load(&q->lost_recv);
	s.recovered = atomic_load(&q->recovered);
	s.last_dead = (pid_t)atomic_load(&q->last_dead);
	*ret = s;
	return 0;
}
