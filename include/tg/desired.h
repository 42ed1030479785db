/*
 * Desired state: turns a checked-out config directory into the set of
 * objects (classic APIs, Tyk OAS APIs, policies) a sync must make true.
 *
 * Objects are Tyk's own JSON, kept verbatim: only ids, names, listen paths,
 * domains and policy references are read.  Loading is pure apart from
 * reading files under the root and the secrets directory.
 */
#ifndef TG_DESIRED_H
#define TG_DESIRED_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/common.h"
#include "tg/posmap.h"
#include "tg/problems.h"

enum tg_kind { TG_KIND_API, TG_KIND_OAS_API, TG_KIND_POLICY };
#define TG_KIND_COUNT 3

struct tg_loadmemo;

/* "api", "oas", "policy" */
const char *tg_kind_name(enum tg_kind kind);

/* Where a field came from, for problems reported after loading. */
struct tg_src {
	char *field;      /* JSON path in the file, e.g. "api_definition.api_id" */
	int line, column; /* 0 when unknown */
};

struct tg_object {
	enum tg_kind kind;
	char *id;         /* api_id, x-tyk-api-gateway.info.id or policy id/_id */
	char *name;       /* may be NULL */
	char *file;       /* relative to the repository root */
	int line, column; /* where the document starts */
	/* The object as sent to the gateway, owned: read it through
	 * tg_object_body, since an object a memo gave (loadmemo.h) holds it
	 * as text until a pass needs the tree (body NULL, body_text set). */
	cJSON *body;
	char *body_text;
	char *listen_path; /* APIs only, may be NULL */
	char *domain;      /* APIs only, may be NULL */
	char **api_refs;   /* policies only: API ids named in access_rights */
	size_t n_api_refs;
	/* Added: positions for reports made after loading (duplicates,
	 * references checked against the gateway). */
	struct tg_src id_src;
	struct tg_src listen_path_src;
	struct tg_src *api_ref_srcs; /* n_api_refs entries */
	/* With tg_load_opts.keep_positions: where every field of the document
	 * came from (pos_base: where the object sits in it, "" or "oas"...),
	 * for tg_object_locate.  NULL otherwise. */
	struct tg_pos_map *pos;
	char *pos_base;
};

/*
 * o's body as a tree, parsed from its text the first time it is asked for
 * (the object is changed in place: not for use from two threads at once).
 * Never NULL: text the memo wrote that is not JSON is a bug and aborts.
 */
cJSON *tg_object_body(const struct tg_object *o);

struct tg_desired {
	struct tg_object *objects;
	size_t len, alloc;
	/* Values filled in by ${VAR} substitution: never to be printed. */
	char **secrets;
	size_t n_secrets;
	/* Some value held "${": what was loaded depends on the environment and
	 * the secrets directory too, not only on the files. */
	int used_vars;
	int refs; /* owners besides the first (tg_desired_ref) */
};

/* Returns the value of name or NULL; lets tests inject an environment. */
typedef const char *(*tg_getenv_fn)(const char *name, void *ctx);

struct tg_load_opts {
	/* Trusted directory (a checkout's work tree, a directory given on the
	 * command line): opened as it is.  Without path, it holds apis/ and
	 * policies/ (or .tyk.json). */
	const char *root;
	/* Directory below root holding apis/ and policies/ (a sync's path), or
	 * NULL.  Like everything below root it is opened one component at a
	 * time without following symbolic links, and ".." is refused: the
	 * repository decides what its links point at.  Problems and
	 * tg_object.file name files relative to root/path, as before. */
	const char *path;
	const char *repo_root;   /* for relative file names in problems; defaults to root/path */
	const char *secrets_dir; /* ${VAR} may come from a file named VAR here; may be NULL */
	tg_getenv_fn getenv_fn;  /* NULL means getenv(3) */
	void *getenv_ctx;
	int allow_empty; /* an empty repository is not an error */
	/* Objects keep their document's positions (tg_object.pos), for checks
	 * made after loading (rules.h).  Costs memory in proportion to the
	 * files: off unless a sync has rules. */
	int keep_positions;
	/* A checkout of a commit: content_id names what a file below
	 * root/path (as "apis/a.json") holds, a git blob id, or NULL when not
	 * known; a file whose id memo kept from an earlier load is not read
	 * again but taken from memo, and a file read is recorded there
	 * (loadmemo.h).  Both NULL, or keep_positions: every file is read. */
	const char *(*content_id)(void *ctx, const char *rel);
	void *content_ctx;
	struct tg_loadmemo *memo;
};

