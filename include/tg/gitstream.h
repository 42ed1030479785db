/*
 * Deadlines for libgit2's network operations, which libgit2 1.5 cannot
 * bound itself (see gitstream.c for how and why).
 *
 * An operation (one ls-remote, one clone or fetch) runs on one thread
 * between tg_gitstream_begin() and tg_gitstream_end().  Every socket
 * libgit2 opens on that thread in between, through the stream
 * tg_gitstream_register() installs, fails once the deadline passes, and a
 * watchdog thread shuts those sockets down at the deadline.  A timed-out
 * operation fails inside libgit2 with an error of its own; the caller asks
 * tg_gitstream_timed_out() to tell a timeout from other failures.
 */
#ifndef TG_GITSTREAM_H
#define TG_GITSTREAM_H

#include <pthread.h>
#include <stddef.h>

/* Sockets of one operation the watchdog keeps track of; sockets beyond
 * these are still bounded by poll() but not shut down at the deadline. */
#define TG_GITSTREAM_MAX_FDS 8

/*
 * One operation's deadline.  Complete only so that a caller can embed it;
 * the fields belong to gitstream.c.
 */
struct tg_gitstream_deadline {
	long long at;  /* tg_now_ms() based; 0 = none */
	int timed_out; /* set by the watchdog, a stream or tg_gitstream_expired() */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* wakes the watchdog when the operation ends */
	pthread_t watchdog;
	int watchdog_on, done;
	int fds[TG_GITSTREAM_MAX_FDS]; /* open sockets of the operation */
	size_t nfds;
};

/*
 * Installs the deadline-bound socket stream as libgit2's
 * GIT_STREAM_STANDARD (plain TCP for git:// and http://, and under TLS and
 * libssh2 for https:// and ssh://).  Call after git_libgit2_init() and
 * before each operation: it is cheap and idempotent, and it has to be
 * repeated because git_libgit2_shutdown() clears the registry.  A stream
 * opened outside an operation has no deadline.
 */
void tg_gitstream_register(void);

/*
 * Starts an operation that must be over timeout_ms from now, on the
 * calling thread: dl becomes the thread's current operation, which streams
 * opened until tg_gitstream_end() are bound to, and a watchdog thread
 * starts (if it cannot, the poll() bounds of the stream still hold).  dl is
 * the caller's and must stay in place until tg_gitstream_end().
 */
void tg_gitstream_begin(struct tg_gitstream_deadline *dl, long timeout_ms);

/* Ends the operation begun on dl: stops the watchdog and releases what
 * tg_gitstream_begin() set up.  Free the libgit2 objects whose streams are
 * bound to dl (the git_remote) before. */
void tg_gitstream_end(struct tg_gitstream_deadline *dl);

/* 1 once the operation has timed out, 0 otherwise. */
int tg_gitstream_timed_out(const struct tg_gitstream_deadline *dl);

/*
 * For code that meets the clock on its own path (libgit2's transfer
 * progress callback runs while data flows, when no socket wait is there to
 * notice): when the deadline has passed, marks the operation timed out and
 * returns 1; otherwise returns 0.
 */
int tg_gitstream_expired(struct tg_gitstream_deadline *dl);

#endif
