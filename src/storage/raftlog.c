/*
 * The Raft's durable records (storage/raftlog.h): log entries, hard state and snapshot
 * meta over a store transaction.
 *
 * Writes assert the invariants the Raft core guarantees (contiguous appends, no
 * truncation into the snapshot) because breaking them is a bug upstream, not a state to
 * store. Reads trust nothing: raftlog_load re-derives every invariant from the bytes
 * and reports the first violation precisely, because a node that boots on a damaged log
 * can vote or acknowledge against what it promised before the crash.
 */
#include "storage/raftlog.h"

#include "base/assert.h"
#include "base/buf.h"
#include "base/constants.h"
#include "base/crc32c.h"
#include "base/mem.h"
#include "raft/codec.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CRC_BYTES 4

static struct slice log_key(uint8_t key[8], raft_index index)
{
    be64_store(key, index);
    return slice_make(key, 8);
}

/* ---------------------------------------------------------------------------------------
 * Meta record codecs
 * ------------------------------------------------------------------------------------- */

void raftlog_hard_state_encode(const struct raft_hard_state *hs,
                               uint8_t out[RAFTLOG_HARD_STATE_BYTES])
{
    out[0] = RAFTLOG_FORMAT;
    be64_store(out + 1, hs->term);
    be64_store(out + 9, hs->vote);
    be64_store(out + 17, hs->commit);
    be32_store(out + 25, crc32c(out, 25));
}

/* The checks every meta record shares: format byte first (a newer format is not
 * damage), then the checksum over everything before it. */
static int check_record(const uint8_t *data, size_t len)
{
    if (len < 1 + CRC_BYTES)
        return ASPEN_E_TRUNCATED;
    if (data[0] != RAFTLOG_FORMAT)
        return ASPEN_E_UNSUPPORTED;
    if (crc32c(data, len - CRC_BYTES) != be32_load(data + len - CRC_BYTES))
        return ASPEN_E_CORRUPT;
    return 0;
}

int raftlog_hard_state_decode(const uint8_t *data, size_t len, struct raft_hard_state *out)
{
    memset(out, 0, sizeof(*out));
    int rc = check_record(data, len);
    if (rc)
        return rc;
    if (len != RAFTLOG_HARD_STATE_BYTES)
        return ASPEN_E_MALFORMED;
    out->term = be64_load(data + 1);
    out->vote = be64_load(data + 9);
    out->commit = be64_load(data + 17);
    return 0;
}

int raftlog_snapshot_encode(const struct raft_snapshot_meta *meta, struct buf *out)
{
    ASPEN_ASSERT(meta->index >= 1 && meta->term >= 1);
    size_t start = out->len;
    int rc = buf_append_u8(out, RAFTLOG_FORMAT);
    if (!rc)
        rc = raft_snapshot_meta_encode(meta, out);
    if (!rc)
        rc = buf_append_be32(out, crc32c(out->data + start, out->len - start));
    if (rc)
        out->len = start;
    return rc;
}

