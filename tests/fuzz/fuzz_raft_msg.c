/*
 * Fuzz target for the raft message decoder.
 *
 * Arbitrary bytes must never crash raft_msg_decode, make it read out of bounds or take
 * unbounded memory, and it may only fail with the codes codec.h documents. What decodes
 * must be exactly what the encoder writes: the message passes raft_msg_validate (so the
 * encoder's assertion holds), re-encodes to the input byte for byte, and decodes again to
 * an equal message.
 *
 * Random mutations almost never keep frame_len and the CRC consistent, so they would
 * exercise little beyond the checksum. Each input is therefore also tried "sealed": with
 * the magic and version set, frame_len set to the input's size and a correct CRC
 * appended over the rest, which sends every mutation to the rules behind the checksum.
 */
#include "base/assert.h"
#include "base/buf.h"
#include "base/crc32c.h"
#include "base/mem.h"
#include "raft/codec.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The entries array of the largest message is 1024 × 32 bytes; 1 MiB is ample. */
#define FUZZ_ARENA_LIMIT (1u << 20)

static bool entries_equal(const struct raft_msg *a, const struct raft_msg *b)
{
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const struct raft_entry *x = &a->entries[i], *y = &b->entries[i];
        if (x->term != y->term || x->index != y->index || x->type != y->type || x->len != y->len ||
            (x->len && memcmp(x->data, y->data, x->len) != 0))
            return false;
    }
    return true;
}

/* Equal in every field that goes on the wire. raft_config holds no padding-sensitive
 * data beyond its counts, so the lists are compared up to each count. */
static bool msg_equal(const struct raft_msg *a, const struct raft_msg *b)
{
    const struct raft_config *c = &a->snapshot.config, *d = &b->snapshot.config;
    return a->type == b->type && a->flags == b->flags && a->from == b->from && a->to == b->to &&
           a->term == b->term && a->index == b->index && a->log_term == b->log_term &&
           a->commit == b->commit && a->reject_hint == b->reject_hint && a->context == b->context &&
           a->reject == b->reject && a->n_entries == b->n_entries && entries_equal(a, b) &&
           a->snapshot.index == b->snapshot.index && a->snapshot.term == b->snapshot.term &&
           c->n_voters == d->n_voters && c->n_outgoing == d->n_outgoing &&
           c->n_learners == d->n_learners && c->n_learners_next == d->n_learners_next &&
           c->auto_leave == d->auto_leave &&
           !memcmp(c->voters, d->voters, c->n_voters * sizeof(raft_id)) &&
           !memcmp(c->outgoing, d->outgoing, c->n_outgoing * sizeof(raft_id)) &&
           !memcmp(c->learners, d->learners, c->n_learners * sizeof(raft_id)) &&
           !memcmp(c->learners_next, d->learners_next, c->n_learners_next * sizeof(raft_id));
}

static void check(const uint8_t *data, size_t size, struct arena *first, struct arena *second)
{
    arena_reset(first);
    arena_reset(second);
    struct raft_msg m;
    int rc = raft_msg_decode(data, size, &m, first);
    if (rc) {
        ASPEN_ASSERT(rc == ASPEN_E_TRUNCATED || rc == ASPEN_E_MALFORMED || rc == ASPEN_E_CORRUPT ||
                     rc == ASPEN_E_TOO_LARGE || rc == ASPEN_E_UNSUPPORTED);
        ASPEN_ASSERT(m.n_entries == 0 && m.entries == NULL && m.from == 0);
        ASPEN_ASSERT(first->used_bytes == 0); /* a refused frame takes nothing */
        return;
    }
    ASPEN_ASSERT(!m.after_persist);
    ASPEN_ASSERT(raft_msg_validate(&m) == 0);
    ASPEN_ASSERT(raft_msg_encoded_size(&m) == size);

    struct buf out;
    buf_init(&out, size);
    rc = raft_msg_encode(&m, &out);
    ASPEN_ASSERT(rc == 0);
    ASPEN_ASSERT(slice_eq(buf_slice(&out), slice_make(data, size)));

    struct raft_msg again;
    rc = raft_msg_decode(out.data, out.len, &again, second);
    ASPEN_ASSERT(rc == 0);
    ASPEN_ASSERT(msg_equal(&m, &again));
    buf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct arena first, second;
    static bool ready;
    if (!ready) {
        arena_init(&first, 1 << 16, FUZZ_ARENA_LIMIT);
        arena_init(&second, 1 << 16, FUZZ_ARENA_LIMIT);
        ready = true;
    }
    check(data, size, &first, &second);

    if (size < RAFT_MSG_MIN_FRAME_BYTES || size > ASPEN_RAFT_MAX_MSG_FRAME_BYTES)
        return 0;
    uint8_t *sealed = mem_alloc(size);
    ASPEN_ASSERT(sealed != NULL);
    memcpy(sealed, data, size);
    sealed[0] = RAFT_CODEC_MAGIC0;
    sealed[1] = RAFT_CODEC_MAGIC_MSG;
    sealed[2] = RAFT_CODEC_VERSION;
    be32_store(sealed + 4, (uint32_t)size);
    be32_store(sealed + size - 4, crc32c(sealed, size - 4));
    check(sealed, size, &first, &second);
    mem_free(sealed);
    return 0;
}
