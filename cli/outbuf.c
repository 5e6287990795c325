/*
 * outbuf.c - bounded, non-blocking output for the supervisor (outbuf.h).
 *
 * O_NONBLOCK is a flag of the open file description, which a terminal or
 * a pipe shares with every process that inherited it: setting it on our
 * stdout would make the shell's or a sibling's writes fail with EAGAIN.
 * So the stream is reopened through /proc/self/fd/N, which for a pipe,
 * FIFO or terminal gives a new description of the same object, and only
 * that one is non-blocking. A regular file is written as it is: reopening
 * it would give a private offset and overwrite what others append.
 */
#include "outbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/*
 * Room taken at start, while memory is there: the supervisor's own lines
 * (the summary, the drop notes) must still be said when a later
 * allocation fails (the node out of memory, an address-space limit).
 */
#define OUTBUF_RESERVE (64 * 1024)

enum {
	HOW_PLAIN,      /* a regular file or block device: write(2) does not wait on anyone */
	HOW_NONBLOCK,   /* wfd is non-blocking (our own reopen, or it already was) */
	HOW_SOCKET,     /* send(MSG_DONTWAIT) */
	HOW_POLL,       /* reopen failed: poll for POLLOUT, then at most PIPE_BUF bytes */
};

void outbuf_init(struct outbuf *o, int fd)
{
	struct stat st;
	char path[64];
	int fl;

	memset(o, 0, sizeof(*o));
	o->fd = o->wfd = fd;
	o->how = HOW_PLAIN;
	o->buf = malloc(OUTBUF_RESERVE);
	o->cap = o->buf ? OUTBUF_RESERVE : 0;
	if (fstat(fd, &st) < 0) {
		o->broken = true;
		return;
	}
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
		return;
	if (S_ISSOCK(st.st_mode)) {
		o->how = HOW_SOCKET;
		return;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK)) {
		o->how = HOW_NONBLOCK;
		return;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	o->wfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (o->wfd >= 0) {
		o->how = HOW_NONBLOCK;
		return;
	}
	o->wfd = fd;
	o->how = HOW_POLL;
}

static bool reserve(struct outbuf *o, size_t need, bool force)
{
	size_t cap;
	char *p;

	if (o->len + need <= o->cap)
		return true;
	if (!force && o->len + need > OUTBUF_CAP)
		return false;
	cap = o->cap ? o->cap : 4096;
	while (cap < o->len + need)
		cap *= 2;
	if (!force && cap > OUTBUF_CAP)
		cap = OUTBUF_CAP;
	p = realloc(o->buf, cap);
	if (!p)
		return false;
	o->buf = p;
	o->cap = cap;
	return true;
}

static void append(struct outbuf *o, const char *a, size_t na, const char *b, size_t nb)
{
	memcpy(o->buf + o->len, a, na);
	memcpy(o->buf + o->len + na, b, nb);
	o->len += na + nb;
	o->buf[o->len++] = '\n';
}

void outbuf_note_drops(struct outbuf *o)
{
	char note[256];
	int n;

	if (!o->dropped_lines || o->broken)
		return;
	n = snprintf(note, sizeof(note), "cohort: %llu line%s (%llu bytes) of output dropped here: "
	             "the reader did not keep up and cohort does not wait on output",
	             (unsigned long long)o->dropped_lines, o->dropped_lines == 1 ? "" : "s",
	             (unsigned long long)o->dropped_bytes);
	if (n > 0 && reserve(o, (size_t)n + 1, true)) {
		append(o, note, (size_t)n, "", 0);
		o->dropped_lines = o->dropped_bytes = 0;
	}
}

void outbuf_line(struct outbuf *o, const char *prefix, const char *data, size_t n, bool force)
{
	size_t plen = prefix ? strlen(prefix) : 0, need = plen + n + 1;

	if (o->broken)
		return;
	/* The note of an earlier gap goes first, once the line after it fits. */
	if (o->dropped_lines && (force || o->len + need + 256 <= OUTBUF_CAP))
		outbuf_note_drops(o);
	if (!o->dropped_lines && !o->len && (o->how == HOW_PLAIN || o->how == HOW_NONBLOCK)) {
		/* Nothing queued: write the line straight from the caller's bytes, no copy. */
		struct iovec iov[3] = {
			{ .iov_base = (void *)(uintptr_t)(prefix ? prefix : ""), .iov_len = plen },
			{ .iov_base = (void *)(uintptr_t)data, .iov_len = n },
			{ .iov_base = (void *)(uintptr_t)"\n", .iov_len = 1 },
		};
		ssize_t w;

		do
			w = writev(o->wfd, iov, 3);
		while (w < 0 && errno == EINTR);
		if (w == (ssize_t)need)
			return;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			o->broken = true;
			return;
		}
		if (w > 0) {
			/* The rest of the line is queued, so that it is never torn. */
			size_t done = (size_t)w;

			if (done < plen) {
				prefix += done;
				plen -= done;
			} else {
				done -= plen;
				prefix = "";
				plen = 0;
				data += done;
				n -= done;
			}
			need = plen + n + 1;
			/* w < need: at least the newline is left. */
			if (reserve(o, need, true)) {
				append(o, prefix, plen, data, n);
				outbuf_flush(o);
				return;
			}
		}
	}
	if (!o->dropped_lines && reserve(o, need, force)) {
		append(o, prefix ? prefix : "", plen, data, n);
	} else {
		o->dropped_lines++;
		o->dropped_bytes += need;
		o->total_dropped_lines++;
		o->total_dropped_bytes += need;
	}
	outbuf_flush(o);
}

static ssize_t write_some(struct outbuf *o)
{
	size_t n = o->len;

	switch (o->how) {
	case HOW_SOCKET:
		return send(o->wfd, o->buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	case HOW_POLL: {
		struct pollfd p = { .fd = o->wfd, .events = POLLOUT };

		if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLOUT)) {
			errno = p.revents & (POLLERR | POLLHUP) ? EPIPE : EAGAIN;
			return -1;
		}
		/* Room for PIPE_BUF bytes is what POLLOUT promises on a pipe. */
		if (n > PIPE_BUF)
			n = PIPE_BUF;
		return write(o->wfd, o->buf, n);
	}
	default:
		return write(o->wfd, o->buf, n);
	}
}

bool outbuf_flush(struct outbuf *o)
{
	while (o->len && !o->broken) {
		ssize_t w = write_some(o);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0) {
			/* The reader is gone (EPIPE) or the stream fails: nothing more can be said there. */
			o->broken = true;
			o->len = 0;
			break;
		}
		memmove(o->buf, o->buf + w, o->len - (size_t)w);
		o->len -= (size_t)w;
	}
	return outbuf_pending(o);
}

bool outbuf_pending(const struct outbuf *o)
{
	return o->len > 0 && !o->broken;
}

int outbuf_pollfd(const struct outbuf *o)
{
	return o->wfd;
}

void outbuf_release(struct outbuf *o)
{
	if (o->wfd >= 0 && o->wfd != o->fd)
		close(o->wfd);
	o->wfd = -1;
	free(o->buf);
	o->buf = NULL;
	o->len = o->cap = 0;
}
