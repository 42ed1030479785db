/*
 * tyk-sync's formats in a config repository: the .tyk.json manifest, which
 * lists the files to load instead of scanning apis/ and policies/, and the
 * wrappers of a Dashboard export (`tyk-sync dump`) around an API.
 */
#ifndef TG_MANIFEST_H
#define TG_MANIFEST_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/common.h"
#include "tg/problems.h"

/* What a file holds: APIs (classic or Tyk OAS) or policies. */
enum tg_family { TG_FAMILY_API, TG_FAMILY_POLICY };

/*
 * The API inside root when root is a Dashboard export wrapper
 * ({"oas": {...}} or {"api_definition": {...}}, and neither api_id nor
 * openapi at the top), with *base set to its key; else root itself, *base
 * untouched.  The result points into root.
 */
cJSON *tg_manifest_unwrap(cJSON *root, const char **base);

/* Opens and loads name (as the manifest writes it, relative to the
 * manifest's directory) as a file of fam.  Returns 0, or a negative code
 * with the reason in err when it cannot be opened (nothing was loaded). */
typedef int (*tg_manifest_open_fn)(void *ctx, const char *name, enum tg_family fam,
				   struct tg_err *err);

/*
 * Reads the manifest data[0..len), shown in problems as file:
 * {"files":[{"file":...}],"oas":[...],"policies":[{"file":...}]}.  Every
 * file it lists is passed to open_fn once, in the order listed.  Problems
 * go to problems, at the entry: an entry without a file name, a path that
 * leaves the repository (absolute, or through ".."), a file that cannot be
 * opened are errors; a file listed again is a warning (loading it twice
 * would make its objects duplicates of themselves).
 */
void tg_manifest_load(struct tg_problems *problems, const char *file, const char *data, size_t len,
		      tg_manifest_open_fn open_fn, void *ctx);

#endif
