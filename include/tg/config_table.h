/*
 * The option tables behind the configuration loader: what config.c's
 * table-driven walk and config_blocks.c's custom setters share.  Internal
 * to the two: callers use config.h.
 *
 * Each YAML mapping is matched against a table of options; the table says
 * the key's type and where the value goes (an offset into the struct being
 * filled), so unknown keys and wrong types are reported uniformly with
 * their line.  The same tables drive equality (tg_sync_config_equal) and
 * release.
 */
#ifndef TG_CONFIG_TABLE_H
#define TG_CONFIG_TABLE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/config.h"
#include "tg/posmap.h"
#include "tg/problems.h"

enum tg_opt_type {
	TG_OPT_STRING,
	TG_OPT_BOOL,
	TG_OPT_INT,
	TG_OPT_DURATION,
	TG_OPT_SECTION,
	TG_OPT_CUSTOM
};

struct tg_config_walk;
struct tg_config_option;

/* Sets what the option says from v, below base; path names the key in
 * problems. */
typedef void (*tg_config_custom_fn)(struct tg_config_walk *w, const struct tg_config_option *opt,
				    const cJSON *v, void *base, const char *path);
/* Whether what a custom option sets is the same in two structs. */
typedef int (*tg_config_equal_fn)(const void *a, const void *b);

struct tg_config_option {
	const char *name;
	enum tg_opt_type type;
	int live;      /* a reload applies it in place (see tg_sync_config_equal) */
	size_t offset; /* into the struct being filled */
	/* TG_OPT_SECTION: nested table (same struct); TG_OPT_CUSTOM: the
	 * table the setter walks, if any */
	const struct tg_config_option *section;
	tg_config_custom_fn custom;
	tg_config_equal_fn equal; /* TG_OPT_CUSTOM: compares what custom sets */
};

/* One configuration file being walked. */
struct tg_config_walk {
	const char *file;
	const struct tg_pos_map *pos;
	int doc_line;
	struct tg_problems *problems;
	struct tg_config *cfg; /* the configuration being loaded (issuers for rules) */
};

/* An error at path (its line from the positions, else the document's):
 * fmt holds exactly one %s, filled with arg. */
void tg_config_problem(struct tg_config_walk *w, const char *path, const char *fmt, const char *arg)
	__attribute__((format(printf, 3, 0)));

/* "path.key", or "key" at the top.  Returns a new string. */
char *tg_config_join_path(const char *path, const char *key);

/* Applies every key of map through table into base; an unknown key is a
 * problem. */
void tg_config_walk_table(struct tg_config_walk *w, const struct tg_config_option *table,
			  const cJSON *map, void *base, const char *path);

#endif
