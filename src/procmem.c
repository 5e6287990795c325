/*
 * procmem.c - what one process costs: statm, smaps_rollup (or summed
 * smaps), status; and which processes make a set (a cgroup's, a tree).
 *
 * A process can exit between any two reads. The kernel then answers ENOENT
 * (its /proc directory is gone), ESRCH (it is going), or an empty file (its
 * address space is gone): all three become -ESRCH, "gone", which callers
 * measuring a set skip.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *cohort__proc_root(const struct cohort_probe *probe)
{
	return probe && probe->proc_root ? probe->proc_root : "/proc";
}

static int gone(int r)
{
	return r == -ENOENT || r == -ESRCH ? -ESRCH : r;
}

int cohort__statm_parse(const char *text, struct cohort_statm *ret)
{
	const char *p = text;
	uint64_t v[3];
	long page = sysconf(_SC_PAGESIZE);

	for (int i = 0; i < 3; i++) {
		if (cohort__parse_u64(p, &v[i], &p) < 0 ||
		    __builtin_mul_overflow(v[i], (uint64_t)page, &v[i]))
			return COHORT_EPARSE;
		if (*p != ' ')
			return COHORT_EPARSE;
	}
	ret->size = v[0];
	ret->rss = v[1];
	ret->shared = v[2];
	return 0;
}

int cohort_proc_statm(const struct cohort_probe *probe, pid_t pid, struct cohort_statm *ret)
{
	char buf[256];
	ssize_t n;

	if (pid <= 0)
		return -EINVAL;
	n = cohort__slurpf(buf, sizeof(buf), "%s/%d/statm", cohort__proc_root(probe), (int)pid);
	if (n < 0)
		return gone((int)n);
	if (n == 0)
		return -ESRCH;
	return cohort__statm_parse(buf, ret);
}

/* The keys of smaps we keep, and where they go. */
enum { K_RSS, K_PSS, K_PSS_ANON, K_PSS_FILE, K_PSS_SHMEM, K_SHARED_CLEAN, K_SHARED_DIRTY,
       K_PRIVATE_CLEAN, K_PRIVATE_DIRTY, K_SWAP, K_SWAP_PSS, K_ANON, K_COUNT };

static const char *const smaps_keys[K_COUNT] = {
	"Rss", "Pss", "Pss_Anon", "Pss_File", "Pss_Shmem", "Shared_Clean", "Shared_Dirty",
	"Private_Clean", "Private_Dirty", "Swap", "SwapPss", "Anonymous",
};

/* Sums and which keys were seen, while parsing one file in pieces. */
struct smaps_acc {
	uint64_t v[K_COUNT];
	unsigned seen;
};

/*
 * One line of smaps. Mapping headers ("7f..-7f.. r-xp ...") and keys we do
 * not keep ("VmFlags: rd wr", "THPeligible: 0") are skipped; a key we keep
 * must read "Key:   N kB" or the file is odd.
 */
static int smaps_line(struct smaps_acc *acc, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	size_t klen;

	if (!colon)
		return len == 0 ? 0 : COHORT_EPARSE;
	klen = (size_t)(colon - line);
	for (int k = 0; k < K_COUNT; k++) {
		const char *p = colon + 1, *end;
		uint64_t v;

		if (strlen(smaps_keys[k]) != klen || memcmp(line, smaps_keys[k], klen) != 0)
			continue;
		if (cohort__parse_u64(p, &v, &end) < 0 || (size_t)(end - line) + 3 > len ||
		    memcmp(end, " kB", 3) != 0)
			return COHORT_EPARSE;
		end += 3;
		while ((size_t)(end - line) < len && (*end == ' ' || *end == '\r'))
			end++;
		if ((size_t)(end - line) != len || __builtin_mul_overflow(v, 1024, &v) ||
		    __builtin_add_overflow(acc->v[k], v, &acc->v[k]))
			return COHORT_EPARSE;
		acc->seen |= 1u << k;
		return 0;
	}
	/* A header line (an address range) or a key we do not keep. */
	return 0;
}

