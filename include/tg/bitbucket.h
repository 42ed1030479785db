/*
 * Bitbucket out: where a sync's repository lives in Bitbucket's REST APIs
 * and what a request to them looks like.  Pure: coordinates from a repo
 * URL (Cloud: workspace and repo slug; Data Center: base URL, project key
 * and slug), overridable from the sync's `bitbucket:` settings; the build
 * status request; the status key; reading Bitbucket's error replies and
 * Retry-After.  The I/O (queue, retries, curl) is notifier.c's.
 *
 * Documented shapes this follows:
 *   Cloud  POST /2.0/repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build
 *          {"key","state","name","url","description"}; a status with the same
 *          key is overwritten (developer.atlassian.com/cloud/bitbucket/rest/
 *          api-group-commit-statuses/).
 *   DC     POST {base}/rest/api/latest/projects/{projectKey}/repos/{slug}/commits/{commit}/builds
 *          {"key","state","url","name","description"}, states INPROGRESS,
 *          SUCCESSFUL, FAILED; key, name and description at most 255
 *          characters, url at most 450 (developer.atlassian.com/server/
 *          bitbucket/how-tos/updating-build-status-for-commits).
 */
#ifndef TG_BITBUCKET_H
#define TG_BITBUCKET_H

#include <stddef.h>

#include "tg/common.h"
#include "tg/config.h"

enum tg_bb_api { TG_BB_CLOUD, TG_BB_DC };

/* Where a repository's statuses and reports go, and how to authenticate. */
struct tg_bb_target {
	enum tg_bb_api api;
	char *base_url; /* no trailing slash: https://api.bitbucket.org, https://bb.corp/context */
	char *owner;    /* Cloud workspace, or DC project key */
	char *slug;     /* repository slug */
	char *token_file; /* NULL: no credentials (the Pipelines proxy) */
	char *email;      /* with token_file: email + API token as Basic (Cloud) */
	char *proxy;      /* HTTP proxy URL, or NULL */
	char *ca_file;    /* NULL: the system CAs */
	long long timeout_ms;
};

/*
 * Fills out from repo_url and the sync's `bitbucket:` overrides (any of
 * cfg->bb_* that is set wins).  bitbucket.org (and ssh/scp forms of it)
 * is Cloud; any other host is Data Center, whose clone URLs look like
 * https://host[:port][/context]/scm/PROJECT/slug.git or
 * ssh://git@host:7999/PROJECT/slug.git.  Returns TG_EINVALID (with what
 * is missing) when the coordinates cannot be found.
 */
int tg_bb_target_resolve(struct tg_bb_target *out, const struct tg_sync_config *cfg,
			 struct tg_err *err);
void tg_bb_target_release(struct tg_bb_target *t);
/* Deep copy. */
void tg_bb_target_copy(struct tg_bb_target *dst, const struct tg_bb_target *src);

/* "cloud" or "datacenter" (the metric's api label). */
const char *tg_bb_api_name(enum tg_bb_api api);

/* A build status: state is INPROGRESS, SUCCESSFUL or FAILED. */
struct tg_bb_status {
	const char *key, *state, *name, *url, *description;
};

/* Field limits of Data Center's build status (Cloud's are larger). */
#define TG_BB_FIELD_MAX 255
#define TG_BB_URL_MAX 450
/* Cloud's status key limit, which we keep for both: stable per sync. */
#define TG_BB_KEY_MAX 40

/* "tyk-gitops-<sync>", or, past 40 bytes, its first bytes and a hash of
 * the whole name so two long names never share a key. */
void tg_bb_status_key(char out[TG_BB_KEY_MAX + 1], const char *sync);

/*
 * The POST of a build status for commit sha: the full URL and the JSON
 * body (fields clipped to the limits above on a UTF-8 boundary, with
 * "…").  Caller frees both.
 */
void tg_bb_status_request(char **url, char **body, const struct tg_bb_target *t, const char *sha,
			  const struct tg_bb_status *st);

/* The controller's own page of a sync, the default link of its statuses:
 * http://<listen>/api/v1/syncs/<sync>, a wildcard or empty host becoming
 * localhost.  Caller frees. */
char *tg_bb_default_status_url(const char *listen, const char *sync);

/* Percent-encodes a path segment (RFC 3986 unreserved kept).  Caller frees. */
char *tg_bb_path_escape(const char *s);

/* A copy of s cut to at most max bytes on a UTF-8 boundary, ending in
 * "…" when cut (max >= 4).  Caller frees. */
char *tg_bb_clip(const char *s, size_t max);

/*
 * The message of a Bitbucket error reply, for logs: Cloud's
 * {"type":"error","error":{"message","detail"}} or Data Center's
 * {"errors":[{"message"}]}; "" when the body is neither.  Untrusted input
 * as pointer + length; out is always terminated and printable.
 */
void tg_bb_reply_error(char *out, size_t size, const char *body, size_t len);

/*
 * Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date, as a
 * delay in ms from now_wall_ms, at most max_ms.  Returns -1 when value
 * is neither.
 */
long long tg_bb_retry_after_ms(const char *value, size_t len, long long now_wall_ms,
			       long long max_ms);

/*
 * What became of one request, for tyk_gitops_bitbucket_requests_total's
 * result label and the retry decision: http is the status (0 when no
 * answer), timed_out when curl gave up on time.
 *   ok, unauthorized (401/403), not_found (404), rejected (other 4xx),
 *   rate_limited (429), server_error (5xx), timeout, error (no answer)
 */
const char *tg_bb_result_name(long http, int timed_out);
/* Whether that result is worth another attempt (429, 5xx, timeout, no answer). */
int tg_bb_retryable(long http, int timed_out);

#endif
