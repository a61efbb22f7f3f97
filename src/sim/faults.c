/*
 * Fault injection during the safety phase: every fault tick (100 ms of virtual time)
 * each fault kind the seed enabled rolls its own die, from its own PRNG stream.
 *
 *   crash      the node loses its memory; a prefix of its pending writes lands (disk.h);
 *              it restarts from its durable state after a random delay
 *   pause      the node stops processing (a GC or VM stall); messages, disk completions
 *              and client requests wait for it, and the ticks it missed are delivered at
 *              once on resume, as a real shell measuring elapsed time would
 *   partition  the network splits in one of net.h's shapes, possibly asymmetrically,
 *              until it heals
 *   clog       one link holds back everything for a while
 *   membership the leader proposes a configuration change: add a learner, promote,
 *              remove or demote a voter, replace one, or a joint change of several
 *              (thesis §4.3), and leaves an explicit joint configuration later
 *   transfer   the leader hands leadership to another voter (thesis §3.10)
 *
 * Faults stop when the liveness phase starts (faults_heal_all).
 */
#include "sim/cluster.h"

#include "base/assert.h"

#include <aspen/error.h>

void faults_crash(struct sim *s, struct sim_node *n)
{
    node_stop(s, n);
    s->res->crashes++;
    check_committed_durable(s);
    if (s->phase == PHASE_SAFETY)
        sim_schedule(s, &(struct sim_event){.time_ns = s->now_ns + 1 +
                                                       rng_below(&s->r_crash, s->p.restart_max_ns),
                                            .kind = EV_RESTART,
                                            .node = (uint8_t)n->slot,
                                            .incarnation = n->incarnation});
}

void faults_crash_quick(struct sim *s, struct sim_node *n)
{
    if (!n->up)
        return;
    node_stop(s, n);
    s->res->crashes++;
    check_committed_durable(s);
    /* Back within about an election timeout: while the election it voted in may still
     * be going on. */
    uint64_t back = 1 + rng_below(&s->r_crash, (uint64_t)s->p.election_ticks * ASPEN_SIM_TICK_NS);
    sim_schedule(s, &(struct sim_event){.time_ns = s->now_ns + back,
                                        .kind = EV_RESTART,
                                        .node = (uint8_t)n->slot,
                                        .incarnation = n->incarnation});
}

void faults_after_vote(struct sim *s, struct sim_node *n)
{
    if (s->phase != PHASE_SAFETY || !s->p.vote_crash_permille ||
        !rng_ratio(&s->r_crash, s->p.vote_crash_permille, 1000))
        return;
    /* Crash as a separate event (the node is in the middle of a completion now), a
     * moment after the grant left. */
    sim_schedule(s, &(struct sim_event){.time_ns = s->now_ns + 1 + rng_below(&s->r_crash, 2000000),
                                        .kind = EV_CRASH,
                                        .node = (uint8_t)n->slot,
                                        .incarnation = n->incarnation});
}

void faults_restart(struct sim *s, struct sim_node *n)
{
    if (n->up)
        return;
    int rc = node_start(s, n);
    if (rc) {
        if (!s->res->violation)
            sim_internal_error(s, rc, "node_start");
        return;
    }
    s->res->restarts++;
    sim_trace(s, TR_RESTART, n, 0, n->applied, n->log.base + n->log.n, n->term);
}

void faults_pause(struct sim *s, struct sim_node *n, uint64_t until_ns)
{
    n->paused = true;
    n->missed_ticks = 0;
    s->res->pauses++;
    sim_trace(s, TR_PAUSE, n, 0, until_ns / 1000000u, 0, 0);
    sim_schedule(s, &(struct sim_event){.time_ns = until_ns,
                                        .kind = EV_RESUME,
                                        .node = (uint8_t)n->slot,
                                        .incarnation = n->incarnation});
}

void faults_resume(struct sim *s, struct sim_node *n)
{
    if (!n->up || !n->paused)
        return;
    n->paused = false;
    uint64_t missed = n->missed_ticks;
    n->missed_ticks = 0;
    sim_trace(s, TR_RESUME, n, 0, missed, n->n_deferred, 0);
    for (uint64_t i = 0; i < missed && n->up && !s->res->violation; i++)
        (void)node_step(s, n, &(struct raft_event){.type = RAFT_EVENT_TICK}, NULL);
    /* What waited during the pause is handled now, in arrival order. */
    for (size_t i = 0; i < n->n_deferred; i++) {
        struct sim_event ev = n->deferred[i];
        ev.time_ns = s->now_ns;
        sim_schedule(s, &ev);
    }
    n->n_deferred = 0;
}

