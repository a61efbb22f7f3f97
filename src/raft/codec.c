/*
 * Raft message and entry encoding (raft/codec.h).
 *
 * One set of rules, written once over the decoded values (check_header, check_entry,
 * check_config), serves both directions: the encoder asserts them, so a bug in the core
 * crashes the sender instead of being discovered by every receiver, and the decoder
 * applies them to what arrives (TigerBeetle's "check values crossing the network on both
 * sides").
 *
 * Decoding is staged so that nothing is interpreted before it is known to be intact and
 * nothing is allocated before it is known to be valid: the prelude is checked against
 * the input's length and the frame limit, then the CRC over the whole frame, then a
 * first pass reads and validates every field (counts are compared with their limits
 * before any array is indexed by them), and only then is the entries array taken from
 * the arena and a second pass fills it. A message that fails leaves the arena untouched.
 */
#include "raft/codec.h"

#include "base/assert.h"
#include "base/crc32c.h"

#include <string.h>

/* The largest snapshot meta: index, term, four counts, every list full, auto_leave. */
#define SNAPSHOT_META_MAX_BYTES (8 + 8 + 4 * 4 + 8 * (3 * ASPEN_MAX_VOTERS + ASPEN_MAX_MEMBERS) + 1)

/* Everything in a frame besides entry data must fit in the slack constants.h grants on
 * top of the payload limit (an APPEND carries no snapshot, so this overestimates). */
_Static_assert(RAFT_MSG_MIN_FRAME_BYTES +
                       (uint64_t)ASPEN_RAFT_MAX_ENTRIES_PER_MSG * RAFT_MSG_ENTRY_OVERHEAD +
                       SNAPSHOT_META_MAX_BYTES <=
                   ASPEN_RAFT_MSG_FRAME_SLACK_BYTES,
               "frame overhead exceeds ASPEN_RAFT_MSG_FRAME_SLACK_BYTES");
_Static_assert(RAFT_MSG_MIN_FRAME_BYTES <= ASPEN_RAFT_MAX_MSG_FRAME_BYTES, "frame limits");
_Static_assert(ASPEN_MAX_REQUEST_BYTES <= UINT32_MAX - RAFT_ENTRY_OVERHEAD_BYTES,
               "an entry record's size must fit 32 bits");

/* ---------------------------------------------------------------------------------------
 * Rules
 * ------------------------------------------------------------------------------------- */

/* raft.h has no count for entry types; a new type must be added here (and to the version
 * notes in codec.h) before it can be sent. */
static bool entry_type_known(uint8_t type)
{
    return type == RAFT_ENTRY_NORMAL || type == RAFT_ENTRY_CONF;
}

/* The fixed header's rules (everything but entries and the snapshot meta). */
static int check_header(const struct raft_msg *m)
{
    if (m->type >= RAFT_MSG_TYPE_COUNT)
        return ASPEN_E_MALFORMED;
    if ((m->flags & ~RAFT_MSG_FLAGS_KNOWN) != 0)
        return ASPEN_E_MALFORMED;
    if (m->from == 0 || m->to == 0)
        return ASPEN_E_MALFORMED;
    if (m->n_entries > ASPEN_RAFT_MAX_ENTRIES_PER_MSG)
        return ASPEN_E_TOO_LARGE;
    if (m->n_entries > 0 && m->type != RAFT_MSG_APPEND)
        return ASPEN_E_MALFORMED;
    /* The entries' indexes are index+1 .. index+n_entries and must not wrap. */
    if (m->index > UINT64_MAX - m->n_entries)
        return ASPEN_E_MALFORMED;
    return 0;
}

/* The i-th entry of an APPEND (Figure 2, AppendEntries): entries follow the previous
 * entry (index, log_term) without gaps, and since a log's terms never decrease and the
 * leader's own term bounds them, their terms run from log_term up to the message's term.
 * prev_term is log_term for the first entry and the previous entry's term after that. */
