/*
 * mutex.c - the robust process-shared mutex.
 *
 * Owner death must be seen at any instruction, including between taking
 * the lock word and recording who took it. Only the kernel can do that: at
 * a thread's exit it walks the thread's robust futex list, marks every
 * futex the thread still held with FUTEX_OWNER_DIED and wakes a waiter.
 * glibc's robust process-shared mutex is built on that list (and glibc
 * owns the list's registration per thread), so cohort_mutex wraps it and
 * adds what it lacks: the owner's pid for diagnostics, the pid of the last
 * owner that died, millisecond timeouts on CLOCK_MONOTONIC, and cohort's
 * error codes.
 */
#include "internal.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct mutex {
	pthread_mutex_t m;
	_Atomic int32_t owner;      /* pid of the holder, 0 when free */
	_Atomic int32_t last_dead;  /* pid of the last holder that died */
	_Atomic int32_t claim;      /* pid of the last process that asked for the lock */
};

_Static_assert(sizeof(struct mutex) <= sizeof(cohort_mutex_t), "cohort_mutex_t too small");

#define M(x) ((struct mutex *)(void *)(x))
#define CM(x) ((const struct mutex *)(const void *)(x))

int cohort_mutex_init(cohort_mutex_t *cm)
{
	pthread_mutexattr_t at;
	int r;

	if (!cm)
		return -EINVAL;
	memset(cm, 0, sizeof(*cm));
	r = pthread_mutexattr_init(&at);
	if (r)
		return -r;
	r = pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
	if (!r)
		r = pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
	if (!r)
		r = pthread_mutexattr_settype(&at, PTHREAD_MUTEX_ERRORCHECK);
	if (!r)
		r = pthread_mutex_init(&M(cm)->m, &at);
	pthread_mutexattr_destroy(&at);
	return -r;
}

/* Does the lock word say free? glibc's layout; elsewhere assume so. */
static inline bool lock_word_free(const struct mutex *m)
{
#ifdef __GLIBC__
	return __atomic_load_n(&m->m.__data.__lock, __ATOMIC_RELAXED) == 0;
#else
	(void)m;
	return true;
#endif
}

static bool dead_pid(int32_t pid, int32_t me)
{
	return pid > 0 && pid != me && !cohort__pid_alive(pid, 0);
}

/* Everything but a plain success: kept out of the lock's fast path. */
static __attribute__((noinline)) int took_slow(struct mutex *m, int r, int32_t me)
{
	/* Our claim has served: left behind, it could later name an innocent. */
	if (r != EOWNERDEAD && atomic_load_explicit(&m->claim, memory_order_relaxed) == me)
		atomic_store_explicit(&m->claim, 0, memory_order_relaxed);

	switch (r) {
	case EOWNERDEAD:
		/*
		 * owner still holds the dead process's pid, unless it died
		 * between taking the lock and recording itself (a signal is
		 * often taken right after the locked instruction that took the
		 * lock). Then the claim it wrote before taking the lock names
		 * it: nobody claims a lock whose word is not free, and the word
		 * has not been free since. A claimant that is alive is not it,
		 * and then we say 0 rather than guess.
		 */
		{
			int32_t dead = atomic_load(&m->owner);
			int32_t claim = atomic_load(&m->claim);

			if (!dead_pid(dead, me))
				dead = dead_pid(claim, me) ? claim : 0;
			atomic_store(&m->last_dead, dead);
			if (dead)
				atomic_compare_exchange_strong(&m->claim, &dead, 0);
		}
		atomic_store_explicit(&m->owner, me, memory_order_relaxed);
		return COHORT_EOWNERDEAD;
	case ENOTRECOVERABLE:
		return COHORT_ENOTRECOVERABLE;
	case EBUSY:   /* trylock: the lock is taken and timeout_ms is 0 */
	case ETIMEDOUT:
		return COHORT_ETIMEDOUT;
	default:
		return -r;
	}
}

static __attribute__((noinline)) int lock_timed(struct mutex *m, int timeout_ms)
{
	struct timespec ts;
	int r = pthread_mutex_trylock(&m->m);

	if (r != EBUSY)
		return r;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_mutex_clocklock(&m->m, CLOCK_MONOTONIC, &ts);
}

int cohort_mutex_lock(cohort_mutex_t *cm, int timeout_ms)
{
	struct mutex *m = M(cm);
	int32_t me = (int32_t)cohort__pid();
	int r;

	/*
	 * Claim the mutex when it looks free, before taking it: a holder
	 * killed between taking the lock and recording itself is then still
	 * named. Waiters do not claim (that would add a store per waiter to
	 * the contended line); a holder that came through the wait and died
	 * in that window is reported as unknown.
	 */
	if (lock_word_free(m))
		atomic_store_explicit(&m->claim, me, memory_order_relaxed);

	/*
	 * No spinning before sleeping: glibc has no adaptive robust mutex, and
	 * spinning on trylock measured slower with more processes than CPUs
	 * (bench/bench-mutex.c). A try (timeout 0, what the Python package
	 * does before it gives up the GIL) goes to trylock directly.
	 */
	if (timeout_ms < 0)
		r = pthread_mutex_lock(&m->m);
	else if (timeout_ms == 0)
		r = pthread_mutex_trylock(&m->m);
	else
		r = lock_timed(m, timeout_ms);
	if (__builtin_expect(r == 0, 1)) {
		/* Recorded as the owner: the claim has served. */
		atomic_store_explicit(&m->owner, me, memory_order_relaxed);
		atomic_store_explicit(&m->claim, 0, memory_order_relaxed);
		return 0;
	}
	return took_slow(m, r, me);
}

int cohort_mutex_consistent(cohort_mutex_t *cm)
{
	return -pthread_mutex_consistent(&M(cm)->m);
}

int cohort_mutex_unlock(cohort_mutex_t *cm)
{
	struct mutex *m = M(cm);
	int32_t me = (int32_t)cohort__pid();
	bool mine = atomic_load_explicit(&m->owner, memory_order_relaxed) == me;
	int r;

	/*
	 * Clear the owner before unlocking, while the cache line is still
	 * ours: after the unlock another process may already have taken the
	 * line, and touching it again would cost a miss per unlock under
	 * contention (bench/bench-mutex.c). A death between the two steps
	 * leaves a held mutex showing no owner; the next locker then reports
	 * the dead owner as unknown (0).
	 */
	if (mine)
		atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
	r = pthread_mutex_unlock(&m->m);
	if (r) {
		if (mine)
			atomic_store_explicit(&m->owner, me, memory_order_relaxed);
		return -r;
	}
	return 0;
}

pid_t cohort_mutex_owner(const cohort_mutex_t *cm)
{
	return (pid_t)atomic_load_explicit(&CM(cm)->owner, memory_order_relaxed);
}

pid_t cohort__mutex_holder(const cohort_mutex_t *cm)
{
#ifdef __GLIBC__
	/* A robust mutex's word is the holder's tid, with the waiters and owner-died bits. */
	return (pid_t)(__atomic_load_n(&CM(cm)->m.__data.__lock, __ATOMIC_ACQUIRE) & FUTEX_TID_MASK);
#else
	return cohort_mutex_owner(cm);
#endif
}

pid_t cohort_mutex_last_dead(const cohort_mutex_t *cm)
{
	return (pid_t)atomic_load(&CM(cm)->last_dead);
}