static struct sim_node *random_node(struct sim *s, struct rng *r, bool want_up, bool unpaused)
{
    uint32_t cand[ASPEN_SIM_MAX_NODES], n = 0;
    for (uint32_t i = 0; i < s->p.slots; i++) {
        const struct sim_node *node = &s->nodes[i];
        if (node->up == want_up && (!unpaused || !node->paused))
            cand[n++] = i;
    }
    return n ? &s->nodes[cand[rng_below(r, n)]] : NULL;
}

static bool in_list(const raft_id *ids, uint32_t n, raft_id id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* Picks a random id from ids not yet used in cc. 0 if none. */
static raft_id pick(struct rng *r, const raft_id *ids, uint32_t n,
                    const struct raft_conf_change *cc)
{
    raft_id cand[ASPEN_SIM_MAX_NODES];
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        bool used = false;
        for (uint32_t j = 0; j < cc->n_changes; j++)
            used |= cc->changes[j].node == ids[i];
        if (!used && k < ASPEN_SIM_MAX_NODES)
            cand[k++] = ids[i];
    }
    return k ? cand[rng_below(r, k)] : 0;
}

static void conf_change(struct sim *s)
{
    int ls = sim_leader_slot(s);
    if (ls < 0)
        return;
    struct sim_node *l = &s->nodes[ls];
    const struct raft_config *cfg = raft_config(l->raft);
    struct rng *r = &s->r_member;
    struct raft_conf_change cc = {.transition = RAFT_TRANSITION_AUTO};
    if (cfg->n_outgoing > 0) {
        if (cfg->auto_leave)
            return;
        /* An explicit joint configuration: leave it (zero changes). */
    } else {
        raft_id spare[ASPEN_SIM_MAX_NODES];
        uint32_t n_spare = 0;
        for (uint32_t i = 0; i < s->p.slots; i++) {
            raft_id id = s->nodes[i].id;
            if (!in_list(cfg->voters, cfg->n_voters, id) &&
                !in_list(cfg->learners, cfg->n_learners, id))
                spare[n_spare++] = id;
        }
        uint32_t want = rng_ratio(r, 1, 4) ? (uint32_t)rng_range(r, 2, 3) : 1;
        uint32_t voters = cfg->n_voters;
        for (uint32_t k = 0; k < want * 4 && cc.n_changes < want; k++) {
            raft_id id = 0;
            uint8_t type = 0;
            switch (rng_below(r, 6)) {
            case 0: /* add a learner */
                id = pick(r, spare, n_spare, &cc);
                type = RAFT_CHANGE_ADD_LEARNER;
                break;
            case 1: /* promote a learner */
                id = pick(r, cfg->learners, cfg->n_learners, &cc);
                type = RAFT_CHANGE_ADD_VOTER;
                break;
            case 2: /* add a voter directly */
                id = pick(r, spare, n_spare, &cc);
                type = RAFT_CHANGE_ADD_VOTER;
                break;
            case 3: /* remove a voter (keep at least one) */
                if (voters > 1)
                    id = pick(r, cfg->voters, cfg->n_voters, &cc);
                type = RAFT_CHANGE_REMOVE;
                break;
            case 4: /* demote a voter */
                if (voters > 1)
                    id = pick(r, cfg->voters, cfg->n_voters, &cc);
                type = RAFT_CHANGE_ADD_LEARNER;
                break;
            default: /* remove a learner */
                id = pick(r, cfg->learners, cfg->n_learners, &cc);
                type = RAFT_CHANGE_REMOVE;
                break;
            }
            if (!id)
                continue;
            bool is_voter = in_list(cfg->voters, cfg->n_voters, id);
            if (is_voter && type != RAFT_CHANGE_ADD_VOTER)
                voters--;
            if (!is_voter && type == RAFT_CHANGE_ADD_VOTER)
                voters++;
            cc.changes[cc.n_changes++] = (struct raft_change){.type = type, .node = id};
        }
        if (cc.n_changes == 0)
            return;
        if (cc.n_changes > 1 || rng_ratio(r, 1, 4))
            cc.transition = (uint8_t)rng_range(r, RAFT_TRANSITION_AUTO, RAFT_TRANSITION_EXPLICIT);
    }
    struct raft_event ev = {.type = RAFT_EVENT_CONF_CHANGE};
    ev.u.conf = &cc;
    int rc = node_step(s, l, &ev, NULL);
    sim_trace(s, TR_CONF, l, 0, cc.n_changes ? cc.changes[0].type : 9,
              cc.n_changes ? cc.changes[0].node : 0, (uint64_t)-rc);
    if (rc == 0)
        s->res->conf_changes++;
}