static int check_entry(const struct raft_msg *m, uint32_t i, const struct raft_entry *e,
                       raft_term prev_term)
{
    if (e->len > ASPEN_MAX_REQUEST_BYTES)
        return ASPEN_E_TOO_LARGE;
    if (!entry_type_known(e->type))
        return ASPEN_E_MALFORMED;
    if (e->index != m->index + 1 + i)
        return ASPEN_E_MALFORMED;
    if (e->term == 0 || e->term < prev_term || e->term > m->term)
        return ASPEN_E_MALFORMED;
    return 0;
}

static bool contains(const raft_id *ids, uint32_t n, raft_id id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* No zero ids (0 means "none") and no repeats. Lists are at most ASPEN_MAX_MEMBERS long,
 * so the quadratic scan costs at most a few thousand comparisons. */
static int check_ids(const raft_id *ids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == 0 || contains(ids, i, ids[i]))
            return ASPEN_E_MALFORMED;
    return 0;
}

/* Thesis §4.3 joint consensus, with etcd-raft's invariants (confchange.checkInvariants):
 * a learner is never a voter of either half; a voter being demoted (learners_next) is
 * an outgoing voter that is no longer an incoming one; outside a joint configuration
 * there is nothing to demote and nothing to leave automatically. */
static int check_config(const struct raft_config *c)
{
    if (c->n_voters > ASPEN_MAX_VOTERS || c->n_outgoing > ASPEN_MAX_VOTERS ||
        c->n_learners > ASPEN_MAX_MEMBERS || c->n_learners_next > ASPEN_MAX_VOTERS)
        return ASPEN_E_TOO_LARGE;
    int rc;
    if ((rc = check_ids(c->voters, c->n_voters)) != 0 ||
        (rc = check_ids(c->outgoing, c->n_outgoing)) != 0 ||
        (rc = check_ids(c->learners, c->n_learners)) != 0 ||
        (rc = check_ids(c->learners_next, c->n_learners_next)) != 0)
        return rc;
    for (uint32_t i = 0; i < c->n_learners; i++)
        if (contains(c->voters, c->n_voters, c->learners[i]) ||
            contains(c->outgoing, c->n_outgoing, c->learners[i]))
            return ASPEN_E_MALFORMED;
    for (uint32_t i = 0; i < c->n_learners_next; i++)
        if (!contains(c->outgoing, c->n_outgoing, c->learners_next[i]) ||
            contains(c->voters, c->n_voters, c->learners_next[i]))
            return ASPEN_E_MALFORMED;
    if (c->n_outgoing == 0 && (c->n_learners_next > 0 || c->auto_leave))
        return ASPEN_E_MALFORMED;
    return 0;
}

static size_t snapshot_meta_bytes(const struct raft_config *c)
{
    return 8 + 8 + 4 * 4 +
           8 * ((size_t)c->n_voters + c->n_outgoing + c->n_learners + c->n_learners_next) + 1;
}

size_t raft_msg_encoded_size(const struct raft_msg *m)
{
    ASPEN_ASSERT(m->n_entries <= ASPEN_RAFT_MAX_ENTRIES_PER_MSG);
    ASPEN_ASSERT(m->n_entries == 0 || m->entries != NULL);
    size_t size = RAFT_MSG_MIN_FRAME_BYTES;
    for (uint32_t i = 0; i < m->n_entries; i++)
        size += RAFT_MSG_ENTRY_OVERHEAD + (size_t)m->entries[i].len;
    if (m->type == RAFT_MSG_SNAPSHOT) {
        const struct raft_config *c = &m->snapshot.config;
        ASPEN_ASSERT(c->n_voters <= ASPEN_MAX_VOTERS && c->n_outgoing <= ASPEN_MAX_VOTERS &&
                     c->n_learners <= ASPEN_MAX_MEMBERS && c->n_learners_next <= ASPEN_MAX_VOTERS);
        size += snapshot_meta_bytes(c);
    }
    return size;
}

