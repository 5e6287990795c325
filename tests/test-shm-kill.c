/*
 * test-shm-kill.c - the owner-death matrix: SIGKILL a process while it
 * holds the mutex, inside enqueue, inside dequeue, while it waits at the
 * barrier, and inside the arena. After every kill: nothing hangs (every
 * wait is bounded), no message is lost or duplicated beyond the dead
 * process's own in-flight one (which the queue reports), and the data a
 * dead lock holder left half-updated is repaired.
 *
 * Where a kill lands is not left to luck (on a loaded machine the victim
 * may hardly run, and few kills at random instants fall inside a short
 * section). The victim is stopped (SIGSTOP) at a random instant, the
 * shared state shows where it is (the lock word names the holder: see
 * cohort__mutex_holder() and friends), and it is killed only when it is
 * inside the point; otherwise it goes on (SIGCONT) and is stopped again a
 * moment later. A stopped process runs no instruction, so what the lock
 * word said when it was looked at is where the kill lands: every kill is
 * one at its point, and each is checked to have been recovered as such.
 * Each point makes KILLS_CHECK kills (`make check`) or KILLS_STRESS
 * (`make stress`); only the number of stops it takes depends on the load.
 */
#include "harness.h"
#include "internal.h"

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
/* The longest a victim may be stopped and let go again before one stop finds it at the point. */
#define STRIKE_SECONDS 60

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

/* Busy for about us microseconds: a random instant for the next stop. */
static void spin_us(uint32_t us)
{
	uint64_t end = now_us() + us;

	while (now_us() < end)
		sched_yield();
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
	CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	          "helper %d ended with status %d before the kill", (int)pid, st);
}

/*
 * Stop pid and wait (bounded) until it has stopped: from then on it runs
 * no instruction, so what the shared state says about it stays true.
 */
static void stop_and_wait(pid_t pid)
{
	uint64_t end = now_us() + 10 * 1000000;
	unsigned polls = 0;
	int st;

	CHECK(kill(pid, SIGSTOP) == 0);
	for (;;) {
		pid_t r = waitpid(pid, &st, WUNTRACED | WNOHANG);

		if (r == pid) {
			CHECK_MSG(WIFSTOPPED(st), "helper %d ended (status %d) instead of stopping",
			          (int)pid, st);
			return;
		}
		CHECK_MSG(r == 0 || errno == EINTR, "waitpid(%d): %s", (int)pid, strerror(errno));
		CHECK_MSG(now_us() < end, "helper %d did not stop within 10 s", (int)pid);
		/* It usually stops within microseconds; under load it may wait for a CPU. */
		if (++polls < 100)
			sched_yield();
		else
			usleep(100);
	}
}

/*
 * Run the victim on another CPU than ours, when we may use two. Both
 * queue points wake the victim with a futex, and the scheduler then likes
 * to put the woken on the waker's CPU: sharing ours, the victim runs only
 * when we yield, whole time slices, at the end of which it has long
 * finished its work and sleeps, and no stop finds it inside. On its own
 * CPU it runs while we watch it, and load preempts it at any instruction.
 */
static bool pinned_apart;

static void pin_apart(pid_t victim)
{
	static int cpus[2], n = -1;
	cpu_set_t one;

	if (n < 0) {
		cpu_set_t allowed;

		n = 0;
		if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
			return;
		for (int k = 0; k < CPU_SETSIZE && n < 2; k++)
			if (CPU_ISSET(k, &allowed))
				cpus[n++] = k;
		if (n < 2)
			return;
		CPU_ZERO(&one);
		CPU_SET(cpus[0], &one);
		CHECK_MSG(sched_setaffinity(0, sizeof(one), &one) == 0, "sched_setaffinity: %s",
		          strerror(errno));
		pinned_apart = true;
	}
	if (!pinned_apart)
		return;
	CPU_ZERO(&one);
	CPU_SET(cpus[1], &one);
	CHECK_MSG(sched_setaffinity(victim, sizeof(one), &one) == 0, "sched_setaffinity(%d): %s",
	          (int)victim, strerror(errno));
}

/* A place to kill a victim at, and how to keep it going there. */
struct point {
	const char *name;
	/* Is the stopped victim at the point? */
	bool (*inside)(void *arg, pid_t pid);
	/* While the victim is stopped elsewhere: give it work (may be NULL). */
	void (*stopped)(void *arg);
	/*
	 * A count of the victim's operations (may be NULL). With one, the
	 * victim goes on for 1 to run operations between two stops: an
	 * instant chosen in its own progress rather than in time. On a loaded
	 * machine the victim may not run for milliseconds, and a stop at a
	 * random time would mostly find it waiting for a CPU where it last
	 * blocked. Without one, for up to run microseconds.
	 */
	uint32_t (*progress)(void *arg);
	uint32_t run;
	/* Has the victim run out of the work stopped() gave it? */
	bool (*idle)(void *arg);
};

