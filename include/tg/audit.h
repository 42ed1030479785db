/*
 * Audit trail: one JSON line per object change, written ahead.
 *
 * Before the controller writes an object to the gateway it appends an
 * "intent" record and makes it durable (fdatasync); after the pass it
 * appends the "outcome" record of the same operation ("op").  A crash
 * between the two leaves an open intent.  Opening the trail replays the
 * existing file to find every open intent, so the next pass of that sync
 * can close it by reading the gateway (outcome with "recovered": true).
 *
 * An outcome "failed" whose write the gateway had accepted ("written":
 * true, e.g. the reload failed) also stays open: the object may still go
 * live, and the next pass records it when it does.
 *
 * Every string is written as valid UTF-8 (invalid bytes become U+FFFD), so
 * a hostile author name cannot break the JSON lines.  Use from one thread.
 */
#ifndef TG_AUDIT_H
#define TG_AUDIT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/common.h"
#include "tg/plan.h"

#define TG_AUDIT_OP_MAX 64

enum tg_audit_phase { TG_AUDIT_INTENT, TG_AUDIT_OUTCOME };

enum tg_audit_result {
	TG_AUDIT_PENDING,    /* intent: about to be written */
	TG_AUDIT_APPLIED,    /* outcome: live on the gateway as intended */
	TG_AUDIT_FAILED,     /* outcome: not live (see error, and "written") */
	TG_AUDIT_NOT_APPLIED /* outcome of a recovered intent: the change never took effect */
};

struct tg_audit_record {
	enum tg_audit_phase phase;
	enum tg_audit_result result;
	char op[TG_AUDIT_OP_MAX]; /* links an intent with its outcome */
	const char *sync, *commit, *author, *trigger, *actor;
	/* the commit author as Bitbucket shows it (its account mapping
	 * matches on the email); author is "name <email>" */
	const char *author_name, *author_email;
	enum tg_kind kind;
	const char *id;
	enum tg_action action;
	const char *before_hash, *after_hash;
	const char *error; /* or NULL */
	int written;       /* outcome: the gateway accepted the write */
	int recovered;     /* outcome: found by reading the gateway after a crash */
};

/* An operation whose last record leaves it open (see above).  Strings are
 * owned by the trail. */
struct tg_audit_op {
	char op[TG_AUDIT_OP_MAX];
	char *sync, *commit, *author, *trigger, *actor;
	char *author_name, *author_email;
	enum tg_kind kind;
	char *id;
	enum tg_action action;
	char *before_hash, *after_hash;
};

struct tg_audit;

/*
 * Opens path for appending ("-" is stdout, whose past cannot be read back,
 * so crash recovery needs a file) and replays what it holds to find open
 * operations.  Unparseable lines (a torn last line after a crash) are
 * skipped.  Errors: TG_ERROR with the path and the system's reason.
 */
int tg_audit_open(struct tg_audit **out, const char *path, struct tg_err *err);
void tg_audit_free(struct tg_audit *a);
const char *tg_audit_path(const struct tg_audit *a);

/*
 * Appends n records and, for a regular file, makes them durable before it
 * returns.  Returns 0, or TG_ERROR when any byte could not be written or
 * synced (full disk, I/O error): the caller must then not change the
 * gateway for an intent that failed.
 */
int tg_audit_append(struct tg_audit *a, const struct tg_audit_record *recs, size_t n,
		    struct tg_err *err);

/*
 * A record about a whole commit rather than one object: "refused" (a
 * guardrail rule refused it: rule names the rules), "health_failed",
 * "rollback" (to commit, from from_commit) and the like.  It has no
 * "phase", so replay never takes it for an operation.  Errors as
 * tg_audit_append.
 */
struct tg_audit_event {
	const char *event;
	const char *sync, *commit, *author, *trigger, *actor;
	const char *rule;        /* or NULL */
	const char *from_commit; /* or NULL */
	const char *error;       /* or NULL */
};
int tg_audit_append_event(struct tg_audit *a, const struct tg_audit_event *ev, struct tg_err *err);

/* Open operations of one sync, oldest first, as a new array of pointers
 * (free it).  The operations stay valid until the next append. */
const struct tg_audit_op **tg_audit_open_ops(const struct tg_audit *a, const char *sync, size_t *n);

/* Fills rec's strings from an open operation, for its closing outcome. */
void tg_audit_record_from_op(struct tg_audit_record *rec, const struct tg_audit_op *op);

/*
 * Settles an open operation from what the gateway serves now (on_gateway:
 * the object with the operation's kind and id, or NULL): a delete took
 * effect when the object is gone; a write when the object carries this
 * sync's marker with the intended hash.  Pure.
 */
enum tg_audit_result tg_audit_judge(const struct tg_audit_op *op, const cJSON *on_gateway);

/* Makes a unique operation id: "<ms>-<pid>-<seq>". */
void tg_audit_new_op(char out[TG_AUDIT_OP_MAX], long long wall_ms, unsigned long seq);

const char *tg_audit_result_name(enum tg_audit_result r);

#endif
