/* test-alloc.c - allocation discovery against captured and written trees, and live. */
#include "harness.h"
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#define MAX_ENV 128

/* Load a fixture's env file ("NAME=value" lines) into a NULL-terminated array. */
static const char **load_env(const char *path)
{
	static const char *vars[MAX_ENV + 1];
	char *text = read_file(path), *line, *save = NULL;
	int n = 0;

	CHECK_MSG(text != NULL, "cannot read %s", path);
	for (line = strtok_r(text, "\n", &save); line && n < MAX_ENV; line = strtok_r(NULL, "\n", &save))
		vars[n++] = line;
	vars[n] = NULL;
	return vars;
}

static void fixture_probe(struct cohort_probe *p, const char *name, char *buf, size_t size)
{
	memset(p, 0, sizeof(*p));
	snprintf(buf, size, "%s/tests/fixtures/%s", test_src_dir(), name);
	static char proc[1024], cg[1024];
	snprintf(proc, sizeof(proc), "%s/proc", buf);
	snprintf(cg, sizeof(cg), "%s/cgroup", buf);
	p->proc_root = proc;
	p->cgroup_root = cg;
	p->shm_path = buf;
}

TEST(alloc_slurm_v1_captured)
{
	struct cohort_probe p;
	struct cohort_alloc a;
	char dir[1024], env[1100];

	fixture_probe(&p, "slurm-v1", dir, sizeof(dir));
	snprintf(env, sizeof(env), "%s/env", dir);
	p.envp = load_env(env);
	CHECK_OK(cohort_alloc_detect(&p, &a));

	/* srun --mem=300M: 300 MiB on the job and on the step; the job names it. */
	CHECK_EQ_U64(a.mem_limit, 300ULL << 20);
	CHECK_EQ(a.mem_limit_source, COHORT_SRC_CGROUP);
	CHECK_CONTAINS(a.mem_limit_where, "/memory/slurm_vm/uid_0/job_2/memory.limit_in_bytes");
	CHECK_EQ(a.cgroup_version, 1);
	CHECK_STREQ(a.cgroup_path, "/slurm_vm/uid_0/job_2/step_0/task_0");
	CHECK(a.cgroup_usage_known);
	CHECK_EQ_U64(a.cgroup_usage, 2445312);   /* the job level's usage */

	CHECK(a.slurm.present);
	CHECK_STREQ(a.slurm.job_id, "2");
	CHECK_STREQ(a.slurm.step_id, "0");
	CHECK_STREQ(a.slurm.node, "vm");
	CHECK_EQ(a.slurm.proc_id, 0);
	CHECK_EQ(a.slurm.ntasks, 1);
	CHECK_EQ(a.slurm.cpus_on_node, 1);
	/* The mask shows both CPUs of the node; the job has one. */
	CHECK_EQ(a.cpus_affinity, 2);
	CHECK_EQ(a.cpus, 1);
	CHECK_EQ(a.cpus_source, COHORT_SRC_SLURM_CPUS);
	CHECK(a.ram_total > 0);
}

TEST(alloc_slurm_v2_written)
{
	struct cohort_probe p;
	struct cohort_alloc a;
	char dir[1024], env[1100];

	fixture_probe(&p, "slurm-v2", dir, sizeof(dir));
	snprintf(env, sizeof(env), "%s/env", dir);
	p.envp = load_env(env);
	CHECK_OK(cohort_alloc_detect(&p, &a));

	/* memory.high on the step (1.8 GiB) is tighter than memory.max on the job (2 GiB). */
	CHECK_EQ_U64(a.mem_limit, 1932735283ULL);
	CHECK_EQ(a.mem_limit_source, COHORT_SRC_CGROUP);
	CHECK_CONTAINS(a.mem_limit_where, "/job_77/step_0/memory.high");
	CHECK_EQ(a.cgroup_version, 2);
	CHECK_STREQ(a.cgroup_path, "/system.slice/slurmstepd.scope/job_77/step_0/user/task_1");
	CHECK_EQ_U64(a.cgroup_usage, 1048576000ULL);
	CHECK_STREQ(a.slurm.job_id, "77");
	CHECK_STREQ(a.slurm.node, "node07");
	CHECK_EQ(a.slurm.local_id, 1);
	CHECK_EQ_U64(a.slurm.mem_per_node, 2ULL << 30);
	CHECK_EQ(a.cpus, 2);
	CHECK_EQ(a.cpus_source, COHORT_SRC_AFFINITY);
}

/* A minimal tree in the test's temp dir: meminfo, status, and a cgroup file. */
static void tiny_tree(const char *cgroup_line)
{
	const char *t = test_tmpdir();

	write_file("proc/meminfo", "MemTotal:       16384000 kB\nMemFree:  1000 kB\n"
	           "MemAvailable:   8192000 kB\nSwapTotal: 1024 kB\nSwapFree: 512 kB\n");
	write_file("proc/self/status", "Name:\tx\nCpus_allowed_list:\t0-3,8,10-11\n");
	write_file("proc/self/cgroup", "%s\n", cgroup_line);
	(void)t;
}

