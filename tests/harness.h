/*
 * harness.h - cohort's own test harness.
 *
 * Every test runs in its own forked process, in its own process group, with
 * a timeout and a private temporary directory. Helper processes a test
 * starts stay in that group and are killed when the test ends, however it
 * ends. A test passes by returning, fails on the first failed CHECK, and
 * skips with SKIP("why"). The runner prints a line per test and closes with
 * "N passed, N failed, N skipped".
 *
 *     TEST(size_parse_units) { uint64_t b; CHECK_OK(cohort_size_parse("4G", &b)); ... }
 *     TEST_TIMEOUT(queue_kill_matrix, 120) { ... }
 */
#ifndef COHORT_HARNESS_H
#define COHORT_HARNESS_H

#include "cohort.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

struct test {
	const char *name;
	const char *file;
	void (*fn)(void);
	unsigned timeout_s;
	struct test *next;
};

void test_register(struct test *t);

#define TEST_TIMEOUT(name, secs)                                              \
	static void test_##name(void);                                        \
	static struct test test_desc_##name = { #name, __FILE__, test_##name, \
	                                        (secs), NULL };               \
	__attribute__((constructor)) static void test_reg_##name(void)        \
	{                                                                     \
		test_register(&test_desc_##name);                             \
	}                                                                     \
	static void test_##name(void)

#define TEST(name) TEST_TIMEOUT(name, 30)

/* Fail the test: prints where and why, and ends the test process. */
void test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));

/* Skip the test, saying why; ends the test process. */
void test_skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#define SKIP(...) test_skip(__VA_ARGS__)

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond))                                                 \
			test_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond); \
	} while (0)

#define CHECK_MSG(cond, ...)                                                 \
	do {                                                                 \
		if (!(cond))                                                 \
			test_fail(__FILE__, __LINE__, __VA_ARGS__);          \
	} while (0)

