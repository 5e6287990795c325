/*
 * runner.c - runs the tests registered with TEST(): each in its own forked
 * process and process group, with a timeout and a private temporary
 * directory. Output of a test is kept and shown only when it fails.
 *
 *   runner [--list] [--stress] [--timeout-scale N] [FILTER...]
 *
 * FILTERs select tests whose name contains any of them.
 */

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_SKIP 77

static struct test *tests;
static unsigned ntests;
static char tmpdir[PATH_MAX];
static char build_dir[PATH_MAX];
static char src_dir[PATH_MAX];
static int report_fd = -1;   /* where a failing or skipping test writes its reason */
static bool stress;

void test_register(struct test *t)
{
	t->next = tests;
	tests = t;
	ntests++;
}

__attribute__((format(printf, 1, 0)))
static void report(const char *fmt, va_list ap)
{
	char buf[4096];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);

	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	if (report_fd >= 0 && write(report_fd, buf, (size_t)n) < 0)
		_exit(3);
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	char where[PATH_MAX + 32];

	snprintf(where, sizeof(where), "%s:%d: ", file, line);
	if (report_fd >= 0 && write(report_fd, where, strlen(where)) < 0)
		_exit(3);
	va_start(ap, fmt);
	report(fmt, ap);
	va_end(ap);
	fflush(stdout);
	fflush(stderr);
	_exit(1);
}

void test_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(fmt, ap);
	va_end(ap);
	fflush(stdout);
	fflush(stderr);
	_exit(EXIT_SKIP);
}

const char *test_tmpdir(void) { return tmpdir; }
const char *test_build_dir(void) { return build_dir; }
const char *test_src_dir(void) { return src_dir; }
bool test_stress(void) { return stress; }

pid_t helper_spawn(void (*fn)(void *), void *arg)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
	if (pid == 0) {
		fn(arg);
		fflush(stdout);
		_exit(0);
	}
	return pid;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int helper_wait(pid_t pid, unsigned timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	unsigned nap = 1;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			test_fail(__FILE__, __LINE__, "waitpid(%d): %s", (int)pid, strerror(errno));
		if (now_ms() >= deadline)
			return -1;
		sleep_ms(nap);
		if (nap < 20)
			nap *= 2;
	}
}

char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static void mkdirs(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(tmp, 0755);
		*p = '/';
	}
}

void write_file(const char *path, const char *fmt, ...)
{
	va_list ap;
	FILE *f;

	mkdirs(path);
	f = fopen(path, "we");
	if (!f)
		test_fail(__FILE__, __LINE__, "cannot write %s: %s", path, strerror(errno));
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	if (fclose(f) != 0)
		test_fail(__FILE__, __LINE__, "cannot write %s: %s", path, strerror(errno));
}

void cmd_run(struct cmd_result *r, const char *fmt, ...)
{
	char cmd[8192], outp[PATH_MAX], errp[PATH_MAX];
	va_list ap;
	pid_t pid;
	int status, n;
	static unsigned seq;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		test_fail(__FILE__, __LINE__, "command line too long");
	seq++;
	snprintf(outp, sizeof(outp), "%s/.cmd%u.out", tmpdir, seq);
	snprintf(errp, sizeof(errp), "%s/.cmd%u.err", tmpdir, seq);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int nul = open("/dev/null", O_RDONLY);

		if (o < 0 || e < 0 || nul < 0)
			_exit(126);
		dup2(nul, 0);
		dup2(o, 1);
		dup2(e, 2);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	status = helper_wait(pid, 60000);
	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		test_fail(__FILE__, __LINE__, "command timed out after 60 s: %s", cmd);
	}
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	r->out = read_file(outp);
	r->err = read_file(errp);
	if (!r->out || !r->err)
		test_fail(__FILE__, __LINE__, "cannot read the output of: %s", cmd);
	unlink(outp);
	unlink(errp);
}

void cmd_free(struct cmd_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	remove(path);
	return 0;
}

static int cmp_tests(const void *a, const void *b)
{
	const struct test *const *x = a, *const *y = b;
	int c = strcmp((*x)->file, (*y)->file);

	return c ? c : strcmp((*x)->name, (*y)->name);
}

static bool selected(const struct test *t, int nfilters, char **filters)
{
	if (nfilters == 0)
		return true;
	for (int i = 0; i < nfilters; i++)
		if (strstr(t->name, filters[i]))
			return true;
	return false;
}

/* Print a file's contents indented, as the failing test's output. */
static void dump_indented(const char *path)
{
	char *text = read_file(path), *line, *save = NULL;

	if (!text)
		return;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		printf("    | %s\n", line);
	free(text);
}

static void note_failed(char **names, const char *name)
{
	size_t old = *names ? strlen(*names) : 0;
	char *n = realloc(*names, old + strlen(name) + 2);

	if (!n)
		return;
	snprintf(n + old, strlen(name) + 2, " %s", name);
	*names = n;
}

