/*
 * test-python.c - the Python package's tests (python/tests, pytest) as
 * runner tests: one runner test per pytest test function, so that the one
 * closing line counts them, and a skip says why (no pytest, no NumPy, no
 * torch, not root). Each runs Debian's /usr/bin/python3 -m pytest on the
 * package built in <build>/python by `make python`.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"

/* Every pytest test function of python/tests; python_tests_all_listed keeps it complete. */
static const char *const pytest_ids[] = {
	"test_alloc.py::test_allocation_matches_cli",
	"test_alloc.py::test_check_matches_cli",
	"test_alloc.py::test_check_does_not_fit_names_figures",
	"test_alloc.py::test_check_fix_in_python_terms",
	"test_alloc.py::test_check_bad_input",
	"test_alloc.py::test_cpus_honours_affinity",
	"test_alloc.py::test_cpus_honours_slurm",
	"test_cohort_run.py::test_dataloader_over_python_objects_is_cow_unshare",
	"test_cohort_run.py::test_dataloader_over_shared_array_is_not",
	"test_dataloader.py::test_dataloader_workers_share_the_array",
	"test_dataloader.py::test_dataloader_over_python_objects_copies_them",
	"test_queue.py::test_bytes_and_objects",
	"test_queue.py::test_between_processes",
	"test_queue.py::test_pool_worker_sigkilled_others_finish_and_loss_reported",
	"test_queue.py::test_producer_killed_mid_message_reported_lost",
	"test_queue.py::test_queue_call_forms_and_threads",
	"test_segment.py::test_segment_buffer_shared_with_fork",
	"test_segment.py::test_segment_errors",
	"test_segment.py::test_bad_names_say_the_rule_and_the_fix",
	"test_segment.py::test_shared_array_pickles_as_reference",
	"test_segment.py::test_shared_array_every_start_method",
	"test_segment.py::test_creator_removes_what_it_made",
	"test_shm_full.py::test_shared_array_too_big_raises_at_creation",
	"test_shm_full.py::test_plain_torch_dies_of_sigbus_where_cohort_raises",
	"test_sync.py::test_lock_excludes_across_processes",
	"test_sync.py::test_lock_timeout_and_owner",
	"test_sync.py::test_lock_survives_a_killed_holder",
	"test_sync.py::test_barrier_names_the_dead_member",
	"test_sync.py::test_barrier_round_and_timeout",
	"test_sync.py::test_semaphore_dead_holder_reaped",
	"test_sync.py::test_lock_call_forms_and_errors",
	"test_sync.py::test_lock_is_not_reentrant",
	"test_sync.py::test_lock_wait_gives_up_the_gil",
	"test_sync.py::test_timeouts_checked_everywhere",
};

/* Skip unless the interpreter, pytest and the built package are there. */
static void need_python(void)
{
	char pattern[PATH_MAX];
	glob_t g;
	int found;

	if (access(PYTHON, X_OK) != 0)
		SKIP("no %s (Debian's python3)", PYTHON);
	if (system(PYTHON " -c 'import pytest' >/dev/null 2>&1") != 0)
		SKIP("python3-pytest is not installed (apt-get install python3-pytest)");
	snprintf(pattern, sizeof(pattern), "%s/python/cohort/_cohort*.so", test_build_dir());
	found = glob(pattern, 0, NULL, &g) == 0;
	if (found)
		globfree(&g);
	if (!found)
		SKIP("the Python package is not built in %s/python (make python; it needs python3-dev "
		     "and python3-setuptools; sanitizer builds do not build it)", test_build_dir());
}

/*
 * Run pytest on id, its output into out (a file of the test's directory),
 * within timeout_s. Returns pytest's exit status, or -1 on a timeout.
 */
