/*
 * The scenario-test cluster (see raft_net.h). Messages are deep-copied into the queue
 * because an update's pointers die at the next step.
 */
#include "raft_net.h"

#include "base/assert.h"
#include "base/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_u64(void *ctx)
{
    return rng_next(ctx);
}

static void violate(struct net *net, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void violate(struct net *net, const char *fmt, ...)
{
    if (net->n_violations++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(net->violation, sizeof(net->violation), fmt, ap);
        va_end(ap);
        if (getenv("NET_TRACE"))
            fprintf(stderr, "VIOLATION: %s\n", net->violation);
    }
}

const char *net_violation(const struct net *net)
{
    return net->n_violations ? net->violation : NULL;
}

static uint64_t entry_hash(const struct raft_entry *e)
{
    uint64_t h = 1469598103934665603ULL;
    uint8_t head[5] = {e->type, (uint8_t)(e->len >> 24), (uint8_t)(e->len >> 16),
                       (uint8_t)(e->len >> 8), (uint8_t)e->len};
    for (size_t i = 0; i < sizeof(head); i++)
        h = (h ^ head[i]) * 1099511628211ULL;
    for (uint32_t i = 0; i < e->len; i++)
        h = (h ^ e->data[i]) * 1099511628211ULL;
    return h;
}

static void free_entries(struct raft_entry *e, size_t n)
{
    if (!e)
        return;
    for (size_t i = 0; i < n; i++)
        mem_free(e[i].data);
    mem_free(e);
}

static struct raft_entry *copy_entries(const struct raft_entry *src, size_t n)
{
    if (n == 0)
        return NULL;
    struct raft_entry *e = mem_calloc(n, sizeof(*e));
    ASPEN_ASSERT(e);
    for (size_t i = 0; i < n; i++) {
        e[i] = src[i];
        e[i].data = NULL;
        if (e[i].len) {
            e[i].data = mem_alloc(e[i].len);
            ASPEN_ASSERT(e[i].data);
            memcpy(e[i].data, src[i].data, e[i].len);
        }
    }
    return e;
}

static void free_msg(struct raft_msg *m)
{
    if (m->entries)
        free_entries((struct raft_entry *)m->entries, m->n_entries);
    m->entries = NULL;
}

static void copy_msg(struct raft_msg *d, const struct raft_msg *m)
{
    *d = *m;
    d->after_persist = false;
    d->entries = m->n_entries ? copy_entries(m->entries, m->n_entries) : NULL;
}

static void queue_msg(struct net *net, const struct raft_msg *m)
{
    ASPEN_ASSERT(net->q_len < NET_MAX_MSGS);
    struct net_msg *d = &net->q[(net->q_head + net->q_len++) % NET_MAX_MSGS];
    memset(d, 0, sizeof(*d));
    copy_msg(&d->m, m);
    d->after_persist = m->after_persist;
}

/* ---- storage ---- */

static raft_index store_last(const struct net_store *s)
{
    return s->snap.index + s->n;
}

static void store_truncate(struct net_store *s, raft_index from)
{
    while (s->n && store_last(s) >= from) {
        s->n--;
        mem_free(s->ents[s->n].data);
        s->ents[s->n].data = NULL;
    }
}

static void store_append(struct net *net, raft_id id, struct net_store *s,
                         const struct raft_entry *e, size_t n)
{
    if (n == 0)
        return;
    if (e[0].index <= s->snap.index || e[0].index > store_last(s) + 1) {
        violate(net, "node %llu: write of entries from %llu leaves a hole (stored %llu..%llu)",
                (unsigned long long)id, (unsigned long long)e[0].index,
                (unsigned long long)s->snap.index + 1, (unsigned long long)store_last(s));
        return;
    }
    store_truncate(s, e[0].index);
    if (s->n + n > s->cap) {
        size_t cap = s->cap ? s->cap : 64;
        while (cap < s->n + n)
            cap *= 2;
        s->ents = mem_realloc(s->ents, cap * sizeof(*s->ents));
        ASPEN_ASSERT(s->ents);
        s->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        struct raft_entry *d = &s->ents[s->n++];
        *d = e[i];
        d->data = NULL;
        if (e[i].len) {
            d->data = mem_alloc(e[i].len);
            ASPEN_ASSERT(d->data);
            memcpy(d->data, e[i].data, e[i].len);
        }
    }
}

static void store_install(struct net_store *s, const struct raft_snapshot_meta *snap)
{
    store_truncate(s, 0);
    s->snap = *snap;
    s->applied = snap->index;
}

/* The shell took a snapshot at meta->index: storage drops the entries it covers. */
static void store_compact(struct net_store *s, const struct raft_snapshot_meta *meta)
{
    if (meta->index <= s->snap.index)
        return;
    size_t drop = (size_t)(meta->index - s->snap.index);
    if (drop > s->n)
        drop = s->n;
    for (size_t i = 0; i < drop; i++)
        mem_free(s->ents[i].data);
    memmove(s->ents, s->ents + drop, (s->n - drop) * sizeof(*s->ents));
    s->n -= drop;
    s->snap = *meta;
}

static void store_release(struct net_store *s)
{
    store_truncate(s, 0);
    mem_free(s->ents);
    memset(s, 0, sizeof(*s));
}

static void store_from_boot(struct net *net, raft_id id, struct net_store *s,
                            const struct raft_boot *boot)
{
    store_release(s);
    s->hs = boot->hard_state;
    s->snap = boot->snapshot;
    s->applied = boot->applied;
    store_append(net, id, s, boot->entries, boot->n_entries);
}

const char *net_check_store(struct net *net, raft_id id)
{
    static char buf[200];
    struct net_node *nd = &net->nodes[id];
    struct raft_status st;
    raft_status(nd->r, &st);
    const struct net_store *s = &nd->store;
    if (st.durable_index > store_last(s)) {
        snprintf(buf, sizeof(buf), "node %llu: durable %llu beyond stored %llu",
                 (unsigned long long)id, (unsigned long long)st.durable_index,
                 (unsigned long long)store_last(s));
        return buf;
    }
    for (raft_index i = st.first_index; i <= st.durable_index; i++) {
        if (i <= s->snap.index)
            continue;
        raft_term t = raft_term_at(nd->r, i);
        if (s->ents[i - s->snap.index - 1].term != t) {
            snprintf(buf, sizeof(buf), "node %llu: index %llu term %llu, stored %llu",
                     (unsigned long long)id, (unsigned long long)i, (unsigned long long)t,
                     (unsigned long long)s->ents[i - s->snap.index - 1].term);
            return buf;
        }
    }
    return NULL;
}

/* ---- safety checks ---- */

static void record_apply(struct net *net, raft_id id, const struct net_applied *a)
{
    struct net_node *nd = &net->nodes[id];
    if (nd->n_applied < NET_MAX_APPLIED) {
        nd->applied_index[nd->n_applied] = a->index;
        nd->applied_term[nd->n_applied] = a->term;
        nd->n_applied++;
    }
    if (a->index != nd->store.applied + 1)
        violate(net, "node %llu applied %llu after %llu", (unsigned long long)id,
                (unsigned long long)a->index, (unsigned long long)nd->store.applied);
    nd->store.applied = a->index;
    if (a->index < NET_MAX_APPLIED) {
        struct net_applied *c = &net->committed[a->index];
        if (c->term == 0)
            *c = *a;
        else if (c->term != a->term || c->hash != a->hash)
            violate(net, "node %llu applied index %llu term %llu; another node term %llu",
                    (unsigned long long)id, (unsigned long long)a->index,
                    (unsigned long long)a->term, (unsigned long long)c->term);
    }
}

/* After every step of node id: one leader per term, committed entries never change. */
static void check_node(struct net *net, raft_id id)
{
    struct net_node *nd = &net->nodes[id];
    struct raft_status st;
    raft_status(nd->r, &st);
    if (st.role == RAFT_LEADER && st.hard_state.term < NET_MAX_TERMS) {
        raft_id *l = &net->term_leader[st.hard_state.term];
        if (*l == 0)
            *l = id;
        else if (*l != id)
            violate(net, "two leaders in term %llu: %llu and %llu",
                    (unsigned long long)st.hard_state.term, (unsigned long long)*l,
                    (unsigned long long)id);
    }
    if (st.applied > st.hard_state.commit)
        violate(net, "node %llu applied %llu > commit %llu", (unsigned long long)id,
                (unsigned long long)st.applied, (unsigned long long)st.hard_state.commit);
    raft_index from = nd->commit_seen + 1;
    if (from < st.first_index)
        from = st.first_index;
    for (raft_index i = from; i <= st.hard_state.commit && i < NET_MAX_APPLIED; i++) {
        const struct raft_entry *e = raft_entry_at(nd->r, i);
        if (!e)
            break;
        struct net_applied a = {i, e->term, entry_hash(e)};
        struct net_applied *c = &net->committed[i];
        if (c->term == 0)
            *c = a;
        else if (c->term != a.term || c->hash != a.hash)
            violate(net, "node %llu committed index %llu term %llu; another node term %llu",
                    (unsigned long long)id, (unsigned long long)i, (unsigned long long)a.term,
                    (unsigned long long)c->term);
    }
    nd->commit_seen = st.hard_state.commit;
}

/* ---- processing updates ---- */

static int step_node(struct net *net, raft_id id, const struct raft_event *ev, bool top);

static void take_snapshot(struct net *net, raft_id id)
{
    struct net_node *nd = &net->nodes[id];
    raft_index at = nd->store.applied;
    struct raft_snapshot_meta meta = {
        .index = at, .term = raft_term_at(nd->r, at), .config = *raft_config(nd->r)};
    struct raft_event ev = {.type = RAFT_EVENT_SNAPSHOT_TAKEN, .u.taken = &meta};
    nd->want_snapshot_at = at;
    if (step_node(net, id, &ev, false) == 0)
        store_compact(&nd->store, &meta);
}

static void write_store(struct net *net, raft_id id, const struct raft_update *u)
{
    struct net_store *s = &net->nodes[id].store;
    if (u->has_snapshot)
        store_install(s, &u->snapshot);
    store_append(net, id, s, u->entries, u->n_entries);
    if (u->hard_state_changed)
        s->hs = u->hard_state;
}

static void check_handed(struct net *net, raft_id id, const struct raft_update *u)
{
    struct net_node *nd = &net->nodes[id];
    struct raft_status st;
    raft_status(nd->r, &st);
    if (u->has_snapshot)
        nd->handed = u->snapshot.index;
    for (size_t i = 0; i < u->n_committed; i++) {
        const struct raft_entry *e = &u->committed[i];
        if (e->index != nd->handed + 1)
            violate(net, "node %llu handed out %llu after %llu", (unsigned long long)id,
                    (unsigned long long)e->index, (unsigned long long)nd->handed);
        if (e->index > st.hard_state.commit)
            violate(net, "node %llu handed out %llu beyond its commit %llu", (unsigned long long)id,
                    (unsigned long long)e->index, (unsigned long long)st.hard_state.commit);
        nd->handed = e->index;
    }
}

static void process_async(struct net *net, raft_id id, const struct raft_update *u)
{
    struct net_node *nd = &net->nodes[id];
    size_t held = 0;
    for (size_t i = 0; i < u->n_msgs; i++) {
        if (u->msgs[i].after_persist)
            held++;
        else
            queue_msg(net, &u->msgs[i]);
    }
    struct net_write *w = mem_calloc(1, sizeof(*w));
    ASPEN_ASSERT(w);
    w->must_persist = u->must_persist;
    w->hs_changed = u->hard_state_changed;
    w->hs = u->hard_state;
    w->has_snapshot = u->has_snapshot;
    w->snap = u->snapshot;
    w->want_snapshot = u->want_snapshot;
    w->persist_index = u->persist_index;
    w->persist_term = u->persist_term;
    w->ents = copy_entries(u->entries, u->n_entries);
    w->n_ents = u->n_entries;
    if (u->n_committed) {
        w->apply = mem_calloc(u->n_committed, sizeof(*w->apply));
        ASPEN_ASSERT(w->apply);
        for (size_t i = 0; i < u->n_committed; i++)
            w->apply[i] = (struct net_applied){u->committed[i].index, u->committed[i].term,
                                               entry_hash(&u->committed[i])};
        w->n_apply = u->n_committed;
    }
    if (held) {
        w->msgs = mem_calloc(held, sizeof(*w->msgs));
        ASPEN_ASSERT(w->msgs);
        for (size_t i = 0; i < u->n_msgs; i++)
            if (u->msgs[i].after_persist)
                copy_msg(&w->msgs[w->n_msgs++], &u->msgs[i]);
    }
    if (nd->writes_tail)
        nd->writes_tail->next = w;
    else
        nd->writes = w;
    nd->writes_tail = w;
    nd->n_writes++;
    /* Nothing to wait for: complete at once, as a shell would. */
    if (!w->must_persist && nd->writes == w)
        net_persist(net, id);
}

static void process(struct net *net, raft_id id, const struct raft_update *u)
{
    struct net_node *nd = &net->nodes[id];
    check_handed(net, id, u);
    check_node(net, id);
    for (size_t i = 0; i < u->n_reads && nd->n_reads < 64; i++)
        nd->reads[nd->n_reads++] = u->reads[i];
    nd->last_persist_index = u->persist_index;
    nd->last_persist_term = u->persist_term;
    if (nd->async) {
        process_async(net, id, u);
        return;
    }
    write_store(net, id, u);
    for (size_t i = 0; i < u->n_committed; i++) {
        struct net_applied a = {u->committed[i].index, u->committed[i].term,
                                entry_hash(&u->committed[i])};
        record_apply(net, id, &a);
    }
    for (size_t i = 0; i < u->n_msgs; i++)
        queue_msg(net, &u->msgs[i]);
    bool persist = u->must_persist;
    raft_index pi = u->persist_index;
    raft_term pt = u->persist_term;
    if (u->want_snapshot)
        take_snapshot(net, id); /* u is dead from here on */
    if (persist && !nd->manual_persist) {
        struct raft_event ev = {.type = RAFT_EVENT_PERSISTED};
        ev.u.persisted.index = pi;
        ev.u.persisted.term = pt;
        step_node(net, id, &ev, false);
    }
}

static void free_write(struct net_write *w)
{
    free_entries(w->ents, w->n_ents);
    mem_free(w->apply);
    for (size_t i = 0; i < w->n_msgs; i++)
        free_msg(&w->msgs[i]);
    mem_free(w->msgs);
    mem_free(w);
}

bool net_persist(struct net *net, raft_id id)
{
    struct net_node *nd = &net->nodes[id];
    struct net_write *w = nd->writes;
    if (!w)
        return false;
    nd->writes = w->next;
    if (!nd->writes)
        nd->writes_tail = NULL;
    nd->n_writes--;
    struct net_store *s = &nd->store;
    if (w->has_snapshot)
        store_install(s, &w->snap);
    store_append(net, id, s, w->ents, w->n_ents);
    if (w->hs_changed)
        s->hs = w->hs;
    for (size_t i = 0; i < w->n_apply; i++)
        record_apply(net, id, &w->apply[i]);
    for (size_t i = 0; i < w->n_msgs; i++)
        queue_msg(net, &w->msgs[i]);
    if (w->want_snapshot)
        take_snapshot(net, id);
    if (w->must_persist) {
        struct raft_event ev = {.type = RAFT_EVENT_PERSISTED};
        ev.u.persisted.index = w->persist_index;
        ev.u.persisted.term = w->persist_term;
        step_node(net, id, &ev, false);
    }
    free_write(w);
    return true;
}

void net_persist_all(struct net *net, raft_id id)
{
    while (net_persist(net, id))
        ;
}

static int step_node(struct net *net, raft_id id, const struct raft_event *ev, bool top)
{
    const struct raft_update *u;
    uint64_t fail = top ? net->fail_alloc_in_step : 0;
    int sticky = 0;
    if (top) {
        net->fail_alloc_in_step = 0;
        if (++net->top_steps == net->fail_step && net->fail_step_alloc) {
            fail = net->fail_step_alloc;
            sticky = 1;
        }
    }
    if (fail)
        mem_fail_at(fail, sticky);
    uint64_t calls = mem_alloc_calls();
    int rc = raft_step(net->nodes[id].r, ev, &u);
    if (top && net->allocs_per_step && net->top_steps <= net->n_allocs_per_step)
        net->allocs_per_step[net->top_steps - 1] = (uint32_t)(mem_alloc_calls() - calls);
    if (fail)
        mem_fail_at(0, 0);
    if (rc == ASPEN_E_NOMEM)
        net->n_nomem++;
    net->last_rc = rc;
    if (top) {
        net->last_up = *u;
        net->last_up.entries = NULL;
        net->last_up.msgs = NULL;
        net->last_up.committed = NULL;
        net->last_up.reads = NULL;
    }
    process(net, id, u);
    return rc;
}

int net_step(struct net *net, raft_id id, const struct raft_event *ev)
{
    return step_node(net, id, ev, true);
}

static void drop_writes(struct net_node *nd)
{
    while (nd->writes) {
        struct net_write *w = nd->writes;
        nd->writes = w->next;
        free_write(w);
    }
    nd->writes_tail = NULL;
    nd->n_writes = 0;
}

static int create_node(struct net *net, raft_id id, const struct raft_boot *boot,
                       net_tweak_fn tweak)
{
    struct net_node *nd = &net->nodes[id];
    if (nd->r)
        raft_free(nd->r);
    drop_writes(nd);
    struct net_store keep = nd->store;
    memset(nd, 0, sizeof(*nd));
    nd->store = keep;
    nd->tweak = tweak;
    rng_seed(&nd->rng, id * 7919);
    store_from_boot(net, id, &nd->store, boot);
    nd->handed = boot->applied;
    struct raft_options o;
    raft_options_default(&o, id, (struct aspen_random){rng_u64, &nd->rng});
    o.pre_vote = false;
    o.check_quorum = false;
    if (tweak)
        tweak(&o);
    return raft_create(&nd->r, &o, boot);
}

int net_restart(struct net *net, raft_id id)
{
    struct net_node *nd = &net->nodes[id];
    drop_writes(nd);
    raft_free(nd->r);
    nd->r = NULL;
    struct net_store *s = &nd->store;
    struct raft_boot boot = {.hard_state = s->hs,
                             .snapshot = s->snap,
                             .entries = s->ents,
                             .n_entries = s->n,
                             .applied = s->applied};
    nd->restarts++;
    rng_seed(&nd->rng, id * 7919 + nd->restarts * 104729);
    nd->handed = s->applied;
    nd->commit_seen = 0;
    struct raft_options o;
    raft_options_default(&o, id, (struct aspen_random){rng_u64, &nd->rng});
    o.pre_vote = false;
    o.check_quorum = false;
    if (nd->tweak)
        nd->tweak(&o);
    return raft_create(&nd->r, &o, &boot);
}

int net_init(struct net *net, uint32_t n, net_tweak_fn tweak)
{
    memset(net, 0, sizeof(*net));
    ASPEN_ASSERT(n >= 1 && n <= NET_MAX_NODES);
    net->n = n;
    net->q = mem_calloc(NET_MAX_MSGS, sizeof(*net->q));
    if (!net->q)
        return ASPEN_E_NOMEM;
    raft_id ids[NET_MAX_NODES];
    for (uint32_t i = 0; i < n; i++)
        ids[i] = i + 1;
    uint8_t buf[RAFT_CONF_CHANGE_MAX_BYTES];
    struct raft_entry e;
    struct raft_boot boot;
    int rc = raft_bootstrap(ids, n, buf, &e, &boot);
    if (rc)
        return rc;
    for (uint32_t i = 1; i <= n; i++)
        if ((rc = create_node(net, i, &boot, tweak)))
            return rc;
    return 0;
}

int net_boot_node(struct net *net, raft_id id, const struct raft_boot *boot, net_tweak_fn tweak)
{
    if (id > net->n)
        net->n = (uint32_t)id;
    return create_node(net, id, boot, tweak);
}

void net_clear(struct net *net)
{
    while (net->q_len) {
        free_msg(&net->q[net->q_head].m);
        net->q_head = (net->q_head + 1) % NET_MAX_MSGS;
        net->q_len--;
    }
}

void net_free(struct net *net)
{
    if (net->q) {
        net_clear(net);
        mem_free(net->q);
    }
    for (uint32_t i = 1; i <= NET_MAX_NODES; i++) {
        raft_free(net->nodes[i].r);
        drop_writes(&net->nodes[i]);
        store_release(&net->nodes[i].store);
    }
    memset(net, 0, sizeof(*net));
}

static bool must_drop(struct net *net, const struct net_msg *d)
{
    raft_id from = d->m.from, to = d->m.to;
    if (d->dropped || to > net->n || !net->nodes[to].r || net->nodes[to].down ||
        net->nodes[from].down || net->cut[from][to] || net->drop_type[d->m.type])
        return true;
    return net->filter && net->filter(net, &d->m, net->filter_ctx);
}

static void trace(const struct net_msg *d, bool drop)
{
    if (getenv("NET_TRACE"))
        fprintf(stderr, "%s %u %llu->%llu t=%llu i=%llu lt=%llu c=%llu n=%u rej=%d hint=%llu\n",
                drop ? "drop" : "dlvr", d->m.type, (unsigned long long)d->m.from,
                (unsigned long long)d->m.to, (unsigned long long)d->m.term,
                (unsigned long long)d->m.index, (unsigned long long)d->m.log_term,
                (unsigned long long)d->m.commit, d->m.n_entries, d->m.reject,
                (unsigned long long)d->m.reject_hint);
}

uint32_t net_deliver(struct net *net, uint32_t max)
{
    uint32_t n = 0;
    while (net->q_len && n < max) {
        struct net_msg d = net->q[net->q_head];
        net->q_head = (net->q_head + 1) % NET_MAX_MSGS;
        net->q_len--;
        bool drop = must_drop(net, &d);
        trace(&d, drop);
        if (!drop) {
            struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.msg = &d.m};
            net_step(net, d.m.to, &ev);
            n++;
        }
        free_msg(&d.m);
    }
    return n;
}

