/*
 * alloc.c - what this job may really use on this node.
 *
 * The cgroup limit is the truth; SLURM's variables explain it; MemTotal is
 * the last resort. We always start from <proc>/self/cgroup and walk up to
 * the root of the hierarchy, because SLURM versions name their directories
 * differently, and because the limit sits on the job (or step) level while
 * the task level shows "unlimited".
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/*
 * cgroup v1 writes "no limit" as PAGE_COUNTER_MAX * PAGE_SIZE, which is
 * 0x7FFFFFFFFFFFF000 with 4 KiB pages and a little different with larger
 * pages. Anything at or above 2^62 bytes is no limit.
 */
#define V1_UNLIMITED (1ULL << 62)

const char *cohort_source_name(enum cohort_source src)
{
	switch (src) {
	case COHORT_SRC_CGROUP:             return "cgroup";
	case COHORT_SRC_SLURM_MEM_PER_NODE: return "SLURM_MEM_PER_NODE";
	case COHORT_SRC_SLURM_MEM_PER_CPU:  return "SLURM_MEM_PER_CPU";
	case COHORT_SRC_MEMTOTAL:           return "MemTotal";
	case COHORT_SRC_AFFINITY:           return "affinity";
	case COHORT_SRC_SLURM_CPUS:         return "SLURM_CPUS_ON_NODE";
	case COHORT_SRC_NPROC:              return "nproc";
	case COHORT_SRC_SLURM_JOB:          return "scontrol show job";
	case COHORT_SRC_NONE:
		break;
	}
	return "unknown";
}

/* Count CPUs in a list such as "0-3,8,10-11". Returns 0 on odd contents. */
static unsigned count_cpu_list(const char *s)
{
	unsigned n = 0;
	const char *p = s;

	while (*p && *p != '\n') {
		uint64_t a, b;

		if (cohort__parse_u64(p, &a, &p) < 0 || a > (1u << 22))
			return 0;
		b = a;
		if (*p == '-') {
			if (cohort__parse_u64(p + 1, &b, &p) < 0 || b < a || b > (1u << 22))
				return 0;
		}
		n += (unsigned)(b - a + 1);
		if (*p == ',')
			p++;
		else if (*p && *p != '\n')
			return 0;
	}
	return n;
}

static void detect_cpus(const struct cohort_probe *pr, bool real, struct cohort_alloc *a)
{
	char buf[8192];
	const char *line;

	if (cohort__slurpf(buf, sizeof(buf), "%s/self/status", pr->proc_root) >= 0 &&
	    (line = strstr(buf, "\nCpus_allowed_list:")) != NULL) {
		line += strlen("\nCpus_allowed_list:");
		while (*line == ' ' || *line == '\t')
			line++;
		a->cpus_affinity = count_cpu_list(line);
	}
	if (a->cpus_affinity == 0 && real) {
		cpu_set_t set;

		if (sched_getaffinity(0, sizeof(set), &set) == 0)
			a->cpus_affinity = (unsigned)CPU_COUNT(&set);
	}
	if (a->cpus_affinity > 0) {
		a->cpus = a->cpus_affinity;
		a->cpus_source = COHORT_SRC_AFFINITY;
	} else {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		a->cpus = n > 0 ? (unsigned)n : 1;
		a->cpus_source = COHORT_SRC_NPROC;
	}
	/*
	 * Without task binding a step's mask may show every CPU of the node,
	 * while the job was given fewer: SLURM's count is then the truth.
	 */
	if (a->slurm.cpus_on_node > 0 && (unsigned long)a->slurm.cpus_on_node < a->cpus) {
		a->cpus = (unsigned)a->slurm.cpus_on_node;
		a->cpus_source = COHORT_SRC_SLURM_CPUS;
	}
}

static long env_long(const char *const *envp, const char *name)
{
	const char *v = cohort__getenv(envp, name);
	uint64_t n;
	const char *end;

	if (!v || cohort__parse_u64(v, &n, &end) < 0 || *end != '\0' || n > (uint64_t)LONG_MAX)
		return -1;
	return (long)n;
}