/*
 * Kill the victim at the point: stop it, look, and either kill it there
 * or give it work, let it go on a random while and stop it again. Fails
 * the test when STRIKE_SECONDS of stops never find it there. Returns the
 * number of stops it took.
 */
static unsigned kill_inside(pid_t pid, const struct point *p, void *arg)
{
	uint64_t end = now_us() + STRIKE_SECONDS * 1000000ULL;

	for (unsigned stops = 1;; stops++) {
		stop_and_wait(pid);
		if (p->inside(arg, pid)) {
			kill_and_reap(pid);
			return stops;
		}
		CHECK_MSG(now_us() < end, "helper %d was not %s at any of %u stops in %d s", (int)pid,
		          p->name, stops, STRIKE_SECONDS);
		if (p->stopped)
			p->stopped(arg);
		uint32_t want = 1 + rnd(p->run);
		CHECK(kill(pid, SIGCONT) == 0);
		if (!p->progress) {
			spin_us(want);
			continue;
		}
		/*
		 * Counted from here, not from the stop: waking a process on an
		 * idle CPU can keep kill() busy for hundreds of microseconds
		 * (a virtual machine's IPI), while the victim already runs.
		 */
		uint32_t from = p->progress(arg);
		for (uint64_t give_up = now_us() + 10 * 1000000; p->progress(arg) - from < want; ) {
			if (p->idle(arg))
				break;   /* done before we looked: stop it anyway, and give it more */
			CHECK_MSG(now_us() < give_up, "helper %d was not %s and made no progress for 10 s",
			          (int)pid, p->name);
			/*
			 * On a CPU of our own, spin: a yield may hand the CPU to
			 * another program for milliseconds, and meanwhile the victim
			 * finishes all its work. Sharing the victim's, let it run.
			 */
			if (pinned_apart)
				cohort__cpu_relax();
			else
				sched_yield();
		}
	}
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

/* The lock word names the victim: the kernel marks the mutex owner-died when it dies. */
static bool holds_mutex(void *arg, pid_t pid)
{
	struct mtx_kill *s = arg;

	return cohort__mutex_holder(&s->m) == pid;
}

static const struct point mutex_point = { "holding the mutex", holds_mutex, NULL, NULL, 200, NULL };

TEST_TIMEOUT(shm_kill_mutex_holder, 300)
{
	struct mtx_kill *s = shared(sizeof(*s));
	unsigned kills = kills_per_point(), torn = 0, unnamed = 0, stops = 0;

	seed();
	CHECK_OK(cohort_mutex_init(&s->m));
	for (unsigned i = 0; i < kills; i++) {
		atomic_store(&s->ready, 0);
		pid_t pid = helper_spawn(mutex_holder, s);
		await_flag(&s->ready, 1);
		stops += kill_inside(pid, &mutex_point, s);

		/* It died holding the lock: the next locker must be told, whatever the instant. */
		int r = cohort_mutex_lock(&s->m, 5000);
		CHECK_MSG(r == COHORT_EOWNERDEAD, "kill %u: the holder died, yet lock gave %d (%s)", i,
		          r, cohort_strerror(r));
		pid_t named = cohort_mutex_last_dead(&s->m);

		/* 0 when it cannot be told for sure (documented); never another pid. */
		CHECK_MSG(named == pid || named == 0, "kill %u: last_dead %d, victim %d", i, (int)named,
		          (int)pid);
		unnamed += named == 0;
		CHECK_MSG(s->a == s->b || s->a == s->b + 1, "kill %u: a=%llu b=%llu", i,
		          (unsigned long long)s->a, (unsigned long long)s->b);
		if (s->a != s->b)
			torn++;
		s->b = s->a;   /* repair */
		CHECK_OK(cohort_mutex_consistent(&s->m));
		CHECK_OK(cohort_mutex_unlock(&s->m));
		/* Repaired: the next locker is not told again. */
		CHECK_OK(cohort_mutex_lock(&s->m, 5000));
		CHECK_EQ_U64(s->a, s->b);
		CHECK_OK(cohort_mutex_unlock(&s->m));
	}
	figures("mutex: %u kills while holding the lock (%u stops to find them there; %u with the "
	        "data half-updated, %u with the dead holder's pid unknown, none misnamed), all "
	        "repaired\n", kills, stops, torn, unnamed);
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

/*
 * Large, so that the victim has work for longer than it takes to wake it
 * (see kill_inside) and to look at it.
 */
#define QCAP (4 << 20)
/* At most so many sends between two stops: they fit an empty queue (largest records). */
#define ENQ_RUN 64
_Static_assert(ENQ_RUN * (8 + sizeof(struct msg)) < QCAP, "ENQ_RUN messages overfill the queue");

static void producer(void *arg)
{
	struct enq_kill *s = arg;
	cohort_queue_t *q;
	static struct msg pre[256];

	if (cohort_queue_open(s->q, cohort_queue_footprint(QCAP), &q) != 0)
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
		int r = cohort_queue_send(q, m, m->len, 10000);
		if (r != 0) {
			fprintf(stderr, "producer %d: send gave %d (%s) at seq %u\n", (int)getpid(), r,
			        cohort_strerror(r), seq);
			_exit(10);
		}
		atomic_store(&s->committed, seq + 1);
	}
}

/* The test's side of one generation: the consumer, checking order as it goes. */
struct enq_ctx {
	struct enq_kill *s;
	cohort_queue_t *q;
	uint32_t gen;
	uint32_t next;   /* the seq the next message must have */
};

/* Take up to max messages, each intact, of this generation and in order. */
static void enq_consume(struct enq_ctx *c, unsigned max)
{
	struct msg m;

	for (unsigned k = 0; k < max; k++) {
		int n = cohort_queue_recv(c->q, &m, sizeof(m), 0);

		if (n == COHORT_ETIMEDOUT)
			return;
		CHECK_MSG(n > 0 && msg_ok(&m, n) && m.gen == c->gen && m.seq == c->next,
		          "gen %u: got %d bytes, seq %u gen %u, want seq %u", c->gen, n, m.seq, m.gen,
		          c->next);
		c->next++;
	}
}

/* The victim holds a producer's claim: it is inside enqueue. */
static bool in_enqueue(void *arg, pid_t pid)
{
	struct enq_ctx *c = arg;

	return cohort__queue_holder(c->q, true) == pid;
}

/*
 * While the producer is stopped: empty the queue (every message checked),
 * so that it has room for more than the ENQ_RUN sends it may make before
 * the next stop.
 */
static void enq_stopped(void *arg)
{
	enq_consume(arg, UINT32_MAX);
}

static uint32_t enq_progress(void *arg)
{
	struct enq_ctx *c = arg;

	return atomic_load(&c->s->committed);
}

/* The queue is full: the producer is waiting for room. */
static bool enq_idle(void *arg)
{
	struct enq_ctx *c = arg;
	struct cohort_queue_stats st;

	CHECK_OK(cohort_queue_stats(c->q, &st));
	/* Less room than the largest message takes: 112 bytes of it in each 128-byte slot. */
	return st.capacity - st.used < 128 * ((sizeof(struct msg) + 111) / 112);
}

static const struct point enq_point = { "inside enqueue", in_enqueue, enq_stopped, enq_progress,
                                        ENQ_RUN, enq_idle };

TEST_TIMEOUT(shm_kill_queue_producer, 300)
{
	size_t qsize = cohort_queue_footprint(QCAP);
	struct enq_kill *s = shared(sizeof(*s) + qsize);
	unsigned kills = kills_per_point(), lost = 0, stops = 0;
	uint64_t delivered = 0;
	cohort_queue_t *q;
	struct msg m;

	seed();
	CHECK_OK(cohort_queue_init(s->q, qsize, &q));
	for (uint32_t gen = 1; gen <= kills; gen++) {
		struct cohort_queue_stats before, after;
		struct enq_ctx c = { s, q, gen, 0 };
		int n;

		CHECK_OK(cohort_queue_stats(q, &before));
		s->gen = gen;
		atomic_store(&s->committed, 0);
		atomic_store(&s->ready, 0);
		pid_t pid = helper_spawn(producer, s);
		pin_apart(pid);
		await_flag(&s->ready, 1);
		await_flag(&s->committed, 1);
		stops += kill_inside(pid, &enq_point, &c);
		uint32_t committed = atomic_load(&s->committed);

		/* Drain, then send a marker: that takes the producers' lock, recovering it. */
		enq_consume(&c, UINT32_MAX);
		CHECK_EQ(cohort_queue_recv(q, &m, sizeof(m), 0), COHORT_ETIMEDOUT);
		msg_fill(&m, 0, 0);
		CHECK_OK(cohort_queue_send(q, &m, m.len, 5000));
		n = cohort_queue_recv(q, &m, sizeof(m), 5000);
		CHECK_MSG(n > 0 && msg_ok(&m, n) && m.gen == 0, "gen %u: marker not next (%d)", gen, n);
		CHECK_EQ(cohort_queue_recv(q, &m, sizeof(m), 0), COHORT_ETIMEDOUT);
		CHECK_OK(cohort_queue_stats(q, &after));

		/* It died holding the producers' lock: recovered once, and named. */
		CHECK_MSG(after.recovered == before.recovered + 1,
		          "gen %u: killed inside enqueue, yet %llu recoveries", gen,
		          (unsigned long long)(after.recovered - before.recovered));
		CHECK_MSG(after.last_dead == pid, "gen %u: last_dead %d, victim %d", gen,
		          (int)after.last_dead, (int)pid);
		uint64_t dl = after.lost_send - before.lost_send;
		CHECK_MSG(dl <= 1, "gen %u: %llu messages reported lost", gen, (unsigned long long)dl);
		if (dl == 1)
			CHECK_MSG(c.next == committed, "gen %u: lost reported, yet got %u of %u committed",
			          gen, c.next, committed);
		else
			CHECK_MSG(c.next == committed || c.next == committed + 1,
			          "gen %u: got %u messages, %u committed", gen, c.next, committed);
		lost += (unsigned)dl;
		delivered += c.next;
	}
	figures("enqueue: %u kills holding a producer's claim, all recovered (%u stops to find them "
	        "there), %u in-flight messages reported lost, %llu delivered exactly once in order\n",
	        kills, stops, lost, (unsigned long long)delivered);
}

/* ---- point 3: inside dequeue ---- */

#define MAX_MSGS (1u << 26)
#define DEQ_QCAP (4 << 20)   /* large: see QCAP */
/* At most so many messages taken between two stops: fewer than a full queue holds. */
#define DEQ_RUN 64
_Static_assert(DEQ_RUN * (8 + sizeof(struct msg)) < DEQ_QCAP, "DEQ_RUN messages are more than a full queue holds");

struct deq_kill {
	_Atomic uint32_t ready;
	_Atomic uint32_t taken;       /* messages the victims took */
	_Atomic uint8_t *got;         /* per global seq: times received */
	_Alignas(64) unsigned char q[];
};

static void consumer(void *arg)
{
	struct deq_kill *s = arg;
	cohort_queue_t *q;
	struct msg m;

	if (cohort_queue_open(s->q, cohort_queue_footprint(DEQ_QCAP), &q) != 0)
		_exit(9);
	for (;;) {
		int n = cohort_queue_recv(q, &m, sizeof(m), 10000);

		if (!atomic_load_explicit(&s->ready, memory_order_relaxed))
			atomic_store(&s->ready, 1);   /* running: the kill may come */
		/* The header only: the victim should spend its time inside dequeue. */
		if (n < 16 || (uint32_t)n != m.len || m.seq >= MAX_MSGS) {
			fprintf(stderr, "consumer %d: recv gave %d (%s), length %u, seq %u\n", (int)getpid(),
			        n, n < 0 ? cohort_strerror(n) : "a bad message", m.len, m.seq);
			_exit(10);
		}
		atomic_fetch_add(&s->got[m.seq], 1);
		atomic_fetch_add(&s->taken, 1);
	}
}

/*
 * Send and take one 1-byte message per slot of the ring (128 bytes), so
 * that the producers' position passes every slot once.
 */
static void queue_lap(cohort_queue_t *q)
{
	struct cohort_queue_stats st;
	char b = 'x', out[16];

	CHECK_OK(cohort_queue_stats(q, &st));
	for (uint64_t i = 0; i < st.capacity / 128; i++) {
		CHECK_OK(cohort_queue_send(q, &b, 1, 5000));
		CHECK_EQ(cohort_queue_recv(q, out, sizeof(out), 5000), 1);
	}
}

/* The test's side: the producer. */
struct deq_ctx {
	struct deq_kill *s;
	cohort_queue_t *q;
	uint32_t seq;    /* the next message's seq */
};

/* Send until the queue is full (at most a ring's worth of messages). */
static void deq_fill(struct deq_ctx *c)
{
	struct msg m;

	for (unsigned k = 0; k < DEQ_QCAP / 16 && c->seq < MAX_MSGS - 1; k++) {
		msg_fill(&m, 1, c->seq);
		int r = cohort_queue_send(c->q, &m, m.len, 0);

		if (r == COHORT_ETIMEDOUT)
			return;
		CHECK_OK(r);
		c->seq++;
	}
}

/* The victim holds a consumer's claim: it is inside dequeue. */
static bool in_dequeue(void *arg, pid_t pid)
{
	struct deq_ctx *c = arg;

	return cohort__queue_holder(c->q, false) == pid;
}

/* While the consumer is stopped: fill the queue, for more than the DEQ_RUN messages it may take. */
static void deq_stopped(void *arg)
{
	deq_fill(arg);
}

static uint32_t deq_progress(void *arg)
{
	struct deq_ctx *c = arg;

	return atomic_load(&c->s->taken);
}

/* The queue is empty: the consumer is waiting for a message. */
static bool deq_idle(void *arg)
{
	struct deq_ctx *c = arg;
	struct cohort_queue_stats st;

	CHECK_OK(cohort_queue_stats(c->q, &st));
	return st.used == 0;
}

static const struct point deq_point = { "inside dequeue", in_dequeue, deq_stopped, deq_progress,
                                        DEQ_RUN, deq_idle };

TEST_TIMEOUT(shm_kill_queue_consumer, 300)
{
	size_t qsize = cohort_queue_footprint(DEQ_QCAP);
	struct deq_kill *s = shared(sizeof(*s) + qsize);
	unsigned kills = kills_per_point(), lost = 0, unrecorded = 0, stops = 0;
	struct deq_ctx c = { s, NULL, 0 };
	struct msg m;

	seed();
	s->got = shared(MAX_MSGS);
	CHECK_OK(cohort_queue_init(s->q, qsize, &c.q));
	for (unsigned i = 0; i < kills; i++) {
		struct cohort_queue_stats before, after;
		uint32_t first = c.seq;
		int n;

		/* Far more than any run sends: the messages' counters are never reused. */
		CHECK_MSG(c.seq < MAX_MSGS - DEQ_QCAP, "kill %u: %u messages sent, out of counters",
		          i, c.seq);
		CHECK_OK(cohort_queue_stats(c.q, &before));
		/* A full queue first, so that the victim has work the moment it starts. */
		deq_fill(&c);
		atomic_store(&s->ready, 0);
		pid_t pid = helper_spawn(consumer, s);
		pin_apart(pid);
		await_flag(&s->ready, 1);
		stops += kill_inside(pid, &deq_point, &c);

		/*
		 * Take over as the consumer: recovers the lock, drains the rest.
		 * Then one more message through, so that the lock is taken even
		 * when the victim had emptied the queue.
		 */
		while ((n = cohort_queue_recv(c.q, &m, sizeof(m), 0)) > 0) {
			CHECK(msg_ok(&m, n) && m.seq >= first && m.seq < c.seq);
			atomic_fetch_add(&s->got[m.seq], 1);
		}
		CHECK_EQ(n, COHORT_ETIMEDOUT);
		msg_fill(&m, 1, c.seq);
		CHECK_OK(cohort_queue_send(c.q, &m, m.len, 5000));
		c.seq++;
		n = cohort_queue_recv(c.q, &m, sizeof(m), 5000);
		CHECK_MSG(n > 0 && msg_ok(&m, n) && m.seq == c.seq - 1, "kill %u: marker not next (%d)",
		          i, n);
		atomic_fetch_add(&s->got[m.seq], 1);
		CHECK_EQ(cohort_queue_recv(c.q, &m, sizeof(m), 0), COHORT_ETIMEDOUT);
		/*
		 * A victim that had moved the head past the message it was
		 * copying left its claim behind the head: the producer that
		 * reaches that slot recovers it. One small message per slot
		 * takes the producers round the whole ring.
		 */
		queue_lap(c.q);
		CHECK_OK(cohort_queue_stats(c.q, &after));

		/* It died holding a consumer's claim: recovered once, and named. */
		CHECK_MSG(after.recovered == before.recovered + 1,
		          "kill %u: killed inside dequeue, yet %llu recoveries", i,
		          (unsigned long long)(after.recovered - before.recovered));
		CHECK_MSG(after.last_dead == pid, "kill %u: last_dead %d, victim %d", i,
		          (int)after.last_dead, (int)pid);
		unsigned missing = 0;
		for (uint32_t k = first; k < c.seq; k++) {
			CHECK_MSG(s->got[k] <= 1, "kill %u: message %u received %u times", i, k,
			          (unsigned)s->got[k]);
			missing += s->got[k] == 0;
		}
		uint64_t dl = after.lost_recv - before.lost_recv;
		CHECK_MSG(missing <= 1, "kill %u: %u messages missing", i, missing);
		CHECK_MSG(dl <= missing, "kill %u: %llu reported lost, %u missing", i,
		          (unsigned long long)dl, missing);
		if (missing && !dl)
			unrecorded++;   /* taken and counted, killed before it returned or noted it */
		lost += (unsigned)dl;
	}
	figures("dequeue: %u kills holding a consumer's claim, all recovered (%u stops to find them "
	        "there), %u in-flight messages reported lost, %u taken but not yet noted by the "
	        "victim, %u sent, no duplicate\n", kills, stops, lost, unrecorded, c.seq);
}

/* ---- point 4: waiting at the barrier ---- */

#define BAR_N 3

struct bar_kill {
	cohort_barrier_t b;
	_Atomic uint32_t ready;
	_Atomic uint32_t rounds;
	_Atomic uint32_t waiting[BAR_N];   /* inside cohort_barrier_wait */
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

	if (cohort_barrier_join(&s->b) != 0)
		_exit(9);
	atomic_fetch_add(&s->ready, 1);
	for (;;) {
		atomic_store(&s->waiting[a->idx], 1);
		int r = cohort_barrier_wait(&s->b, 10000);
		atomic_store(&s->waiting[a->idx], 0);

		if (r == 1)
			atomic_fetch_add(&s->rounds, 1);
		if (r < 0) {
			atomic_store(&s->result[a->idx], r);
			atomic_store(&s->saw_dead[a->idx], cohort_barrier_dead(&s->b));
			_exit(r == COHORT_EPEERDEAD ? 0 : 10);
		}
	}
}

struct bar_ctx {
	struct bar_kill *s;
	int victim;
};

/* The victim is inside cohort_barrier_wait, arrived or about to. */
static bool at_barrier(void *arg, pid_t pid)
{
	struct bar_ctx *c = arg;

	(void)pid;
	return atomic_load(&c->s->waiting[c->victim]) == 1;
}

static const struct point bar_point = { "waiting at the barrier", at_barrier, NULL, NULL, 2000,
                                        NULL };

TEST_TIMEOUT(shm_kill_barrier_waiter, 300)
{
	struct bar_kill *s = shared(sizeof(*s));
	struct bar_arg args[BAR_N];
	unsigned kills = kills_per_point(), stops = 0;
	uint64_t rounds = 0;

	seed();
	for (unsigned i = 0; i < kills; i++) {
		pid_t pids[BAR_N];

		CHECK_OK(cohort_barrier_init(&s->b, BAR_N));
		atomic_store(&s->ready, 0);
		atomic_store(&s->rounds, 0);
		for (int k = 0; k < BAR_N; k++) {
			atomic_store(&s->waiting[k], 0);
			atomic_store(&s->saw_dead[k], -1);
			atomic_store(&s->result[k], 0);
			args[k] = (struct bar_arg){ s, k };
			pids[k] = helper_spawn(barrier_member, &args[k]);
		}
		await_flag(&s->ready, BAR_N);
		struct bar_ctx c = { s, (int)rnd(BAR_N) };
		stops += kill_inside(pids[c.victim], &bar_point, &c);
		for (int k = 0; k < BAR_N; k++) {
			if (k == c.victim)
				continue;
			int st = helper_wait(pids[k], 10000);
			CHECK_MSG(st != -1, "kill %u: survivor %d still waiting after 10 s", i, k);
			CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			          "kill %u: survivor %d ended with status %d, wait gave %d", i, k, st,
			          (int)atomic_load(&s->result[k]));
			CHECK_MSG(atomic_load(&s->saw_dead[k]) == pids[c.victim],
			          "kill %u: survivor %d was told pid %d died, not %d", i, k,
			          (int)atomic_load(&s->saw_dead[k]), (int)pids[c.victim]);
		}
		rounds += atomic_load(&s->rounds);
	}
	figures("barrier: %u kills inside the wait (%u stops to find them there), every survivor "
	        "told the victim's pid; %llu rounds completed before the kills\n", kills, stops,
	        (unsigned long long)rounds);
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

	if (cohort_arena_open(s->mem, sizeof(s->mem), &a) != 0)
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

/* The arena's lock word names the victim: it is inside alloc or free. */
static bool in_arena(void *arg, pid_t pid)
{
	return cohort__arena_holder(arg) == pid;
}

static const struct point arena_point = { "inside the arena", in_arena, NULL, NULL, 200, NULL };

TEST_TIMEOUT(shm_kill_arena_user, 300)
{
	struct arena_kill *s = shared(sizeof(*s));
	unsigned kills = kills_per_point(), refused = 0, stops = 0;
	cohort_arena_t *a;
	cohort_off_t mine;

	seed();
	CHECK_OK(cohort_arena_init(s->mem, sizeof(s->mem), &a));
	CHECK_OK(cohort_arena_alloc(a, 1000, &mine));
	memset(cohort_arena_ptr(a, mine), 0x5a, 1000);
	for (unsigned i = 0; i < kills; i++) {
		struct cohort_arena_stats st;
		cohort_off_t probe;
		unsigned bad = 0;

		atomic_store(&s->ready, 0);
		pid_t pid = helper_spawn(arena_churn, s);
		await_flag(&s->ready, 1);
		stops += kill_inside(pid, &arena_point, a);

		/* The chain is whole, the counts add up, and it still allocates. */
		CHECK_OK(cohort_arena_stats(a, &st));
		/* It died holding the arena's lock: the stats call recovered it, once per kill. */
		CHECK_MSG(st.recovered == i + 1, "kill %u: killed inside the arena, %llu recoveries",
		          i, (unsigned long long)st.recovered);
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
	}
	struct cohort_arena_stats end;
	CHECK_OK(cohort_arena_stats(a, &end));
	figures("arena: %u kills inside the arena's lock, all recovered (%u stops to find them "
	        "there), the block chain whole after every one; %llu blocks leaked by victims "
	        "killed before they kept the handle, %u double frees refused\n", kills, stops,
	        (unsigned long long)end.allocations - 1, refused);
	CHECK_EQ_U64(end.recovered, kills);
	/* At most one block leaked per kill, never more. */
	CHECK(end.allocations - 1 <= kills);
	unsigned char *p = cohort_arena_ptr(a, mine);
	for (int k = 0; k < 1000; k++)
		CHECK_EQ(p[k], 0x5a);
}

/*
 * ---- inside the queue's protocol: a producer after its claim, before
 * writing; after writing, before publishing; a consumer recovering a
 * dead taker's slot ----
 *
 * These instants are a few instructions wide, too narrow for a stop at a
 * random moment to find. The victim is instead ended at the instant
 * itself: the queue's kill-point hook (internal.h), set in the victim
 * only, sends it SIGKILL at the n-th pass through the point, n random.
 * A SIGKILL is taken before the next instruction of a running process,
 * so the victim dies there as it would of a kill from outside.
 */

#define HK_QCAP (256 << 10)
#define HK_RUN 64   /* at most so many operations before the kill */
_Static_assert(HK_RUN * 128 * ((sizeof(struct msg) + 111) / 112) < HK_QCAP,
               "HK_RUN messages overfill the queue");

static int hook_point;
static uint32_t hook_countdown;

static void kill_at_point(int point)
{
	if (point == hook_point && --hook_countdown == 0)
		raise(SIGKILL);
}

static void arm_kill_point(int point, uint32_t countdown)
{
	hook_point = point;
	hook_countdown = countdown;
	cohort__queue_hook = kill_at_point;
}

struct hk_kill {
	_Atomic uint32_t committed;   /* sends that returned 0, or messages the victim took */
	uint32_t gen;
	int point;
	uint32_t countdown;
	_Atomic uint8_t got[4096];    /* recovery: times each seq was received */
	_Alignas(64) unsigned char q[];
};

static void hooked_producer(void *arg)
{
	struct hk_kill *s = arg;
	cohort_queue_t *q;
	struct msg m;

	if (cohort_queue_open(s->q, cohort_queue_footprint(HK_QCAP), &q) != 0)
		_exit(9);
	arm_kill_point(s->point, s->countdown);
	for (uint32_t seq = 0;; seq++) {
		msg_fill(&m, s->gen, seq);
		int r = cohort_queue_send(q, &m, m.len, 10000);
		if (r != 0) {
			fprintf(stderr, "producer %d: send gave %d (%s)\n", (int)getpid(), r,
			        cohort_strerror(r));
			_exit(10);
		}
		atomic_store(&s->committed, seq + 1);
	}
}

/* The victim died of the kill point, not of anything else. */
static void reap_killed(pid_t pid, const char *what)
{
	int st = helper_wait(pid, 10000);

	CHECK_MSG(st != -1, "%s %d did not reach its kill point within 10 s", what, (int)pid);
	CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "%s %d ended with status %d", what,
	          (int)pid, st);
}