static bool matches(const struct raft_msg *m, uint8_t type, raft_id from, raft_id to)
{
    return (type == 0xff || m->type == type) && (!from || m->from == from) && (!to || m->to == to);
}

uint32_t net_deliver_only(struct net *net, uint8_t type, raft_id from, raft_id to)
{
    /* Take the matching messages out first: delivering them queues new ones at the end. */
    uint32_t len = net->q_len, k = 0, n = 0;
    struct net_msg *sel = mem_calloc(len ? len : 1, sizeof(*sel));
    ASPEN_ASSERT(sel);
    uint32_t keep = 0;
    for (uint32_t i = 0; i < len; i++) {
        struct net_msg *d = &net->q[(net->q_head + i) % NET_MAX_MSGS];
        if (!d->dropped && matches(&d->m, type, from, to))
            sel[k++] = *d;
        else
            net->q[(net->q_head + keep++) % NET_MAX_MSGS] = *d;
    }
    net->q_len = keep;
    for (uint32_t i = 0; i < k; i++) {
        bool drop = must_drop(net, &sel[i]);
        trace(&sel[i], drop);
        if (!drop) {
            struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.msg = &sel[i].m};
            net_step(net, sel[i].m.to, &ev);
            n++;
        }
        free_msg(&sel[i].m);
    }
    mem_free(sel);
    return n;
}

