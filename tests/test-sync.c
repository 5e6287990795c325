/* test-sync.c - barrier and semaphore: rounds, dead members, detaching, posters that are not members. */
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

struct bar_shared {
	cohort_barrier_t b;
	_Atomic int serial;
	_Atomic int round[3];
};

static void barrier_rounds(void *arg)
{
	struct bar_shared *s = arg;

	for (int i = 0; i < 200; i++) {
		int r = cohort_barrier_wait(&s->b, 10000);

		if (r < 0)
			_exit(10);
		if (r == 1)
			atomic_fetch_add(&s->serial, 1);
	}
}

TEST(shm_barrier_rounds_have_one_serial_each)
{
	struct bar_shared *s = shm_test_shared(sizeof(*s));
	pid_t p[3];

	CHECK_OK(cohort_barrier_init(&s->b, 3));
	for (int i = 0; i < 3; i++)
		p[i] = helper_spawn(barrier_rounds, s);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(shm_test_wait(p[i]), 0);
	CHECK_EQ(atomic_load(&s->serial), 200);
	CHECK_EQ(cohort_barrier_init(&s->b, 0), -EINVAL);
	CHECK_EQ(cohort_barrier_init(&s->b, COHORT_MEMBERS_MAX + 1), -EINVAL);
}

static void join_and_exit(void *arg)
{
	struct bar_shared *s = arg;

	if (cohort_barrier_join(&s->b) != 0)
		_exit(10);
}

TEST(shm_barrier_dead_member_ends_the_wait)
{
	struct bar_shared *s = shm_test_shared(sizeof(*s));
	pid_t dead;

	CHECK_OK(cohort_barrier_init(&s->b, 2));
	dead = helper_spawn(join_and_exit, s);
	CHECK_EQ(shm_test_wait(dead), 0);
	CHECK_EQ(cohort_barrier_wait(&s->b, 10000), COHORT_EPEERDEAD);
	CHECK_EQ(cohort_barrier_dead(&s->b), dead);
	/* Broken stays broken. */
	CHECK_EQ(cohort_barrier_wait(&s->b, 10000), COHORT_EPEERDEAD);

	/* A member that never comes, alive: a timeout, which breaks the barrier. */
	CHECK_OK(cohort_barrier_init(&s->b, 2));
	CHECK_EQ(cohort_barrier_wait(&s->b, 30), COHORT_ETIMEDOUT);
	CHECK_EQ(cohort_barrier_wait(&s->b, 30), COHORT_EPEERDEAD);
	CHECK_EQ(cohort_barrier_dead(&s->b), 0);
}

static void wait_then_leave(void *arg)
{
	struct bar_shared *s = arg;

	if (cohort_barrier_wait(&s->b, 10000) < 0)
		_exit(10);
	if (cohort_barrier_leave(&s->b) != 0)
		_exit(11);
	if (cohort_barrier_leave(&s->b) != -ENOENT)
		_exit(12);
}

TEST(shm_barrier_detach_is_a_clean_exit)
{
	struct bar_shared *s = shm_test_shared(sizeof(*s));

	CHECK_OK(cohort_barrier_init(&s->b, 2));
	pid_t pid = helper_spawn(wait_then_leave, s);
	CHECK(cohort_barrier_wait(&s->b, 10000) >= 0);
	CHECK_EQ(shm_test_wait(pid), 0);
	/* It left cleanly: alone now, this process passes the barrier at once. */
	CHECK_EQ(cohort_barrier_wait(&s->b, 10000), 1);
	CHECK_EQ(cohort_barrier_wait(&s->b, 10000), 1);
	CHECK_EQ(cohort_barrier_dead(&s->b), 0);
}

/* ---- semaphore ---- */

struct sem_shared {
	cohort_sem_t s;
	_Atomic int inside, max_inside;
};

static void take_two_and_die(void *arg)
{
	struct sem_shared *s = arg;

	if (cohort_sem_wait(&s->s, 1000) != 0 || cohort_sem_wait(&s->s, 1000) != 0)
		_exit(10);
}

