/*
 * Frame reassembly (net/frame.h). The reader is a two-state machine: collecting the
 * 4-byte header, then collecting `want` payload bytes. A payload is buffered only when it
 * straddles input chunks; the buffer grows to the frame's announced size at once (the
 * length was checked first) and is freed afterwards if it is larger than keep_bytes.
 */
#include "net/frame.h"

#include "base/mem.h"

void net_frame_reader_init(struct net_frame_reader *r, size_t max_bytes, size_t keep_bytes)
{
    *r = (struct net_frame_reader){.max_bytes = max_bytes, .keep_bytes = keep_bytes};
}

void net_frame_reader_release(struct net_frame_reader *r)
{
    mem_free(r->body);
    r->body = NULL;
    r->body_cap = 0;
    r->have = 0;
}

/* The frame in the body buffer is complete: deliver it and get ready for the next. */
static int deliver_buffered(struct net_frame_reader *r, net_frame_fn *fn, void *ctx)
{
    r->in_body = false;
    r->hdr_len = 0;
    int rc = fn(ctx, slice_make(r->body, r->want));
    r->have = 0;
    if (r->body_cap > r->keep_bytes)
        net_frame_reader_release(r);
    return rc;
}

int net_frame_reader_feed(struct net_frame_reader *r, struct slice in, net_frame_fn *fn, void *ctx)
{
    if (r->is_broken)
        return ASPEN_E_TOO_LARGE;
    const uint8_t *p = in.ptr;
    size_t left = in.len;
    while (left > 0 || (r->in_body && r->want == 0)) {
        if (!r->in_body) {
            /* Fast path: a whole frame in the input is delivered in place. */
            if (r->hdr_len == 0 && left >= NET_FRAME_HEADER_BYTES) {
                uint32_t len = be32_load(p);
                if (len <= r->max_bytes && left - NET_FRAME_HEADER_BYTES >= len) {
                    p += NET_FRAME_HEADER_BYTES + len;
                    left -= NET_FRAME_HEADER_BYTES + len;
                    int rc = fn(ctx, slice_make(p - len, len));
                    if (rc != 0)
                        return rc;
                    continue;
                }
            }
            size_t n = NET_FRAME_HEADER_BYTES - r->hdr_len;
            if (n > left)
                n = left;
            memcpy(r->hdr + r->hdr_len, p, n);
            r->hdr_len = (uint8_t)(r->hdr_len + n);
            p += n;
            left -= n;
            if (r->hdr_len < NET_FRAME_HEADER_BYTES)
                break;
            uint32_t len = be32_load(r->hdr);
            if (len > r->max_bytes) {
                r->is_broken = true;
                r->bad_len = len;
                return ASPEN_E_TOO_LARGE;
            }
            r->in_body = true;
            r->want = len;
            r->have = 0;
            continue;
        }
        if (r->want == 0) {
            int rc = deliver_buffered(r, fn, ctx);
            if (rc != 0)
                return rc;
            continue;
        }
        if (r->body_cap < r->want) {
            /* Exactly the announced size (bounded by max_bytes above), so the buffer
             * never grows twice for one frame. */
            uint8_t *body = mem_realloc(r->body, r->want);
            if (!body) {
                r->is_broken = true;
                return ASPEN_E_NOMEM;
            }
            r->body = body;
            r->body_cap = r->want;
        }
        size_t n = r->want - r->have;
        if (n > left)
            n = left;
        memcpy(r->body + r->have, p, n);
        r->have += n;
        p += n;
        left -= n;
        if (r->have == r->want) {
            int rc = deliver_buffered(r, fn, ctx);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}