struct net_msg *net_find(struct net *net, uint8_t type, raft_id from, raft_id to)
{
    for (uint32_t i = 0; i < net->q_len; i++) {
        struct net_msg *d = &net->q[(net->q_head + i) % NET_MAX_MSGS];
        if (!d->dropped && matches(&d->m, type, from, to))
            return d;
    }
    return NULL;
}

int net_boot_terms(struct net *net, raft_id id, uint32_t n_voters, const raft_term *terms, size_t n,
                   raft_term hs_term, net_tweak_fn tweak)
{
    ASPEN_ASSERT(n_voters <= NET_MAX_NODES && n < 256);
    raft_id ids[NET_MAX_NODES];
    for (uint32_t i = 0; i < n_voters; i++)
        ids[i] = i + 1;
    uint8_t buf[RAFT_CONF_CHANGE_MAX_BYTES];
    struct raft_entry e[257];
    char data[256][32];
    struct raft_boot boot;
    int rc = raft_bootstrap(ids, n_voters, buf, &e[0], &boot);
    if (rc)
        return rc;
    raft_term t = hs_term;
    for (size_t i = 0; i < n; i++) {
        raft_index idx = i + 2;
        int len = snprintf(data[i], sizeof(data[i]), "i%llut%llu", (unsigned long long)idx,
                           (unsigned long long)terms[i]);
        e[i + 1] = (struct raft_entry){.term = terms[i],
                                       .index = idx,
                                       .type = RAFT_ENTRY_NORMAL,
                                       .len = (uint32_t)len,
                                       .data = (uint8_t *)data[i]};
        if (terms[i] > t)
            t = terms[i];
    }
    boot.entries = e;
    boot.n_entries = n + 1;
    boot.hard_state = (struct raft_hard_state){.term = t, .vote = 0, .commit = 1};
    boot.applied = 1;
    return net_boot_node(net, id, &boot, tweak);
}

