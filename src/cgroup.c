/*
 * cgroup.c - memory cgroup counters (v1 and v2), pressure, the processes of
 * a cgroup tree, and finding a process's or a SLURM job's cgroup.
 *
 * The cgroup is what the kernel enforces: its usage is what the OOM killer
 * compares with the limit, whatever the processes' RSS or PSS say.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Nesting deeper than this is not a cgroup tree we were meant to walk. */
#define CGROUP_DEPTH_MAX 16

const char *cohort__cgroup_root(const struct cohort_probe *probe)
{
	return probe && probe->cgroup_root ? probe->cgroup_root : "/sys/fs/cgroup";
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool has_file(const char *dir, const char *file)
{
	char path[COHORT_PATH_MAX];

	return cohort__pathf(path, sizeof(path), "%s/%s", dir, file) >= 0 && access(path, F_OK) == 0;
}

/*
 * The directory of a memory cgroup given as an absolute directory under the
 * cgroup root (kept as is), or as a path inside the hierarchy ("/slurm/uid_0/job_5",
 * as /proc/PID/cgroup names it): under <root>/memory when a v1 memory
 * hierarchy is mounted, under <root> otherwise.
 */
int cohort__cgroup_dir(const struct cohort_probe *probe, const char *dir, char *out, size_t size)
{
	const char *root = cohort__cgroup_root(probe);
	size_t rlen = strlen(root);
	char v1[COHORT_PATH_MAX];

	if (!dir || !*dir)
		return -EINVAL;
	if (strstr(dir, "/../") || strncmp(dir, "../", 3) == 0)
		return -EINVAL;
	if (strncmp(dir, root, rlen) == 0 && (dir[rlen] == '/' || dir[rlen] == '\0'))
		return cohort__pathf(out, size, "%s", dir) < 0 ? -ENAMETOOLONG : 0;
	while (*dir == '/')
		dir++;
	if (cohort__pathf(v1, sizeof(v1), "%s/memory", root) >= 0 && is_dir(v1))
		return cohort__pathf(out, size, "%s%s%s", v1, *dir ? "/" : "", dir) < 0 ? -ENAMETOOLONG : 0;
	return cohort__pathf(out, size, "%s%s%s", root, *dir ? "/" : "", dir) < 0 ? -ENAMETOOLONG : 0;
}

/* ---- cgroup.procs of a tree ---- */

static int read_procs(const char *dir, pid_t **pids, size_t *n, size_t *cap)
{
	char path[COHORT_PATH_MAX];
	FILE *f;
	char line[64];
	int r = 0;

	if (cohort__pathf(path, sizeof(path), "%s/cgroup.procs", dir) < 0)
		return -ENAMETOOLONG;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;   /* a directory that is not a cgroup */
	while (fgets(line, sizeof(line), f)) {
		pid_t pid;

		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '\0')
			continue;
		pid = cohort__pid_of_name(line);
		if (!pid) {
			r = COHORT_EPARSE;
			break;
		}
		r = cohort__pids_push(pids, n, cap, pid);
		if (r < 0)
			break;
	}
	fclose(f);
	return r;
}

