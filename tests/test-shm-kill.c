/*
 * test-shm-kill.c - the owner-death matrix: SIGKILL a process at a random
 * instant while it holds the mutex, inside enqueue, inside dequeue, and
 * while it waits at the barrier. After every kill: nothing hangs (every
 * wait is bounded), no message is lost or duplicated beyond the dead
 * process's own in-flight one (which the queue reports), and the data a
 * dead lock holder left half-updated is repaired.
 *
 * A kill counts for a point only when it landed there (the victim held
 * the lock, or was inside enqueue or dequeue, as the recovery shows);
 * each point goes on until KILLS_CHECK such kills (`make check`) or
 * KILLS_STRESS (`make stress`), with at most MAX_ATTEMPTS_PER_HIT times
 * as many attempts.
 */
#include "harness.h"

#include <sched.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KILLS_CHECK 25
#define KILLS_STRESS 1000
#define MAX_ATTEMPTS_PER_HIT 20

static unsigned kills_per_point(void)
{
	return test_stress() ? KILLS_STRESS : KILLS_CHECK;
}

static void *shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK_MSG(p != MAP_FAILED, "mmap: %s", strerror(errno));
	return p;
}

/*
 * Print a point's figures; under `make stress` also append them to
 * <build>/shm-kill-figures.txt, since the runner shows the output of
 * failing tests only.
 */
static void figures(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void figures(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	if (test_stress()) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/shm-kill-figures.txt", test_build_dir());
		f = fopen(path, "a");
		if (f) {
			va_start(ap, fmt);
			vfprintf(f, fmt, ap);
			va_end(ap);
			fclose(f);
		}
	}
}

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(rng_state >> 33) % n;
}