int raft_msg_validate(const struct raft_msg *m)
{
    int rc = check_header(m);
    if (rc)
        return rc;
    if (m->n_entries > 0 && m->entries == NULL)
        return ASPEN_E_INVALID;
    raft_term prev_term = m->log_term;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if ((rc = check_entry(m, i, e, prev_term)) != 0)
            return rc;
        if (e->len > 0 && e->data == NULL)
            return ASPEN_E_INVALID;
        prev_term = e->term;
    }
    if (m->type == RAFT_MSG_SNAPSHOT && (rc = check_config(&m->snapshot.config)) != 0)
        return rc;
    /* Each entry is within its limit, so the sum cannot overflow (1024 × 1.5 MiB). */
    if (raft_msg_encoded_size(m) > ASPEN_RAFT_MAX_MSG_FRAME_BYTES)
        return ASPEN_E_TOO_LARGE;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------------------- */

/* The writers below fill space already reserved and measured, so they cannot fail. */
static uint8_t *put_u8(uint8_t *p, uint8_t v)
{
    *p = v;
    return p + 1;
}

static uint8_t *put_be32(uint8_t *p, uint32_t v)
{
    be32_store(p, v);
    return p + 4;
}

static uint8_t *put_be64(uint8_t *p, uint64_t v)
{
    be64_store(p, v);
    return p + 8;
}

static uint8_t *put_bytes(uint8_t *p, const uint8_t *data, size_t n)
{
    if (n > 0)
        memcpy(p, data, n);
    return p + n;
}

static uint8_t *put_ids(uint8_t *p, const raft_id *ids, uint32_t n)
{
    p = put_be32(p, n);
    for (uint32_t i = 0; i < n; i++)
        p = put_be64(p, ids[i]);
    return p;
}

static uint8_t *put_snapshot(uint8_t *p, const struct raft_snapshot_meta *s)
{
    p = put_be64(p, s->index);
    p = put_be64(p, s->term);
    p = put_ids(p, s->config.voters, s->config.n_voters);
    p = put_ids(p, s->config.outgoing, s->config.n_outgoing);
    p = put_ids(p, s->config.learners, s->config.n_learners);
    p = put_ids(p, s->config.learners_next, s->config.n_learners_next);
    return put_u8(p, s->config.auto_leave ? 1 : 0);
}

int raft_msg_encode(const struct raft_msg *m, struct buf *out)
{
    ASPEN_ASSERT(raft_msg_validate(m) == 0);
    size_t size = raft_msg_encoded_size(m);
    int rc = buf_reserve(out, size);
    if (rc)
        return rc;
    uint8_t *start = out->data + out->len;
    uint8_t *p = start;
    p = put_u8(p, RAFT_CODEC_MAGIC0);
    p = put_u8(p, RAFT_CODEC_MAGIC_MSG);
    p = put_u8(p, RAFT_CODEC_VERSION);
    p = put_u8(p, m->type);
    p = put_be32(p, (uint32_t)size); /* <= ASPEN_RAFT_MAX_MSG_FRAME_BYTES, validated */
    p = put_u8(p, m->flags);
    p = put_u8(p, m->reject ? 1 : 0);
    p = put_be64(p, m->from);
    p = put_be64(p, m->to);
    p = put_be64(p, m->term);
    p = put_be64(p, m->index);
    p = put_be64(p, m->log_term);
    p = put_be64(p, m->commit);
    p = put_be64(p, m->reject_hint);
    p = put_be64(p, m->context);
    p = put_be32(p, m->n_entries);
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        p = put_be64(p, e->term);
        p = put_be64(p, e->index);
        p = put_u8(p, e->type);
        p = put_be32(p, e->len);
        p = put_bytes(p, e->data, e->len);
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        p = put_snapshot(p, &m->snapshot);
    }
    ASPEN_ASSERT((size_t)(p - start) == size - RAFT_CODEC_CRC_BYTES);
    put_be32(p, crc32c(start, size - RAFT_CODEC_CRC_BYTES));
    out->len += size;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------------------- */