int raftlog_snapshot_decode(const uint8_t *data, size_t len, struct raft_snapshot_meta *out)
{
    memset(out, 0, sizeof(*out));
    int rc = check_record(data, len);
    if (rc)
        return rc;
    rc = raft_snapshot_meta_decode(data + 1, len - 1 - CRC_BYTES, out);
    if (rc == 0 && (out->index == 0 || out->term == 0))
        rc = ASPEN_E_MALFORMED;
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* The stored snapshot meta, or zero if none. */
static int read_snapshot(struct store_txn *t, struct raft_snapshot_meta *out)
{
    struct slice v;
    int rc = store_get(t, STORE_T_META, slice_str(RAFTLOG_KEY_SNAPSHOT), &v);
    if (rc == ASPEN_E_NOT_FOUND) {
        memset(out, 0, sizeof(*out));
        return 0;
    }
    if (rc)
        return rc;
    return raftlog_snapshot_decode(v.ptr, v.len, out) ? ASPEN_E_CORRUPT : 0;
}

/* ---------------------------------------------------------------------------------------
 * Writes
 * ------------------------------------------------------------------------------------- */

/* Deletes every log record with index >= from. */
static int truncate_from(struct store_txn *t, raft_index from)
{
    struct store_cursor *c;
    uint8_t key[8];
    struct slice k, v;
    int rc = store_cursor_open(t, STORE_T_LOG, &c);
    if (rc)
        return rc;
    rc = store_seek(c, log_key(key, from), &k, &v);
    while (rc == 0)
        rc = store_cursor_del(c, &k, &v);
    store_cursor_close(c);
    return rc == ASPEN_E_NOT_FOUND ? 0 : rc;
}

/* The index of the last stored entry, or 0 if the log is empty. */
static int last_index(struct store_txn *t, raft_index *out)
{
    struct store_cursor *c;
    struct slice k, v;
    int rc = store_cursor_open(t, STORE_T_LOG, &c);
    if (rc)
        return rc;
    rc = store_last(c, &k, &v);
    *out = rc == 0 && k.len == 8 ? be64_load(k.ptr) : 0;
    store_cursor_close(c);
    return rc == ASPEN_E_NOT_FOUND ? 0 : rc;
}

int raftlog_append(struct store_txn *t, const struct raft_entry *entries, size_t n)
{
    ASPEN_ASSERT(n >= 1);
    for (size_t i = 1; i < n; i++) {
        ASPEN_ASSERT(entries[i].index == entries[0].index + i);
        ASPEN_ASSERT(entries[i].term >= entries[i - 1].term);
    }
    struct raft_snapshot_meta snap;
    raft_index last;
    int rc = read_snapshot(t, &snap);
    if (!rc)
        rc = last_index(t, &last);
    if (rc)
        return rc;
    /* Never truncate into the snapshot, and never leave a gap after the log. */
    ASPEN_ASSERT(entries[0].index > snap.index);
    ASPEN_ASSERT(entries[0].index <= (last > snap.index ? last : snap.index) + 1);
    if (entries[0].index <= last && (rc = truncate_from(t, entries[0].index)) != 0)
        return rc;

    struct buf rec;
    buf_init(&rec, ASPEN_MAX_REQUEST_BYTES + RAFT_ENTRY_OVERHEAD_BYTES);
    uint8_t key[8];
    for (size_t i = 0; i < n && rc == 0; i++) {
        buf_clear(&rec);
        rc = raft_entry_encode(&entries[i], &rec);
        if (!rc)
            rc = store_put(t, STORE_T_LOG, log_key(key, entries[i].index), buf_slice(&rec));
    }
    buf_release(&rec);
    return rc;
}

int raftlog_set_hard_state(struct store_txn *t, const struct raft_hard_state *hs)
{
    uint8_t rec[RAFTLOG_HARD_STATE_BYTES];
    raftlog_hard_state_encode(hs, rec);
    return store_put(t, STORE_T_META, slice_str(RAFTLOG_KEY_HARD_STATE),
                     slice_make(rec, sizeof(rec)));
}

/* Deletes up to `max` records with index <= upto from the start of the log. */
static int delete_prefix(struct store_txn *t, raft_index upto, uint64_t max, bool *is_done)
{
    struct store_cursor *c;
    struct slice k, v;
    int rc = store_cursor_open(t, STORE_T_LOG, &c);
    if (rc)
        return rc;
    uint64_t deleted = 0;
    rc = store_seek(c, slice_make(NULL, 0), &k, &v);
    while (rc == 0 && k.len == 8 && be64_load(k.ptr) <= upto && deleted < max) {
        rc = store_cursor_del(c, &k, &v);
        deleted++;
    }
    /* Done unless we stopped on the bound with a record <= upto still in front. */
    *is_done = !(rc == 0 && k.len == 8 && be64_load(k.ptr) <= upto);
    store_cursor_close(c);
    return rc == ASPEN_E_NOT_FOUND ? 0 : rc;
}

int raftlog_compact(struct store_txn *t, raft_index upto, bool *is_done)
{
    struct raft_snapshot_meta snap;
    int rc = read_snapshot(t, &snap);
    if (rc)
        return rc;
    ASPEN_ASSERT(upto <= snap.index);
    return delete_prefix(t, upto, ASPEN_STORAGE_MAX_COMPACT_ENTRIES, is_done);
}

int raftlog_install_snapshot(struct store_txn *t, const struct raft_snapshot_meta *meta)
{
    struct raft_snapshot_meta old;
    int rc = read_snapshot(t, &old);
    if (rc)
        return rc;
    ASPEN_ASSERT(meta->index >= old.index);

    /* Keep the suffix only if our entry at meta->index is the snapshot's own: then the
     * Log Matching Property says everything before it matches too (§5.3). */
    uint8_t key[8];
    struct slice v;
    bool keep_suffix = false;
    rc = store_get(t, STORE_T_LOG, log_key(key, meta->index), &v);
    if (rc == 0) {
        struct raft_entry e;
        if (raft_entry_decode(v.ptr, v.len, &e) != 0)
            return ASPEN_E_CORRUPT;
        keep_suffix = e.term == meta->term && e.index == meta->index;
    } else if (rc != ASPEN_E_NOT_FOUND) {
        return rc;
    }
    if (keep_suffix) {
        /* Bounded like raftlog_compact: entries <= meta->index that remain are ignored by
         * raftlog_load and removed by later compactions. */
        bool is_done;
        rc = delete_prefix(t, meta->index, ASPEN_STORAGE_MAX_COMPACT_ENTRIES, &is_done);
    } else {
        rc = store_clear(t, STORE_T_LOG);
    }
    if (rc)
        return rc;

    struct buf rec;
    buf_init(&rec, ASPEN_STORAGE_MAX_META_RECORD_BYTES);
    rc = raftlog_snapshot_encode(meta, &rec);
    if (!rc)
        rc = store_put(t, STORE_T_META, slice_str(RAFTLOG_KEY_SNAPSHOT), buf_slice(&rec));
    buf_release(&rec);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Load
 * ------------------------------------------------------------------------------------- */

static int fail(struct raftlog_state *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct raftlog_state *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof(s->error), fmt, ap);
    va_end(ap);
    return ASPEN_E_CORRUPT;
}

static const char *why(int rc)
{
    switch (rc) {
    case ASPEN_E_CORRUPT:
        return "checksum mismatch";
    case ASPEN_E_UNSUPPORTED:
        return "unknown format";
    case ASPEN_E_TRUNCATED:
        return "record too short";
    case ASPEN_E_TOO_LARGE:
        return "a length over its limit";
    default:
        return "malformed record";
    }
}

/* Copies e (whose data is borrowed from the store) into s->owned. */
static int keep_entry(struct raftlog_state *s, const struct raft_entry *e)
{
    int rc = mem_grow(&s->owned, &s->cap_owned, s->n_owned, sizeof(*s->owned), 64,
                      SIZE_MAX / sizeof(*s->owned));
    if (rc)
        return rc;
    struct raft_entry *d = &s->owned[s->n_owned];
    *d = *e;
    d->data = NULL;
    if (e->len) {
        d->data = mem_alloc(e->len);
        if (!d->data)
            return ASPEN_E_NOMEM;
        memcpy(d->data, e->data, e->len);
    }
    s->n_owned++;
    return 0;
}

static int load_entries(struct store_txn *t, struct raftlog_state *s)
{
    const struct raft_snapshot_meta *snap = &s->boot.snapshot;
    struct store_cursor *c;
    struct slice k, v;
    uint8_t key[8];
    int rc = store_cursor_open(t, STORE_T_LOG, &c);
    if (rc)
        return rc;
    raft_index prev = snap->index;
    raft_term prev_term = snap->term;
    for (rc = store_seek(c, log_key(key, snap->index + 1), &k, &v); rc == 0;
         rc = store_next(c, &k, &v)) {
        if (k.len != 8) {
            rc = fail(s, "log: key of %zu bytes after index %" PRIu64, k.len, prev);
            break;
        }
        raft_index at = be64_load(k.ptr);
        struct raft_entry e;
        int drc = raft_entry_decode(v.ptr, v.len, &e);
        if (drc) {
            rc = fail(s, "log entry %" PRIu64 ": %s", at, why(drc));
            break;
        }
        if (e.index != at) {
            rc = fail(s, "log entry %" PRIu64 ": record holds index %" PRIu64, at, e.index);
            break;
        }
        if (at != prev + 1) {
            rc = fail(s, "log gap: %" PRIu64 " followed by %" PRIu64, prev, at);
            break;
        }
        if (e.term < prev_term) {
            rc = fail(s, "log entry %" PRIu64 ": term %" PRIu64 " below the previous term %" PRIu64,
                      at, e.term, prev_term);
            break;
        }
        if ((rc = keep_entry(s, &e)) != 0)
            break;
        prev = at;
        prev_term = e.term;
    }
    store_cursor_close(c);
    if (rc != ASPEN_E_NOT_FOUND)
        return rc;
    s->boot.entries = s->owned;
    s->boot.n_entries = s->n_owned;
    return 0;
}

int raftlog_load(struct store_txn *t, struct raftlog_state *out)
{
    memset(out, 0, sizeof(*out));
    struct slice v;
    int rc = store_get(t, STORE_T_META, slice_str(RAFTLOG_KEY_HARD_STATE), &v);
    if (rc == 0) {
        int drc = raftlog_hard_state_decode(v.ptr, v.len, &out->boot.hard_state);
        if (drc)
            return fail(out, "hard state: %s", why(drc));
    } else if (rc != ASPEN_E_NOT_FOUND) {
        return rc;
    }
    rc = store_get(t, STORE_T_META, slice_str(RAFTLOG_KEY_SNAPSHOT), &v);
    if (rc == 0) {
        int drc = raftlog_snapshot_decode(v.ptr, v.len, &out->boot.snapshot);
        if (drc)
            return fail(out, "snapshot meta: %s", why(drc));
    } else if (rc != ASPEN_E_NOT_FOUND) {
        return rc;
    }
    if ((rc = load_entries(t, out)) != 0)
        return rc;
    raft_index last = out->n_owned ? out->owned[out->n_owned - 1].index : out->boot.snapshot.index;
    if (out->boot.hard_state.commit > last)
        return fail(out,
                    "hard state: commit %" PRIu64 " beyond the last log index %" PRIu64
                    " (acknowledged entries are missing)",
                    out->boot.hard_state.commit, last);
    if (out->boot.hard_state.term < (last > out->boot.snapshot.index
                                         ? out->owned[out->n_owned - 1].term
                                         : out->boot.snapshot.term))
        return fail(out, "hard state: term %" PRIu64 " below the last entry's term",
                    out->boot.hard_state.term);
    return 0;
}

void raftlog_state_release(struct raftlog_state *s)
{
    for (size_t i = 0; i < s->n_owned; i++)
        mem_free(s->owned[i].data);
    mem_free(s->owned);
    memset(s, 0, sizeof(*s));
}