int net_recv(struct net *net, const struct raft_msg *m)
{
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.msg = m};
    return net_step(net, m->to, &ev);
}

uint32_t net_drop(struct net *net, uint8_t type, raft_id from, raft_id to)
{
    uint32_t c = 0;
    for (uint32_t i = 0; i < net->q_len; i++) {
        struct net_msg *d = &net->q[(net->q_head + i) % NET_MAX_MSGS];
        if (!d->dropped && matches(&d->m, type, from, to)) {
            d->dropped = true;
            c++;
        }
    }
    return c;
}

void net_shuffle(struct net *net, struct rng *g)
{
    for (uint32_t i = net->q_len; i > 1; i--) {
        uint32_t j = (uint32_t)rng_below(g, i);
        struct net_msg *a = &net->q[(net->q_head + i - 1) % NET_MAX_MSGS];
        struct net_msg *b = &net->q[(net->q_head + j) % NET_MAX_MSGS];
        struct net_msg t = *a;
        *a = *b;
        *b = t;
    }
}

void net_duplicate(struct net *net, uint32_t i)
{
    ASPEN_ASSERT(i < net->q_len);
    struct net_msg copy = net->q[(net->q_head + i) % NET_MAX_MSGS];
    queue_msg(net, &copy.m);
    net->q[(net->q_head + net->q_len - 1) % NET_MAX_MSGS].after_persist = copy.after_persist;
}