static int smaps_finish(const struct smaps_acc *acc, enum cohort_smaps_source src,
                        struct cohort_procmem *ret)
{
	const unsigned need = 1u << K_RSS | 1u << K_PSS | 1u << K_PRIVATE_CLEAN |
	                      1u << K_PRIVATE_DIRTY | 1u << K_SHARED_CLEAN | 1u << K_SHARED_DIRTY;
	struct cohort_procmem m;

	if ((acc->seen & need) != need)
		return COHORT_EPARSE;
#define OPT(k) ((acc->seen & (1u << (k))) ? acc->v[k] : COHORT_MEM_UNKNOWN)
	m.rss = acc->v[K_RSS];
	m.pss = acc->v[K_PSS];
	m.pss_anon = OPT(K_PSS_ANON);
	m.pss_file = OPT(K_PSS_FILE);
	m.pss_shmem = OPT(K_PSS_SHMEM);
	m.shared_clean = acc->v[K_SHARED_CLEAN];
	m.shared_dirty = acc->v[K_SHARED_DIRTY];
	m.private_clean = acc->v[K_PRIVATE_CLEAN];
	m.private_dirty = acc->v[K_PRIVATE_DIRTY];
	m.uss = m.private_clean + m.private_dirty;
	m.swap = OPT(K_SWAP);
	m.swap_pss = OPT(K_SWAP_PSS);
	m.anon = OPT(K_ANON);
#undef OPT
	/* Every figure is a part of Rss (or of swap): a file that says otherwise is odd. */
	if (m.pss > m.rss || m.uss > m.rss ||
	    m.shared_clean + m.shared_dirty + m.uss > m.rss ||
	    (m.anon != COHORT_MEM_UNKNOWN && m.anon > m.rss) ||
	    (m.pss_anon != COHORT_MEM_UNKNOWN && m.pss_anon > m.pss))
		return COHORT_EPARSE;
	m.source = src;
	*ret = m;
	return 0;
}

int cohort_smaps_parse(const char *text, struct cohort_procmem *ret)
{
	struct smaps_acc acc = { { 0 }, 0 };
	const char *line = text;
	int r;

	if (!text)
		return COHORT_EPARSE;
	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		r = smaps_line(&acc, line, len);
		if (r < 0)
			return r;
		line += len + (nl ? 1 : 0);
	}
	return smaps_finish(&acc, COHORT_SMAPS_ROLLUP, ret);
}

/*
 * Stream a file of any length through smaps_line(): /proc/PID/smaps of a
 * large process runs to megabytes, so it is not slurped whole.
 */
static int smaps_stream(const char *path, struct smaps_acc *acc, size_t *ret_bytes)
{
	char buf[16384];
	size_t have = 0, total = 0;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);
		size_t start = 0;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		total += (size_t)n;
		have += (size_t)n;
		for (size_t i = 0; i < have; i++) {
			if (buf[i] != '\n')
				continue;
			r = smaps_line(acc, buf + start, i - start);
			if (r < 0)
				goto out;
			start = i + 1;
		}
		if (n == 0) {
			if (start < have)
				r = smaps_line(acc, buf + start, have - start);
			goto out;
		}
		if (start == 0 && have == sizeof(buf)) {
			r = COHORT_EPARSE;   /* a line longer than the buffer */
			goto out;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
	}
out:
	close(fd);
	*ret_bytes = total;
	return r;
}

