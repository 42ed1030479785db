/*
 * What earlier loads of the desired state found in each file, by the id of
 * the file's content (a git blob id), so that a load of a new commit reads
 * only the files the commit changed: a file whose content is the same
 * gives the same objects, and the objects' hashes (tg_diff_hash) with them.
 *
 * Only a file that loaded without any problem, without "${" and without
 * drawing on the YAML alias budget is kept: what those give depends on
 * more than the file (the environment, secret files, the files before it).
 * Objects are kept as compact JSON, parsed again on reuse; a body with a
 * raw number (one a double cannot hold) is not kept, since parsing it back
 * would not give the same node.  Positions (tg_object.pos) are not kept:
 * a load that keeps them does not use a memo.
 *
 * One memo per sync: in the controller's memory across passes, and in a
 * file of the sync's cache directory so that every CLI run does not start
 * from nothing.  The file is a shortcut only: one that is missing,
 * unreadable, damaged (it ends in its own SHA-256), written by another
 * version or for another key is ignored.
 * It never holds a value filled in by ${VAR}, since such files are not
 * kept.  One thread at a time.
 */
#ifndef TG_LOADMEMO_H
#define TG_LOADMEMO_H

#include <stddef.h>

#include "tg/common.h"
#include "tg/desired.h"

/* The file's bound: a bigger memo is neither written nor read. */
#define TG_LOADMEMO_MAX_FILE ((size_t)256 * 1024 * 1024)

struct tg_loadmemo;

/* A memo saved to path (read at the first tg_loadmemo_begin), or kept in
 * memory only when path is NULL.  Free with tg_loadmemo_free. */
struct tg_loadmemo *tg_loadmemo_new(const char *path);
void tg_loadmemo_free(struct tg_loadmemo *m);

/*
 * Starts a load whose content ids mean what key says (the version that
 * loads, and whatever else decides a file's bytes, such as the checkout's
 * .gitattributes): kept files of another key are dropped.  Reads the file
 * the first time.
 */
void tg_loadmemo_begin(struct tg_loadmemo *m, const char *key);

/*
 * The loader's side.  take: when file (as tg_object.file names it) was
 * kept with content id, appends its objects to d, sets *bytes (the file's
 * size) and *seen (what it adds to the documents seen) and returns 0;
 * otherwise -1 and d unchanged.  record: keeps what a file with content id
 * gave (objs[0..n), copied, hashes to come through tg_loadmemo_set_hash);
 * the caller makes sure the file had no problem and no "${".
 */
int tg_loadmemo_take(struct tg_loadmemo *m, const char *file, const char *id, struct tg_desired *d,
		     size_t *bytes, size_t *seen);
void tg_loadmemo_record(struct tg_loadmemo *m, const char *file, const char *id, size_t bytes,
			size_t seen, const struct tg_object *objs, size_t n);

/* The pass's side, once the load is complete: the hash kept for o (0, or
 * -1 when there is none), and the hash of an object just recorded. */
int tg_loadmemo_hash(struct tg_loadmemo *m, const struct tg_object *o, char out[65]);
void tg_loadmemo_set_hash(struct tg_loadmemo *m, const struct tg_object *o, const char hash[65]);

/*
 * Ends the load: keeps the files it took or recorded with every hash known
 * (a file whose object was dropped as a duplicate is not), forgets the
 * rest, and saves the file when anything changed.  Returns 0, or TG_ERROR
 * with err set when the file cannot be written (the memo in memory is
 * still good).
 */
int tg_loadmemo_finish(struct tg_loadmemo *m, struct tg_err *err);

/* Files kept, and files taken by the load in progress or the last one. */
size_t tg_loadmemo_len(const struct tg_loadmemo *m);
size_t tg_loadmemo_taken(const struct tg_loadmemo *m);

#endif
