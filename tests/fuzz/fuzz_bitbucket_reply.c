/*
 * Fuzz target for what Bitbucket sends back to the notifier and to
 * `tyk-gitops report`: the error body of a refused request (Cloud's
 * {"error":{"message"}} or Data Center's {"errors":[{"message"}]}) and a
 * Retry-After header (seconds or an HTTP-date).  The first byte picks the
 * output size, so short buffers are exercised too.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tg/bitbucket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char msg[256];
	size_t out;
	long long ms;

	if (size < 1)
		return 0;
	out = (size_t)data[0] % sizeof(msg);
	tg_bb_reply_error(msg, out, (const char *)data + 1, size - 1);
	if (out && strlen(msg) >= out)
		__builtin_trap();
	ms = tg_bb_retry_after_ms((const char *)data + 1, size - 1, 1767225600000LL, 60000);
	if (ms < -1 || ms > 60000)
		__builtin_trap();
	return 0;
}
