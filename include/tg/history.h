/*
 * A sync's apply history: the last TG_HISTORY_MAX commits a pass applied
 * (or rolled back to), with outcome, health and who caused them, and the
 * rollback pin.  Kept as one JSON file in the sync's cache directory
 * (cache_dir/<sync>/history.json), replaced atomically, so it survives a
 * restart and `tyk-gitops history` can read what the controller did.
 *
 * The pin: after a rollback (automatic or `rollback --to`), passes check
 * out pin instead of the ref's commit for as long as the ref still points
 * at pin_head; a new commit on the ref, or a forced reconcile, lifts it.
 * That is how a commit that failed its health check is not applied again
 * on the next poll, and how drift repair holds the rolled-back state.
 */
#ifndef TG_HISTORY_H
#define TG_HISTORY_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/common.h"

#define TG_HISTORY_MAX 100
/* The file is ours, but read with a cap all the same. */
#define TG_HISTORY_MAX_FILE ((size_t)4 * 1024 * 1024)

struct tg_history_entry {
	char commit[41];
	char kind[16];        /* "apply" or "rollback" */
	char from_commit[41]; /* rollback: the commit it replaced */
	char outcome[16];     /* tg_outcome_name */
	char health[16];      /* "healthy", "unhealthy", "unchecked" */
	int rolled_back;      /* this commit failed its health check and was rolled back */
	long long wall_ms;    /* when the pass finished */
	char *author, *summary, *trigger, *actor, *error; /* may be NULL */
	size_t created, updated, deleted, failed;
};

struct tg_history {
	struct tg_history_entry *items; /* oldest first */
	size_t len;
	char pin[41];      /* "" when not pinned */
	char pin_head[41]; /* the ref's commit when the pin was set */
};

void tg_history_init(struct tg_history *h);
void tg_history_release(struct tg_history *h);

/*
 * Parses a history file's text into h (emptied first).  Entries that are
 * not well formed are skipped; a text that is no JSON object leaves h
 * empty and returns TG_EINVALID.  Pure.
 */
int tg_history_parse(struct tg_history *h, const char *data, size_t len);

/* Loads path into h; a missing file is an empty history (0).  Errors:
 * TG_EINVALID for a file that is not a history, TG_ERROR when unreadable. */
int tg_history_load(struct tg_history *h, const char *path, struct tg_err *err);

/* Writes h to path atomically (a temporary file renamed over it). */
int tg_history_save(const struct tg_history *h, const char *path, struct tg_err *err);

/* Appends a copy of e (strings duplicated), dropping the oldest entries
 * past TG_HISTORY_MAX. */
void tg_history_add(struct tg_history *h, const struct tg_history_entry *e);

/* The newest entry for commit, or NULL. */
struct tg_history_entry *tg_history_find(struct tg_history *h, const char *commit);

/* The newest entry whose commit passed its health check and is not
 * `except`, or NULL. */
const struct tg_history_entry *tg_history_last_healthy(const struct tg_history *h,
						       const char *except);

/* {"pin":..,"pin_head":..,"entries":[newest first, at most max]} */
cJSON *tg_history_json(const struct tg_history *h, size_t max);

#endif
