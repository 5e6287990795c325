/*
 * crashfile.h - the files the crash shim (shim/catch.c, preloaded into
 * workers) writes into $COHORT_CATCH_DIR and the watcher (src/watch.c)
 * reads: one definition of names and keys for the writer and the reader.
 * Internal to cohort: no program outside it reads these files.
 *
 * crash.<pid>: a fatal signal, written by the dying process's handler,
 * "key value" lines in this order:
 *
 *     signal 11
 *     code 1
 *     addr 0x7f2c1a000000
 *     map 7f2c19f00000-7f2c1a000000 rw-s 00000000 00:1a 12 /dev/shm/cohort.0.42.grid
 *     fault 7f2c1a000000-7f2c1a001000 ---p 00000000 00:00 0
 *     frames
 *     ./worker(fill+0x2a)[0x55d1c3a0b1f9]
 *     ...
 *
 * "map" and "fault" come for SIGSEGV and SIGBUS only: "fault" is the
 * /proc/self/maps line of the mapping that holds the address (absent when
 * none does), "map" the one just below it. "frames" stands alone; every
 * line after it is one frame as backtrace_symbols_fd() prints it, to the
 * end of the file.
 *
 * exit.<pid> (exit.<pid>.<n> while an older record of a reused pid is
 * still there): a child reaped dead of a signal or exiting non-zero, by
 * its parent's wait call:
 *
 *     pid 4242
 *     status 139        (a wait status: WIFSIGNALED, WTERMSIG, ...)
 *     reaper 4200       (the pid whose wait reaped it)
 *
 * written whole under .exit-<reaper>-<pid> and linked into place, so a
 * reader never sees half of one.
 */
#ifndef COHORT_CRASHFILE_H
#define COHORT_CRASHFILE_H

#define COHORT_CRASHFILE_PREFIX "crash."   /* crash.<pid> */
#define COHORT_EXITFILE_PREFIX "exit."     /* exit.<pid>[.<n>] */
#define COHORT_EXITFILE_TEMP ".exit-"      /* .exit-<reaper>-<pid>, before the link */

/* Keys of crash.<pid>, each followed by one blank and the value. */
#define COHORT_CRASH_SIGNAL "signal"       /* decimal signal number */
#define COHORT_CRASH_CODE "code"           /* decimal si_code */
#define COHORT_CRASH_ADDR "addr"           /* 0x and hexadecimal si_addr */
#define COHORT_CRASH_MAP "map"             /* maps line below the address */
#define COHORT_CRASH_FAULT "fault"         /* maps line holding the address */
#define COHORT_CRASH_FRAMES "frames"       /* alone on its line: the backtrace follows */

/* Keys of exit.<pid>, each followed by one blank and a decimal value. */
#define COHORT_EXIT_PID "pid"
#define COHORT_EXIT_STATUS "status"
#define COHORT_EXIT_REAPER "reaper"

/* The length of "KEY ": for matching a line's start. */
#define COHORT_CRASH_KEYLEN(key) (sizeof(key " ") - 1)

#endif
