/*
 * outbuf.h - output the supervisor never waits on.
 *
 * `cohort run -l` passes its workers' lines on to its own stdout and
 * stderr. A reader that stops reading (a pager left open, a pipe nobody
 * drains) must not stop the supervisor: a blocked write(2) would stop
 * sampling, enforcement and signal handling with it. Lines are queued in
 * a bounded buffer and written without blocking; what does not fit is
 * dropped and counted, and a line in the stream says so where the gap is.
 */
#ifndef COHORT_OUTBUF_H
#define COHORT_OUTBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What one stream holds at most before lines are dropped. */
#define OUTBUF_CAP (1u << 20)

struct outbuf {
	int fd;                    /* the stream (1 or 2), as the supervisor inherited it */
	int wfd;                   /* where writes go: fd, or a private non-blocking reopen of it */
	int how;                   /* how a write is kept from blocking (outbuf.c) */
	char *buf;
	size_t len, cap;           /* cap grows up to OUTBUF_CAP */
	uint64_t dropped_lines, dropped_bytes;   /* since the last notice */
	uint64_t total_dropped_lines, total_dropped_bytes;
	bool broken;               /* the reader is gone (EPIPE) or the stream failed: drop everything */
};

/*
 * Prepare o for stream fd without changing the file status flags of fd,
 * which it may share with other processes (a terminal, a pipe): a pipe,
 * FIFO or terminal is reopened through /proc/self/fd with O_NONBLOCK (a
 * file description of its own), a socket is written with MSG_DONTWAIT, a
 * regular file as it is (a write to it does not wait on a reader).
 */
void outbuf_init(struct outbuf *o, int fd);

/*
 * Queue prefix, then n bytes of data as they are (NUL bytes included),
 * then a newline, as one line: whole, or dropped and counted when the
 * buffer cannot take it. force queues it beyond the cap (the
 * supervisor's own final summary).
 */
void outbuf_line(struct outbuf *o, const char *prefix, const char *data, size_t n, bool force);

/* Write what can be written now without blocking. Returns true while bytes remain queued. */
bool outbuf_flush(struct outbuf *o);

/* True while bytes remain queued (and the stream is not broken). */
bool outbuf_pending(const struct outbuf *o);

/* The descriptor to poll for POLLOUT while outbuf_pending(). */
int outbuf_pollfd(const struct outbuf *o);

/*
 * Queue the note of what was dropped since the last one, if anything was
 * ("cohort: N lines (B bytes) of output dropped here: ..."), even beyond
 * the cap.
 */
void outbuf_note_drops(struct outbuf *o);

/* Close the private descriptor and free the buffer; o->fd is left open. */
void outbuf_release(struct outbuf *o);

#endif
