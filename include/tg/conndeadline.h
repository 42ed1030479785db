/*
 * Request deadlines for the HTTP server: every connection has a bounded time
 * to deliver each request, head and body, however slowly it dribbles bytes.
 *
 * libmicrohttpd's connection timeout counts idle time only, so a client that
 * sends one byte every few seconds (slowloris), or a request line of binary
 * garbage without a newline, holds a connection slot for as long as it likes.
 * This module keeps the connections that owe a request and a thread that
 * shuts down the socket of any connection past its deadline; the server's
 * connection thread then sees end of file and closes it.
 *
 * Each tracked connection holds a duplicate of its socket, so a shutdown can
 * never hit a descriptor number the server has meanwhile closed and reused.
 * The thread sleeps until the earliest deadline: no polling.
 */
#ifndef TG_CONNDEADLINE_H
#define TG_CONNDEADLINE_H

struct tg_conndeadlines;
struct tg_conndeadline;

/* Called from the deadline thread, outside its lock, with the number of
 * connections just cut. */
typedef void (*tg_conndeadline_cut_fn)(void *ctx, unsigned n);

/* Starts the thread; limit_ms > 0 is the time each request may take to
 * arrive; on_cut may be NULL.  NULL when the thread cannot start (the caller
 * refuses to serve). */
struct tg_conndeadlines *tg_conndeadlines_new(long long limit_ms, tg_conndeadline_cut_fn on_cut,
					      void *ctx);

/* Stops the thread and frees the set; every connection must be removed. */
void tg_conndeadlines_free(struct tg_conndeadlines *set);

/* A connection on socket fd opened now: its first request is due within the
 * limit.  NULL when the socket cannot be duplicated (out of descriptors):
 * the connection is then served without a deadline. */
struct tg_conndeadline *tg_conndeadlines_add(struct tg_conndeadlines *set, int fd);

/* The connection closed; NULL is a no-op. */
void tg_conndeadlines_remove(struct tg_conndeadlines *set, struct tg_conndeadline *conn);

/* The current request has arrived whole: no deadline while it is answered. */
void tg_conndeadlines_received(struct tg_conndeadlines *set, struct tg_conndeadline *conn);

/* The answer went out: the next request on this connection is due within
 * the limit (this also bounds an idle keep-alive connection). */
void tg_conndeadlines_rearm(struct tg_conndeadlines *set, struct tg_conndeadline *conn);

#endif
