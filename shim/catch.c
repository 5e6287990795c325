/*
 * catch.c - libcohort-catch.so, preloaded by `cohort run --catch` into
 * workers that are not linked with libcohort: when a fatal signal
 * arrives, write what it was, where, and the backtrace to
 * $COHORT_CATCH_DIR/crash.<pid>, then let the signal kill the process as
 * it would have.
 *
 * Everything in the handler is async-signal-safe except backtrace(),
 * which is warmed up at load time (its first call loads libgcc_s) and
 * then only walks the stack.
 *
 * The file's format, and that of the exit records below, is
 * shim/crashfile.h's, which the watcher (src/watch.c) reads by: "key
 * value" lines (signal, code, addr; map and fault for SIGSEGV and SIGBUS),
 * then a line "frames" and the backtrace as backtrace_symbols_fd() prints
 * it, one frame a line, to the end of the file.
 *
 * It also wraps the wait calls (waitpid, wait4, waitid, wait, wait3): when
 * one returns a child that died of a signal or exited non-zero, it writes
 * $COHORT_CATCH_DIR/exit.<childpid> ("pid", "status" as a wait status,
 * "reaper": the caller's pid), one small file per death, made under a
 * temporary name and linked into place whole, so the watcher never reads
 * half of one. That is how deaths below a worker's root (a pool worker, a
 * DataLoader worker, an MPI rank under mpirun) are known with their
 * status, by the parent that saw it. Async-signal-safe (a SIGCHLD handler
 * may reap), errno kept; waitid with WNOWAIT is not a reap and writes
 * nothing (the later reap does).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crashfile.h"

#define EXPORT __attribute__((visibility("default")))

static char dir[512];
static char altstack[64 * 1024];
static const int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };

static void put(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len) {
		ssize_t n = write(fd, s, len);

		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

static void put_num(int fd, uintptr_t v, unsigned base)
{
	char buf[24];
	int i = (int)sizeof(buf) - 1;

	buf[i] = '\0';
	do {
		buf[--i] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v && i > 0);
	put(fd, buf + i);
}

static uintptr_t hex(const char **p)
{
	uintptr_t v = 0;

	for (;; (*p)++) {
		char c = **p;

		if (c >= '0' && c <= '9')
			v = v * 16 + (uintptr_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (uintptr_t)(c - 'a' + 10);
		else
			return v;
	}
}

/* Walk /proc/self/maps with read(2): the mapping holding addr, and the one below it. */
static void maps(int out, uintptr_t addr)
{
	char buf[4096], line[512], below[512] = "", hold[512] = "";
	size_t len = 0;
	ssize_t n;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	for (;;) {
		char *nl;

		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		while ((nl = memchr(buf, '\n', len)) != NULL) {
			size_t l = (size_t)(nl - buf);
			const char *p = buf;
			uintptr_t lo, hi;

			if (l >= sizeof(line))
				l = sizeof(line) - 1;
			memcpy(line, buf, l);
			line[l] = '\0';
			lo = hex(&p);
			p++;
			hi = hex(&p);
			if (addr >= lo && addr < hi)
				memcpy(hold, line, sizeof(line));
			else if (hi <= addr)
				memcpy(below, line, sizeof(line));
			memmove(buf, nl + 1, len - (size_t)(nl - buf) - 1);
			len -= (size_t)(nl - buf) + 1;
		}
		if (len == sizeof(buf) - 1)
			len = 0;   /* a line longer than the buffer: drop it */
	}
	close(fd);
	if (below[0]) {
		put(out, COHORT_CRASH_MAP " ");
		put(out, below);
		put(out, "\n");
	}
	if (hold[0]) {
		put(out, COHORT_CRASH_FAULT " ");
		put(out, hold);
		put(out, "\n");
	}
}

