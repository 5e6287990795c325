/*
 * sync.c - a barrier and a counting semaphore in shared memory that never
 * wait forever for a dead process.
 *
 * POSIX barriers and semaphores have no robust mode: a member killed before
 * it arrives (or after it took a unit) leaves the others waiting forever.
 * Here every object keeps a member table of (pid, identity): the identity
 * is the member's lease token (an OFD lock the kernel drops at its death:
 * see peer.c), or its start time where it has no lease. A waiter sleeps on
 * a futex in slices, and between slices checks the members' liveness; a
 * dead member ends the wait with COHORT_EPEERDEAD and its pid is recorded
 * (for messages only: a pid judges nothing here when there is a lease).
 *
 * A slot is claimed by the compare-and-swap that writes its identity
 * (start), then the pid is stored; it is freed in the reverse order. A
 * checker reads the identity, the pid, and the identity again, and judges
 * only a slot that did not change meanwhile, so it never pairs one
 * process's pid with another's identity.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define BARRIER_MAGIC 0x42524852u   /* "RHRB" */
#define SEM_MAGIC     0x4d455353u   /* "SSEM" */
#define SPINS 2000
#define SLICE_MAX_MS 50

struct member {
	_Atomic int32_t pid;       /* 0: free or being claimed, -1: being reaped */
	_Atomic uint32_t held;     /* semaphore units taken and not posted back */
	_Atomic uint64_t start;    /* identity (cohort__self_id); 0: free slot */
};

struct roster {
	struct member m[COHORT_MEMBERS_MAX];
};

struct barrier {
	uint32_t magic;
	_Atomic uint32_t n;        /* members expected; detach lowers it */
	_Atomic uint32_t arrived;
	_Atomic uint32_t gen;      /* futex word: bumped when a round completes */
	_Atomic uint32_t broken;
	_Atomic int32_t dead;
	unsigned char pad[40];
	struct roster r;
};

struct sem {
	uint32_t magic;
	_Atomic uint32_t value;    /* futex word */
	_Atomic uint32_t waiters;
	_Atomic int32_t dead;
	unsigned char pad[48];
	struct roster r;
};

_Static_assert(sizeof(struct barrier) <= sizeof(cohort_barrier_t), "cohort_barrier_t too small");
_Static_assert(sizeof(struct sem) <= sizeof(cohort_sem_t), "cohort_sem_t too small");

/* Is slot m this process? Its identity says so (a pid may be another namespace's). */
static bool member_is_me(struct member *m, int32_t me, uint64_t id)
{
	return atomic_load(&m->start) == id && atomic_load(&m->pid) == me;
}

/* This process's slot among the first limit slots, attaching if needed. */
static int roster_join(struct roster *r, unsigned limit)
{
	int32_t me = (int32_t)cohort__pid();
	uint64_t id = cohort__self_id();

	for (unsigned i = 0; i < limit; i++)
		if (member_is_me(&r->m[i], me, id))
			return (int)i;
	for (unsigned i = 0; i < limit; i++) {
		uint64_t zero = 0;

		if (atomic_load(&r->m[i].pid) == 0 &&
		    atomic_compare_exchange_strong(&r->m[i].start, &zero, id)) {
			atomic_store(&r->m[i].held, 0);
			atomic_store(&r->m[i].pid, me);
			return (int)i;
		}
	}
	return -ENOSPC;
}

/* Leave slot m (ours): the pid first, then the identity that frees it. */
static void member_free(struct member *m)
{
	atomic_store(&m->pid, 0);
	atomic_store(&m->start, 0);
}

/*
 * A stable view of slot m: its pid and identity, when it holds a member
 * other than this process and did not change while read. False otherwise.
 */
static bool member_read(struct member *m, int32_t me, uint64_t myid, int32_t *ret_pid,
                        uint64_t *ret_id)
{
	uint64_t id = atomic_load(&m->start);
	int32_t pid = atomic_load(&m->pid);

	if (id == 0 || pid <= 0 || atomic_load(&m->start) != id)
		return false;   /* free, being claimed, freed or reaped */
	if (id == myid && pid == me)
		return false;
	*ret_pid = pid;
	*ret_id = id;
	return true;
}

/* A dead member's pid, or 0 when every member lives. */
static pid_t roster_find_dead(struct roster *r, unsigned limit)
{
	int32_t me = (int32_t)cohort__pid();
	uint64_t myid = cohort__self_id();

	for (unsigned i = 0; i < limit; i++) {
		int32_t pid;
		uint64_t id;

		if (!member_read(&r->m[i], me, myid, &pid, &id))
			continue;
		if (!cohort__holder_alive(pid, id))
			return pid;
	}
	return 0;
}

/* The next sleep slice: short at first, so that a death is seen soon. */
static int next_slice(int *slice)
{
	int s = *slice;

	if (*slice < SLICE_MAX_MS)
		*slice *= 2;
	return s;
}

