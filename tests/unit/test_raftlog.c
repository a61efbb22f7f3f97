/*
 * Raft log records (storage/raftlog.h): append / truncate / compact / install-snapshot
 * round trips through raftlog_load, the write-side assertions (a gap, a truncation into
 * the snapshot), and corruption detection: each kind of damage a disk can do to a
 * record (a flipped byte, a missing record, a record under the wrong key, a commit
 * beyond the log) must make load fail with ASPEN_E_CORRUPT and a message naming the
 * record — never a silently shortened log.
 *
 * Runs on the memory backend when it is built, else on LMDB; one test reopens an LMDB
 * store to show the records survive a restart.
 */
#include "test.h"

#include "base/buf.h"
#include "base/constants.h"
#include "base/mem.h"
#include "raft/codec.h"
#include "storage/raftlog.h"
#include "storage/store_lmdb.h"
#include "storage/store_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */

struct env {
    struct store *s;
    char dir[64]; /* LMDB only */
};

static int lmdb_open_tmp(struct env *e)
{
    snprintf(e->dir, sizeof(e->dir), "/tmp/aspen-test-raftlog-XXXXXX");
    if (!mkdtemp(e->dir))
        return ASPEN_E_IO;
    return store_lmdb_open(&e->s, e->dir, NULL, NULL, 0);
}

static int env_open(struct env *e)
{
    memset(e, 0, sizeof(*e));
    return store_mem_open(&e->s, NULL);
}

static void env_close(struct env *e)
{
    store_close(e->s);
    e->s = NULL;
    if (e->dir[0]) {
        char p[128];
        snprintf(p, sizeof(p), "%s/%s", e->dir, STORE_LMDB_FILE_NAME);
        unlink(p);
        snprintf(p, sizeof(p), "%s/%s-lock", e->dir, STORE_LMDB_FILE_NAME);
        unlink(p);
        rmdir(e->dir);
    }
}

static uint8_t payload[64];

/* Entries first..last of the given term; entry i carries i % 7 bytes of data. */
static struct raft_entry *make_entries(raft_index first, raft_index last, raft_term term)
{
    size_t n = (size_t)(last - first + 1);
    struct raft_entry *es = mem_calloc(n, sizeof(*es));
    for (size_t i = 0; es && i < n; i++) {
        es[i].index = first + i;
        es[i].term = term;
        es[i].type = RAFT_ENTRY_NORMAL;
        es[i].len = (uint32_t)(es[i].index % 7);
        es[i].data = es[i].len ? payload : NULL;
    }
    return es;
}

/* Appends first..last of term in one committed transaction. */
static int append_range(struct store *s, raft_index first, raft_index last, raft_term term)
{
    struct raft_entry *es = make_entries(first, last, term);
    if (!es)
        return ASPEN_E_NOMEM;
    struct store_txn *t;
    int rc = store_begin(s, true, &t);
    if (!rc) {
        rc = raftlog_append(t, es, (size_t)(last - first + 1));
        rc = rc ? (store_abort(t), rc) : store_commit(t, true);
    }
    mem_free(es);
    return rc;
}

static int set_hs(struct store *s, raft_term term, raft_id vote, raft_index commit)
{
    struct raft_hard_state hs = {.term = term, .vote = vote, .commit = commit};
    struct store_txn *t;
    int rc = store_begin(s, true, &t);
    if (rc)
        return rc;
    rc = raftlog_set_hard_state(t, &hs);
    return rc ? (store_abort(t), rc) : store_commit(t, true);
}

static struct raft_snapshot_meta snap_meta(raft_index index, raft_term term)
{
    struct raft_snapshot_meta m = {.index = index, .term = term};
    m.config.n_voters = 3;
    m.config.voters[0] = 1;
    m.config.voters[1] = 2;
    m.config.voters[2] = 3;
    m.config.n_learners = 1;
    m.config.learners[0] = 9;
    return m;
}