int cohort_proc_smaps(const struct cohort_probe *probe, pid_t pid, struct cohort_procmem *ret)
{
	char path[COHORT_PATH_MAX];
	struct smaps_acc acc = { { 0 }, 0 };
	enum cohort_smaps_source src = COHORT_SMAPS_ROLLUP;
	size_t bytes = 0;
	int r;

	if (pid <= 0)
		return -EINVAL;
	r = cohort__pathf(path, sizeof(path), "%s/%d/smaps_rollup", cohort__proc_root(probe), (int)pid);
	if (r < 0)
		return r;
	r = smaps_stream(path, &acc, &bytes);
	if (r == -ENOENT) {
		/* No smaps_rollup: an old kernel, or the process is gone. */
		char dir[COHORT_PATH_MAX];

		r = cohort__pathf(dir, sizeof(dir), "%s/%d", cohort__proc_root(probe), (int)pid);
		if (r < 0)
			return r;
		if (access(dir, F_OK) < 0)
			return -ESRCH;
		r = cohort__pathf(path, sizeof(path), "%s/%d/smaps", cohort__proc_root(probe), (int)pid);
		if (r < 0)
			return r;
		memset(&acc, 0, sizeof(acc));
		src = COHORT_SMAPS_SUMMED;
		r = smaps_stream(path, &acc, &bytes);
	}
	if (r < 0)
		return gone(r);
	if (bytes == 0)
		return -ESRCH;
	return smaps_finish(&acc, src, ret);
}

int cohort_proc_status(const struct cohort_probe *probe, pid_t pid, struct cohort_procstatus *ret)
{
	char buf[8192];
	struct cohort_procstatus st;
	const char *name;
	uint64_t ppid;
	ssize_t n;
	int r;

	if (pid <= 0)
		return -EINVAL;
	n = cohort__slurpf(buf, sizeof(buf), "%s/%d/status", cohort__proc_root(probe), (int)pid);
	if (n < 0)
		return gone((int)n);
	memset(&st, 0, sizeof(st));
	name = strncmp(buf, "Name:", 5) == 0 ? buf : strstr(buf, "\nName:");
	if (!name)
		return n == 0 ? -ESRCH : COHORT_EPARSE;
	name += name == buf ? 5 : 6;
	while (*name == ' ' || *name == '\t')
		name++;
	size_t len = strcspn(name, "\n");
	if (len >= sizeof(st.name))
		len = sizeof(st.name) - 1;
	memcpy(st.name, name, len);
	st.name[len] = '\0';
	r = cohort__kv_u64(buf, "PPid", false, &ppid);
	if (r < 0)
		return COHORT_EPARSE;
	st.ppid = (pid_t)ppid;
	r = cohort__kv_u64(buf, "VmRSS", true, &st.vm_rss);
	if (r == -ENOENT)
		return -ESRCH;     /* a zombie or a kernel thread: no address space */
	if (r < 0)
		return r;
	if (cohort__kv_u64(buf, "VmHWM", true, &st.vm_hwm) < 0)
		return COHORT_EPARSE;
	static const char *const opt[] = { "RssAnon", "RssFile", "RssShmem", "VmSwap" };
	uint64_t *dst[] = { &st.rss_anon, &st.rss_file, &st.rss_shmem, &st.vm_swap };
	for (size_t i = 0; i < COHORT_ARRAY_SIZE(opt); i++) {
		r = cohort__kv_u64(buf, opt[i], true, dst[i]);
		if (r == -ENOENT)
			*dst[i] = COHORT_MEM_UNKNOWN;
		else if (r < 0)
			return r;
	}
	*ret = st;
	return 0;
}

/* ---- process sets ---- */

int cohort__pids_push(pid_t **pids, size_t *n, size_t *cap, pid_t pid)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		pid_t *p = realloc(*pids, ncap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*pids = p;
		*cap = ncap;
	}
	(*pids)[(*n)++] = pid;
	return 0;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/* Sort and drop duplicates (a process can move between cgroups mid-scan). */
void cohort__pids_sort_unique(pid_t *pids, size_t *n)
{
	size_t out = 0;

	if (*n == 0)
		return;
	qsort(pids, *n, sizeof(*pids), cmp_pid);
	for (size_t i = 0; i < *n; i++)
		if (out == 0 || pids[out - 1] != pids[i])
			pids[out++] = pids[i];
	*n = out;
}

