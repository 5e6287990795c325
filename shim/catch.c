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
 * The file is "key value" lines:
 *     signal 11
 *     code 1
 *     addr 0x7f2c1a000000
 *     map 7f2c19f00000-7f2c1a000000 rw-s 00000000 00:1a 12 /dev/shm/cohort.0.42.grid
 *     fault 7f2c1a000000-7f2c1a001000 ---p 00000000 00:00 0
 *     frame ./worker(fill+0x2a)[0x55d1c3a0b1f9]
 * "fault" is the mapping that holds the address (absent when none does);
 * "map" the one just below it.
 */
#define _GNU_SOURCE
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
		put(out, "map ");
		put(out, below);
		put(out, "\n");
	}
	if (hold[0]) {
		put(out, "fault ");
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
	memcpy(path + dlen, "/crash.", 7);
	{
		char num[24];
		int i = (int)sizeof(num) - 1;
		uintptr_t v = (uintptr_t)getpid();

		num[i] = '\0';
		do {
			num[--i] = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		memcpy(path + dlen + 7, num + i, sizeof(num) - (size_t)i);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		put(fd, "signal ");
		put_num(fd, (uintptr_t)sig, 10);
		put(fd, "\ncode ");
		put_num(fd, (uintptr_t)(unsigned)si->si_code, 10);
		put(fd, "\naddr 0x");
		put_num(fd, (uintptr_t)si->si_addr, 16);
		put(fd, "\n");
		if (sig == SIGSEGV || sig == SIGBUS)
			maps(fd, (uintptr_t)si->si_addr);
		n = backtrace(frames, 64);
		put(fd, "frames\n");
		backtrace_symbols_fd(frames, n, fd);
		close(fd);
	}
	/* Die of the same signal, as the program would have. */
	signal(sig, SIG_DFL);
	raise(sig);
}

__attribute__((constructor)) static void cohort_catch_init(void)
{
	const char *d = getenv("COHORT_CATCH_DIR");
	void *warm[2];
	stack_t ss;

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
