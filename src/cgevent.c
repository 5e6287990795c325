/*
 * cgevent.c - kernel notifications of a memory cgroup, so that an OOM kill
 * or a crossed threshold is known when it happens, not at the next sample.
 *
 * v1: eventfds registered through cgroup.event_control, one on
 * memory.oom_control and one on memory.usage_in_bytes with the threshold.
 * v2: inotify on memory.events, which the kernel marks modified at each
 * low/high/max/oom/oom_kill event. Either way the descriptors sit under one
 * epoll descriptor, the one the caller polls. What a notification meant is
 * read back from the counters (cohort__slurp and the parsers of util.c).
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/timerfd.h>
#include <unistd.h>

#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif

/* Nesting deeper than this is not a cgroup tree we were meant to walk. */
#define TREE_DEPTH_MAX 16

/*
 * After a v1 OOM notification without a counted kill, look again after
 * 5 ms, then twice as long each time: 5 + 10 + ... + 640 ms, about 1.3 s
 * in all. The kill is counted microseconds after the notification on an
 * idle machine; the margin is for a loaded one.
 */
#define RECHECK_FIRST_MS 5
#define RECHECK_MAX 8

struct cohort_cgevent {
	int version;
	char dir[COHORT_PATH_MAX];
	uint64_t threshold;
	int epfd;               /* what the caller polls */
	int oom_fd;             /* v1: eventfd on memory.oom_control */
	int thr_fd;             /* v1: eventfd on memory.usage_in_bytes, -1 without a threshold */
	int timer_fd;           /* v1: rechecks after an OOM without a counted kill */
	int ino_fd;             /* v2: inotify on memory.events */
	unsigned rechecks;      /* rechecks done since the last OOM notification */
	bool recheck_armed;
	bool above;             /* usage >= threshold, as the kernel last signalled (v1) or we last read (v2) */
	/* Notifications consumed by a read that then failed, for the next read to report. */
	bool pending_fired, pending_crossed;
	uint64_t pending_oom;
	/* Counters at the previous read. */
	uint64_t oom_kill, oom, max_events, high_events, usage, peak;
};

/* The figures one read takes from the counter files. */
struct counters {
	uint64_t usage, peak, oom_kill, oom, max_events, high_events;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* A whole number file ("max" is UINT64_MAX). Returns 0, -errno or COHORT_EPARSE. */
static int read_number(const char *dir, const char *file, uint64_t *ret)
{
	char buf[128];
	ssize_t n = cohort__slurpf(buf, sizeof(buf), "%s/%s", dir, file);

	if (n < 0)
		return (int)n;
	return cohort__parse_cgroup_value(buf, ret);
}

/* A "key N" line that must be there: an absent key makes the file odd. */
static int kv_required(const char *text, const char *key, uint64_t *ret)
{
	int r = cohort__kv_u64(text, key, false, ret);

	return r == -ENOENT ? COHORT_EPARSE : r;
}

/*
 * v1 memory.oom_control's oom_kill of dir and of every cgroup below it:
 * v1 counts a kill only in the victim's own cgroup, while the OOM that
 * caused it is notified to the cgroup whose limit was hit, often a parent.
 * A cgroup below that vanishes during the walk is skipped.
 */
static int v1_oom_kill_tree(const char *dir, int depth, uint64_t *sum)
{
	char buf[512], sub[COHORT_PATH_MAX];
	struct dirent *de;
	uint64_t v;
	DIR *d;
	ssize_t n;
	int r;

	n = cohort__slurpf(buf, sizeof(buf), "%s/memory.oom_control", dir);
	if (n < 0)
		return depth > 0 && n == -ENOENT ? 0 : (int)n;
	r = kv_required(buf, "oom_kill", &v);
	if (r < 0)
		return r;
	if (__builtin_add_overflow(*sum, v, sum))
		return COHORT_EPARSE;
	if (depth >= TREE_DEPTH_MAX)
		return 0;
	d = opendir(dir);
	if (!d)
		return depth > 0 && errno == ENOENT ? 0 : -errno;
	r = 0;
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		if (cohort__pathf(sub, sizeof(sub), "%s/%s", dir, de->d_name) < 0)
			continue;
		r = v1_oom_kill_tree(sub, depth + 1, sum);
	}
	closedir(d);
	return r;
}