static int walk_procs(const char *dir, int depth, pid_t **pids, size_t *n, size_t *cap)
{
	struct dirent *de;
	DIR *d;
	int r;

	if (depth > CGROUP_DEPTH_MAX)
		return 0;
	r = read_procs(dir, pids, n, cap);
	if (r < 0)
		return r;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;   /* removed while we walked */
	while ((de = readdir(d)) != NULL) {
		char sub[COHORT_PATH_MAX];

		if (de->d_name[0] == '.')
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (cohort__pathf(sub, sizeof(sub), "%s/%s", dir, de->d_name) < 0 || !is_dir(sub))
			continue;
		r = walk_procs(sub, depth + 1, pids, n, cap);
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

int cohort_pids_cgroup(const struct cohort_probe *probe, const char *dir,
                       pid_t **ret_pids, size_t *ret_n)
{
	char top[COHORT_PATH_MAX];
	pid_t *pids = NULL;
	size_t n = 0, cap = 0;
	int r;

	r = cohort__cgroup_dir(probe, dir, top, sizeof(top));
	if (r < 0)
		return r;
	if (!is_dir(top))
		return -ENOENT;
	r = walk_procs(top, 0, &pids, &n, &cap);
	if (r < 0) {
		free(pids);
		return r;
	}
	cohort__pids_sort_unique(pids, &n);
	*ret_pids = pids;
	*ret_n = n;
	return 0;
}

/* ---- pressure ---- */

static int psi_line(const char *p, double avg[3], uint64_t *total)
{
	static const char *const keys[] = { "avg10=", "avg60=", "avg300=" };

	for (int i = 0; i < 3; i++) {
		char *end;
		size_t klen = strlen(keys[i]);

		while (*p == ' ')
			p++;
		if (strncmp(p, keys[i], klen) != 0)
			return COHORT_EPARSE;
		p += klen;
		if (*p < '0' || *p > '9')
			return COHORT_EPARSE;
		avg[i] = strtod(p, &end);
		if (end == p || avg[i] < 0 || avg[i] > 100.0)
			return COHORT_EPARSE;
		p = end;
	}
	while (*p == ' ')
		p++;
	if (strncmp(p, "total=", 6) != 0 || cohort__parse_u64(p + 6, total, &p) < 0)
		return COHORT_EPARSE;
	return *p == '\n' || *p == '\0' ? 0 : COHORT_EPARSE;
}

int cohort_psi_parse(const char *text, struct cohort_psi *ret)
{
	struct cohort_psi psi;
	double avg[3];
	const char *full;

	if (!text || strncmp(text, "some ", 5) != 0)
		return COHORT_EPARSE;
	memset(&psi, 0, sizeof(psi));
	if (psi_line(text + 5, avg, &psi.some_total_us) < 0)
		return COHORT_EPARSE;
	psi.some_avg10 = avg[0];
	psi.some_avg60 = avg[1];
	psi.some_avg300 = avg[2];
	full = strstr(text, "\nfull ");
	if (full) {
		if (psi_line(full + 6, avg, &psi.full_total_us) < 0)
			return COHORT_EPARSE;
		psi.full_avg10 = avg[0];
		psi.full_avg60 = avg[1];
		psi.full_avg300 = avg[2];
		psi.has_full = 1;
	}
	*ret = psi;
	return 0;
}

int cohort_psi_read(const struct cohort_probe *probe, const char *path, struct cohort_psi *ret)
{
	char buf[512];
	ssize_t n;

	if (path)
		n = cohort__slurp(path, buf, sizeof(buf));
	else
		n = cohort__slurpf(buf, sizeof(buf), "%s/pressure/memory", cohort__proc_root(probe));
	if (n < 0)
		return (int)n;
	return cohort_psi_parse(buf, ret);
}

/* ---- counters ---- */

static uint64_t read_value(const char *dir, const char *file)
{
	char buf[128];
	uint64_t v;

	if (cohort__slurpf(buf, sizeof(buf), "%s/%s", dir, file) < 0 ||
	    cohort__parse_cgroup_value(buf, &v) < 0)
		return COHORT_MEM_UNKNOWN;
	return v;
}

static uint64_t kv(const char *text, const char *key)
{
	uint64_t v;

	if (!text || cohort__kv_u64(text, key, false, &v) < 0)
		return COHORT_MEM_UNKNOWN;
	return v;
}

/* memory.stat can run to several kB (v2 has ~50 keys); read it whole. */
static const char *read_kv_file(const char *dir, const char *file, char *buf, size_t size)
{
	return cohort__slurpf(buf, size, "%s/%s", dir, file) < 0 ? NULL : buf;
}

/*
 * v1 keeps two sets of keys: the cgroup's own pages (rss, cache, ...) and
 * its subtree's (total_rss, total_cache, ...). A worker's cgroup may hold
 * cgroups its program made, so the subtree's set is used whenever it is
 * there, and never mixed with the other: a key missing from the chosen set
 * is unknown rather than taken from the other.
 */
int cohort_cgroup_stat_parse(const char *text, int version, struct cohort_cgstat *ret)
{
	struct cohort_cgstat s;

	if (!text || !ret || (version != 1 && version != 2))
		return -EINVAL;
	if (version == 1) {
		bool total = kv(text, "total_rss") != COHORT_MEM_UNKNOWN;

		s.anon = kv(text, total ? "total_rss" : "rss");
		s.file = kv(text, total ? "total_cache" : "cache");
		s.shmem = kv(text, total ? "total_shmem" : "shmem");
		s.file_mapped = kv(text, total ? "total_mapped_file" : "mapped_file");
		s.inactive_file = kv(text, total ? "total_inactive_file" : "inactive_file");
		s.active_file = kv(text, total ? "total_active_file" : "active_file");
		s.swap = kv(text, total ? "total_swap" : "swap");
	} else {
		s.anon = kv(text, "anon");
		s.file = kv(text, "file");
		s.shmem = kv(text, "shmem");
		s.file_mapped = kv(text, "file_mapped");
		s.inactive_file = kv(text, "inactive_file");
		s.active_file = kv(text, "active_file");
		s.swap = COHORT_MEM_UNKNOWN;   /* v2 counts swap in memory.swap.current */
	}
	if (s.anon == COHORT_MEM_UNKNOWN)
		return COHORT_EPARSE;
	*ret = s;
	return 0;
}

int cohort_cgroup_read_usage(const char *dir, int version, uint64_t *ret_usage,
                             struct cohort_cgstat *ret_stat)
{
	char buf[16384];
	struct cohort_cgstat s;
	uint64_t usage;
	ssize_t n;
	int r;

	if (!dir || !ret_usage || !ret_stat || (version != 1 && version != 2))
		return -EINVAL;
	n = cohort__slurpf(buf, 128, "%s/%s", dir, version == 1 ? "memory.usage_in_bytes" :
	                   "memory.current");
	if (n < 0)
		return (int)n;
	if (cohort__parse_cgroup_value(buf, &usage) < 0 || usage == UINT64_MAX)
		return COHORT_EPARSE;
	n = cohort__slurpf(buf, sizeof(buf), "%s/memory.stat", dir);
	if (n < 0)
		return (int)n;
	r = cohort_cgroup_stat_parse(buf, version, &s);
	if (r < 0)
		return r;
	*ret_usage = usage;
	*ret_stat = s;
	return 0;
}

int cohort_cgroup_read(const struct cohort_probe *probe, const char *dir, struct cohort_cgmem *ret)
{
	char path[COHORT_PATH_MAX], stat[16384], events[2048];
	const char *st, *ev;
	struct cohort_cgmem c;
	struct cohort_cgstat cs;
	bool stat_ok;

	int r = cohort__cgroup_dir(probe, dir, path, sizeof(path));
	if (r < 0)
		return r;
	if (!is_dir(path))
		return -ENOENT;
	memset(&c, 0, sizeof(c));
	cohort__strlcpy(c.dir, path, sizeof(c.dir));
	if (has_file(path, "memory.current"))
		c.version = 2;
	else if (has_file(path, "memory.usage_in_bytes"))
		c.version = 1;
	else
		return COHORT_ENOCGROUP;

	st = read_kv_file(path, "memory.stat", stat, sizeof(stat));
	stat_ok = st && cohort_cgroup_stat_parse(st, c.version, &cs) == 0;
	c.anon = stat_ok ? cs.anon : COHORT_MEM_UNKNOWN;
	c.file = stat_ok ? cs.file : COHORT_MEM_UNKNOWN;
	c.shmem = stat_ok ? cs.shmem : COHORT_MEM_UNKNOWN;
	c.mapped_file = stat_ok ? cs.file_mapped : COHORT_MEM_UNKNOWN;
	c.inactive_file = stat_ok ? cs.inactive_file : COHORT_MEM_UNKNOWN;
	if (c.version == 1) {
		c.usage = read_value(path, "memory.usage_in_bytes");
		c.peak = read_value(path, "memory.max_usage_in_bytes");
		c.limit = read_value(path, "memory.limit_in_bytes");
		/* v1 says "no limit" with a huge page-aligned number. */
		if (c.limit >= (1ULL << 62))
			c.limit = UINT64_MAX;
		/* total_* count the subtree, which is what a job's level needs. */
		c.swap = stat_ok ? cs.swap : COHORT_MEM_UNKNOWN;
		ev = read_kv_file(path, "memory.oom_control", events, sizeof(events));
		c.oom_kill = kv(ev, "oom_kill");
		c.oom = COHORT_MEM_UNKNOWN;
		c.max_events = COHORT_MEM_UNKNOWN;
		c.failcnt = read_value(path, "memory.failcnt");
	} else {
		c.usage = read_value(path, "memory.current");
		c.peak = read_value(path, "memory.peak");
		c.limit = read_value(path, "memory.max");
		c.swap = read_value(path, "memory.swap.current");
		ev = read_kv_file(path, "memory.events", events, sizeof(events));
		c.oom_kill = kv(ev, "oom_kill");
		c.oom = kv(ev, "oom");
		c.max_events = kv(ev, "max");
		c.failcnt = COHORT_MEM_UNKNOWN;
		if (cohort__pathf(stat, sizeof(stat), "%s/memory.pressure", path) >= 0 &&
		    cohort_psi_read(probe, stat, &c.pressure) == 0)
			c.has_pressure = 1;
	}
	*ret = c;
	return 0;
}

/* ---- which cgroup ---- */

/*
 * base + rel, as a directory that exists. Inside a container without a
 * cgroup namespace, /proc/PID/cgroup names the full path while the
 * container sees its own cgroup mounted as the root: drop leading
 * components of rel until the directory exists, else use base itself.
 */
static int existing_dir(const char *base, const char *rel, char *out, size_t size)
{
	const char *r = rel;

	while (r && *r && strcmp(r, "/") != 0) {
		if (cohort__pathf(out, size, "%s%s%s", base, *r == '/' ? "" : "/", r) < 0)
			return -ENAMETOOLONG;
		if (is_dir(out))
			return 0;
		r = strchr(r + 1, '/');
	}
	return cohort__pathf(out, size, "%s", base) < 0 ? -ENAMETOOLONG : 0;
}

int cohort__memory_cgroup(const struct cohort_probe *probe, pid_t pid, struct cohort__memcg *ret)
{
	char buf[8192], v2[COHORT_PATH_MAX] = "", dir[COHORT_PATH_MAX];
	const char *root = cohort__cgroup_root(probe);
	char *line, *save = NULL;
	bool have_v2 = false;
	ssize_t n;

	if (pid == 0)
		n = cohort__slurpf(buf, sizeof(buf), "%s/self/cgroup", cohort__proc_root(probe));
	else
		n = cohort__slurpf(buf, sizeof(buf), "%s/%d/cgroup", cohort__proc_root(probe), (int)pid);
	if (n < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2, *tok, *tsave = NULL;

		if (!c1 || !(c2 = strchr(c1 + 1, ':')))
			continue;
		*c2 = '\0';
		if (strncmp(line, "0:", 2) == 0 && c1 + 1 == c2) {
			cohort__strlcpy(v2, c2 + 1, sizeof(v2));
			have_v2 = true;
			continue;
		}
		for (tok = strtok_r(c1 + 1, ",", &tsave); tok; tok = strtok_r(NULL, ",", &tsave)) {
			if (strcmp(tok, "memory") != 0)
				continue;
			if (cohort__pathf(dir, sizeof(dir), "%s/memory", root) < 0 || !is_dir(dir))
				continue;
			if (existing_dir(dir, c2 + 1, ret->dir, sizeof(ret->dir)) < 0)
				return -ENAMETOOLONG;
			cohort__strlcpy(ret->base, dir, sizeof(ret->base));
			cohort__strlcpy(ret->rel, c2 + 1, sizeof(ret->rel));
			ret->version = 1;
			return 0;
		}
	}
	if (have_v2 && has_file(root, "cgroup.controllers")) {
		if (existing_dir(root, v2, ret->dir, sizeof(ret->dir)) < 0)
			return -ENAMETOOLONG;
		cohort__strlcpy(ret->base, root, sizeof(ret->base));
		cohort__strlcpy(ret->rel, v2, sizeof(ret->rel));
		ret->version = 2;
		return 0;
	}
	return COHORT_ENOCGROUP;
}

int cohort_cgroup_of_pid(const struct cohort_probe *probe, pid_t pid, char *ret_dir, size_t size,
                         int *ret_version)
{
	struct cohort__memcg m;
	int r = cohort__memory_cgroup(probe, pid, &m);

	if (r < 0)
		return r;
	if (strlen(m.dir) >= size)
		return -ENAMETOOLONG;
	cohort__strlcpy(ret_dir, m.dir, size);
	if (ret_version)
		*ret_version = m.version;
	return 0;
}

static bool job_id_valid(const char *id)
{
	size_t len = strlen(id);

	if (len == 0 || len > 20)
		return false;
	for (const char *p = id; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

/*
 * Depth-first search for a directory named want, at most depth levels down.
 * Returns 0, -ENOENT when every directory searched was read and none is
 * named want, or the error of a directory that could not be read (the job
 * may be there: the caller cannot call it gone).
 */
static int find_dir(const char *dir, const char *want, int depth, char *out, size_t size)
{
	struct dirent *de;
	DIR *d;
	int r = -ENOENT, unread = 0;

	if (depth < 0)
		return -ENOENT;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? -ENOENT : -errno;
	while (r == -ENOENT && (de = readdir(d)) != NULL) {
		char sub[COHORT_PATH_MAX];

		if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
			continue;
		if (cohort__pathf(sub, sizeof(sub), "%s/%s", dir, de->d_name) < 0 || !is_dir(sub))
			continue;
		if (strcmp(de->d_name, want) == 0) {
			r = cohort__pathf(out, size, "%s", sub) < 0 ? -ENAMETOOLONG : 0;
			break;
		}
		/* Never descend into another job's tree or a task: the job level is above them. */
		if (strncmp(de->d_name, "job_", 4) == 0 || strncmp(de->d_name, "step_", 5) == 0 ||
		    strncmp(de->d_name, "task_", 5) == 0)
			continue;
		r = find_dir(sub, want, depth - 1, out, size);
		if (r < 0 && r != -ENOENT && r != -ENAMETOOLONG) {
			unread = r;   /* keep looking elsewhere; remember we could not see there */
			r = -ENOENT;
		}
	}
	closedir(d);
	return r == -ENOENT && unread ? unread : r;
}

int cohort_cgroup_find_job(const struct cohort_probe *probe, const char *job_id, char *ret_dir,
                           size_t size)
{
	const char *root = cohort__cgroup_root(probe);
	char want[COHORT_ID_MAX + 8], base[COHORT_PATH_MAX], out[COHORT_PATH_MAX];

	if (!job_id || !job_id_valid(job_id))
		return -EINVAL;
	snprintf(want, sizeof(want), "job_%s", job_id);
	/*
	 * v1: the memory hierarchy, slurm_<node>/uid_<uid>/job_<id>; v2: under
	 * the root. -ENOENT only when a hierarchy was there and read whole.
	 */
	int r = COHORT_ENOCGROUP;

	if (cohort__pathf(base, sizeof(base), "%s/memory", root) >= 0 && is_dir(base)) {
		r = find_dir(base, want, 3, out, sizeof(out));
		if (r == 0)
			goto found;
	}
	if (has_file(root, "cgroup.controllers")) {
		int r2 = find_dir(root, want, 4, out, sizeof(out));

		if (r2 == 0)
			goto found;
		if (r == COHORT_ENOCGROUP || r == -ENOENT)
			r = r2;
	}
	return r;
found:
	if (strlen(out) >= size)
		return -ENAMETOOLONG;
	cohort__strlcpy(ret_dir, out, size);
	return 0;
}
