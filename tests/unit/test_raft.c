/*
 * Scenario tests of the raft core, mirroring the paper (§5.2 election, §5.3 replication,
 * §5.4 safety incl. Figure 8, §6 membership, §9 pre-vote and leadership transfer) and the
 * etcd-raft test categories (research consensus.md §1.6). Most run on raft_net (instant
 * persistence, hand-delivered messages); a few feed crafted messages to one core to pin a
 * single rule.
 */
#include "test.h"

#include "base/mem.h"
#include "raft/raft.h"
#include "raft_net.h"

#include <stdio.h>
#include <string.h>

static void tweak_prevote(struct raft_options *o)
{
    o->pre_vote = true;
    o->check_quorum = true;
}

static bool applied_same(struct net *net, raft_id a, raft_id b)
{
    struct net_node *x = &net->nodes[a], *y = &net->nodes[b];
    uint32_t n = x->n_applied < y->n_applied ? x->n_applied : y->n_applied;
    for (uint32_t i = 0; i < n; i++)
        if (x->applied_index[i] != y->applied_index[i] || x->applied_term[i] != y->applied_term[i])
            return false;
    return true;
}

/* Elects `id` by campaigning and delivering everything. */
static raft_id elect(struct net *net, raft_id id)
{
    net_campaign(net, id);
    net_deliver(net, 100000);
    return net_leader(net);
}

/* ---- §5.2 election ---- */

static void single_node_elects_itself_and_commits(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 1, NULL));
    net_run(&net, 30);
    CHECK_EQ(net_leader(&net), 1);
    struct raft_status st = net_status(&net, 1);
    CHECK_EQ(st.hard_state.term, 2); /* bootstrap term 1, first election term 2 */
    CHECK_OK(net_propose(&net, 1, "x"));
    st = net_status(&net, 1);
    CHECK_EQ(st.hard_state.commit, 3); /* conf entry, no-op, x */
    CHECK_EQ(net.nodes[1].n_applied, 3);
    net_free(&net);
}

static void three_nodes_elect_one_leader_and_replicate(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_OK(net_propose(&net, 1, "a"));
    CHECK_OK(net_propose(&net, 1, "b"));
    net_deliver(&net, 100000);
    net_run(&net, 2); /* heartbeats carry the commit index to followers */
    for (raft_id i = 1; i <= 3; i++) {
        struct raft_status st = net_status(&net, i);
        CHECK_EQ(st.hard_state.commit, 4);
        CHECK_EQ(st.applied, 4);
        CHECK_EQ(net.nodes[i].n_applied, 4);
    }
    CHECK(applied_same(&net, 1, 2) && applied_same(&net, 1, 3));
    net_free(&net);
}

static void followers_elect_a_new_leader_when_the_leader_fails(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_isolate(&net, 1, true);
    net_run(&net, 50);
    raft_id l = net_leader(&net);
    CHECK(l == 2 || l == 3);
    /* The old leader comes back, hears the higher term and follows. */
    net_isolate(&net, 1, false);
    net_run(&net, 5);
    CHECK_EQ(net_leader(&net), l);
    CHECK_EQ(net_status(&net, 1).role, RAFT_FOLLOWER);
    CHECK_EQ(net_status(&net, 1).leader, l);
    net_free(&net);
}

static void a_vote_is_granted_once_per_term(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    /* Node 3 votes for 1 in term 2; a request from 2 in the same term is refused. */
    net_campaign(&net, 1);
    net_campaign(&net, 2);
    /* Deliver 1's request to 3 first, then 2's. */
    for (uint32_t i = 0; i < net.q_len; i++) {
        struct net_msg *m = &net.q[(net.q_head + i) % NET_MAX_MSGS];
        if (m->m.to != 3)
            m->dropped = true;
    }
    CHECK_EQ(net_deliver(&net, 2), 2);
    CHECK_EQ(net_status(&net, 3).hard_state.vote, 1);
    CHECK_EQ(net_count(&net, RAFT_MSG_VOTE_RESP, 3, 1), 1);
    uint32_t granted = 0;
    for (uint32_t i = 0; i < net.q_len; i++) {
        struct net_msg *m = &net.q[(net.q_head + i) % NET_MAX_MSGS];
        if (m->m.type == RAFT_MSG_VOTE_RESP && !m->m.reject)
            granted++;
    }
    CHECK_EQ(granted, 1);
    net_free(&net);
}

