/*
 * cohort.h - the public API of libcohort.
 *
 * libcohort runs the worker processes of one job as a cohort: it reads the
 * allocation the job really has (cgroup, SLURM, RAM, /dev/shm), measures
 * processes correctly, and gives them shared memory that cannot race, hang
 * or SIGBUS.
 *
 * Conventions, everywhere in this header:
 *   - Functions return int: >= 0 on success, a negative error code on
 *     failure: -errno for system errors, or one of the COHORT_E* codes below.
 *     cohort_strerror() names every code.
 *   - Output parameters are named ret_*, and are written only on success.
 *   - The library never prints and never exits.
 *   - Objects that live in shared memory are placed by the caller.
 *
 * Thread safety: unless a function says otherwise, it may be called from
 * several threads at once on different objects.
 */
#ifndef COHORT_H
#define COHORT_H

/*
 * One header per subsystem, each usable alone (a program that only shares
 * a segment and a mutex includes <cohort/shm.h>):
 */
#include "cohort/base.h"      /* version, errors, sizes, struct cohort_probe */
#include "cohort/alloc.h"     /* the allocation and plans */
#include "cohort/slurm.h"     /* SLURM's controller: accounting setup, a job's memory */
#include "cohort/shm.h"       /* segments, mutex, barrier, semaphore, queue, arena */
#include "cohort/procmem.h"   /* process memory, trees, cgroup counters, PSI */
#include "cohort/sampler.h"   /* statm every tick, PSS within a CPU budget */
#include "cohort/workcg.h"    /* a memory cgroup per worker */
#include "cohort/cgevent.h"   /* memory cgroup notifications: OOM kills, thresholds */
#include "cohort/trend.h"     /* leaks and copy-on-write */
#include "cohort/recording.h" /* recordings and their diagnosis */
#include "cohort/file.h"      /* atomic publish, file locks, per-rank output */
#include "cohort/watch.h"     /* the watcher: workers, samples, decisions, events */
#include "cohort/metrics.h"   /* the watcher's state as Prometheus metrics */

#endif /* COHORT_H */
