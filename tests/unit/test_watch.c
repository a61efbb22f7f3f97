/*
 * Watch hub (kv/watch.h): matching of keys, ranges, prefixes and from-key; filters and
 * prev_kv; start revisions in the past (history), now and the future; a compacted start;
 * cancels; client-chosen ids and the watcher limit; the progress rules; a slow watcher
 * going unsynced and catching up exactly; catch-up meeting a compaction; a revision
 * larger than a queue; fragments; memory failures during publish.
 *
 * Then a randomized property test. A fake store keeps the reference event log (and is
 * the hub's history source; it cuts its answers at `max` either on revision boundaries
 * or in the middle of a revision, both allowed by watch.h). Random revisions are applied
 * and published, watchers are created at random start revisions with random ranges and
 * filters, consumers are fast or slow (rare takes, small max_events), compactions and
 * cancels happen at random. Every delivered event is checked online against the next
 * matching event of the reference log; every response's revision is checked to promise
 * no more than was delivered; at the end every watcher has delivered exactly its
 * filtered reference stream, or a prefix of it followed by a compacted cancel whose
 * compact revision proves the events it needed were gone. Many seeds; a failure prints
 * its seed (ASPEN_TEST_SEED replays it).
 */
#include "test.h"

#include "base/assert.h"
#include "base/constants.h"
#include "base/mem.h"
#include "base/rand.h"
#include "kv/watch.h"

#include <stdio.h>
#include <stdlib.h>

/* ---------------------------------------------------------------------------------------
 * A fake store: the keyspace's current state and the log of every event
 * ------------------------------------------------------------------------------------- */

#define LOG_MAX 20000
#define KEYS    32
#define VAL_MAX 24
#define IDS_MAX 4096

/* The keys: short byte strings, some with NUL bytes, some prefixes of others. */
static const struct {
    const char *s;
    size_t len;
} key_set[KEYS] = {
    {"a", 1},    {"a\0", 2},      {"aa", 2}, {"ab", 2}, {"abc", 3}, {"b", 1},  {"b\0x", 3},
    {"ba", 2},   {"bb", 2},       {"c", 1},  {"ca", 2}, {"cab", 3}, {"d", 1},  {"da", 2},
    {"e", 1},    {"ea", 2},       {"f", 1},  {"fa", 2}, {"g", 1},   {"ga", 2}, {"h", 1},
    {"ha", 2},   {"i", 1},        {"ia", 2}, {"j", 1},  {"ja", 2},  {"k", 1},  {"ka", 2},
    {"\xff", 1}, {"\xff\xff", 2}, {"z", 1},  {"za", 2},
};

struct key_state {
    bool exists;
    struct kv_kv kv;
    uint8_t val[VAL_MAX];
};

/* Bytes behind one log event (its slices point here). */
struct log_bytes {
    uint8_t val[VAL_MAX];
    uint8_t prev_val[VAL_MAX];
};

struct fake {
    struct kv_event *ev; /* LOG_MAX, mem_alloc'd: never moves */
    struct log_bytes *bytes;
    size_t n;
    int64_t current, compacted;
    struct key_state keys[KEYS];
    bool cut_mid_revision; /* the source cuts answers inside a revision */
    uint64_t history_calls;
    bool ready[IDS_MAX + 1]; /* on_ready seen since the last empty take */
};

static int fake_init(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    f->ev = mem_calloc(LOG_MAX, sizeof(*f->ev));
    f->bytes = mem_calloc(LOG_MAX, sizeof(*f->bytes));
    f->current = 1;
    return f->ev && f->bytes ? 0 : ASPEN_E_NOMEM;
}

static void fake_release(struct fake *f)
{
    mem_free(f->ev);
    mem_free(f->bytes);
}

static struct slice key_slice(int k)
{
    return slice_make(key_set[k].s, key_set[k].len);
}

/* Adds one event of revision f->current + 1 (the caller bumps current afterwards). */
static void fake_event(struct fake *f, int k, bool put)
{
    ASPEN_ASSERT(f->n < LOG_MAX);
    int64_t rev = f->current + 1;
    struct key_state *s = &f->keys[k];
    struct kv_event *e = &f->ev[f->n];
    struct log_bytes *b = &f->bytes[f->n];
    f->n++;
    memset(e, 0, sizeof(*e));
    e->type = put ? KV_EVENT_PUT : KV_EVENT_DELETE;
    if (s->exists) {
        e->has_prev = true;
        e->prev = s->kv;
        memcpy(b->prev_val, s->val, s->kv.value.len);
        e->prev.value = slice_make(b->prev_val, s->kv.value.len);
    }
    if (put) {
        int len = snprintf((char *)s->val, VAL_MAX, "v%lld.%d", (long long)rev, k);
        s->kv.key = key_slice(k);
        s->kv.value = slice_make(s->val, (size_t)len);
        s->kv.create_revision = s->exists ? s->kv.create_revision : rev;
        s->kv.version = s->exists ? s->kv.version + 1 : 1;
        s->kv.mod_revision = rev;
        s->kv.lease = 0;
        s->exists = true;
        e->kv = s->kv;
        memcpy(b->val, s->val, (size_t)len);
        e->kv.value = slice_make(b->val, (size_t)len);
    } else {
        s->exists = false;
        e->kv.key = key_slice(k);
        e->kv.mod_revision = rev;
    }
}

/* Appends ev to out, growing its array in out->arena. */
static int events_push(struct kv_events *out, const struct kv_event *ev)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 8;
        struct kv_event *a = arena_alloc(out->arena, cap * sizeof(*a), _Alignof(struct kv_event));
        if (!a)
            return ASPEN_E_NOMEM;
        if (out->n)
            memcpy(a, out->ev, out->n * sizeof(*a));
        out->ev = a;
        out->cap = cap;
    }
    out->ev[out->n++] = *ev;
    return 0;
}

static bool in_range(struct slice key, struct slice begin, struct slice end)
{
    if (end.len == 0)
        return slice_eq(key, begin);
    if (end.len == 1 && end.ptr[0] == 0)
        return slice_cmp(key, begin) >= 0;
    return slice_cmp(key, begin) >= 0 && slice_cmp(key, end) < 0;
}