/* §5.4.1: a candidate whose log is behind a majority cannot win. */
static void a_stale_candidate_cannot_win(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_isolate(&net, 3, true);
    CHECK_OK(net_propose(&net, 1, "a"));
    net_deliver(&net, 100000);
    net_isolate(&net, 3, false);
    net_isolate(&net, 1, true);
    /* Node 3 lacks "a": node 2 refuses it. */
    net_campaign(&net, 3);
    net_deliver(&net, 100000);
    CHECK(net_status(&net, 3).role != RAFT_LEADER);
    CHECK_EQ(elect(&net, 2), 2);
    net_free(&net);
}

/* ---- §5.3 replication ---- */

static void a_divergent_follower_log_is_repaired(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    /* The leader appends entries nobody receives, then loses leadership. */
    net_isolate(&net, 1, true);
    for (int i = 0; i < 5; i++)
        CHECK_OK(net_propose(&net, 1, "lost"));
    net_clear(&net);
    net_isolate(&net, 1, false);
    net_isolate(&net, 1, true);
    CHECK_EQ(elect(&net, 2), 2);
    for (int i = 0; i < 3; i++)
        CHECK_OK(net_propose(&net, 2, "kept"));
    net_deliver(&net, 100000);
    net_isolate(&net, 1, false);
    net_run(&net, 5);
    struct raft_status s1 = net_status(&net, 1), s2 = net_status(&net, 2);
    CHECK_EQ(s1.last_index, s2.last_index);
    CHECK_EQ(raft_term_at(net.nodes[1].r, s1.last_index),
             raft_term_at(net.nodes[2].r, s2.last_index));
    CHECK_EQ(s1.hard_state.commit, s2.hard_state.commit);
    CHECK(applied_same(&net, 1, 2));
    net_free(&net);
}

/* The leader counts itself only once its own write is durable (thesis §10.2.1). */
static void the_leader_counts_itself_only_when_durable(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 1, NULL));
    net.nodes[1].manual_persist = true;
    net_campaign(&net, 1);
    struct raft_status st = net_status(&net, 1);
    CHECK_EQ(st.role, RAFT_LEADER);
    CHECK_EQ(st.hard_state.commit, 1); /* the no-op is not durable yet */
    struct raft_event ev = {.type = RAFT_EVENT_PERSISTED};
    ev.u.persisted.index = st.last_index;
    ev.u.persisted.term = st.hard_state.term;
    CHECK_OK(net_step(&net, 1, &ev));
    CHECK_EQ(net_status(&net, 1).hard_state.commit, st.last_index);
    /* A completion for an (index, term) that is no longer in the log proves nothing. */
    CHECK_OK(net_propose(&net, 1, "x"));
    ev.u.persisted.index = st.last_index + 1;
    ev.u.persisted.term = st.hard_state.term + 7;
    CHECK_OK(net_step(&net, 1, &ev));
    CHECK_EQ(net_status(&net, 1).hard_state.commit, st.last_index);
    net_free(&net);
}

/* ---- §5.4.2 Figure 8: never commit an old-term entry by counting replicas ---- */

static struct raft_msg msg(uint8_t type, raft_id from, raft_id to, raft_term term)
{
    struct raft_msg m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.from = from;
    m.to = to;
    m.term = term;
    return m;
}