/* A cohort call that must succeed (return >= 0). */
#define CHECK_OK(expr)                                                       \
	do {                                                                 \
		long long r_ = (long long)(expr);                            \
		if (r_ < 0)                                                  \
			test_fail(__FILE__, __LINE__, "%s returned %lld (%s)", \
			          #expr, r_, cohort_strerror((int)r_));      \
	} while (0)

#define CHECK_EQ(a, b)                                                       \
	do {                                                                 \
		long long a_ = (long long)(a), b_ = (long long)(b);          \
		if (a_ != b_)                                                \
			test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", \
			          #a, #b, a_, b_);                           \
	} while (0)

#define CHECK_EQ_U64(a, b)                                                   \
	do {                                                                 \
		uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);             \
		if (a_ != b_)                                                \
			test_fail(__FILE__, __LINE__,                        \
			          "%s == %s: %" PRIu64 " != %" PRIu64, #a, #b, a_, b_); \
	} while (0)

/* Integer comparisons, printing both expressions and both values on failure. */
#define CHECK_CMP_(a, op, b)                                                 \
	do {                                                                 \
		long long a_ = (long long)(a), b_ = (long long)(b);          \
		if (!(a_ op b_))                                             \
			test_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", \
			          #a, #op, #b, a_, b_);                      \
	} while (0)

#define CHECK_LE(a, b) CHECK_CMP_(a, <=, b)
#define CHECK_GE(a, b) CHECK_CMP_(a, >=, b)
#define CHECK_LT(a, b) CHECK_CMP_(a, <, b)
#define CHECK_GT(a, b) CHECK_CMP_(a, >, b)

/* The same for doubles, and |a - b| <= tol. */
#define CHECK_CMP_DBL_(a, op, b)                                             \
	do {                                                                 \
		double a_ = (double)(a), b_ = (double)(b);                   \
		if (!(a_ op b_))                                             \
			test_fail(__FILE__, __LINE__, "%s %s %s: %.17g vs %.17g", \
			          #a, #op, #b, a_, b_);                      \
	} while (0)

#define CHECK_LE_DBL(a, b) CHECK_CMP_DBL_(a, <=, b)
#define CHECK_GE_DBL(a, b) CHECK_CMP_DBL_(a, >=, b)
#define CHECK_LT_DBL(a, b) CHECK_CMP_DBL_(a, <, b)
#define CHECK_GT_DBL(a, b) CHECK_CMP_DBL_(a, >, b)

#define CHECK_NEAR(a, b, tol)                                                \
	do {                                                                 \
		double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol); \
		if (!(a_ - b_ <= t_ && b_ - a_ <= t_))                       \
			test_fail(__FILE__, __LINE__,                        \
			          "%s == %s within %s: %.17g vs %.17g", #a, #b, #tol, a_, b_); \
	} while (0)

#define CHECK_STREQ(a, b)                                                    \
	do {                                                                 \
		const char *a_ = (a), *b_ = (b);                             \
		if (!a_ || !b_ || strcmp(a_, b_) != 0)                       \
			test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", \
			          #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
	} while (0)

/* Substring check, printing the haystack on failure. */
#define CHECK_CONTAINS(hay, needle)                                          \
	do {                                                                 \
		const char *h_ = (hay), *n_ = (needle);                      \
		if (!h_ || !strstr(h_, n_))                                  \
			test_fail(__FILE__, __LINE__, "%s does not contain \"%s\":\n%s", \
			          #hay, n_, h_ ? h_ : "(null)");             \
	} while (0)

/* This test's private temporary directory (removed after the test). */
const char *test_tmpdir(void);

/* The build directory (COHORT_BUILD), to find the cohort binary, examples... */
const char *test_build_dir(void);

/* The source tree's root (for tests/fixtures). */
const char *test_src_dir(void);

/* True under `make stress`: run the long versions. */
bool test_stress(void);

/*
 * Start a helper process running fn(arg), in the test's process group.
 * It exits 0 when fn returns. Returns its pid.
 */
pid_t helper_spawn(void (*fn)(void *), void *arg);

/*
 * Wait for a process for at most timeout_ms. Returns its wait status, or -1
 * on timeout (the process is left running).
 */
int helper_wait(pid_t pid, unsigned timeout_ms);

/* The output of a command run through /bin/sh. */
struct cmd_result {
	int status;      /* exit code, or 128+signal */
	char *out;       /* stdout, NUL-terminated */
	char *err;       /* stderr, NUL-terminated */
};

/*
 * Run a shell command line (made by printf) with a timeout of 60 s; captures
 * stdout and stderr. Fails the test if it cannot run at all.
 */
void cmd_run(struct cmd_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cmd_free(struct cmd_result *r);

/*
 * The SLURM test cluster (tests/slurm/cluster.sh, started by make check):
 * its directory; skips the test when there is none, fails it when it
 * should have come up and did not.
 */
const char *slurm_cluster_dir(void);

/*
 * The test cluster's directory for a case of spank_cohort.so: skips the
 * test when the plugin is not built (no libslurm-dev).
 */
const char *slurm_spank_dir(void);

/*
 * Rewrite the cluster's plugstack.conf to load the build tree's plugin
 * with these site options; slurmstepd reads it at each step, and
 * slurm_case() restores the cluster's own afterwards.
 */
void slurm_set_plugstack(const char *dir, const char *opts);

/*
 * Restart the test cluster under another configuration: env is a shell
 * prefix of assignments (COHORT_SLURM_EXTRA='...' COHORT_SLURM_CONSTRAIN_RAM=no).
 * Fails the test when the cluster does not come up.
 */
void slurm_reconfigure(const char *dir, const char *env);

/*
 * Run fn(dir) in a helper process for at most timeout_ms, then restore
 * the cluster's default configuration whatever fn did (failed, hung,
 * reconfigured), and fail the test when fn failed. fn calls
 * slurm_reconfigure() for what it needs.
 */
void slurm_case(const char *dir, void (*fn)(void *), unsigned timeout_ms);

/* Read a whole file into a malloc'd string, or NULL. */
char *read_file(const char *path);

/* Write a file, creating its directories; fails the test on error. */
void write_file(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