static int read_counters(const struct cohort_cgevent *ev, struct counters *ret)
{
	struct counters c = { 0 };
	int r;

	if (ev->version == 1) {
		r = read_number(ev->dir, "memory.usage_in_bytes", &c.usage);
		if (r < 0)
			return r;
		r = v1_oom_kill_tree(ev->dir, 0, &c.oom_kill);
		if (r < 0)
			return r;
		if (read_number(ev->dir, "memory.max_usage_in_bytes", &c.peak) < 0)
			c.peak = 0;
	} else {
		char events[2048];
		ssize_t n;

		r = read_number(ev->dir, "memory.current", &c.usage);
		if (r < 0)
			return r;
		n = cohort__slurpf(events, sizeof(events), "%s/memory.events", ev->dir);
		if (n < 0)
			return n == -EFBIG ? COHORT_EPARSE : (int)n;
		r = kv_required(events, "oom_kill", &c.oom_kill);
		if (r == 0)
			r = kv_required(events, "max", &c.max_events);
		if (r == 0)
			r = kv_required(events, "high", &c.high_events);
		if (r < 0)
			return r;
		/* "oom" came with 4.13, as oom_kill; absent, no OOM is ever seen but the kills are. */
		r = cohort__kv_u64(events, "oom", false, &c.oom);
		if (r == -ENOENT)
			c.oom = 0;
		else if (r < 0)
			return r;
		/* memory.peak came with 5.19. */
		if (read_number(ev->dir, "memory.peak", &c.peak) < 0)
			c.peak = 0;
	}
	*ret = c;
	return 0;
}

/* How far a counter rose; a counter that fell (a cgroup below was removed) rose by 0. */
static uint64_t rise(uint64_t now, uint64_t before)
{
	return now > before ? now - before : 0;
}

/* Read an eventfd's count without blocking: 0 when nothing was signalled. */
static int drain_eventfd(int fd, uint64_t *ret)
{
	uint64_t v;
	ssize_t n;

	*ret = 0;
	if (fd < 0)
		return 0;
	do
		n = read(fd, &v, sizeof(v));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (n != (ssize_t)sizeof(v))
		return -EIO;
	*ret = v;
	return 0;
}

/* Consume the inotify events; *ret_any says whether there were any. */
static int drain_inotify(int fd, bool *ret_any)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	*ret_any = false;
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		if (n == 0)
			return 0;
		*ret_any = true;
	}
}

static int arm_recheck(struct cohort_cgevent *ev)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };
	long ms = (long)RECHECK_FIRST_MS << ev->rechecks;

	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (ms % 1000) * 1000000L;
	if (timerfd_settime(ev->timer_fd, 0, &its, NULL) < 0)
		return -errno;
	ev->rechecks++;
	ev->recheck_armed = true;
	return 0;
}

static void disarm_recheck(struct cohort_cgevent *ev)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };

	if (ev->recheck_armed)
		(void)timerfd_settime(ev->timer_fd, 0, &its, NULL);
	ev->recheck_armed = false;
}