/* A /proc directory entry that is a pid. */
pid_t cohort__pid_of_name(const char *name)
{
	uint64_t v;
	const char *end;

	if (cohort__parse_u64(name, &v, &end) < 0 || *end != '\0' || name[0] == ' ' ||
	    v == 0 || v > 0x7fffffff)
		return 0;
	return (pid_t)v;
}

/*
 * The parent of pid from <proc>/pid/stat: the field after the command,
 * which may itself hold spaces and parentheses, so look from the last ')'.
 */
int cohort__proc_ppid(const char *proc_root, pid_t pid, pid_t *ret_ppid, uint64_t *ret_start)
{
	struct cohort__stat st;
	int r = cohort__proc_stat(proc_root, pid, &st);

	if (r < 0)
		return r;
	*ret_ppid = st.ppid;
	if (ret_start)
		*ret_start = st.start;
	return 0;
}

/*
 * The fields of <proc>/pid/stat that cohort uses. The command (field 2)
 * may itself hold spaces and parentheses, so fields are counted from the
 * last ')'. startstack (field 28) tells a fork from an exec: a forked child
 * keeps its parent's stack address, an exec draws a new one.
 */
int cohort__proc_stat(const char *proc_root, pid_t pid, struct cohort__stat *ret)
{
	char buf[1024];
	const char *p;
	uint64_t v[52];
	ssize_t n;
	int field;

	if (pid <= 0)
		return -ESRCH;
	n = cohort__slurpf(buf, sizeof(buf), "%s/%d/stat", proc_root, (int)pid);
	if (n < 0)
		return gone((int)n);
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2] || p[3] != ' ')
		return COHORT_EPARSE;
	memset(v, 0, sizeof(v));
	{
		const char *open_ = strchr(buf, '(');
		size_t clen = open_ && open_ < p ? (size_t)(p - open_ - 1) : 0;

		if (clen >= sizeof(ret->comm))
			clen = sizeof(ret->comm) - 1;
		memcpy(ret->comm, open_ ? open_ + 1 : "", clen);
		ret->comm[clen] = '\0';
	}
	ret->state = p[2];
	p += 3;
	/* p is at the blank before field 4 (ppid). */
	for (field = 4; field <= 28; field++) {
		if (*p != ' ') {
			if (field <= 22)
				return COHORT_EPARSE;
			break;   /* a short line: startstack unknown (0) */
		}
		if (field == 4 || field == 10 || field == 22 || field == 28) {
			if (cohort__parse_u64(p + 1, &v[field], &p) < 0)
				return COHORT_EPARSE;
		} else {
			/* Fields cohort does not use; some are signed (priority, nice). */
			p = strchr(p + 1, ' ');
			if (!p) {
				if (field < 22)
					return COHORT_EPARSE;
				break;
			}
		}
	}
	if (v[4] > 0x7fffffff)
		return COHORT_EPARSE;
	ret->ppid = (pid_t)v[4];
	ret->start = v[22];
	ret->startstack = v[28];
	ret->minflt = v[10];
	return 0;
}

/*
 * The liveness checks of shared-memory peers (peer.c, queue.c) ask about
 * pids that live processes wrote into a segment, and pair the answer with
 * pidfd_open() and kill(): they read the real /proc, through the same
 * parser every other reader of stat uses.
 */
int cohort__proc_start(pid_t pid, uint64_t *ret_start, char *ret_state)
{
	struct cohort__stat st;
	int r = cohort__proc_stat(cohort__proc_root(NULL), pid, &st);

	if (r < 0)
		return r;
	*ret_start = st.start;
	if (ret_state)
		*ret_state = st.state;
	return 0;
}

void cohort_pids_free(pid_t *pids)
{
	free(pids);
}