static int install(struct store *s, raft_index index, raft_term term)
{
    struct raft_snapshot_meta m = snap_meta(index, term);
    struct store_txn *t;
    int rc = store_begin(s, true, &t);
    if (rc)
        return rc;
    rc = raftlog_install_snapshot(t, &m);
    return rc ? (store_abort(t), rc) : store_commit(t, true);
}

static int load(struct store *s, struct raftlog_state *st)
{
    struct store_txn *t;
    int rc = store_begin(s, false, &t);
    if (rc) {
        memset(st, 0, sizeof(*st));
        return rc;
    }
    rc = raftlog_load(t, st);
    store_abort(t);
    return rc;
}

static int count_log(struct store *s, uint64_t *n)
{
    struct store_txn *t;
    int rc = store_begin(s, false, &t);
    if (rc)
        return rc;
    rc = store_count(t, STORE_T_LOG, n);
    store_abort(t);
    return rc;
}

/* Checks that the loaded entries are first..last with the given terms (term_at). */
static bool entries_are(const struct raftlog_state *st, raft_index first, raft_index last,
                        raft_term (*term_at)(raft_index))
{
    if (st->boot.n_entries != (size_t)(last - first + 1))
        return false;
    for (size_t i = 0; i < st->boot.n_entries; i++) {
        const struct raft_entry *e = &st->boot.entries[i];
        if (e->index != first + i || e->term != term_at(e->index) || e->len != e->index % 7 ||
            (e->len && memcmp(e->data, payload, e->len) != 0))
            return false;
    }
    return true;
}

static raft_term term1(raft_index i)
{
    (void)i;
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * Round trips
 * ------------------------------------------------------------------------------------- */

static void test_empty(void)
{
    struct env e;
    CHECK_OK(env_open(&e));
    struct raftlog_state st;
    int rc = load(e.s, &st);
    bool zero = st.boot.hard_state.term == 0 && st.boot.snapshot.index == 0 &&
                st.boot.n_entries == 0 && st.error[0] == 0;
    raftlog_state_release(&st);
    env_close(&e);
    CHECK_OK(rc);
    CHECK(zero);
}

static void test_append_load(void)
{
    struct env e;
    CHECK_OK(env_open(&e));
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 31 + 7);
    int rc = append_range(e.s, 1, 10, 1);
    if (!rc)
        rc = append_range(e.s, 11, 20, 2);
    if (!rc)
        rc = set_hs(e.s, 3, 2, 15);
    struct raftlog_state st;
    int lrc = rc ? rc : load(e.s, &st);
    bool ok = !lrc && st.boot.hard_state.term == 3 && st.boot.hard_state.vote == 2 &&
              st.boot.hard_state.commit == 15 && st.boot.n_entries == 20 &&
              st.boot.entries[9].term == 1 && st.boot.entries[10].term == 2 &&
              st.boot.entries[19].index == 20 && st.boot.entries[13].len == 14 % 7 &&
              memcmp(st.boot.entries[13].data, payload, 14 % 7) == 0 && st.boot.applied == 0;
    if (!rc)
        raftlog_state_release(&st);
    env_close(&e);
    CHECK_OK(lrc);
    CHECK(ok);
}

static raft_term term_trunc(raft_index i)
{
    return i < 6 ? 1 : 2;
}

/* A leader's entries replace a conflicting suffix (§5.3): append 6..8 of term 2 over
 * 1..10 of term 1 leaves 1..8. */
static void test_truncate(void)
{
    struct env e;
    CHECK_OK(env_open(&e));
    int rc = append_range(e.s, 1, 10, 1);
    if (!rc)
        rc = append_range(e.s, 6, 8, 2);
    if (!rc)
        rc = set_hs(e.s, 2, 0, 5);
    struct raftlog_state st;
    int lrc = rc ? rc : load(e.s, &st);
    bool ok = !lrc && entries_are(&st, 1, 8, term_trunc);
    uint64_t n = 0;
    if (!rc) {
        raftlog_state_release(&st);
        count_log(e.s, &n);
    }
    env_close(&e);
    CHECK_OK(lrc);
    CHECK(ok);
    CHECK_EQ_U64(n, 8);
}

