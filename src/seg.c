/*
 * seg.c - named shared-memory segments that never SIGBUS.
 *
 * A segment is a file <dir>/cohort.<uid>.<job>.<name> (dir is /dev/shm by
 * default): one header page, then the data rounded up to whole pages. The
 * file name alone tells `cohort shm` whose and which job's it is; the header
 * says who made it and what it holds. The mapping is followed by a
 * PROT_NONE guard page.
 *
 * ftruncate on tmpfs reserves nothing: the first write past the tmpfs
 * capacity (or past the job's memory limit, since tmpfs pages are charged
 * to the cgroup) raises SIGBUS long after "creation". So create checks the
 * request against both figures, then reserves every page with
 * posix_fallocate, and only then publishes the header's magic, which is
 * what open looks for.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SEG_MAGIC 0x4745535452484f43ULL   /* "COHRTSEG" little-endian */

/* The header page. Fixed offsets, host byte order; documented in docs/shm.md. */
struct seg_header {
	uint64_t magic;          /*   0: SEG_MAGIC, written last */
	uint32_t abi;            /*   8: COHORT_SEG_ABI */
	uint32_t header_size;    /*  12: COHORT_SEG_HEADER_SIZE */
	uint64_t size;           /*  16: data bytes asked for */
	uint64_t file_size;      /*  24: header + data rounded up to pages */
	uint32_t layout;         /*  32: the caller's tag */
	uint32_t uid;            /*  36: creator's uid */
	int32_t creator_pid;     /*  40 */
	uint32_t reserved0;      /*  44: 0 */
	uint64_t creator_start;  /*  48: clock ticks since boot */
	uint64_t created;        /*  56: seconds since the epoch */
	char job[64];            /*  64: NUL-terminated */
	char name[72];           /* 128: NUL-terminated */
	uint64_t checksum;       /* 200: FNV-1a of bytes 8..199 */
};

_Static_assert(sizeof(struct seg_header) == 208, "segment header layout");
_Static_assert(sizeof(struct seg_header) <= COHORT_SEG_HEADER_SIZE, "header fits its page");

struct cohort_seg {
	void *base;          /* the header page */
	size_t map_size;     /* file_size + guard page */
	size_t size;
	char path[COHORT_PATH_MAX];
};

static uint64_t header_checksum(const struct seg_header *h)
{
	const unsigned char *p = (const unsigned char *)h + 8;
	uint64_t x = 0xcbf29ce484222325ULL;

	for (size_t i = 8; i < offsetof(struct seg_header, checksum); i++, p++) {
		x ^= *p;
		x *= 0x100000001b3ULL;
	}
	return x;
}