/* The history source (watch.h's contract, etcd's compaction rule). */
static int fake_history(void *ctx, struct slice key, struct slice range_end, int64_t from_rev,
                        int64_t to_rev, bool prev, size_t max, struct kv_events *out,
                        int64_t *next_rev)
{
    struct fake *f = ctx;
    f->history_calls++;
    if (from_rev < f->compacted)
        return ASPEN_E_COMPACTED;
    ASPEN_ASSERT(to_rev <= f->current);
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (f->ev[mid].kv.mod_revision < from_rev)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < f->n && f->ev[i].kv.mod_revision <= to_rev; i++) {
        if (!in_range(f->ev[i].kv.key, key, range_end))
            continue;
        int64_t rev = f->ev[i].kv.mod_revision;
        if (out->n == max) {
            if (!f->cut_mid_revision)
                while (out->n > 0 && out->ev[out->n - 1].kv.mod_revision == rev)
                    out->n--;
            *next_rev = rev;
            return 0;
        }
        struct kv_event e = f->ev[i];
        if (!prev) {
            e.has_prev = false;
            memset(&e.prev, 0, sizeof(e.prev));
        }
        int rc = events_push(out, &e);
        if (rc)
            return rc;
    }
    *next_rev = to_rev + 1;
    return 0;
}

static void on_ready(void *ctx, int64_t id)
{
    struct fake *f = ctx;
    if (id >= 0 && id <= IDS_MAX)
        f->ready[id] = true;
}

static int hub_open(struct fake *f, size_t queue_max, size_t max_watchers, struct watch_hub **hub)
{
    struct watch_options o = {
        .source = {.ctx = f, .history = fake_history},
        .current_revision = f->current,
        .compacted_revision = f->compacted,
        .max_watchers = max_watchers,
        .queue_max_events = queue_max,
        .on_ready = on_ready,
        .on_ready_ctx = f,
    };
    return watch_hub_new(&o, hub);
}

/* Applies one revision of the given puts (k >= 0) / deletes (~k) and publishes it. */
static void step(struct fake *f, struct watch_hub *hub, const int *ops, size_t n)
{
    size_t first = f->n;
    for (size_t i = 0; i < n; i++)
        fake_event(f, ops[i] >= 0 ? ops[i] : ~ops[i], ops[i] >= 0);
    f->current++;
    if (hub)
        watch_publish(hub, f->current, f->ev + first, f->n - first);
}

static void put1(struct fake *f, struct watch_hub *hub, int k)
{
    step(f, hub, &k, 1);
}

static void del1(struct fake *f, struct watch_hub *hub, int k)
{
    int op = ~k;
    step(f, hub, &op, 1);
}

/* Takes everything watcher id has to send; the events' keys as key_set indexes in
 * keys[], their revisions in revs[]; returns the number of events, -1 on error. Flags
 * of the responses seen are OR-ed into *seen (1 created, 2 canceled, 4 progress). */
static int drain(struct watch_hub *hub, int64_t id, size_t max_events, int *keys, int64_t *revs,
                 int cap, int *seen, struct watch_response *last)
{
    struct arena a;
    arena_init(&a, 4096, 1u << 24);
    int n = 0;
    *seen = 0;
    for (;;) {
        struct watch_response r;
        int rc = watch_take(hub, id, max_events, &r, &a);
        if (rc == 0 || rc == ASPEN_E_NOT_FOUND)
            break;
        if (rc < 0) {
            n = -1;
            break;
        }
        *seen |= (r.created ? 1 : 0) | (r.canceled ? 2 : 0) | (r.progress ? 4 : 0);
        for (size_t i = 0; i < r.n_events && n < cap; i++, n++) {
            keys[n] = -1;
            for (int k = 0; k < KEYS; k++)
                if (slice_eq(r.events[i].kv.key, key_slice(k)))
                    keys[n] = k;
            revs[n] = r.events[i].kv.mod_revision;
        }
        if (last) {
            *last = r;
            last->events = NULL;
        }
        if (r.canceled)
            break;
    }
    arena_release(&a);
    return n;
}

/* ---------------------------------------------------------------------------------------
 * Scenarios
 * ------------------------------------------------------------------------------------- */

static int64_t create(struct watch_hub *hub, const char *key, size_t klen, const char *end,
                      size_t elen, int64_t start)
{
    struct watch_request req = {
        .key = slice_make(key, klen), .range_end = slice_make(end, elen), .start_revision = start};
    int64_t id = -1;
    if (watch_create(hub, &req, &id) != 0)
        return -1;
    return id;
}

static void test_matching(void)
{
    struct fake f;
    CHECK_OK(fake_init(&f));
    struct watch_hub *hub;
    CHECK_OK(hub_open(&f, 0, 0, &hub));
    int64_t single = create(hub, "ab", 2, "", 0, 0);
    int64_t range = create(hub, "ab", 2, "b\0x", 3, 0); /* [ab, b\0x) */
    int64_t prefix = create(hub, "b", 1, "c", 1, 0);    /* prefix "b" */
    int64_t fromkey = create(hub, "ca", 2, "\0", 1, 0); /* >= ca */
    int64_t nul = create(hub, "a\0", 2, "", 0, 0);      /* the key "a\0", not "a" */
    CHECK(single > 0 && range > 0 && prefix > 0 && fromkey > 0 && nul > 0);
    for (int k = 0; k < KEYS; k++)
        put1(&f, hub, k);
    int keys[64], seen;
    int64_t revs[64];
    CHECK_EQ(drain(hub, single, 100, keys, revs, 64, &seen, NULL), 1);
    CHECK_EQ(seen, 1);
    CHECK_EQ(keys[0], 3);
    CHECK_EQ(revs[0], 5);
    /* ab abc b b\0x? no: b\0x is the end (exclusive). */
    CHECK_EQ(drain(hub, range, 100, keys, revs, 64, &seen, NULL), 3);
    CHECK_EQ(keys[0], 3);
    CHECK_EQ(keys[1], 4);
    CHECK_EQ(keys[2], 5);
    CHECK_EQ(drain(hub, prefix, 100, keys, revs, 64, &seen, NULL), 4);
    CHECK_EQ(keys[3], 8);
    /* From "ca": ca cab d ... z za = keys 10..31. */
    CHECK_EQ(drain(hub, fromkey, 100, keys, revs, 64, &seen, NULL), KEYS - 10);
    CHECK_EQ(keys[0], 10);
    CHECK_EQ(keys[KEYS - 11], 31);
    CHECK_EQ(drain(hub, nul, 100, keys, revs, 64, &seen, NULL), 1);
    CHECK_EQ(keys[0], 1);
    watch_hub_free(hub);
    fake_release(&f);
}