static void an_old_term_entry_is_not_committed_by_counting_replicas(void)
{
    /* Node 1 holds [1: conf (t1), 2: x (t2)] but only 1 is committed; it becomes leader
     * of term 3. Followers acknowledging index 2 must not commit it: only the term-3
     * no-op at index 3 commits, and 2 with it. */
    uint8_t buf[RAFT_CONF_CHANGE_MAX_BYTES];
    struct raft_entry e[2];
    struct raft_boot boot;
    raft_id ids[3] = {1, 2, 3};
    CHECK_OK(raft_bootstrap(ids, 3, buf, &e[0], &boot));
    e[1] = (struct raft_entry){.term = 2, .index = 2, .type = RAFT_ENTRY_NORMAL};
    boot.entries = e;
    boot.n_entries = 2;
    boot.hard_state.term = 2;
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_OK(net_boot_node(&net, 1, &boot, NULL));
    net_campaign(&net, 1);
    net_clear(&net);
    struct raft_msg v = msg(RAFT_MSG_VOTE_RESP, 2, 1, 3);
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.msg = &v};
    CHECK_OK(net_step(&net, 1, &ev));
    CHECK_EQ(net_status(&net, 1).role, RAFT_LEADER);
    CHECK_EQ(net_status(&net, 1).last_index, 3);
    net_clear(&net);
    struct raft_msg a = msg(RAFT_MSG_APPEND_RESP, 2, 1, 3);
    a.index = 2;
    ev.u.msg = &a;
    CHECK_OK(net_step(&net, 1, &ev));
    a.from = 3;
    CHECK_OK(net_step(&net, 1, &ev));
    CHECK_EQ(net_status(&net, 1).hard_state.commit, 1);
    a.index = 3;
    CHECK_OK(net_step(&net, 1, &ev));
    CHECK_EQ(net_status(&net, 1).hard_state.commit, 3);
    net_free(&net);
}

/* ---- reads (thesis §6.4) ---- */

static void read_index_waits_for_a_commit_in_the_leaders_term(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    net.nodes[1].manual_persist = true;
    /* Followers' acknowledgements of the no-op are lost. */
    net.drop_type[RAFT_MSG_APPEND_RESP] = true;
    net_campaign(&net, 1);
    net_deliver(&net, 100000);
    CHECK_EQ(net_status(&net, 1).role, RAFT_LEADER);
    CHECK_OK(net_read(&net, 1, 42));
    net_run(&net, 3);
    CHECK_EQ(net.nodes[1].n_reads, 0); /* etcd#7331: no answer before the term commit */
    net.drop_type[RAFT_MSG_APPEND_RESP] = false;
    net.nodes[1].manual_persist = false;
    struct raft_event ev = {.type = RAFT_EVENT_PERSISTED};
    ev.u.persisted.index = net_status(&net, 1).last_index;
    ev.u.persisted.term = net_status(&net, 1).hard_state.term;
    net_step(&net, 1, &ev);
    net_run(&net, 3);
    CHECK_EQ(net.nodes[1].n_reads, 1);
    CHECK_EQ(net.nodes[1].reads[0].ctx, 42);
    CHECK_EQ(net.nodes[1].reads[0].err, 0);
    CHECK_EQ(net.nodes[1].reads[0].index, net_status(&net, 1).hard_state.commit);
    net_free(&net);
}

static void many_reads_share_one_heartbeat_round(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_run(&net, 1);
    for (uint64_t i = 0; i < 20; i++)
        CHECK_OK(net_read(&net, 1, 100 + i));
    /* One round started by the first read; the other 19 wait for the next one. */
    CHECK_EQ(net_count(&net, RAFT_MSG_HEARTBEAT, 1, 2), 1);
    net_deliver(&net, 100000);
    CHECK_EQ(net.nodes[1].n_reads, 20);
    for (uint32_t i = 0; i < 20; i++) {
        CHECK_EQ(net.nodes[1].reads[i].ctx, 100 + i);
        CHECK_EQ(net.nodes[1].reads[i].err, 0);
    }
    net_free(&net);
}

