/*
 * ${VAR} placeholders in the string values of the desired state:
 * ${VAR}, ${VAR:-default} and $${ (a literal "${").
 *
 * Shell semantics for the default: used when VAR is unset or empty.  A
 * default ends at the first '}', so defaults cannot nest, and substituted
 * values are not expanded again.  VAR is looked up in the environment
 * (tg_load_opts.getenv_fn), then in a file named VAR in
 * tg_load_opts.secrets_dir.
 */
#ifndef TG_PLACEHOLDERS_H
#define TG_PLACEHOLDERS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/desired.h"
#include "tg/validate.h"

/* The filling of one load: every document of it draws on one limit. */
struct tg_placeholders {
	const struct tg_load_opts *opts; /* secrets_dir, getenv_fn, getenv_ctx */
	struct tg_desired *d;            /* takes the secrets filled in; used_vars */
	/* Bytes of the files loaded so far, kept up to date by the caller:
	 * values may fill in the larger of TG_DESIRED_FILL_FLOOR and
	 * TG_DESIRED_FILL_FACTOR times that. */
	size_t input;
	size_t filled; /* bytes filled in so far */
	int over;      /* the limit was reached: reported once, nothing more looked up */
};

/*
 * Fills in every placeholder in the string values below body, in place.
 * Values from the environment or secret files go into ph->d->secrets;
 * defaults do not, since they are written in the repository and redacting
 * short ones ("80", "true") would garble logs.  Any string holding "${"
 * sets ph->d->used_vars.  Problems (an unset variable without default, an
 * invalid name, an unterminated "${", an unreadable secret file, the limit)
 * are errors reported at the field through at; a string with one keeps its
 * text.
 */
void tg_placeholders_fill(struct tg_placeholders *ph, const struct tg_doc_at *at, cJSON *body);

#endif