static void test_filters_and_prev_kv(void)
{
    struct fake f;
    CHECK_OK(fake_init(&f));
    struct watch_hub *hub;
    CHECK_OK(hub_open(&f, 0, 0, &hub));
    struct watch_request req = {.key = key_slice(0), .filter_noput = true, .prev_kv = true};
    int64_t noput, nodel, plain;
    CHECK_OK(watch_create(hub, &req, &noput));
    req = (struct watch_request){.key = key_slice(0), .filter_nodelete = true};
    CHECK_OK(watch_create(hub, &req, &nodel));
    req = (struct watch_request){.key = key_slice(0)};
    CHECK_OK(watch_create(hub, &req, &plain));
    put1(&f, hub, 0); /* rev 2 */
    put1(&f, hub, 0); /* rev 3 */
    del1(&f, hub, 0); /* rev 4 */
    struct arena a;
    arena_init(&a, 4096, 1u << 20);
    struct watch_response r;
    CHECK_EQ(watch_take(hub, noput, 10, &r, &a), 1);
    CHECK(r.created);
    CHECK_EQ(watch_take(hub, noput, 10, &r, &a), 1);
    CHECK_EQ(r.n_events, 1);
    CHECK_EQ(r.events[0].type, KV_EVENT_DELETE);
    CHECK_EQ(r.revision, 4);
    CHECK(r.events[0].has_prev);
    CHECK_EQ(r.events[0].prev.mod_revision, 3);
    CHECK_EQ(r.events[0].prev.version, 2);
    CHECK_EQ(r.events[0].prev.create_revision, 2);
    CHECK(slice_eq(r.events[0].prev.value, slice_str("v3.0")));
    CHECK_EQ(watch_take(hub, noput, 10, &r, &a), 0);
    CHECK_EQ(watch_take(hub, nodel, 10, &r, &a), 1);
    CHECK_EQ(watch_take(hub, nodel, 10, &r, &a), 1);
    CHECK_EQ(r.n_events, 2);
    CHECK(r.events[0].type == KV_EVENT_PUT && r.events[1].type == KV_EVENT_PUT);
    CHECK(!r.events[1].has_prev); /* not asked for */
    CHECK(slice_eq(r.events[1].kv.value, slice_str("v3.0")));
    CHECK_EQ(r.events[1].kv.version, 2);
    CHECK_EQ(watch_take(hub, plain, 10, &r, &a), 1);
    CHECK_EQ(watch_take(hub, plain, 10, &r, &a), 1);
    CHECK_EQ(r.n_events, 3);
    arena_release(&a);
    watch_hub_free(hub);
    fake_release(&f);
}

static void test_start_revisions(void)
{
    struct fake f;
    CHECK_OK(fake_init(&f));
    for (int i = 0; i < 5; i++)
        put1(&f, NULL, i % 2); /* revs 2..6: keys 0 1 0 1 0 */
    struct watch_hub *hub;
    CHECK_OK(hub_open(&f, 0, 0, &hub));
    int64_t past = create(hub, "a", 1, "", 0, 3);   /* key 0 from rev 3: 4, 6 */
    int64_t now = create(hub, "a", 1, "", 0, 0);    /* from 7 */
    int64_t future = create(hub, "a", 1, "", 0, 9); /* from 9 */
    int64_t exact = create(hub, "a", 1, "", 0, 7);
    CHECK_EQ(watch_unsynced_count(hub), 1);
    put1(&f, hub, 0); /* 7 */
    put1(&f, hub, 0); /* 8 */
    put1(&f, hub, 0); /* 9 */
    int keys[16], seen;
    int64_t revs[16];
    struct watch_response last;
    /* Before sync the past watcher has only its created response. */
    CHECK_EQ(drain(hub, past, 10, keys, revs, 16, &seen, NULL), 0);
    CHECK_OK(watch_sync(hub, 100));
    CHECK_EQ(watch_unsynced_count(hub), 0);
    CHECK_EQ(drain(hub, past, 10, keys, revs, 16, &seen, &last), 5);
    CHECK_EQ(revs[0], 4);
    CHECK_EQ(revs[1], 6);
    CHECK_EQ(revs[4], 9);
    CHECK_EQ(last.revision, 9);
    CHECK_EQ(drain(hub, now, 10, keys, revs, 16, &seen, NULL), 3);
    CHECK_EQ(revs[0], 7);
    CHECK_EQ(drain(hub, future, 10, keys, revs, 16, &seen, NULL), 1);
    CHECK_EQ(revs[0], 9);
    CHECK_EQ(drain(hub, exact, 10, keys, revs, 16, &seen, NULL), 3);
    watch_hub_free(hub);
    fake_release(&f);
}