static void find_dirs(const char *argv0)
{
	const char *b = getenv("COHORT_BUILD");
	char exe[PATH_MAX];
	ssize_t n;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		/* <build>/tests/runner */
		*strrchr(exe, '/') = '\0';
		*strrchr(exe, '/') = '\0';
	} else {
		snprintf(exe, sizeof(exe), "%s", argv0);
	}
	if (b && b[0] == '/')
		snprintf(build_dir, sizeof(build_dir), "%s", b);
	else
		snprintf(build_dir, sizeof(build_dir), "%s", exe);
	if (!getcwd(src_dir, sizeof(src_dir)))
		snprintf(src_dir, sizeof(src_dir), ".");
	if (getenv("COHORT_SRC"))
		snprintf(src_dir, sizeof(src_dir), "%s", getenv("COHORT_SRC"));
}

int test_helper_main(int argc, char **argv);

int main(int argc, char **argv)
{
	struct test **list, *t;
	unsigned n = 0, passed = 0, failed = 0, skipped = 0, num = 0;
	double scale = 1.0;
	char **filters = NULL, *failed_names = NULL;
	int nfilters = 0;
	bool list_only = false;

	if (argc >= 2 && strcmp(argv[1], "--helper") == 0) {
		/* Helpers leak on purpose (a leaking worker): leave without exit handlers. */
		int rc = test_helper_main(argc - 2, argv + 2);

		fflush(stdout);
		fflush(stderr);
		_exit(rc);
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--list") == 0)
			list_only = true;
		else if (strcmp(argv[i], "--stress") == 0)
			stress = true;
		else if (strcmp(argv[i], "--timeout-scale") == 0 && i + 1 < argc)
			scale = atof(argv[++i]);
		else {
			filters = realloc(filters, sizeof(*filters) * (size_t)(nfilters + 1));
			filters[nfilters++] = argv[i];
		}
	}
	if (getenv("COHORT_STRESS"))
		stress = true;
	if (getenv("COHORT_TIMEOUT_SCALE"))
		scale = atof(getenv("COHORT_TIMEOUT_SCALE"));
	if (scale <= 0)
		scale = 1.0;
	find_dirs(argv[0]);
	setvbuf(stdout, NULL, _IOLBF, 0);

	list = calloc(ntests ? ntests : 1, sizeof(*list));
	for (t = tests; t; t = t->next)
		if (selected(t, nfilters, filters))
			list[n++] = t;
	qsort(list, n, sizeof(*list), cmp_tests);
	if (list_only) {
		for (unsigned i = 0; i < n; i++)
			printf("%s\n", list[i]->name);
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
	printf("1..%u\n", n);
	for (unsigned i = 0; i < n; i++) {
		char logpath[PATH_MAX], reason[4096] = "";
		int pipefd[2], status = 0;
		unsigned timeout_ms = (unsigned)(list[i]->timeout_s * 1000 * scale);
		uint64_t start;
		pid_t pid;
		bool timed_out = false;
		ssize_t rn;

		t = list[i];
		num++;
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/cohort-test-%s-XXXXXX", t->name);
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			return 2;
		}
		snprintf(logpath, sizeof(logpath), "%s.log", tmpdir);
		if (pipe2(pipefd, O_CLOEXEC) < 0) {
			perror("pipe");
			return 2;
		}
		fflush(stdout);
		start = now_ms();
		pid = fork();
		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (pid == 0) {
			int log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

			setpgid(0, 0);
			close(pipefd[0]);
			report_fd = pipefd[1];
			if (log >= 0) {
				dup2(log, 1);
				dup2(log, 2);
			}
			if (chdir(tmpdir) < 0)
				_exit(2);
			setvbuf(stdout, NULL, _IOLBF, 0);
			t->fn();
			fflush(stdout);
			_exit(0);
		}
		setpgid(pid, pid);
		close(pipefd[1]);
		status = helper_wait(pid, timeout_ms);
		if (status == -1) {
			timed_out = true;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
		/* Whatever the test left running in its group goes now. */
		kill(-pid, SIGKILL);
		rn = read(pipefd[0], reason, sizeof(reason) - 1);
		reason[rn > 0 ? rn : 0] = '\0';
		close(pipefd[0]);

		double secs = (double)(now_ms() - start) / 1000.0;
		if (timed_out) {
			printf("not ok %u - %s # timed out after %.0f s\n", num, t->name, timeout_ms / 1000.0);
			dump_indented(logpath);
			failed++;
			note_failed(&failed_names, t->name);
		} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			printf("ok %u - %s (%.2f s)\n", num, t->name, secs);
			passed++;
		} else if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SKIP) {
			printf("ok %u - %s # SKIP %s\n", num, t->name, reason);
			skipped++;
		} else {
			if (WIFSIGNALED(status))
				printf("not ok %u - %s # killed by signal %d%s%s\n", num, t->name,
				       WTERMSIG(status), reason[0] ? ": " : "", reason);
			else
				printf("not ok %u - %s # %s\n", num, t->name,
				       reason[0] ? reason : "exited non-zero");
			dump_indented(logpath);
			failed++;
			note_failed(&failed_names, t->name);
		}
		unlink(logpath);
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	if (failed_names)
		printf("# failed:%s\n", failed_names);
	printf("%u passed, %u failed, %u skipped\n", passed, failed, skipped);
	free(list);
	free(filters);
	free(failed_names);
	return failed ? 1 : 0;
}