static uint64_t env_mb(const char *const *envp, const char *name)
{
	const char *v = cohort__getenv(envp, name);
	uint64_t n;
	const char *end;

	if (!v || cohort__parse_u64(v, &n, &end) < 0 || *end != '\0' ||
	    __builtin_mul_overflow(n, 1ULL << 20, &n))
		return 0;
	return n;
}

static void env_str(const char *const *envp, const char *name, char *dst, size_t size)
{
	const char *v = cohort__getenv(envp, name);

	cohort__strlcpy(dst, v ? v : "", size);
}

/*
 * The tasks on this node from a SLURM tasks-per-node list: "4", "4(x3)",
 * "2(x3),1". One count for every node, or this node's by its index
 * (SLURM_NODEID) in the list; -1 when it cannot be told.
 */
long cohort__tasks_on_node(const char *list, long node_index)
{
	const char *p = list;
	long node = 0, first = -1, mine = -1;
	bool uniform = true;

	if (!list || !*list)
		return -1;
	while (*p) {
		uint64_t count, times = 1;
		const char *end;

		if (cohort__parse_u64(p, &count, &end) < 0 || end == p || count == 0 || count > 1000000)
			return -1;
		p = end;
		if (*p == '(') {
			if (p[1] != 'x' || cohort__parse_u64(p + 2, &times, &end) < 0 || *end != ')' ||
			    times == 0 || times > 1000000)
				return -1;
			p = end + 1;
		}
		if (first < 0)
			first = (long)count;
		else if ((long)count != first)
			uniform = false;
		if (node_index >= node && node_index < node + (long)times)
			mine = (long)count;
		node += (long)times;
		if (*p == ',')
			p++;
		else if (*p)
			return -1;
	}
	return uniform ? first : mine;
}

static void detect_slurm(const char *const *envp, struct cohort_slurm *s)
{
	memset(s, 0, sizeof(*s));
	env_str(envp, "SLURM_JOB_ID", s->job_id, sizeof(s->job_id));
	s->present = s->job_id[0] != '\0';
	env_str(envp, "SLURM_STEP_ID", s->step_id, sizeof(s->step_id));
	env_str(envp, "SLURMD_NODENAME", s->node, sizeof(s->node));
	s->local_id = env_long(envp, "SLURM_LOCALID");
	s->proc_id = env_long(envp, "SLURM_PROCID");
	s->ntasks = env_long(envp, "SLURM_NTASKS");
	s->cpus_on_node = env_long(envp, "SLURM_CPUS_ON_NODE");
	s->mem_per_node = env_mb(envp, "SLURM_MEM_PER_NODE");
	s->mem_per_cpu = env_mb(envp, "SLURM_MEM_PER_CPU");
	s->tasks_on_node = cohort__tasks_on_node(cohort__getenv(envp, "SLURM_STEP_TASKS_PER_NODE"),
	                                         env_long(envp, "SLURM_NODEID"));
}

void cohort__alloc_share(struct cohort_alloc *a)
{
	a->task_share = 0;
	if (!a->slurm.present || a->slurm.tasks_on_node <= 1 || !a->mem_limit ||
	    a->mem_limit_source == COHORT_SRC_MEMTOTAL)
		return;
	/* A limit on the task's own cgroup is its alone. */
	if (a->mem_limit_source == COHORT_SRC_CGROUP && strstr(a->mem_limit_where, "/task_"))
		return;
	a->task_share = a->mem_limit / (uint64_t)a->slurm.tasks_on_node;
}

static int read_value(const char *dir, const char *file, uint64_t *ret)
{
	char buf[128];
	ssize_t n = cohort__slurpf(buf, sizeof(buf), "%s/%s", dir, file);

	if (n < 0)
		return (int)n;
	return cohort__parse_cgroup_value(buf, ret);
}