static void tiny_probe(struct cohort_probe *p, const char **envp)
{
	static char proc[1024], cg[1024];

	snprintf(proc, sizeof(proc), "%s/proc", test_tmpdir());
	snprintf(cg, sizeof(cg), "%s/cgroup", test_tmpdir());
	memset(p, 0, sizeof(*p));
	p->proc_root = proc;
	p->cgroup_root = cg;
	p->shm_path = test_tmpdir();
	p->envp = envp;
}

TEST(alloc_falls_back_to_slurm_mem_per_node)
{
	const char *env[] = { "SLURM_JOB_ID=9", "SLURM_MEM_PER_NODE=4096", NULL };
	struct cohort_probe p;
	struct cohort_alloc a;

	tiny_tree("0::/nowhere");
	tiny_probe(&p, env);
	CHECK_OK(cohort_alloc_detect(&p, &a));
	CHECK_EQ(a.cgroup_version, 0);
	CHECK_EQ_U64(a.mem_limit, 4ULL << 30);
	CHECK_EQ(a.mem_limit_source, COHORT_SRC_SLURM_MEM_PER_NODE);
	CHECK_EQ(a.cpus, 7);       /* 0-3,8,10-11 */
	CHECK_EQ_U64(a.ram_total, 16384000ULL * 1024);
	CHECK_EQ_U64(a.ram_available, 8192000ULL * 1024);
	CHECK_EQ_U64(a.swap_total, 1024 * 1024);
	CHECK(a.shm_known);
}

/* Tasks of one step on a node share its limit: each gets its share. */
TEST(alloc_tasks_on_a_node_share_its_limit)
{
	const char *four[] = { "SLURM_JOB_ID=9", "SLURM_STEP_ID=0", "SLURM_MEM_PER_NODE=1200",
	                       "SLURM_STEP_TASKS_PER_NODE=4", "SLURM_NODEID=0", NULL };
	const char *mixed[] = { "SLURM_JOB_ID=9", "SLURM_STEP_ID=0", "SLURM_MEM_PER_NODE=1200",
	                        "SLURM_STEP_TASKS_PER_NODE=3(x2),1", "SLURM_NODEID=2", NULL };
	const char *batch[] = { "SLURM_JOB_ID=9", "SLURM_MEM_PER_NODE=1200", "SLURM_TASKS_PER_NODE=4", NULL };
	struct cohort_probe p;
	struct cohort_alloc a;

	tiny_tree("0::/nowhere");
	tiny_probe(&p, four);
	CHECK_OK(cohort_alloc_detect(&p, &a));
	CHECK_EQ(a.slurm.tasks_on_node, 4);
	CHECK_EQ_U64(a.mem_limit, 1200ULL << 20);
	CHECK_EQ_U64(a.task_share, 300ULL << 20);
	/* Node 2 of "3(x2),1" has one task: the limit is its alone. */
	tiny_probe(&p, mixed);
	CHECK_OK(cohort_alloc_detect(&p, &a));
	CHECK_EQ(a.slurm.tasks_on_node, 1);
	CHECK_EQ_U64(a.task_share, 0);
	/* A batch script is one process, whatever the job's tasks: no step, no share. */
	tiny_probe(&p, batch);
	CHECK_OK(cohort_alloc_detect(&p, &a));
	CHECK_EQ(a.slurm.tasks_on_node, -1);
	CHECK_EQ_U64(a.task_share, 0);
}

TEST(alloc_tasks_per_node_lists)
{
	CHECK_EQ(cohort__tasks_on_node("4", 0), 4);
	CHECK_EQ(cohort__tasks_on_node("4", -1), 4);
	CHECK_EQ(cohort__tasks_on_node("4(x3)", 2), 4);
	CHECK_EQ(cohort__tasks_on_node("2(x3),1", 1), 2);
	CHECK_EQ(cohort__tasks_on_node("2(x3),1", 3), 1);
	CHECK_EQ(cohort__tasks_on_node("2(x3),1", 4), -1);   /* not in the list */
	CHECK_EQ(cohort__tasks_on_node("2(x3),1", -1), -1);  /* no SLURM_NODEID */
	CHECK_EQ(cohort__tasks_on_node("", 0), -1);
	CHECK_EQ(cohort__tasks_on_node(NULL, 0), -1);
	CHECK_EQ(cohort__tasks_on_node("0", 0), -1);
	CHECK_EQ(cohort__tasks_on_node("2(x", 0), -1);
	CHECK_EQ(cohort__tasks_on_node("2(y3)", 0), -1);
	CHECK_EQ(cohort__tasks_on_node("2,,1", 0), -1);
	CHECK_EQ(cohort__tasks_on_node("2 (x3)", 0), -1);
	CHECK_EQ(cohort__tasks_on_node("99999999999999999999", 0), -1);
}

