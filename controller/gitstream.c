/*
 * Deadlines for libgit2's network operations.
 *
 * libgit2 1.5 has no server timeout option (GIT_OPT_SET_SERVER_TIMEOUT
 * arrived in 1.7) and blocks in recv() forever on a silent peer.  We
 * register our own GIT_STREAM_STANDARD socket stream; libgit2 uses it for
 * git:// and http://, under its TLS stream for https://, and under libssh2
 * for ssh://.  It connects with a poll()-bounded non-blocking connect() and
 * waits for each read/write with poll() against the operation deadline.
 * libssh2 reads the socket fd directly, bypassing our read(), so a watchdog
 * thread also shuts the operation's sockets down at the deadline.
 * The stream registry is process-global and has no per-call payload: the
 * operation in progress is found through a thread-local pointer.
 */
#include "tg/gitstream.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/stream.h>

#include "tg/common.h"
#include "tg/banned.h"

static _Thread_local struct tg_gitstream_deadline *cur_dl;

/* ---- deadline and watchdog -------------------------------------------- */

static void *watchdog_main(void *arg)
{
	struct tg_gitstream_deadline *dl = arg;
	struct timespec ts;
	long long left = dl->at - tg_now_ms();

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (left % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&dl->mu);
	while (!dl->done) {
		if (pthread_cond_timedwait(&dl->cv, &dl->mu, &ts) == ETIMEDOUT) {
			size_t i;

			dl->timed_out = 1;
			for (i = 0; i < dl->nfds; i++)
				shutdown(dl->fds[i], SHUT_RDWR);
			break;
		}
	}
	pthread_mutex_unlock(&dl->mu);
	return NULL;
}

void tg_gitstream_begin(struct tg_gitstream_deadline *dl, long timeout_ms)
{
	memset(dl, 0, sizeof(*dl));
	dl->at = tg_now_ms() + timeout_ms;
	pthread_mutex_init(&dl->mu, NULL);
	tg_cond_init_monotonic(&dl->cv);
	dl->watchdog_on = pthread_create(&dl->watchdog, NULL, watchdog_main, dl) == 0;
	cur_dl = dl;
}

void tg_gitstream_end(struct tg_gitstream_deadline *dl)
{
	cur_dl = NULL;
	pthread_mutex_lock(&dl->mu);
	dl->done = 1;
	pthread_cond_signal(&dl->cv);
	pthread_mutex_unlock(&dl->mu);
	if (dl->watchdog_on)
		pthread_join(dl->watchdog, NULL);
	pthread_cond_destroy(&dl->cv);
	pthread_mutex_destroy(&dl->mu);
}

int tg_gitstream_timed_out(const struct tg_gitstream_deadline *dl)
{
	return dl->timed_out;
}

int tg_gitstream_expired(struct tg_gitstream_deadline *dl)
{
	if (dl->at && tg_now_ms() > dl->at) {
		dl->timed_out = 1;
		return 1;
	}
	return 0;
}

/* Milliseconds to the deadline, as poll() takes them; -1 (no limit)
 * outside an operation. */
static int left_ms(const struct tg_gitstream_deadline *dl)
{
	long long left;

	if (!dl)
		return -1;
	left = dl->at - tg_now_ms();
	return left <= 0 ? 0 : (left > 0x7fffffff ? 0x7fffffff : (int)left);
}

static int fail_timeout(struct tg_gitstream_deadline *dl)
{
	if (dl)
		dl->timed_out = 1;
	git_error_set(GIT_ERROR_NET, "timed out");
	return -1;
}

static void add_fd(struct tg_gitstream_deadline *dl, int fd)
{
	if (!dl)
		return;
	pthread_mutex_lock(&dl->mu);
	if (dl->nfds < TG_GITSTREAM_MAX_FDS)
		dl->fds[dl->nfds++] = fd;
	pthread_mutex_unlock(&dl->mu);
}

static void del_fd(struct tg_gitstream_deadline *dl, int fd)
{
	size_t i;

	if (!dl)
		return;
	pthread_mutex_lock(&dl->mu);
	for (i = 0; i < dl->nfds; i++)
		if (dl->fds[i] == fd) {
			dl->fds[i] = dl->fds[--dl->nfds];
			break;
		}
	pthread_mutex_unlock(&dl->mu);
}

/* ---- the socket stream ------------------------------------------------ */

/*
 * The first members mirror libgit2's internal git_socket_stream
 * { git_stream parent; char *host; char *port; GIT_SOCKET s; }: its SSH
 * transport hands ->s straight to libssh2.
 */
