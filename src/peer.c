/*
 * peer.c - is that process still alive? And the futex calls every
 * shared-memory object waits with.
 *
 * A pid alone does not name a process: it is recycled. We pair it with the
 * process's start time (in clock ticks since boot, from /proc/<pid>/stat),
 * which a later process with the same pid cannot share. Where the kernel
 * has pidfd_open (5.3+) the pidfd pins the process while we compare start
 * times and tells an exited process (zombie included) from a living one.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/*
 * getpid() is a system call since glibc 2.25, and the hot paths (mutex
 * lock and unlock) need the pid every time: cache it, and forget it in the
 * child of every fork.
 */
_Atomic pid_t cohort__pid_cache;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void forget_pid(void)
{
	atomic_store_explicit(&cohort__pid_cache, 0, memory_order_relaxed);
}

static void register_forget(void)
{
	pthread_atfork(NULL, NULL, forget_pid);
}

pid_t cohort__pid_slow(void)
{
	pid_t p;

	pthread_once(&pid_once, register_forget);
	p = getpid();
	atomic_store_explicit(&cohort__pid_cache, p, memory_order_relaxed);
	return p;
}

uint64_t cohort__self_start(void)
{
	static _Atomic pid_t cached_pid;
	static _Atomic uint64_t cached_start;
	pid_t me = cohort__pid();
	uint64_t start = 0;

	if (atomic_load(&cached_pid) == me)
		return atomic_load(&cached_start);
	if (cohort__proc_start(me, &start, NULL) < 0)
		start = 0;
	atomic_store(&cached_start, start);
	atomic_store(&cached_pid, me);
	return start;
}

/*
 * Dead by /proc/<pid>/stat: gone, or another process (start differs). A
 * zombie state counts as dead only when zombie_dead: the leader of a
 * process whose main thread called pthread_exit() shows Z while its other
 * threads run, so with a pidfd (which polls readable only once the whole
 * process has exited) the state letter is not asked.
 */
static bool dead_by_stat(pid_t pid, uint64_t start, bool zombie_dead)
{
	uint64_t now_start;
	char state = '?';
	int r = cohort__proc_start(pid, &now_start, &state);

	if (r == -ESRCH)
		return true;
	if (r < 0)
		return false;   /* cannot tell: never declare a living process dead */
	if (state == 'X' || (zombie_dead && state == 'Z'))
		return true;
	return start != 0 && now_start != start;
}

bool cohort__pid_alive(pid_t pid, uint64_t start)
{
	int fd;
	bool dead;

	if (pid <= 0)
		return false;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0) {
		if (errno == ESRCH)
			return false;
		/* No pidfd (old kernel, seccomp): kill(0) and the start time. */
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return false;
		return !dead_by_stat(pid, start, true);
	}
	/*
	 * The pidfd holds on to this pid's process: if its start time is ours,
	 * the pidfd is the process we mean, and it polls readable once it has
	 * exited, zombie or not.
	 */
	dead = dead_by_stat(pid, start, false);
	if (!dead) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLIN | POLLHUP)))
			dead = true;
	}
	close(fd);
	return !dead;
}

uint64_t cohort__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t cohort__deadline(int timeout_ms)
{
	if (timeout_ms < 0)
		return 0;
	return cohort__now_ms() + (uint64_t)timeout_ms;
}

int cohort__ms_left(uint64_t deadline, int cap_ms)
{
	uint64_t now;
	int left;

	if (deadline == 0)
		return cap_ms;
	now = cohort__now_ms();
	if (now >= deadline)
		return 0;
	left = deadline - now > (uint64_t)INT32_MAX ? INT32_MAX : (int)(deadline - now);
	if (cap_ms >= 0 && left > cap_ms)
		left = cap_ms;
	return left;
}