/* Inside a checksummed frame, running out of bytes is not a truncation (the length and
 * the CRC matched) but counts that claim more than the sender wrote: MALFORMED. */
static int body_err(int rc)
{
    return rc == ASPEN_E_TRUNCATED ? ASPEN_E_MALFORMED : rc;
}

/* Allocates from the arena, telling the arena's own limit (TOO_LARGE) apart from memory
 * running out (NOMEM), as tuple_unpack does. */
static int arena_get(struct arena *a, size_t size, size_t align, void **out)
{
    void *p = arena_alloc(a, size, align);
    if (p == NULL) {
        bool over = a->used_bytes > a->limit_bytes || size > a->limit_bytes - a->used_bytes;
        return over ? ASPEN_E_TOO_LARGE : ASPEN_E_NOMEM;
    }
    *out = p;
    return 0;
}

/* Reads and checks the m->n_entries entries of an APPEND body. With out NULL it only
 * validates (first pass); otherwise it fills out[0..n_entries), which must then succeed
 * because the same bytes were validated before. */
static int read_entries(struct reader *r, const struct raft_msg *m, struct raft_entry *out)
{
    raft_term prev_term = m->log_term;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        struct raft_entry e = {0};
        struct slice data;
        int rc;
        if ((rc = reader_be64(r, &e.term)) != 0 || (rc = reader_be64(r, &e.index)) != 0 ||
            (rc = reader_u8(r, &e.type)) != 0 || (rc = reader_be32(r, &e.len)) != 0)
            return body_err(rc);
        /* The length is checked against its limit before it is used to read. */
        if ((rc = check_entry(m, i, &e, prev_term)) != 0)
            return rc;
        if ((rc = reader_bytes(r, e.len, &data)) != 0)
            return body_err(rc);
        if (out) {
            e.data = e.len > 0 ? (uint8_t *)data.ptr : NULL; /* borrowed, see codec.h */
            out[i] = e;
        }
        prev_term = e.term;
    }
    return 0;
}

/* Reads one id list: the count is compared with the list's capacity before any id is
 * stored. */
static int read_ids(struct reader *r, uint32_t max, raft_id *ids, uint32_t *n_out)
{
    uint32_t n;
    int rc = reader_be32(r, &n);
    if (rc)
        return body_err(rc);
    if (n > max)
        return ASPEN_E_TOO_LARGE;
    for (uint32_t i = 0; i < n; i++)
        if ((rc = reader_be64(r, &ids[i])) != 0)
            return body_err(rc);
    *n_out = n;
    return 0;
}

static int read_snapshot(struct reader *r, struct raft_snapshot_meta *s)
{
    struct raft_config *c = &s->config;
    uint8_t auto_leave;
    int rc;
    if ((rc = reader_be64(r, &s->index)) != 0 || (rc = reader_be64(r, &s->term)) != 0)
        return body_err(rc);
    if ((rc = read_ids(r, ASPEN_MAX_VOTERS, c->voters, &c->n_voters)) != 0 ||
        (rc = read_ids(r, ASPEN_MAX_VOTERS, c->outgoing, &c->n_outgoing)) != 0 ||
        (rc = read_ids(r, ASPEN_MAX_MEMBERS, c->learners, &c->n_learners)) != 0 ||
        (rc = read_ids(r, ASPEN_MAX_VOTERS, c->learners_next, &c->n_learners_next)) != 0)
        return rc;
    if ((rc = reader_u8(r, &auto_leave)) != 0)
        return body_err(rc);
    if (auto_leave > 1)
        return ASPEN_E_MALFORMED;
    c->auto_leave = auto_leave == 1;
    return check_config(c);
}

