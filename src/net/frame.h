/*
 * Frames on a peer connection: a be32 length, then that many payload bytes, inside TLS.
 * (The transport's only frame of its own is the server's empty acceptance frame, the
 * first on every connection; see net/tls_tcp.c.)
 *
 * TLS delivers a byte stream cut at arbitrary points, so the receiving side reassembles
 * frames here: a header may arrive one byte at a time and a payload over many records.
 * The length is checked against a limit before any payload is buffered, so a peer cannot
 * make us allocate more than the limit for one frame; a frame that arrives whole in one
 * input chunk is handed out in place, without a copy.
 *
 * Pure (no I/O): the connection code feeds it bytes and gets frames back through a
 * callback, and the tests and a fuzzer can drive it alone.
 */
#ifndef ASPEN_NET_FRAME_H
#define ASPEN_NET_FRAME_H

#include "base/slice.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_FRAME_HEADER_BYTES 4

/* Writes the header of a payload of len bytes. */
static inline void net_frame_header(uint8_t out[NET_FRAME_HEADER_BYTES], uint32_t len)
{
    be32_store(out, len);
}

struct net_frame_reader {
    size_t max_bytes;                    /* largest payload accepted */
    size_t keep_bytes;                   /* a larger body buffer is freed after its frame */
    uint8_t hdr[NET_FRAME_HEADER_BYTES]; /* header bytes received so far */
    uint8_t hdr_len;
    bool in_body;     /* the header is complete; `want` payload bytes expected */
    bool is_broken;   /* a length above max_bytes (or NOMEM): the stream is unusable */
    uint32_t bad_len; /* that length, for the caller's log line */
    size_t want;      /* payload length of the current frame */
    size_t have;      /* payload bytes buffered so far */
    uint8_t *body;    /* owned: partial payload; NULL when nothing is buffered */
    size_t body_cap;
};

/* Called once per complete frame; the slice is valid only during the call. Returning
 * non-zero stops the reader, which then returns that value. */
typedef int net_frame_fn(void *ctx, struct slice frame);

/* max_bytes: the payload limit; keep_bytes: see the struct. Allocates nothing. */
void net_frame_reader_init(struct net_frame_reader *r, size_t max_bytes, size_t keep_bytes);

/* Frees the partial payload. The reader may be initialized again. */
void net_frame_reader_release(struct net_frame_reader *r);

/* Consumes `in`, calling fn for each frame completed, in order. Returns 0; fn's non-zero
 * value (the rest of `in` is not consumed); ASPEN_E_TOO_LARGE when a length prefix exceeds
 * max_bytes (r->bad_len holds it, and every later call fails the same way: the connection
 * must be closed); or ASPEN_E_NOMEM (the reader is broken too). */
int net_frame_reader_feed(struct net_frame_reader *r, struct slice in, net_frame_fn *fn, void *ctx);

#endif