static int pytest_run(const char *id, const char *extra, const char *out, unsigned timeout_s)
{
	char target[PATH_MAX], rootdir[PATH_MAX], pypath[PATH_MAX];
	pid_t pid;
	int status;

	snprintf(rootdir, sizeof(rootdir), "%s/python/tests", test_src_dir());
	snprintf(target, sizeof(target), "%s/%s", rootdir, id);
	snprintf(pypath, sizeof(pypath), "%s/python", test_build_dir());
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	CHECK_MSG(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		setenv("PYTHONPATH", pypath, 1);
		setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
		setenv("COHORT_BUILD", test_build_dir(), 1);
		unsetenv("COHORT_JOB");
		execl(PYTHON, PYTHON, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
		      "-W", "ignore::UserWarning", "--rootdir", rootdir, extra ? extra : target,
		      extra ? target : (char *)NULL, (char *)NULL);
		_exit(127);
	}
	status = helper_wait(pid, timeout_s * 1000);
	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void pytest_one(const char *id, unsigned timeout_s)
{
	char *text, *line;
	int rc;

	need_python();
	rc = pytest_run(id, NULL, "pytest.out", timeout_s);
	text = read_file("pytest.out");
	CHECK_MSG(text, "no output from pytest");
	printf("%s", text);
	CHECK_MSG(rc != -1, "pytest %s: timed out after %u s", id, timeout_s);
	CHECK_MSG(rc == 0, "pytest %s exited %d", id, rc);
	/* Every case of it skipped: a skip, with pytest's reason. */
	if (!strstr(text, " passed") && strstr(text, " skipped")) {
		line = strstr(text, "SKIPPED [");
		if (line) {
			char *end = strchr(line, '\n'), *why = strstr(line, ": ");

			if (end)
				*end = '\0';
			SKIP("%s", why && (!end || why < end) ? why + 2 : line);
		}
		SKIP("pytest skipped %s", id);
	}
	CHECK_MSG(strstr(text, " passed"), "pytest %s ran no test", id);
	free(text);
}

#define PYTEST(name, id, secs) \
	TEST_TIMEOUT(python_##name, secs) { pytest_one(id, (secs) - 10); }

PYTEST(alloc_matches_cli, "test_alloc.py::test_allocation_matches_cli", 60)
PYTEST(check_matches_cli, "test_alloc.py::test_check_matches_cli", 60)
PYTEST(check_does_not_fit_names_figures, "test_alloc.py::test_check_does_not_fit_names_figures", 60)
PYTEST(check_fix_in_python_terms, "test_alloc.py::test_check_fix_in_python_terms", 60)
PYTEST(check_bad_input, "test_alloc.py::test_check_bad_input", 60)
PYTEST(cpus_honours_affinity, "test_alloc.py::test_cpus_honours_affinity", 90)
PYTEST(cpus_honours_slurm, "test_alloc.py::test_cpus_honours_slurm", 90)
PYTEST(run_dataloader_objects_cow_unshare, "test_cohort_run.py::test_dataloader_over_python_objects_is_cow_unshare", 200)
PYTEST(run_dataloader_shared_array_no_cow, "test_cohort_run.py::test_dataloader_over_shared_array_is_not", 200)
PYTEST(dataloader_shared_array_no_copies, "test_dataloader.py::test_dataloader_workers_share_the_array", 240)
PYTEST(dataloader_python_objects_copied, "test_dataloader.py::test_dataloader_over_python_objects_copies_them", 180)
PYTEST(queue_bytes_and_objects, "test_queue.py::test_bytes_and_objects", 60)
PYTEST(queue_between_processes, "test_queue.py::test_between_processes", 90)
PYTEST(queue_pool_worker_sigkilled, "test_queue.py::test_pool_worker_sigkilled_others_finish_and_loss_reported", 150)
PYTEST(queue_producer_killed_messages_lost, "test_queue.py::test_producer_killed_mid_message_reported_lost", 150)
PYTEST(queue_call_forms_and_threads, "test_queue.py::test_queue_call_forms_and_threads", 120)
PYTEST(segment_buffer_shared_with_fork, "test_segment.py::test_segment_buffer_shared_with_fork", 60)
PYTEST(segment_errors, "test_segment.py::test_segment_errors", 60)
PYTEST(segment_bad_names_rule_and_fix, "test_segment.py::test_bad_names_say_the_rule_and_the_fix", 60)
PYTEST(shared_array_pickles_as_reference, "test_segment.py::test_shared_array_pickles_as_reference", 60)
PYTEST(shared_array_every_start_method, "test_segment.py::test_shared_array_every_start_method", 120)
PYTEST(segments_removed_by_creator_only, "test_segment.py::test_creator_removes_what_it_made", 60)
PYTEST(shared_array_small_shm_raises, "test_shm_full.py::test_shared_array_too_big_raises_at_creation", 90)
PYTEST(small_shm_plain_torch_sigbus, "test_shm_full.py::test_plain_torch_dies_of_sigbus_where_cohort_raises", 120)
PYTEST(lock_excludes_across_processes, "test_sync.py::test_lock_excludes_across_processes", 120)
PYTEST(lock_timeout_and_owner, "test_sync.py::test_lock_timeout_and_owner", 60)
PYTEST(lock_survives_killed_holder, "test_sync.py::test_lock_survives_a_killed_holder", 60)
PYTEST(barrier_names_dead_member, "test_sync.py::test_barrier_names_the_dead_member", 90)
PYTEST(barrier_round_and_timeout, "test_sync.py::test_barrier_round_and_timeout", 60)
PYTEST(semaphore_dead_holder_reaped, "test_sync.py::test_semaphore_dead_holder_reaped", 60)
PYTEST(lock_call_forms_and_errors, "test_sync.py::test_lock_call_forms_and_errors", 60)
PYTEST(lock_is_not_reentrant, "test_sync.py::test_lock_is_not_reentrant", 60)
PYTEST(lock_wait_gives_up_the_gil, "test_sync.py::test_lock_wait_gives_up_the_gil", 90)
PYTEST(timeouts_checked_everywhere, "test_sync.py::test_timeouts_checked_everywhere", 60)

/* Every test function pytest collects is one of pytest_ids (and run above). */
TEST_TIMEOUT(python_tests_all_listed, 90)
{
	char *text, *line, *save = NULL;
	size_t n = sizeof(pytest_ids) / sizeof(pytest_ids[0]);
	unsigned collected = 0;
	int rc;

	need_python();
	rc = pytest_run("", "--collect-only", "collect.out", 80);
	text = read_file("collect.out");
	CHECK_MSG(text, "no output from pytest --collect-only");
	CHECK_MSG(rc == 0, "pytest --collect-only exited %d:\n%s", rc, text);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *id = strstr(line, "test_"), *br;
		bool listed = false;

		if (!id || !strstr(line, "::"))
			continue;
		if ((br = strchr(id, '[')))
			*br = '\0';
		for (size_t i = 0; i < n && !listed; i++)
			listed = strcmp(pytest_ids[i], id) == 0;
		CHECK_MSG(listed, "pytest test %s has no runner test in tests/test-python.c", id);
		collected++;
	}
	CHECK_GE(collected, n);
	free(text);
}
