/*
 * Bitbucket webhooks (SPEC 7): the signature, the payloads of Bitbucket
 * Cloud (`repo:push`) and Data Center (`repo:refs_changed`), matching a
 * payload's repository and refs to a sync, the secrets (re-read when their
 * file changes, the previous ones honoured for an overlap) and the set of
 * delivery ids already served.
 *
 * Parsing and matching are pure; the key ring reads secret files; the
 * key ring and the delivery set lock themselves, so HTTP threads can share
 * them.
 */
#ifndef TG_WEBHOOK_H
#define TG_WEBHOOK_H

#include <stddef.h>

#include "tg/common.h"
#include "tg/gitsrc.h"

enum tg_webhook_flavor { TG_WEBHOOK_CLOUD, TG_WEBHOOK_DC };

enum tg_webhook_kind {
	TG_WEBHOOK_PUSH, /* Cloud repo:push, Data Center repo:refs_changed */
	TG_WEBHOOK_PING, /* Data Center diagnostics:ping ("Test connection") */
	TG_WEBHOOK_OTHER /* any other event: answered, never triggers */
};

/* What an X-Event-Key names; *flavor is set for pushes. */
enum tg_webhook_kind tg_webhook_event_kind(const char *event_key, enum tg_webhook_flavor *flavor);

struct tg_webhook_change {
	int is_tag;   /* else a branch */
	char *name;   /* branch or tag name, without refs/heads/ */
	char *commit; /* new target; NULL when the ref was deleted */
};

/* A push, as much of it as matching and provenance need.  Strings are
 * copies, valid UTF-8 and without control characters. */
struct tg_webhook_push {
	enum tg_webhook_flavor flavor;
	char *full_name;   /* Cloud "workspace/slug"; Data Center "PROJECT/slug" */
	char *uuid;        /* Cloud repository uuid "{...}"; NULL for Data Center */
	char *html_host;   /* Cloud: host of links.html.href (bitbucket.org) */
	char **clone_urls; /* Data Center: links.clone[].href */
	size_t n_clone_urls;
	char *actor_id;   /* Cloud account uuid; Data Center user slug or name */
	char *actor_name; /* display name */
	struct tg_webhook_change *changes;
	size_t n_changes;
};

/* Caps on what a payload may hold. */
#define TG_WEBHOOK_MAX_CHANGES 256
#define TG_WEBHOOK_MAX_CLONE_URLS 16

/*
 * Parses a push payload of the given flavor.  Errors: TG_EINVALID when the
 * body is not JSON or lacks the repository or the changes (the message
 * says which), with p released.
 */
int tg_webhook_parse_push(struct tg_webhook_push *p, enum tg_webhook_flavor flavor,
			  const char *body, size_t len, struct tg_err *err);
void tg_webhook_push_release(struct tg_webhook_push *p);

/*
 * A repository URL reduced to "host[:port]/path": lowercased, without
 * user, scheme, default port, ".git" or trailing slashes, so that the
 * https, ssh:// and scp-like (git@host:path) forms of one repository are
 * equal.  NULL for local paths and file:// URLs.  Caller frees.
 */
char *tg_webhook_url_key(const char *url);

/*
 * Whether the push is about the sync's repository.  explicit_repo (may be
 * NULL) is the sync's `webhook.repository`: a full name or a Cloud uuid
 * (braces optional), compared case-insensitively; when given, it alone
 * decides.  Otherwise repo_url is compared, in every form above, with
 * the payload: Cloud "<html host>/<full_name>"; Data Center any clone
 * link, or, for payloads without links, the last two path segments.
 */
int tg_webhook_repo_matches(const struct tg_webhook_push *p, const char *repo_url,
			    const char *explicit_repo);

/*
 * The change the sync follows (its branch or tag, by exact name), or NULL.
 * A sync pinned to a commit follows no ref.
 */
const struct tg_webhook_change *tg_webhook_ref_change(const struct tg_webhook_push *p,
						      enum tg_ref_type type, const char *ref);

/*
 * Checks "sha256=<hex>" (X-Hub-Signature) against the HMAC-SHA256 of body
 * under each secret, in constant time per secret.  Returns the index of
 * the secret that signed it, or -1 (missing or malformed header, or no
 * secret matches).
 */
int tg_webhook_signature_match(const char *header, const void *body, size_t len,
			       const char *const *secrets, size_t n);

/* Bitbucket uuids ("{...}") compared case-insensitively, braces optional. */
int tg_webhook_uuid_eq(const char *a, const char *b);

/* --- secrets ------------------------------------------------------------- */

/*
 * The secrets of every webhook secret file, by path.  A file holds one
 * secret per line (blank lines and a trailing CR ignored), so a new secret
 * can be staged next to the old.  The file is looked at (stat) on every
 * check and read again when it changed; the secrets it held before stay
 * accepted for overlap_ms after the change was seen, so Bitbucket and the
 * file need not change at the same instant.
 */
struct tg_webhook_keys;

struct tg_webhook_keys *tg_webhook_keys_new(void);
/* Wipes every secret. NULL is a no-op. */
void tg_webhook_keys_free(struct tg_webhook_keys *k);

/*
 * Verifies sig_header for body with the secrets of path.  now_ms is the
 * monotonic clock.  Returns 0 when a secret signed it (*previous set when
 * it was a secret from before the last change), TG_EAUTH when none did,
 * TG_ENOTFOUND / TG_EINVALID / TG_ERROR when the file cannot be read or
 * holds no secret (the message names the file, never a secret).
 */
int tg_webhook_keys_check(struct tg_webhook_keys *k, const char *path, long long overlap_ms,
			  long long now_ms, const char *sig_header, const void *body, size_t len,
			  int *previous, struct tg_err *err);

/* --- deliveries ------------------------------------------------------------ */

/* The last `capacity` delivery ids (kept as 128-bit hashes: bounded memory
 * whatever an id holds). */
struct tg_webhook_seen;

struct tg_webhook_seen *tg_webhook_seen_new(size_t capacity);
void tg_webhook_seen_free(struct tg_webhook_seen *s);
/* 1 when id is among the remembered ids; otherwise remembers it (evicting
 * the oldest when full) and returns 0. */
int tg_webhook_seen_check(struct tg_webhook_seen *s, const char *id);

#endif
