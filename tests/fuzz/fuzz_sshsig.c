/*
 * libFuzzer target for the parsers of outside input in the git source:
 * armored SSH signatures (tg_sshsig_verify), public key lines
 * (tg_sshsig_parse_pubkey) and known_hosts text (tg_known_hosts_check).
 * Every input goes through all three.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg/known_hosts.h"
#include "tg/sshsig.h"
#include "tg/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = {
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHaXh4E2D/DLuqpIHR6JqBkYQ1tvOtBhVPMl6Ba+7f+4 ed",
	"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCVkHc3zLDS9+Zq3avDSUEsSXRynZi0+/IO28B8Sv0GA2RvyIbBIu"
	"ZDwixqPqXvhPOvUv5+0iO01tbSbV3PrI3pBXHgz7erQcEWrOg3B4EyRK7he8AuTnjaaXEveFMtWHrHLJx7Et4OFl6YP"
	"tV+YO/J8touom1pzGuC5xrZZt426OEsM1ddCbpdjhiwbK50tdcEyfCyFLtjZY6zOBNbBBgxHiqmWhy0+0yS2VdLDhk9"
	"/giAMPVFPJWp2Kz+Mk8LRJFnsZzS7rtIEH5izrpVNvzQCGfNtlvA2vPkafyKP45DFrC/P4VMUipLNu3AYZjnriz7H3e"
	"krrf4gE15Jfk/uSbX rsa",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char msg[] = "tree abc\n\nhello signed world\n";
	struct tg_err err;
	unsigned char *blob = NULL, key[51];
	size_t blob_len = 0;
	char fpr[64];

	tg_sshsig_verify((const char *)data, size, msg, strlen(msg), "git", keys, 2, fpr, &err);
	if (tg_sshsig_parse_pubkey(&blob, &blob_len, (const char *)data, size, &err) == 0)
		tg_sshsig_fingerprint(fpr, blob, blob_len);
	free(blob);
	memset(key, 0x41, sizeof(key));
	tg_known_hosts_check((const char *)data, size, "127.0.0.1", 2222, key, sizeof(key));
	tg_known_hosts_check((const char *)data, size, "example.org", 22, key, sizeof(key));
	return 0;
}
