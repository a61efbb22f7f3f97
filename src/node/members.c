/*
 * The node's member table and what hangs off it.
 *
 * The table mirrors the replicated registry (kv/cluster.h): it is reloaded whenever a
 * registry command applies, so every node trusts exactly the keys the registry holds —
 * current members and nodes being added — and dials each at its recorded peer address.
 * A joiner, which has applied nothing yet, starts from the member list its join answer
 * carried, until its own registry has records.
 *
 * The leader records every follower's acknowledged index (from its append responses):
 * promotion and the shutdown's leadership transfer choose by it.
 *
 * Leader duty: promote learners that have caught up, unless the learner asked to be
 * promoted by hand (it joined with --auto-promote=false: a registry flag, so every
 * leader knows). The
 * leader watches the append acknowledgements learners send (match index); a learner whose
 * match reached the commit index is promoted with a one-voter configuration change
 * (thesis §4.2.1: a new server catches up as a non-voter first, so adding it does not
 * stall commits while it copies the log).
 */
#include "node/internal.h"

#include "base/log.h"

#include <aspen/error.h>
#include <inttypes.h>
#include <string.h>

const struct member_info *members_find(const struct node *n, raft_id id)
{
    for (size_t i = 0; i < n->n_members; i++)
        if (n->members[i].id == id)
            return &n->members[i];
    return NULL;
}

const struct member_info *members_find_pk(const struct node *n, const uint8_t pk[NET_KEY_BYTES])
{
    for (size_t i = 0; i < n->n_members; i++)
        if (memcmp(n->members[i].pk, pk, NET_KEY_BYTES) == 0)
            return &n->members[i];
    return NULL;
}

/* Takes ownership of v[0..count) as the table, and makes the transport agree. */
static int members_install(struct node *n, struct member_info *v, size_t count)
{
    uint8_t(*pks)[NET_KEY_BYTES] = mem_calloc(count ? count : 1, NET_KEY_BYTES);
    if (!pks) {
        mem_free(v);
        return ASPEN_E_NOMEM;
    }
    size_t n_pks = 0;
    for (size_t i = 0; i < count; i++) {
        if (v[i].id == n->id.raft_id)
            continue;
        memcpy(pks[n_pks++], v[i].pk, NET_KEY_BYTES);
        char host[ASPEN_MAX_MEMBER_ADDR_BYTES + 1];
        uint16_t port = 0;
        int rc = member_split_addr(v[i].peer_addr, host, sizeof(host), &port);
        if (!rc)
            rc = net_peer_set_addr(&n->net, v[i].pk, host, port);
        if (rc)
            LOG_WARN("node", "member's peer address is not usable", "member=%s addr=%s reason=%s",
                     v[i].name, v[i].peer_addr, aspen_err_name(rc));
    }
    int rc = net_trust_set(&n->net, (const uint8_t(*)[NET_KEY_BYTES])pks, n_pks);
    mem_free(pks);
    if (rc) {
        mem_free(v);
        return rc;
    }
    mem_free(n->members);
    n->members = v;
    n->n_members = count;
    n->m.members->value = (int64_t)count;
    return 0;
}

int members_set(struct node *n, const struct member_info *v, size_t count)
{
    struct member_info *copy = mem_calloc(count ? count : 1, sizeof(*copy));
    if (!copy)
        return ASPEN_E_NOMEM;
    if (count)
        memcpy(copy, v, count * sizeof(*copy));
    return members_install(n, copy, count);
}

