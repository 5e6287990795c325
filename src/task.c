/*
 * task.c - which task of a job a supervisor is (a SLURM step's task, an
 * MPI rank), the default name of its recording, and the header's "task"
 * object (docs/recording.md).
 *
 * Several supervisors of one job run side by side: `srun -n 4 cohort run`
 * starts four, `mpirun -np 4 cohort run` too. Each must know its task so
 * that its recording has a name of its own and its workers a job-wide rank.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static long env_long(const char *const *envp, const char *name)
{
	const char *v = cohort__getenv(envp, name);
	const char *end;
	uint64_t n;

	if (!v || cohort__parse_u64(v, &n, &end) < 0 || *end != '\0' || end == v || n > 100000000)
		return -1;
	return (long)n;
}

void cohort__name_token(char *dst, const char *src, size_t size)
{
	size_t i = 0;

	for (; src && src[i] && i + 1 < size; i++) {
		char c = src[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		          c == '-' || c == '_' || (c == '.' && i > 0);

		dst[i] = ok ? c : '-';
	}
	dst[i] = '\0';
}

/* The MPI rank of the caller, from the launchers' variables, or -1. */
static long mpi_rank(const char *const *envp)
{
	static const char *const vars[] = { "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK",
	                                    "MV2_COMM_WORLD_RANK" };

	for (size_t i = 0; i < COHORT_ARRAY_SIZE(vars); i++) {
		long v = env_long(envp, vars[i]);

		if (v >= 0)
			return v;
	}
	return -1;
}

static long first_of(const char *const *envp, const char *a, const char *b)
{
	long v = env_long(envp, a);

	return v >= 0 ? v : env_long(envp, b);
}

int cohort_task_detect(const struct cohort_probe *probe, const struct cohort_alloc *alloc,
                       const char *job, unsigned workers, struct cohort_task *ret)
{
	const char *const *envp = probe ? probe->envp : NULL;
	const struct cohort_slurm *s;
	struct cohort_task t;
	long rank, size;
	bool by_mpirun;

	if (!alloc || !ret)
		return -EINVAL;
	s = &alloc->slurm;
	memset(&t, 0, sizeof(t));
	t.id = t.ntasks = t.node_id = t.tasks_on_node = t.local_id = -1;
	cohort__name_token(t.job, s->present ? s->job_id : job, sizeof(t.job));
	if (s->present) {
		cohort__name_token(t.step, s->step_id, sizeof(t.step));
		/* A batch script has no SLURM_STEP_ID: its cgroup names the step. */
		if (!t.step[0] && strstr(alloc->cgroup_path, "/step_batch"))
			cohort__strlcpy(t.step, "batch", sizeof(t.step));
		cohort__name_token(t.node, s->node, sizeof(t.node));
		t.node_id = env_long(envp, "SLURM_NODEID");
	}
	rank = mpi_rank(envp);
	size = first_of(envp, "OMPI_COMM_WORLD_SIZE", "PMI_SIZE");
	/*
	 * SLURM's ids tell the tasks apart when srun started them (an MPI rank
	 * there, from srun --mpi=pmix, is the same number, in PMIX_RANK only).
	 * Ranks that mpirun started inherit the ids of the shell that ran
	 * mpirun, the same for all, or none, or, across nodes, those of the
	 * orted that srun started on their node (ranks 0 and 3 of `mpirun
	 * -np 6` on 3 nodes both see SLURM_PROCID 0): the MPI rank is then the
	 * task, for every rank alike, also for one whose rank happens to be its
	 * orted's task id. Open MPI's mpirun, unlike srun, sets
	 * OMPI_COMM_WORLD_RANK.
	 */
	by_mpirun = env_long(envp, "OMPI_COMM_WORLD_RANK") >= 0;
	if (s->present && s->proc_id >= 0 && s->step_id[0] && (rank < 0 || (rank == s->proc_id && !by_mpirun))) {
		cohort__strlcpy(t.source, "slurm", sizeof(t.source));
		t.id = s->proc_id;
		t.ntasks = s->ntasks;
		t.tasks_on_node = s->tasks_on_node;
		t.local_id = s->local_id;
	} else if (rank >= 0) {
		cohort__strlcpy(t.source, "mpi", sizeof(t.source));
		t.id = rank;
		t.ntasks = size;
		t.local_id = first_of(envp, "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID");
		t.tasks_on_node = first_of(envp, "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS");
		if (!s->present) {
			/* The MPI job: the same in every rank of one mpirun. */
			const char *ns = cohort__getenv(envp, "OMPI_MCA_ess_base_jobid");

			if (!ns || !*ns)
				ns = cohort__getenv(envp, "PMIX_NAMESPACE");
			if (ns && *ns)
				cohort__name_token(t.job, ns, sizeof(t.job));
		}
		cohort__strlcpy(t.step, "mpi", sizeof(t.step));
	} else if (s->present && s->proc_id >= 0 && t.step[0]) {
		/* A batch script: task 0 of its step. */
		cohort__strlcpy(t.source, "slurm", sizeof(t.source));
		t.id = s->proc_id;
		t.ntasks = 1;
		t.tasks_on_node = 1;
		t.local_id = s->local_id;
	}
	if (!t.node[0]) {
		char host[256] = "";

		if (gethostname(host, sizeof(host) - 1) == 0) {
			host[strcspn(host, ".")] = '\0';
			cohort__name_token(t.node, host, sizeof(t.node));
		}
	}
	t.known = t.id >= 0 && t.job[0] && t.step[0];
	if (t.known && workers > 0 && t.id <= LONG_MAX / (long)workers)
		t.rank_offset = t.id * (long)workers;
	*ret = t;
	return 0;
}

/* A name part that stays in its directory and in one file name. */
static bool safe_part(const char *s)
{
	return s && *s && s[0] != '.' && !strchr(s, '/');
}

int cohort_recording_name(const char *job, const struct cohort_task *t, char *buf, size_t size)
{
	int n;

	if (t && t->known)
		job = t->job;
	if (!safe_part(job) || !buf)
		return -EINVAL;
	if (t && t->step[0] && !safe_part(t->step))
		return -EINVAL;
	if (t && t->known)
		n = snprintf(buf, size, "cohort-%s.%s.%ld.ndjson", job, t->step, t->id);
	else if (t && t->step[0])
		n = snprintf(buf, size, "cohort-%s.%s.ndjson", job, t->step);
	else
		n = snprintf(buf, size, "cohort-%s.ndjson", job);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return n;
}