static void seed(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	rng_state = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
	printf("seed %llu\n", (unsigned long long)rng_state);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Wait (bounded) until *flag reaches want. */
static void await_flag(_Atomic uint32_t *flag, uint32_t want)
{
	uint64_t end = now_us() + 10 * 1000000;

	while (atomic_load(flag) < want) {
		CHECK_MSG(now_us() < end, "helpers did not start within 10 s");
		usleep(50);
	}
}

static void kill_and_reap(pid_t pid)
{
	CHECK(kill(pid, SIGKILL) == 0);
	int st = helper_wait(pid, 10000);
	CHECK_MSG(st != -1, "killed helper %d not reaped within 10 s", (int)pid);
}

/* ---- point 1: holding the mutex ---- */

struct mtx_kill {
	cohort_mutex_t m;
	uint64_t a, b;            /* invariant a == b outside the lock */
	_Atomic uint32_t ready;
};

static void mutex_holder(void *arg)
{
	struct mtx_kill *s = arg;

	for (;;) {
		int r = cohort_mutex_lock(&s->m, 10000);

		if (r == COHORT_EOWNERDEAD) {
			s->b = s->a;
			cohort_mutex_consistent(&s->m);
		} else if (r != 0) {
			_exit(10);
		}
		s->a++;
		for (int k = 0; k < 64; k++)
			__asm__ __volatile__("" ::: "memory");
		s->b++;
		cohort_mutex_unlock(&s->m);
		if (!atomic_load_explicit(&s->ready, memory_order_relaxed))
			atomic_store(&s->ready, 1);   /* running: the kill may come */
	}
}

TEST_TIMEOUT(shm_kill_mutex_holder, 300)
{
	struct mtx_kill *s = shared(sizeof(*s));
	unsigned kills = kills_per_point(), died_holding = 0, torn = 0, unnamed = 0;

	seed();
	CHECK_OK(cohort_mutex_init(&s->m));
	unsigned i;
	for (i = 0; died_holding < kills && i < kills * MAX_ATTEMPTS_PER_HIT; i++) {
		atomic_store(&s->ready, 0);
		pid_t pid = helper_spawn(mutex_holder, s);
		await_flag(&s->ready, 1);
		usleep(rnd(1000));
		kill_and_reap(pid);

		int r = cohort_mutex_lock(&s->m, 5000);
		CHECK_MSG(r == 0 || r == COHORT_EOWNERDEAD, "kill %u: lock gave %d (%s)", i, r,
		          cohort_strerror(r));
		if (r == COHORT_EOWNERDEAD) {
			pid_t named = cohort_mutex_last_dead(&s->m);

			died_holding++;
			/* 0 when it cannot be told for sure (documented); never another pid. */
			CHECK_MSG(named == pid || named == 0, "kill %u: last_dead %d, victim %d", i,
			          (int)named, (int)pid);
			unnamed += named == 0;
			CHECK_MSG(s->a == s->b || s->a == s->b + 1, "kill %u: a=%llu b=%llu", i,
			          (unsigned long long)s->a, (unsigned long long)s->b);
			if (s->a != s->b)
				torn++;
			s->b = s->a;   /* repair */
			CHECK_OK(cohort_mutex_consistent(&s->m));
		} else {
			CHECK_EQ_U64(s->a, s->b);
		}
		CHECK_OK(cohort_mutex_unlock(&s->m));
	}
	figures("mutex: %u kills, %u while holding the lock (%u with the data half-updated, %u with "
	       "the dead holder's pid unknown, none misnamed), all repaired\n", i, died_holding, torn,
	       unnamed);
	CHECK_MSG(died_holding >= kills, "only %u of %u kills hit the holder", died_holding, i);
	fflush(stdout);
}

/* ---- message format for the queue points ---- */

struct msg {
	uint32_t gen, seq, len, check;
	unsigned char payload[496];
};

static uint32_t msg_len(uint32_t seq)
{
	return 16 + (seq * 53) % 480;
}

static void msg_fill(struct msg *m, uint32_t gen, uint32_t seq)
{
	m->gen = gen;
	m->seq = seq;
	m->len = msg_len(seq);
	m->check = gen * 2654435761u ^ seq;
	memset(m->payload, (int)(seq & 0xff), m->len - 16);
}

/* Is n bytes at m one intact message? */
static bool msg_ok(const struct msg *m, int n)
{
	if (n < 16 || (uint32_t)n != m->len || m->len != msg_len(m->seq) ||
	    m->check != (m->gen * 2654435761u ^ m->seq))
		return false;
	for (uint32_t i = 0; i < m->len - 16; i++)
		if (m->payload[i] != (unsigned char)(m->seq & 0xff))
			return false;
	return true;
}

/* ---- point 2: inside enqueue ---- */

struct enq_kill {
	_Atomic uint32_t ready;
	_Atomic uint32_t committed;   /* sends that returned 0 in this generation */
	uint32_t gen;
	_Alignas(64) unsigned char q[];
};

#define QCAP (64 * 1024)

static void producer(void *arg)
{
	struct enq_kill *s = arg;
	cohort_queue_t *q;
	static struct msg pre[256];

	if (cohort_queue_attach(s->q, cohort_queue_footprint(QCAP), &q) != 0)
		_exit(9);
	/* Payloads built beforehand: the victim should spend its time inside enqueue. */
	for (uint32_t k = 0; k < 256; k++) {
		msg_fill(&pre[k], s->gen, k);
		memset(pre[k].payload, (int)k, sizeof(pre[k].payload));   /* for every later length */
	}
	atomic_fetch_add(&s->ready, 1);
	for (uint32_t seq = 0;; seq++) {
		struct msg *m = &pre[seq & 255];

		m->seq = seq;
		m->len = msg_len(seq);
		m->check = s->gen * 2654435761u ^ seq;
		if (cohort_queue_send(q, m, m->len, 10000) != 0)
			_exit(10);
		atomic_store(&s->committed, seq + 1);
	}
}

TEST_TIMEOUT(shm_kill_queue_producer, 300)
{
	size_t qsize = cohort_queue_footprint(QCAP);
	struct enq_kill *s = shared(sizeof(*s) + qsize);
	unsigned kills = kills_per_point(), lost = 0, recovered = 0;
	uint64_t delivered = 0;
	cohort_queue_t *q;
	struct msg m;

	seed();
	CHECK_OK(cohort_queue_init(s->q, qsize, &q));
	uint32_t gen;
	for (gen = 1; recovered < kills && gen <= kills * MAX_ATTEMPTS_PER_HIT; gen++) {
		struct cohort_queue_stats before, after;
		uint32_t next = 0;
		int n;

		CHECK_OK(cohort_queue_stats(q, &before));
		s->gen = gen;
		atomic_store(&s->committed, 0);
		atomic_store(&s->ready, 0);
		pid_t pid = helper_spawn(producer, s);
		await_flag(&s->ready, 1);
		await_flag(&s->committed, 1);

		/* Consume alongside the producer until a random instant, then kill it. */
		uint64_t kill_at = now_us() + rnd(500);
		while (now_us() < kill_at) {
			n = cohort_queue_recv(q, &m, sizeof(m), 0);
			if (n == -EAGAIN)
				continue;
			CHECK_MSG(n > 0 && msg_ok(&m, n) && m.gen == gen && m.seq == next,
			          "gen %u: got %d bytes, seq %u gen %u, want seq %u", gen, n, m.seq, m.gen, next);
			next++;
		}
		kill_and_reap(pid);
		uint32_t committed = atomic_load(&s->committed);

		/* Drain, then send a marker: that takes the producers' lock, recovering it. */
		while ((n = cohort_queue_recv(q, &m, sizeof(m), 0)) > 0) {
			CHECK_MSG(msg_ok(&m, n) && m.gen == gen && m.seq == next,
			          "gen %u: drained seq %u gen %u, want seq %u", gen, m.seq, m.gen, next);
			next++;
		}
		CHECK_EQ(n, -EAGAIN);
		msg_fill(&m, 0, 0);
		CHECK_OK(cohort_queue_send(q, &m, m.len, 5000));
		n = cohort_queue_recv(q, &m, sizeof(m), 5000);
		CHECK_MSG(n > 0 && msg_ok(&m, n) && m.gen == 0, "gen %u: marker not next (%d)", gen, n);
		CHECK_EQ(cohort_queue_recv(q, &m, sizeof(m), 0), -EAGAIN);
		CHECK_OK(cohort_queue_stats(q, &after));

		uint64_t dl = after.lost_send - before.lost_send;
		CHECK_MSG(dl <= 1, "gen %u: %llu messages reported lost", gen, (unsigned long long)dl);
		if (dl == 1)
			CHECK_MSG(next == committed, "gen %u: lost reported, yet got %u of %u committed",
			          gen, next, committed);
		else
			CHECK_MSG(next == committed || next == committed + 1,
			          "gen %u: got %u messages, %u committed", gen, next, committed);
		if (after.recovered != before.recovered)
			CHECK_MSG(after.last_dead == pid, "gen %u: last_dead %d, victim %d", gen,
			          (int)after.last_dead, (int)pid);
		lost += (unsigned)dl;
		recovered += (unsigned)(after.recovered - before.recovered);
		delivered += next;
	}
	figures("enqueue: %u kills, %u inside the producers' lock (recovered), %u in-flight messages "
	       "reported lost, %llu delivered exactly once in order\n",
	       gen - 1, recovered, lost, (unsigned long long)delivered);
	CHECK_MSG(recovered >= kills, "only %u of %u kills landed inside enqueue", recovered, gen - 1);
	fflush(stdout);
}

/* ---- point 3: inside dequeue ---- */

#define MAX_MSGS (1u << 22)
#define DEQ_QCAP (64 * 1024)

struct deq_kill {
	_Atomic uint32_t ready;
	_Atomic uint8_t *got;         /* per global seq: times received */
	_Alignas(64) unsigned char q[];
};

static void consumer(void *arg)
{
	struct deq_kill *s = arg;
	cohort_queue_t *q;
	struct msg m;

	if (cohort_queue_attach(s->q, cohort_queue_footprint(DEQ_QCAP), &q) != 0)
		_exit(9);
	for (;;) {
		int n = cohort_queue_recv(q, &m, sizeof(m), 10000);

		if (!atomic_load_explicit(&s->ready, memory_order_relaxed))
			atomic_store(&s->ready, 1);   /* running: the kill may come */
		/* The header only: the victim should spend its time inside dequeue. */
		if (n < 16 || (uint32_t)n != m.len || m.seq >= MAX_MSGS)
			_exit(10);
		atomic_fetch_add(&s->got[m.seq], 1);
	}
}

TEST_TIMEOUT(shm_kill_queue_consumer, 300)
{
	size_t qsize = cohort_queue_footprint(DEQ_QCAP);
	struct deq_kill *s = shared(sizeof(*s) + qsize);
	unsigned kills = kills_per_point(), lost = 0, recovered = 0, unrecorded = 0;
	uint32_t seq = 0;
	cohort_queue_t *q;
	struct msg m;

	seed();
	s->got = shared(MAX_MSGS);
	CHECK_OK(cohort_queue_init(s->q, qsize, &q));
	unsigned i;
	for (i = 0; recovered < kills && i < kills * MAX_ATTEMPTS_PER_HIT; i++) {
		struct cohort_queue_stats before, after;
		uint32_t first = seq;
		int n;

		CHECK_OK(cohort_queue_stats(q, &before));
		/* A full queue first, so that the victim has work the moment it starts. */
		for (;;) {
			msg_fill(&m, 1, seq);
			if (cohort_queue_send(q, &m, m.len, 0) != 0)
				break;
			seq++;
		}
		atomic_store(&s->ready, 0);
		pid_t pid = helper_spawn(consumer, s);
		await_flag(&s->ready, 1);
		/*
		 * On a loaded machine the victim may not run for a while after it
		 * said ready: wait (at most 1 s) until it has taken a message, so
		 * that the kill falls while it is consuming.
		 */
		for (uint64_t give_up = now_us() + 1000000;
		     !atomic_load(&s->got[first]) && now_us() < give_up; )
			sched_yield();

		uint64_t kill_at = now_us() + rnd(300);
		while (now_us() < kill_at && seq < MAX_MSGS - 1) {
			msg_fill(&m, 1, seq);
			int r = cohort_queue_send(q, &m, m.len, 0);
			if (r == 0)
				seq++;
			else
				CHECK_EQ(r, -EAGAIN);
		}
		kill_and_reap(pid);

		/* Take over as the consumer: recovers the lock, drains the rest. */
		while ((n = cohort_queue_recv(q, &m, sizeof(m), 0)) > 0) {
			CHECK(msg_ok(&m, n) && m.seq >= first && m.seq < seq);
			atomic_fetch_add(&s->got[m.seq], 1);
		}
		CHECK_EQ(n, -EAGAIN);
		CHECK_OK(cohort_queue_stats(q, &after));

		unsigned missing = 0;
		for (uint32_t k = first; k < seq; k++) {
			CHECK_MSG(s->got[k] <= 1, "kill %u: message %u received %u times", i, k,
			          (unsigned)s->got[k]);
			missing += s->got[k] == 0;
		}
		uint64_t dl = after.lost_recv - before.lost_recv;
		CHECK_MSG(missing <= 1, "kill %u: %u messages missing", i, missing);
		CHECK_MSG(dl <= missing, "kill %u: %llu reported lost, %u missing", i,
		          (unsigned long long)dl, missing);
		if (missing && !dl)
			unrecorded++;   /* returned to the consumer, killed before it noted it */
		if (after.recovered != before.recovered)
			CHECK_MSG(after.last_dead == pid, "kill %u: last_dead %d, victim %d", i,
			          (int)after.last_dead, (int)pid);
		lost += (unsigned)dl;
		recovered += (unsigned)(after.recovered - before.recovered);
		if (seq >= MAX_MSGS - 20000)
			break;
	}
	figures("dequeue: %u kills, %u inside the consumers' lock (recovered), %u in-flight messages "
	       "reported lost, %u taken but not yet noted by the victim, %u sent, no duplicate\n",
	       i, recovered, lost, unrecorded, seq);
	CHECK_MSG(recovered >= kills, "only %u of %u kills landed inside dequeue", recovered, i);
	fflush(stdout);
}

/* ---- point 4: waiting at the barrier ---- */

#define BAR_N 3

struct bar_kill {
	cohort_barrier_t b;
	_Atomic uint32_t ready;
	_Atomic uint32_t rounds;
	_Atomic int32_t saw_dead[BAR_N];
	_Atomic int32_t result[BAR_N];
};

struct bar_arg {
	struct bar_kill *s;
	int idx;
};

static void barrier_member(void *arg)
{
	struct bar_arg *a = arg;
	struct bar_kill *s = a->s;

	if (cohort_barrier_attach(&s->b) != 0)
		_exit(9);
	atomic_fetch_add(&s->ready, 1);
	for (;;) {
		int r = cohort_barrier_wait(&s->b, 10000);

		if (r == 1)
			atomic_fetch_add(&s->rounds, 1);
		if (r < 0) {
			atomic_store(&s->result[a->idx], r);
			atomic_store(&s->saw_dead[a->idx], cohort_barrier_dead(&s->b));
			_exit(r == COHORT_EPEERDEAD ? 0 : 10);
		}
	}
}

TEST_TIMEOUT(shm_kill_barrier_waiter, 300)
{
	struct bar_kill *s = shared(sizeof(*s));
	struct bar_arg args[BAR_N];
	unsigned kills = kills_per_point();
	uint64_t rounds = 0;

	seed();
	for (unsigned i = 0; i < kills; i++) {
		pid_t pids[BAR_N];

		CHECK_OK(cohort_barrier_init(&s->b, BAR_N));
		atomic_store(&s->ready, 0);
		atomic_store(&s->rounds, 0);
		for (int k = 0; k < BAR_N; k++) {
			atomic_store(&s->saw_dead[k], -1);
			atomic_store(&s->result[k], 0);
			args[k] = (struct bar_arg){ s, k };
			pids[k] = helper_spawn(barrier_member, &args[k]);
		}
		await_flag(&s->ready, BAR_N);
		usleep(rnd(2000));
		int victim = (int)rnd(BAR_N);
		kill_and_reap(pids[victim]);
		for (int k = 0; k < BAR_N; k++) {
			if (k == victim)
				continue;
			int st = helper_wait(pids[k], 10000);
			CHECK_MSG(st != -1, "kill %u: survivor %d still waiting after 10 s", i, k);
			CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			          "kill %u: survivor %d ended with status %d, wait gave %d", i, k, st,
			          (int)atomic_load(&s->result[k]));
			CHECK_MSG(atomic_load(&s->saw_dead[k]) == pids[victim],
			          "kill %u: survivor %d was told pid %d died, not %d", i, k,
			          (int)atomic_load(&s->saw_dead[k]), (int)pids[victim]);
		}
		rounds += atomic_load(&s->rounds);
	}
	figures("barrier: %u kills, every survivor told the victim's pid; %llu rounds completed before the kills\n",
	       kills, (unsigned long long)rounds);
	fflush(stdout);
}