static void test_compacted_start_and_cancel(void)
{
    struct fake f;
    CHECK_OK(fake_init(&f));
    for (int i = 0; i < 9; i++)
        put1(&f, NULL, 0); /* revs 2..10 */
    f.compacted = 6;
    struct watch_hub *hub;
    CHECK_OK(hub_open(&f, 0, 0, &hub));
    int64_t old = create(hub, "a", 1, "", 0, 5);
    int64_t edge = create(hub, "a", 1, "", 0, 6); /* etcd: == compacted is allowed */
    struct arena a;
    arena_init(&a, 4096, 1u << 20);
    struct watch_response r;
    CHECK_EQ(watch_take(hub, old, 10, &r, &a), 1);
    CHECK(r.created && !r.canceled);
    CHECK_EQ(r.revision, 10);
    CHECK_EQ(watch_take(hub, old, 10, &r, &a), 1);
    CHECK(r.canceled);
    CHECK_EQ(r.cancel_code, ASPEN_E_COMPACTED);
    CHECK_EQ(r.compact_revision, 6);
    CHECK_ERR(watch_take(hub, old, 10, &r, &a), ASPEN_E_NOT_FOUND);
    CHECK_OK(watch_sync(hub, 100));
    int keys[16], seen;
    int64_t revs[16];
    CHECK_EQ(drain(hub, edge, 10, keys, revs, 16, &seen, NULL), 5);
    CHECK_EQ(revs[0], 6);

    /* A client cancel drops what is queued and ends with a canceled response. */
    put1(&f, hub, 0);
    CHECK_OK(watch_cancel(hub, edge));
    CHECK_ERR(watch_cancel(hub, edge), ASPEN_E_NOT_FOUND);
    CHECK_ERR(watch_cancel(hub, 12345), ASPEN_E_NOT_FOUND);
    CHECK_EQ(watch_take(hub, edge, 10, &r, &a), 1);
    CHECK(r.canceled && r.n_events == 0 && r.cancel_code == 0);
    CHECK_EQ(watch_count(hub), 0);
    arena_release(&a);
    watch_hub_free(hub);
    fake_release(&f);
}

static void test_ids_and_limits(void)
{
    struct fake f;
    CHECK_OK(fake_init(&f));
    struct watch_hub *hub;
    CHECK_OK(hub_open(&f, 0, 3, &hub));
    struct watch_request req = {.key = key_slice(0), .watch_id = 2};
    int64_t id;
    CHECK_OK(watch_create(hub, &req, &id));
    CHECK_EQ(id, 2);
    CHECK_ERR(watch_create(hub, &req, &id), ASPEN_E_EXISTS);
    req.watch_id = 0;
    CHECK_OK(watch_create(hub, &req, &id));
    CHECK_EQ(id, 1);
    CHECK_OK(watch_create(hub, &req, &id));
    CHECK_EQ(id, 3); /* 2 is taken */
    CHECK_ERR(watch_create(hub, &req, &id), ASPEN_E_FULL);
    req.watch_id = -1;
    CHECK_ERR(watch_create(hub, &req, &id), ASPEN_E_INVALID);
    req = (struct watch_request){.key = slice_make(NULL, 0)};
    CHECK_ERR(watch_create(hub, &req, &id), ASPEN_E_INVALID);
    /* An id is free again once the canceled response is taken, not before. */
    CHECK_OK(watch_cancel(hub, 2));
    req = (struct watch_request){.key = key_slice(0), .watch_id = 2};
    CHECK_ERR(watch_create(hub, &req, &id), ASPEN_E_EXISTS);
    int keys[4], seen;
    int64_t revs[4];
    CHECK_EQ(drain(hub, 2, 10, keys, revs, 4, &seen, NULL), 0);
    CHECK_EQ(seen, 3);
    CHECK_OK(watch_create(hub, &req, &id));
    watch_hub_free(hub);
    fake_release(&f);
}

static void test_progress(void)
{
    struct fake f;
    CHECK_OK(fake_init(&f));
    struct watch_hub *hub;
    CHECK_OK(hub_open(&f, 2, 0, &hub));
    struct watch_request req = {.key = key_slice(0), .progress_notify = true};
    int64_t notify_id, plain_id, busy_id, behind_id;
    CHECK_OK(watch_create(hub, &req, &notify_id));
    req.progress_notify = false;
    CHECK_OK(watch_create(hub, &req, &plain_id));
    req.key = key_slice(1);
    CHECK_OK(watch_create(hub, &req, &busy_id));
    req.key = key_slice(0);
    req.start_revision = 1;
    CHECK_OK(watch_create(hub, &req, &behind_id));
    struct arena a;
    arena_init(&a, 4096, 1u << 20);
    struct watch_response r;
    /* Not before the created response is taken. */
    watch_progress_tick(hub);
    CHECK_EQ(watch_take(hub, notify_id, 10, &r, &a), 1);
    CHECK(r.created);
    CHECK_EQ(watch_take(hub, notify_id, 10, &r, &a), 0);
    CHECK_EQ(watch_take(hub, plain_id, 10, &r, &a), 1);
    CHECK_EQ(watch_take(hub, busy_id, 10, &r, &a), 1);
    CHECK_EQ(watch_take(hub, behind_id, 10, &r, &a), 1);
    put1(&f, hub, 1); /* rev 2: busy has a queued event */
    watch_progress_tick(hub);
    CHECK(watch_has_pending(hub, notify_id));
    CHECK(!watch_has_pending(hub, plain_id));  /* no progress_notify */
    CHECK(!watch_has_pending(hub, behind_id)); /* unsynced */
    CHECK_EQ(watch_take(hub, notify_id, 10, &r, &a), 1);
    CHECK(r.progress && r.n_events == 0);
    CHECK_EQ(r.revision, 2);
    watch_request_progress(hub);
    CHECK_EQ(watch_take(hub, plain_id, 10, &r, &a), 1);
    CHECK(r.progress);
    CHECK_EQ(r.revision, 2);
    CHECK_EQ(watch_take(hub, busy_id, 10, &r, &a), 1);
    CHECK(!r.progress && r.n_events == 1); /* the event, not a progress response */
    CHECK_EQ(watch_take(hub, busy_id, 10, &r, &a), 0);
    CHECK_EQ(watch_take(hub, behind_id, 10, &r, &a), 0);
    /* A progress response pending when events arrive gives way to them. */
    watch_request_progress(hub);
    put1(&f, hub, 0); /* rev 3 */
    CHECK_EQ(watch_take(hub, plain_id, 10, &r, &a), 1);
    CHECK_EQ(r.n_events, 1);
    CHECK_EQ(r.revision, 3);
    CHECK_EQ(watch_take(hub, plain_id, 10, &r, &a), 0);
    arena_release(&a);
    watch_hub_free(hub);
    fake_release(&f);
}

