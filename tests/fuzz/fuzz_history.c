/*
 * Fuzz target for the apply history file (history.h): it lives in the
 * cache directory, which another process or a disk fault may have left in
 * any state; parsing, rendering and writing it back must hold up.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "tg/history.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_history h;

	tg_history_init(&h);
	if (!tg_history_parse(&h, (const char *)data, size)) {
		cJSON *j = tg_history_json(&h, TG_HISTORY_MAX);
		char *text = cJSON_PrintUnformatted(j);

		tg_history_last_healthy(&h, NULL);
		if (h.len)
			tg_history_find(&h, h.items[0].commit);
		free(text);
		cJSON_Delete(j);
	}
	tg_history_release(&h);
	return 0;
}