/* ---- beyond the matrix: inside the arena ---- */

#define ARENA_SLOTS 64

struct arena_kill {
	_Atomic uint32_t ready;
	_Atomic cohort_off_t h[ARENA_SLOTS];   /* the victim's live allocations */
	_Alignas(64) unsigned char mem[4 << 20];
};

static void arena_churn(void *arg)
{
	struct arena_kill *s = arg;
	cohort_arena_t *a;
	uint64_t x = (uint64_t)getpid();

	if (cohort_arena_attach(s->mem, sizeof(s->mem), &a) != 0)
		_exit(9);
	for (unsigned n = 0;; n++) {
		unsigned i = (unsigned)((x = x * 6364136223846793005ULL + 1) >> 58);
		cohort_off_t h = atomic_load(&s->h[i]);

		if (h) {
			if (cohort_arena_free(a, h) != 0)
				_exit(10);
			atomic_store(&s->h[i], 0);   /* after the free: a kill between is a double free */
		} else if (cohort_arena_alloc(a, 1 + (size_t)(x >> 40) % 512, &h) == 0) {
			atomic_store(&s->h[i], h);   /* a kill before this leaks the block */
		}
		if (n == 100)
			atomic_store(&s->ready, 1);
	}
}

TEST_TIMEOUT(shm_kill_arena_user, 300)
{
	struct arena_kill *s = shared(sizeof(*s));
	unsigned kills = kills_per_point(), i, refused = 0;
	uint64_t recovered = 0;
	cohort_arena_t *a;
	cohort_off_t mine;

	seed();
	CHECK_OK(cohort_arena_init(s->mem, sizeof(s->mem), &a));
	CHECK_OK(cohort_arena_alloc(a, 1000, &mine));
	memset(cohort_arena_ptr(a, mine), 0x5a, 1000);
	for (i = 0; recovered < kills && i < kills * MAX_ATTEMPTS_PER_HIT; i++) {
		struct cohort_arena_stats st;
		cohort_off_t probe;
		unsigned bad = 0;

		atomic_store(&s->ready, 0);
		pid_t pid = helper_spawn(arena_churn, s);
		await_flag(&s->ready, 1);
		usleep(rnd(500));
		kill_and_reap(pid);

		/* The chain is whole, the counts add up, and it still allocates. */
		CHECK_OK(cohort_arena_stats(a, &st));
		CHECK_EQ_U64(st.used + st.free, st.size);
		CHECK_OK(cohort_arena_alloc(a, 64, &probe));
		CHECK_OK(cohort_arena_free(a, probe));
		CHECK_EQ(cohort_arena_check(a, mine), 1000);
		/* Free what the victim held: only its in-flight free may be refused. */
		for (int k = 0; k < ARENA_SLOTS; k++) {
			cohort_off_t h = atomic_exchange(&s->h[k], 0);

			if (h && cohort_arena_free(a, h) != 0)
				bad++;
		}
		CHECK_MSG(bad <= 1, "kill %u: %u of the victim's blocks could not be freed", i, bad);
		refused += bad;
		recovered = st.recovered;
	}
	struct cohort_arena_stats end;
	CHECK_OK(cohort_arena_stats(a, &end));
	figures("arena: %u kills, %llu inside the arena's lock, the block chain whole after every "
	        "one; %llu blocks leaked by victims killed before they kept the handle, %u double "
	        "frees refused\n", i, (unsigned long long)recovered,
	        (unsigned long long)end.allocations - 1, refused);
	CHECK_MSG(recovered >= kills, "only %llu of %u kills landed inside the arena",
	          (unsigned long long)recovered, i);
	/* At most one block leaked per kill, never more. */
	CHECK(end.allocations - 1 <= i);
	unsigned char *p = cohort_arena_ptr(a, mine);
	for (int k = 0; k < 1000; k++)
		CHECK_EQ(p[k], 0x5a);
}