static raft_term term_after_snap(raft_index i)
{
    return i <= 10 ? 1 : 2;
}

static void test_install_snapshot(void)
{
    struct env e;
    CHECK_OK(env_open(&e));
    struct raftlog_state st;
    uint64_t n1 = 0, n2 = 0, n3 = 0;
    /* The entry at 5 has the snapshot's term: the suffix 6..20 stays. */
    int rc = append_range(e.s, 1, 10, 1);
    if (!rc)
        rc = append_range(e.s, 11, 20, 2);
    if (!rc)
        rc = set_hs(e.s, 2, 0, 5);
    if (!rc)
        rc = install(e.s, 5, 1);
    if (!rc)
        rc = count_log(e.s, &n1);
    int lrc = rc ? rc : load(e.s, &st);
    bool kept = !lrc && st.boot.snapshot.index == 5 && st.boot.snapshot.term == 1 &&
                st.boot.snapshot.config.n_voters == 3 && st.boot.snapshot.config.voters[2] == 3 &&
                st.boot.snapshot.config.learners[0] == 9 &&
                entries_are(&st, 6, 20, term_after_snap);
    if (!rc)
        raftlog_state_release(&st);
    /* The entry at 15 has term 2, the snapshot says 3: the whole log goes. */
    if (!rc)
        rc = set_hs(e.s, 3, 0, 15);
    if (!rc)
        rc = install(e.s, 15, 3);
    if (!rc)
        rc = count_log(e.s, &n2);
    /* Then appending continues after the snapshot; a snapshot beyond the log (absent
     * entry) drops it too. */
    if (!rc)
        rc = append_range(e.s, 16, 18, 3);
    if (!rc)
        rc = install(e.s, 30, 3);
    if (!rc)
        rc = count_log(e.s, &n3);
    if (!rc)
        rc = set_hs(e.s, 3, 0, 30);
    int lrc2 = rc ? rc : load(e.s, &st);
    bool empty = !lrc2 && st.boot.snapshot.index == 30 && st.boot.n_entries == 0;
    if (!rc)
        raftlog_state_release(&st);
    env_close(&e);
    CHECK_OK(rc);
    CHECK_OK(lrc);
    CHECK(kept);
    CHECK_EQ_U64(n1, 15);
    CHECK_EQ_U64(n2, 0);
    CHECK_EQ_U64(n3, 0);
    CHECK_OK(lrc2);
    CHECK(empty);
}

/* Install and compact delete at most ASPEN_STORAGE_MAX_COMPACT_ENTRIES per call; the
 * rest below the snapshot is invisible to load and goes with later compactions. */
static void test_compact_bounded(void)
{
    struct env e;
    CHECK_OK(env_open(&e));
    const raft_index total = ASPEN_STORAGE_MAX_COMPACT_ENTRIES + 3000;
    const raft_index snap = total - 1000;
    int rc = 0;
    for (raft_index first = 1; first <= total && !rc; first += 10000) {
        raft_index last = first + 9999 > total ? total : first + 9999;
        rc = append_range(e.s, first, last, 1);
    }
    if (!rc)
        rc = set_hs(e.s, 1, 0, snap);
    if (!rc)
        rc = install(e.s, snap, 1);
    uint64_t after_install = 0, after_compact = 0;
    if (!rc)
        rc = count_log(e.s, &after_install);
    struct raftlog_state st;
    int lrc = rc ? rc : load(e.s, &st);
    bool loaded = !lrc && entries_are(&st, snap + 1, total, term1);
    if (!rc)
        raftlog_state_release(&st);
    bool done1 = true, done2 = false;
    struct store_txn *t;
    if (!rc && !(rc = store_begin(e.s, true, &t))) {
        rc = raftlog_compact(t, 100, &done1); /* what install left below 100 goes */
        if (!rc)
            rc = raftlog_compact(t, snap, &done2);
        rc = rc ? (store_abort(t), rc) : store_commit(t, true);
    }
    if (!rc)
        rc = count_log(e.s, &after_compact);
    env_close(&e);
    CHECK_OK(rc);
    CHECK_OK(lrc);
    CHECK(loaded);
    CHECK_EQ_U64(after_install, total - ASPEN_STORAGE_MAX_COMPACT_ENTRIES);
    CHECK(done1);
    CHECK(done2);
    CHECK_EQ_U64(after_compact, total - snap);
}