int raft_msg_frame_len(const uint8_t *data, size_t len, size_t *frame_len)
{
    if (len < RAFT_MSG_PRELUDE_BYTES)
        return ASPEN_E_TRUNCATED;
    if (data[0] != RAFT_CODEC_MAGIC0 || data[1] != RAFT_CODEC_MAGIC_MSG)
        return ASPEN_E_MALFORMED;
    if (data[2] != RAFT_CODEC_VERSION)
        return ASPEN_E_UNSUPPORTED;
    uint32_t n = be32_load(data + 4);
    if (n > ASPEN_RAFT_MAX_MSG_FRAME_BYTES)
        return ASPEN_E_TOO_LARGE;
    if (n < RAFT_MSG_MIN_FRAME_BYTES)
        return ASPEN_E_MALFORMED;
    *frame_len = n;
    return 0;
}

/* Everything after the CRC check: fields, rules, then the arena. */
static int decode_checked(const uint8_t *data, size_t frame_len, struct raft_msg *m,
                          struct arena *a)
{
    m->type = data[3];
    m->flags = data[8];
    uint8_t reject = data[9];
    m->from = be64_load(data + 10);
    m->to = be64_load(data + 18);
    m->term = be64_load(data + 26);
    m->index = be64_load(data + 34);
    m->log_term = be64_load(data + 42);
    m->commit = be64_load(data + 50);
    m->reject_hint = be64_load(data + 58);
    m->context = be64_load(data + 66);
    m->n_entries = be32_load(data + 74);
    if (reject > 1)
        return ASPEN_E_MALFORMED;
    m->reject = reject == 1;
    int rc = check_header(m);
    if (rc)
        return rc;

    struct reader body = reader_make(slice_make(
        data + RAFT_MSG_HEADER_BYTES, frame_len - RAFT_MSG_HEADER_BYTES - RAFT_CODEC_CRC_BYTES));
    struct reader entries_at = body;
    if ((rc = read_entries(&body, m, NULL)) != 0)
        return rc;
    if (m->type == RAFT_MSG_SNAPSHOT && (rc = read_snapshot(&body, &m->snapshot)) != 0)
        return rc;
    if (body.left != 0)
        return ASPEN_E_MALFORMED;

    if (m->n_entries > 0) {
        void *p;
        rc = arena_get(a, (size_t)m->n_entries * sizeof(struct raft_entry),
                       _Alignof(struct raft_entry), &p);
        if (rc)
            return rc;
        struct raft_entry *entries = p;
        rc = read_entries(&entries_at, m, entries);
        ASPEN_ASSERT(rc == 0); /* the first pass accepted these very bytes */
        m->entries = entries;
    }
    return 0;
}

