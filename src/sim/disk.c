/*
 * The simulated disk (sim/disk.h): durable image, pending-write ring, completion and
 * crash semantics. Contract violations found while applying a write are reported, not
 * asserted, so the simulator can print the seed and trace instead of aborting.
 */
#include "sim/disk.h"

#include "base/assert.h"
#include "base/mem.h"
#include "sim/packet.h"

#include <aspen/error.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int disk_init(struct disk *d, const struct disk_params *p, const struct sm_ops *ops, uint64_t seed)
{
    memset(d, 0, sizeof(*d));
    d->p = *p;
    d->ops = ops;
    rng_seed(&d->rng, seed);
    d->durable.log.first = 1;
    return ops->create(&d->durable.sm);
}

static int log_append(struct disk_log *l, struct raft_entry *e);

int disk_bootstrap(struct disk *d, const struct raft_boot *boot)
{
    d->durable.hs = boot->hard_state;
    d->durable.snap = boot->snapshot;
    d->durable.log.first = boot->snapshot.index + 1;
    struct raft_entry *copy = disk_entries_dup(boot->entries, boot->n_entries);
    if (boot->n_entries && !copy)
        return ASPEN_E_NOMEM;
    for (size_t i = 0; i < boot->n_entries; i++) {
        int rc = log_append(&d->durable.log, &copy[i]);
        if (rc) {
            disk_entries_free(copy, boot->n_entries);
            return rc;
        }
    }
    disk_entries_free(copy, boot->n_entries);
    d->durable.applied = boot->applied;
    return 0;
}

/* ---- entries and logs ---- */

struct raft_entry *disk_entries_dup(const struct raft_entry *src, size_t n)
{
    if (n == 0)
        return NULL;
    struct raft_entry *v = mem_calloc(n, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        v[i] = src[i];
        v[i].data = NULL;
        if (src[i].len) {
            v[i].data = mem_alloc(src[i].len);
            if (!v[i].data) {
                disk_entries_free(v, i);
                return NULL;
            }
            memcpy(v[i].data, src[i].data, src[i].len);
        }
    }
    return v;
}

void disk_entries_free(struct raft_entry *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        mem_free(v[i].data);
    mem_free(v);
}

raft_index disk_log_last(const struct disk_log *l)
{
    return l->first + l->n - 1;
}

const struct raft_entry *disk_log_at(const struct disk_log *l, raft_index index)
{
    if (index < l->first || index > disk_log_last(l))
        return NULL;
    return &l->v[index - l->first];
}

/* Drops entries >= index (index >= first). */
static void log_truncate(struct disk_log *l, raft_index index)
{
    while (l->n > 0 && disk_log_last(l) >= index) {
        l->n--;
        mem_free(l->v[l->n].data);
    }
}

/* Drops entries <= index and makes index + 1 the first. */
static void log_compact(struct disk_log *l, raft_index index)
{
    if (index < l->first) {
        return;
    }
    size_t drop = index - l->first + 1;
    if (drop > l->n)
        drop = l->n;
    for (size_t i = 0; i < drop; i++)
        mem_free(l->v[i].data);
    memmove(l->v, l->v + drop, (l->n - drop) * sizeof(*l->v));
    l->n -= drop;
    l->first = index + 1;
}

/* Takes ownership of e's data on success. */
static int log_append(struct disk_log *l, struct raft_entry *e)
{
    int rc = mem_grow(&l->v, &l->cap, l->n, sizeof(*l->v), 64, ASPEN_SIM_MAX_LOG_ENTRIES);
    if (rc)
        return rc;
    l->v[l->n++] = *e;
    e->data = NULL;
    return 0;
}