int cohort__futex_wait(_Atomic uint32_t *addr, uint32_t val, int timeout_ms)
{
	struct timespec ts, *tsp = NULL;
	long r;

	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
		tsp = &ts;
	}
	r = syscall(SYS_futex, addr, FUTEX_WAIT, val, tsp, NULL, 0);
	if (r == 0)
		return 0;
	switch (errno) {
	case EAGAIN:
		return 0;
	case ETIMEDOUT:
		return COHORT_ETIMEDOUT;
	case EINTR:
		return -EINTR;
	default:
		return -errno;
	}
}

void cohort__futex_wake(_Atomic uint32_t *addr, int n)
{
	syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);
}

/*
 * ---- Leases: liveness the kernel vouches for ----
 *
 * A pid, even with its start time, is a weak name for a live process: a
 * process whose main thread called pthread_exit() shows a zombie leader
 * while its other threads go on; a process in another pid namespace has a
 * pid that means nothing (or another process) here; a pid reused within
 * the same clock tick has the same start time. So each process that
 * takes part in a shared object holds a lease: an OFD write lock
 * (F_OFD_SETLK) on one byte of the user's lease file in /dev/shm, at an
 * offset drawn at random (the token). The kernel releases an OFD lock
 * when the last descriptor of its open file description closes: at the
 * death of the process, never at a thread's exit. The lock is on the file,
 * so it is seen from every pid namespace that shares /dev/shm, and a
 * process that reuses a dead holder's pid does not hold its lock. A
 * holder's word records the token; "is it alive" is F_OFD_GETLK on that
 * byte: a lock held by another open file description means alive.
 *
 * Tokens are unique among live processes (a drawn token whose byte is
 * already locked is drawn again) and a new process draws the token of a
 * given dead one with probability 2^-39. A forked child shares its
 * parent's open file description, so it would hold the parent's lease as
 * long as it lives: the child closes its inherited descriptor (a fork
 * handler) and takes a lease of its own on first use.
 */
#define LEASE_JOB_BASE ((off_t)1 << 40)
#define LEASE_TRIES 32

static pthread_mutex_t lease_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t lease_once = PTHREAD_ONCE_INIT;
static int lease_fd = -1;
static bool lease_tried;
static _Atomic uint64_t lease_token;
static pid_t lease_job;         /* the local job whose read lock this process holds */
static pid_t lease_job_wanted;  /* the local job of this program (inherited by fork) */

static void lease_prepare(void)
{
	pthread_mutex_lock(&lease_lock);
}

static void lease_parent(void)
{
	pthread_mutex_unlock(&lease_lock);
}

static void lease_child(void)
{
	/*
	 * The inherited descriptor shares the parent's open file description
	 * and so its locks: closed here, it releases nothing of the parent's,
	 * and the parent's death is no longer hidden by this child.
	 */
	if (lease_fd >= 0)
		close(lease_fd);
	lease_fd = -1;
	lease_tried = false;
	lease_job = 0;
	atomic_store_explicit(&lease_token, 0, memory_order_relaxed);
	pthread_mutex_unlock(&lease_lock);
}

static void lease_register(void)
{
	pthread_atfork(lease_prepare, lease_parent, lease_child);
}

int cohort__lease_path(uid_t uid, char *buf, size_t size)
{
	return cohort__pathf(buf, size, "/dev/shm/.cohort-lease.%u", (unsigned)uid);
}

/* Open (creating it if need be) the caller's lease file; never another user's, never a link. */
static int lease_open(void)
{
	char path[64];
	struct stat st;
	int fd, r;

	r = cohort__lease_path(getuid(), path, sizeof(path));
	if (r < 0)
		return r;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid()) {
		close(fd);
		return -EPERM;
	}
	/* Keep it off the low descriptors a program may expect to be its own. */
	if (fd < 3) {
		int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);

		close(fd);
		if (hi < 0)
			return -errno;
		fd = hi;
	}
	return fd;
}

static int ofd_lock(int fd, short type, off_t at)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = at, .l_len = 1 };

	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* 1 when another open file description holds a lock on byte at of fd, 0 when none, or -errno. */
static int ofd_held(int fd, off_t at)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = at, .l_len = 1 };

	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