static void detect_cgroup(const struct cohort_probe *pr, struct cohort_alloc *a)
{
	struct cohort__memcg mc;
	char dir[COHORT_PATH_MAX], *leaf = mc.dir;
	size_t blen;
	uint64_t best = UINT64_MAX, v;
	static const char *const v2_files[] = { "memory.max", "memory.high" };

	if (cohort__memory_cgroup(pr, 0, &mc) < 0)
		return;
	a->cgroup_version = mc.version;
	cohort__strlcpy(a->cgroup_path, mc.rel, sizeof(a->cgroup_path));
	blen = strlen(mc.base);

	cohort__strlcpy(dir, leaf, sizeof(dir));
	for (;;) {
		if (a->cgroup_version == 1) {
			if (read_value(dir, "memory.limit_in_bytes", &v) == 0 &&
			    v < V1_UNLIMITED && v <= best) {
				best = v;
				cohort__pathf(a->mem_limit_where, sizeof(a->mem_limit_where),
				              "%s/memory.limit_in_bytes", dir);
			}
		} else {
			for (size_t i = 0; i < COHORT_ARRAY_SIZE(v2_files); i++)
				if (read_value(dir, v2_files[i], &v) == 0 && v != UINT64_MAX && v <= best) {
					best = v;
					cohort__pathf(a->mem_limit_where, sizeof(a->mem_limit_where),
					              "%s/%s", dir, v2_files[i]);
				}
		}
		if (strlen(dir) <= blen)
			break;
		/* Up one level, never above the hierarchy's root. */
		char *slash = strrchr(dir, '/');
		if (!slash || (size_t)(slash - dir) < blen)
			break;
		*slash = '\0';
	}

	if (best != UINT64_MAX) {
		char limdir[COHORT_PATH_MAX];
		char *slash;

		a->mem_limit = best;
		a->mem_limit_source = COHORT_SRC_CGROUP;
		cohort__strlcpy(limdir, a->mem_limit_where, sizeof(limdir));
		slash = strrchr(limdir, '/');
		if (slash)
			*slash = '\0';
		cohort__strlcpy(dir, limdir, sizeof(dir));
	} else {
		cohort__strlcpy(dir, leaf, sizeof(dir));
	}
	if (read_value(dir, a->cgroup_version == 1 ? "memory.usage_in_bytes" : "memory.current",
	               &v) == 0 && v != UINT64_MAX) {
		a->cgroup_usage = v;
		a->cgroup_usage_known = 1;
	}
}

int cohort_meminfo_read(const struct cohort_probe *probe, struct cohort_meminfo *ret)
{
	struct cohort_meminfo mi = { 0 };
	char buf[16384];
	ssize_t n;
	int r;

	n = cohort__slurpf(buf, sizeof(buf), "%s/meminfo", cohort__proc_root(probe));
	if (n < 0)
		return (int)n;
	r = cohort__kv_u64(buf, "MemTotal", true, &mi.total);
	if (r < 0)
		return r == -ENOENT ? COHORT_EPARSE : r;
	if (cohort__kv_u64(buf, "MemAvailable", true, &mi.available) < 0)
		mi.available = 0;
	if (cohort__kv_u64(buf, "SwapTotal", true, &mi.swap_total) < 0)
		mi.swap_total = 0;
	if (cohort__kv_u64(buf, "SwapFree", true, &mi.swap_free) < 0)
		mi.swap_free = 0;
	*ret = mi;
	return 0;
}