int cohort_pids_descendants(const struct cohort_probe *probe, pid_t pid,
                            pid_t **ret_pids, size_t *ret_n)
{
	const char *root = cohort__proc_root(probe);
	struct edge { pid_t pid, ppid; } *edges = NULL;
	size_t nedges = 0, cap = 0, n = 0, pcap = 0;
	pid_t *out = NULL;
	struct dirent *de;
	DIR *d;
	int r = 0;
	bool found = false;

	if (pid <= 0)
		return -EINVAL;
	d = opendir(root);
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		pid_t p = cohort__pid_of_name(de->d_name), pp;

		if (!p || cohort__proc_ppid(root, p, &pp, NULL) < 0)
			continue;   /* gone, or odd: not one of ours */
		if (nedges == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct edge *e = realloc(edges, ncap * sizeof(*e));

			if (!e) {
				r = -ENOMEM;
				goto out;
			}
			edges = e;
			cap = ncap;
		}
		edges[nedges].pid = p;
		edges[nedges].ppid = pp;
		nedges++;
		if (p == pid)
			found = true;
	}
	if (!found) {
		r = -ESRCH;
		goto out;
	}
	/* Breadth first: out[] is the queue. A pid is added once, so cycles cannot loop. */
	r = cohort__pids_push(&out, &n, &pcap, pid);
	for (size_t head = 0; r == 0 && head < n; head++)
		for (size_t i = 0; i < nedges; i++) {
			if (edges[i].ppid != out[head] || edges[i].pid == pid)
				continue;
			edges[i].ppid = 0;   /* taken */
			r = cohort__pids_push(&out, &n, &pcap, edges[i].pid);
			if (r < 0)
				break;
		}
	if (r < 0)
		goto out;
	cohort__pids_sort_unique(out, &n);
	*ret_pids = out;
	*ret_n = n;
	out = NULL;
out:
	closedir(d);
	free(edges);
	free(out);
	return r;
}

/* ---- who a process is ---- */

