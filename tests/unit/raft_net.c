/*
 * The scenario-test cluster (see raft_net.h). Messages are deep-copied into the queue
 * because an update's pointers die at the next step.
 */
#include "raft_net.h"

#include "base/assert.h"
#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_u64(void *ctx)
{
    return rng_next(ctx);
}

static void free_msg(struct raft_msg *m)
{
    if (m->entries) {
        for (uint32_t i = 0; i < m->n_entries; i++)
            mem_free(m->entries[i].data);
        mem_free((void *)m->entries);
    }
    m->entries = NULL;
}

static void queue_msg(struct net *net, const struct raft_msg *m)
{
    ASPEN_ASSERT(net->q_len < NET_MAX_MSGS);
    struct net_msg *d = &net->q[(net->q_head + net->q_len++) % NET_MAX_MSGS];
    memset(d, 0, sizeof(*d));
    d->m = *m;
    d->m.after_persist = false;
    if (m->n_entries) {
        struct raft_entry *e = mem_calloc(m->n_entries, sizeof(*e));
        ASPEN_ASSERT(e);
        for (uint32_t i = 0; i < m->n_entries; i++) {
            e[i] = m->entries[i];
            e[i].data = NULL;
            if (e[i].len) {
                e[i].data = mem_alloc(e[i].len);
                ASPEN_ASSERT(e[i].data);
                memcpy(e[i].data, m->entries[i].data, e[i].len);
            }
        }
        d->m.entries = e;
    }
}

static void process(struct net *net, raft_id id, const struct raft_update *u)
{
    struct net_node *nd = &net->nodes[id];
    for (size_t i = 0; i < u->n_committed; i++) {
        ASPEN_ASSERT(nd->n_applied < NET_MAX_APPLIED);
        nd->applied_index[nd->n_applied] = u->committed[i].index;
        nd->applied_term[nd->n_applied] = u->committed[i].term;
        nd->n_applied++;
    }
    for (size_t i = 0; i < u->n_reads && nd->n_reads < 64; i++)
        nd->reads[nd->n_reads++] = u->reads[i];
    for (size_t i = 0; i < u->n_msgs; i++)
        queue_msg(net, &u->msgs[i]);
    bool persist = u->must_persist;
    raft_index pi = u->persist_index;
    raft_term pt = u->persist_term;
    bool want = u->want_snapshot;
    nd->last_persist_index = pi;
    nd->last_persist_term = pt;
    if (want) {
        struct raft_status st;
        raft_status(nd->r, &st);
        struct raft_snapshot_meta meta = {.index = st.applied,
                                          .term = raft_term_at(nd->r, st.applied),
                                          .config = *raft_config(nd->r)};
        struct raft_event ev = {.type = RAFT_EVENT_SNAPSHOT_TAKEN, .u.taken = &meta};
        nd->want_snapshot_at = st.applied;
        net_step(net, id, &ev);
    }
    if (persist && !nd->manual_persist) {
        struct raft_event ev = {.type = RAFT_EVENT_PERSISTED};
        ev.u.persisted.index = pi;
        ev.u.persisted.term = pt;
        net_step(net, id, &ev);
    }
}

int net_step(struct net *net, raft_id id, const struct raft_event *ev)
{
    const struct raft_update *u;
    int rc = raft_step(net->nodes[id].r, ev, &u);
    net->last_rc = rc;
    process(net, id, u);
    return rc;
}

static int create_node(struct net *net, raft_id id, const struct raft_boot *boot,
                       net_tweak_fn tweak)
{
    struct net_node *nd = &net->nodes[id];
    if (nd->r)
        raft_free(nd->r);
    memset(nd, 0, sizeof(*nd));
    rng_seed(&nd->rng, id * 7919);
    struct raft_options o;
    raft_options_default(&o, id, (struct aspen_random){rng_u64, &nd->rng});
    o.pre_vote = false;
    o.check_quorum = false;
    if (tweak)
        tweak(&o);
    return raft_create(&nd->r, &o, boot);
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
    for (uint32_t i = 1; i <= NET_MAX_NODES; i++)
        raft_free(net->nodes[i].r);
    memset(net, 0, sizeof(*net));
}

uint32_t net_deliver(struct net *net, uint32_t max)
{
    uint32_t n = 0;
    while (net->q_len && n < max) {
        struct net_msg d = net->q[net->q_head];
        net->q_head = (net->q_head + 1) % NET_MAX_MSGS;
        net->q_len--;
        raft_id from = d.m.from, to = d.m.to;
        bool drop = d.dropped || to > net->n || !net->nodes[to].r || net->nodes[to].down ||
                    net->nodes[from].down || net->cut[from][to] || net->drop_type[d.m.type];
        if (getenv("NET_TRACE"))
            fprintf(stderr, "%s %u %llu->%llu t=%llu i=%llu lt=%llu c=%llu n=%u rej=%d hint=%llu\n",
                    drop ? "drop" : "dlvr", d.m.type, (unsigned long long)from,
                    (unsigned long long)to, (unsigned long long)d.m.term,
                    (unsigned long long)d.m.index, (unsigned long long)d.m.log_term,
                    (unsigned long long)d.m.commit, d.m.n_entries, d.m.reject,
                    (unsigned long long)d.m.reject_hint);
        if (!drop) {
            struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.msg = &d.m};
            net_step(net, to, &ev);
            n++;
        }
        free_msg(&d.m);
    }
    return n;
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
