/*
 * The watch hub (kv/watch.h).
 *
 * Watchers live in a dense array (for publish and sync, which visit them all) with an
 * id -> index hash table beside it (for take and cancel). Publish matches every synced
 * watcher against every event: O(watchers x events). etcd keeps an interval tree of
 * ranges for this; a linear pass is simpler and is enough until a profile says otherwise.
 *
 * THE INVARIANT. The hub's `current` is the last revision published. For each watcher w
 * with start revision S, let M(a, b) be the events matching w (key range, filters) with
 * revision in [a, b]. Then the events w has queued or delivered are exactly, in order:
 *   - SYNCED:   M(S, current)
 *   - UNSYNCED: M(S, w->next_rev - 1), with S <= w->next_rev <= current
 * Publish of revision R (> current) appends M(R, R) to each synced watcher and advances
 * current, so synced watchers keep it; unsynced ones are skipped, which keeps theirs too
 * since their bound is next_rev, not current. A synced watcher that cannot take M(R, R)
 * whole becomes unsynced with next_rev = R: nothing of R was queued, so it holds. Sync
 * reads history only in [next_rev, current] — never beyond current, even if the store
 * has already applied more: those revisions will come through publish, which is exactly
 * why it stops there — appends M(next_rev, n - 1) for the source's continuation point n,
 * and sets next_rev = n; when n == current + 1 the two definitions coincide and the
 * watcher is synced again. Each revision is thus queued once, whole, in order: no gap, no
 * duplicate. The only way out is a cancel: by the client, or "compacted" when next_rev
 * falls below the compacted revision (the events it needs are gone), after the queued
 * events, which are a correct prefix.
 *
 * Queued events are deep copies (one allocation each: the event and its bytes), since
 * publish's events are borrowed; watch_take copies them again into the caller's arena
 * and frees them, so a response outlives nothing of the hub's.
 */
#include "kv/watch.h"

#include "base/assert.h"
#include "base/constants.h"

#include <string.h>

/* First allocation of the watcher array and of a queue; the table starts at twice. */
#define MIN_WATCHERS 16
#define MIN_QUEUE    16

_Static_assert(ASPEN_MAX_WATCHERS <= UINT32_MAX / 4, "watcher indexes are 32-bit");

enum watcher_state { W_SYNCED, W_UNSYNCED, W_CANCELED };

/* One queued event and its bytes (key, value, prev key, prev value, in that order). */
struct qev {
    struct kv_event ev; /* slices point into bytes */
    uint8_t bytes[];
};

struct watcher {
    int64_t id;
    uint8_t *range_bytes; /* owned: key then range_end */
    struct slice key, range_end;
    int64_t start_rev;
    int64_t next_rev;    /* UNSYNCED (and CANCELED by compaction): see the invariant */
    int64_t created_rev; /* the hub's revision at creation, for the created response */
    bool prev_kv, filter_noput, filter_nodelete, progress_notify;
    uint8_t state; /* enum watcher_state */
    bool created_pending, progress_pending;
    int cancel_code;
    int64_t compact_rev;
    struct qev **q; /* owned; the queue is q[q_head .. q_head + q_len) */
    size_t q_head, q_len, q_cap;
    size_t pos; /* index in hub->w */
};

struct hub_slot {
    int64_t id;   /* 0: empty (ids are > 0) */
    uint32_t idx; /* index in hub->w */
};

struct watch_hub {
    struct watch_options opts; /* limits resolved (never 0) */
    int64_t current, compacted;
    struct watcher **w; /* owned, as is each watcher; n of cap used */
    size_t n, cap;
    struct hub_slot *table; /* owned; power of two, at most half full */
    size_t table_cap;
    size_t n_unsynced;
    size_t sync_cursor;   /* round-robin position of watch_sync */
    int64_t next_id;      /* the next id the hub tries when it picks one */
    struct arena scratch; /* history reads; reset before each */
};