/* A watcher with a queue of 4 that does not read falls behind, then catches up from
 * history with every event exactly once, while publishes continue. */
static void test_slow_watcher_catches_up(void)
{
    struct fake f;
    CHECK_OK(fake_init(&f));
    struct watch_hub *hub;
    CHECK_OK(hub_open(&f, 4, 0, &hub));
    int64_t id = create(hub, "a", 1, "\0", 1, 0);
    int ops[3] = {0, 1, 2};
    step(&f, hub, ops, 3); /* rev 2: 3 events, fit */
    step(&f, hub, ops, 2); /* rev 3: 2 events, do not fit (3 + 2 > 4) */
    CHECK_EQ(watch_unsynced_count(hub), 1);
    for (int i = 0; i < 10; i++)
        step(&f, hub, ops, 3); /* revs 4..13 */
    int keys[64], seen;
    int64_t revs[64];
    int total = 0;
    struct watch_response last;
    for (int round = 0; round < 40 && (watch_unsynced_count(hub) || watch_has_pending(hub, id));
         round++) {
        CHECK_OK(watch_sync(hub, 5));
        if (round == 3)
            step(&f, hub, ops, 1); /* rev 14, published while unsynced */
        int n = drain(hub, id, 4, keys + total, revs + total, 64 - total, &seen, &last);
        CHECK(n >= 0);
        total += n;
    }
    CHECK_EQ(watch_unsynced_count(hub), 0);
    CHECK_EQ(total, 3 + 2 + 30 + 1);
    for (int i = 1; i < total; i++)
        CHECK(revs[i] > revs[i - 1] || (revs[i] == revs[i - 1] && keys[i] > keys[i - 1]));
    CHECK_EQ(revs[total - 1], 14);
    CHECK_EQ(last.revision, 14);
    put1(&f, hub, 0); /* synced again: straight into the queue */
    CHECK_EQ(drain(hub, id, 4, keys, revs, 64, &seen, NULL), 1);
    CHECK_EQ(revs[0], 15);
    watch_hub_free(hub);
    fake_release(&f);
}

static void test_catch_up_meets_compaction(void)
{
    struct fake f;
    CHECK_OK(fake_init(&f));
    struct watch_hub *hub;
    CHECK_OK(hub_open(&f, 2, 0, &hub));
    int64_t id = create(hub, "a", 1, "", 0, 0);
    int keys[16], seen;
    int64_t revs[16];
    CHECK_EQ(drain(hub, id, 10, keys, revs, 16, &seen, NULL), 0);
    for (int i = 0; i < 6; i++)
        put1(&f, hub, 0); /* revs 2..7: 2 and 3 queued, unsynced from 4 */
    CHECK_EQ(watch_unsynced_count(hub), 1);
    f.compacted = 5;
    struct watch_response last;
    CHECK_EQ(drain(hub, id, 10, keys, revs, 16, &seen, &last), 2);
    CHECK_EQ(revs[1], 3);
    CHECK_EQ(last.revision, 3);
    /* The hub has not been told: the source's refusal cancels it during sync. */
    CHECK_OK(watch_sync(hub, 100));
    CHECK_EQ(drain(hub, id, 10, keys, revs, 16, &seen, &last), 0);
    CHECK(last.canceled);
    CHECK_EQ(last.cancel_code, ASPEN_E_COMPACTED);
    CHECK_EQ(last.compact_revision, 5);
    /* Told first: canceled without asking history. */
    id = create(hub, "a", 1, "", 0, 0);
    CHECK_EQ(drain(hub, id, 10, keys, revs, 16, &seen, NULL), 0);
    for (int i = 0; i < 4; i++)
        put1(&f, hub, 0); /* 8..11: 8, 9 queued, unsynced from 10 */
    uint64_t calls = f.history_calls;
    f.compacted = 11;
    watch_set_compacted(hub, 11);
    CHECK_EQ(watch_unsynced_count(hub), 0);
    CHECK_EQ(drain(hub, id, 10, keys, revs, 16, &seen, &last), 2);
    CHECK(last.canceled && last.compact_revision == 11);
    CHECK_EQ(f.history_calls, calls);
    watch_hub_free(hub);
    fake_release(&f);
}

/* A revision larger than the queue goes whole into an empty queue, from publish and from
 * history, and take splits it into fragments only when max_events is smaller. */
static void test_large_revision_and_fragments(void)
{
    struct fake f;
    CHECK_OK(fake_init(&f));
    struct watch_hub *hub;
    CHECK_OK(hub_open(&f, 3, 0, &hub));
    int64_t live = create(hub, "a", 1, "\0", 1, 0);
    int64_t past = create(hub, "a", 1, "\0", 1, 1);
    int ops[10];
    for (int i = 0; i < 10; i++)
        ops[i] = i;
    step(&f, hub, ops, 10); /* rev 2: 10 events */
    step(&f, hub, ops, 1);  /* rev 3: does not fit behind them */
    CHECK_EQ(watch_unsynced_count(hub), 2);
    struct arena a;
    arena_init(&a, 4096, 1u << 20);
    struct watch_response r;
    CHECK_EQ(watch_take(hub, live, 4, &r, &a), 1);
    CHECK(r.created);
    CHECK_EQ(watch_take(hub, live, 4, &r, &a), 1);
    CHECK(r.fragment);
    CHECK_EQ(r.n_events, 4);
    CHECK_EQ(r.revision, 1);
    CHECK_EQ(watch_take(hub, live, 4, &r, &a), 1);
    CHECK(r.fragment && r.n_events == 4);
    CHECK_EQ(watch_take(hub, live, 4, &r, &a), 1);
    CHECK(!r.fragment);
    CHECK_EQ(r.n_events, 2);
    CHECK_EQ(r.revision, 2);
    int keys[32], seen;
    int64_t revs[32];
    int total = 0;
    for (int round = 0; round < 10 && watch_unsynced_count(hub) > 0; round++) {
        CHECK_OK(watch_sync(hub, 100));
        int n = drain(hub, past, 100, keys + total, revs + total, 32 - total, &seen, NULL);
        CHECK(n >= 0);
        total += n;
    }
    CHECK_EQ(watch_unsynced_count(hub), 0);
    total += drain(hub, past, 100, keys + total, revs + total, 32 - total, &seen, NULL);
    CHECK_EQ(total, 11);
    CHECK_EQ(revs[9], 2);
    CHECK_EQ(revs[10], 3);
    CHECK_EQ(drain(hub, live, 100, keys, revs, 32, &seen, NULL), 1);
    CHECK_EQ(revs[0], 3);
    arena_release(&a);
    watch_hub_free(hub);
    fake_release(&f);
}

