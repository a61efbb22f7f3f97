/*
 * Cluster tickets (ticket.h): a checksummed binary record in base64url, so it survives
 * shells, chat and YAML unquoted.
 */
#include "node/ticket.h"

#include "base/crc32c.h"
#include "base/hlc.h"
#include "base/slice.h"

#include <aspen/error.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define TICKET_MAX_BINARY                                                                          \
    (1 + 8 + 1 + ASPEN_MAX_VOTERS * (32 + 1 + 255 + 2 + ASPEN_MAX_MEMBER_URLS_BYTES) + 4)

/* Addresses and URL lists follow the member registry's rule (kv/cluster.h): printable
 * ASCII without spaces. The decoder must hold them to it too: they become C strings, so a
 * NUL byte would silently cut a field short (a ticket saying "127.0.0.1:2380\0junk"
 * would decode as "127.0.0.1:2380"). Found by tests/fuzz/fuzz_ticket.c. */
static bool printable(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

int ticket_encode(const struct ticket *t, struct buf *out)
{
    if (t->n == 0 || t->n > ASPEN_MAX_VOTERS)
        return ASPEN_E_INVALID;
    struct buf b;
    buf_init(&b, TICKET_MAX_BINARY);
    int rc = buf_append_u8(&b, TICKET_VERSION);
    if (!rc)
        rc = buf_append_be64(&b, t->cluster_id);
    if (!rc)
        rc = buf_append_u8(&b, (uint8_t)t->n);
    for (uint32_t i = 0; !rc && i < t->n; i++) {
        const struct member_info *m = &t->members[i];
        size_t al = strlen(m->peer_addr), ul = strlen(m->client_urls);
        if (al == 0 || al > 255 || ul > ASPEN_MAX_MEMBER_URLS_BYTES ||
            !printable((const uint8_t *)m->peer_addr, al) ||
            !printable((const uint8_t *)m->client_urls, ul)) {
            rc = ASPEN_E_INVALID;
            break;
        }
        rc = buf_append(&b, m->pk, sizeof(m->pk));
        if (!rc)
            rc = buf_append_u8(&b, (uint8_t)al);
        if (!rc)
            rc = buf_append(&b, m->peer_addr, al);
        if (!rc)
            rc = buf_append_u8(&b, (uint8_t)(ul >> 8));
        if (!rc)
            rc = buf_append_u8(&b, (uint8_t)(ul & 0xffu));
        if (!rc)
            rc = buf_append(&b, m->client_urls, ul);
    }
    if (!rc)
        rc = buf_append_be32(&b, crc32c(b.data, b.len));
    if (!rc) {
        size_t enc = sodium_base64_encoded_len(b.len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        size_t start = out->len;
        rc = buf_append(out, TICKET_PREFIX, strlen(TICKET_PREFIX));
        if (!rc)
            rc = buf_reserve(out, enc);
        if (!rc) {
            sodium_bin2base64((char *)out->data + out->len, enc, b.data, b.len,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING);
            out->len += enc - 1; /* without the NUL */
        } else {
            out->len = start;
        }
    }
    buf_release(&b);
    return rc;
}

static int fail(char *why, size_t whylen, int rc, const char *reason)
{
    snprintf(why, whylen, "%s", reason);
    return rc;
}

int ticket_decode(const char *text, size_t len, struct ticket *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    while (len && (text[0] == ' ' || text[0] == '\t' || text[0] == '\n' || text[0] == '\r')) {
        text++;
        len--;
    }
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\n' ||
                   text[len - 1] == '\r'))
        len--;
    size_t pl = strlen(TICKET_PREFIX);
    if (len < pl || memcmp(text, TICKET_PREFIX, pl) != 0)
        return fail(why, whylen, ASPEN_E_MALFORMED,
                    "not an aspen ticket (expected \"" TICKET_PREFIX "...\")");
    text += pl;
    len -= pl;
    /* The alphabet is checked here, not left to libsodium: 1.0.18 (Debian 12) decodes
     * every byte from 0x80 to 0xff as '_' in the URL-safe variant (its constant-time
     * character tests let them through), so a ticket with such a byte would decode as
     * another spelling of a valid one. Found by tests/fuzz/fuzz_ticket.c. */
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return fail(why, whylen, ASPEN_E_MALFORMED, "ticket is not valid base64url");
    }
    uint8_t bin[TICKET_MAX_BINARY];
    size_t bl = 0;
    if (sodium_base642bin(bin, sizeof(bin), text, len, NULL, &bl, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return fail(why, whylen, ASPEN_E_MALFORMED, "ticket is not valid base64url");
    if (bl < 1 + 8 + 1 + 4)
        return fail(why, whylen, ASPEN_E_MALFORMED, "ticket is too short");
    if (crc32c(bin, bl - 4) != be32_load(bin + bl - 4))
        return fail(why, whylen, ASPEN_E_CORRUPT, "ticket checksum mismatch (damaged in copying?)");
    struct reader r = reader_make(slice_make(bin, bl - 4));
    uint8_t version = 0, n = 0;
    if (reader_u8(&r, &version) || version != TICKET_VERSION)
        return fail(why, whylen, ASPEN_E_MALFORMED, "unknown ticket version");
    if (reader_be64(&r, &out->cluster_id) || reader_u8(&r, &n) || n == 0 || n > ASPEN_MAX_VOTERS ||
        out->cluster_id == 0)
        return fail(why, whylen, ASPEN_E_MALFORMED, "bad ticket header");
    out->n = n;
    for (uint32_t i = 0; i < n; i++) {
        struct member_info *m = &out->members[i];
        struct slice pk, addr, urls;
        uint8_t al = 0;
        uint16_t ul = 0;
        if (reader_bytes(&r, 32, &pk) || reader_u8(&r, &al) || al == 0 ||
            reader_bytes(&r, al, &addr) || reader_be16(&r, &ul))
            return fail(why, whylen, ASPEN_E_MALFORMED, "ticket member is truncated");
        _Static_assert(ASPEN_MAX_MEMBER_ADDR_BYTES >= 255, "a ticket's address length is a u8");
        if (ul > ASPEN_MAX_MEMBER_URLS_BYTES || reader_bytes(&r, ul, &urls))
            return fail(why, whylen, ASPEN_E_MALFORMED, "ticket member is truncated");
        if (!printable(addr.ptr, addr.len) || !printable(urls.ptr, urls.len))
            return fail(why, whylen, ASPEN_E_MALFORMED,
                        "ticket member address or URLs are not printable ASCII");
        memcpy(m->pk, pk.ptr, 32);
        memcpy(m->peer_addr, addr.ptr, al);
        if (ul)
            memcpy(m->client_urls, urls.ptr, ul);
        m->id = hlc_node_id_from_key(m->pk, 32);
    }
    if (r.left != 0)
        return fail(why, whylen, ASPEN_E_MALFORMED, "trailing bytes in ticket");
    return 0;
}