int cohort_barrier_init(cohort_barrier_t *cb, unsigned n)
{
	struct barrier *b = (struct barrier *)(void *)cb;

	if (!cb || n == 0 || n > COHORT_MEMBERS_MAX)
		return -EINVAL;
	memset(cb, 0, sizeof(*cb));
	atomic_store(&b->n, n);
	atomic_store(&b->gen, 0);
	b->magic = BARRIER_MAGIC;
	return 0;
}

int cohort_barrier_join(cohort_barrier_t *cb)
{
	struct barrier *b = (struct barrier *)(void *)cb;

	if (b->magic != BARRIER_MAGIC || atomic_load(&b->n) > COHORT_MEMBERS_MAX)
		return COHORT_ECORRUPT;
	int r = roster_join(&b->r, COHORT_MEMBERS_MAX);
	if (r < 0)
		return r;
	return 0;
}

/* This process's slot, without attaching; -ENOENT when it is not a member. */
static int roster_find(struct roster *r)
{
	int32_t me = (int32_t)cohort__pid();
	uint64_t id = cohort__self_id();

	for (unsigned i = 0; i < COHORT_MEMBERS_MAX; i++)
		if (member_is_me(&r->m[i], me, id))
			return (int)i;
	return -ENOENT;
}

/* Release the round: only the caller whose CAS empties arrived does it. */
static bool barrier_trip(struct barrier *b, uint32_t arrived)
{
	if (!atomic_compare_exchange_strong(&b->arrived, &arrived, 0))
		return false;
	atomic_fetch_add(&b->gen, 1);
	cohort__futex_wake(&b->gen, INT_MAX);
	return true;
}

int cohort_barrier_leave(cohort_barrier_t *cb)
{
	struct barrier *b = (struct barrier *)(void *)cb;
	int slot;

	if (b->magic != BARRIER_MAGIC)
		return COHORT_ECORRUPT;
	slot = roster_find(&b->r);
	if (slot < 0)
		return slot;
	member_free(&b->r.m[slot]);
	uint32_t n = atomic_fetch_sub(&b->n, 1) - 1;
	uint32_t a = atomic_load(&b->arrived);
	/* Those already waiting may now be all that is left. */
	if (n > 0 && a >= n)
		barrier_trip(b, a);
	return 0;
}

static void barrier_break(struct barrier *b, pid_t dead)
{
	uint32_t zero = 0;

	if (atomic_compare_exchange_strong(&b->broken, &zero, 1))
		atomic_store(&b->dead, (int32_t)dead);
	cohort__futex_wake(&b->gen, INT_MAX);
}

int cohort_barrier_wait(cohort_barrier_t *cb, int timeout_ms)
{
	struct barrier *b = (struct barrier *)(void *)cb;
	uint64_t deadline = cohort__deadline(timeout_ms);
	uint32_t g, a;
	int r, slice = 1;

	r = cohort_barrier_join(cb);
	if (r < 0)
		return r;
	if (atomic_load(&b->broken))
		return COHORT_EPEERDEAD;
	g = atomic_load(&b->gen);
	a = atomic_fetch_add(&b->arrived, 1) + 1;
	if (a >= atomic_load(&b->n) && barrier_trip(b, a))
		return 1;   /* the last to arrive released the round */
	for (int i = 0; i < SPINS; i++) {
		if (atomic_load_explicit(&b->gen, memory_order_acquire) != g)
			return 0;
		cohort__cpu_relax();
	}
	for (;;) {
		int left = cohort__ms_left(deadline, next_slice(&slice));

		if (left != 0)
			cohort__futex_wait(&b->gen, g, left);
		if (atomic_load(&b->gen) != g)
			return 0;
		if (atomic_load(&b->broken))
			return COHORT_EPEERDEAD;
		pid_t dead = roster_find_dead(&b->r, COHORT_MEMBERS_MAX);
		if (dead) {
			barrier_break(b, dead);
			return COHORT_EPEERDEAD;
		}
		if (deadline && cohort__ms_left(deadline, -1) == 0) {
			barrier_break(b, 0);
			return COHORT_ETIMEDOUT;
		}
	}
}

pid_t cohort_barrier_dead(const cohort_barrier_t *cb)
{
	const struct barrier *b = (const struct barrier *)(const void *)cb;

	return (pid_t)atomic_load(&b->dead);
}

int cohort_sem_init(cohort_sem_t *cs, unsigned value)
{
	struct sem *s = (struct sem *)(void *)cs;

	if (!cs || value > INT32_MAX)
		return -EINVAL;
	memset(cs, 0, sizeof(*cs));
	atomic_store(&s->value, value);
	s->magic = SEM_MAGIC;
	return 0;
}

static int sem_slot(struct sem *s)
{
	if (s->magic != SEM_MAGIC)
		return COHORT_ECORRUPT;
	return roster_join(&s->r, COHORT_MEMBERS_MAX);
}