/* A failed copy in publish makes the watcher unsynced instead of losing the revision. */
static void test_publish_nomem(void)
{
    struct fake f;
    CHECK_OK(fake_init(&f));
    struct watch_hub *hub;
    CHECK_OK(hub_open(&f, 0, 0, &hub));
    int64_t id = create(hub, "a", 1, "", 0, 0);
    put1(&f, hub, 0);
    mem_fail_at(1, 1);
    put1(&f, hub, 0);
    mem_fail_at(0, 0);
    CHECK_EQ(watch_unsynced_count(hub), 1);
    CHECK_OK(watch_sync(hub, 100));
    int keys[8], seen;
    int64_t revs[8];
    CHECK_EQ(drain(hub, id, 100, keys, revs, 8, &seen, NULL), 2);
    CHECK_EQ(revs[1], 3);
    /* And an arena too small to take into leaves the queue as it was. */
    put1(&f, hub, 0);
    struct arena tiny;
    arena_init(&tiny, 16, 16);
    struct watch_response r;
    CHECK_ERR(watch_take(hub, id, 10, &r, &tiny), ASPEN_E_NOMEM);
    arena_release(&tiny);
    CHECK_EQ(drain(hub, id, 100, keys, revs, 8, &seen, NULL), 1);
    CHECK_EQ(revs[0], 4);
    watch_hub_free(hub);
    fake_release(&f);
}

/* One run of a small scenario that retries every call failing with ASPEN_E_NOMEM; the
 * events each watcher delivered are counted into counts[3]. */
static int alloc_scenario(int64_t counts[3])
{
    static struct fake f;
    int rc;
    while ((rc = fake_init(&f)) == ASPEN_E_NOMEM)
        fake_release(&f);
    for (int i = 0; i < 6; i++)
        put1(&f, NULL, i % 4);
    struct watch_hub *hub = NULL;
    while ((rc = hub_open(&f, 3, 0, &hub)) == ASPEN_E_NOMEM)
        ;
    int64_t ids[3];
    struct watch_request reqs[3] = {
        {.key = key_slice(0), .range_end = slice_make("b", 1), .start_revision = 2},
        {.key = key_slice(0), .range_end = slice_make("\0", 1), .prev_kv = true},
        {.key = key_slice(5)},
    };
    for (int i = 0; i < 3 && !rc; i++)
        while ((rc = watch_create(hub, &reqs[i], &ids[i])) == ASPEN_E_NOMEM)
            ;
    struct arena a;
    arena_init(&a, 256, 1u << 20);
    counts[0] = counts[1] = counts[2] = 0;
    for (int s = 0; s < 40 && !rc; s++) {
        int ops[3] = {s % 7, (s * 3) % 11, ~(s % 7)};
        if (s % 5 == 4)
            step(&f, hub, ops + 2, 1);
        else
            step(&f, hub, ops, s % 3 == 0 ? 2 : 1);
        bool settle = s == 39;
        for (int round = 0; round < (settle ? 1000 : 1) && !rc; round++) {
            while ((rc = watch_sync(hub, 4)) == ASPEN_E_NOMEM)
                ;
            for (int i = 0; i < 3 && !rc; i++) {
                struct watch_response r;
                int got;
                do {
                    arena_reset(&a);
                    while ((got = watch_take(hub, ids[i], 2, &r, &a)) == ASPEN_E_NOMEM)
                        ;
                    if (got == 1)
                        counts[i] += (int64_t)r.n_events;
                } while (got == 1 && (settle || s % 4 == 0));
                if (got < 0)
                    rc = got;
            }
            if (settle && watch_unsynced_count(hub) == 0)
                break;
        }
    }
    arena_release(&a);
    watch_hub_free(hub);
    fake_release(&f);
    return rc;
}

/* Every allocation of the scenario fails once, in turn: the hub reports ASPEN_E_NOMEM or
 * degrades (unsynced, caught up later), never loses or repeats an event, never leaks. */
static void test_alloc_failures(void)
{
    int64_t want[3], got[3];
    CHECK_OK(alloc_scenario(want));
    CHECK(want[0] > 0 && want[1] > 0 && want[2] > 0);
    uint64_t calls = mem_alloc_calls();
    CHECK_OK(alloc_scenario(got));
    uint64_t total = mem_alloc_calls() - calls;
    for (uint64_t n = 1; n <= total; n++) {
        mem_fail_at(n, 0);
        int rc = alloc_scenario(got);
        mem_fail_at(0, 0);
        CHECK_MSG(rc == 0, "failure at allocation %" PRIu64 ": %s", n, aspen_err_name(rc));
        for (int i = 0; i < 3; i++)
            CHECK_MSG(got[i] == want[i],
                      "failure at allocation %" PRIu64 ": watcher %d got %lld, want %lld", n, i,
                      (long long)got[i], (long long)want[i]);
    }
}

/* ---------------------------------------------------------------------------------------
 * Randomized property test
 * ------------------------------------------------------------------------------------- */

#define PW_MAX 48

struct pw {
    int64_t id;
    bool live; /* created and its final response not yet taken */
    bool fast; /* takes everything after every step */
    bool prev_kv, filter_noput, filter_nodelete;
    int key, end_kind; /* end_kind: 0 single, 1 prefix-ish range, 2 from-key */
    int end_key;
    int64_t start;   /* resolved start revision */
    size_t exp_pos;  /* next log index to compare with */
    int64_t through; /* highest "delivered through" revision promised */
    bool client_canceled;
};