/* ---------------------------------------------------------------------------------------
 * Write-side assertions
 * ------------------------------------------------------------------------------------- */

static void die_append(raft_index setup_last, raft_index snap, raft_index first)
{
    struct env e;
    if (env_open(&e))
        return;
    if (setup_last)
        append_range(e.s, 1, setup_last, 1);
    if (snap)
        install(e.s, snap, 1);
    append_range(e.s, first, first, 1); /* dies here */
    env_close(&e);
}

static void die_gap(void *arg)
{
    (void)arg;
    die_append(10, 0, 12);
}

static void die_into_snapshot(void *arg)
{
    (void)arg;
    die_append(10, 5, 5);
}

static void die_first_gap(void *arg)
{
    (void)arg;
    die_append(0, 0, 2);
}

static void control_ok(void *arg)
{
    (void)arg;
    die_append(10, 5, 6);
    die_append(10, 0, 11);
}

static void test_append_asserts(void)
{
    CHECK(test_dies(die_gap, NULL));
    CHECK(test_dies(die_into_snapshot, NULL));
    CHECK(test_dies(die_first_gap, NULL));
    CHECK(!test_dies(control_ok, NULL));
}

/* ---------------------------------------------------------------------------------------
 * Corruption
 * ------------------------------------------------------------------------------------- */

/* Flips one bit of the stored value under key (rewritten through store_put). */
static int damage(struct store *s, enum store_table tb, struct slice key, size_t at)
{
    struct store_txn *t;
    struct slice v;
    uint8_t copy[256];
    int rc = store_begin(s, true, &t);
    if (rc)
        return rc;
    if ((rc = store_get(t, tb, key, &v)) == 0) {
        if (v.len > sizeof(copy) || at >= v.len) {
            rc = ASPEN_E_INVALID;
        } else {
            memcpy(copy, v.ptr, v.len);
            copy[at] ^= 0x10;
            rc = store_put(t, tb, key, slice_make(copy, v.len));
        }
    }
    return rc ? (store_abort(t), rc) : store_commit(t, true);
}

static struct slice k64(uint8_t key[8], uint64_t i)
{
    be64_store(key, i);
    return slice_make(key, 8);
}

/* Builds a healthy state (snapshot at 3, entries 4..10, commit 8), applies `harm`, and
 * returns load's result with its message in msg. */
static int load_after(int (*harm)(struct store *), char *msg, size_t msg_len)
{
    struct env e;
    int rc = env_open(&e);
    if (rc)
        return rc;
    rc = append_range(e.s, 1, 10, 1);
    if (!rc)
        rc = install(e.s, 3, 1);
    if (!rc)
        rc = set_hs(e.s, 1, 0, 8);
    if (!rc)
        rc = harm(e.s);
    if (!rc) {
        struct raftlog_state st;
        rc = load(e.s, &st);
        snprintf(msg, msg_len, "%s", st.error);
        raftlog_state_release(&st);
    }
    env_close(&e);
    return rc;
}

static int harm_none(struct store *s)
{
    (void)s;
    return 0;
}

static int harm_entry(struct store *s)
{
    uint8_t key[8];
    return damage(s, STORE_T_LOG, k64(key, 7), RAFT_ENTRY_HEADER_BYTES - 2); /* in len */
}

static int harm_entry_crc(struct store *s)
{
    uint8_t key[8];
    return damage(s, STORE_T_LOG, k64(key, 9), 7 /* in the term */);
}

static int harm_hard_state(struct store *s)
{
    return damage(s, STORE_T_META, slice_str(RAFTLOG_KEY_HARD_STATE), 20);
}

static int harm_snapshot(struct store *s)
{
    return damage(s, STORE_T_META, slice_str(RAFTLOG_KEY_SNAPSHOT), 12);
}

