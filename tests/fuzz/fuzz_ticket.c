/*
 * Fuzz target for the cluster ticket decoder (node/ticket.h): the text a new node gets
 * from an operator, a chat message or a script, before it has talked to anyone.
 *
 * Arbitrary bytes must never crash ticket_decode or make it read out of bounds, and it may
 * only fail with the codes ticket.h documents, with a reason. What decodes must satisfy
 * the limits (1..ASPEN_MAX_VOTERS members, non-zero cluster id, ids derived from the keys,
 * addresses the encoder accepts) and the round trips: the decoded ticket re-encodes to the
 * input byte for byte once the surrounding whitespace the decoder allows is trimmed (the
 * text form has one spelling per ticket: libsodium refuses non-zero base64 padding bits),
 * and decoding that again gives an equal ticket.
 *
 * Random mutations of the text almost never keep the CRC-32C right, so each input is also
 * tried twice more: with its checksum recomputed when it is otherwise a base64url ticket,
 * and as the binary payload itself (prefix + base64url of the input + its CRC), which lets
 * every mutation reach the layout rules behind the checksum.
 */
#include "base/assert.h"
#include "base/buf.h"
#include "base/crc32c.h"
#include "base/hlc.h"
#include "base/slice.h"
#include "node/ticket.h"
#include <aspen/error.h>

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Larger than any ticket's binary form (ticket.c's TICKET_MAX_BINARY is about 12 KiB), so
 * an input can also be too long for the decoder. */
#define FUZZ_MAX_BINARY (16 * 1024)
#define FUZZ_MAX_TEXT   (sizeof(TICKET_PREFIX) + 4 * FUZZ_MAX_BINARY / 3 + 8)

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool tickets_equal(const struct ticket *a, const struct ticket *b)
{
    if (a->cluster_id != b->cluster_id || a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++) {
        const struct member_info *x = &a->members[i], *y = &b->members[i];
        if (x->id != y->id || memcmp(x->pk, y->pk, sizeof(x->pk)) != 0 ||
            strcmp(x->name, y->name) != 0 || strcmp(x->peer_addr, y->peer_addr) != 0 ||
            strcmp(x->client_urls, y->client_urls) != 0 || x->flags != y->flags)
            return false;
    }
    return true;
}

static void check(const char *text, size_t len)
{
    static struct ticket t, again; /* about 12 KiB each: off the stack */
    char why[160] = "";
    int rc = ticket_decode(text, len, &t, why, sizeof(why));
    if (rc != 0) {
        ASPEN_ASSERT(rc == ASPEN_E_MALFORMED || rc == ASPEN_E_CORRUPT);
        ASPEN_ASSERT(why[0] != '\0');
        return;
    }
    ASPEN_ASSERT(t.n >= 1 && t.n <= ASPEN_MAX_VOTERS);
    ASPEN_ASSERT(t.cluster_id != 0);
    for (uint32_t i = 0; i < t.n; i++) {
        const struct member_info *m = &t.members[i];
        ASPEN_ASSERT(m->id == hlc_node_id_from_key(m->pk, sizeof(m->pk)));
        ASPEN_ASSERT(m->name[0] == '\0'); /* names are not carried */
        size_t al = strlen(m->peer_addr);
        ASPEN_ASSERT(al >= 1 && al <= 255);
        ASPEN_ASSERT(strlen(m->client_urls) <= ASPEN_MAX_MEMBER_URLS_BYTES);
    }

    /* Canonical: re-encoding gives the input without its surrounding whitespace. */
    while (len && is_space(text[0])) {
        text++;
        len--;
    }
    while (len && is_space(text[len - 1]))
        len--;
    struct buf b;
    buf_init(&b, FUZZ_MAX_TEXT);
    ASPEN_ASSERT(ticket_encode(&t, &b) == 0);
    ASPEN_ASSERT(b.len == len && memcmp(b.data, text, len) == 0);
    ASPEN_ASSERT(ticket_decode((const char *)b.data, b.len, &again, why, sizeof(why)) == 0);
    ASPEN_ASSERT(tickets_equal(&t, &again));
    buf_release(&b);
}

/* prefix ++ base64url(bin[0..n)) into out; its length. */
static size_t to_text(const uint8_t *bin, size_t n, char *out, size_t cap)
{
    size_t pl = strlen(TICKET_PREFIX);
    size_t enc = sodium_base64_encoded_len(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    ASPEN_ASSERT(pl + enc <= cap);
    memcpy(out, TICKET_PREFIX, pl);
    sodium_bin2base64(out + pl, enc, bin, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return pl + enc - 1; /* without the NUL */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        ASPEN_ASSERT(sodium_init() >= 0);
        ready = true;
    }
    static uint8_t bin[FUZZ_MAX_BINARY + 4];
    static char text[FUZZ_MAX_TEXT];

    check((const char *)data, size);

    /* A base64url ticket with a wrong checksum: recompute it. */
    size_t pl = strlen(TICKET_PREFIX), bl = 0;
    if (size > pl && memcmp(data, TICKET_PREFIX, pl) == 0 &&
        sodium_base642bin(bin, FUZZ_MAX_BINARY, (const char *)data + pl, size - pl, NULL, &bl, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
        bl >= 4) {
        be32_store(bin + bl - 4, crc32c(bin, bl - 4));
        check(text, to_text(bin, bl, text, sizeof(text)));
    }

    /* The input as the binary payload, sealed with its checksum. */
    if (size <= FUZZ_MAX_BINARY) {
        memcpy(bin, data, size);
        be32_store(bin + size, crc32c(data, size));
        check(text, to_text(bin, size + 4, text, sizeof(text)));
    }
    return 0;
}
