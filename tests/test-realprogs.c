/*
 * test-realprogs.c - programs nobody on the project wrote, run under
 * `cohort run` the way their users run them: a fork multiprocessing.Pool,
 * a PyTorch DataLoader, `mpirun -np 4`, stress-ng, a C program whose
 * forked child crashes. Each must give the finding that names the process
 * that did it (its pid, and what it is to the worker: a pool or loader
 * child, an MPI rank), figures within plausible bounds, and an exit status
 * that makes a batch script's `|| exit 1` fire.
 *
 * The programs are in tests/progs/; the C ones are built here, at test
 * time (mpi_over.c with Open MPI's mpicc). A test whose program, library
 * or privilege is absent skips and says which.
 */
#include "harness.h"

#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#define COHORT "%s/cohort"
#define PROGS "%s/tests/progs/"
#define PYTHON "/usr/bin/python3"

/*
 * Open MPI refuses root without --allow-run-as-root; four ranks on two
 * CPUs need --oversubscribe; btl and plm keep it on this node, off the
 * network and away from SLURM's launcher.
 */
#define MPIRUN "mpirun --allow-run-as-root --oversubscribe --mca btl self,vader --mca plm isolated "

/* What cohort run said and returned, and the report it recorded. */
struct run {
	int status;
	char *out;
	char *err;
	json_t *rep;
};

