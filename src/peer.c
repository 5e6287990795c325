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
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int cohort__proc_start(pid_t pid, uint64_t *ret_start, char *ret_state)
{
	char buf[1024];
	const char *p;
	uint64_t start;
	ssize_t n;

	if (pid <= 0)
		return -ESRCH;
	n = cohort__slurpf(buf, sizeof(buf), "/proc/%d/stat", (int)pid);
	if (n == -ENOENT)
		return -ESRCH;
	if (n < 0)
		return (int)n;
	/* The command name may hold spaces and parentheses: start after the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return COHORT_EPARSE;
	if (ret_state)
		*ret_state = p[2];
	p += 2;
	/* p is at field 3 (state); starttime is field 22. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return COHORT_EPARSE;
		p++;
	}
	if (cohort__parse_u64(p, &start, &p) < 0 || (*p != ' ' && *p != '\n' && *p != '\0'))
		return COHORT_EPARSE;
	*ret_start = start;
	return 0;
}

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

static bool dead_by_stat(pid_t pid, uint64_t start)
{
	uint64_t now_start;
	char state = '?';
	int r = cohort__proc_start(pid, &now_start, &state);

	if (r == -ESRCH)
		return true;
	if (r < 0)
		return false;   /* cannot tell: never declare a living process dead */
	if (state == 'Z' || state == 'X')
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
		return !dead_by_stat(pid, start);
	}
	/*
	 * The pidfd holds on to this pid's process: if its start time is ours,
	 * the pidfd is the process we mean, and it polls readable once it has
	 * exited, zombie or not.
	 */
	dead = dead_by_stat(pid, start);
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
