/*
 * Fuzz target for the identity file decoder (node/identity.c: the node's secret key file).
 *
 * Arbitrary bytes must never crash identity_decode or make it read out of bounds, and it
 * may only fail with the codes identity.h documents. A file that decodes re-encodes to
 * exactly the input (the format has one spelling per key). Random bytes almost never
 * carry a valid CRC-32C, so each input of the file's size is also tried with its crc32c
 * line recomputed, letting mutations reach the checks behind the checksum (hex digits,
 * the seed deriving the stored public key).
 */
#include "base/assert.h"
#include "base/crc32c.h"
#include "node/identity.h"
#include <aspen/error.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where the crc32c line starts, and its 8 hex digits (identity.h's format). */
enum { CRC_LINE_AT = IDENTITY_FILE_BYTES - 16, CRC_HEX_AT = IDENTITY_FILE_BYTES - 9 };

static void check(const char *text, size_t size)
{
    struct node_identity id;
    char why[160];
    int rc = identity_decode(text, size, &id, why, sizeof(why));
    if (rc != 0) {
        ASPEN_ASSERT(rc == ASPEN_E_TRUNCATED || rc == ASPEN_E_MALFORMED || rc == ASPEN_E_CORRUPT);
        ASPEN_ASSERT(why[0] != '\0');
        return;
    }
    ASPEN_ASSERT(size == IDENTITY_FILE_BYTES);
    char again[IDENTITY_FILE_BYTES];
    identity_encode(id.secret_key, id.public_key, again); /* the seed is sk's first half */
    ASPEN_ASSERT(memcmp(again, text, IDENTITY_FILE_BYTES) == 0);
    identity_release(&id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check((const char *)data, size);
    if (size == IDENTITY_FILE_BYTES) {
        char fixed[IDENTITY_FILE_BYTES + 1];
        memcpy(fixed, data, size);
        uint32_t crc = crc32c(fixed, CRC_LINE_AT);
        snprintf(fixed + CRC_HEX_AT, 9, "%08x", crc);
        fixed[IDENTITY_FILE_BYTES - 1] = (char)data[size - 1];
        check(fixed, size);
    }
    return 0;
}
