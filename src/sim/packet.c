/*
 * Packets (sim/packet.h): for now one allocation holding the message header, the entry
 * array, every entry's data and the snapshot blob, laid out back to back so a copy is a
 * single memcpy plus pointer fix-ups.
 */
#include "sim/packet.h"

#include "base/mem.h"

#include <aspen/error.h>
#include <string.h>

struct packet {
    size_t total; /* bytes of this allocation */
    struct raft_msg msg;
    struct raft_entry *entries; /* inside this allocation */
    uint8_t *blob;              /* inside this allocation */
    size_t blob_len;
    /* entries, then data bytes, then the blob follow */
};

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

int packet_make(struct packet **out, const struct raft_msg *msg, const uint8_t *blob,
                size_t blob_len)
{
    size_t data = 0;
    for (uint32_t i = 0; i < msg->n_entries; i++)
        data += msg->entries[i].len;
    if (msg->n_entries > ASPEN_RAFT_MAX_ENTRIES_PER_MSG || data > ASPEN_RAFT_MAX_BYTES_PER_MSG ||
        blob_len > ASPEN_MAX_SNAPSHOT_BYTES)
        return ASPEN_E_TOO_LARGE;
    size_t hdr = align8(sizeof(struct packet));
    size_t ents = align8(msg->n_entries * sizeof(struct raft_entry));
    size_t total = hdr + ents + align8(data) + blob_len;
    struct packet *p = mem_alloc(total);
    if (!p)
        return ASPEN_E_NOMEM;
    uint8_t *base = (uint8_t *)p;
    p->total = total;
    p->msg = *msg;
    p->entries = (struct raft_entry *)(void *)(base + hdr);
    uint8_t *d = base + hdr + ents;
    for (uint32_t i = 0; i < msg->n_entries; i++) {
        p->entries[i] = msg->entries[i];
        p->entries[i].data = d;
        if (msg->entries[i].len)
            memcpy(d, msg->entries[i].data, msg->entries[i].len);
        d += msg->entries[i].len;
    }
    p->msg.entries = msg->n_entries ? p->entries : NULL;
    p->blob = blob_len ? base + hdr + ents + align8(data) : NULL;
    p->blob_len = blob_len;
    if (blob_len)
        memcpy(p->blob, blob, blob_len);
    *out = p;
    return 0;
}

int packet_dup(struct packet **out, const struct packet *p)
{
    return packet_make(out, &p->msg, p->blob, p->blob_len);
}

void packet_free(struct packet *p)
{
    mem_free(p);
}

int packet_open(struct packet *p, struct raft_msg *msg)
{
    *msg = p->msg;
    msg->after_persist = false; /* not on the wire */
    return 0;
}

raft_id packet_from(const struct packet *p)
{
    return p->msg.from;
}

raft_id packet_to(const struct packet *p)
{
    return p->msg.to;
}

uint8_t packet_type(const struct packet *p)
{
    return p->msg.type;
}

size_t packet_bytes(const struct packet *p)
{
    return p->total;
}

const uint8_t *packet_blob(const struct packet *p, size_t *len)
{
    *len = p->blob_len;
    return p->blob;
}
