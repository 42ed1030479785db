/* libFuzzer target: YAML and JSON parsing of arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "tg/json.h"
#include "tg/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_docs docs = { NULL, 0, 0 };
	struct tg_problems problems;
	int line, column;

	tg_problems_init(&problems);
	tg_yaml_parse(&docs, (const char *)data, size, "fuzz.yaml", &problems);
	if (docs.len)
		tg_pos_lookup(docs.items[0].pos, "a.b", &line, &column);
	tg_docs_release(&docs);
	tg_json_parse(&docs, (const char *)data, size, "fuzz.json", &problems);
	tg_docs_release(&docs);
	tg_problems_release(&problems);
	return 0;
}