static struct slice pw_end(const struct pw *w)
{
    static const uint8_t zero = 0;
    if (w->end_kind == 0)
        return slice_make(NULL, 0);
    if (w->end_kind == 2)
        return slice_make(&zero, 1);
    return key_slice(w->end_key);
}

static bool pw_matches(const struct pw *w, const struct kv_event *e)
{
    if (e->type == KV_EVENT_PUT ? w->filter_noput : w->filter_nodelete)
        return false;
    return e->kv.mod_revision >= w->start && in_range(e->kv.key, key_slice(w->key), pw_end(w));
}

/* Index of the next log event w must deliver, from exp_pos (f->n if none yet). */
static size_t pw_next(const struct fake *f, struct pw *w)
{
    while (w->exp_pos < f->n && !pw_matches(w, &f->ev[w->exp_pos]))
        w->exp_pos++;
    return w->exp_pos;
}

static bool kv_same(const struct kv_kv *a, const struct kv_kv *b)
{
    return slice_eq(a->key, b->key) && slice_eq(a->value, b->value) &&
           a->create_revision == b->create_revision && a->mod_revision == b->mod_revision &&
           a->version == b->version && a->lease == b->lease;
}

/* Checks one response against the reference; 0 or a line number of the failed check. */
static int pw_check_response(struct fake *f, struct watch_hub *hub, struct pw *w,
                             const struct watch_response *r)
{
    if (r->created)
        return 0;
    if (r->canceled) {
        w->live = false;
        if (r->cancel_code == 0)
            return w->client_canceled ? 0 : __LINE__;
        if (r->cancel_code != ASPEN_E_COMPACTED || w->client_canceled)
            return __LINE__;
        /* Justified: the first revision it still needed, at least through + 1, was
         * compacted; and a fast watcher from now never falls behind. */
        int64_t needed = (w->through > w->start - 1 ? w->through : w->start - 1) + 1;
        if (!(r->compact_revision > needed) || r->compact_revision > f->compacted)
            return __LINE__;
        return w->fast ? __LINE__ : 0;
    }
    for (size_t i = 0; i < r->n_events; i++) {
        size_t at = pw_next(f, w);
        if (at >= f->n)
            return __LINE__;
        const struct kv_event *want = &f->ev[at];
        const struct kv_event *got = &r->events[i];
        if (got->type != want->type || !kv_same(&got->kv, &want->kv))
            return __LINE__;
        if (w->prev_kv ? (got->has_prev != want->has_prev ||
                          (want->has_prev && !kv_same(&got->prev, &want->prev)))
                       : got->has_prev)
            return __LINE__;
        w->exp_pos++;
    }
    /* The revision promises every matching event up to it: the next one is later. */
    size_t at = pw_next(f, w);
    if (at < f->n && f->ev[at].kv.mod_revision <= r->revision)
        return __LINE__;
    if (r->revision > watch_current_revision(hub))
        return __LINE__;
    if (r->progress && r->revision != watch_current_revision(hub))
        return __LINE__;
    if (r->revision > w->through)
        w->through = r->revision;
    return 0;
}

static int pw_take(struct fake *f, struct watch_hub *hub, struct pw *w, size_t max_events,
                   size_t max_responses, struct arena *a)
{
    for (size_t k = 0; k < max_responses && w->live; k++) {
        struct watch_response r;
        arena_reset(a);
        int rc = watch_take(hub, w->id, max_events, &r, a);
        if (rc < 0)
            return __LINE__;
        if (rc == 0) {
            f->ready[w->id] = false;
            break;
        }
        if (r.watch_id != w->id)
            return __LINE__;
        int line = pw_check_response(f, hub, w, &r);
        if (line)
            return line;
    }
    return 0;
}