/*
 * A producer killed at point: its message is lost for sure (never
 * published), reported once, and every message it sent before is
 * delivered once, whole and in order; a marker sent afterwards comes next.
 */
static void producer_kill_point(int point, const char *name)
{
	size_t qsize = cohort_queue_footprint(HK_QCAP);
	struct hk_kill *s = shared(sizeof(*s) + qsize);
	unsigned kills = kills_per_point();
	uint64_t delivered = 0;
	cohort_queue_t *q;
	struct msg m;
	uint64_t t0 = now_us();

	seed();
	CHECK_OK(cohort_queue_init(s->q, qsize, &q));
	s->point = point;
	for (uint32_t gen = 1; gen <= kills; gen++) {
		struct cohort_queue_stats before, after;
		struct enq_ctx c = { NULL, q, gen, 0 };
		int n;

		CHECK_OK(cohort_queue_stats(q, &before));
		s->gen = gen;
		s->countdown = 1 + rnd(HK_RUN);
		atomic_store(&s->committed, 0);
		pid_t pid = helper_spawn(hooked_producer, s);
		reap_killed(pid, "producer");
		uint32_t committed = atomic_load(&s->committed);

		CHECK_MSG(committed == s->countdown - 1, "gen %u: killed in send %u, %u committed", gen,
		          s->countdown, committed);
		enq_consume(&c, UINT32_MAX);
		CHECK_EQ(c.next, committed);
		msg_fill(&m, 0, 0);
		CHECK_OK(cohort_queue_send(q, &m, m.len, 5000));
		n = cohort_queue_recv(q, &m, sizeof(m), 5000);
		CHECK_MSG(n > 0 && msg_ok(&m, n) && m.gen == 0, "gen %u: marker not next (%d)", gen, n);
		CHECK_EQ(cohort_queue_recv(q, &m, sizeof(m), 0), COHORT_ETIMEDOUT);
		CHECK_OK(cohort_queue_stats(q, &after));
		CHECK_MSG(after.lost_send == before.lost_send + 1, "gen %u: %llu reported lost", gen,
		          (unsigned long long)(after.lost_send - before.lost_send));
		CHECK_MSG(after.recovered == before.recovered + 1, "gen %u: %llu recoveries", gen,
		          (unsigned long long)(after.recovered - before.recovered));
		CHECK_MSG(after.last_dead == pid, "gen %u: last_dead %d, victim %d", gen,
		          (int)after.last_dead, (int)pid);
		CHECK_EQ_U64(after.lost_recv, before.lost_recv);
		delivered += c.next;
	}
	figures("%s: %u kills, each message reported lost once, %llu delivered exactly once in order, "
	        "0 hangs (%.1f s)\n", name, kills, (unsigned long long)delivered,
	        (double)(now_us() - t0) / 1e6);
}

