/* test-mutex.c - the robust process-shared mutex: timed lock, owner death and repair, exact counts. */
#include "harness.h"
#include "shm-util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct mtx_shared {
	cohort_mutex_t m;
	uint64_t a, b;
	_Atomic int flag;
};

static void lock_and_die(void *arg)
{
	struct mtx_shared *s = arg;

	if (cohort_mutex_lock(&s->m, -1) != 0)
		_exit(10);
	s->a++;
	_exit(0);   /* dies holding it */
}

static void try_lock_other(void *arg)
{
	struct mtx_shared *s = arg;

	if (cohort_mutex_lock(&s->m, 0) != COHORT_ETIMEDOUT)
		_exit(10);
	if (cohort_mutex_lock(&s->m, 50) != COHORT_ETIMEDOUT)
		_exit(11);
	if (cohort_mutex_owner(&s->m) != getppid())
		_exit(12);
	if (cohort_mutex_unlock(&s->m) != -EPERM)
		_exit(13);
	if (cohort_mutex_owner(&s->m) != getppid())
		_exit(14);
}

TEST(shm_mutex_lock_trylock_timeout_owner)
{
	struct mtx_shared *s = shm_test_shared(sizeof(*s));
#if defined(__SANITIZE_THREAD__)
	SKIP("ThreadSanitizer does not intercept pthread_mutex_clocklock (the timed lock), so the unlock that follows looks to it like the unlock of an unlocked mutex");
#endif

	CHECK_OK(cohort_mutex_init(&s->m));
	CHECK_EQ(cohort_mutex_owner(&s->m), 0);
	CHECK_OK(cohort_mutex_lock(&s->m, -1));
	CHECK_EQ(cohort_mutex_owner(&s->m), getpid());
	CHECK_EQ(cohort_mutex_lock(&s->m, -1), -EDEADLK);
	CHECK_EQ(shm_test_wait(helper_spawn(try_lock_other, s)), 0);
	CHECK_OK(cohort_mutex_unlock(&s->m));
	CHECK_EQ(cohort_mutex_owner(&s->m), 0);
	CHECK_EQ(cohort_mutex_unlock(&s->m), -EPERM);
	CHECK_OK(cohort_mutex_lock(&s->m, 100));
	CHECK_OK(cohort_mutex_unlock(&s->m));
}

TEST(shm_mutex_owner_death_is_reported_and_repaired)
{
	struct mtx_shared *s = shm_test_shared(sizeof(*s));
	pid_t pid;

	CHECK_OK(cohort_mutex_init(&s->m));
	pid = helper_spawn(lock_and_die, s);
	CHECK_EQ(shm_test_wait(pid), 0);
	CHECK_EQ(cohort_mutex_lock(&s->m, 1000), COHORT_EOWNERDEAD);
	CHECK_EQ(cohort_mutex_last_dead(&s->m), pid);
	CHECK_EQ(cohort_mutex_owner(&s->m), getpid());
	s->b = s->a;    /* repair */
	CHECK_OK(cohort_mutex_consistent(&s->m));
	CHECK_OK(cohort_mutex_unlock(&s->m));
	CHECK_OK(cohort_mutex_lock(&s->m, 1000));
	CHECK_OK(cohort_mutex_unlock(&s->m));

	/* Not repaired: unusable for good, and says so. */
	pid = helper_spawn(lock_and_die, s);
	CHECK_EQ(shm_test_wait(pid), 0);
	CHECK_EQ(cohort_mutex_lock(&s->m, 1000), COHORT_EOWNERDEAD);
	CHECK_OK(cohort_mutex_unlock(&s->m));
	CHECK_EQ(cohort_mutex_lock(&s->m, 1000), COHORT_ENOTRECOVERABLE);
}

static void count_up(void *arg)
{
	struct mtx_shared *s = arg;

	for (int i = 0; i < 20000; i++) {
		if (cohort_mutex_lock(&s->m, 10000) != 0)
			_exit(10);
		s->a++;
		cohort_mutex_unlock(&s->m);
	}
}

TEST(shm_mutex_exact_count_across_processes)
{
	struct mtx_shared *s = shm_test_shared(sizeof(*s));
	pid_t pids[4];
#if defined(__SANITIZE_THREAD__)
	SKIP("ThreadSanitizer does not intercept pthread_mutex_clocklock (the timed lock), so the unlock that follows looks to it like the unlock of an unlocked mutex");
#endif

	CHECK_OK(cohort_mutex_init(&s->m));
	for (int i = 0; i < 4; i++)
		pids[i] = helper_spawn(count_up, s);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(shm_test_wait(pids[i]), 0);
	CHECK_EQ_U64(s->a, 80000);
}
