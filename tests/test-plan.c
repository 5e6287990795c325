/* test-plan.c - verdicts on plans, with figures and fixes. */
#include "harness.h"

static struct cohort_alloc alloc_6g_slurm(void)
{
	struct cohort_alloc a;

	memset(&a, 0, sizeof(a));
	a.cpus = 4;
	a.cpus_source = COHORT_SRC_AFFINITY;
	a.mem_limit = 6ULL << 30;
	a.mem_limit_source = COHORT_SRC_CGROUP;
	strcpy(a.mem_limit_where, "/sys/fs/cgroup/memory/slurm/uid_1/job_3/memory.limit_in_bytes");
	a.cgroup_version = 1;
	a.ram_total = 64ULL << 30;
	a.ram_available = 60ULL << 30;
	a.shm_size = 32ULL << 30;
	a.shm_free = 1ULL << 30;
	a.shm_known = 1;
	a.slurm.present = 1;
	strcpy(a.slurm.job_id, "3");
	return a;
}

static const struct cohort_problem *find(const struct cohort_verdict *v, enum cohort_problem_kind k)
{
	for (int i = 0; i < v->nproblems; i++)
		if (v->problems[i].kind == k)
			return &v->problems[i];
	return NULL;
}

TEST(plan_fits)
{
	struct cohort_alloc a = alloc_6g_slurm();
	struct cohort_plan p = { .workers = 4, .mem_per_worker = 1ULL << 30, .shm = 512ULL << 20 };
	struct cohort_verdict v;

	CHECK_OK(cohort_plan_check(&a, &p, &v));
	CHECK(v.fits);
	CHECK_EQ(v.nproblems, 0);
	CHECK_EQ_U64(v.total, (4ULL << 30) + (512ULL << 20));
	CHECK_EQ(v.workers_fit, 5);   /* (6 G - 0.5 G) / 1 G */
}

TEST(plan_over_the_limit_names_figures_and_fix)
{
	struct cohort_alloc a = alloc_6g_slurm();
	struct cohort_plan p = { .workers = 8, .mem_per_worker = 1ULL << 30, .shm = 512ULL << 20 };
	struct cohort_verdict v;
	const struct cohort_problem *pr;

	CHECK_OK(cohort_plan_check(&a, &p, &v));
	CHECK(!v.fits);
	pr = find(&v, COHORT_PROBLEM_MEM_LIMIT);
	CHECK(pr && pr->fatal);
	CHECK_CONTAINS(pr->message, "8 workers x 1.0 GiB + 512.0 MiB of shared segments = 8.5 GiB");
	CHECK_CONTAINS(pr->message, "above the 6.0 GiB memory limit");
	CHECK_CONTAINS(pr->message, "job_3/memory.limit_in_bytes");
	CHECK_CONTAINS(pr->message, "charged to the job's memory too");
	CHECK_CONTAINS(pr->fix, "request --mem=9G");
	CHECK_CONTAINS(pr->fix, "--workers 5");
	CHECK_CONTAINS(pr->fix, "at most 704.0 MiB per worker");
	CHECK_STREQ(cohort_problem_name(pr->kind), "mem_limit");
	/* 8 workers on 4 CPUs is a warning, not a reason to fail. */
	pr = find(&v, COHORT_PROBLEM_CPUS);
	CHECK(pr && !pr->fatal);
	CHECK_CONTAINS(pr->fix, "request -c 8");
}

TEST(plan_shm_too_small)
{
	struct cohort_alloc a = alloc_6g_slurm();
	struct cohort_plan p = { .workers = 2, .mem_per_worker = 1ULL << 30, .shm = 2ULL << 30 };
	struct cohort_verdict v;
	const struct cohort_problem *pr;

	CHECK_OK(cohort_plan_check(&a, &p, &v));
	CHECK(!v.fits);
	pr = find(&v, COHORT_PROBLEM_SHM);
	CHECK(pr && pr->fatal);
	CHECK_CONTAINS(pr->message, "need 2.0 GiB but /dev/shm has 1.0 GiB free of 32.0 GiB");
	CHECK_CONTAINS(pr->message, "SIGBUS");
	CHECK(find(&v, COHORT_PROBLEM_MEM_LIMIT) == NULL);
}

TEST(plan_above_node_ram)
{
	struct cohort_alloc a = alloc_6g_slurm();
	struct cohort_plan p = { .workers = 2, .mem_per_worker = 40ULL << 30 };
	struct cohort_verdict v;
	const struct cohort_problem *pr;

	a.mem_limit = 128ULL << 30;   /* a limit looser than the node */
	CHECK_OK(cohort_plan_check(&a, &p, &v));
	CHECK(!v.fits);
	pr = find(&v, COHORT_PROBLEM_RAM);
	CHECK(pr && pr->fatal);
	CHECK_CONTAINS(pr->message, "above the node's 64.0 GiB of RAM");
	CHECK_CONTAINS(pr->fix, "--workers 1 or fewer");

	/* Not one worker fits the node: no "--workers 0". */
	p.mem_per_worker = 100ULL << 30;
	a.mem_limit = 1ULL << 40;
	CHECK_OK(cohort_plan_check(&a, &p, &v));
	pr = find(&v, COHORT_PROBLEM_RAM);
	CHECK(pr && pr->fatal);
	CHECK_MSG(strstr(pr->fix, "--workers 0") == NULL, "fix: %s", pr->fix);
	CHECK_CONTAINS(pr->fix, "make each worker smaller than 64.0 GiB (the node's RAM)");
}

TEST(plan_default_workers_and_headroom_warning)
{
	struct cohort_alloc a = alloc_6g_slurm();
	struct cohort_plan p = { .mem_per_worker = 1ULL << 30 };
	struct cohort_verdict v;
	const struct cohort_problem *pr;

	a.cgroup_usage = 3ULL << 30;
	a.cgroup_usage_known = 1;
	CHECK_OK(cohort_plan_check(&a, &p, &v));
	CHECK_EQ(v.workers, 4);
	CHECK(v.fits);
	pr = find(&v, COHORT_PROBLEM_MEM_LIMIT);
	CHECK(pr && !pr->fatal);
	CHECK_CONTAINS(pr->message, "already uses 3.0 GiB, leaving 3.0 GiB");
}

TEST(plan_overflow_is_an_error)
{
	struct cohort_alloc a = alloc_6g_slurm();
	struct cohort_plan p = { .workers = 100000, .mem_per_worker = UINT64_MAX / 1000 };
	struct cohort_verdict v;

	CHECK_EQ(cohort_plan_check(&a, &p, &v), COHORT_EPLAN);
}

TEST(plan_outside_slurm_fix_does_not_say_srun)
{
	struct cohort_alloc a = alloc_6g_slurm();
	struct cohort_plan p = { .workers = 1, .shm = 7ULL << 30 };
	struct cohort_verdict v;
	const struct cohort_problem *pr;

	a.slurm.present = 0;
	a.shm_free = 30ULL << 30;
	CHECK_OK(cohort_plan_check(&a, &p, &v));
	pr = find(&v, COHORT_PROBLEM_MEM_LIMIT);
	CHECK(pr && pr->fatal);
	CHECK(strstr(pr->fix, "--mem") == NULL);
	CHECK_CONTAINS(pr->fix, "at least 7.0 GiB");
}