static int harm_gap(struct store *s)
{
    uint8_t key[8];
    struct store_txn *t;
    int rc = store_begin(s, true, &t);
    if (rc)
        return rc;
    rc = store_del(t, STORE_T_LOG, k64(key, 6));
    return rc ? (store_abort(t), rc) : store_commit(t, true);
}

static int harm_first_gap(struct store *s)
{
    uint8_t key[8];
    struct store_txn *t;
    int rc = store_begin(s, true, &t);
    if (rc)
        return rc;
    rc = store_del(t, STORE_T_LOG, k64(key, 4));
    return rc ? (store_abort(t), rc) : store_commit(t, true);
}

/* Entry 5's record stored under key 6 (a misdirected write). */
static int harm_wrong_key(struct store *s)
{
    uint8_t key[8], copy[256];
    struct store_txn *t;
    struct slice v;
    int rc = store_begin(s, true, &t);
    if (rc)
        return rc;
    if (!(rc = store_get(t, STORE_T_LOG, k64(key, 5), &v))) {
        memcpy(copy, v.ptr, v.len);
        rc = store_put(t, STORE_T_LOG, k64(key, 6), slice_make(copy, v.len));
    }
    return rc ? (store_abort(t), rc) : store_commit(t, true);
}

/* The tail the commit covers is gone (truncated by a bad restore). */
static int harm_lost_tail(struct store *s)
{
    uint8_t key[8];
    struct store_txn *t;
    int rc = store_begin(s, true, &t);
    if (rc)
        return rc;
    for (uint64_t i = 8; i <= 10 && !rc; i++)
        rc = store_del(t, STORE_T_LOG, k64(key, i));
    return rc ? (store_abort(t), rc) : store_commit(t, true);
}

/* A correctly checksummed entry whose term goes backwards. */
static int harm_term(struct store *s)
{
    struct raft_entry ent = {.index = 9, .term = 1, .type = RAFT_ENTRY_NORMAL};
    struct raft_entry e2 = {.index = 8, .term = 2, .type = RAFT_ENTRY_NORMAL};
    struct buf b;
    uint8_t key[8];
    buf_init(&b, 1024);
    struct store_txn *t;
    int rc = store_begin(s, true, &t);
    if (rc) {
        buf_release(&b);
        return rc;
    }
    rc = raft_entry_encode(&e2, &b);
    if (!rc)
        rc = store_put(t, STORE_T_LOG, k64(key, 8), buf_slice(&b));
    buf_clear(&b);
    if (!rc)
        rc = raft_entry_encode(&ent, &b);
    if (!rc)
        rc = store_put(t, STORE_T_LOG, k64(key, 9), buf_slice(&b));
    buf_release(&b);
    if (!rc)
        rc = raftlog_set_hard_state(t, &(struct raft_hard_state){.term = 2, .commit = 8});
    return rc ? (store_abort(t), rc) : store_commit(t, true);
}

#define EXPECT_CORRUPT(harm, needle)                                                               \
    do {                                                                                           \
        char msg_[RAFTLOG_ERROR_BYTES] = "";                                                       \
        CHECK_ERR(load_after(harm, msg_, sizeof(msg_)), ASPEN_E_CORRUPT);                          \
        CHECK_MSG(strstr(msg_, needle) != NULL, "message \"%s\" lacks \"%s\"", msg_, needle);      \
    } while (0)

static void test_corruption(void)
{
    char msg[RAFTLOG_ERROR_BYTES];
    CHECK_OK(load_after(harm_none, msg, sizeof(msg)));
    EXPECT_CORRUPT(harm_entry, "log entry 7: ");
    EXPECT_CORRUPT(harm_entry_crc, "log entry 9: checksum mismatch");
    EXPECT_CORRUPT(harm_hard_state, "hard state: checksum mismatch");
    EXPECT_CORRUPT(harm_snapshot, "snapshot meta: checksum mismatch");
    EXPECT_CORRUPT(harm_gap, "log gap: 5 followed by 7");
    EXPECT_CORRUPT(harm_first_gap, "log gap: 3 followed by 5");
    EXPECT_CORRUPT(harm_wrong_key, "log entry 6: record holds index 5");
    EXPECT_CORRUPT(harm_lost_tail, "commit 8 beyond the last log index 7");
    EXPECT_CORRUPT(harm_term, "log entry 9: term 1 below the previous term 2");
}