static uint64_t draw_token(unsigned attempt)
{
	uint64_t x = 0;

	if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid() << 20 ^ attempt;
		x ^= x >> 29;
		x *= 0xbf58476d1ce4e5b9ULL;
		x ^= x >> 32;
	}
	return x % (COHORT__LEASE_TOKEN_MAX - 1) + 1;
}

/* Take the local job's read lock (under lease_lock, with lease_fd open). */
static void lease_take_job(void)
{
	if (lease_job_wanted > 0 && lease_job != lease_job_wanted &&
	    ofd_lock(lease_fd, F_RDLCK, LEASE_JOB_BASE + lease_job_wanted) == 0)
		lease_job = lease_job_wanted;
}

static __attribute__((noinline)) uint64_t lease_slow(void)
{
	uint64_t token = 0;

	pthread_once(&lease_once, lease_register);
	pthread_mutex_lock(&lease_lock);
	token = atomic_load(&lease_token);
	if (token || lease_tried)
		goto out;
	lease_tried = true;
	lease_fd = lease_open();
	if (lease_fd < 0)
		goto out;
	for (unsigned i = 0; i < LEASE_TRIES; i++) {
		uint64_t t = draw_token(i);
		int r = ofd_lock(lease_fd, F_WRLCK, (off_t)t);

		if (r == 0) {
			token = t;
			break;
		}
		if (r != -EAGAIN && r != -EACCES)
			break;   /* no OFD locks here (old kernel, odd filesystem) */
	}
	if (!token) {
		close(lease_fd);
		lease_fd = -1;
		goto out;
	}
	lease_take_job();
	atomic_store(&lease_token, token);
out:
	pthread_mutex_unlock(&lease_lock);
	return token;
}

uint64_t cohort__lease(void)
{
	uint64_t t = atomic_load_explicit(&lease_token, memory_order_acquire);

	return __builtin_expect(t != 0, 1) ? t : lease_slow();
}

bool cohort__lease_alive(uint64_t token)
{
	uint64_t mine = cohort__lease();
	int r;

	if (token == 0 || token >= COHORT__LEASE_TOKEN_MAX)
		return false;   /* no process ever holds such a token: a word written by mistake */
	if (token == mine)
		return true;
	if (!mine)
		return true;   /* no lease file here: cannot tell */
	/* lease_fd stays open for the life of the process once the token is set. */
	r = ofd_held(lease_fd, (off_t)token);
	return r != 0;   /* held, or cannot tell */
}

void cohort__lease_job(pid_t job_pid)
{
	if (job_pid <= 0)
		return;
	pthread_once(&lease_once, lease_register);
	pthread_mutex_lock(&lease_lock);
	lease_job_wanted = job_pid;
	pthread_mutex_unlock(&lease_lock);
	/* The job's read lock is taken with the process's lease, or now if it has one. */
	if (cohort__lease()) {
		pthread_mutex_lock(&lease_lock);
		if (lease_fd >= 0)
			lease_take_job();
		pthread_mutex_unlock(&lease_lock);
	}
}

int cohort__lease_job_held(uid_t uid, pid_t job_pid)
{
	char path[64];
	struct stat st;
	int fd, r;

	if (job_pid <= 0)
		return -EINVAL;
	r = cohort__lease_path(uid, path, sizeof(path));
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != uid)
		r = -EPERM;
	else
		r = ofd_held(fd, LEASE_JOB_BASE + job_pid);
	close(fd);
	return r;
}

uint64_t cohort__self_id(void)
{
	uint64_t token = cohort__lease();
	uint64_t start;

	if (token)
		return COHORT__ID_LEASE | token;
	start = cohort__self_start();
	return start ? start & ~(COHORT__ID_LEASE | COHORT__ID_NOSTART) : COHORT__ID_NOSTART;
}

bool cohort__holder_alive(pid_t pid, uint64_t id)
{
	if (id & COHORT__ID_LEASE)
		return cohort__lease_alive(id & ~COHORT__ID_LEASE);
	if (id & COHORT__ID_NOSTART)
		return cohort__pid_alive(pid, 0);
	return cohort__pid_alive(pid, id);
}
