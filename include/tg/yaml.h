/*
 * YAML documents to cJSON, faithfully: quoted scalars stay strings, plain
 * scalars that are YAML 1.2 core numbers, booleans or null become JSON
 * numbers, booleans and null; integers too big for a double are kept exact
 * (as raw cJSON numbers, json.h); anchors, aliases and merge keys are
 * resolved within a budget.  Each document remembers where its nodes came
 * from (posmap.h) so that problems can name the line and column of a field.
 */
#ifndef TG_YAML_H
#define TG_YAML_H

#include <stddef.h>

#include "tg/posmap.h"
#include "tg/problems.h"

/*
 * Parses every document in data[0..len) into out.  Parse errors are added
 * to problems with file:line:column (file is used only for messages) and
 * the function returns TG_EINVALID; documents parsed before the error are
 * kept.  The alias budget is this file's alone (see tg_yaml_parse_budgeted).
 */
int tg_yaml_parse(struct tg_docs *out, const char *data, size_t len, const char *file,
		  struct tg_problems *problems);

/*
 * What aliases may build, shared by the files of one pass so that many
 * small files cannot add up.  Aliases and merge keys copy nodes; the copies
 * are counted as the memory cJSON allocates for them (nodes and strings).
 * A file may build the larger of TG_YAML_EXPANSION_FLOOR and
 * TG_YAML_EXPANSION_FACTOR times its size; all files parsed with one
 * budget together the larger of TG_YAML_PASS_EXPANSION_FLOOR and the
 * factor times their total size.  Start from TG_YAML_BUDGET_INIT.
 */
struct tg_yaml_budget {
	size_t input;    /* bytes of YAML parsed with this budget */
	size_t expanded; /* bytes built through aliases and merge keys */
};

#define TG_YAML_BUDGET_INIT \
	{                   \
		0, 0        \
	}

/*
 * tg_yaml_parse, drawing on budget.  A document that crosses a limit is
 * reported at the alias (or merge key) that crossed it and dropped, and is
 * not built any further; later documents are still parsed and checked, and
 * each of them that needs an alias once the limit is used up is reported
 * too.  Returns 0 or TG_EINVALID.
 */
int tg_yaml_parse_budgeted(struct tg_docs *out, struct tg_yaml_budget *budget, const char *data,
			   size_t len, const char *file, struct tg_problems *problems);

/*
 * Limits, so that hostile input cannot exhaust memory or the stack.
 *
 * Alias copies are bounded relative to the input (above).  The factor is
 * what plain text can already cost: a flow sequence of one-digit numbers
 * builds an 80-byte node for every 2 bytes, so aliases at most about double
 * the memory a file could take without them.  It leaves room for generous
 * reuse: an OpenAPI document whose 300 operations each merge a shared set of
 * six error responses and parameters builds 36 bytes per byte of its text.
 * Positions are bounded by the position map's own cap (posmap.h).
 */
#define TG_YAML_MAX_DEPTH 256                                   /* nested mappings/sequences */
#define TG_YAML_EXPANSION_FACTOR 64                             /* alias bytes per input byte */
#define TG_YAML_EXPANSION_FLOOR ((size_t)2 * 1024 * 1024)       /* per file */
#define TG_YAML_PASS_EXPANSION_FLOOR ((size_t)64 * 1024 * 1024) /* per pass */

#endif