static void handler(int sig, siginfo_t *si, void *uc)
{
	char path[600];
	void *frames[64];
	int fd, n;
	size_t dlen = strlen(dir);

	(void)uc;
	memcpy(path, dir, dlen);
	memcpy(path + dlen, "/" COHORT_CRASHFILE_PREFIX, sizeof(COHORT_CRASHFILE_PREFIX));
	{
		char num[24];
		int i = (int)sizeof(num) - 1;
		uintptr_t v = (uintptr_t)getpid();

		num[i] = '\0';
		do {
			num[--i] = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		memcpy(path + dlen + sizeof(COHORT_CRASHFILE_PREFIX), num + i, sizeof(num) - (size_t)i);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		put(fd, COHORT_CRASH_SIGNAL " ");
		put_num(fd, (uintptr_t)sig, 10);
		put(fd, "\n" COHORT_CRASH_CODE " ");
		put_num(fd, (uintptr_t)(unsigned)si->si_code, 10);
		put(fd, "\n" COHORT_CRASH_ADDR " 0x");
		put_num(fd, (uintptr_t)si->si_addr, 16);
		put(fd, "\n");
		if (sig == SIGSEGV || sig == SIGBUS)
			maps(fd, (uintptr_t)si->si_addr);
		n = backtrace(frames, 64);
		put(fd, COHORT_CRASH_FRAMES "\n");
		backtrace_symbols_fd(frames, n, fd);
		close(fd);
	}
	/* Die of the same signal, as the program would have. */
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ---- deaths of children, as their parent's wait sees them ---- */

typedef pid_t (*waitpid_fn)(pid_t, int *, int);
typedef pid_t (*wait4_fn)(pid_t, int *, int, struct rusage *);
typedef int (*waitid_fn)(idtype_t, id_t, siginfo_t *, int);
typedef pid_t (*wait_fn)(int *);
typedef pid_t (*wait3_fn)(int *, int, struct rusage *);

static waitpid_fn real_waitpid;
static wait4_fn real_wait4;
static waitid_fn real_waitid;
static wait_fn real_wait;
static wait3_fn real_wait3;

static void resolve(void)
{
	/* Normally done by the constructor; a call from another library's constructor comes first. */
	if (!real_waitpid)
		real_waitpid = (waitpid_fn)dlsym(RTLD_NEXT, "waitpid");
	if (!real_wait4)
		real_wait4 = (wait4_fn)dlsym(RTLD_NEXT, "wait4");
	if (!real_waitid)
		real_waitid = (waitid_fn)dlsym(RTLD_NEXT, "waitid");
	if (!real_wait)
		real_wait = (wait_fn)dlsym(RTLD_NEXT, "wait");
	if (!real_wait3)
		real_wait3 = (wait3_fn)dlsym(RTLD_NEXT, "wait3");
}

/* Append the decimal v at p; returns the end. */
static char *put_dec(char *p, uintptr_t v)
{
	char num[24];
	int i = (int)sizeof(num);

	do {
		num[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i > 0);
	memcpy(p, num + i, sizeof(num) - (size_t)i);
	return p + sizeof(num) - (size_t)i;
}

static char *put_str(char *p, const char *s)
{
	size_t len = strlen(s);

	memcpy(p, s, len);
	return p + len;
}

/* A reaped child's status: told when it died of a signal or exited non-zero. */
static void record_exit(pid_t pid, int status)
{
	char tmp[600], path[640], text[96], *p;
	size_t dlen = strlen(dir);
	int saved = errno, fd;

	if (!dir[0] || pid <= 0 || (!WIFSIGNALED(status) && !WIFEXITED(status)) ||
	    (WIFEXITED(status) && WEXITSTATUS(status) == 0) || dlen + 80 > sizeof(tmp))
		return;
	p = put_str(text, COHORT_EXIT_PID " ");
	p = put_dec(p, (uintptr_t)pid);
	p = put_str(p, "\n" COHORT_EXIT_STATUS " ");
	p = put_dec(p, (uintptr_t)(unsigned)status);
	p = put_str(p, "\n" COHORT_EXIT_REAPER " ");
	p = put_dec(p, (uintptr_t)getpid());
	p = put_str(p, "\n");
	/* The temporary name is the reaper's and the child's: nobody else writes it. */
	memcpy(tmp, dir, dlen);
	*put_dec(put_str(put_dec(put_str(tmp + dlen, "/" COHORT_EXITFILE_TEMP), (uintptr_t)getpid()), "-"),
	         (uintptr_t)pid) = '\0';
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	if (write(fd, text, (size_t)(p - text)) != p - text) {
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	/* exit.<pid>, or exit.<pid>.<n> when a reused pid's record is still there. */
	memcpy(path, dir, dlen);
	p = put_dec(put_str(path + dlen, "/" COHORT_EXITFILE_PREFIX), (uintptr_t)pid);
	*p = '\0';
	for (unsigned n = 1; link(tmp, path) < 0 && errno == EEXIST && n < 100; n++)
		*put_dec(put_str(p, "."), n) = '\0';
	unlink(tmp);
out:
	errno = saved;
}

EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
	int st = 0;
	pid_t r;

	if (!real_waitpid)
		resolve();
	r = real_waitpid(pid, &st, options);
	if (r > 0) {
		record_exit(r, st);
		if (status)
			*status = st;
	}
	return r;
}

EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	int st = 0;
	pid_t r;

	if (!real_wait4)
		resolve();
	r = real_wait4(pid, &st, options, ru);
	if (r > 0) {
		record_exit(r, st);
		if (status)
			*status = st;
	}
	return r;
}

EXPORT pid_t wait3(int *status, int options, struct rusage *ru)
{
	int st = 0;
	pid_t r;

	if (!real_wait3)
		resolve();
	r = real_wait3(&st, options, ru);
	if (r > 0) {
		record_exit(r, st);
		if (status)
			*status = st;
	}
	return r;
}

EXPORT pid_t wait(int *status)
{
	int st = 0;
	pid_t r;

	if (!real_wait)
		resolve();
	r = real_wait(&st);
	if (r > 0) {
		record_exit(r, st);
		if (status)
			*status = st;
	}
	return r;
}

EXPORT int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options)
{
	siginfo_t own;
	siginfo_t *si = info ? info : &own;
	int r;

	if (!real_waitid)
		resolve();
	if (!info)
		memset(&own, 0, sizeof(own));
	r = real_waitid(idtype, id, si, options);
	/* WNOWAIT leaves the child waitable: the reap that follows is the one told. */
	if (r == 0 && si->si_pid > 0 && !(options & WNOWAIT)) {
		int st = -1;

		if (si->si_code == CLD_EXITED)
			st = (si->si_status & 0xff) << 8;
		else if (si->si_code == CLD_KILLED)
			st = si->si_status & 0x7f;
		else if (si->si_code == CLD_DUMPED)
			st = (si->si_status & 0x7f) | 0x80;
		if (st >= 0)
			record_exit(si->si_pid, st);
	}
	return r;
}

__attribute__((constructor)) static void cohort_catch_init(void)
{
	const char *d = getenv("COHORT_CATCH_DIR");
	void *warm[2];
	stack_t ss;

	resolve();
	if (!d || !*d || strlen(d) >= sizeof(dir))
		return;
	memcpy(dir, d, strlen(d) + 1);
	backtrace(warm, 2);
	ss.ss_sp = altstack;
	ss.ss_size = sizeof(altstack);
	ss.ss_flags = 0;
	sigaltstack(&ss, NULL);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction old, sa;

		/* A program's own handler, installed later, takes over: ours is only the default's. */
		if (sigaction(sigs[i], NULL, &old) < 0 || old.sa_handler != SIG_DFL)
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = handler;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
		sigemptyset(&sa.sa_mask);
		sigaction(sigs[i], &sa, NULL);
	}
}

/* For `nm`: tells a cohort catch library from another. */
EXPORT const char cohort_catch_version[] = "cohort-catch 1";