static void run_cohort_in(struct run *res, const char *pre, const char *args_fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Run `PRE cohort run -o rec.ndjson ARGS`, then cohort report --json on
 * the recording. PRE is a shell prefix that ends by running its arguments
 * (unshare ... sh -c '...; exec "$0" "$@"'), or "".
 */
static void run_cohort_in(struct run *res, const char *pre, const char *args_fmt, ...)
{
	char args[4096];
	struct cmd_result r;
	json_error_t err;
	va_list ap;

	va_start(ap, args_fmt);
	vsnprintf(args, sizeof(args), args_fmt, ap);
	va_end(ap);
	cmd_run(&r, "%s" COHORT " run -o rec.ndjson %s", pre, test_build_dir(), args);
	res->status = r.status;
	res->out = r.out;
	res->err = r.err;
	/* Kept in the test's directory: what to look at when a check fails. */
	write_file("run.out", "%s", r.out);
	write_file("run.err", "%s", r.err);
	cmd_run(&r, COHORT " report --json rec.ndjson", test_build_dir());
	CHECK_MSG(r.status == 0, "cohort report exited %d: %s\ncohort run said:\n%s", r.status, r.err, res->err);
	res->rep = json_loads(r.out, 0, &err);
	CHECK_MSG(res->rep != NULL, "report is not JSON (%s):\n%s", err.text, r.out);
	cmd_free(&r);
}

#define run_cohort(res, ...) run_cohort_in(res, "", __VA_ARGS__)

/* A 64 MiB /dev/shm of its own for the command, as job_container/tmpfs gives a job. */
#define SMALL_SHM "unshare -m sh -c 'mount -t tmpfs -o size=64M tmpfs /dev/shm && exec \"$0\" \"$@\"' "

static void run_free(struct run *res)
{
	free(res->out);
	free(res->err);
	json_decref(res->rep);
}

static const char *kind_of(json_t *f)
{
	return json_string_value(json_object_get(f, "kind"));
}

static const char *message_of(json_t *f)
{
	return json_string_value(json_object_get(f, "message"));
}

static long long int_of(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static long long ev(json_t *f, const char *name)
{
	json_t *v = json_object_get(json_object_get(f, "evidence"), name);

	CHECK_MSG(json_is_number(v), "no evidence '%s' in the %s finding", name, kind_of(f));
	return (long long)json_number_value(v);
}

/* The first finding whose kind is one of KINDS (comma-separated), or fail showing them all. */
static json_t *finding(const struct run *res, const char *kinds)
{
	json_t *d = json_object_get(res->rep, "diagnosis"), *f;
	size_t i;

	json_array_foreach(d, i, f) {
		const char *k = kind_of(f);
		size_t n = strlen(k);

		for (const char *p = kinds; (p = strstr(p, k)) != NULL; p += n)
			if ((p == kinds || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
				return f;
	}
	/* The report's findings, not cohort run's stderr: a program's own may hold NULs (torch's do). */
	test_fail(__FILE__, __LINE__, "no %s finding in:\n%s", kinds, json_dumps(d, JSON_INDENT(1)));
}

static int count(const struct run *res, const char *kind)
{
	json_t *d = json_object_get(res->rep, "diagnosis"), *f;
	size_t i;
	int n = 0;

	json_array_foreach(d, i, f)
		n += strcmp(kind_of(f), kind) == 0;
	return n;
}

/*
 * The number after PREFIX in TEXT ("pool worker 2 is pid " -> its pid),
 * or fail: every program here says who its processes are.
 */
static long long number_after(const char *text, const char *prefix)
{
	const char *p = text ? strstr(text, prefix) : NULL;

	CHECK_MSG(p != NULL, "no \"%s\" in:\n%s", prefix, text ? text : "(null)");
	return atoll(p + strlen(prefix));
}

/* The finding names this process: its pid as the finding's, and in the message. */
static void check_names_pid(json_t *f, long long pid)
{
	char want[64];

	CHECK_MSG(int_of(f, "pid") == pid, "the %s finding names pid %lld, not %lld: %s", kind_of(f),
	          int_of(f, "pid"), pid, message_of(f));
	snprintf(want, sizeof(want), "pid %lld", pid);
	CHECK_CONTAINS(message_of(f), want);
}

/* cohort run's exit makes `|| exit 1` fire, as srun's does: 128 + the signal that ended it. */
static void check_failed_by_signal(const struct run *res)
{
	CHECK_MSG(res->status == 128 + SIGKILL || res->status == 128 + SIGTERM,
	          "cohort run exited %d, not 137 or 143; it said:\n%s", res->status, res->err);
}

static void need_root(const char *why)
{
	if (geteuid() != 0)
		SKIP("%s needs root", why);
}

static void need_python(const char *module, const char *package)
{
	struct cmd_result r;

	if (access(PYTHON, X_OK) != 0)
		SKIP(PYTHON " is not installed (apt-get install python3)");
	cmd_run(&r, PYTHON " -c 'import %s'", module);
	if (r.status != 0) {
		cmd_free(&r);
		SKIP("Python's %s is not installed (apt-get install %s)", module, package);
	}
	cmd_free(&r);
}

static void need_program(const char *prog, const char *package)
{
	struct cmd_result r;

	cmd_run(&r, "command -v %s", prog);
	if (r.status != 0) {
		cmd_free(&r);
		SKIP("%s is not installed (apt-get install %s)", prog, package);
	}
	cmd_free(&r);
}

/* Build tests/progs/NAME.c into the test's directory with CC (cc, mpicc). */
static void build_prog(const char *cc, const char *name)
{
	struct cmd_result r;

	cmd_run(&r, "%s -std=c11 -D_GNU_SOURCE -O2 -o %s " PROGS "%s.c", cc, name, test_src_dir(), name);
	CHECK_MSG(r.status == 0, "%s %s.c failed: %s", cc, name, r.err);
	cmd_free(&r);
}

/*
 * A fork Pool(4) whose worker 2 keeps 8 MiB arrays in a global list, 32
 * MiB/s at most (less when the machine is loaded: the step is a sleep).
 * The leak is that pool worker's, not the parent's, which only waits.
 */
TEST_TIMEOUT(realprogs_pool_worker_leak_names_the_pool_worker, 120)
{
	struct run res;
	json_t *f;
	long long leaker, parent;

	need_python("numpy", "python3-numpy");
	run_cohort(&res, "-n 1 -i 0.2 -- " PYTHON " " PROGS "pool_leak.py --leaker 2 --seconds 14",
	           test_src_dir());
	CHECK_MSG(res.status == 0, "cohort run exited %d:\n%s", res.status, res.err);
	leaker = number_after(res.out, "pool worker 2 is pid ");
	parent = int_of(json_array_get(json_object_get(res.rep, "workers"), 0), "pid");
	CHECK(leaker != parent);
	f = finding(&res, "leak");
	CHECK_EQ(count(&res, "leak"), 1);
	CHECK_EQ(int_of(f, "rank"), 0);
	check_names_pid(f, leaker);
	CHECK_CONTAINS(message_of(f), "child ");
	CHECK_CONTAINS(message_of(f), " of rank 0");
	CHECK_MSG(ev(f, "rate_bytes_per_s") > 4LL << 20 && ev(f, "rate_bytes_per_s") < 40LL << 20,
	          "rate %lld B/s", ev(f, "rate_bytes_per_s"));
	run_free(&res);
}

/*
 * The same pool with a 300 MiB budget per worker: the kernel OOM-kills
 * pool worker 2 inside rank 0's cgroup, and the pool waits for its task
 * until the script gives up (exit 3). The finding names that pool worker.
 */
TEST_TIMEOUT(realprogs_pool_worker_oom_kill_names_the_pool_worker, 120)
{
	struct run res;
	json_t *f;
	long long leaker;

	need_root("a memory cgroup per worker (--enforce cgroup)");
	need_python("numpy", "python3-numpy");
	run_cohort(&res, "-n 1 -m 300M --enforce cgroup -- " PYTHON " " PROGS "pool_leak.py --leaker 2 --seconds 14",
	           test_src_dir());
	CHECK_MSG(res.status != 0, "cohort run exited 0 after an OOM kill:\n%s", res.err);
	leaker = number_after(res.out, "pool worker 2 is pid ");
	f = finding(&res, "oom_kill");
	CHECK_EQ(count(&res, "oom_kill"), 1);
	CHECK_EQ(int_of(f, "rank"), 0);
	check_names_pid(f, leaker);
	CHECK_CONTAINS(message_of(f), "child ");
	CHECK_CONTAINS(message_of(f), " of rank 0");
	CHECK_GE(ev(f, "oom_kills"), 1);
	CHECK_LE(ev(f, "peak_cgroup_bytes"), 300LL << 20);
	run_free(&res);
}

/*
 * A DataLoader with two workers passing 48 MiB tensors through a 64 MiB
 * /dev/shm (a private mount namespace's): a loader worker dies of SIGBUS
 * writing its batch into shared memory, and torch says "DataLoader worker
 * (pid N) is killed by signal: Bus error". cohort names that worker and
 * why, not only the main process's exit status.
 */
TEST_TIMEOUT(realprogs_dataloader_bus_error_names_the_loader_worker, 180)
{
	struct run res;
	json_t *f;
	long long worker;

	need_root("mounting a 64 MiB /dev/shm in a private mount namespace");
	need_python("torch", "python3-torch");
	run_cohort_in(&res, SMALL_SHM, "-n 1 -- " PYTHON " " PROGS "loader_bus.py --mib 48 --workers 2",
	              test_src_dir());
	CHECK_MSG(res.status != 0, "cohort run exited 0:\n%s", res.err);
	/* What torch said, on a line of the program's own (torch's stderr has NULs in it). */
	worker = number_after(res.out, "loader_bus: loader worker pid ");
	CHECK_CONTAINS(res.out, "was killed: Bus error");
	f = finding(&res, "shm_exhausted,bus_error,crash");
	CHECK_EQ(int_of(f, "rank"), 0);
	/*
	 * Both loader workers may die of SIGBUS: the finding then counts them
	 * and names the first cohort saw die, which need not be the one torch
	 * noticed first. It names a loader worker either way, never the parent.
	 */
	if (strstr(message_of(f), "processes of rank 0 died of it")) {
		long long p0 = number_after(res.out, "loader worker 0 is pid ");
		long long p1 = number_after(res.out, "loader worker 1 is pid ");

		check_names_pid(f, int_of(f, "pid") == p1 ? p1 : p0);
	} else {
		check_names_pid(f, worker);
	}
	if (strcmp(kind_of(f), "shm_exhausted") != 0)
		CHECK_CONTAINS(message_of(f), "SIGBUS");
	CHECK_CONTAINS(message_of(f), "child ");
	CHECK_CONTAINS(message_of(f), " of rank 0");
	run_free(&res);
}

/* The MPI job of the next two tests, built with mpicc; its ranks say their pids. */
static void need_mpi(void)
{
	need_program("mpicc", "libopenmpi-dev");
	need_program("mpirun", "openmpi-bin");
	build_prog("mpicc", "mpi_over");
}

/* Every rank of mpi_over ran and said who it is. */
static long long mpi_rank_pid(const struct run *res, int rank)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "mpi_over: rank %d of 4 is pid ", rank);
	return number_after(res->out, prefix);
}

/*
 * `cohort run -n 1 -m 700M -- mpirun -np 4 ./mpi_over`: every rank holds
 * 40 MiB, rank 2 grows towards 1 GiB. The kernel kills rank 2 in rank 0's
 * cgroup; mpirun then ends the others. The finding names MPI rank 2.
 */
TEST_TIMEOUT(realprogs_mpirun_rank_over_its_share_oom_killed, 150)
{
	struct run res;
	json_t *f;
	long long victim;

	need_root("a memory cgroup per worker (--enforce cgroup)");
	need_mpi();
	run_cohort(&res, "-n 1 -m 700M --enforce cgroup -- " MPIRUN "-np 4 ./mpi_over --hold 40 --grow-rank 2 "
	           "--grow-to 1024 --seconds 40");
	check_failed_by_signal(&res);
	victim = mpi_rank_pid(&res, 2);
	f = finding(&res, "oom_kill");
	CHECK_EQ(count(&res, "oom_kill"), 1);
	CHECK_EQ(int_of(f, "rank"), 0);
	check_names_pid(f, victim);
	CHECK_CONTAINS(message_of(f), "MPI rank 2");
	CHECK_GE(ev(f, "oom_kills"), 1);
	/* The four ranks' 160 MiB and rank 2's growth, up to the limit. */
	CHECK_LE(ev(f, "peak_cgroup_bytes"), 700LL << 20);
	CHECK_GE(ev(f, "peak_cgroup_bytes"), 400LL << 20);
	run_free(&res);
}

/* The same under --enforce watch: cohort stops the job before the kernel does, and says which MPI rank grew. */
TEST_TIMEOUT(realprogs_mpirun_rank_over_its_share_budget_kill, 150)
{
	struct run res;
	json_t *f;
	long long grower;

	need_mpi();
	run_cohort(&res, "-n 1 -m 700M --enforce watch --grace 5 -- " MPIRUN "-np 4 ./mpi_over --hold 40 "
	           "--grow-rank 2 --grow-to 1024 --seconds 40");
	check_failed_by_signal(&res);
	CHECK(strstr(res.err, "ended well") == NULL);
	grower = mpi_rank_pid(&res, 2);
	f = finding(&res, "budget_kill");
	CHECK_EQ(count(&res, "budget_kill"), 1);
	CHECK_EQ(int_of(f, "rank"), 0);
	check_names_pid(f, grower);
	CHECK_CONTAINS(message_of(f), "MPI rank 2");
	CHECK_GT(ev(f, "est_bytes"), 700LL << 20);
	/* Rank 2 alone grew by most of the budget: at least the budget less the four ranks' base. */
	CHECK_GE(ev(f, "process_growth_bytes"), 400LL << 20);
	run_free(&res);
}

/*
 * stress-ng as its users run it: three vm workers of 400 MiB in a 300
 * MiB budget. The kernel kills them again and again, stress-ng restarts
 * them and exits 0 at its timeout: one oom_kill finding with the count,
 * naming stress-ng-vm, and cohort run fails.
 */
TEST_TIMEOUT(realprogs_stress_ng_oom_kills_counted_and_named, 120)
{
	struct run res;
	json_t *f;

	need_root("a memory cgroup per worker (the default enforcement as root)");
	need_program("stress-ng", "stress-ng");
	run_cohort(&res, "-n 1 -m 300M -- stress-ng --vm 3 --vm-bytes 400M --timeout 8s");
	CHECK_MSG(res.status == 128 + SIGKILL, "cohort run exited %d:\n%s", res.status, res.err);
	f = finding(&res, "oom_kill");
	CHECK_EQ(count(&res, "oom_kill"), 1);
	CHECK_EQ(int_of(f, "rank"), 0);
	CHECK_GE(ev(f, "oom_kills"), 2);
	CHECK_LE(ev(f, "peak_cgroup_bytes"), 300LL << 20);
	CHECK_CONTAINS(message_of(f), "stress-ng-vm");
	run_free(&res);
}

/*
 * A C program forks 4 children; child 2 writes to address 16 (SIGSEGV).
 * The parent exits 1. The finding is the crash, in that child.
 */
TEST_TIMEOUT(realprogs_forked_child_segfault_names_the_child, 90)
{
	struct run res;
	json_t *f;
	long long child;

	build_prog("cc", "fork_segv");
	run_cohort(&res, "-n 1 -- ./fork_segv 2 4");
	CHECK_MSG(res.status != 0, "cohort run exited 0:\n%s", res.err);
	child = number_after(res.out, "child 2 is pid ");
	f = finding(&res, "segfault,crash");
	CHECK_EQ(int_of(f, "rank"), 0);
	check_names_pid(f, child);
	CHECK_CONTAINS(message_of(f), "SIGSEGV");
	CHECK_CONTAINS(message_of(f), "child ");
	CHECK_CONTAINS(message_of(f), " of rank 0");
	if (strcmp(kind_of(f), "segfault") == 0)
		CHECK_EQ(ev(f, "fault_addr"), 16);
	CHECK(strstr(res.err, "ended well") == NULL);
	run_free(&res);
}

/*
 * stress-ng exits 0 on SIGTERM. cohort stops it over its budget: cohort
 * run fails all the same, and nothing says the worker ended well.
 */
TEST_TIMEOUT(realprogs_budget_kill_of_a_program_that_exits_0_on_sigterm, 90)
{
	struct run res;
	json_t *f, *w;

	need_program("stress-ng", "stress-ng");
	run_cohort(&res, "-n 1 -m 300M --enforce watch --grace 5 -- stress-ng --vm 1 --vm-bytes 500M "
	           "--vm-keep --timeout 30s");
	check_failed_by_signal(&res);
	CHECK(strstr(res.err, "ended well") == NULL);
	f = finding(&res, "budget_kill");
	CHECK_EQ(int_of(f, "rank"), 0);
	CHECK_CONTAINS(message_of(f), "stress-ng-vm");
	CHECK_GT(ev(f, "est_bytes"), 300LL << 20);
	w = json_array_get(json_object_get(res.rep, "workers"), 0);
	CHECK(json_is_true(json_object_get(w, "stopped_by_cohort")));
	CHECK_EQ(int_of(json_array_get(json_object_get(res.rep, "recordings"), 0), "exit_status"), res.status);
	run_free(&res);
}

/*
 * `mpirun -np 4 cohort run -n 1 -m 300M -- ./mpi_over`: one supervisor
 * per MPI rank, each with a recording of its own (never the same file),
 * and the report over all of them names MPI rank 2, which the kernel
 * killed in its supervisor's cgroup. mpirun fails.
 */
TEST_TIMEOUT(realprogs_mpirun_around_cohort_run_one_recording_per_rank, 150)
{
	struct cmd_result r;
	json_error_t err;
	json_t *rep, *d, *f, *hit = NULL;
	long long victim;
	size_t i;

	need_root("a memory cgroup per worker (--enforce cgroup)");
	need_mpi();
	cmd_run(&r, MPIRUN "-np 4 " COHORT " run -n 1 -m 300M --enforce cgroup -- ./mpi_over --hold 40 "
	        "--grow-rank 2 --grow-to 600 --seconds 40", test_build_dir());
	write_file("run.out", "%s", r.out);
	CHECK_MSG(r.status != 0, "mpirun exited 0:\n%s", r.err);
	victim = number_after(r.out, "mpi_over: rank 2 of 4 is pid ");
	cmd_free(&r);
	/* Four supervisors, four files: none wrote over another's. */
	cmd_run(&r, "ls cohort-*.ndjson | wc -l");
	CHECK_EQ(atoi(r.out), 4);
	cmd_free(&r);
	cmd_run(&r, COHORT " report --json cohort-*.ndjson", test_build_dir());
	CHECK_MSG(r.status == 0, "cohort report exited %d: %s", r.status, r.err);
	rep = json_loads(r.out, 0, &err);
	CHECK_MSG(rep != NULL, "report is not JSON (%s)", err.text);
	cmd_free(&r);
	CHECK_EQ(json_array_size(json_object_get(rep, "recordings")), 4);
	d = json_object_get(rep, "diagnosis");
	json_array_foreach(d, i, f)
		if (strcmp(kind_of(f), "oom_kill") == 0) {
			CHECK_MSG(hit == NULL, "two oom_kill findings for one kill:\n%s", json_dumps(d, JSON_INDENT(1)));
			hit = f;
		}
	CHECK_MSG(hit != NULL, "no oom_kill finding in:\n%s", json_dumps(d, JSON_INDENT(1)));
	check_names_pid(hit, victim);
	CHECK_CONTAINS(message_of(hit), "MPI rank 2");
	CHECK_LE(ev(hit, "peak_cgroup_bytes"), 300LL << 20);
	json_decref(rep);
}