int net_tick(struct net *net, raft_id id, uint32_t ticks)
{
    int rc = 0;
    for (uint32_t i = 0; i < ticks && !rc; i++) {
        struct raft_event ev = {.type = RAFT_EVENT_TICK};
        rc = net_step(net, id, &ev);
    }
    return rc;
}

int net_campaign(struct net *net, raft_id id)
{
    struct raft_event ev = {.type = RAFT_EVENT_CAMPAIGN};
    return net_step(net, id, &ev);
}

int net_propose(struct net *net, raft_id id, const char *data)
{
    struct raft_proposal p = {.data = (const uint8_t *)data, .len = (uint32_t)strlen(data)};
    struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};
    ev.u.propose.items = &p;
    ev.u.propose.n = 1;
    return net_step(net, id, &ev);
}

int net_read(struct net *net, raft_id id, uint64_t ctx)
{
    struct raft_event ev = {.type = RAFT_EVENT_READ, .u.read_ctx = ctx};
    return net_step(net, id, &ev);
}

void net_isolate(struct net *net, raft_id id, bool isolated)
{
    net->nodes[id].down = isolated;
}

void net_cut(struct net *net, raft_id a, raft_id b)
{
    net->cut[a][b] = net->cut[b][a] = true;
}

void net_heal(struct net *net)
{
    memset(net->cut, 0, sizeof(net->cut));
    for (uint32_t i = 1; i <= net->n; i++)
        net->nodes[i].down = false;
    memset(net->drop_type, 0, sizeof(net->drop_type));
}