/* Register eventfd efd for events of file (and args) through cgroup.event_control. */
static int v1_register(const char *dir, int efd, const char *file, const char *args)
{
	char path[COHORT_PATH_MAX], line[128];
	int cfd = -1, ctl = -1, r = 0, len;
	ssize_t n;

	if (cohort__pathf(path, sizeof(path), "%s/%s", dir, file) < 0)
		return -ENAMETOOLONG;
	cfd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (cfd < 0)
		return errno == ENOENT ? -EOPNOTSUPP : -errno;
	if (cohort__pathf(path, sizeof(path), "%s/cgroup.event_control", dir) < 0) {
		r = -ENAMETOOLONG;
		goto out;
	}
	ctl = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (ctl < 0) {
		r = errno == ENOENT ? -EOPNOTSUPP : -errno;
		goto out;
	}
	len = snprintf(line, sizeof(line), "%d %d%s%s", efd, cfd, args ? " " : "", args ? args : "");
	do
		n = write(ctl, line, (size_t)len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		r = -errno;
	else if (n != len)
		r = -EIO;
out:
	/* The kernel holds what it needs; the event lives as long as efd. */
	if (ctl >= 0)
		close(ctl);
	close(cfd);
	return r;
}

static int v1_setup(struct cohort_cgevent *ev)
{
	struct statfs sfs;
	char value[32];
	int r;

	/* On any other filesystem cgroup.event_control is a plain file: the write "works" and nothing is ever signalled. */
	if (statfs(ev->dir, &sfs) < 0)
		return -errno;
	if (sfs.f_type != CGROUP_SUPER_MAGIC)
		return -EOPNOTSUPP;
	ev->oom_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ev->oom_fd < 0)
		return -errno;
	r = v1_register(ev->dir, ev->oom_fd, "memory.oom_control", NULL);
	if (r < 0)
		return r;
	ev->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ev->timer_fd < 0)
		return -errno;
	if (ev->threshold) {
		ev->thr_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (ev->thr_fd < 0)
			return -errno;
		snprintf(value, sizeof(value), "%llu", (unsigned long long)ev->threshold);
		r = v1_register(ev->dir, ev->thr_fd, "memory.usage_in_bytes", value);
		if (r < 0)
			return r;
	}
	return 0;
}

static int v2_setup(struct cohort_cgevent *ev)
{
	char path[COHORT_PATH_MAX];

	if (cohort__pathf(path, sizeof(path), "%s/memory.events", ev->dir) < 0)
		return -ENAMETOOLONG;
	ev->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ev->ino_fd < 0)
		return -errno;
	if (inotify_add_watch(ev->ino_fd, path, IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF) < 0)
		return errno == ENOENT ? -EOPNOTSUPP : -errno;
	return 0;
}

