/*
 * cohort/cgevent.h - kernel notifications of a memory cgroup: OOM kills,
 * limit events and usage thresholds as they happen, not at the next sample.
 *
 * Part of libcohort; include <cohort.h> for all of it. The conventions of
 * the whole API are at the top of cohort.h. What each cgroup version can
 * and cannot notify is in docs/cgevent.md.
 */
#ifndef COHORT_CGEVENT_H
#define COHORT_CGEVENT_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- memory cgroup notifications ---- */

/*
 * Kernel notifications of one memory cgroup (v1 or v2), behind one file
 * descriptor to poll. Not thread-safe: one thread uses one cohort_cgevent.
 */
struct cohort_cgevent;

/* What a notification said, read from the cgroup's counters when it fired. */
struct cohort_cgevent_info {
	/*
	 * The cgroup's oom_kill counter now: v2 memory.events (the cgroup
	 * and every cgroup below it); v1 memory.oom_control summed over the
	 * cgroup and every cgroup below it, since v1 counts a kill only in
	 * the victim's own cgroup (a job's task_N, not the job).
	 */
	uint64_t oom_kill;
	uint64_t oom_kill_new;  /* how much oom_kill rose since the previous read (or the open) */
	uint64_t usage;         /* usage now (v1 memory.usage_in_bytes, v2 memory.current) */
	uint64_t peak;          /* v1 memory.max_usage_in_bytes, v2 memory.peak (0 if the kernel lacks it) */
	int threshold_crossed;  /* 1 when usage crossed the threshold upward since the last read */
	uint64_t max_events_new, high_events_new;  /* v2 memory.events max/high rises; 0 on v1 */
	/*
	 * Times the cgroup ran out of memory since the last read: v1 the OOM
	 * notifications of memory.oom_control, v2 the rise of memory.events
	 * oom. An OOM usually ends in a kill, counted in oom_kill_new.
	 */
	uint64_t oom_new;
	int version;            /* 1 or 2 */
};

/*
 * Watch the memory cgroup at dir: an absolute directory under the probe's
 * cgroup_root, or a path inside the hierarchy, as cohort_cgroup_read()
 * takes (probe NULL: the real system).
 *
 * The descriptor of cohort_cgevent_fd() becomes readable when:
 *   - the cgroup runs out of memory or a process in it is OOM-killed:
 *     v1 through an eventfd registered in cgroup.event_control on
 *     memory.oom_control; v2 through inotify (IN_MODIFY) on memory.events,
 *     which the kernel touches at every oom and oom_kill event;
 *   - threshold is not 0 and usage crosses it: v1 through a second eventfd
 *     on memory.usage_in_bytes (the kernel signals crossings both ways;
 *     cohort_cgevent_read() reports the upward ones). v2 has no usage
 *     thresholds: the descriptor wakes only at memory.events changes
 *     (high, max, oom, oom_kill), and threshold_crossed is judged then,
 *     from memory.current and memory.peak. Setting memory.high to the
 *     threshold makes the kernel notify there (and throttle above it);
 *   - v2 also wakes at every memory.events 'high' and 'max' event
 *     (high_events_new, max_events_new), with or without a threshold;
 *   - v1 also wakes once when the cgroup is removed; the next read then
 *     fails with -ENOENT.
 * v1 needs the kernel's cgroup filesystem (a copied tree cannot notify)
 * and, as a rule, root or ownership of cgroup.event_control.
 *
 * Returns 0 and stores a new object in *ret (free it with
 * cohort_cgevent_close()); -EINVAL for a NULL or bad dir or ret, -ENOENT
 * when there is no such cgroup, -ENOTDIR when dir is not a directory,
 * -EOPNOTSUPP when it has no memory controller files (or, v1, is not the
 * kernel's cgroup filesystem), COHORT_EPARSE when its memory.events or
 * counters hold something else than numbers, -EACCES without the right to
 * register, or another -errno.
 */
COHORT_EXPORT int cohort_cgevent_open(const struct cohort_probe *probe, const char *dir,
                                      uint64_t threshold, struct cohort_cgevent **ret);

/*
 * A descriptor to poll for POLLIN (an epoll descriptor, O_CLOEXEC). It is
 * owned by ev: never read or close it. Returns it, or -EINVAL for NULL.
 */
COHORT_EXPORT int cohort_cgevent_fd(const struct cohort_cgevent *ev);

/*
 * Consume the pending notifications without blocking and fill *ret from
 * the counters read now (on 0 as on 1; every *_new figure counts since the
 * previous successful read or the open). Returns 1 when something fired,
 * 0 when nothing was pending, -EINVAL for NULL arguments, -ENOENT when the
 * cgroup is gone, COHORT_EPARSE when a counter file holds something else
 * than a number (ev stays usable: a later read may succeed), or another
 * -errno. On error *ret is untouched and the notifications are consumed.
 *
 * On v1 the OOM notification comes a moment before the kernel counts the
 * kill; when a read finds the OOM but no kill yet, the descriptor becomes
 * readable again a few milliseconds later (for about a second at most),
 * so that a later read reports the kill in oom_kill_new.
 */
COHORT_EXPORT int cohort_cgevent_read(struct cohort_cgevent *ev, struct cohort_cgevent_info *ret);

/* Close the descriptors (on v1 this unregisters the notifications) and free ev. Accepts NULL. */
COHORT_EXPORT void cohort_cgevent_close(struct cohort_cgevent *ev);

#ifdef __cplusplus
}
#endif

#endif /* COHORT_CGEVENT_H */