void net_run(struct net *net, uint32_t rounds)
{
    for (uint32_t k = 0; k < rounds; k++) {
        for (uint32_t i = 1; i <= net->n; i++)
            if (net->nodes[i].r)
                net_tick(net, i, 1);
        net_deliver(net, 100000);
    }
}

raft_id net_leader(struct net *net)
{
    raft_id leader = 0;
    raft_term best = 0;
    for (uint32_t i = 1; i <= net->n; i++) {
        if (!net->nodes[i].r || net->nodes[i].down)
            continue;
        struct raft_status st;
        raft_status(net->nodes[i].r, &st);
        if (st.role == RAFT_LEADER && st.hard_state.term >= best) {
            leader = st.hard_state.term == best && leader ? 0 : i;
            best = st.hard_state.term;
        }
    }
    return leader;
}

struct raft_status net_status(struct net *net, raft_id id)
{
    struct raft_status st;
    raft_status(net->nodes[id].r, &st);
    return st;
}

uint32_t net_count(struct net *net, uint8_t type, raft_id from, raft_id to)
{
    uint32_t c = 0;
    for (uint32_t i = 0; i < net->q_len; i++) {
        const struct raft_msg *m = &net->q[(net->q_head + i) % NET_MAX_MSGS].m;
        if (m->type == type && (!from || m->from == from) && (!to || m->to == to))
            c++;
    }
    return c;
}