static void sem_worker(void *arg)
{
	struct sem_shared *s = arg;

	for (int i = 0; i < 300; i++) {
		if (cohort_sem_wait(&s->s, 10000) != 0)
			_exit(10);
		int n = atomic_fetch_add(&s->inside, 1) + 1;
		int m = atomic_load(&s->max_inside);
		while (n > m && !atomic_compare_exchange_weak(&s->max_inside, &m, n))
			;
		atomic_fetch_sub(&s->inside, 1);
		cohort_sem_post(&s->s);
	}
}

TEST(shm_sem_counts_and_survives_a_dead_holder)
{
	struct sem_shared *s = shm_test_shared(sizeof(*s));
	unsigned units = 99;
	pid_t p[4];

	CHECK_OK(cohort_sem_init(&s->s, 2));
	for (int i = 0; i < 4; i++)
		p[i] = helper_spawn(sem_worker, s);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(shm_test_wait(p[i]), 0);
	CHECK(atomic_load(&s->max_inside) <= 2);
	CHECK_EQ(cohort_sem_value(&s->s), 2);
	/* The workers exited: reap them so they are not taken for dead holders. */
	CHECK_EQ(cohort_sem_reap(&s->s, &units), 4);
	CHECK_EQ(units, 0);

	pid_t dead = helper_spawn(take_two_and_die, s);
	CHECK_EQ(shm_test_wait(dead), 0);
	CHECK_EQ(cohort_sem_value(&s->s), 0);
	CHECK_EQ(cohort_sem_wait(&s->s, 0), COHORT_ETIMEDOUT);
	CHECK_EQ(cohort_sem_wait(&s->s, 10000), COHORT_EPEERDEAD);
	CHECK_EQ(cohort_sem_dead(&s->s), dead);
	CHECK_EQ(cohort_sem_reap(&s->s, &units), 1);
	CHECK_EQ(units, 2);
	CHECK_EQ(cohort_sem_value(&s->s), 2);
	CHECK_OK(cohort_sem_wait(&s->s, 1000));
	CHECK_OK(cohort_sem_post(&s->s));
	CHECK_EQ(cohort_sem_wait(&s->s, 20) , 0);
	CHECK_EQ(cohort_sem_wait(&s->s, 20) , 0);
	CHECK_EQ(cohort_sem_wait(&s->s, 20), COHORT_ETIMEDOUT);
}

static void take_one_and_leave(void *arg)
{
	struct sem_shared *s = arg;

	if (cohort_sem_wait(&s->s, 1000) != 0)
		_exit(10);
	if (cohort_sem_leave(&s->s) != 1)
		_exit(11);
}

static void post_only(void *arg)
{
	struct sem_shared *s = arg;

	for (int i = 0; i < 100; i++)
		if (cohort_sem_post(&s->s) != 0)
			_exit(10);
}

TEST(shm_sem_detach_and_posters_that_are_not_members)
{
	struct sem_shared *s = shm_test_shared(sizeof(*s));

	CHECK_OK(cohort_sem_init(&s->s, 1));
	CHECK_EQ(shm_test_wait(helper_spawn(take_one_and_leave, s)), 0);
	/* Its unit came back, and its exit is not a death. */
	CHECK_EQ(cohort_sem_value(&s->s), 1);
	CHECK_OK(cohort_sem_wait(&s->s, 1000));
	CHECK_EQ(cohort_sem_wait(&s->s, 30), COHORT_ETIMEDOUT);
	/* Many short-lived posters never fill the member table. */
	for (int i = 0; i < COHORT_MEMBERS_MAX + 8; i++)
		CHECK_EQ(shm_test_wait(helper_spawn(post_only, s)), 0);
	CHECK_EQ(cohort_sem_value(&s->s), 100 * (COHORT_MEMBERS_MAX + 8));
	CHECK_EQ(cohort_sem_leave(&s->s), 1);
	CHECK_EQ(cohort_sem_leave(&s->s), -ENOENT);
}