/* Hard-state and snapshot record codecs: exact bytes, and refusal of short, unknown and
 * over-long records. */
static void test_meta_codecs(void)
{
    struct raft_hard_state hs = {.term = 0x0102030405060708u, .vote = 3, .commit = 99}, got;
    uint8_t rec[RAFTLOG_HARD_STATE_BYTES + 1];
    raftlog_hard_state_encode(&hs, rec);
    CHECK_EQ(rec[0], RAFTLOG_FORMAT);
    CHECK_EQ(rec[1], 0x01);
    CHECK_EQ(rec[8], 0x08);
    CHECK_OK(raftlog_hard_state_decode(rec, RAFTLOG_HARD_STATE_BYTES, &got));
    CHECK(got.term == hs.term && got.vote == 3 && got.commit == 99);
    CHECK_ERR(raftlog_hard_state_decode(rec, 4, &got), ASPEN_E_TRUNCATED);
    CHECK_ERR(raftlog_hard_state_decode(rec, RAFTLOG_HARD_STATE_BYTES - 1, &got), ASPEN_E_CORRUPT);
    rec[0] = 2;
    CHECK_ERR(raftlog_hard_state_decode(rec, RAFTLOG_HARD_STATE_BYTES, &got), ASPEN_E_UNSUPPORTED);
    CHECK_EQ_U64(got.term, 0);

    struct raft_snapshot_meta m = snap_meta(77, 5), mg;
    struct buf b;
    buf_init(&b, ASPEN_STORAGE_MAX_META_RECORD_BYTES);
    CHECK_OK(raftlog_snapshot_encode(&m, &b));
    int rc = raftlog_snapshot_decode(b.data, b.len, &mg);
    bool same = rc == 0 && mg.index == 77 && mg.term == 5 && mg.config.n_voters == 3 &&
                mg.config.n_learners == 1 && mg.config.learners[0] == 9;
    b.data[b.len - 1] ^= 1;
    int bad = raftlog_snapshot_decode(b.data, b.len, &mg);
    buf_release(&b);
    CHECK_OK(rc);
    CHECK(same);
    CHECK_ERR(bad, ASPEN_E_CORRUPT);
}

/* The records survive closing and reopening an LMDB store. */
static void test_lmdb_reopen(void)
{
    struct env e;
    memset(&e, 0, sizeof(e));
    CHECK_OK(lmdb_open_tmp(&e));
    int rc = append_range(e.s, 1, 10, 1);
    if (!rc)
        rc = install(e.s, 4, 1);
    if (!rc)
        rc = append_range(e.s, 9, 12, 2);
    if (!rc)
        rc = set_hs(e.s, 2, 3, 11);
    if (!rc) {
        store_close(e.s);
        e.s = NULL;
        rc = store_lmdb_open(&e.s, e.dir, NULL, NULL, 0);
    }
    struct raftlog_state st;
    int lrc = rc ? rc : load(e.s, &st);
    bool ok = !lrc && st.boot.snapshot.index == 4 && st.boot.hard_state.vote == 3 &&
              st.boot.hard_state.commit == 11 && st.boot.n_entries == 8 &&
              st.boot.entries[0].index == 5 && st.boot.entries[4].term == 2 &&
              st.boot.entries[7].index == 12;
    if (!rc)
        raftlog_state_release(&st);
    env_close(&e);
    CHECK_OK(rc);
    CHECK_OK(lrc);
    CHECK(ok);
}

static const struct test_case tests[] = {
    TEST(test_empty),           TEST(test_append_load),
    TEST(test_truncate),        TEST(test_install_snapshot),
    TEST(test_compact_bounded), TEST(test_append_asserts),
    TEST(test_corruption),      TEST(test_meta_codecs),
    TEST(test_lmdb_reopen),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("raftlog", tests);
}