int raft_msg_decode(const uint8_t *data, size_t len, struct raft_msg *out, struct arena *a)
{
    memset(out, 0, sizeof(*out));
    size_t frame_len;
    int rc = raft_msg_frame_len(data, len, &frame_len);
    if (rc)
        return rc;
    if (len < frame_len)
        return ASPEN_E_TRUNCATED;
    if (len > frame_len)
        return ASPEN_E_MALFORMED;
    size_t crc_at = frame_len - RAFT_CODEC_CRC_BYTES;
    if (crc32c(data, crc_at) != be32_load(data + crc_at))
        return ASPEN_E_CORRUPT;
    rc = decode_checked(data, frame_len, out, a);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Entry records
 * ------------------------------------------------------------------------------------- */

/* A stored entry stands alone, so only its own fields can be checked: a known type and
 * the first-index and first-term rules (index 1 is the first entry; term 0 is before any
 * leader existed, and entries are only created by leaders). */
static int check_record(const struct raft_entry *e)
{
    if (e->len > ASPEN_MAX_REQUEST_BYTES)
        return ASPEN_E_TOO_LARGE;
    if (!entry_type_known(e->type) || e->term == 0 || e->index == 0)
        return ASPEN_E_MALFORMED;
    return 0;
}

size_t raft_entry_encoded_size(const struct raft_entry *e)
{
    return RAFT_ENTRY_OVERHEAD_BYTES + (size_t)e->len;
}

int raft_entry_encode(const struct raft_entry *e, struct buf *out)
{
    ASPEN_ASSERT(check_record(e) == 0);
    ASPEN_ASSERT(e->len == 0 || e->data != NULL);
    size_t size = raft_entry_encoded_size(e);
    int rc = buf_reserve(out, size);
    if (rc)
        return rc;
    uint8_t *start = out->data + out->len;
    uint8_t *p = start;
    p = put_u8(p, RAFT_CODEC_MAGIC0);
    p = put_u8(p, RAFT_CODEC_MAGIC_ENTRY);
    p = put_u8(p, RAFT_CODEC_VERSION);
    p = put_u8(p, e->type);
    p = put_be64(p, e->term);
    p = put_be64(p, e->index);
    p = put_be32(p, e->len);
    p = put_bytes(p, e->data, e->len);
    ASPEN_ASSERT((size_t)(p - start) == size - RAFT_CODEC_CRC_BYTES);
    put_be32(p, crc32c(start, size - RAFT_CODEC_CRC_BYTES));
    out->len += size;
    return 0;
}

int raft_entry_decode(const uint8_t *data, size_t len, struct raft_entry *out)
{
    memset(out, 0, sizeof(*out));
    if (len < RAFT_ENTRY_HEADER_BYTES)
        return ASPEN_E_TRUNCATED;
    if (data[0] != RAFT_CODEC_MAGIC0 || data[1] != RAFT_CODEC_MAGIC_ENTRY)
        return ASPEN_E_MALFORMED;
    if (data[2] != RAFT_CODEC_VERSION)
        return ASPEN_E_UNSUPPORTED;
    struct raft_entry e = {
        .type = data[3],
        .term = be64_load(data + 4),
        .index = be64_load(data + 12),
        .len = be32_load(data + 20),
    };
    if (e.len > ASPEN_MAX_REQUEST_BYTES)
        return ASPEN_E_TOO_LARGE;
    size_t size = raft_entry_encoded_size(&e);
    if (len < size)
        return ASPEN_E_TRUNCATED;
    if (len > size)
        return ASPEN_E_MALFORMED;
    size_t crc_at = size - RAFT_CODEC_CRC_BYTES;
    if (crc32c(data, crc_at) != be32_load(data + crc_at))
        return ASPEN_E_CORRUPT;
    int rc = check_record(&e);
    if (rc)
        return rc;
    e.data = e.len > 0 ? (uint8_t *)(data + RAFT_ENTRY_HEADER_BYTES) : NULL;
    *out = e;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Snapshot meta (storage and snapshot streams)
 * ------------------------------------------------------------------------------------- */

size_t raft_snapshot_meta_encoded_size(const struct raft_snapshot_meta *m)
{
    return snapshot_meta_bytes(&m->config);
}

int raft_snapshot_meta_encode(const struct raft_snapshot_meta *m, struct buf *out)
{
    int rc = check_config(&m->config);
    if (rc)
        return ASPEN_E_INVALID;
    size_t size = snapshot_meta_bytes(&m->config);
    if ((rc = buf_reserve(out, size)) != 0)
        return rc;
    uint8_t *p = put_snapshot(out->data + out->len, m);
    ASPEN_ASSERT((size_t)(p - (out->data + out->len)) == size);
    out->len += size;
    return 0;
}

int raft_snapshot_meta_decode(const uint8_t *data, size_t len, struct raft_snapshot_meta *out)
{
    struct reader r = reader_make(slice_make(data, len));
    memset(out, 0, sizeof(*out));
    int rc = read_snapshot(&r, out);
    if (rc == 0 && r.left != 0)
        rc = ASPEN_E_MALFORMED;
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}
