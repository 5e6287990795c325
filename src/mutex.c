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
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct mutex {
	pthread_mutex_t m;
	_Atomic int32_t owner;      /* pid of the holder, 0 when free */
	_Atomic int32_t last_dead;  /* pid of the last holder that died */
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

static int took(struct mutex *m, int r)
{
	int32_t me = (int32_t)cohort__pid();

	switch (r) {
	case 0:
		atomic_store_explicit(&m->owner, me, memory_order_relaxed);
		return 0;
	case EOWNERDEAD:
		/*
		 * owner still holds the dead process's pid, unless it died in the
		 * few instructions between taking the lock and recording itself:
		 * then owner names an earlier holder, alive, and we say 0.
		 */
		{
			int32_t dead = atomic_load(&m->owner);

			if (dead == me || cohort__pid_alive(dead, 0))
				dead = 0;
			atomic_store(&m->last_dead, dead);
		}
		atomic_store_explicit(&m->owner, me, memory_order_relaxed);
		return COHORT_EOWNERDEAD;
	case ENOTRECOVERABLE:
		return COHORT_ENOTRECOVERABLE;
	case ETIMEDOUT:
		return COHORT_ETIMEDOUT;
	default:
		return -r;
	}
}

int cohort_mutex_lock(cohort_mutex_t *cm, int timeout_ms)
{
	struct mutex *m = M(cm);
	struct timespec ts;
	int r;

	/*
	 * No spinning before sleeping: glibc has no adaptive robust mutex, and
	 * spinning on trylock measured slower with more processes than CPUs
	 * (bench/bench-mutex.c).
	 */
	if (timeout_ms < 0)
		return took(m, pthread_mutex_lock(&m->m));
	r = pthread_mutex_trylock(&m->m);
	if (r != EBUSY || timeout_ms == 0)
		return took(m, r);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return took(m, pthread_mutex_clocklock(&m->m, CLOCK_MONOTONIC, &ts));
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

pid_t cohort_mutex_last_dead(const cohort_mutex_t *cm)
{
	return (pid_t)atomic_load(&CM(cm)->last_dead);
}