/* ---------------------------------------------------------------------------------------
 * Matching (etcd's range rules; a copy of kv_in_range's rule so the hub builds alone)
 * ------------------------------------------------------------------------------------- */

static bool range_has(struct slice key, struct slice begin, struct slice end)
{
    if (end.len == 0)
        return slice_eq(key, begin);
    if (end.len == 1 && end.ptr[0] == 0)
        return slice_cmp(key, begin) >= 0;
    return slice_cmp(key, begin) >= 0 && slice_cmp(key, end) < 0;
}

static bool matches(const struct watcher *w, const struct kv_event *ev)
{
    if (ev->type == KV_EVENT_PUT ? w->filter_noput : w->filter_nodelete)
        return false;
    return ev->kv.mod_revision >= w->start_rev && range_has(ev->kv.key, w->key, w->range_end);
}

/* ---------------------------------------------------------------------------------------
 * id -> index table (open addressing, linear probing, backward-shift deletion)
 * ------------------------------------------------------------------------------------- */

static size_t slot_of(int64_t id, size_t cap)
{
    return (size_t)(((uint64_t)id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
}

static struct watcher *find(const struct watch_hub *hub, int64_t id)
{
    if (hub->table_cap == 0 || id <= 0)
        return NULL;
    for (size_t i = slot_of(id, hub->table_cap);; i = (i + 1) & (hub->table_cap - 1)) {
        if (hub->table[i].id == 0)
            return NULL;
        if (hub->table[i].id == id)
            return hub->w[hub->table[i].idx];
    }
}

static void table_put(struct hub_slot *table, size_t cap, int64_t id, uint32_t idx)
{
    size_t i = slot_of(id, cap);
    while (table[i].id != 0 && table[i].id != id)
        i = (i + 1) & (cap - 1);
    table[i] = (struct hub_slot){.id = id, .idx = idx};
}

static void table_del(struct watch_hub *hub, int64_t id)
{
    size_t mask = hub->table_cap - 1;
    size_t i = slot_of(id, hub->table_cap);
    while (hub->table[i].id != id) {
        ASPEN_ASSERT(hub->table[i].id != 0);
        i = (i + 1) & mask;
    }
    for (size_t j = (i + 1) & mask; hub->table[j].id != 0; j = (j + 1) & mask) {
        size_t home = slot_of(hub->table[j].id, hub->table_cap);
        bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            hub->table[i] = hub->table[j];
            i = j;
        }
    }
    hub->table[i] = (struct hub_slot){0};
}

static int reserve_watcher(struct watch_hub *hub)
{
    if (hub->n == hub->cap) {
        int rc = mem_grow(&hub->w, &hub->cap, hub->n, sizeof(*hub->w), MIN_WATCHERS,
                          hub->opts.max_watchers);
        if (rc)
            return rc;
    }
    if ((hub->n + 1) * 2 > hub->table_cap) {
        size_t cap = hub->table_cap ? hub->table_cap * 2 : 2 * MIN_WATCHERS;
        struct hub_slot *table = mem_calloc(cap, sizeof(*table));
        if (!table)
            return ASPEN_E_NOMEM;
        for (size_t i = 0; i < hub->table_cap; i++)
            if (hub->table[i].id != 0)
                table_put(table, cap, hub->table[i].id, hub->table[i].idx);
        mem_free(hub->table);
        hub->table = table;
        hub->table_cap = cap;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Watchers and their queues
 * ------------------------------------------------------------------------------------- */

static bool has_pending(const struct watcher *w)
{
    return w->created_pending || w->q_len > 0 || w->state == W_CANCELED || w->progress_pending;
}

/* Calls on_ready if w went from nothing to send to something to send. */
static void notify(struct watch_hub *hub, const struct watcher *w, bool was_pending)
{
    if (!was_pending && has_pending(w) && hub->opts.on_ready)
        hub->opts.on_ready(hub->opts.on_ready_ctx, w->id);
}

static void set_state(struct watch_hub *hub, struct watcher *w, enum watcher_state state)
{
    if (w->state == W_UNSYNCED)
        hub->n_unsynced--;
    if (state == W_UNSYNCED)
        hub->n_unsynced++;
    w->state = (uint8_t)state;
}

static void queue_drop(struct watcher *w)
{
    for (size_t i = 0; i < w->q_len; i++)
        mem_free(w->q[w->q_head + i]);
    w->q_head = 0;
    w->q_len = 0;
}

static void watcher_free(struct watcher *w)
{
    queue_drop(w);
    mem_free(w->q);
    mem_free(w->range_bytes);
    mem_free(w);
}

/* Makes room for `extra` more events at the queue's tail. */
static int queue_reserve(struct watcher *w, size_t extra)
{
    if (w->q_head + w->q_len + extra <= w->q_cap)
        return 0;
    if (w->q_head > 0) {
        memmove(w->q, w->q + w->q_head, w->q_len * sizeof(*w->q));
        w->q_head = 0;
        if (w->q_len + extra <= w->q_cap)
            return 0;
    }
    size_t cap = w->q_cap ? w->q_cap : MIN_QUEUE;
    while (cap < w->q_len + extra) {
        if (cap > SIZE_MAX / 2 / sizeof(*w->q))
            return ASPEN_E_NOMEM;
        cap *= 2;
    }
    struct qev **q = mem_realloc(w->q, cap * sizeof(*q));
    if (!q)
        return ASPEN_E_NOMEM;
    w->q = q;
    w->q_cap = cap;
    return 0;
}

/* Bytes of an event's copy; prev only when the watcher asked for it. */
static size_t event_bytes(const struct kv_event *ev, bool prev)
{
    size_t n = ev->kv.key.len + ev->kv.value.len;
    if (prev && ev->has_prev)
        n += ev->prev.key.len + ev->prev.value.len;
    return n;
}

static struct slice copy_to(uint8_t **cursor, struct slice s)
{
    if (s.len == 0)
        return slice_make(NULL, 0);
    memcpy(*cursor, s.ptr, s.len);
    struct slice out = slice_make(*cursor, s.len);
    *cursor += s.len;
    return out;
}

/* Deep copy of *src into *dst, its bytes at *cursor (event_bytes(src, prev) of room). */
static void event_copy(struct kv_event *dst, const struct kv_event *src, bool prev,
                       uint8_t **cursor)
{
    *dst = *src;
    dst->kv.key = copy_to(cursor, src->kv.key);
    dst->kv.value = copy_to(cursor, src->kv.value);
    if (prev && src->has_prev) {
        dst->prev.key = copy_to(cursor, src->prev.key);
        dst->prev.value = copy_to(cursor, src->prev.value);
    } else {
        dst->has_prev = false;
        memset(&dst->prev, 0, sizeof(dst->prev));
    }
}

/* Appends the events of ev[0..n) that match w (all of one revision, or several whole
 * revisions) to w's queue: all of them or, on ASPEN_E_NOMEM, none. */
static int enqueue(struct watcher *w, const struct kv_event *ev, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += matches(w, &ev[i]);
    if (count == 0)
        return 0;
    int rc = queue_reserve(w, count);
    if (rc)
        return rc;
    size_t tail = w->q_head + w->q_len, added = 0;
    for (size_t i = 0; i < n; i++) {
        if (!matches(w, &ev[i]))
            continue;
        struct qev *e = mem_alloc(sizeof(*e) + event_bytes(&ev[i], w->prev_kv));
        if (!e) {
            for (size_t j = 0; j < added; j++)
                mem_free(w->q[tail + j]);
            return ASPEN_E_NOMEM;
        }
        uint8_t *cursor = e->bytes;
        event_copy(&e->ev, &ev[i], w->prev_kv, &cursor);
        w->q[tail + added++] = e;
    }
    w->q_len += added;
    return 0;
}

static size_t count_matches(const struct watcher *w, const struct kv_event *ev, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += matches(w, &ev[i]);
    return count;
}

/* Length of the run of events at ev[0..n) with ev[0]'s revision. */
static size_t revision_run(const struct kv_event *ev, size_t n)
{
    size_t j = 1;
    while (j < n && ev[j].kv.mod_revision == ev[0].kv.mod_revision)
        j++;
    return j;
}

static void cancel_compacted(struct watch_hub *hub, struct watcher *w)
{
    bool was = has_pending(w);
    set_state(hub, w, W_CANCELED);
    w->cancel_code = ASPEN_E_COMPACTED;
    /* The source may refuse next_rev itself as compacted (kv.h refuses from_rev equal to
     * the compacted revision): report a revision the client can resume from. */
    w->compact_rev = hub->compacted > w->next_rev ? hub->compacted : w->next_rev + 1;
    w->progress_pending = false;
    notify(hub, w, was);
}

/* ---------------------------------------------------------------------------------------
 * Hub
 * ------------------------------------------------------------------------------------- */

int watch_hub_new(const struct watch_options *opts, struct watch_hub **out)
{
    if (!opts->source.history || opts->current_revision < 1 || opts->compacted_revision < 0 ||
        opts->compacted_revision > opts->current_revision)
        return ASPEN_E_INVALID;
    struct watch_hub *hub = mem_calloc(1, sizeof(*hub));
    if (!hub)
        return ASPEN_E_NOMEM;
    hub->opts = *opts;
    if (hub->opts.max_watchers == 0 || hub->opts.max_watchers > ASPEN_MAX_WATCHERS)
        hub->opts.max_watchers = ASPEN_MAX_WATCHERS;
    if (hub->opts.queue_max_events == 0)
        hub->opts.queue_max_events = ASPEN_WATCH_EVENT_QUEUE_MAX;
    hub->current = opts->current_revision;
    hub->compacted = opts->compacted_revision;
    hub->next_id = 1;
    arena_init(&hub->scratch, 64 * ASPEN_KIB, ASPEN_WATCH_HISTORY_BATCH_MAX_BYTES);
    *out = hub;
    return 0;
}

void watch_hub_free(struct watch_hub *hub)
{
    if (!hub)
        return;
    for (size_t i = 0; i < hub->n; i++)
        watcher_free(hub->w[i]);
    mem_free(hub->w);
    mem_free(hub->table);
    arena_release(&hub->scratch);
    mem_free(hub);
}

size_t watch_unsynced_count(const struct watch_hub *hub)
{
    return hub->n_unsynced;
}

size_t watch_count(const struct watch_hub *hub)
{
    return hub->n;
}

int64_t watch_current_revision(const struct watch_hub *hub)
{
    return hub->current;
}

int watch_create(struct watch_hub *hub, const struct watch_request *req, int64_t *id)
{
    if (req->key.len == 0 || req->key.len > ASPEN_MAX_KEY_BYTES ||
        req->range_end.len > ASPEN_MAX_KEY_BYTES || req->watch_id < 0)
        return ASPEN_E_INVALID;
    if (req->watch_id > 0 && find(hub, req->watch_id))
        return ASPEN_E_EXISTS;
    if (hub->n >= hub->opts.max_watchers)
        return ASPEN_E_FULL;
    int rc = reserve_watcher(hub);
    if (rc)
        return rc;

    struct watcher *w = mem_calloc(1, sizeof(*w));
    uint8_t *bytes = mem_alloc(req->key.len + req->range_end.len);
    if (!w || !bytes) {
        mem_free(w);
        mem_free(bytes);
        return ASPEN_E_NOMEM;
    }
    memcpy(bytes, req->key.ptr, req->key.len);
    if (req->range_end.len)
        memcpy(bytes + req->key.len, req->range_end.ptr, req->range_end.len);
    w->range_bytes = bytes;
    w->key = slice_make(bytes, req->key.len);
    w->range_end = slice_make(req->range_end.len ? bytes + req->key.len : NULL, req->range_end.len);

    if (req->watch_id > 0) {
        w->id = req->watch_id;
    } else {
        /* At most n ids are taken, so n + 1 candidates hold a free one. */
        while (find(hub, hub->next_id))
            hub->next_id = hub->next_id == INT64_MAX ? 1 : hub->next_id + 1;
        w->id = hub->next_id;
        hub->next_id = hub->next_id == INT64_MAX ? 1 : hub->next_id + 1;
    }
    w->start_rev = req->start_revision > 0 ? req->start_revision : hub->current + 1;
    w->created_rev = hub->current;
    w->prev_kv = req->prev_kv;
    w->filter_noput = req->filter_noput;
    w->filter_nodelete = req->filter_nodelete;
    w->progress_notify = req->progress_notify;
    w->created_pending = true;
    w->pos = hub->n;
    hub->w[hub->n++] = w;
    table_put(hub->table, hub->table_cap, w->id, (uint32_t)w->pos);

    w->state = W_SYNCED;
    if (w->start_rev <= hub->current) {
        set_state(hub, w, W_UNSYNCED);
        w->next_rev = w->start_rev;
        if (w->start_rev < hub->compacted)
            cancel_compacted(hub, w); /* etcd: created, then canceled */
    }
    notify(hub, w, false);
    *id = w->id;
    return 0;
}

/* Forgets w entirely (its final response has been taken). */
static void watcher_remove(struct watch_hub *hub, struct watcher *w)
{
    ASPEN_ASSERT(w->state == W_CANCELED);
    table_del(hub, w->id);
    size_t pos = w->pos, last = hub->n - 1;
    if (pos != last) {
        hub->w[pos] = hub->w[last];
        hub->w[pos]->pos = pos;
        table_put(hub->table, hub->table_cap, hub->w[pos]->id, (uint32_t)pos);
    }
    hub->n--;
    watcher_free(w);
}

int watch_cancel(struct watch_hub *hub, int64_t id)
{
    struct watcher *w = find(hub, id);
    if (!w || w->state == W_CANCELED)
        return ASPEN_E_NOT_FOUND;
    bool was = has_pending(w);
    set_state(hub, w, W_CANCELED);
    queue_drop(w);
    w->cancel_code = 0;
    w->progress_pending = false;
    notify(hub, w, was);
    return 0;
}

void watch_publish(struct watch_hub *hub, int64_t revision, const struct kv_event *ev, size_t n)
{
    ASPEN_ASSERT(revision >= hub->current);
    for (size_t i = 0; i < n; i++) {
        ASPEN_ASSERT(ev[i].kv.mod_revision > hub->current && ev[i].kv.mod_revision <= revision);
        ASPEN_ASSERT(i == 0 || ev[i].kv.mod_revision >= ev[i - 1].kv.mod_revision);
    }
    for (size_t k = 0; k < hub->n; k++) {
        struct watcher *w = hub->w[k];
        if (w->state != W_SYNCED)
            continue;
        bool was = has_pending(w);
        for (size_t i = 0; i < n;) {
            size_t run = revision_run(ev + i, n - i);
            size_t count = count_matches(w, ev + i, run);
            /* A revision goes in whole or not at all; an empty queue takes any size. */
            bool fits = w->q_len == 0 || w->q_len + count <= hub->opts.queue_max_events;
            if (count > 0 && (!fits || enqueue(w, ev + i, run) != 0)) {
                set_state(hub, w, W_UNSYNCED);
                w->next_rev = ev[i].kv.mod_revision;
                break;
            }
            i += run;
        }
        notify(hub, w, was);
    }
    hub->current = revision;
}

void watch_set_compacted(struct watch_hub *hub, int64_t revision)
{
    if (revision <= hub->compacted)
        return;
    hub->compacted = revision;
    for (size_t k = 0; k < hub->n; k++) {
        struct watcher *w = hub->w[k];
        if (w->state == W_UNSYNCED && w->next_rev < revision)
            cancel_compacted(hub, w);
    }
}

/* One history read into hub->scratch: [from, to], at most max events. */
static int read_history(struct watch_hub *hub, struct watcher *w, int64_t to, size_t max,
                        struct kv_events *out, int64_t *next)
{
    arena_reset(&hub->scratch);
    *out = (struct kv_events){.arena = &hub->scratch};
    *next = w->next_rev;
    int rc = hub->opts.source.history(hub->opts.source.ctx, w->key, w->range_end, w->next_rev, to,
                                      w->prev_kv, max, out, next);
    if (rc)
        return rc;
    /* The source is our own code (kv_history): a broken promise is a bug. */
    ASPEN_ASSERT(*next >= w->next_rev && *next <= to + 1);
    return 0;
}

/* Catches w up as far as its queue and `allowance` events permit. *read_events: events
 * the source returned. */
static int sync_one(struct watch_hub *hub, struct watcher *w, size_t allowance, size_t *read_events)
{
    *read_events = 0;
    if (w->next_rev < hub->compacted) {
        cancel_compacted(hub, w);
        return 0;
    }
    bool was = has_pending(w);
    size_t room = w->q_len < hub->opts.queue_max_events ? hub->opts.queue_max_events - w->q_len : 0;
    if (w->next_rev <= hub->current && room > 0) {
        struct kv_events out;
        int64_t next;
        size_t max = room < allowance ? room : allowance;
        int rc = read_history(hub, w, hub->current, max, &out, &next);
        if (rc == 0 && next == w->next_rev && w->q_len == 0) {
            /* Not even one revision fit: read that revision alone, whole (an empty queue
             * admits any single revision, as in publish). */
            rc = read_history(hub, w, w->next_rev, SIZE_MAX, &out, &next);
            ASPEN_ASSERT(rc != 0 || next == w->next_rev + 1);
        }
        if (rc == ASPEN_E_COMPACTED) {
            cancel_compacted(hub, w);
            return 0;
        }
        if (rc)
            return rc;
        *read_events = out.n;
        /* Queue whole revisions below next; a revision the source cut short is read
         * again from its start next time. */
        for (size_t i = 0; i < out.n;) {
            ASPEN_ASSERT(out.ev[i].kv.mod_revision >= w->next_rev);
            ASPEN_ASSERT(i == 0 || out.ev[i].kv.mod_revision >= out.ev[i - 1].kv.mod_revision);
            if (out.ev[i].kv.mod_revision >= next)
                break;
            size_t run = revision_run(out.ev + i, out.n - i);
            rc = enqueue(w, out.ev + i, run);
            if (rc) {
                next = out.ev[i].kv.mod_revision;
                w->next_rev = next;
                notify(hub, w, was);
                return rc;
            }
            i += run;
        }
        w->next_rev = next;
    }
    if (w->next_rev > hub->current)
        set_state(hub, w, W_SYNCED);
    notify(hub, w, was);
    return 0;
}

int watch_sync(struct watch_hub *hub, size_t budget)
{
    size_t used = 0;
    for (size_t visited = 0; visited < hub->n && hub->n_unsynced > 0; visited++) {
        if (visited > 0 && used >= budget)
            break;
        size_t k = hub->sync_cursor < hub->n ? hub->sync_cursor : 0;
        hub->sync_cursor = k + 1;
        struct watcher *w = hub->w[k];
        if (w->state != W_UNSYNCED)
            continue;
        size_t read = 0;
        int rc = sync_one(hub, w, budget > used ? budget - used : 1, &read);
        used += read > 0 ? read : 1;
        if (rc)
            return rc;
    }
    return 0;
}

static void mark_progress(struct watch_hub *hub, bool only_notify)
{
    for (size_t k = 0; k < hub->n; k++) {
        struct watcher *w = hub->w[k];
        if (w->state != W_SYNCED || w->q_len > 0 || w->created_pending ||
            (only_notify && !w->progress_notify))
            continue;
        bool was = has_pending(w);
        w->progress_pending = true;
        notify(hub, w, was);
    }
}

void watch_request_progress(struct watch_hub *hub)
{
    mark_progress(hub, false);
}

void watch_progress_tick(struct watch_hub *hub)
{
    mark_progress(hub, true);
}

bool watch_has_pending(const struct watch_hub *hub, int64_t id)
{
    const struct watcher *w = find(hub, id);
    return w && has_pending(w);
}

/* Revision up to which w has now delivered everything, given an empty queue. */
static int64_t delivered_through(const struct watch_hub *hub, const struct watcher *w)
{
    return w->state == W_SYNCED ? hub->current : w->next_rev - 1;
}

/* Moves up to max_events whole revisions (or a fragment of one) from w's queue into out,
 * copied into a. */
static int take_events(struct watch_hub *hub, struct watcher *w, size_t max_events,
                       struct watch_response *out, struct arena *a)
{
    struct qev **q = w->q + w->q_head;
    size_t k = 0;
    while (k < w->q_len) {
        size_t end = k + 1;
        while (end < w->q_len && q[end]->ev.kv.mod_revision == q[k]->ev.kv.mod_revision)
            end++;
        if (end > max_events)
            break;
        k = end;
    }
    if (k == 0) {
        k = max_events;
        out->fragment = true;
    }
    struct kv_event *events = arena_alloc(a, k * sizeof(*events), _Alignof(struct kv_event));
    if (!events)
        return ASPEN_E_NOMEM;
    for (size_t i = 0; i < k; i++) {
        size_t bytes = event_bytes(&q[i]->ev, true);
        uint8_t *cursor = bytes ? arena_alloc(a, bytes, 1) : NULL;
        if (bytes && !cursor)
            return ASPEN_E_NOMEM;
        event_copy(&events[i], &q[i]->ev, true, &cursor);
    }
    int64_t last_rev = q[k - 1]->ev.kv.mod_revision;
    for (size_t i = 0; i < k; i++)
        mem_free(q[i]);
    w->q_head += k;
    w->q_len -= k;
    if (w->q_len == 0)
        w->q_head = 0;
    out->events = events;
    out->n_events = k;
    if (out->fragment)
        out->revision = last_rev - 1;
    else if (w->q_len > 0)
        out->revision = w->q[w->q_head]->ev.kv.mod_revision - 1;
    else
        out->revision = delivered_through(hub, w);
    /* Events carry a revision as good as a progress notification's. */
    w->progress_pending = false;
    return 0;
}

int watch_take(struct watch_hub *hub, int64_t id, size_t max_events, struct watch_response *out,
               struct arena *a)
{
    ASPEN_ASSERT(max_events >= 1);
    struct watcher *w = find(hub, id);
    if (!w)
        return ASPEN_E_NOT_FOUND;
    memset(out, 0, sizeof(*out));
    out->watch_id = id;
    out->cancel_reason = "";
    if (w->created_pending) {
        out->created = true;
        out->revision = w->created_rev;
        w->created_pending = false;
        return 1;
    }
    if (w->q_len > 0) {
        int rc = take_events(hub, w, max_events, out, a);
        return rc ? rc : 1;
    }
    if (w->state == W_CANCELED) {
        out->canceled = true;
        out->revision = hub->current;
        out->cancel_code = w->cancel_code;
        if (w->cancel_code == ASPEN_E_COMPACTED) {
            out->compact_revision = w->compact_rev;
            out->cancel_reason = "mvcc: required revision has been compacted";
        } else {
            out->cancel_reason = "watch canceled by the client";
        }
        watcher_remove(hub, w);
        return 1;
    }
    if (w->progress_pending) {
        w->progress_pending = false;
        if (w->state == W_SYNCED) {
            out->progress = true;
            out->revision = hub->current;
            return 1;
        }
    }
    return 0;
}