/*
 * Loads every object under opts->root (and opts->path).  Problems in the
 * input (parse errors, missing ids, duplicates, bad references within the
 * repository, symbolic links...) are appended to problems, all of them, and
 * do not make the call fail: the caller decides (problems->errors > 0 means
 * the commit must not be applied).  Warnings do not block: a file that
 * .tyk.json lists more than once is loaded once, with a warning at the
 * repeated entry; an API that needs something from the gateway's own
 * environment (tg_tyk_external_dependency: a plugin bundle, a middleware
 * file, a certificate by id) gets a warning at its start, since a gateway
 * without it skips the definition at reload.  Symbolic links below root
 * are never followed: one met by the directory scan is a warning and
 * skipped; one in opts->path, as apis/ or policies/, as .tyk.json or on the
 * way to a file the manifest names is an error.  YAML alias expansion draws
 * on one budget for all files (see tg_yaml_parse_budgeted in yaml.h).
 * Returns 0, or a negative code when loading cannot start: root or
 * root/path missing (TG_ENOTFOUND) or unreadable, ".." in opts->path
 * (TG_EINVALID).  *out is owned by the caller, free with tg_desired_free.
 */
int tg_desired_load(struct tg_desired **out, struct tg_problems *problems,
		    const struct tg_load_opts *opts, struct tg_err *err);

/*
 * Checks policy references against API ids known to exist on the gateway
 * (in addition to those in the repository).  known may be NULL (offline).
 */
void tg_desired_check_refs(const struct tg_desired *d, const char *const *known_api_ids,
			   size_t n_known, struct tg_problems *problems);

/*
 * Like tg_desired_load, for one in-memory file instead of a directory:
 * file is its path relative to the root ("apis/x.yaml", "policies/p.json"),
 * which decides the kind (policies/ holds policies, anything else APIs) and
 * the format (.json is JSON, anything else YAML).  opts->root is unused;
 * secrets_dir, getenv_fn and allow_empty apply.  For fuzzing and tests.
 */
int tg_desired_load_buffer(struct tg_desired **out, struct tg_problems *problems,
			   const struct tg_load_opts *opts, const char *file, const char *data,
			   size_t len);

/* Limits: bigger files are reported as problems, deeper trees not walked.
 * Values filled in by ${VAR} may add up to the larger of
 * TG_DESIRED_FILL_FLOOR and TG_DESIRED_FILL_FACTOR times the size of the
 * files loaded; past that, an error (once) and no more lookups. */
#define TG_DESIRED_MAX_FILE_SIZE ((size_t)8 * 1024 * 1024)
#define TG_DESIRED_MAX_DIR_DEPTH 32
#define TG_DESIRED_MAX_ID_LEN 255
#define TG_DESIRED_FILL_FACTOR 64
#define TG_DESIRED_FILL_FLOOR ((size_t)16 * 1024 * 1024)

/*
 * Line and column of field (a dotted path in the object's body, "" for the
 * object itself) or of its nearest ancestor with a position; the object's
 * start when it kept no positions.
 */
void tg_object_locate(const struct tg_object *o, const char *field, int *line, int *column);

/* Frees what o holds (not o itself), for code that builds objects. */
void tg_object_release(struct tg_object *o);

const struct tg_object *tg_desired_find(const struct tg_desired *d, enum tg_kind kind,
					const char *id);
/* One more owner: each owner calls tg_desired_free once; the last frees.
 * For a sync that keeps the state of an unchanged commit across passes
 * while each pass's result holds it too (one thread). */
void tg_desired_ref(struct tg_desired *d);
void tg_desired_free(struct tg_desired *d);

#endif