TEST(alloc_falls_back_to_slurm_mem_per_cpu)
{
	const char *env[] = { "SLURM_JOB_ID=9", "SLURM_MEM_PER_CPU=1000", "SLURM_CPUS_ON_NODE=3", NULL };
	struct cohort_probe p;
	struct cohort_alloc a;

	tiny_tree("4:memory:/gone");   /* v1 line, but no v1 hierarchy here */
	tiny_probe(&p, env);
	CHECK_OK(cohort_alloc_detect(&p, &a));
	CHECK_EQ_U64(a.mem_limit, 3000ULL << 20);
	CHECK_EQ(a.mem_limit_source, COHORT_SRC_SLURM_MEM_PER_CPU);
	CHECK_EQ(a.cpus, 3);
	CHECK_EQ(a.cpus_source, COHORT_SRC_SLURM_CPUS);
}

TEST(alloc_falls_back_to_memtotal)
{
	const char *env[] = { "HOME=/root", NULL };
	struct cohort_probe p;
	struct cohort_alloc a;

	tiny_tree("0::/");
	tiny_probe(&p, env);
	CHECK_OK(cohort_alloc_detect(&p, &a));
	CHECK(!a.slurm.present);
	CHECK_EQ_U64(a.mem_limit, 16384000ULL * 1024);
	CHECK_EQ(a.mem_limit_source, COHORT_SRC_MEMTOTAL);
	CHECK_EQ(a.slurm.local_id, -1);
}

TEST(alloc_v1_container_path_and_garbage_levels)
{
	const char *env[] = { NULL };
	struct cohort_probe p;
	struct cohort_alloc a;

	/* The container sees its own cgroup as the root of the mount. */
	tiny_tree("5:memory:/docker/abc/job_5/step_1");
	write_file("cgroup/memory/job_5/step_1/memory.limit_in_bytes", "9223372036854771712\n");
	write_file("cgroup/memory/job_5/step_1/memory.usage_in_bytes", "100\n");
	write_file("cgroup/memory/job_5/memory.limit_in_bytes", "not a number\n");
	write_file("cgroup/memory/memory.limit_in_bytes", "1073741824\n");
	write_file("cgroup/memory/memory.usage_in_bytes", "4096\n");
	tiny_probe(&p, env);
	CHECK_OK(cohort_alloc_detect(&p, &a));
	CHECK_EQ(a.cgroup_version, 1);
	CHECK_EQ_U64(a.mem_limit, 1ULL << 30);
	CHECK_EQ(a.mem_limit_source, COHORT_SRC_CGROUP);
	CHECK_EQ_U64(a.cgroup_usage, 4096);
}

TEST(alloc_rejects_unreadable_meminfo)
{
	const char *env[] = { NULL };
	struct cohort_probe p;
	struct cohort_alloc a;

	tiny_tree("0::/");
	tiny_probe(&p, env);
	write_file("proc/meminfo", "MemFree: 10 kB\n");
	CHECK_EQ(cohort_alloc_detect(&p, &a), COHORT_EPARSE);
	write_file("proc/meminfo", "MemTotal: 10 MB\n");
	CHECK_EQ(cohort_alloc_detect(&p, &a), COHORT_EPARSE);
	write_file("proc/meminfo", "MemTotal: 99999999999999999999999 kB\n");
	CHECK_EQ(cohort_alloc_detect(&p, &a), COHORT_EPARSE);
	unlink("proc/meminfo");
	CHECK_EQ(cohort_alloc_detect(&p, &a), -ENOENT);
}

TEST(alloc_odd_cpu_lists_and_env)
{
	const char *env[] = { "SLURM_JOB_ID=1", "SLURM_CPUS_ON_NODE=two", "SLURM_MEM_PER_NODE=-5", NULL };
	struct cohort_probe p;
	struct cohort_alloc a;

	tiny_tree("0::/");
	write_file("proc/self/status", "Cpus_allowed_list:\t3-1\n");
	tiny_probe(&p, env);
	CHECK_OK(cohort_alloc_detect(&p, &a));
	CHECK(a.cpus >= 1);                      /* the bad mask is ignored, not trusted */
	CHECK_EQ(a.slurm.cpus_on_node, -1);
	CHECK_EQ_U64(a.slurm.mem_per_node, 0);
	CHECK_EQ(a.mem_limit_source, COHORT_SRC_MEMTOTAL);
}

TEST(alloc_live_system)
{
	struct cohort_alloc a;
	struct sysinfo si;
	cpu_set_t set;

	CHECK_OK(cohort_alloc_detect(NULL, &a));
	CHECK_OK(sysinfo(&si));
	CHECK_EQ_U64(a.ram_total / 4096, (uint64_t)si.totalram * si.mem_unit / 4096);
	CHECK_OK(sched_getaffinity(0, sizeof(set), &set));
	CHECK_EQ(a.cpus_affinity, CPU_COUNT(&set));
	CHECK(a.mem_limit > 0 && a.mem_limit <= a.ram_total ? 1 : a.mem_limit_source == COHORT_SRC_CGROUP);
	CHECK(a.shm_known);
}
