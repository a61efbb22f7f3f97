/*
 * Packets (sim/packet.h): one allocation holding the header, the encoded frame and the
 * snapshot blob; decoding borrows entry data from the frame and takes the entry array
 * from a small arena owned by the packet.
 */
#include "sim/packet.h"

#include "base/buf.h"
#include "base/mem.h"
#include "raft/codec.h"

#include <aspen/error.h>
#include <string.h>

struct packet {
    raft_id from, to;
    uint8_t type;
    struct arena arena; /* decoded entry arrays */
    uint8_t *frame;     /* inside this allocation */
    size_t frame_len;
    uint8_t *blob; /* inside this allocation */
    size_t blob_len;
};

/* The decoded entry array of the largest append, and some slack for the arena's own
 * bookkeeping. */
#define PACKET_ARENA_BYTES                                                                         \
    (ASPEN_RAFT_MAX_ENTRIES_PER_MSG * sizeof(struct raft_entry) + 4 * ASPEN_KIB)

static int alloc_packet(struct packet **out, size_t frame_len, size_t blob_len)
{
    struct packet *p = mem_alloc(sizeof(*p) + frame_len + blob_len);
    if (!p)
        return ASPEN_E_NOMEM;
    uint8_t *base = (uint8_t *)(p + 1);
    p->frame = base;
    p->frame_len = frame_len;
    p->blob = blob_len ? base + frame_len : NULL;
    p->blob_len = blob_len;
    arena_init(&p->arena, 4 * ASPEN_KIB, PACKET_ARENA_BYTES);
    *out = p;
    return 0;
}

int packet_make(struct packet **out, const struct raft_msg *msg, const uint8_t *blob,
                size_t blob_len)
{
    if (blob_len > ASPEN_MAX_SNAPSHOT_BYTES)
        return ASPEN_E_TOO_LARGE;
    struct buf b;
    buf_init(&b, ASPEN_RAFT_MAX_MSG_FRAME_BYTES);
    int rc = raft_msg_encode(msg, &b);
    if (rc) {
        buf_release(&b);
        return rc;
    }
    struct packet *p;
    rc = alloc_packet(&p, b.len, blob_len);
    if (rc) {
        buf_release(&b);
        return rc;
    }
    memcpy(p->frame, b.data, b.len);
    buf_release(&b);
    if (blob_len)
        memcpy(p->blob, blob, blob_len);
    p->from = msg->from;
    p->to = msg->to;
    p->type = msg->type;
    *out = p;
    return 0;
}

int packet_dup(struct packet **out, const struct packet *p)
{
    struct packet *q;
    int rc = alloc_packet(&q, p->frame_len, p->blob_len);
    if (rc)
        return rc;
    memcpy(q->frame, p->frame, p->frame_len);
    if (p->blob_len)
        memcpy(q->blob, p->blob, p->blob_len);
    q->from = p->from;
    q->to = p->to;
    q->type = p->type;
    *out = q;
    return 0;
}

void packet_free(struct packet *p)
{
    if (!p)
        return;
    arena_release(&p->arena);
    mem_free(p);
}

int packet_open(struct packet *p, struct raft_msg *msg)
{
    arena_reset(&p->arena);
    return raft_msg_decode(p->frame, p->frame_len, msg, &p->arena);
}

void packet_corrupt(struct packet *p, struct rng *r)
{
    size_t bit = (size_t)rng_below(r, (uint64_t)p->frame_len * 8);
    p->frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}

raft_id packet_from(const struct packet *p)
{
    return p->from;
}

raft_id packet_to(const struct packet *p)
{
    return p->to;
}

uint8_t packet_type(const struct packet *p)
{
    return p->type;
}

size_t packet_bytes(const struct packet *p)
{
    return p->frame_len + p->blob_len;
}

const uint8_t *packet_blob(const struct packet *p, size_t *len)
{
    *len = p->blob_len;
    return p->blob;
}