static int property_run(uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    static struct fake f;
    if (fake_init(&f))
        return __LINE__;
    f.cut_mid_revision = rng_ratio(&r, 1, 2);
    bool multi_rev_publish = rng_ratio(&r, 1, 2);
    size_t queue_max = (size_t)rng_range(&r, 2, 12);
    struct watch_hub *hub = NULL;
    static struct pw ws[PW_MAX];
    memset(ws, 0, sizeof(ws));
    struct arena a;
    arena_init(&a, 4096, 1u << 24);
    int line = 0;
    /* Some history before the hub starts. */
    for (int i = 0; i < 20; i++)
        put1(&f, NULL, (int)rng_below(&r, KEYS));
    if (hub_open(&f, queue_max, PW_MAX - 8, &hub))
        return __LINE__;

    int steps = 1500;
    for (int s = 0; s < steps && !line; s++) {
        uint64_t dice = rng_below(&r, 100);
        if (dice < 35 && f.n + 3 * KEYS < LOG_MAX) {
            /* One or more revisions, published together or one by one. */
            size_t first = f.n;
            int nrev = multi_rev_publish ? (int)rng_range(&r, 1, 3) : 1;
            for (int v = 0; v < nrev; v++) {
                size_t nev = rng_ratio(&r, 1, 15) ? (size_t)rng_range(&r, 5, KEYS)
                                                  : (size_t)rng_range(&r, 1, 3);
                int chosen[KEYS];
                size_t n = 0;
                for (size_t e = 0; e < nev; e++) {
                    int k = (int)rng_below(&r, KEYS);
                    bool dup = false;
                    for (size_t j = 0; j < n; j++)
                        dup |= chosen[j] == k;
                    if (dup)
                        continue;
                    chosen[n++] = k;
                    /* Delete only what exists (etcd makes no event otherwise). */
                    bool put = !f.keys[k].exists || rng_ratio(&r, 2, 3);
                    fake_event(&f, k, put);
                }
                f.current++;
                if (!multi_rev_publish)
                    watch_publish(hub, f.current, f.ev + first, f.n - first), first = f.n;
            }
            if (multi_rev_publish)
                watch_publish(hub, f.current, f.ev + first, f.n - first);
        } else if (dice < 40) {
            watch_publish(hub, f.current, NULL, 0);
        } else if (dice < 52) {
            int slot = -1;
            for (int i = 0; i < PW_MAX; i++)
                if (!ws[i].live) {
                    slot = i;
                    break;
                }
            if (slot < 0)
                continue;
            struct pw *w = &ws[slot];
            memset(w, 0, sizeof(*w));
            w->key = (int)rng_below(&r, KEYS);
            w->end_kind = (int)rng_below(&r, 3);
            w->end_key = (int)rng_below(&r, KEYS);
            w->prev_kv = rng_ratio(&r, 1, 2);
            w->filter_noput = rng_ratio(&r, 1, 6);
            w->filter_nodelete = rng_ratio(&r, 1, 6);
            w->fast = !multi_rev_publish && rng_ratio(&r, 1, 3);
            int64_t start = 0;
            if (!w->fast && rng_ratio(&r, 2, 3))
                start = (int64_t)rng_range(&r, 1, (uint64_t)f.current + 3);
            struct watch_request req = {
                .key = key_slice(w->key),
                .range_end = pw_end(w),
                .start_revision = start,
                .prev_kv = w->prev_kv,
                .filter_noput = w->filter_noput,
                .filter_nodelete = w->filter_nodelete,
                .progress_notify = rng_ratio(&r, 1, 2),
                .watch_id = rng_ratio(&r, 1, 3) ? (int64_t)rng_range(&r, 1, 200) : 0,
            };
            int64_t id = 0;
            int rc = watch_create(hub, &req, &id);
            bool taken = false;
            for (int i = 0; i < PW_MAX; i++)
                taken |= ws[i].live && ws[i].id == req.watch_id;
            if (rc == ASPEN_E_EXISTS) {
                if (!taken)
                    line = __LINE__;
                continue;
            }
            if (rc == ASPEN_E_FULL) {
                if (watch_count(hub) < PW_MAX - 8)
                    line = __LINE__;
                continue;
            }
            if (rc || taken || id <= 0 || id > IDS_MAX || (req.watch_id && id != req.watch_id)) {
                line = __LINE__;
                continue;
            }
            w->id = id;
            w->live = true;
            w->start = start > 0 ? start : f.current + 1;
            w->through = w->start - 1;
        } else if (dice < 55) {
            struct pw *w = &ws[rng_below(&r, PW_MAX)];
            if (w->live && !w->client_canceled) {
                int rc = watch_cancel(hub, w->id);
                if (rc == 0)
                    w->client_canceled = true;
                else if (rc != ASPEN_E_NOT_FOUND)
                    line = __LINE__;
            }
        } else if (dice < 80) {
            struct pw *w = &ws[rng_below(&r, PW_MAX)];
            if (w->live && !w->fast)
                line = pw_take(&f, hub, w, (size_t)rng_range(&r, 1, 4), (size_t)rng_range(&r, 1, 3),
                               &a);
        } else if (dice < 92) {
            if (watch_sync(hub, (size_t)rng_range(&r, 1, 20)))
                line = __LINE__;
        } else if (dice < 93) {
            /* Rare and mostly short steps, so watchers live long enough to fall behind
             * and catch up, yet some catch-ups meet a compaction. */
            if (f.compacted < f.current) {
                f.compacted +=
                    1 + (int64_t)rng_below(&r, (uint64_t)(f.current - f.compacted) / 3 + 1);
                if (rng_ratio(&r, 3, 4))
                    watch_set_compacted(hub, f.compacted);
            }
        } else if (dice < 97) {
            watch_request_progress(hub);
        } else {
            watch_progress_tick(hub);
        }
        /* Fast consumers read everything after every step. */
        for (int i = 0; i < PW_MAX && !line; i++)
            if (ws[i].live && ws[i].fast)
                line = pw_take(&f, hub, &ws[i], SIZE_MAX, SIZE_MAX, &a);
        /* Whoever has something to send was announced by on_ready. */
        for (int i = 0; i < PW_MAX && !line; i++)
            if (ws[i].live && watch_has_pending(hub, ws[i].id) && !f.ready[ws[i].id])
                line = __LINE__;
    }
    /* Drain: sync and take until nothing is behind or pending. */
    watch_set_compacted(hub, f.compacted);
    for (int round = 0; round < 10000 && !line; round++) {
        if (watch_sync(hub, 64)) {
            line = __LINE__;
            break;
        }
        bool any = false;
        for (int i = 0; i < PW_MAX && !line; i++) {
            if (!ws[i].live)
                continue;
            line = pw_take(&f, hub, &ws[i], (size_t)rng_range(&r, 1, 5), 4, &a);
            any |= ws[i].live && watch_has_pending(hub, ws[i].id);
        }
        if (!any && watch_unsynced_count(hub) == 0)
            break;
    }
    /* Every live watcher has delivered its whole stream. */
    for (int i = 0; i < PW_MAX && !line; i++) {
        if (!ws[i].live)
            continue;
        if (pw_next(&f, &ws[i]) != f.n)
            line = __LINE__;
        if (watch_has_pending(hub, ws[i].id))
            line = __LINE__;
    }
    if (!line && watch_unsynced_count(hub) != 0)
        line = __LINE__;
    watch_hub_free(hub);
    arena_release(&a);
    fake_release(&f);
    return line;
}

static void test_property(void)
{
    uint64_t base = test_seed();
    uint64_t n = test_iters(150);
    for (uint64_t i = 0; i < n; i++) {
        int line = property_run(base + i);
        CHECK_MSG(line == 0, "property failed at test_watch.c:%d with seed %" PRIu64, line,
                  base + i);
    }
}

static const struct test_case tests[] = {
    TEST(test_matching),
    TEST(test_filters_and_prev_kv),
    TEST(test_start_revisions),
    TEST(test_compacted_start_and_cancel),
    TEST(test_ids_and_limits),
    TEST(test_progress),
    TEST(test_slow_watcher_catches_up),
    TEST(test_catch_up_meets_compaction),
    TEST(test_large_revision_and_fragments),
    TEST(test_publish_nomem),
    TEST(test_alloc_failures),
    TEST(test_property),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("watch", tests);
}