static void a_follower_read_is_served_through_the_leader(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_OK(net_propose(&net, 1, "v"));
    net_deliver(&net, 100000);
    CHECK_OK(net_read(&net, 2, 7));
    net_deliver(&net, 100000);
    CHECK_EQ(net.nodes[2].n_reads, 1);
    CHECK_EQ(net.nodes[2].reads[0].ctx, 7);
    CHECK_EQ(net.nodes[2].reads[0].index, net_status(&net, 1).hard_state.commit);
    net_free(&net);
}

static void a_partitioned_leader_serves_no_reads(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_run(&net, 1);
    net_isolate(&net, 2, true);
    net_isolate(&net, 3, true);
    CHECK_OK(net_read(&net, 1, 9));
    net_run(&net, 5);
    CHECK_EQ(net.nodes[1].n_reads, 0);
    net_free(&net);
}

/* ---- §9.6 PreVote, CheckQuorum ---- */

static void prevote_keeps_a_partitioned_node_from_disrupting(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_prevote));
    net_run(&net, 40);
    raft_id l = net_leader(&net);
    CHECK(l != 0);
    raft_term t = net_status(&net, l).hard_state.term;
    raft_id lone = l == 3 ? 2 : 3;
    net_isolate(&net, lone, true);
    net_run(&net, 100);
    /* Its pre-votes fail: its term did not grow. */
    CHECK_EQ(net_status(&net, lone).hard_state.term, t);
    net_isolate(&net, lone, false);
    net_run(&net, 5);
    CHECK_EQ(net_leader(&net), l);
    CHECK_EQ(net_status(&net, l).hard_state.term, t);
    net_free(&net);
}

static void check_quorum_makes_an_isolated_leader_step_down(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_prevote));
    net_run(&net, 40);
    raft_id l = net_leader(&net);
    CHECK(l != 0);
    for (raft_id i = 1; i <= 3; i++)
        if (i != l)
            net_isolate(&net, i, true);
    net_run(&net, 25);
    CHECK(net_status(&net, l).role != RAFT_LEADER);
    net_free(&net);
}

/* ---- §3.10 leadership transfer ---- */

static void leadership_transfers_to_a_caught_up_follower(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_OK(net_propose(&net, 1, "a"));
    net_deliver(&net, 100000);
    struct raft_event ev = {.type = RAFT_EVENT_TRANSFER, .u.node = 3};
    CHECK_OK(net_step(&net, 1, &ev));
    /* Proposals are refused while the transfer is in progress. */
    CHECK_ERR(net_propose(&net, 1, "b"), ASPEN_E_BUSY);
    net_deliver(&net, 100000);
    CHECK_EQ(net_leader(&net), 3);
    CHECK_OK(net_propose(&net, 3, "c"));
    net_free(&net);
}

/* ---- §4 membership ---- */

static int conf(struct net *net, raft_id leader, uint8_t transition, uint32_t n,
                const struct raft_change *ch)
{
    struct raft_conf_change cc = {.transition = transition, .n_changes = n};
    memcpy(cc.changes, ch, n * sizeof(*ch));
    struct raft_event ev = {.type = RAFT_EVENT_CONF_CHANGE, .u.conf = &cc};
    int rc = net_step(net, leader, &ev);
    net_deliver(net, 100000);
    net_run(net, 2);
    return rc;
}