static bool valid_token(const char *s, size_t max)
{
	size_t n = 0;

	if (!s || !*s)
		return false;
	for (; *s; s++, n++) {
		char c = *s;

		if (n >= max)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

int cohort_job_scope_valid(const char *job)
{
	return valid_token(job, COHORT_ID_MAX - 1);
}

static void why(const struct cohort_seg_options *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void why(const struct cohort_seg_options *o, const char *fmt, ...)
{
	va_list ap;

	if (!o || !o->why || o->why_size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(o->why, o->why_size, fmt, ap);
	va_end(ap);
}

/*
 * The local scope, decided once per program and inherited across fork.
 * Its processes hold the job's lease (peer.c), which is how `cohort shm
 * gc` tells the job alive from any pid namespace: "local-<pid>" names the
 * pid in the creator's namespace, which means nothing (or another process)
 * in the namespace gc runs in.
 */
static char local_job[COHORT_ID_MAX];
static pid_t local_job_pid;
static pthread_once_t local_job_once = PTHREAD_ONCE_INIT;

/*
 * Run once per program, under pthread_once: calls on different objects may
 * run in several threads at once (shm.h), and each would otherwise write
 * the buffer another is reading. The once state is copied by fork, so a
 * child keeps its parent's scope, as it must.
 */
static void local_job_init(void)
{
	local_job_pid = getpid();
	snprintf(local_job, sizeof(local_job), "local-%d", (int)local_job_pid);
}

int cohort_seg_job(const struct cohort_seg_options *o, char *buf, size_t size)
{
	const char *job = o ? o->job : NULL;
	const char *const *envp = o && o->probe ? o->probe->envp : NULL;

	if (!job || !*job)
		job = cohort__getenv(envp, "COHORT_JOB");
	if (!job || !*job)
		job = cohort__getenv(envp, "SLURM_JOB_ID");
	if (!job || !*job) {
		pthread_once(&local_job_once, local_job_init);
		cohort__lease_job(local_job_pid);
		job = local_job;
	}
	if (!cohort_job_scope_valid(job))
		return -EINVAL;
	return cohort__pathf(buf, size, "%s", job);
}

static const char *seg_dir(const struct cohort_seg_options *o)
{
	if (o && o->dir)
		return o->dir;
	if (o && o->probe && o->probe->shm_path)
		return o->probe->shm_path;
	return "/dev/shm";
}

int cohort_seg_path(const char *name, const struct cohort_seg_options *o, char *buf, size_t size)
{
	char job[COHORT_ID_MAX];
	int r;

	if (!valid_token(name, COHORT_SEG_NAME_MAX))
		return -EINVAL;
	r = cohort_seg_job(o, job, sizeof(job));
	if (r < 0)
		return r;
	return cohort__pathf(buf, size, "%s/cohort.%u.%s.%s", seg_dir(o), (unsigned)getuid(), job, name);
}

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

/*
 * Map file_size bytes of fd followed by one inaccessible page: reserve the
 * whole range first, so that nothing else can ever be mapped right after
 * the data.
 */
static void *map_guarded(int fd, size_t file_size, size_t *ret_map_size)
{
	size_t total = file_size + page_size();
	void *area, *p;

	area = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (area == MAP_FAILED)
		return NULL;
	p = mmap(area, file_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;

		munmap(area, total);
		errno = e;
		return NULL;
	}
	*ret_map_size = total;
	return area;
}

static int check_capacity(const char *name, uint64_t need, const struct cohort_seg_options *o)
{
	struct cohort_probe pr = { 0 };
	struct cohort_alloc a;
	char n1[32], n2[32], n3[32], n4[32];
	int r;

	if (o && o->probe)
		pr = *o->probe;
	pr.shm_path = seg_dir(o);
	r = cohort_alloc_detect(&pr, &a);
	if (r < 0) {
		why(o, "segment '%s': cannot read the allocation to check its size: %s",
		    name, cohort_strerror(r));
		return r;
	}
	cohort_size_format(need, n1, sizeof(n1));
	if (a.shm_known && need > a.shm_free) {
		why(o, "segment '%s' needs %s but %s has %s free (of %s); free space there "
		    "(cohort shm gc) or create a smaller segment",
		    name, n1, pr.shm_path, cohort_size_format(a.shm_free, n2, sizeof(n2)),
		    cohort_size_format(a.shm_size, n3, sizeof(n3)));
		return COHORT_ENOSPACE;
	}
	if (a.mem_limit_source == COHORT_SRC_CGROUP && a.cgroup_usage_known) {
		uint64_t headroom = a.cgroup_usage < a.mem_limit ? a.mem_limit - a.cgroup_usage : 0;

		if (need > headroom) {
			why(o, "segment '%s' needs %s but the job's memory limit leaves %s of headroom "
			    "(limit %s from %s, %s in use); shared memory pages are charged to the job: "
			    "ask for more memory or create a smaller segment",
			    name, n1, cohort_size_format(headroom, n2, sizeof(n2)),
			    cohort_size_format(a.mem_limit, n3, sizeof(n3)), a.mem_limit_where,
			    cohort_size_format(a.cgroup_usage, n4, sizeof(n4)));
			return COHORT_ENOSPACE;
		}
	} else if (a.ram_available && need > a.ram_available) {
		why(o, "segment '%s' needs %s but the node has %s of memory available (MemAvailable); "
		    "create a smaller segment",
		    name, n1, cohort_size_format(a.ram_available, n2, sizeof(n2)));
		return COHORT_ENOSPACE;
	}
	return 0;
}

int cohort_seg_create(const char *name, size_t size, const struct cohort_seg_options *o,
                      struct cohort_seg **ret_seg)
{
	struct cohort_seg *seg = NULL;
	struct seg_header *h;
	char job[COHORT_ID_MAX], n1[32];
	size_t ps = page_size(), file_size;
	int fd = -1, r;
	bool created = false;

	if (!ret_seg || size == 0) {
		why(o, "segment size must be at least 1 byte");
		return -EINVAL;
	}
	if (!valid_token(name, COHORT_SEG_NAME_MAX)) {
		why(o, "invalid segment name '%s': use 1 to %d of [A-Za-z0-9_-]",
		    name ? name : "(null)", COHORT_SEG_NAME_MAX);
		return -EINVAL;
	}
	r = cohort_seg_job(o, job, sizeof(job));
	if (r < 0) {
		why(o, "invalid job scope for segment '%s': COHORT_JOB or SLURM_JOB_ID must be "
		    "1 to 63 of [A-Za-z0-9_-]", name);
		return r;
	}
	if (size > SIZE_MAX - 2 * ps - COHORT_SEG_HEADER_SIZE) {
		why(o, "segment '%s': size %zu is too large", name, size);
		return COHORT_ENOSPACE;
	}
	file_size = COHORT_SEG_HEADER_SIZE + (size + ps - 1) / ps * ps;

	seg = calloc(1, sizeof(*seg));
	if (!seg)
		return -ENOMEM;
	r = cohort_seg_path(name, o, seg->path, sizeof(seg->path));
	if (r < 0)
		goto out;
	if (!(o && o->no_check)) {
		r = check_capacity(name, file_size, o);
		if (r < 0)
			goto out;
	}
	fd = open(seg->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	          o && o->mode ? o->mode : 0600);
	if (fd < 0) {
		r = -errno;
		why(o, "cannot create segment '%s' (%s): %s", name, seg->path, strerror(errno));
		goto out;
	}
	created = true;
	r = posix_fallocate(fd, 0, (off_t)file_size);
	if (r != 0) {
		why(o, "segment '%s' needs %s but %s could not reserve it: %s",
		    name, cohort_size_format(file_size, n1, sizeof(n1)), seg_dir(o), strerror(r));
		r = r == ENOSPC || r == ENOMEM ? COHORT_ENOSPACE : -r;
		goto out;
	}
	seg->base = map_guarded(fd, file_size, &seg->map_size);
	if (!seg->base) {
		r = -errno;
		why(o, "cannot map segment '%s': %s", name, strerror(errno));
		goto out;
	}
	seg->size = size;

	h = seg->base;
	h->abi = COHORT_SEG_ABI;
	h->header_size = COHORT_SEG_HEADER_SIZE;
	h->size = size;
	h->file_size = file_size;
	h->layout = o ? o->layout : 0;
	h->uid = (uint32_t)getuid();
	h->creator_pid = (int32_t)getpid();
	h->creator_start = cohort__self_start();
	h->created = (uint64_t)time(NULL);
	cohort__strlcpy(h->job, job, sizeof(h->job));
	cohort__strlcpy(h->name, name, sizeof(h->name));
	h->checksum = header_checksum(h);
	/* Publish last: an opener that sees the magic sees the whole header. */
	atomic_store_explicit((_Atomic uint64_t *)&h->magic, SEG_MAGIC, memory_order_release);
	*ret_seg = seg;
	seg = NULL;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (seg) {
		if (seg->base)
			munmap(seg->base, seg->map_size);
		if (created)
			unlink(seg->path);
		free(seg);
	}
	return r;
}

/*
 * Check a header read from a file of file_size bytes. Returns 0, -EAGAIN
 * (not published yet) or COHORT_EBADSEG with a reason in *ret_why.
 */
static int check_header(const struct seg_header *h, uint64_t file_size, const char **ret_why)
{
	size_t ps = page_size();

	if (h->magic == 0 && h->abi == 0 && h->size == 0)
		return -EAGAIN;
	if (h->magic != SEG_MAGIC) {
		*ret_why = "not a cohort segment (bad magic)";
		return COHORT_EBADSEG;
	}
	if (h->abi != COHORT_SEG_ABI) {
		*ret_why = "made by an incompatible version of cohort (ABI differs)";
		return COHORT_EBADSEG;
	}
	if (h->checksum != header_checksum(h)) {
		*ret_why = "corrupt header (checksum mismatch)";
		return COHORT_EBADSEG;
	}
	if (h->header_size != COHORT_SEG_HEADER_SIZE || h->size == 0 ||
	    h->size > UINT64_MAX - 2 * ps - COHORT_SEG_HEADER_SIZE ||
	    h->file_size != COHORT_SEG_HEADER_SIZE + (h->size + ps - 1) / ps * ps ||
	    h->file_size != file_size || h->file_size > SIZE_MAX) {
		*ret_why = "corrupt header (sizes disagree with the file)";
		return COHORT_EBADSEG;
	}
	if (!memchr(h->job, '\0', sizeof(h->job)) || !memchr(h->name, '\0', sizeof(h->name)) ||
	    !valid_token(h->name, COHORT_SEG_NAME_MAX) || !cohort_job_scope_valid(h->job)) {
		*ret_why = "corrupt header (name or job)";
		return COHORT_EBADSEG;
	}
	return 0;
}

static int read_header(int fd, struct seg_header *h, struct stat *st)
{
	ssize_t n;

	if (fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return COHORT_EBADSEG;
	if ((uint64_t)st->st_size < COHORT_SEG_HEADER_SIZE) {
		/* Being created: the creator reserves before it writes anything. */
		return st->st_size == 0 ? -EAGAIN : COHORT_EBADSEG;
	}
	do
		n = pread(fd, h, sizeof(*h), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != sizeof(*h))
		return COHORT_EBADSEG;
	return 0;
}

int cohort_seg_open(const char *name, const struct cohort_seg_options *o, struct cohort_seg **ret_seg)
{
	struct cohort_seg *seg;
	struct seg_header h;
	struct stat st;
	char job[COHORT_ID_MAX];
	const char *reason = "not a cohort segment";
	int fd = -1, r;

	if (!ret_seg)
		return -EINVAL;
	seg = calloc(1, sizeof(*seg));
	if (!seg)
		return -ENOMEM;
	r = cohort_seg_path(name, o, seg->path, sizeof(seg->path));
	if (r < 0) {
		why(o, "invalid segment name '%s' or job scope", name ? name : "(null)");
		goto out;
	}
	r = cohort_seg_job(o, job, sizeof(job));
	if (r < 0)
		goto out;
	fd = open(seg->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		why(o, "cannot open segment '%s' (%s): %s", name, seg->path, strerror(errno));
		goto out;
	}
	r = read_header(fd, &h, &st);
	if (r == 0)
		r = check_header(&h, (uint64_t)st.st_size, &reason);
	if (r == 0 && st.st_uid != getuid()) {
		reason = "owned by another user";
		r = COHORT_EBADSEG;
	}
	if (r == 0 && (h.uid != (uint32_t)st.st_uid || strcmp(h.name, name) != 0 ||
	               strcmp(h.job, job) != 0)) {
		reason = "its header names another segment, job or user";
		r = COHORT_EBADSEG;
	}
	if (r == 0 && o && o->layout && h.layout != o->layout) {
		reason = "its layout tag is not the one asked for";
		r = COHORT_EBADSEG;
	}
	if (r == -EAGAIN)
		why(o, "segment '%s' is still being created; retry", name);
	else if (r == COHORT_EBADSEG)
		why(o, "refusing segment '%s' (%s): %s", name, seg->path, reason);
	if (r < 0)
		goto out;
	seg->base = map_guarded(fd, (size_t)h.file_size, &seg->map_size);
	if (!seg->base) {
		r = -errno;
		why(o, "cannot map segment '%s': %s", name, strerror(errno));
		goto out;
	}
	seg->size = (size_t)h.size;
	*ret_seg = seg;
	seg = NULL;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(seg);
	return r;
}

int cohort_seg_close(struct cohort_seg *seg)
{
	if (!seg)
		return 0;
	if (seg->base)
		munmap(seg->base, seg->map_size);
	free(seg);
	return 0;
}

int cohort_seg_unlink(const char *name, const struct cohort_seg_options *o)
{
	char path[COHORT_PATH_MAX];
	int r = cohort_seg_path(name, o, path, sizeof(path));

	if (r < 0)
		return r;
	if (unlink(path) < 0)
		return -errno;
	return 0;
}

void *cohort_seg_data(const struct cohort_seg *seg)
{
	return seg ? (char *)seg->base + COHORT_SEG_HEADER_SIZE : NULL;
}

size_t cohort_seg_size(const struct cohort_seg *seg)
{
	return seg ? seg->size : 0;
}

int cohort_seg_stat(const char *path, struct cohort_seg_info *ret_info)
{
	struct cohort_seg_info info;
	struct seg_header h;
	struct stat st;
	const char *reason;
	int fd, r;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	r = read_header(fd, &h, &st);
	close(fd);
	if (r == 0)
		r = check_header(&h, (uint64_t)st.st_size, &reason);
	if (r < 0)
		return r;
	memset(&info, 0, sizeof(info));
	cohort__strlcpy(info.name, h.name, sizeof(info.name));
	cohort__strlcpy(info.job, h.job, sizeof(info.job));
	info.abi = h.abi;
	info.layout = h.layout;
	info.uid = (uid_t)h.uid;
	info.creator_pid = (pid_t)h.creator_pid;
	info.creator_start = h.creator_start;
	info.size = h.size;
	info.file_size = h.file_size;
	info.created = h.created;
	info.creator_alive = cohort__pid_alive(info.creator_pid, info.creator_start);
	*ret_info = info;
	return 0;
}

int cohort_seg_unlink_job(const struct cohort_seg_options *o, unsigned *ret_failed)
{
	char job[COHORT_ID_MAX], prefix[COHORT_ID_MAX + 48];
	unsigned failed = 0;
	int removed = 0, dfd, r;
	struct dirent *de;
	DIR *d;

	r = cohort_seg_job(o, job, sizeof(job));
	if (r < 0)
		return r;
	r = cohort__pathf(prefix, sizeof(prefix), "cohort.%u.%s.", (unsigned)getuid(), job);
	if (r < 0)
		return r;
	dfd = open(seg_dir(o), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(prefix);

		if (strncmp(de->d_name, prefix, n) != 0 ||
		    !valid_token(de->d_name + n, COHORT_SEG_NAME_MAX))
			continue;
		/* unlinkat never follows a symlink: it removes the link itself. */
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
		else if (errno != ENOENT)
			failed++;
	}
	closedir(d);
	if (ret_failed)
		*ret_failed = failed;
	return removed;
}