struct tstream {
	git_stream parent;
	char *host;
	char *port;
	int s;
	struct tg_gitstream_deadline *dl; /* operation at creation; NULL = none */
};

static int wait_fd(struct tstream *st, short ev)
{
	struct pollfd pfd = { st->s, ev, 0 };
	int r;

	for (;;) {
		if (st->dl && st->dl->timed_out)
			return fail_timeout(st->dl);
		r = poll(&pfd, 1, left_ms(st->dl));
		if (r > 0)
			return 0;
		if (r == 0)
			return fail_timeout(st->dl);
		if (errno != EINTR) {
			git_error_set(GIT_ERROR_OS, "poll failed: %s", strerror(errno));
			return -1;
		}
	}
}

static int ts_connect(git_stream *stream)
{
	struct tstream *st = (struct tstream *)stream;
	struct addrinfo hints, *res = NULL, *ai;
	int rc, fd = -1, last = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	rc = getaddrinfo(st->host, st->port, &hints, &res);
	if (rc) {
		git_error_set(GIT_ERROR_NET, "cannot resolve '%s': %s", st->host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		st->s = fd;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			if (wait_fd(st, POLLOUT) < 0) {
				close(fd);
				st->s = -1;
				freeaddrinfo(res);
				git_error_set(GIT_ERROR_NET, "timed out connecting to %s:%s",
					      st->host, st->port);
				return -1;
			}
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && !soerr)
				break;
			last = soerr;
		} else {
			last = errno;
		}
		close(fd);
		st->s = fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		git_error_set(GIT_ERROR_NET, "cannot connect to %s:%s: %s", st->host, st->port,
			      strerror(last ? last : ECONNREFUSED));
		return -1;
	}
	/* Blocking again: libssh2 expects a blocking socket. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	add_fd(st->dl, fd);
	return 0;
}

static ssize_t ts_read(git_stream *stream, void *data, size_t len)
{
	struct tstream *st = (struct tstream *)stream;
	ssize_t n;

	for (;;) {
		if (wait_fd(st, POLLIN) < 0)
			return -1;
		n = recv(st->s, data, len, 0);
		if (n >= 0) {
			/* The watchdog's shutdown() reads as end of stream. */
			if (n == 0 && st->dl && st->dl->timed_out)
				return fail_timeout(st->dl);
			return n;
		}
		if (errno != EINTR && errno != EAGAIN) {
			git_error_set(GIT_ERROR_NET, "read from %s failed: %s", st->host,
				      strerror(errno));
			return -1;
		}
	}
}

static ssize_t ts_write(git_stream *stream, const char *data, size_t len, int flags)
{
	struct tstream *st = (struct tstream *)stream;
	ssize_t n;

	(void)flags;
	for (;;) {
		if (wait_fd(st, POLLOUT) < 0)
			return -1;
		n = send(st->s, data, len, MSG_NOSIGNAL);
		if (n >= 0)
			return n;
		if (errno != EINTR && errno != EAGAIN) {
			if (st->dl && st->dl->timed_out)
				return fail_timeout(st->dl);
			git_error_set(GIT_ERROR_NET, "write to %s failed: %s", st->host,
				      strerror(errno));
			return -1;
		}
	}
}

static int ts_close(git_stream *stream)
{
	struct tstream *st = (struct tstream *)stream;

	if (st->s >= 0) {
		del_fd(st->dl, st->s);
		close(st->s);
		st->s = -1;
	}
	return 0;
}

static void ts_free(git_stream *stream)
{
	struct tstream *st = (struct tstream *)stream;

	ts_close(stream);
	free(st->host);
	free(st->port);
	free(st);
}

static int ts_new(git_stream **out, const char *host, const char *port)
{
	struct tstream *st = tg_xcalloc(1, sizeof(*st));

	st->parent.version = GIT_STREAM_VERSION;
	st->parent.connect = ts_connect;
	st->parent.read = ts_read;
	st->parent.write = ts_write;
	st->parent.close = ts_close;
	st->parent.free = ts_free;
	st->host = tg_xstrdup(host);
	st->port = tg_xstrdup(port);
	st->s = -1;
	st->dl = cur_dl;
	*out = &st->parent;
	return 0;
}

void tg_gitstream_register(void)
{
	git_stream_registration reg;

	memset(&reg, 0, sizeof(reg));
	reg.version = GIT_STREAM_VERSION;
	reg.init = ts_new;
	git_stream_register(GIT_STREAM_STANDARD, &reg);
}