static void a_learner_joins_catches_up_and_is_promoted(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_OK(net_propose(&net, 1, "a"));
    struct raft_boot empty;
    memset(&empty, 0, sizeof(empty));
    CHECK_OK(net_boot_node(&net, 4, &empty, NULL));
    struct raft_change add = {RAFT_CHANGE_ADD_LEARNER, 4};
    CHECK_OK(conf(&net, 1, RAFT_TRANSITION_AUTO, 1, &add));
    CHECK(raft_config_is_learner(raft_config(net.nodes[1].r), 4));
    CHECK_EQ(net_status(&net, 4).applied, net_status(&net, 1).applied);
    /* The joiner replayed the log from index 1 and knows the founders. */
    CHECK(raft_config_is_voter(raft_config(net.nodes[4].r), 1));
    CHECK(raft_config_is_learner(raft_config(net.nodes[4].r), 4));
    struct raft_change promote = {RAFT_CHANGE_ADD_VOTER, 4};
    CHECK_OK(conf(&net, 1, RAFT_TRANSITION_AUTO, 1, &promote));
    CHECK(raft_config_is_voter(raft_config(net.nodes[4].r), 4));
    CHECK_EQ(raft_config(net.nodes[1].r)->n_voters, 4);
    net_free(&net);
}

static void joint_consensus_replaces_two_voters(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    struct raft_boot empty;
    memset(&empty, 0, sizeof(empty));
    CHECK_OK(net_boot_node(&net, 4, &empty, NULL));
    CHECK_OK(net_boot_node(&net, 5, &empty, NULL));
    struct raft_change ch[4] = {{RAFT_CHANGE_ADD_VOTER, 4},
                                {RAFT_CHANGE_ADD_VOTER, 5},
                                {RAFT_CHANGE_REMOVE, 2},
                                {RAFT_CHANGE_REMOVE, 3}};
    CHECK_OK(conf(&net, 1, RAFT_TRANSITION_AUTO, 4, ch));
    net_run(&net, 3);
    const struct raft_config *c = raft_config(net.nodes[1].r);
    CHECK_EQ(c->n_outgoing, 0); /* auto-left the joint configuration */
    CHECK_EQ(c->n_voters, 3);
    CHECK(raft_config_is_voter(c, 4) && raft_config_is_voter(c, 5) && !raft_config_is_voter(c, 2));
    CHECK_OK(net_propose(&net, 1, "after"));
    net_deliver(&net, 100000);
    net_run(&net, 2);
    CHECK_EQ(net_status(&net, 5).applied, net_status(&net, 1).applied);
    net_free(&net);
}

static void a_removed_leader_hands_over_and_steps_down(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    struct raft_change rm = {RAFT_CHANGE_REMOVE, 1};
    CHECK_OK(conf(&net, 1, RAFT_TRANSITION_AUTO, 1, &rm));
    net_run(&net, 3);
    CHECK(net_status(&net, 1).role != RAFT_LEADER);
    raft_id l = net_leader(&net);
    CHECK(l == 2 || l == 3);
    CHECK(!raft_config_is_voter(raft_config(net.nodes[l].r), 1));
    CHECK_OK(net_propose(&net, l, "after"));
    net_free(&net);
}

/* The simulator's seed 1632: the leader demotes itself, and the append that would carry
 * the commit of the change to the other voter is lost. Stepping down at once left that
 * voter in the old configuration, needing the old leader's vote, which its longer log
 * refused: no leader ever again. The leader must hand over first. */