static void log_release(struct disk_log *l)
{
    for (size_t i = 0; i < l->n; i++)
        mem_free(l->v[i].data);
    mem_free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* ---- writes ---- */

void disk_write_free(struct disk_write *w)
{
    if (!w)
        return;
    mem_free(w->install_blob);
    disk_entries_free(w->entries, w->n_entries);
    disk_entries_free(w->committed, w->n_committed);
    mem_free(w->save_blob);
    for (size_t i = 0; i < w->n_msgs; i++)
        packet_free(w->msgs[i]);
    mem_free(w->msgs);
    mem_free(w->replies);
    mem_free(w);
}

void disk_release(struct disk *d)
{
    while (d->n) {
        disk_write_free(d->q[d->head]);
        d->head = (d->head + 1) % d->cap;
        d->n--;
    }
    mem_free(d->q);
    d->q = NULL;
    d->cap = d->head = 0;
    log_release(&d->durable.log);
    mem_free(d->durable.snap_blob);
    d->durable.snap_blob = NULL;
    if (d->durable.sm)
        d->ops->free(d->durable.sm);
    d->durable.sm = NULL;
}

void disk_boot(const struct disk *d, struct raft_boot *boot)
{
    const struct disk_image *im = &d->durable;
    *boot = (struct raft_boot){
        .hard_state = im->hs,
        .snapshot = im->snap,
        .entries = im->log.n ? im->log.v : NULL,
        .n_entries = im->log.n,
        .applied = im->applied,
    };
}

static uint64_t draw_latency(struct disk *d)
{
    const struct disk_params *p = &d->p;
    uint64_t spread = p->latency_mean_ns - p->latency_min_ns;
    uint64_t lat = p->latency_min_ns + rng_below(&d->rng, 2 * spread + 1);
    if (p->slow_permille && rng_ratio(&d->rng, p->slow_permille, 1000))
        lat += rng_below(&d->rng, (uint64_t)p->slow_factor * p->latency_mean_ns + 1);
    return lat;
}

int disk_submit(struct disk *d, struct disk_write *w, uint64_t now_ns)
{
    if (d->n == d->cap) {
        if (d->cap >= ASPEN_SIM_MAX_PENDING_WRITES)
            return ASPEN_E_FULL;
        size_t cap = d->cap ? d->cap * 2 : 16;
        struct disk_write **q = mem_alloc(cap * sizeof(*q));
        if (!q)
            return ASPEN_E_NOMEM;
        for (size_t i = 0; i < d->n; i++)
            q[i] = d->q[(d->head + i) % d->cap];
        mem_free(d->q);
        d->q = q;
        d->head = 0;
        d->cap = cap;
    }
    uint64_t done = now_ns + (w->needs_sync ? draw_latency(d) : 0);
    if (done < d->last_done_ns)
        done = d->last_done_ns; /* writes complete in order */
    d->last_done_ns = done;
    w->done_ns = done;
    d->q[(d->head + d->n) % d->cap] = w;
    d->n++;
    return 0;
}

#define FAIL(d, ...)                                                                               \
    do {                                                                                           \
        snprintf((d)->error, sizeof((d)->error), __VA_ARGS__);                                     \
        return ASPEN_E_INVALID;                                                                    \
    } while (0)

/* Applies one write to the durable image, in raft.h rule 3's order. */
static int land(struct disk *d, struct disk_write *w)
{
    struct disk_image *im = &d->durable;
    if (w->has_install) {
        const struct raft_snapshot_meta *m = &w->install;
        if (m->index < im->applied)
            FAIL(d, "snapshot install at %" PRIu64 " below applied %" PRIu64, m->index,
                 im->applied);
        if (d->ops->restore(im->sm, w->install_blob, w->install_len))
            FAIL(d, "snapshot blob at %" PRIu64 " does not restore", m->index);
        /* Installing empties the log (raft.h contract): entries after the snapshot
         * come from the leader again. */
        log_truncate(&im->log, im->log.first);
        im->log.first = m->index + 1;
        im->applied = m->index;
        im->snap = *m;
        mem_free(im->snap_blob);
        im->snap_blob = w->install_blob;
        im->snap_len = w->install_len;
        w->install_blob = NULL;
        w->install_len = 0;
    }
    if (w->n_entries) {
        raft_index first = w->entries[0].index;
        if (first < im->log.first || first > disk_log_last(&im->log) + 1)
            FAIL(d, "append at %" PRIu64 " leaves a hole (log %" PRIu64 "..%" PRIu64 ")", first,
                 im->log.first, disk_log_last(&im->log));
        if (first <= im->applied)
            FAIL(d, "append at %" PRIu64 " truncates applied entries (applied %" PRIu64 ")", first,
                 im->applied);
        log_truncate(&im->log, first);
        for (size_t i = 0; i < w->n_entries; i++) {
            if (w->entries[i].index != first + i)
                FAIL(d, "entries not consecutive at %" PRIu64, w->entries[i].index);
            int rc = log_append(&im->log, &w->entries[i]);
            if (rc)
                return rc;
        }
    }
    if (w->has_hs) {
        if (w->hs.term < im->hs.term)
            FAIL(d, "hard state term goes back %" PRIu64 " -> %" PRIu64, im->hs.term, w->hs.term);
        im->hs = w->hs;
    }
    for (size_t i = 0; i < w->n_committed; i++) {
        const struct raft_entry *e = &w->committed[i];
        if (e->index <= im->applied)
            continue; /* covered by a snapshot installed meanwhile */
        if (e->index != im->applied + 1)
            FAIL(d, "apply of %" PRIu64 " skips (applied %" PRIu64 ")", e->index, im->applied);
        const struct raft_entry *stored = disk_log_at(&im->log, e->index);
        if (!stored || stored->term != e->term)
            FAIL(d, "apply of %" PRIu64 "/%" PRIu64 " not in the durable log (single-fsync rule 2)",
                 e->index, e->term);
        struct sm_result res;
        if (d->ops->apply(im->sm, e, &res))
            FAIL(d, "entry %" PRIu64 " does not decode", e->index);
        im->applied = e->index;
    }
    if (w->has_save) {
        const struct raft_snapshot_meta *m = &w->save;
        if (m->index > im->applied)
            FAIL(d, "snapshot saved at %" PRIu64 " beyond applied %" PRIu64, m->index, im->applied);
        if (m->index > im->snap.index) {
            im->snap = *m;
            mem_free(im->snap_blob);
            im->snap_blob = w->save_blob;
            im->snap_len = w->save_len;
            w->save_blob = NULL;
            w->save_len = 0;
            log_compact(&im->log, m->index);
        }
    }
    return 0;
}

static struct disk_write *pop(struct disk *d)
{
    struct disk_write *w = d->q[d->head];
    d->head = (d->head + 1) % d->cap;
    d->n--;
    return w;
}

int disk_complete(struct disk *d, struct disk_write **out)
{
    *out = NULL;
    if (d->n == 0)
        return ASPEN_E_NOT_FOUND;
    struct disk_write *w = pop(d);
    int rc = land(d, w);
    d->writes_done++;
    *out = w;
    return rc;
}

int disk_crash(struct disk *d, size_t *landed)
{
    size_t keep = d->n;
    if (d->p.lose_unsynced)
        keep = (size_t)rng_below(&d->rng, d->n + 1);
    *landed = keep;
    int rc = 0;
    for (size_t i = 0; i < keep; i++) {
        struct disk_write *w = pop(d);
        int r = land(d, w);
        if (r && !rc)
            rc = r;
        d->writes_done++;
        disk_write_free(w);
    }
    while (d->n) {
        disk_write_free(pop(d));
        d->writes_lost++;
    }
    d->last_done_ns = 0;
    return rc;
}
