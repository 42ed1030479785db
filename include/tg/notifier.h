/*
 * Notifier: posts commit build statuses to Bitbucket without ever holding
 * up a pass.  The worker enqueues (a copy, under a mutex, no I/O) and goes
 * on; a thread of the notifier's own, with its own curl handle, sends.
 *
 *  - Bounded queue: when full, the oldest status is dropped (and counted).
 *  - A later state of the same status (same commit and key) replaces one
 *    still queued, so a retried INPROGRESS never lands after SUCCESSFUL.
 *  - A status whose body equals the last one sent or queued for that
 *    commit and key is not sent again (drift passes of a commit).
 *  - 429 (after Retry-After, at most 60 s), 5xx, timeouts and connection
 *    errors are retried with exponential backoff; after max_attempts the
 *    status is dropped and counted.  Other answers are final.
 *  - Tokens are read from their files when these change (inode, size,
 *    mtime), kept out of logs, and wiped when replaced.
 *  - Every attempt is counted in tyk_gitops_bitbucket_requests_total{api,
 *    result}; drops as result="dropped".
 */
#ifndef TG_NOTIFIER_H
#define TG_NOTIFIER_H

#include <stddef.h>

#include "tg/bitbucket.h"
#include "tg/metrics.h"

/* --- one request (also used by `tyk-gitops report`) ------------------------- */

struct tg_bb_reply {
	long http;            /* 0: no answer */
	int timed_out;        /* curl gave up on time */
	char retry_after[64]; /* the Retry-After header, "" if none */
	char *body;           /* at most 64 KiB, NUL-terminated; caller frees */
	size_t len;
	char error[256]; /* curl's message when there was no answer */
};

/*
 * Sends method url with body (JSON, may be NULL) to Bitbucket with t's
 * credentials: token NULL for none, else Bearer, or Basic with t->email.
 * No redirects are followed (a token must not travel elsewhere).
 * curl_handle is a CURL * the caller owns (reset here); stop (may be NULL)
 * aborts the transfer when it becomes non-zero.  Returns 0 when an answer
 * came (any status), else -1 (rep->error says why).
 */
int tg_bb_send(void *curl_handle, const struct tg_bb_target *t, const char *token,
	       const char *method, const char *url, const char *body, struct tg_bb_reply *rep,
	       const volatile int *stop);
void tg_bb_reply_release(struct tg_bb_reply *rep);

/* --- the queue ----------------------------------------------------------------------- */

struct tg_notifier_opts {
	size_t queue_max;           /* 256 */
	int max_attempts;           /* 5 */
	long long backoff_ms;       /* first retry delay (1s), doubled each time */
	long long backoff_max;      /* 30s */
	struct tg_metrics *metrics; /* may be NULL */
};

struct tg_notifier;

/* Starts the thread.  curl_global_init must have run. */
int tg_notifier_new(struct tg_notifier **out, const struct tg_notifier_opts *opts,
		    struct tg_err *err);
/* Stops the thread (a transfer in flight is aborted) and frees what is
 * queued.  NULL is a no-op. */
void tg_notifier_free(struct tg_notifier *n);

/* Waits at most timeout_ms for the queue to empty (at shutdown: the last
 * pass's final state should still reach Bitbucket).  Returns the number
 * of statuses still queued or in flight. */
size_t tg_notifier_drain(struct tg_notifier *n, long long timeout_ms);

/* Queues a build status for commit sha of sync (for logs); t and st are
 * copied.  Never blocks on I/O. */
void tg_notifier_status(struct tg_notifier *n, const char *sync, const struct tg_bb_target *t,
			const char *sha, const struct tg_bb_status *st);

struct tg_notifier_stats {
	unsigned long sent, failed, dropped, skipped, queued;
};
void tg_notifier_stats(struct tg_notifier *n, struct tg_notifier_stats *out);

#endif