/* A whole decimal number 0..2^31-1 of exactly len bytes, or -1. */
static int rank_value(const char *s, size_t len)
{
	long v = 0;

	if (len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= 0x7fffffff ? (int)v : -1;
}

int cohort_environ_ranks(const char *env, size_t len, int *ret_mpi_rank, int *ret_slurm_procid,
                         int *ret_slurm_localid)
{
	/* In the order of trust: the launcher's own name first, the generic PMI ones after. */
	static const char *const mpi_keys[] = { "OMPI_COMM_WORLD_RANK=", "MV2_COMM_WORLD_RANK=",
	                                        "PMIX_RANK=", "PMI_RANK=" };
	int mpi = -1, mpi_pref = 99, procid = -1, localid = -1, found;
	size_t i = 0;

	while (env && i < len) {
		const char *e = env + i;
		const char *nul = memchr(e, '\0', len - i);
		size_t elen = nul ? (size_t)(nul - e) : len - i;
		const char *eq = memchr(e, '=', elen);

		i += elen + 1;
		if (!eq)
			continue;
		for (int k = 0; k < 4; k++) {
			size_t klen = strlen(mpi_keys[k]);

			if (k < mpi_pref && elen >= klen && memcmp(e, mpi_keys[k], klen) == 0) {
				int v = rank_value(e + klen, elen - klen);

				if (v >= 0) {
					mpi = v;
					mpi_pref = k;
				}
			}
		}
		if (elen >= 13 && memcmp(e, "SLURM_PROCID=", 13) == 0)
			procid = rank_value(e + 13, elen - 13);
		else if (elen >= 14 && memcmp(e, "SLURM_LOCALID=", 14) == 0)
			localid = rank_value(e + 14, elen - 14);
	}
	found = (mpi >= 0) + (procid >= 0) + (localid >= 0);
	if (ret_mpi_rank)
		*ret_mpi_rank = mpi;
	if (ret_slurm_procid)
		*ret_slurm_procid = procid;
	if (ret_slurm_localid)
		*ret_slurm_localid = localid;
	return found;
}

/*
 * Up to size bytes of a /proc file into buf: unlike cohort__slurp(), a
 * larger file is cut, not refused (an environment of megabytes is legal).
 */
static ssize_t read_head(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return -errno;
	while (len < size) {
		ssize_t n = read(fd, buf + len, size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			n = -errno;
			close(fd);
			return n;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	return (ssize_t)len;
}

int cohort_proc_identity_read(const struct cohort_probe *probe, pid_t pid,
                              struct cohort_proc_identity *ret)
{
	char *env = malloc(COHORT_ENVIRON_MAX);
	int r;

	if (!env)
		return -ENOMEM;
	r = cohort__proc_identity(probe, pid, env, COHORT_ENVIRON_MAX, ret);
	free(env);
	return r;
}

int cohort__proc_identity(const struct cohort_probe *probe, pid_t pid, char *env, size_t envsize,
                          struct cohort_proc_identity *ret)
{
	const char *root = cohort__proc_root(probe);
	struct cohort_proc_identity id;
	struct cohort__stat st;
	char path[COHORT_PATH_MAX];
	ssize_t n;
	int r;

	if (pid <= 0)
		return -EINVAL;
	r = cohort__proc_stat(root, pid, &st);
	if (r < 0)
		return r == COHORT_EPARSE ? -ESRCH : r;
	memset(&id, 0, sizeof(id));
	id.pid = pid;
	id.ppid = st.ppid;
	id.rank = id.mpi_rank = id.slurm_procid = id.slurm_localid = -1;
	memcpy(id.comm, st.comm, sizeof(id.comm));
	if (cohort__pathf(path, sizeof(path), "%s/%d/cmdline", root, (int)pid) < 0)
		return -ENAMETOOLONG;
	n = read_head(path, id.cmdline, sizeof(id.cmdline) - 1);
	if (n > 0) {
		/* Arguments are NUL-separated; the last NUL (or several, after setproctitle) goes. */
		while (n > 0 && id.cmdline[n - 1] == '\0')
			n--;
		for (ssize_t i = 0; i < n; i++)
			if (id.cmdline[i] == '\0' || id.cmdline[i] == '\n' || id.cmdline[i] == '\t')
				id.cmdline[i] = ' ';
		id.cmdline[n] = '\0';
	}
	if (cohort__pathf(path, sizeof(path), "%s/%d/environ", root, (int)pid) < 0)
		return -ENAMETOOLONG;
	/* EACCES (another user's), ESRCH or ENOENT (gone): the ranks stay unknown. */
	n = read_head(path, env, envsize);
	if (n >= 0) {
		id.environ_read = 1;
		cohort_environ_ranks(env, (size_t)n, &id.mpi_rank, &id.slurm_procid, &id.slurm_localid);
	}
	*ret = id;
	return 0;
}

char *cohort_proc_identity_describe(const struct cohort_proc_identity *id, char *buf, size_t size)
{
	char ranks[64] = "", where[48] = "";

	if (id->mpi_rank >= 0 && id->slurm_procid >= 0)
		snprintf(ranks, sizeof(ranks), ", MPI rank %d, SLURM task %d", id->mpi_rank,
		         id->slurm_procid);
	else if (id->mpi_rank >= 0)
		snprintf(ranks, sizeof(ranks), ", MPI rank %d", id->mpi_rank);
	else if (id->slurm_procid >= 0)
		snprintf(ranks, sizeof(ranks), ", SLURM task %d", id->slurm_procid);
	if (id->rank >= 0 && id->child)
		snprintf(where, sizeof(where), ", child %u of rank %d", id->child, id->rank);
	else if (id->rank >= 0)
		snprintf(where, sizeof(where), ", the root of rank %d", id->rank);
	snprintf(buf, size, "pid %d (%s%s)%s", (int)id->pid, id->comm[0] ? id->comm : "?", ranks, where);
	return buf;
}