TEST_TIMEOUT(shm_kill_queue_after_claim_before_write, 300)
{
	producer_kill_point(COHORT__QK_CLAIMED, "after claim, before write");
}

TEST_TIMEOUT(shm_kill_queue_after_write_before_publish, 300)
{
	producer_kill_point(COHORT__QK_WRITTEN, "after write, before publish");
}

/* A consumer that notes each message it takes, and dies at its kill point. */
static void hooked_consumer(void *arg)
{
	struct hk_kill *s = arg;
	cohort_queue_t *q;
	struct msg m;

	if (cohort_queue_open(s->q, cohort_queue_footprint(HK_QCAP), &q) != 0)
		_exit(9);
	arm_kill_point(s->point, s->countdown);
	for (;;) {
		int n = cohort_queue_recv(q, &m, sizeof(m), 10000);

		if (n < 16 || !msg_ok(&m, n) || m.seq >= sizeof(s->got)) {
			fprintf(stderr, "consumer %d: recv gave %d (%s)\n", (int)getpid(), n,
			        n < 0 ? cohort_strerror(n) : "a bad message");
			_exit(10);
		}
		atomic_fetch_add(&s->got[m.seq], 1);
		atomic_fetch_add(&s->committed, 1);
	}
}

/*
 * A consumer killed holding a message (its claim taken, the head not yet
 * moved), then a second consumer killed while it recovers that slot, then
 * this process takes the recovery over: nothing hangs, the first victim's
 * message is the only one missing and is reported lost once, nothing is
 * duplicated, and both deaths are recovered.
 */