int members_reload(struct node *n)
{
    struct store_txn *t = NULL;
    int rc = store_begin(n->store, false, &t);
    if (rc)
        return rc;
    struct arena a;
    arena_init(&a, 16 * ASPEN_KIB, ASPEN_MAX_MEMBER_RECORDS * 2 * ASPEN_KIB);
    struct kv_member *list = NULL;
    size_t count = 0;
    uint64_t cid = 0;
    rc = kv_member_list(t, &a, &list, &count);
    if (!rc) {
        int crc = kv_cluster_id(t, &cid);
        if (crc == 0)
            n->cluster_id = cid;
        else if (crc != ASPEN_E_NOT_FOUND)
            rc = crc;
    }
    struct member_info *v = NULL;
    if (!rc && count) {
        v = mem_calloc(count, sizeof(*v));
        if (!v)
            rc = ASPEN_E_NOMEM;
        for (size_t i = 0; !rc && i < count; i++)
            member_from_kv(&list[i], &v[i]);
    }
    store_abort(t);
    arena_release(&a);
    if (rc) {
        mem_free(v);
        return rc;
    }
    /* A joiner has an empty registry until the log reaches it: keep the join answer. */
    if (count == 0)
        return 0;
    return members_install(n, v, count);
}

/* ---- auto-promote ---- */

void members_on_ack(struct node *n, raft_id from, raft_index index)
{
    for (size_t i = 0; i < n->n_learner_track; i++) {
        if (n->learner_ids[i] == from) {
            if (index > n->learner_match[i])
                n->learner_match[i] = index;
            return;
        }
    }
    if (n->n_learner_track < ASPEN_MAX_MEMBERS) {
        n->learner_ids[n->n_learner_track] = from;
        n->learner_match[n->n_learner_track++] = index;
    }
}

raft_id members_most_caught_up_voter(const struct node *n)
{
    const struct raft_config *cfg = raft_config(n->raft);
    raft_id best = 0;
    raft_index best_match = 0;
    for (size_t i = 0; i < n->n_learner_track; i++) {
        raft_id id = n->learner_ids[i];
        if (id == n->id.raft_id || !raft_config_is_voter(cfg, id))
            continue;
        if (!best || n->learner_match[i] > best_match) {
            best = id;
            best_match = n->learner_match[i];
        }
    }
    return best;
}

struct promote_waiter {
    struct node_waiter w;
    struct node *n;
    raft_id id;
};

static void promote_done(struct node_waiter *w, int rc, const struct kv_result *res,
                         raft_index index)
{
    (void)res;
    struct promote_waiter *p = (struct promote_waiter *)w;
    struct node *n = p->n;
    n->promote_pending = false;
    const struct member_info *m = members_find(n, p->id);
    if (rc)
        LOG_WARN("node", "learner promotion did not apply", "member=%s reason=%s",
                 m ? m->name : "?", aspen_err_name(rc));
    else
        LOG_INFO("node", "learner promoted to voter", "member=%s index=%" PRIu64, m ? m->name : "?",
                 index);
    mem_free(p);
}

void members_tick(struct node *n)
{
    if (n->role != RAFT_LEADER || n->promote_pending)
        return;
    const struct raft_config *cfg = raft_config(n->raft);
    if (cfg->n_outgoing || cfg->n_voters >= ASPEN_MAX_VOTERS)
        return;
    struct raft_status st;
    raft_status(n->raft, &st);
    for (size_t i = 0; i < n->n_learner_track; i++) {
        raft_id id = n->learner_ids[i];
        const struct member_info *m = members_find(n, id);
        if (!raft_config_is_learner(cfg, id) || n->learner_match[i] < st.hard_state.commit || !m ||
            (m->flags & KV_MEMBER_F_MANUAL_PROMOTE))
            continue;
        struct promote_waiter *p = mem_calloc(1, sizeof(*p));
        if (!p)
            return;
        p->w.done = promote_done;
        p->n = n;
        p->id = id;
        struct raft_conf_change cc = {.transition = RAFT_TRANSITION_AUTO, .n_changes = 1};
        cc.changes[0] = (struct raft_change){.type = RAFT_CHANGE_ADD_VOTER, .node = id};
        int rc = shell_conf_change(n, &cc, &p->w, ASPEN_NODE_REQUEST_TIMEOUT_MS, NULL);
        if (rc) {
            mem_free(p); /* BUSY: another change is pending; try on a later tick */
            return;
        }
        n->promote_pending = true;
        return;
    }
}
