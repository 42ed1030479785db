/*
 * What the gateway's lists held when a pass last looked, element by
 * element, so that a pass where little changed parses only what changed.
 *
 * An entry maps the SHA-256 of one list element's bytes (tg_listscan) to a
 * verdict the planner reached on those very bytes:
 *   in sync   the sync owns it and it matched the desired object of its id
 *             whose tg_diff_hash was H: no write, no diff;
 *   foreign   another sync's (or nobody's) object that the sync does not
 *             desire: only its id, marker and policy references matter;
 *   dropped   an OAS API in the classic list (the gateway lists those twice).
 * The diff is a function of the desired body (named by its hash) and the
 * element's bytes only, so a verdict holds as long as both are the same:
 * an element whose bytes are known AND whose desired object still has hash
 * H (in sync), or still does not exist (foreign), becomes a small skeleton
 * (ids, marker, access rights: all that the plan, the safety rules and the
 * status rows read of an object they do not diff) instead of being parsed.
 * Everything else (a hand edit changes the bytes, a commit changes H) is
 * parsed and planned as before, and the verdicts are recorded again after
 * the plan.  Entries hold no name and no value that ${VAR} filled in.
 *
 * The cache lives in memory in a sync's tg_syncer across passes and in a
 * file in the sync's cache directory between CLI runs; a file that cannot
 * be read, or is not one this version wrote for this sync, is ignored.
 * Use from one thread.
 */
#ifndef TG_VERIFIED_H
#define TG_VERIFIED_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/common.h"
#include "tg/desired.h"
#include "tg/plan.h"

/* A file larger than this is not loaded (about 300 bytes an object). */
#define TG_VERIFIED_MAX_FILE ((size_t)256 * 1024 * 1024)

struct tg_verified;

/* An empty cache for the sync named sync; path (may be NULL: memory only)
 * is its file, read by tg_verified_load and written by tg_verified_save. */
struct tg_verified *tg_verified_new(const char *sync, const char *path);
void tg_verified_free(struct tg_verified *v);

/* Reads the file once (later calls do nothing).  A missing, unreadable or
 * malformed file leaves the cache empty: it is only ever a shortcut. */
void tg_verified_load(struct tg_verified *v);

/* Writes the file (atomically, mode 0600) when the entries changed since it
 * was read or written. */
int tg_verified_save(struct tg_verified *v, struct tg_err *err);

/* Number of entries (for tests and benchmarks). */
size_t tg_verified_count(const struct tg_verified *v);

/*
 * One pass's view: the desired objects and their hashes, and every list
 * element the pass read with its bytes' hash and whether it is a skeleton.
 */
struct tg_verified_pass;

/* hashes[i] is tg_diff_hash of d->objects[i]; both must outlive the pass. */
struct tg_verified_pass *tg_verified_pass_new(struct tg_verified *v, const struct tg_desired *d,
					      const char (*hashes)[65]);
void tg_verified_pass_free(struct tg_verified_pass *p);

/*
 * Builds the gateway's list of kind from its reply data[0..len): elements
 * with a verdict that still holds become skeletons (a dropped one is left
 * out), the others are parsed (an OAS API in the classic list is left
 * out).  Returns 0 and *out (a cJSON array, the caller's), or TG_EINVALID
 * when the reply is not a JSON array of objects or an element is not JSON:
 * the caller then parses the reply whole and reports the problem.
 */
int tg_verified_list(struct tg_verified_pass *p, enum tg_kind kind, const char *data, size_t len,
		     cJSON **out);

/*
 * The same while the reply arrives (tg_gateway_list_all_raw's progress):
 * each element is hashed, looked up and parsed or made a skeleton as soon
 * as its last byte is in, so that the work runs while the gateway is still
 * sending.  tg_verified_feed_progress is the progress function (ctx: the
 * feed): it lets go of the bytes of the elements it has handled, so a
 * reply is never held whole.  tg_verified_feed_finish takes the rest of
 * the reply (what was not let go) and gives what tg_verified_list would,
 * consuming the feed; when it fails, the reply must be read again to be
 * parsed whole if bytes were let go.  A feed given up (the call failed) is
 * freed with tg_verified_feed_free, which undoes what it added to the pass.
 */
struct tg_verified_feed;

struct tg_verified_feed *tg_verified_feed_new(struct tg_verified_pass *p, enum tg_kind kind);
size_t tg_verified_feed_progress(void *feed, const char *data, size_t len);
int tg_verified_feed_finish(struct tg_verified_feed *f, const char *data, size_t len, cJSON **out);
void tg_verified_feed_free(struct tg_verified_feed *f);

/*
 * A feed that hands each element to visit instead of keeping it: visit
 * sees the element (a skeleton when skeleton is 1) and the hash of its
 * bytes, and the element is freed when it returns; the list the feed ends
 * with is empty.  For reading a list to check it, not to plan from it, in
 * the memory of one element.
 */
typedef void (*tg_verified_visit_fn)(void *ctx, enum tg_kind kind, const cJSON *obj,
				     const unsigned char bytes_hash[32], int skeleton);

struct tg_verified_feed *tg_verified_feed_visiting(struct tg_verified_pass *p, enum tg_kind kind,
						   tg_verified_visit_fn visit, void *ctx);

/* 1 when obj is a skeleton standing for an object in sync (for the planner:
 * see tg_plan_opts.in_sync). */
int tg_verified_in_sync(void *pass, enum tg_kind kind, const cJSON *obj);

/* Skeletons and parsed objects made by this pass. */
void tg_verified_pass_counts(const struct tg_verified_pass *p, size_t *skeletons, size_t *parsed);

/*
 * After planning: the cache becomes the verdicts of this pass, every
 * element that was in sync (plan action "unchanged"), foreign or dropped.
 * An element whose skeleton would hold one of secrets (values ${VAR} filled
 * in) is not recorded.
 */
void tg_verified_record(struct tg_verified_pass *p, const struct tg_plan *plan,
			const char *const *secrets, size_t n_secrets);

/*
 * After a write and its read-back through this pass's lists (made after
 * tg_verified_record, on the same cache): obj, the element the gateway
 * serves for a written object that read back as written, is in sync with
 * the desired object of hash desired_hash when it carries the sync's
 * marker with that hash; such elements are added to the cache, so the
 * next pass need not parse them either.  Returns 1 when noted.
 */
int tg_verified_note_in_sync(struct tg_verified_pass *p, enum tg_kind kind, const cJSON *obj,
			     const char *desired_hash);
/* The same for an element a visiting feed handed over, named by the hash
 * of its bytes. */
int tg_verified_note_bytes_in_sync(struct tg_verified_pass *p, enum tg_kind kind, const cJSON *obj,
				   const unsigned char bytes_hash[32], const char *desired_hash);
/* Adds what was noted to the cache (a value in secrets keeps an element
 * out, as in tg_verified_record). */
void tg_verified_merge(struct tg_verified_pass *p, const char *const *secrets, size_t n_secrets);

#endif