static void a_demoted_leader_does_not_strand_the_remaining_voter(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 2, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    struct raft_change ch = {RAFT_CHANGE_ADD_LEARNER, 1};
    struct raft_conf_change cc = {.transition = RAFT_TRANSITION_AUTO, .n_changes = 1};
    cc.changes[0] = ch;
    net_run(&net, 1);
    struct raft_event ev = {.type = RAFT_EVENT_CONF_CHANGE, .u.conf = &cc};
    CHECK_OK(net_step(&net, 1, &ev));
    /* Node 2 receives the change and acknowledges it; the leader's next entry never
     * reaches node 2, so the leader's log ends up longer. */
    CHECK_EQ(net_deliver(&net, 1), 1);
    CHECK_OK(net_propose(&net, 1, "x"));
    for (uint32_t i = 0; i < net.q_len; i++) {
        struct net_msg *m = &net.q[(net.q_head + i) % NET_MAX_MSGS];
        if (m->m.type == RAFT_MSG_APPEND)
            m->dropped = true;
    }
    /* The acknowledgement commits the change at the leader, which applies it; nothing
     * that would tell node 2 the new commit index gets through for a while. */
    net.drop_type[RAFT_MSG_APPEND] = true;
    net.drop_type[RAFT_MSG_HEARTBEAT] = true;
    net_deliver(&net, 100000);
    net_heal(&net);
    net_run(&net, 60);
    raft_id l = net_leader(&net);
    CHECK_EQ(l, 2);
    CHECK(raft_config_is_learner(raft_config(net.nodes[2].r), 1));
    CHECK_OK(net_propose(&net, 2, "alive"));
    net_free(&net);
}

static void one_configuration_change_at_a_time(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_isolate(&net, 2, true);
    net_isolate(&net, 3, true);
    struct raft_conf_change cc = {.transition = RAFT_TRANSITION_AUTO, .n_changes = 1};
    cc.changes[0] = (struct raft_change){RAFT_CHANGE_ADD_LEARNER, 4};
    struct raft_event ev = {.type = RAFT_EVENT_CONF_CHANGE, .u.conf = &cc};
    CHECK_OK(net_step(&net, 1, &ev));
    cc.changes[0].node = 5;
    CHECK_ERR(net_step(&net, 1, &ev), ASPEN_E_BUSY);
    net_free(&net);
}

/* Snapshots: test_raft_more.c (a follower behind compaction, stale and matching
 * snapshots, failed transfers, the snapshot threshold). */

/* ---- restart ---- */

static void a_restarted_node_resumes_from_its_boot_state(void)
{
    uint8_t buf[RAFT_CONF_CHANGE_MAX_BYTES];
    struct raft_entry e[3];
    struct raft_boot boot;
    raft_id ids[1] = {1};
    CHECK_OK(raft_bootstrap(ids, 1, buf, &e[0], &boot));
    e[1] = (struct raft_entry){.term = 2, .index = 2};
    e[2] = (struct raft_entry){.term = 2, .index = 3, .len = 1, .data = (uint8_t *)"z"};
    boot.entries = e;
    boot.n_entries = 3;
    boot.hard_state = (struct raft_hard_state){.term = 2, .vote = 1, .commit = 2};
    boot.applied = 2;
    struct net net;
    CHECK_OK(net_init(&net, 1, NULL));
    CHECK_OK(net_boot_node(&net, 1, &boot, NULL));
    net_campaign(&net, 1);
    struct raft_status st = net_status(&net, 1);
    CHECK_EQ(st.hard_state.term, 3);
    CHECK_EQ(st.hard_state.commit, 4);
    /* Entries 3 and 4 handed out; 1 and 2 were applied before the restart. */
    CHECK_EQ(net.nodes[1].n_applied, 2);
    CHECK_EQ(net.nodes[1].applied_index[0], 3);
    net_free(&net);
}