static void transfer(struct sim *s)
{
    int ls = sim_leader_slot(s);
    if (ls < 0)
        return;
    struct sim_node *l = &s->nodes[ls];
    const struct raft_config *cfg = raft_config(l->raft);
    raft_id cand[ASPEN_MAX_VOTERS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < cfg->n_voters; i++)
        if (cfg->voters[i] != l->id)
            cand[n++] = cfg->voters[i];
    if (n == 0)
        return;
    raft_id to = cand[rng_below(&s->r_member, n)];
    struct raft_event ev = {.type = RAFT_EVENT_TRANSFER};
    ev.u.node = to;
    int rc = node_step(s, l, &ev, NULL);
    sim_trace(s, TR_TRANSFER, l, (uint8_t)to, (uint64_t)-rc, 0, 0);
    if (rc == 0)
        s->res->transfers++;
}

void faults_on_tick(struct sim *s)
{
    if (s->phase != PHASE_SAFETY)
        return;
    const struct sim_params *p = &s->p;
    sim_schedule(s, &(struct sim_event){.time_ns = s->now_ns + p->fault_tick_ns, .kind = EV_FAULT});

    if (p->crash_permille && rng_ratio(&s->r_crash, p->crash_permille, 1000)) {
        struct sim_node *n = random_node(s, &s->r_crash, true, false);
        if (n)
            faults_crash(s, n);
    }
    if (p->pause_permille && rng_ratio(&s->r_pause, p->pause_permille, 1000)) {
        struct sim_node *n = random_node(s, &s->r_pause, true, true);
        if (n)
            faults_pause(s, n, s->now_ns + 1 + rng_below(&s->r_pause, p->pause_max_ns));
    }
    if (s->net.partitioned) {
        if (rng_ratio(&s->r_part, p->heal_permille, 1000)) {
            net_heal(&s->net);
            sim_trace(s, TR_HEAL, NULL, 0, 0, 0, 0);
        }
    } else if (p->partition_permille && rng_ratio(&s->r_part, p->partition_permille, 1000)) {
        uint32_t modes[NET_PART_MODE_COUNT], k = 0;
        for (uint32_t m = 0; m < NET_PART_MODE_COUNT; m++)
            if (p->partition_modes & (1u << m))
                modes[k++] = m;
        ASPEN_ASSERT(k > 0);
        enum net_partition_mode mode = (enum net_partition_mode)modes[rng_below(&s->r_part, k)];
        bool asym = p->asymmetric && rng_ratio(&s->r_part, 1, 2);
        net_partition(&s->net, mode, asym, sim_leader_slot(s), &s->r_part);
        s->res->partitions++;
        sim_trace(s, TR_PARTITION, NULL, 0, mode, asym, 0);
    }
    if (p->clog_permille && rng_ratio(&s->r_part, p->clog_permille, 1000)) {
        uint32_t from = (uint32_t)rng_below(&s->r_part, p->slots);
        uint32_t to = (uint32_t)rng_below(&s->r_part, p->slots);
        uint64_t until = s->now_ns + 1 + rng_below(&s->r_part, p->clog_max_ns);
        if (from != to) {
            net_clog(&s->net, from, to, until);
            sim_trace(s, TR_CLOG, &s->nodes[from], (uint8_t)(to + 1), until / 1000000u, 0, 0);
        }
    }
    if (p->conf_permille && rng_ratio(&s->r_member, p->conf_permille, 1000))
        conf_change(s);
    if (p->transfer_permille && rng_ratio(&s->r_member, p->transfer_permille, 1000))
        transfer(s);
}

void faults_heal_all(struct sim *s)
{
    net_calm(&s->net);
    for (uint32_t i = 0; i < s->p.slots && !s->res->violation; i++) {
        struct sim_node *n = &s->nodes[i];
        n->disk.p.slow_permille = 0;
        if (n->paused)
            faults_resume(s, n);
        if (!n->up)
            faults_restart(s, n);
    }
}