int cohort_alloc_detect(const struct cohort_probe *probe, struct cohort_alloc *ret)
{
	struct cohort_probe pr = { 0 };
	struct cohort_alloc a;
	struct statvfs sv;
	struct cohort_meminfo mi;
	int r;

	if (probe)
		pr = *probe;
	bool real = !pr.proc_root;
	if (!pr.proc_root)
		pr.proc_root = "/proc";
	if (!pr.cgroup_root)
		pr.cgroup_root = "/sys/fs/cgroup";
	if (!pr.shm_path)
		pr.shm_path = "/dev/shm";

	memset(&a, 0, sizeof(a));
	detect_slurm(pr.envp, &a.slurm);
	detect_cpus(&pr, real, &a);

	r = cohort_meminfo_read(&pr, &mi);
	if (r < 0)
		return r;
	a.ram_total = mi.total;
	a.ram_available = mi.available;
	a.swap_total = mi.swap_total;
	a.swap_free = mi.swap_free;

	if (statvfs(pr.shm_path, &sv) == 0) {
		a.shm_size = (uint64_t)sv.f_blocks * sv.f_frsize;
		a.shm_free = (uint64_t)sv.f_bavail * sv.f_frsize;
		a.shm_known = 1;
	}

	detect_cgroup(&pr, &a);
	if (a.mem_limit_source == COHORT_SRC_NONE && a.slurm.mem_per_node) {
		a.mem_limit = a.slurm.mem_per_node;
		a.mem_limit_source = COHORT_SRC_SLURM_MEM_PER_NODE;
		cohort__strlcpy(a.mem_limit_where, "SLURM_MEM_PER_NODE", sizeof(a.mem_limit_where));
	}
	if (a.mem_limit_source == COHORT_SRC_NONE && a.slurm.mem_per_cpu) {
		uint64_t cpus = a.slurm.cpus_on_node > 0 ? (uint64_t)a.slurm.cpus_on_node : a.cpus;

		if (!__builtin_mul_overflow(a.slurm.mem_per_cpu, cpus, &a.mem_limit)) {
			a.mem_limit_source = COHORT_SRC_SLURM_MEM_PER_CPU;
			cohort__pathf(a.mem_limit_where, sizeof(a.mem_limit_where),
			              "SLURM_MEM_PER_CPU x %llu CPUs", (unsigned long long)cpus);
		}
	}
	if (a.mem_limit_source == COHORT_SRC_NONE) {
		a.mem_limit = a.ram_total;
		a.mem_limit_source = COHORT_SRC_MEMTOTAL;
		cohort__pathf(a.mem_limit_where, sizeof(a.mem_limit_where), "%s/meminfo", pr.proc_root);
	}
	cohort__alloc_share(&a);
	*ret = a;
	return 0;
}

int cohort_alloc_ask_slurm(const struct cohort_probe *probe, struct cohort_alloc *alloc)
{
	struct cohort_slurm_job job;
	uint64_t mem = 0;
	char where[COHORT_PATH_MAX], a[32];
	int r;

	if (!alloc)
		return -EINVAL;
	if (!alloc->slurm.present || alloc->mem_limit_source != COHORT_SRC_MEMTOTAL ||
	    alloc->slurm.mem_per_node || alloc->slurm.mem_per_cpu)
		return 0;
	r = cohort_slurm_job_read(probe, alloc->slurm.job_id, &job);
	if (r < 0)
		return r;

	if (job.mem_per_node) {
		mem = job.mem_per_node;
		cohort__pathf(where, sizeof(where), "scontrol show job %s: MinMemoryNode=%s",
		              job.job_id, cohort_size_format(mem, a, sizeof(a)));
	} else if (job.mem_per_cpu) {
		/* The job's CPUs on this node, which SLURM multiplies by; not the step's. */
		uint64_t cpus = alloc->slurm.cpus_on_node > 0 ? (uint64_t)alloc->slurm.cpus_on_node :
		                job.num_nodes == 1 && job.num_cpus > 0 ? (uint64_t)job.num_cpus :
		                alloc->cpus;

		if (__builtin_mul_overflow(job.mem_per_cpu, cpus, &mem))
			return 0;
		cohort__pathf(where, sizeof(where), "scontrol show job %s: MinMemoryCPU=%s x %llu CPUs",
		              job.job_id, cohort_size_format(job.mem_per_cpu, a, sizeof(a)),
		              (unsigned long long)cpus);
	} else if (job.mem_tres && job.num_nodes > 0) {
		/* No memory asked for: the job was given its nodes' memory, TRES tells how much. */
		mem = job.mem_tres / (uint64_t)job.num_nodes;
		cohort__pathf(where, sizeof(where), "scontrol show job %s: TRES mem=%s over %ld node%s",
		              job.job_id, cohort_size_format(job.mem_tres, a, sizeof(a)), job.num_nodes,
		              job.num_nodes == 1 ? "" : "s");
	}
	if (!mem || (alloc->ram_total && mem > alloc->ram_total))
		return 0;
	alloc->mem_limit = mem;
	alloc->mem_limit_source = COHORT_SRC_SLURM_JOB;
	cohort__strlcpy(alloc->mem_limit_where, where, sizeof(alloc->mem_limit_where));
	cohort__alloc_share(alloc);
	return 1;
}