static void create_rejects_bad_options_and_state(void)
{
    struct rng g;
    rng_seed(&g, 1);
    struct raft_options o;
    raft_options_default(&o, 1, rng_as_random(&g));
    struct raft_boot boot;
    memset(&boot, 0, sizeof(boot));
    struct raft *r = NULL;
    CHECK_OK(raft_create(&r, &o, &boot));
    raft_free(r);
    struct raft_options bad = o;
    bad.id = 0;
    CHECK_ERR(raft_create(&r, &bad, &boot), ASPEN_E_INVALID);
    bad = o;
    bad.lease_reads = true;
    bad.check_quorum = false;
    CHECK_ERR(raft_create(&r, &bad, &boot), ASPEN_E_INVALID);
    bad = o;
    bad.heartbeat_ticks = bad.election_ticks;
    CHECK_ERR(raft_create(&r, &bad, &boot), ASPEN_E_INVALID);
    struct raft_entry e = {.term = 1, .index = 2};
    boot.entries = &e;
    boot.n_entries = 1; /* not consecutive after the snapshot */
    CHECK_ERR(raft_create(&r, &o, &boot), ASPEN_E_INVALID);
    boot.n_entries = 0;
    boot.applied = 3; /* beyond the log */
    CHECK_ERR(raft_create(&r, &o, &boot), ASPEN_E_INVALID);
    for (uint64_t i = 1; i < 20; i++) {
        memset(&boot, 0, sizeof(boot));
        mem_fail_at(i, false);
        int rc = raft_create(&r, &o, &boot);
        mem_fail_at(0, false);
        if (rc == 0)
            raft_free(r);
        else
            CHECK_ERR(rc, ASPEN_E_NOMEM);
    }
}

static void conf_change_encoding_round_trips_and_rejects_garbage(void)
{
    struct raft_conf_change cc = {.transition = RAFT_TRANSITION_EXPLICIT, .n_changes = 3};
    cc.changes[0] = (struct raft_change){RAFT_CHANGE_ADD_VOTER, 7};
    cc.changes[1] = (struct raft_change){RAFT_CHANGE_ADD_LEARNER, UINT64_MAX};
    cc.changes[2] = (struct raft_change){RAFT_CHANGE_REMOVE, 1};
    uint8_t buf[RAFT_CONF_CHANGE_MAX_BYTES];
    size_t n = raft_conf_change_encode(&cc, buf);
    CHECK_EQ(n, 4 + 27);
    struct raft_conf_change d;
    CHECK_OK(raft_conf_change_decode(buf, n, &d));
    CHECK(memcmp(&d, &cc, sizeof(cc)) == 0);
    for (size_t i = 0; i < n; i++)
        CHECK(raft_conf_change_decode(buf, i, &d) != 0);
    uint8_t more[RAFT_CONF_CHANGE_MAX_BYTES + 1];
    memcpy(more, buf, n);
    more[n] = 0;
    CHECK_ERR(raft_conf_change_decode(more, n + 1, &d), ASPEN_E_MALFORMED);
    buf[0] = 2;
    CHECK_ERR(raft_conf_change_decode(buf, n, &d), ASPEN_E_MALFORMED);
}

static const struct test_case tests[] = {
    TEST(single_node_elects_itself_and_commits),
    TEST(three_nodes_elect_one_leader_and_replicate),
    TEST(followers_elect_a_new_leader_when_the_leader_fails),
    TEST(a_vote_is_granted_once_per_term),
    TEST(a_stale_candidate_cannot_win),
    TEST(a_divergent_follower_log_is_repaired),
    TEST(the_leader_counts_itself_only_when_durable),
    TEST(an_old_term_entry_is_not_committed_by_counting_replicas),
    TEST(read_index_waits_for_a_commit_in_the_leaders_term),
    TEST(many_reads_share_one_heartbeat_round),
    TEST(a_follower_read_is_served_through_the_leader),
    TEST(a_partitioned_leader_serves_no_reads),
    TEST(prevote_keeps_a_partitioned_node_from_disrupting),
    TEST(check_quorum_makes_an_isolated_leader_step_down),
    TEST(leadership_transfers_to_a_caught_up_follower),
    TEST(a_learner_joins_catches_up_and_is_promoted),
    TEST(joint_consensus_replaces_two_voters),
    TEST(a_removed_leader_hands_over_and_steps_down),
    TEST(a_demoted_leader_does_not_strand_the_remaining_voter),
    TEST(one_configuration_change_at_a_time),
    TEST(a_restarted_node_resumes_from_its_boot_state),
    TEST(create_rejects_bad_options_and_state),
    TEST(conf_change_encoding_round_trips_and_rejects_garbage),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("raft", tests);
}