static int epoll_watch(int epfd, int fd)
{
	struct epoll_event e = { .events = EPOLLIN };

	if (fd < 0)
		return 0;
	e.data.fd = fd;
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

static bool has_file(const char *dir, const char *file)
{
	char path[COHORT_PATH_MAX];

	return cohort__pathf(path, sizeof(path), "%s/%s", dir, file) >= 0 && access(path, F_OK) == 0;
}

int cohort_cgevent_open(const struct cohort_probe *probe, const char *dir, uint64_t threshold,
                        struct cohort_cgevent **ret)
{
	struct cohort_cgevent *ev = NULL;
	struct counters c;
	struct stat st;
	int r;

	if (!dir || !ret)
		return -EINVAL;
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	ev->epfd = ev->oom_fd = ev->thr_fd = ev->timer_fd = ev->ino_fd = -1;
	ev->threshold = threshold;
	r = cohort__cgroup_dir(probe, dir, ev->dir, sizeof(ev->dir));
	if (r < 0)
		goto out;
	if (stat(ev->dir, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		r = -ENOTDIR;
		goto out;
	}
	/* Told by the files present, as cohort_cgroup_read() does. */
	if (has_file(ev->dir, "memory.current"))
		ev->version = 2;
	else if (has_file(ev->dir, "memory.usage_in_bytes"))
		ev->version = 1;
	else {
		r = -EOPNOTSUPP;
		goto out;
	}
	r = ev->version == 1 ? v1_setup(ev) : v2_setup(ev);
	if (r < 0)
		goto out;
	ev->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ev->epfd < 0) {
		r = -errno;
		goto out;
	}
	if ((r = epoll_watch(ev->epfd, ev->oom_fd)) < 0 || (r = epoll_watch(ev->epfd, ev->thr_fd)) < 0 ||
	    (r = epoll_watch(ev->epfd, ev->timer_fd)) < 0 || (r = epoll_watch(ev->epfd, ev->ino_fd)) < 0)
		goto out;
	/*
	 * The baseline, read after registering so that nothing between the two
	 * is missed. The kernel judged the threshold's side at registration;
	 * a usage moving across it in this moment can make the first report
	 * of a crossing one notification late or early.
	 */
	r = read_counters(ev, &c);
	if (r < 0)
		goto out;
	ev->oom_kill = c.oom_kill;
	ev->oom = c.oom;
	ev->max_events = c.max_events;
	ev->high_events = c.high_events;
	ev->usage = c.usage;
	ev->peak = c.peak;
	ev->above = threshold && c.usage >= threshold;
	*ret = ev;
	ev = NULL;
	r = 0;
out:
	cohort_cgevent_close(ev);
	return r;
}

int cohort_cgevent_fd(const struct cohort_cgevent *ev)
{
	return ev ? ev->epfd : -EINVAL;
}

/*
 * v1: the kernel signals every crossing, up and down, and we know the side
 * before them: of n crossings from below, (n + 1) / 2 were upward; from
 * above, n / 2.
 */
static bool v1_crossed_up(struct cohort_cgevent *ev, uint64_t n)
{
	uint64_t up = ev->above ? n / 2 : (n + 1) / 2;

	if (n % 2)
		ev->above = !ev->above;
	return up > 0;
}

/*
 * v2: no kernel thresholds; judged at each read. The peak passing the
 * threshold means usage crossed it since the last read, even when it has
 * come down again; usage above it now and below it then means the same.
 */
static bool v2_crossed_up(struct cohort_cgevent *ev, const struct counters *c)
{
	uint64_t t = ev->threshold;
	bool crossed;

	if (!t)
		return false;
	crossed = (ev->peak < t && c->peak >= t) || (!ev->above && c->usage >= t);
	ev->above = c->usage >= t;
	return crossed;
}

int cohort_cgevent_read(struct cohort_cgevent *ev, struct cohort_cgevent_info *ret)
{
	struct cohort_cgevent_info info;
	uint64_t oom_n = 0, thr_n = 0, timer_n = 0;
	bool ino = false, fired;
	struct counters c;
	int r;

	if (!ev || !ret)
		return -EINVAL;
	if (ev->version == 1) {
		if ((r = drain_eventfd(ev->oom_fd, &oom_n)) < 0 ||
		    (r = drain_eventfd(ev->thr_fd, &thr_n)) < 0 ||
		    (r = drain_eventfd(ev->timer_fd, &timer_n)) < 0)
			return r;
		if (timer_n)
			ev->recheck_armed = false;
	} else {
		r = drain_inotify(ev->ino_fd, &ino);
		if (r < 0)
			return r;
	}
	/*
	 * What was consumed is kept until a read of the counters succeeds, so
	 * that an odd counter file or a transient error loses no notification.
	 */
	ev->pending_fired |= oom_n || thr_n || ino;
	ev->pending_oom += oom_n;
	if (ev->version == 1 && thr_n)
		ev->pending_crossed |= v1_crossed_up(ev, thr_n);
	r = read_counters(ev, &c);
	if (r < 0)
		return r;

	memset(&info, 0, sizeof(info));
	info.version = ev->version;
	info.oom_kill = c.oom_kill;
	info.oom_kill_new = rise(c.oom_kill, ev->oom_kill);
	info.usage = c.usage;
	info.peak = c.peak;
	fired = ev->pending_fired;
	if (ev->version == 1) {
		info.oom_new = ev->pending_oom;
		info.threshold_crossed = ev->pending_crossed;
		if (info.oom_kill_new) {
			disarm_recheck(ev);
			ev->rechecks = 0;
		} else if (ev->pending_oom || (timer_n && ev->rechecks < RECHECK_MAX)) {
			/* An OOM, and its kill not counted yet: look again shortly. */
			if (ev->pending_oom)
				ev->rechecks = 0;
			r = arm_recheck(ev);
			if (r < 0)
				return r;
		}
		/* A recheck is only news when it found the kill. */
		if (timer_n && info.oom_kill_new)
			fired = true;
	} else {
		info.threshold_crossed = v2_crossed_up(ev, &c);
		info.oom_new = rise(c.oom, ev->oom);
		info.max_events_new = rise(c.max_events, ev->max_events);
		info.high_events_new = rise(c.high_events, ev->high_events);
	}

	ev->pending_fired = ev->pending_crossed = false;
	ev->pending_oom = 0;
	ev->oom_kill = c.oom_kill;
	ev->oom = c.oom;
	ev->max_events = c.max_events;
	ev->high_events = c.high_events;
	ev->usage = c.usage;
	ev->peak = c.peak;
	*ret = info;
	return fired ? 1 : 0;
}

void cohort_cgevent_close(struct cohort_cgevent *ev)
{
	if (!ev)
		return;
	close_fd(&ev->epfd);
	close_fd(&ev->oom_fd);
	close_fd(&ev->thr_fd);
	close_fd(&ev->timer_fd);
	close_fd(&ev->ino_fd);
	free(ev);
}

/* ---- the kernel log's OOM records ---- */

/* The decimal pid at p (len bytes at most), or 0. */
static pid_t kmsg_pid(const char *p, size_t len)
{
	long v = 0;
	size_t i = 0;

	for (; i < len && i < 10 && p[i] >= '0' && p[i] <= '9'; i++)
		v = v * 10 + (p[i] - '0');
	return i > 0 && v > 0 && v <= 0x7fffffff ? (pid_t)v : 0;
}

/* Copy up to the first of stops (or the end) into out. */
static void kmsg_word(const char *p, size_t len, const char *stops, char *out, size_t size)
{
	size_t n = 0;

	while (n < len && !memchr(stops, p[n], strlen(stops)) && p[n] != '\0')
		n++;
	if (n >= size)
		n = size - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

int cohort__kmsg_oom(const char *rec, size_t len, pid_t *ret_pid, char *comm, size_t comm_size,
                     char *memcg, size_t memcg_size)
{
	const char *semi = memchr(rec, ';', len), *text, *end = rec + len, *p;

	if (!comm_size || !memcg_size)
		return 0;
	/* /dev/kmsg: "prio,seq,usec,flags;text"; a plain line (dmesg's) has no prefix. */
	text = semi ? semi + 1 : rec;
	comm[0] = memcg[0] = '\0';
	if ((p = memmem(text, (size_t)(end - text), "Killed process ", 15)) != NULL) {
		const char *open_;

		p += 15;
		*ret_pid = kmsg_pid(p, (size_t)(end - p));
		open_ = memchr(p, '(', (size_t)(end - p));
		if (open_ && open_ + 1 < end)
			kmsg_word(open_ + 1, (size_t)(end - open_ - 1), ")\n", comm, comm_size);
		return *ret_pid > 0;
	}
	if ((p = memmem(text, (size_t)(end - text), "oom-kill:", 9)) != NULL) {
		const char *q;
		pid_t pid = 0;

		if ((q = memmem(p, (size_t)(end - p), ",pid=", 5)) != NULL)
			pid = kmsg_pid(q + 5, (size_t)(end - q - 5));
		if (!pid)
			return 0;
		if ((q = memmem(p, (size_t)(end - p), "task_memcg=", 11)) != NULL)
			kmsg_word(q + 11, (size_t)(end - q - 11), ",\n", memcg, memcg_size);
		if ((q = memmem(p, (size_t)(end - p), ",task=", 6)) != NULL)
			kmsg_word(q + 6, (size_t)(end - q - 6), ",\n", comm, comm_size);
		*ret_pid = pid;
		return 1;
	}
	return 0;
}