TEST_TIMEOUT(shm_kill_queue_during_recovery, 300)
{
	size_t qsize = cohort_queue_footprint(HK_QCAP);
	struct hk_kill *s = shared(sizeof(*s) + qsize);
	unsigned kills = kills_per_point();
	uint64_t delivered = 0, t0 = now_us();
	cohort_queue_t *q;
	struct msg m;

	seed();
	CHECK_OK(cohort_queue_init(s->q, qsize, &q));
	for (unsigned i = 0; i < kills; i++) {
		struct cohort_queue_stats before, after;
		uint32_t count = 1 + rnd(HK_RUN), taker_took;
		int n;

		CHECK_OK(cohort_queue_stats(q, &before));
		for (size_t k = 0; k < sizeof(s->got); k++)
			atomic_store_explicit(&s->got[k], 0, memory_order_relaxed);
		for (uint32_t k = 0; k < HK_RUN + 1; k++) {
			msg_fill(&m, 1, k);
			CHECK_OK(cohort_queue_send(q, &m, m.len, 0));
		}
		/* 1. The taker dies holding its count-th message. */
		atomic_store(&s->committed, 0);
		s->point = COHORT__QK_TAKEN;
		s->countdown = count;
		reap_killed(helper_spawn(hooked_consumer, s), "taker");
		taker_took = atomic_load(&s->committed);
		CHECK_MSG(taker_took == count - 1, "kill %u: taker died in recv %u, noted %u", i, count,
		          taker_took);
		/* 2. The recoverer meets its claim first, and dies recovering it. */
		s->point = COHORT__QK_RECOVERING;
		s->countdown = 1;
		pid_t recoverer = helper_spawn(hooked_consumer, s);
		reap_killed(recoverer, "recoverer");
		CHECK_EQ(atomic_load(&s->committed), taker_took);
		/* 3. We take the recovery over and drain. */
		while ((n = cohort_queue_recv(q, &m, sizeof(m), 0)) > 0) {
			CHECK(msg_ok(&m, n) && m.seq <= HK_RUN);
			atomic_fetch_add(&s->got[m.seq], 1);
			delivered++;
		}
		CHECK_EQ(n, COHORT_ETIMEDOUT);
		CHECK_OK(cohort_queue_stats(q, &after));
		for (uint32_t k = 0; k <= HK_RUN; k++)
			CHECK_MSG(s->got[k] == (k == count - 1 ? 0 : 1),
			          "kill %u: message %u received %u times (the taker held %u)", i, k,
			          (unsigned)s->got[k], count - 1);
		CHECK_MSG(after.lost_recv == before.lost_recv + 1, "kill %u: %llu reported lost", i,
		          (unsigned long long)(after.lost_recv - before.lost_recv));
		CHECK_MSG(after.recovered == before.recovered + 2, "kill %u: %llu recoveries", i,
		          (unsigned long long)(after.recovered - before.recovered));
		CHECK_MSG(after.last_dead == recoverer, "kill %u: last_dead %d, recoverer %d", i,
		          (int)after.last_dead, (int)recoverer);
		CHECK_EQ_U64(after.lost_send, before.lost_send);
		CHECK_EQ_U64(after.used, 0);
		delivered += taker_took;
	}
	figures("during recovery: %u recoverers killed while recovering a dead taker's slot, "
	        "each taken over, each taker's message reported lost once, %llu delivered exactly "
	        "once, 0 hangs (%.1f s)\n", kills, (unsigned long long)delivered,
	        (double)(now_us() - t0) / 1e6);
}