int cohort_sem_join(cohort_sem_t *cs)
{
	int r = sem_slot((struct sem *)(void *)cs);

	return r < 0 ? r : 0;
}

static bool sem_take(struct sem *s, int slot)
{
	uint32_t v = atomic_load(&s->value);

	while (v > 0) {
		if (atomic_compare_exchange_weak(&s->value, &v, v - 1)) {
			atomic_fetch_add(&s->r.m[slot].held, 1);
			return true;
		}
	}
	return false;
}

int cohort_sem_wait(cohort_sem_t *cs, int timeout_ms)
{
	struct sem *s = (struct sem *)(void *)cs;
	uint64_t deadline = cohort__deadline(timeout_ms);
	int slot = sem_slot(s), slice = 1;

	if (slot < 0)
		return slot;
	if (sem_take(s, slot))
		return 0;
	if (timeout_ms == 0)
		return COHORT_ETIMEDOUT;
	for (int i = 0; i < SPINS; i++) {
		if (atomic_load_explicit(&s->value, memory_order_relaxed) && sem_take(s, slot))
			return 0;
		cohort__cpu_relax();
	}
	for (;;) {
		int left = cohort__ms_left(deadline, next_slice(&slice));

		if (left != 0) {
			atomic_fetch_add(&s->waiters, 1);
			cohort__futex_wait(&s->value, 0, left);
			atomic_fetch_sub(&s->waiters, 1);
		}
		if (sem_take(s, slot))
			return 0;
		pid_t dead = roster_find_dead(&s->r, COHORT_MEMBERS_MAX);
		if (dead) {
			atomic_store(&s->dead, (int32_t)dead);
			return COHORT_EPEERDEAD;
		}
		if (deadline && cohort__ms_left(deadline, -1) == 0)
			return COHORT_ETIMEDOUT;
	}
}

static void sem_give(struct sem *s, uint32_t units)
{
	atomic_fetch_add(&s->value, units);
	if (atomic_load(&s->waiters))
		cohort__futex_wake(&s->value, (int)(units > INT_MAX ? INT_MAX : units));
}

int cohort_sem_post(cohort_sem_t *cs)
{
	struct sem *s = (struct sem *)(void *)cs;
	int slot;

	if (s->magic != SEM_MAGIC)
		return COHORT_ECORRUPT;
	if (atomic_load(&s->value) >= INT32_MAX)
		return -EOVERFLOW;
	/* A poster need not be a member; a member posts back what it holds first. */
	slot = roster_find(&s->r);
	if (slot >= 0) {
		uint32_t h = atomic_load(&s->r.m[slot].held);

		while (h > 0 && !atomic_compare_exchange_weak(&s->r.m[slot].held, &h, h - 1))
			;
	}
	sem_give(s, 1);
	return 0;
}

int cohort_sem_leave(cohort_sem_t *cs)
{
	struct sem *s = (struct sem *)(void *)cs;
	int slot;

	if (s->magic != SEM_MAGIC)
		return COHORT_ECORRUPT;
	slot = roster_find(&s->r);
	if (slot < 0)
		return slot;
	uint32_t held = atomic_exchange(&s->r.m[slot].held, 0);
	member_free(&s->r.m[slot]);
	if (held)
		sem_give(s, held);
	return (int)held;
}

unsigned cohort_sem_value(const cohort_sem_t *cs)
{
	const struct sem *s = (const struct sem *)(const void *)cs;

	return atomic_load(&s->value);
}

pid_t cohort_sem_dead(const cohort_sem_t *cs)
{
	const struct sem *s = (const struct sem *)(const void *)cs;

	return (pid_t)atomic_load(&s->dead);
}

int cohort_sem_reap(cohort_sem_t *cs, unsigned *ret_units)
{
	struct sem *s = (struct sem *)(void *)cs;
	unsigned units = 0;
	int removed = 0;

	if (s->magic != SEM_MAGIC)
		return COHORT_ECORRUPT;
	int32_t me = (int32_t)cohort__pid();
	uint64_t myid = cohort__self_id();

	for (unsigned i = 0; i < COHORT_MEMBERS_MAX; i++) {
		struct member *m = &s->r.m[i];
		int32_t pid;
		uint64_t id;

		if (!member_read(m, me, myid, &pid, &id) || cohort__holder_alive(pid, id))
			continue;
		/* Claim the slot first, so that its units are returned once. */
		if (!atomic_compare_exchange_strong(&m->pid, &pid, -1))
			continue;
		if (atomic_load(&m->start) != id) {
			/* Freed and taken again between our reads: not the dead one. */
			atomic_store(&m->pid, pid);
			continue;
		}
		uint32_t held = atomic_exchange(&m->held, 0);
		member_free(m);
		units += held;
		removed++;
		if (held)
			sem_give(s, held);
	}
	atomic_store(&s->dead, 0);
	if (ret_units)
		*ret_units = units;
	return removed;
}
