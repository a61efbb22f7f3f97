/*
 * Member metadata conversions (member.h): between the registry's slices and the node's
 * fixed strings, and the small parsers the node needs to dial a member.
 */
#include "node/member.h"

#include "base/assert.h"

#include <aspen/error.h>
#include <stdlib.h>
#include <string.h>

static void copy_str(char *dst, size_t cap, struct slice s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n)
        memcpy(dst, s.ptr, n);
    dst[n] = 0;
}

void member_from_kv(const struct kv_member *m, struct member_info *out)
{
    memset(out, 0, sizeof(*out));
    out->id = m->id;
    memcpy(out->pk, m->pk, sizeof(out->pk));
    copy_str(out->name, sizeof(out->name), m->name);
    copy_str(out->peer_addr, sizeof(out->peer_addr), m->peer_addr);
    copy_str(out->client_urls, sizeof(out->client_urls), m->client_urls);
    out->flags = m->flags;
}

struct kv_member member_to_kv(const struct member_info *m)
{
    struct kv_member k = {.id = m->id,
                          .name = slice_str(m->name),
                          .peer_addr = slice_str(m->peer_addr),
                          .client_urls = slice_str(m->client_urls),
                          .flags = m->flags};
    memcpy(k.pk, m->pk, sizeof(k.pk));
    return k;
}

int member_split_addr(const char *addr, char *host, size_t host_cap, uint16_t *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return ASPEN_E_INVALID;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return ASPEN_E_INVALID;
        h++;
        hl -= 2;
    }
    if (hl + 1 > host_cap)
        return ASPEN_E_INVALID;
    char *end = NULL;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (!colon[1] || *end || p == 0 || p > 65535)
        return ASPEN_E_INVALID;
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (uint16_t)p;
    return 0;
}

void member_first_url(const char *urls, char *out, size_t cap)
{
    ASPEN_ASSERT(cap > 0);
    size_t n = strcspn(urls, ",");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, urls, n);
    out[n] = 0;
}
