/*
 * The raft core against the scenario categories of etcd-raft's raft_test.go (research
 * consensus.md §1.6): elections under contention, PreVote and CheckQuorum, learners, flow
 * control, fast log back-off, limits, reads and leases, leadership transfer, membership
 * changes, snapshots, restarts, bad events, allocation failures, and a randomized
 * property test over partitions, drops, duplicates, reordering and crashes.
 *
 * All through raft.h, on raft_net (tests/unit/raft_net.h), which checks Election Safety,
 * State Machine Safety and the hand-out rules on every step.
 */
#include "test.h"

#include "base/mem.h"
#include "raft/raft.h"
#include "raft_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

#define CHECK_SAFE(net)                                                                            \
    CHECK_MSG(net_violation(net) == NULL, "safety violation: %s", net_violation(net))

static struct raft_msg mk(uint8_t type, raft_id from, raft_id to, raft_term term)
{
    struct raft_msg m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.from = from;
    m.to = to;
    m.term = term;
    return m;
}

static raft_id elect(struct net *net, raft_id id)
{
    net_campaign(net, id);
    net_deliver(net, 100000);
    return net_leader(net);
}

static raft_term term_of(struct net *net, raft_id id)
{
    return net_status(net, id).hard_state.term;
}

static uint8_t role_of(struct net *net, raft_id id)
{
    return net_status(net, id).role;
}

static int propose_bytes(struct net *net, raft_id id, uint32_t len)
{
    static uint8_t buf[512];
    memset(buf, 'p', sizeof(buf));
    struct raft_proposal p = {.data = buf, .len = len};
    struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};
    ev.u.propose.items = &p;
    ev.u.propose.n = 1;
    return net_step(net, id, &ev);
}

static int transfer(struct net *net, raft_id leader, raft_id to)
{
    struct raft_event ev = {.type = RAFT_EVENT_TRANSFER, .u.node = to};
    return net_step(net, leader, &ev);
}

static int conf_change(struct net *net, raft_id leader, uint8_t transition, uint32_t n,
                       const struct raft_change *ch)
{
    struct raft_conf_change cc = {.transition = transition, .n_changes = n};
    if (n)
        memcpy(cc.changes, ch, n * sizeof(*ch));
    struct raft_event ev = {.type = RAFT_EVENT_CONF_CHANGE, .u.conf = &cc};
    return net_step(net, leader, &ev);
}

static int boot_empty(struct net *net, raft_id id, net_tweak_fn tweak)
{
    struct raft_boot empty;
    memset(&empty, 0, sizeof(empty));
    return net_boot_node(net, id, &empty, tweak);
}

/* Ticks every live node until `id` leads (or `limit` rounds). */
static bool run_until_leader(struct net *net, uint32_t limit)
{
    for (uint32_t i = 0; i < limit; i++) {
        if (net_leader(net))
            return true;
        net_run(net, 1);
    }
    return net_leader(net) != 0;
}

static void tweak_pv_cq(struct raft_options *o)
{
    o->pre_vote = true;
    o->check_quorum = true;
}

static void tweak_pv(struct raft_options *o)
{
    o->pre_vote = true;
}

static void tweak_cq(struct raft_options *o)
{
    o->check_quorum = true;
}

/* ---- elections ---- */

/* Two candidates at once: the one cut off from the winner stays a candidate; when it
 * rejoins with a higher term it disrupts, but with its shorter log nobody votes for it
 * (etcd-raft TestDuelingCandidates). */
static void dueling_candidates_the_one_with_the_shorter_log_loses(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    net_cut(&net, 1, 3);
    CHECK_EQ(elect(&net, 1), 1);
    net_campaign(&net, 3);
    net_deliver(&net, 100000);
    CHECK_EQ(role_of(&net, 3), RAFT_CANDIDATE); /* 2 already voted in term 2 */
    CHECK_EQ(term_of(&net, 3), 2);
    net_heal(&net);
    net_campaign(&net, 3);
    net_deliver(&net, 100000);
    for (raft_id i = 1; i <= 3; i++) {
        CHECK_EQ(role_of(&net, i), RAFT_FOLLOWER);
        CHECK_EQ(term_of(&net, i), 3);
    }
    CHECK(run_until_leader(&net, 60));
    raft_id l = net_leader(&net);
    CHECK(l == 1 || l == 2);
    net_run(&net, 2);
    CHECK_EQ(net_status(&net, 3).last_index, net_status(&net, l).last_index);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* With PreVote, the pre-candidate with the shorter log never gets to raise its term, so
 * it disrupts nothing when it rejoins (etcd-raft TestDuelingPreCandidates). */
static void dueling_pre_candidates_do_not_disrupt_the_leader(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_pv));
    net_cut(&net, 1, 3);
    CHECK_EQ(elect(&net, 1), 1);
    net_campaign(&net, 3);
    net_deliver(&net, 100000);
    CHECK(term_of(&net, 3) <= 2);
    net_heal(&net);
    net_campaign(&net, 3);
    net_deliver(&net, 100000);
    /* It learned the leader's term from the refusals, and no higher one exists. */
    CHECK_EQ(role_of(&net, 1), RAFT_LEADER);
    CHECK_EQ(term_of(&net, 1), 2);
    CHECK_EQ(role_of(&net, 3), RAFT_FOLLOWER);
    CHECK_EQ(term_of(&net, 3), 2);
    net_run(&net, 3);
    CHECK_EQ(net_leader(&net), 1);
    CHECK_EQ(term_of(&net, 3), 2);
    CHECK_EQ(net_status(&net, 3).last_index, net_status(&net, 1).last_index);
    net_free(&net);
}

/* A single voter passes its pre-election alone and becomes leader, bumping its term
 * exactly once (etcd-raft TestSingleNodePreCandidate; dqlite#689). */
static void a_single_node_pre_candidate_becomes_leader(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 1, tweak_pv_cq));
    net_campaign(&net, 1);
    CHECK_EQ(role_of(&net, 1), RAFT_LEADER);
    CHECK_EQ(term_of(&net, 1), 2);
    CHECK_EQ(net_status(&net, 1).hard_state.vote, 1);
    /* It keeps leading alone: CheckQuorum counts itself. */
    net_tick(&net, 1, 50);
    CHECK_EQ(role_of(&net, 1), RAFT_LEADER);
    CHECK_EQ(term_of(&net, 1), 2);
    net_free(&net);
}

/* Two pre-candidates both pass PreVote, split the real vote, and a later election
 * resolves it (etcd-raft TestPreVoteWithSplitVote). */
static void a_split_vote_is_resolved_by_a_later_election(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_pv));
    CHECK_EQ(elect(&net, 1), 1);
    net_isolate(&net, 1, true);
    net_campaign(&net, 2);
    net_campaign(&net, 3);
    net_deliver(&net, 100000);
    CHECK_EQ(role_of(&net, 2), RAFT_CANDIDATE);
    CHECK_EQ(role_of(&net, 3), RAFT_CANDIDATE);
    CHECK_EQ(term_of(&net, 2), 3);
    CHECK_EQ(term_of(&net, 3), 3);
    net_campaign(&net, 2);
    net_deliver(&net, 100000);
    CHECK_EQ(role_of(&net, 2), RAFT_LEADER);
    CHECK_EQ(term_of(&net, 2), 4);
    CHECK_EQ(role_of(&net, 3), RAFT_FOLLOWER);
    CHECK_EQ(term_of(&net, 3), 4);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* PreVote + CheckQuorum: when the leader really is gone, the others elect a new one once
 * their leader lease has run out, in the next term (no term inflation), and the old
 * leader steps down on its own (etcd-raft TestPreVoteWithCheckQuorum). */
static void prevote_with_check_quorum_replaces_a_lost_leader(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_pv_cq));
    CHECK(run_until_leader(&net, 60));
    raft_id old = net_leader(&net);
    raft_term t = term_of(&net, old);
    net_isolate(&net, old, true);
    raft_id l = 0;
    for (int i = 0; i < 80 && !l; i++) {
        net_run(&net, 1);
        l = net_leader(&net);
    }
    CHECK(l != 0 && l != old);
    CHECK(term_of(&net, l) == t + 1 || term_of(&net, l) == t + 2);
    net_run(&net, 10);
    CHECK(role_of(&net, old) != RAFT_LEADER); /* CheckQuorum */
    CHECK_EQ(term_of(&net, old), t);          /* and its pre-votes failed */
    net_isolate(&net, old, false);
    net_run(&net, 5);
    CHECK_EQ(net_leader(&net), l);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* A node cut off from the leader only (it still reaches the other follower) cannot
 * depose it: its pre-votes meet the follower's leader lease. On rejoining it catches up
 * under the same leader and term (etcd-raft TestDisruptiveFollowerPreVote, checkquorum). */
static void a_node_cut_off_from_the_leader_does_not_depose_it(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_pv_cq));
    CHECK_EQ(elect(&net, 1), 1);
    net_cut(&net, 1, 3);
    for (int i = 0; i < 100; i++) {
        net_run(&net, 1);
        if (i % 10 == 0)
            CHECK_OK(net_propose(&net, 1, "during"));
    }
    CHECK_EQ(net_leader(&net), 1);
    CHECK_EQ(term_of(&net, 1), 2);
    CHECK_EQ(term_of(&net, 3), 2);
    CHECK(net_status(&net, 3).last_index < net_status(&net, 1).last_index);
    net_heal(&net);
    net_run(&net, 5);
    CHECK_EQ(net_leader(&net), 1);
    CHECK_EQ(term_of(&net, 1), 2);
    CHECK_EQ(net_status(&net, 3).applied, net_status(&net, 1).applied);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* CheckQuorum without PreVote: a candidate whose votes the others ignore (leader lease)
 * keeps raising its term; once it hears the stale leader it answers with its term, the
 * leader steps down, and the candidate can be elected (etcd-raft
 * TestFreeStuckCandidateWithCheckQuorum). */
static void check_quorum_frees_a_stuck_candidate(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_cq));
    CHECK_EQ(elect(&net, 1), 1);
    net_isolate(&net, 1, true);
    net_campaign(&net, 3);
    net_deliver(&net, 100000);
    CHECK_EQ(role_of(&net, 3), RAFT_CANDIDATE);
    CHECK_EQ(term_of(&net, 2), 2); /* 2 ignored the vote: it has a leader */
    net_campaign(&net, 3);
    net_deliver(&net, 100000);
    CHECK_EQ(term_of(&net, 3), 4);
    net_isolate(&net, 1, false);
    net_tick(&net, 1, 1); /* a heartbeat of term 2 reaches 3 */
    net_deliver(&net, 100000);
    CHECK_EQ(role_of(&net, 1), RAFT_FOLLOWER);
    CHECK_EQ(term_of(&net, 1), 4);
    net_campaign(&net, 3);
    net_deliver(&net, 100000);
    CHECK_EQ(role_of(&net, 3), RAFT_LEADER);
    CHECK_EQ(term_of(&net, 3), 5);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* CheckQuorum: a candidate supersedes a live leader only once the followers' leader
 * lease (an election timeout since they last heard from it) has passed (etcd-raft
 * TestLeaderSupersedingWithCheckQuorum). */
static void check_quorum_a_leader_is_superseded_only_after_its_lease(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_cq));
    CHECK_EQ(elect(&net, 1), 1);
    net_campaign(&net, 3);
    net_deliver(&net, 100000);
    CHECK_EQ(role_of(&net, 3), RAFT_CANDIDATE);
    CHECK_EQ(role_of(&net, 1), RAFT_LEADER);
    /* 2 hears nothing for an election timeout (without timing out itself). */
    net_tick(&net, 2, 10);
    CHECK_EQ(role_of(&net, 2), RAFT_FOLLOWER);
    CHECK_EQ(term_of(&net, 2), 2);
    net_campaign(&net, 3);
    net_deliver(&net, 100000);
    CHECK_EQ(role_of(&net, 3), RAFT_LEADER);
    CHECK_EQ(role_of(&net, 1), RAFT_FOLLOWER);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* Adds node 4 as a learner of the 3-voter cluster led by 1, and lets it catch up. */
static int add_learner4(struct net *net, net_tweak_fn tweak)
{
    int rc = boot_empty(net, 4, tweak);
    if (rc)
        return rc;
    struct raft_change add = {RAFT_CHANGE_ADD_LEARNER, 4};
    rc = conf_change(net, 1, RAFT_TRANSITION_AUTO, 1, &add);
    net_deliver(net, 100000);
    net_run(net, 2);
    return rc;
}

/* A learner must still vote when asked: a voter may already count it as a voter (its
 * promotion committed) before the learner itself applied the promotion (etcd-raft
 * TestLearnerPromotion / #10998). */
static void a_learner_votes_when_asked(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_OK(add_learner4(&net, NULL));
    CHECK(raft_config_is_learner(raft_config(net.nodes[4].r), 4));
    struct raft_status st = net_status(&net, 4);
    struct raft_msg v = mk(RAFT_MSG_VOTE, 2, 4, 3);
    v.index = st.last_index;
    v.log_term = raft_term_at(net.nodes[4].r, st.last_index);
    CHECK_OK(net_recv(&net, &v));
    struct net_msg *r = net_find(&net, RAFT_MSG_VOTE_RESP, 4, 2);
    CHECK(r && !r->m.reject);
    CHECK_EQ(net_status(&net, 4).hard_state.vote, 2);
    net_free(&net);
}

/* A learner never campaigns: not on timeout, not on CAMPAIGN, not on TimeoutNow. */
static void a_learner_never_campaigns(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_OK(add_learner4(&net, NULL));
    net_clear(&net);
    raft_term t = term_of(&net, 4);
    net_tick(&net, 4, 100);
    CHECK_OK(net_campaign(&net, 4));
    struct raft_msg tn = mk(RAFT_MSG_TIMEOUT_NOW, 1, 4, t);
    CHECK_OK(net_recv(&net, &tn));
    CHECK_EQ(role_of(&net, 4), RAFT_FOLLOWER);
    CHECK_EQ(term_of(&net, 4), t);
    CHECK_EQ(net_count(&net, RAFT_MSG_VOTE, 4, 0) + net_count(&net, RAFT_MSG_PREVOTE, 4, 0), 0);
    net_free(&net);
}

/* ---- flow control ---- */

static void tweak_inflight3(struct raft_options *o)
{
    o->max_inflight_msgs = 3;
    o->max_msg_entries = 1;
}

/* Appends in flight unacknowledged to a follower in StateReplicate of the given indexes
 * (entries' last indexes), counted from the queue. */
static uint32_t appends_to(struct net *net, raft_id to, raft_index *last, uint32_t cap)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < net->q_len; i++) {
        const struct net_msg *d = &net->q[(net->q_head + i) % NET_MAX_MSGS];
        if (!d->dropped && d->m.type == RAFT_MSG_APPEND && d->m.to == to && d->m.n_entries) {
            if (n < cap)
                last[n] = d->m.index + d->m.n_entries;
            n++;
        }
    }
    return n;
}

/* StateReplicate pipelines appends up to max_inflight_msgs, then pauses; each
 * acknowledgement frees window space for as many new appends (etcd-raft
 * TestMsgAppFlowControlFull / MoveForward). */
static void replication_pauses_at_the_inflight_limit_and_acks_resume_it(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_inflight3));
    CHECK_EQ(elect(&net, 1), 1);
    for (int i = 0; i < 10; i++)
        CHECK_OK(net_propose(&net, 1, "e"));
    raft_index last[16];
    CHECK_EQ(appends_to(&net, 2, last, 16), 3);
    CHECK(last[0] == 3 && last[1] == 4 && last[2] == 5);
    net_drop(&net, RAFT_MSG_APPEND, 1, 2);
    struct raft_msg ack = mk(RAFT_MSG_APPEND_RESP, 2, 1, 2);
    ack.index = 3;
    CHECK_OK(net_recv(&net, &ack));
    CHECK_EQ(appends_to(&net, 2, last, 16), 1);
    CHECK_EQ(last[0], 6);
    net_drop(&net, RAFT_MSG_APPEND, 1, 2);
    ack.index = 5; /* acknowledges two at once */
    CHECK_OK(net_recv(&net, &ack));
    CHECK_EQ(appends_to(&net, 2, last, 16), 2);
    CHECK(last[0] == 7 && last[1] == 8);
    /* A stale duplicate acknowledgement frees nothing. */
    net_drop(&net, RAFT_MSG_APPEND, 1, 2);
    ack.index = 4;
    CHECK_OK(net_recv(&net, &ack));
    CHECK_EQ(appends_to(&net, 2, last, 16), 0);
    net_free(&net);
}

static void tweak_inflight_bytes(struct raft_options *o)
{
    o->max_inflight_bytes = 100;
    o->max_msg_entries = 1;
}

/* The byte window pauses replication as well: appends go out until the bytes in flight
 * reach max_inflight_bytes; one oversized entry still goes out alone. */
static void replication_pauses_at_the_inflight_bytes_limit(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_inflight_bytes));
    CHECK_EQ(elect(&net, 1), 1);
    for (int i = 0; i < 6; i++)
        CHECK_OK(propose_bytes(&net, 1, 40));
    raft_index last[16];
    CHECK_EQ(appends_to(&net, 2, last, 16), 3); /* 40, 80, 120 >= 100: paused */
    net_drop(&net, RAFT_MSG_APPEND, 1, 2);
    struct raft_msg ack = mk(RAFT_MSG_APPEND_RESP, 2, 1, 2);
    ack.index = last[0];
    CHECK_OK(net_recv(&net, &ack));
    CHECK_EQ(appends_to(&net, 2, last, 16), 1);
    net_drop(&net, RAFT_MSG_APPEND, 1, 2);
    ack.index = last[0];
    CHECK_OK(net_recv(&net, &ack)); /* everything acknowledged: 0 bytes in flight */
    CHECK_OK(propose_bytes(&net, 1, 300));
    CHECK_OK(propose_bytes(&net, 1, 1));
    CHECK_EQ(appends_to(&net, 2, last, 16), 3); /* 2 queued entries, then the big one */
    net_free(&net);
}

/* StateProbe sends one append, then waits: nothing more until a heartbeat response says
 * the follower is alive, which releases exactly one more (etcd-raft
 * TestSendAppendForProgressProbe, heartbeat_resp_recovers_from_probing). */
static void a_probing_leader_sends_one_append_per_heartbeat(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    net_campaign(&net, 1);
    net_deliver_only(&net, RAFT_MSG_VOTE, 0, 0);
    net_deliver_only(&net, RAFT_MSG_VOTE_RESP, 0, 0);
    CHECK_EQ(role_of(&net, 1), RAFT_LEADER);
    CHECK_EQ(net_count(&net, RAFT_MSG_APPEND, 1, 2), 1); /* the no-op probe */
    net_clear(&net);                                     /* lost */
    for (int i = 0; i < 5; i++)
        CHECK_OK(net_propose(&net, 1, "e"));
    CHECK_EQ(net_count(&net, RAFT_MSG_APPEND, 1, 2), 0);
    for (int round = 0; round < 4; round++) {
        net_tick(&net, 1, 1);
        CHECK_EQ(net_count(&net, RAFT_MSG_APPEND, 1, 2), 0);
        net_deliver_only(&net, RAFT_MSG_HEARTBEAT, 1, 0);
        net_deliver_only(&net, RAFT_MSG_HEARTBEAT_RESP, 0, 1);
        CHECK_EQ(net_count(&net, RAFT_MSG_APPEND, 1, 2), 1);
        struct net_msg *a = net_find(&net, RAFT_MSG_APPEND, 1, 2);
        CHECK_EQ(a->m.index, 1);
        CHECK_EQ(a->m.n_entries, 6);
        net_clear(&net);
    }
    net_free(&net);
}

static bool drop_appends_to_2(struct net *net, const struct raft_msg *m, void *ctx)
{
    (void)net;
    (void)ctx;
    return m->type == RAFT_MSG_APPEND && m->to == 2;
}

/* RAFT_EVENT_UNREACHABLE sends a replicating follower back to probing: a follower whose
 * appends were all lost (window full) is caught up once the transport reports it. */
static void an_unreachable_report_sends_a_follower_back_to_probing(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_inflight3));
    CHECK_EQ(elect(&net, 1), 1);
    net.filter = drop_appends_to_2;
    for (int i = 0; i < 6; i++) {
        CHECK_OK(net_propose(&net, 1, "e"));
        net_deliver(&net, 100000);
    }
    net.filter = NULL;
    struct raft_event ev = {.type = RAFT_EVENT_UNREACHABLE, .u.node = 2};
    CHECK_OK(net_step(&net, 1, &ev));
    ev.u.node = 9; /* unknown: ignored */
    CHECK_OK(net_step(&net, 1, &ev));
    net_run(&net, 3);
    CHECK_EQ(net_status(&net, 2).last_index, net_status(&net, 1).last_index);
    CHECK_EQ(net_status(&net, 2).applied, net_status(&net, 1).applied);
    net_free(&net);
}

/* A follower in StateReplicate whose in-flight window filled up with appends that were
 * all lost must recover once messages flow again: its heartbeat responses have to
 * release a probe (etcd-raft sends an empty append on a heartbeat response even when
 * the window is full, "allowing it to recover from situations in which all the messages
 * that filled up Inflights in the first place were dropped"). */
static void a_follower_whose_full_window_was_lost_recovers(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_inflight3));
    CHECK_EQ(elect(&net, 1), 1);
    net.filter = drop_appends_to_2;
    for (int i = 0; i < 6; i++) {
        CHECK_OK(net_propose(&net, 1, "e"));
        net_deliver(&net, 100000);
    }
    net.filter = NULL;
    net_run(&net, 30);
    CHECK_EQ(net_status(&net, 2).last_index, net_status(&net, 1).last_index);
    CHECK_EQ(net_status(&net, 2).applied, net_status(&net, 1).applied);
    net_free(&net);
}

/* ---- fast log back-off ---- */

struct reject_count {
    uint32_t rejects;
};

static bool count_rejects(struct net *net, const struct raft_msg *m, void *ctx)
{
    (void)net;
    struct reject_count *c = ctx;
    if (m->type == RAFT_MSG_APPEND_RESP && m->reject && m->from == 2)
        c->rejects++;
    return false;
}

/* A follower with a long divergent tail is repaired in a couple of round trips, not one
 * per entry: rejections carry a (hint, term) that lets the leader skip whole terms
 * (paper §5.3 "optimization"; etcd-raft TestFastLogRejection). */
static void fast_back_off_repairs_a_long_divergent_tail_in_few_round_trips(void)
{
    static raft_term a_leader[50], a_follower[100], b_leader[20], b_follower[60], c_leader[100];
    for (int i = 0; i < 50; i++)
        a_leader[i] = 3;
    for (int i = 0; i < 100; i++)
        a_follower[i] = 2, c_leader[i] = 2 + (raft_term)(i / 10);
    for (int i = 0; i < 20; i++)
        b_leader[i] = i < 10 ? 2 : 5;
    for (int i = 0; i < 60; i++)
        b_follower[i] = i < 10 ? 2 : 4;
    static const raft_term c_follower[] = {2};
    static const struct {
        const raft_term *leader;
        size_t nl;
        const raft_term *follower;
        size_t nf;
        uint32_t max_rejects;
    } cases[] = {
        {a_leader, 50, a_follower, 100, 1},  /* long tail of an older term */
        {b_leader, 20, b_follower, 60, 1},   /* longer tail of a newer (but lost) term */
        {c_leader, 100, c_follower, 1, 1},   /* far behind */
        {c_leader, 100, a_follower, 100, 2}, /* the same length, terms diverge at 12 */
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct net net;
        CHECK_OK(net_init(&net, 3, NULL));
        raft_term lt = cases[k].leader[cases[k].nl - 1];
        CHECK_OK(net_boot_terms(&net, 1, 3, cases[k].leader, cases[k].nl, lt, NULL));
        CHECK_OK(net_boot_terms(&net, 2, 3, cases[k].follower, cases[k].nf, lt, NULL));
        CHECK_OK(net_boot_terms(&net, 3, 3, cases[k].leader, cases[k].nl, lt, NULL));
        struct reject_count c = {0};
        net.filter = count_rejects;
        net.filter_ctx = &c;
        CHECK_EQ(elect(&net, 1), 1);
        net_run(&net, 2);
        struct raft_status l = net_status(&net, 1), f = net_status(&net, 2);
        CHECK_EQ(f.last_index, l.last_index);
        CHECK_EQ(raft_term_at(net.nodes[2].r, f.last_index), lt + 1);
        CHECK_MSG(c.rejects <= cases[k].max_rejects, "case %zu: %u rejections", k, c.rejects);
        CHECK_SAFE(&net);
        net_free(&net);
    }
}

/* The leader's commit index is the highest index a quorum matches, but only if that
 * entry is of the leader's term; otherwise it stays put (etcd-raft TestCommit,
 * TestLeaderOnlyCommitsLogFromCurrentTerm; Figure 8; canary old_term_commit). The
 * leader's log: 1:t1 2:t2 3:t2, it leads term 3, its no-op is 4:t3. */
static void the_commit_index_is_the_quorum_match_of_a_current_term_entry(void)
{
    static const raft_term log[] = {2, 2};
    static const struct {
        uint32_t size;
        raft_index match[4]; /* of followers 2.. (0: no ack) */
        raft_index commit;
    } cases[] = {
        {3, {3, 0}, 1},       {3, {2, 3}, 1},       {3, {4, 0}, 4},       {3, {3, 4}, 4},
        {3, {2, 2}, 1},       {5, {3, 3, 0, 0}, 1}, {5, {4, 3, 3, 3}, 1}, {5, {4, 4, 0, 0}, 4},
        {5, {4, 4, 3, 3}, 4}, {5, {3, 4, 2, 4}, 4}, {5, {2, 2, 2, 2}, 1},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct net net;
        CHECK_OK(net_init(&net, cases[k].size, NULL));
        for (raft_id i = 1; i <= cases[k].size; i++)
            CHECK_OK(net_boot_terms(&net, i, cases[k].size, log, 2, 2, NULL));
        net_campaign(&net, 1);
        net_clear(&net);
        for (raft_id i = 2; i <= cases[k].size; i++) {
            struct raft_msg v = mk(RAFT_MSG_VOTE_RESP, i, 1, 3);
            CHECK_OK(net_recv(&net, &v));
        }
        CHECK_EQ(role_of(&net, 1), RAFT_LEADER);
        CHECK_EQ(net_status(&net, 1).last_index, 4);
        net_clear(&net);
        for (uint32_t i = 0; i + 1 < cases[k].size; i++) {
            if (!cases[k].match[i])
                continue;
            struct raft_msg a = mk(RAFT_MSG_APPEND_RESP, 2 + i, 1, 3);
            a.index = cases[k].match[i];
            CHECK_OK(net_recv(&net, &a));
        }
        CHECK_MSG(net_status(&net, 1).hard_state.commit == cases[k].commit,
                  "case %zu: commit %llu, want %llu", k,
                  (unsigned long long)net_status(&net, 1).hard_state.commit,
                  (unsigned long long)cases[k].commit);
        net_free(&net);
    }
}

/* ---- limits and errors ---- */

static void tweak_uncommitted100(struct raft_options *o)
{
    o->max_uncommitted_bytes = 100;
}

/* Proposals beyond max_uncommitted_bytes of uncommitted data are refused with
 * ASPEN_E_BUSY and accepted again once the tail commits; a lone proposal larger than the
 * limit still passes when nothing is pending (etcd-raft TestUncommittedEntryLimit). */
static void the_uncommitted_bytes_limit_refuses_proposals_until_commit(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_uncommitted100));
    CHECK_EQ(elect(&net, 1), 1);
    net_isolate(&net, 2, true);
    net_isolate(&net, 3, true);
    CHECK_OK(propose_bytes(&net, 1, 40));
    CHECK_OK(propose_bytes(&net, 1, 40));
    raft_index last = net_status(&net, 1).last_index;
    CHECK_ERR(propose_bytes(&net, 1, 40), ASPEN_E_BUSY);
    CHECK_EQ(net_status(&net, 1).last_index, last);
    CHECK_OK(propose_bytes(&net, 1, 20)); /* exactly at the limit */
    CHECK_ERR(propose_bytes(&net, 1, 1), ASPEN_E_BUSY);
    net_heal(&net);
    net_run(&net, 3);
    CHECK_EQ(net_status(&net, 1).hard_state.commit, net_status(&net, 1).last_index);
    CHECK_OK(propose_bytes(&net, 1, 300)); /* alone: let through */
    CHECK_ERR(propose_bytes(&net, 1, 1), ASPEN_E_BUSY);
    net_run(&net, 3);
    CHECK_OK(propose_bytes(&net, 1, 40));
    net_free(&net);
}

/* Proposals, configuration changes and transfers on a non-leader fail with
 * ASPEN_E_NOT_LEADER and update->leader names the leader if known. */
static void requests_on_a_non_leader_fail_with_a_leader_hint(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_ERR(net_propose(&net, 2, "x"), ASPEN_E_NOT_LEADER);
    CHECK_EQ(net.last_up.leader, 1);
    CHECK(!net.last_up.must_persist);
    struct raft_change add = {RAFT_CHANGE_ADD_LEARNER, 4};
    CHECK_ERR(conf_change(&net, 2, RAFT_TRANSITION_AUTO, 1, &add), ASPEN_E_NOT_LEADER);
    CHECK_EQ(net.last_up.leader, 1);
    CHECK_ERR(transfer(&net, 3, 2), ASPEN_E_NOT_LEADER);
    CHECK_EQ(net.last_up.leader, 1);
    CHECK_EQ(net_status(&net, 2).last_index, net_status(&net, 1).last_index);
    /* A candidate knows no leader. */
    net_isolate(&net, 3, true);
    net_campaign(&net, 3);
    CHECK_ERR(net_propose(&net, 3, "x"), ASPEN_E_NOT_LEADER);
    CHECK_EQ(net.last_up.leader, 0);
    CHECK_ERR(net_read(&net, 3, 1), ASPEN_E_NOT_LEADER);
    net_free(&net);
}

/* ---- reads ---- */

/* Reads are told apart by arrival, not by the shell's ctx: two reads with the same ctx
 * get two answers, each at the commit index of its own time (raft#397 / etcd#20418). */
static void duplicate_read_contexts_get_distinct_answers(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_run(&net, 1);
    CHECK_OK(net_read(&net, 1, 5));
    CHECK_OK(net_propose(&net, 1, "w"));
    for (int i = 0; i < 3; i++) {
        net_deliver_only(&net, RAFT_MSG_APPEND, 0, 0);
        net_deliver_only(&net, RAFT_MSG_APPEND_RESP, 0, 0);
    }
    CHECK_EQ(net_status(&net, 1).hard_state.commit, 3);
    CHECK_OK(net_read(&net, 1, 5));
    CHECK_EQ(net.nodes[1].n_reads, 0);
    net_deliver(&net, 100000);
    CHECK_EQ(net.nodes[1].n_reads, 2);
    CHECK_EQ(net.nodes[1].reads[0].ctx, 5);
    CHECK_EQ(net.nodes[1].reads[0].index, 2);
    CHECK_EQ(net.nodes[1].reads[1].ctx, 5);
    CHECK_EQ(net.nodes[1].reads[1].index, 3);
    CHECK_EQ(net.nodes[1].reads[1].err, 0);
    net_free(&net);
}

/* A read waiting at a leader that loses leadership fails with ASPEN_E_NOT_LEADER, both a
 * local one and one forwarded by a follower (etcd-raft TestNodeReadIndexToOldLeader). */
static void a_read_on_a_leader_that_loses_leadership_fails(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_run(&net, 1);
    net.drop_type[RAFT_MSG_HEARTBEAT_RESP] = true;
    CHECK_OK(net_read(&net, 1, 9));
    CHECK_OK(net_read(&net, 2, 7));
    net_deliver(&net, 100000);
    CHECK_EQ(net.nodes[1].n_reads, 0);
    CHECK_EQ(net.nodes[2].n_reads, 0);
    struct raft_msg up = mk(RAFT_MSG_APPEND_RESP, 3, 1, 5);
    CHECK_OK(net_recv(&net, &up));
    CHECK_EQ(role_of(&net, 1), RAFT_FOLLOWER);
    CHECK_EQ(net.nodes[1].n_reads, 1);
    CHECK_EQ(net.nodes[1].reads[0].ctx, 9);
    CHECK_EQ(net.nodes[1].reads[0].err, ASPEN_E_NOT_LEADER);
    CHECK_EQ(net.nodes[1].reads[0].index, 0);
    net_deliver(&net, 100000);
    CHECK_EQ(net.nodes[2].n_reads, 1);
    CHECK_EQ(net.nodes[2].reads[0].ctx, 7);
    CHECK_EQ(net.nodes[2].reads[0].err, ASPEN_E_NOT_LEADER);
    net_free(&net);
}

/* A new leader may hold committed entries it does not know are committed: it answers no
 * read before an entry of its own term commits (thesis §6.4; etcd#7331; canary
 * read_before_term_commit), even though heartbeat rounds are acknowledged. */
static void a_new_leader_answers_reads_only_after_committing_in_its_term(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_OK(net_propose(&net, 1, "a"));
    net_deliver_only(&net, RAFT_MSG_APPEND, 1, 0);
    net_deliver_only(&net, RAFT_MSG_APPEND_RESP, 0, 1);
    CHECK_EQ(net_status(&net, 1).hard_state.commit, 3);
    net_clear(&net); /* 2 and 3 never learn that 3 is committed */
    CHECK_EQ(net_status(&net, 2).hard_state.commit, 2);
    net_isolate(&net, 1, true);
    net_campaign(&net, 2);
    net_deliver_only(&net, RAFT_MSG_VOTE, 0, 0);
    net_deliver_only(&net, RAFT_MSG_VOTE_RESP, 0, 0);
    CHECK_EQ(role_of(&net, 2), RAFT_LEADER);
    net.drop_type[RAFT_MSG_APPEND] = true;
    CHECK_OK(net_read(&net, 2, 1));
    for (int i = 0; i < 3; i++)
        net_run(&net, 1);
    CHECK_EQ(net.nodes[2].n_reads, 0);
    net.drop_type[RAFT_MSG_APPEND] = false;
    net_run(&net, 3);
    CHECK_EQ(net.nodes[2].n_reads, 1);
    CHECK_EQ(net.nodes[2].reads[0].err, 0);
    CHECK(net.nodes[2].reads[0].index >= 4);
    net_free(&net);
}

static void tweak_lease(struct raft_options *o)
{
    o->pre_vote = true;
    o->check_quorum = true;
    o->lease_reads = true;
    o->lease_drift_ticks = 2;
}

/* With lease reads a freshly started core refuses votes for one election timeout (it may
 * have promised a lease before a restart): let that pass before electing anyone. */
static void pass_boot_lease(struct net *net)
{
    for (raft_id i = 1; i <= net->n; i++)
        net_tick(net, i, ASPEN_RAFT_DEFAULT_ELECTION_TICKS);
    net_clear(net);
}

/* Lease reads (thesis §6.4.1): after a heartbeat round acknowledged by a quorum, reads
 * are answered at once, without a round trip, until (round start + election timeout -
 * drift); after that they need a round again. */
static void lease_reads_skip_the_round_trip_until_the_lease_expires(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_lease));
    pass_boot_lease(&net);
    CHECK_EQ(elect(&net, 1), 1);
    net_run(&net, 3); /* the last round, started at the last tick, is acknowledged */
    CHECK_OK(net_read(&net, 1, 100));
    CHECK_EQ(net.last_up.n_reads, 1);
    CHECK_EQ(net.nodes[1].reads[0].index, net_status(&net, 1).hard_state.commit);
    net_isolate(&net, 2, true);
    net_isolate(&net, 3, true);
    for (uint32_t k = 1; k <= 8; k++) {
        net_tick(&net, 1, 1);
        CHECK_OK(net_read(&net, 1, 100 + k));
        CHECK_MSG(net.last_up.n_reads == (k <= 7 ? 1u : 0u), "tick +%u: %zu answers", k,
                  net.last_up.n_reads);
    }
    CHECK_EQ(net.nodes[1].n_reads, 8);
    net_free(&net);
}

/* Without lease_reads every read waits for a heartbeat round. */
static void without_lease_reads_every_read_takes_a_round_trip(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_pv_cq));
    CHECK_EQ(elect(&net, 1), 1);
    net_run(&net, 3);
    CHECK_OK(net_read(&net, 1, 1));
    CHECK_EQ(net.last_up.n_reads, 0);
    CHECK(net_count(&net, RAFT_MSG_HEARTBEAT, 1, 0) > 0);
    net_deliver(&net, 100000);
    CHECK_EQ(net.nodes[1].n_reads, 1);
    net_free(&net);
}

/* The target of a transfer campaigns ignoring the followers' lease, so the leader must
 * not serve lease reads once a transfer started. */
static void no_lease_read_during_a_transfer(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_lease));
    pass_boot_lease(&net);
    CHECK_EQ(elect(&net, 1), 1);
    net_run(&net, 3);
    CHECK_OK(net_read(&net, 1, 1));
    CHECK_EQ(net.last_up.n_reads, 1);
    CHECK_OK(transfer(&net, 1, 2));
    /* TimeoutNow waits until a quorum acknowledged the transfer's announcement. */
    CHECK_EQ(net_count(&net, RAFT_MSG_TIMEOUT_NOW, 1, 2), 0);
    net_deliver(&net, 4); /* the flagged heartbeats and their acknowledgements */
    CHECK_EQ(net_count(&net, RAFT_MSG_TIMEOUT_NOW, 1, 2), 1);
    net_drop(&net, RAFT_MSG_TIMEOUT_NOW, 1, 2);
    CHECK_OK(net_read(&net, 1, 2));
    CHECK_EQ(net.last_up.n_reads, 0);
    net_deliver(&net, 100000); /* answered through a heartbeat round instead */
    CHECK_EQ(net.nodes[1].n_reads, 2);
    CHECK_EQ(net.nodes[1].reads[1].err, 0);
    net_free(&net);
}

/* A lease read must never miss a write committed before it: here the transfer target
 * processes the TimeoutNow late (a process pause), after the leader abandoned the
 * transfer and renewed its lease; the target's transfer campaign bypasses the voters'
 * leader lease and wins, commits a write, and the old leader still serves reads from its
 * lease. */
static void a_late_timeout_now_does_not_break_lease_reads(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_lease));
    pass_boot_lease(&net);
    CHECK_EQ(elect(&net, 1), 1);
    net_run(&net, 3);
    CHECK_OK(transfer(&net, 1, 2));
    net_deliver(&net, 4); /* the announcement's heartbeats and acknowledgements */
    struct net_msg *q = net_find(&net, RAFT_MSG_TIMEOUT_NOW, 1, 2);
    CHECK(q != NULL);
    struct raft_msg tn = q->m; /* held by the paused target */
    q->dropped = true;
    net_run(&net, 12); /* the transfer is abandoned, the lease renewed */
    CHECK_OK(net_propose(&net, 1, "not busy"));
    net_run(&net, 1);
    CHECK_OK(net_read(&net, 1, 1));
    CHECK_EQ(net.last_up.n_reads, 1); /* served from the lease again */
    net_isolate(&net, 1, true);
    CHECK_OK(net_recv(&net, &tn)); /* the target wakes up */
    net_deliver(&net, 100000);
    /* Node 3's latest word from its leader announced no transfer: it keeps its lease and
     * refuses the late campaign. Whatever happens, no read may be stale. */
    CHECK(role_of(&net, 2) != RAFT_LEADER);
    if (role_of(&net, 2) == RAFT_LEADER) {
        CHECK_OK(net_propose(&net, 2, "w"));
        net_deliver(&net, 100000);
    }
    raft_index committed = net_status(&net, 2).hard_state.commit;
    CHECK_OK(net_read(&net, 1, 2));
    for (size_t i = 0; i < net.nodes[1].n_reads; i++)
        if (net.nodes[1].reads[i].ctx == 2 && !net.nodes[1].reads[i].err)
            CHECK_MSG(net.nodes[1].reads[i].index >= committed,
                      "stale lease read at %llu; %llu committed by leader 2",
                      (unsigned long long)net.nodes[1].reads[i].index,
                      (unsigned long long)committed);
    net_free(&net);
}

/* The same with a follower restart: a restarted follower has forgotten that it heard from
 * the leader, grants its vote at once, and a new leader commits while the old one still
 * serves lease reads. */
static void a_restarted_follower_does_not_break_lease_reads(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_lease));
    pass_boot_lease(&net);
    CHECK_EQ(elect(&net, 1), 1);
    net_run(&net, 3);
    net_cut(&net, 1, 3);
    for (int i = 0; i < 40 && role_of(&net, 3) == RAFT_FOLLOWER; i++)
        net_run(&net, 1);
    CHECK_EQ(role_of(&net, 3), RAFT_PRE_CANDIDATE); /* 2 ignores it: leader lease */
    CHECK_EQ(net_leader(&net), 1);
    CHECK_OK(net_restart(&net, 2));
    net_campaign(&net, 3);
    net_deliver(&net, 100000);
    /* The restarted voter keeps the lease it may have promised for one election
     * timeout: 3 gets no vote, and whatever happens no read may be stale. */
    CHECK(role_of(&net, 3) != RAFT_LEADER);
    if (role_of(&net, 3) == RAFT_LEADER) {
        CHECK_OK(net_propose(&net, 3, "w"));
        net_deliver(&net, 100000);
    }
    raft_index committed = net_status(&net, 3).hard_state.commit;
    net.nodes[1].n_reads = 0;
    CHECK_OK(net_read(&net, 1, 2));
    for (size_t i = 0; i < net.nodes[1].n_reads; i++)
        if (net.nodes[1].reads[i].ctx == 2 && !net.nodes[1].reads[i].err)
            CHECK_MSG(net.nodes[1].reads[i].index >= committed,
                      "stale lease read at %llu; %llu committed by leader 3",
                      (unsigned long long)net.nodes[1].reads[i].index,
                      (unsigned long long)committed);
    net_free(&net);
}

/* ---- leadership transfer (thesis §3.10) ---- */

/* A transfer to a lagging follower first brings its log up to date and only then sends
 * TimeoutNow; the target wins at once although PreVote and leader leases are on
 * (etcd-raft TestLeaderTransferToSlowFollower). */
static void a_transfer_to_a_lagging_follower_catches_it_up_first(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_pv_cq));
    CHECK_EQ(elect(&net, 1), 1);
    net_isolate(&net, 3, true);
    for (int i = 0; i < 5; i++)
        CHECK_OK(net_propose(&net, 1, "behind"));
    net_deliver(&net, 100000);
    net_isolate(&net, 3, false);
    raft_term t = term_of(&net, 1);
    CHECK_OK(transfer(&net, 1, 3));
    CHECK_EQ(net_count(&net, RAFT_MSG_TIMEOUT_NOW, 1, 3), 0);
    CHECK(net_count(&net, RAFT_MSG_APPEND, 1, 3) > 0);
    net_deliver(&net, 100000);
    CHECK_EQ(net_leader(&net), 3);
    CHECK_EQ(term_of(&net, 3), t + 1);
    net_run(&net, 2);
    CHECK_EQ(net_status(&net, 1).applied, net_status(&net, 3).applied);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* A transfer to the leader itself does nothing (etcd-raft TestLeaderTransferToSelf). */
static void a_transfer_to_self_is_a_noop(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_clear(&net);
    CHECK_OK(transfer(&net, 1, 1));
    CHECK_EQ(net.q_len, 0);
    CHECK_OK(net_propose(&net, 1, "still leading"));
    CHECK_EQ(role_of(&net, 1), RAFT_LEADER);
    net_free(&net);
}

/* A transfer to a node that is not a voter (unknown, a learner, or 0) is refused with
 * ASPEN_E_INVALID and changes nothing (etcd-raft TestLeaderTransferToNonExistingNode). */
static void a_transfer_to_a_non_voter_is_invalid(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_OK(add_learner4(&net, NULL));
    const raft_id bad[] = {7, 4, 0};
    for (size_t k = 0; k < 3; k++) {
        net_clear(&net);
        CHECK_ERR(transfer(&net, 1, bad[k]), ASPEN_E_INVALID);
        CHECK_EQ(net.q_len, 0);
        CHECK_OK(net_propose(&net, 1, "not busy"));
    }
    net_free(&net);
}

/* A transfer whose target never takes over is abandoned after an election timeout, and
 * the leader accepts proposals again (etcd-raft TestLeaderTransferTimeout). */
static void a_transfer_times_out_after_an_election_timeout(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_isolate(&net, 2, true);
    CHECK_OK(transfer(&net, 1, 2));
    CHECK_ERR(net_propose(&net, 1, "x"), ASPEN_E_BUSY);
    net_run(&net, 9);
    CHECK_ERR(net_propose(&net, 1, "x"), ASPEN_E_BUSY);
    net_run(&net, 1);
    CHECK_OK(net_propose(&net, 1, "x"));
    CHECK_EQ(net_leader(&net), 1);
    net_free(&net);
}

/* A second transfer replaces the first (etcd-raft TestLeaderTransferSecondTransferToAnother
 * Node). */
static void a_second_transfer_replaces_the_first(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_isolate(&net, 2, true);
    CHECK_OK(transfer(&net, 1, 2));
    net_deliver(&net, 100000);
    CHECK_OK(transfer(&net, 1, 3));
    net_deliver(&net, 100000);
    CHECK_EQ(net_leader(&net), 3);
    net_free(&net);
}

static int behind_compaction(struct net *net);

/* A transfer to a follower behind the leader's compaction point goes through a snapshot
 * first (etcd-raft TestLeaderTransferAfterSnapshot). */
static void a_transfer_to_a_follower_behind_compaction_goes_through_a_snapshot(void)
{
    struct net net;
    CHECK_OK(behind_compaction(&net));
    CHECK_OK(transfer(&net, 1, 3));
    CHECK_EQ(net_count(&net, RAFT_MSG_TIMEOUT_NOW, 1, 3), 0);
    bool snapshot = false;
    for (int i = 0; i < 20 && net_leader(&net) != 3; i++) {
        snapshot = snapshot || net_find(&net, RAFT_MSG_SNAPSHOT, 1, 3) != NULL;
        net_deliver(&net, 1);
    }
    CHECK(snapshot);
    CHECK_EQ(net_leader(&net), 3);
    CHECK(net_status(&net, 3).snapshot_index > 0);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* A leader in the middle of a transfer that learns of a higher term steps down, and the
 * transfer does not outlive its leadership (etcd-raft
 * TestLeaderTransferReceiveHigherTermVote). */
static void a_transferring_leader_steps_down_on_a_higher_term(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_isolate(&net, 3, true);
    CHECK_OK(transfer(&net, 1, 3));
    CHECK_ERR(net_propose(&net, 1, "x"), ASPEN_E_BUSY);
    CHECK_EQ(elect(&net, 2), 2);
    CHECK_EQ(role_of(&net, 1), RAFT_FOLLOWER);
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_OK(net_propose(&net, 1, "x"));
    net_free(&net);
}

/* A learner's read goes through the leader like a follower's (etcd-raft
 * TestReadOnlyWithLearner). */
static void a_learner_read_is_served_through_the_leader(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_OK(add_learner4(&net, NULL));
    CHECK_OK(net_propose(&net, 1, "v"));
    net_deliver(&net, 100000);
    CHECK_OK(net_read(&net, 4, 11));
    net_deliver(&net, 100000);
    CHECK_EQ(net.nodes[4].n_reads, 1);
    CHECK_EQ(net.nodes[4].reads[0].ctx, 11);
    CHECK_EQ(net.nodes[4].reads[0].err, 0);
    CHECK_EQ(net.nodes[4].reads[0].index, net_status(&net, 1).hard_state.commit);
    net_free(&net);
}

/* ---- membership ---- */

/* Removing a follower shrinks the quorum to the remaining voters, and the removed node,
 * even if it keeps running and never learns of its removal, disrupts nothing (PreVote and
 * CheckQuorum; etcd-raft TestRemoveNode, thesis §4.2.3). */
static void removing_a_follower_shrinks_the_quorum(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_pv_cq));
    CHECK_EQ(elect(&net, 1), 1);
    struct raft_change rm = {RAFT_CHANGE_REMOVE, 3};
    CHECK_OK(conf_change(&net, 1, RAFT_TRANSITION_AUTO, 1, &rm));
    net_deliver(&net, 100000);
    net_run(&net, 2);
    const struct raft_config *c = raft_config(net.nodes[1].r);
    CHECK_EQ(c->n_voters, 2);
    CHECK(!raft_config_is_voter(c, 3));
    raft_term t = term_of(&net, 1);
    net_run(&net, 100);
    CHECK_EQ(net_leader(&net), 1);
    CHECK_EQ(term_of(&net, 1), t);
    /* Two voters: a proposal needs both. */
    net_isolate(&net, 2, true);
    CHECK_OK(net_propose(&net, 1, "needs 2"));
    net_deliver(&net, 100000);
    raft_index c1 = net_status(&net, 1).hard_state.commit;
    CHECK(c1 < net_status(&net, 1).last_index);
    net_isolate(&net, 2, false);
    net_run(&net, 3);
    CHECK_EQ(net_status(&net, 1).hard_state.commit, net_status(&net, 1).last_index);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* A voter can be demoted to a learner in one simple change: it keeps replicating but no
 * longer counts or campaigns. */
static void a_voter_is_demoted_to_learner(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    struct raft_change d = {RAFT_CHANGE_ADD_LEARNER, 3};
    CHECK_OK(conf_change(&net, 1, RAFT_TRANSITION_AUTO, 1, &d));
    net_deliver(&net, 100000);
    net_run(&net, 2);
    for (raft_id i = 1; i <= 3; i++) {
        const struct raft_config *c = raft_config(net.nodes[i].r);
        CHECK_EQ(c->n_voters, 2);
        CHECK(raft_config_is_learner(c, 3));
        CHECK_EQ(c->n_outgoing, 0);
    }
    CHECK_OK(net_propose(&net, 1, "replicated"));
    net_deliver(&net, 100000);
    net_run(&net, 2);
    CHECK_EQ(net_status(&net, 3).applied, net_status(&net, 1).applied);
    net_isolate(&net, 1, true);
    net_clear(&net);
    net_tick(&net, 3, 100);
    CHECK_EQ(role_of(&net, 3), RAFT_FOLLOWER);
    CHECK_EQ(net_count(&net, RAFT_MSG_VOTE, 3, 0), 0);
    net_free(&net);
}

/* Joint consensus with an explicit leave (thesis §4.3): the joint configuration stays
 * until an empty change leaves it; meanwhile decisions need a majority of both the old
 * and the new voters, and no other change is accepted. */
static void joint_consensus_with_explicit_leave(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_OK(boot_empty(&net, 4, NULL));
    struct raft_change ch[2] = {{RAFT_CHANGE_ADD_VOTER, 4}, {RAFT_CHANGE_REMOVE, 3}};
    CHECK_OK(conf_change(&net, 1, RAFT_TRANSITION_EXPLICIT, 2, ch));
    net_deliver(&net, 100000);
    net_run(&net, 5);
    const struct raft_config *c = raft_config(net.nodes[1].r);
    CHECK_EQ(c->n_outgoing, 3);
    CHECK_EQ(c->n_voters, 3);
    CHECK(!c->auto_leave);
    CHECK(raft_config_is_voter(raft_config(net.nodes[4].r), 4));
    struct raft_change more = {RAFT_CHANGE_ADD_LEARNER, 5};
    CHECK_ERR(conf_change(&net, 1, RAFT_TRANSITION_AUTO, 1, &more), ASPEN_E_INVALID);
    CHECK_ERR(conf_change(&net, 1, RAFT_TRANSITION_EXPLICIT, 1, &more), ASPEN_E_INVALID);
    /* Old majority {1,3} alone is not enough: the new voters {1,2,4} need two. */
    net_isolate(&net, 2, true);
    net_isolate(&net, 4, true);
    CHECK_OK(net_propose(&net, 1, "joint"));
    net_deliver(&net, 100000);
    net_run(&net, 2);
    raft_index last = net_status(&net, 1).last_index;
    CHECK(net_status(&net, 1).hard_state.commit < last);
    net_heal(&net);
    net_run(&net, 3);
    CHECK_EQ(net_status(&net, 1).hard_state.commit, last);
    /* New majority {1,4} alone is not enough either: the old voters {1,2,3} need two. */
    net_isolate(&net, 2, true);
    net_isolate(&net, 3, true);
    CHECK_OK(net_propose(&net, 1, "joint 2"));
    net_deliver(&net, 100000);
    net_run(&net, 3);
    last = net_status(&net, 1).last_index;
    CHECK_EQ(raft_term_at(net.nodes[4].r, last), term_of(&net, 1)); /* 4 has it */
    CHECK(net_status(&net, 1).hard_state.commit < last);
    net_heal(&net);
    net_run(&net, 3);
    CHECK_EQ(net_status(&net, 1).hard_state.commit, last);
    /* Leave. */
    CHECK_OK(conf_change(&net, 1, RAFT_TRANSITION_EXPLICIT, 0, NULL));
    net_deliver(&net, 100000);
    net_run(&net, 3);
    for (raft_id i = 1; i <= 4; i++) {
        if (i == 3)
            continue;
        c = raft_config(net.nodes[i].r);
        CHECK_EQ(c->n_outgoing, 0);
        CHECK_EQ(c->n_voters, 3);
        CHECK(!raft_config_is_voter(c, 3));
    }
    /* Leaving when not joint is invalid. */
    CHECK_ERR(conf_change(&net, 1, RAFT_TRANSITION_EXPLICIT, 0, NULL), ASPEN_E_INVALID);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* A new leader whose log holds a configuration change it has not applied refuses
 * another until that one is applied (etcd-raft TestNewLeaderPendingConfig). */
static void a_new_leader_refuses_a_change_until_its_pending_one_applies(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    struct raft_change add4 = {RAFT_CHANGE_ADD_LEARNER, 4};
    CHECK_OK(conf_change(&net, 1, RAFT_TRANSITION_AUTO, 1, &add4));
    net_deliver_only(&net, RAFT_MSG_APPEND, 1, 2);
    net_clear(&net);
    net_isolate(&net, 1, true);
    net_campaign(&net, 2);
    net_deliver_only(&net, RAFT_MSG_VOTE, 0, 0);
    net_deliver_only(&net, RAFT_MSG_VOTE_RESP, 0, 0);
    CHECK_EQ(role_of(&net, 2), RAFT_LEADER);
    struct raft_change add5 = {RAFT_CHANGE_ADD_LEARNER, 5};
    CHECK_ERR(conf_change(&net, 2, RAFT_TRANSITION_AUTO, 1, &add5), ASPEN_E_BUSY);
    net_deliver(&net, 100000);
    CHECK(raft_config_is_learner(raft_config(net.nodes[2].r), 4));
    CHECK_OK(conf_change(&net, 2, RAFT_TRANSITION_AUTO, 1, &add5));
    net_free(&net);
}

/* Replacing the leader through a joint change: it keeps leading the joint configuration
 * (it is an outgoing voter), steps down once the leave is applied, and the new voters
 * elect a leader among themselves; the old leader never campaigns again. */
static void the_leader_is_removed_in_a_joint_change(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_pv_cq));
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_OK(boot_empty(&net, 4, tweak_pv_cq));
    struct raft_change ch[2] = {{RAFT_CHANGE_ADD_VOTER, 4}, {RAFT_CHANGE_REMOVE, 1}};
    CHECK_OK(conf_change(&net, 1, RAFT_TRANSITION_AUTO, 2, ch));
    /* Step by step: the joint configuration is applied by the leader first. */
    bool led_joint = false;
    for (int i = 0; i < 200 && !(role_of(&net, 1) != RAFT_LEADER && net_leader(&net)); i++) {
        net_deliver(&net, 1);
        const struct raft_config *c = raft_config(net.nodes[1].r);
        if (c->n_outgoing && role_of(&net, 1) == RAFT_LEADER)
            led_joint = true;
        if (net.q_len == 0)
            net_run(&net, 1);
    }
    CHECK(led_joint);
    CHECK(role_of(&net, 1) != RAFT_LEADER);
    net_run(&net, 60);
    raft_id l = net_leader(&net);
    CHECK(l >= 2 && l <= 4);
    const struct raft_config *c = raft_config(net.nodes[l].r);
    CHECK_EQ(c->n_outgoing, 0);
    CHECK_EQ(c->n_voters, 3);
    CHECK(!raft_config_is_voter(c, 1));
    CHECK_OK(net_propose(&net, l, "after"));
    net_run(&net, 3);
    CHECK_EQ(net_status(&net, 4).applied, net_status(&net, l).applied);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* Drops appends from node 1 that would give their receiver the (empty) leave-joint
 * change; probes it would refuse still get through, so new members can catch up. */
static bool drop_leave_from_1(struct net *net, const struct raft_msg *m, void *ctx)
{
    (void)ctx;
    if (m->type != RAFT_MSG_APPEND || m->from != 1 ||
        raft_term_at(net->nodes[m->to].r, m->index) != m->log_term)
        return false;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        struct raft_conf_change cc;
        if (m->entries[i].type == RAFT_ENTRY_CONF &&
            raft_conf_change_decode(m->entries[i].data, m->entries[i].len, &cc) == 0 &&
            cc.n_changes == 0)
            return true;
    }
    return false;
}

/* A joint configuration with auto-leave is left even if the leader that entered it dies
 * before its leave reaches anyone: the next leader, holding the applied joint
 * configuration, proposes the leave itself (etcd-raft proposes it whenever the applied
 * configuration is joint with AutoLeave, TestRawNodeJointAutoLeave). */
static void tweak_one_entry(struct raft_options *o)
{
    o->max_msg_entries = 1;
}

static void a_new_leader_leaves_an_auto_leave_joint_configuration(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_one_entry));
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_OK(boot_empty(&net, 4, tweak_one_entry));
    CHECK_OK(boot_empty(&net, 5, tweak_one_entry));
    net.filter = drop_leave_from_1;
    struct raft_change ch[4] = {{RAFT_CHANGE_ADD_VOTER, 4},
                                {RAFT_CHANGE_ADD_VOTER, 5},
                                {RAFT_CHANGE_REMOVE, 2},
                                {RAFT_CHANGE_REMOVE, 3}};
    CHECK_OK(conf_change(&net, 1, RAFT_TRANSITION_AUTO, 4, ch));
    net_deliver(&net, 100000);
    net_run(&net, 3);
    for (raft_id i = 2; i <= 5; i++) {
        const struct raft_config *c = raft_config(net.nodes[i].r);
        CHECK_MSG(c->n_outgoing == 3 && c->auto_leave, "node %llu not in the joint config",
                  (unsigned long long)i);
    }
    net.filter = NULL;
    net_isolate(&net, 1, true);
    CHECK(run_until_leader(&net, 100));
    raft_id l = net_leader(&net);
    CHECK(l != 1);
    net_run(&net, 200);
    CHECK_EQ(net_leader(&net), l);
    const struct raft_config *c = raft_config(net.nodes[l].r);
    CHECK_MSG(c->n_outgoing == 0, "leader %llu still in the joint configuration",
              (unsigned long long)l);
    net_free(&net);
}

/* A leader that removes or demotes itself steps down once it applies the change; if the
 * remaining voter never heard that the change committed (the broadcast was lost) and the
 * old leader holds an entry the remaining voter lacks, the remaining voter — still
 * counting the old leader in its configuration — can never win its vote: the cluster is
 * wedged for good (etcd-raft keeps a removed leader leading by default, so the commit
 * index still reaches the others). */
static void a_leader_stepping_down_after_its_removal_does_not_wedge_the_cluster(void)
{
    for (int demote = 1; demote >= 0; demote--) {
        struct net net;
        CHECK_OK(net_init(&net, 2, NULL));
        CHECK_EQ(elect(&net, 1), 1);
        CHECK_OK(net_propose(&net, 1, "a"));
        net_deliver(&net, 100000);
        struct raft_change ch = {demote ? RAFT_CHANGE_ADD_LEARNER : RAFT_CHANGE_REMOVE, 1};
        CHECK_OK(conf_change(&net, 1, RAFT_TRANSITION_AUTO, 1, &ch));
        net_deliver_only(&net, RAFT_MSG_APPEND, 1, 2); /* 2 holds the change, acks it */
        CHECK_OK(net_propose(&net, 1, "x"));
        net_drop(&net, RAFT_MSG_APPEND, 1, 2); /* "x" never reaches 2 */
        net_deliver_only(&net, RAFT_MSG_APPEND_RESP, 2, 1);
        net_clear(&net); /* the new commit index is lost */
        net_run(&net, 200);
        CHECK_MSG(net_leader(&net) == 2, "%s: no leader", demote ? "demotion" : "removal");
        CHECK(!raft_config_is_voter(raft_config(net.nodes[2].r), 1));
        net_free(&net);
    }
}

/* ---- snapshots ---- */

static void tweak_small_snapshots(struct raft_options *o)
{
    o->snapshot_threshold = 20;
    o->snapshot_keep = 5;
}

/* Builds a 3-node cluster where node 3 missed 60 entries the leader compacted away;
 * returns with node 3 reconnected but nothing delivered. */
static int behind_compaction(struct net *net)
{
    int rc = net_init(net, 3, tweak_small_snapshots);
    if (rc || elect(net, 1) != 1)
        return rc ? rc : -1;
    net_isolate(net, 3, true);
    for (int i = 0; i < 60; i++) {
        if ((rc = net_propose(net, 1, "entry")))
            return rc;
        net_deliver(net, 100000);
    }
    net_isolate(net, 3, false);
    net_clear(net);
    return 0;
}

/* A follower behind the leader's compaction point gets the snapshot; appends to it pause
 * until the snapshot is acknowledged, then replication resumes (etcd-raft
 * TestProvideSnap, TestPendingSnapshotPauseReplication, slow_follower_after_compaction). */
static void a_follower_behind_compaction_gets_a_snapshot_and_appends_pause(void)
{
    struct net net;
    CHECK_OK(behind_compaction(&net));
    struct raft_status l = net_status(&net, 1);
    CHECK(l.snapshot_index > 0 && l.first_index > 2);
    net_tick(&net, 1, 1);
    net_deliver_only(&net, RAFT_MSG_HEARTBEAT, 1, 3);
    net_deliver_only(&net, RAFT_MSG_HEARTBEAT_RESP, 3, 1);
    /* The probe fails, the leader falls back to the snapshot. */
    for (int i = 0; i < 4 && !net_find(&net, RAFT_MSG_SNAPSHOT, 1, 3); i++) {
        net_deliver_only(&net, RAFT_MSG_APPEND, 1, 3);
        net_deliver_only(&net, RAFT_MSG_APPEND_RESP, 3, 1);
    }
    struct net_msg *s = net_find(&net, RAFT_MSG_SNAPSHOT, 1, 3);
    CHECK(s != NULL);
    CHECK_EQ(s->m.snapshot.index, l.snapshot_index);
    CHECK_EQ(s->m.snapshot.term, raft_term_at(net.nodes[1].r, l.snapshot_index));
    CHECK_EQ(s->m.snapshot.config.n_voters, 3);
    CHECK_OK(net_propose(&net, 1, "while snapshotting"));
    CHECK_EQ(net_count(&net, RAFT_MSG_APPEND, 1, 3), 0);
    net_deliver(&net, 100000);
    net_run(&net, 3);
    struct raft_status f = net_status(&net, 3);
    CHECK_EQ(f.snapshot_index, l.snapshot_index);
    CHECK_EQ(f.applied, net_status(&net, 1).applied);
    CHECK_EQ(f.last_index, net_status(&net, 1).last_index);
    CHECK_EQ(net.nodes[3].store.snap.index, l.snapshot_index);
    const char *bad = net_check_store(&net, 3);
    CHECK_MSG(bad == NULL, "%s", bad);
    CHECK_SAFE(&net);
    net_free(&net);
}

static struct raft_msg snapshot_msg(raft_id to, raft_term term, raft_index index,
                                    raft_term snap_term)
{
    struct raft_msg m = mk(RAFT_MSG_SNAPSHOT, 1, to, term);
    m.snapshot.index = index;
    m.snapshot.term = snap_term;
    m.snapshot.config.n_voters = 3;
    for (uint32_t i = 0; i < 3; i++)
        m.snapshot.config.voters[i] = i + 1;
    return m;
}

/* A snapshot at or below the follower's commit index is stale: ignored, answered with
 * the commit index (etcd-raft TestRestoreIgnoreSnapshot). */
static void a_stale_snapshot_is_ignored(void)
{
    static const raft_term log[] = {2, 2, 2, 2, 2, 2};
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_OK(net_boot_terms(&net, 2, 3, log, 6, 2, NULL));
    struct raft_msg a = mk(RAFT_MSG_APPEND, 1, 2, 2);
    a.index = 7;
    a.log_term = 2;
    a.commit = 5;
    CHECK_OK(net_recv(&net, &a));
    CHECK_EQ(net_status(&net, 2).hard_state.commit, 5);
    net_clear(&net);
    struct raft_status before = net_status(&net, 2);
    struct raft_msg s = snapshot_msg(2, 2, 3, 2);
    CHECK_OK(net_recv(&net, &s));
    CHECK(!net.last_up.has_snapshot);
    struct raft_status after = net_status(&net, 2);
    CHECK(memcmp(&before, &after, sizeof(before)) == 0);
    struct net_msg *r = net_find(&net, RAFT_MSG_APPEND_RESP, 2, 1);
    CHECK(r && !r->m.reject && r->m.index == 5);
    net_free(&net);
}

/* A snapshot whose last entry the follower holds (same index and term) keeps the log and
 * just moves the commit index forward (etcd-raft TestRestoreFromSnapWithMatchingLog /
 * "fast-forward"); entries up to it are applied from the log. */
static void a_snapshot_matching_the_follower_log_keeps_the_log(void)
{
    static const raft_term log[] = {2, 2, 2, 2, 2, 2, 2};
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_OK(net_boot_terms(&net, 2, 3, log, 7, 2, NULL));
    struct raft_msg s = snapshot_msg(2, 3, 5, 2);
    CHECK_OK(net_recv(&net, &s));
    CHECK(!net.last_up.has_snapshot);
    struct raft_status st = net_status(&net, 2);
    CHECK_EQ(st.last_index, 8);
    CHECK_EQ(st.hard_state.commit, 5);
    CHECK_EQ(st.applied, 5);
    CHECK_EQ(st.snapshot_index, 0);
    CHECK_EQ(net.nodes[2].n_applied, 4);
    struct net_msg *r = net_find(&net, RAFT_MSG_APPEND_RESP, 2, 1);
    CHECK(r && !r->m.reject && r->m.index == 5);
    /* A snapshot that does not match replaces the log. */
    net_clear(&net);
    s = snapshot_msg(2, 3, 7, 3);
    CHECK_OK(net_recv(&net, &s));
    CHECK(net.last_up.has_snapshot);
    st = net_status(&net, 2);
    CHECK_EQ(st.last_index, 7);
    CHECK_EQ(st.snapshot_index, 7);
    CHECK_EQ(st.applied, 7);
    CHECK_EQ(raft_term_at(net.nodes[2].r, 7), 3);
    CHECK(raft_entry_at(net.nodes[2].r, 6) == NULL);
    net_free(&net);
}

/* A snapshot transfer reported failed sends the follower back to probing; the snapshot
 * is sent again after the next heartbeat response (etcd-raft TestSnapshotFailure). A
 * successful report resumes appends after the snapshot (TestSnapshotSucceed). */
static void a_failed_snapshot_is_retried_and_a_reported_one_resumes_appends(void)
{
    struct net net;
    CHECK_OK(behind_compaction(&net));
    raft_index si = net_status(&net, 1).snapshot_index;
    for (int i = 0; i < 6 && !net_find(&net, RAFT_MSG_SNAPSHOT, 1, 3); i++) {
        net_tick(&net, 1, 1);
        net_deliver_only(&net, 0xff, 1, 3);
        net_deliver_only(&net, 0xff, 3, 1);
    }
    CHECK(net_find(&net, RAFT_MSG_SNAPSHOT, 1, 3) != NULL);
    net_clear(&net); /* the transfer fails */
    struct raft_event ev = {.type = RAFT_EVENT_SNAPSHOT_STATUS};
    ev.u.snapshot_status.node = 3;
    ev.u.snapshot_status.ok = false;
    CHECK_OK(net_step(&net, 1, &ev));
    CHECK_EQ(net_count(&net, RAFT_MSG_SNAPSHOT, 1, 3) + net_count(&net, RAFT_MSG_APPEND, 1, 3), 0);
    net_tick(&net, 1, 1);
    net_deliver_only(&net, RAFT_MSG_HEARTBEAT, 1, 3);
    net_deliver_only(&net, RAFT_MSG_HEARTBEAT_RESP, 3, 1);
    for (int i = 0; i < 4 && !net_find(&net, RAFT_MSG_SNAPSHOT, 1, 3); i++) {
        net_deliver_only(&net, RAFT_MSG_APPEND, 1, 3);
        net_deliver_only(&net, RAFT_MSG_APPEND_RESP, 3, 1);
    }
    CHECK(net_find(&net, RAFT_MSG_SNAPSHOT, 1, 3) != NULL);
    /* This time it arrives and the shell reports success. */
    net_deliver_only(&net, RAFT_MSG_SNAPSHOT, 1, 3);
    net_drop(&net, RAFT_MSG_APPEND_RESP, 3, 1);
    ev.u.snapshot_status.ok = true;
    CHECK_OK(net_step(&net, 1, &ev));
    net_tick(&net, 1, 1);
    net_deliver_only(&net, RAFT_MSG_HEARTBEAT, 1, 3);
    net_deliver_only(&net, RAFT_MSG_HEARTBEAT_RESP, 3, 1);
    struct net_msg *a = net_find(&net, RAFT_MSG_APPEND, 1, 3);
    CHECK(a != NULL);
    CHECK_EQ(a->m.index, si);
    net_run(&net, 3);
    CHECK_EQ(net_status(&net, 3).applied, net_status(&net, 1).applied);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* The core asks for a snapshot every snapshot_threshold applied entries, and compaction
 * keeps snapshot_keep entries behind the snapshot for slow followers. */
static void want_snapshot_every_threshold_and_compaction_keeps_entries(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 1, tweak_small_snapshots));
    net_campaign(&net, 1);
    raft_index wants[4];
    uint32_t n_wants = 0;
    raft_index seen = 0;
    for (int i = 0; i < 70; i++) {
        CHECK_OK(net_propose(&net, 1, "e"));
        if (net.nodes[1].want_snapshot_at != seen) {
            seen = net.nodes[1].want_snapshot_at;
            CHECK(n_wants < 4);
            wants[n_wants++] = seen;
            struct raft_status st = net_status(&net, 1);
            CHECK_EQ(st.snapshot_index, seen);
            CHECK_EQ(st.first_index, seen - 5 + 1);
            CHECK(raft_entry_at(net.nodes[1].r, seen - 5) == NULL);
            CHECK(raft_entry_at(net.nodes[1].r, seen - 4) != NULL);
        }
    }
    CHECK_EQ(n_wants, 3);
    CHECK_EQ(wants[0], 20);
    CHECK_EQ(wants[1], 40);
    CHECK_EQ(wants[2], 60);
    net_free(&net);
}

/* SNAPSHOT_TAKEN with metadata that does not describe the applied log is refused. */
static void a_snapshot_taken_event_with_bad_metadata_is_invalid(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 1, NULL));
    net_campaign(&net, 1);
    for (int i = 0; i < 5; i++)
        CHECK_OK(net_propose(&net, 1, "e"));
    struct raft_status before = net_status(&net, 1);
    struct raft_snapshot_meta m = {.index = before.applied + 1,
                                   .term = before.hard_state.term,
                                   .config = *raft_config(net.nodes[1].r)};
    struct raft_event ev = {.type = RAFT_EVENT_SNAPSHOT_TAKEN, .u.taken = &m};
    CHECK_ERR(net_step(&net, 1, &ev), ASPEN_E_INVALID); /* beyond applied */
    m.index = before.applied;
    m.term = before.hard_state.term + 1;
    CHECK_ERR(net_step(&net, 1, &ev), ASPEN_E_INVALID); /* wrong term */
    m.term = before.hard_state.term;
    m.config.voters[1] = m.config.voters[0];
    m.config.n_voters = 2;
    CHECK_ERR(net_step(&net, 1, &ev), ASPEN_E_INVALID); /* duplicate voter */
    struct raft_status after = net_status(&net, 1);
    CHECK(memcmp(&before, &after, sizeof(before)) == 0);
    net_free(&net);
}

/* ---- restart ---- */

/* A node that granted a vote and restarts from its storage still holds the vote: it
 * cannot vote twice in a term (Figure 2's persistent votedFor; canary
 * vote_not_persisted). */
static void a_restarted_node_keeps_its_vote(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    net_campaign(&net, 1);
    net_deliver_only(&net, RAFT_MSG_VOTE, 1, 3);
    CHECK_EQ(net_status(&net, 3).hard_state.vote, 1);
    net_clear(&net);
    CHECK_OK(net_restart(&net, 3));
    CHECK_EQ(net_status(&net, 3).hard_state.term, 2);
    CHECK_EQ(net_status(&net, 3).hard_state.vote, 1);
    net_campaign(&net, 2);
    CHECK_EQ(term_of(&net, 2), 2);
    net_deliver_only(&net, RAFT_MSG_VOTE, 2, 3);
    struct net_msg *r = net_find(&net, RAFT_MSG_VOTE_RESP, 3, 2);
    CHECK(r && r->m.reject);
    net_deliver(&net, 100000);
    CHECK(role_of(&net, 2) != RAFT_LEADER);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* A restarted node never hands out an entry its state machine already applied, even if
 * its stored commit index lags (commit needs no fsync), and resumes after it. */
static void a_restarted_node_never_reapplies_entries(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    for (int i = 0; i < 5; i++)
        CHECK_OK(net_propose(&net, 1, "e"));
    net_deliver(&net, 100000);
    net_run(&net, 2);
    struct net_node *nd = &net.nodes[2];
    uint32_t n = nd->n_applied;
    raft_index applied = net_status(&net, 2).applied;
    CHECK_EQ(applied, 7);
    nd->store.hs.commit = 2; /* the last commit-only write was not synced */
    CHECK_OK(net_restart(&net, 2));
    CHECK_EQ(net_status(&net, 2).applied, applied);
    CHECK(net_status(&net, 2).hard_state.commit >= applied);
    net_run(&net, 2);
    CHECK_EQ(nd->n_applied, n);
    CHECK_OK(net_propose(&net, 1, "after"));
    net_deliver(&net, 100000);
    net_run(&net, 2);
    CHECK_EQ(nd->n_applied, n + 1);
    CHECK_EQ(nd->applied_index[n], applied + 1);
    /* The leader restarts too, and a node restarts from a snapshot-less store with
     * everything applied: nothing is handed out twice. */
    CHECK_OK(net_restart(&net, 1));
    CHECK(run_until_leader(&net, 60));
    net_run(&net, 3);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* Persists and delivers everything until the cluster is quiet (async disks). */
static void settle(struct net *net)
{
    for (int i = 0; i < 50; i++) {
        bool any = false;
        for (raft_id id = 1; id <= net->n; id++)
            while (net_persist(net, id))
                any = true;
        if (net_deliver(net, 100000))
            any = true;
        if (!any)
            return;
    }
}

/* With asynchronous disks, a follower's acknowledgement waits for its write: if it
 * crashes first (losing the write) and so does the leader, the entry was never
 * committed, and the survivors may replace it safely (canary ack_before_durable). */
static void writes_lost_in_a_crash_were_never_acknowledged(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    for (raft_id i = 1; i <= 3; i++)
        net.nodes[i].async = true;
    net_isolate(&net, 3, true);
    CHECK_OK(net_propose(&net, 1, "maybe"));
    net_deliver(&net, 100000);
    net_deliver(&net, 100000);
    CHECK_OK(net_restart(&net, 2));
    CHECK_OK(net_restart(&net, 1));
    net_clear(&net);
    net_isolate(&net, 3, false);
    net_isolate(&net, 1, true);
    net_campaign(&net, 2);
    settle(&net);
    CHECK_EQ(role_of(&net, 2), RAFT_LEADER);
    CHECK_OK(net_propose(&net, 2, "other"));
    settle(&net);
    net_run(&net, 2);
    settle(&net);
    CHECK(net_status(&net, 2).hard_state.commit >= 4);
    net_isolate(&net, 1, false);
    for (int i = 0; i < 5; i++) {
        net_run(&net, 1);
        settle(&net);
    }
    CHECK_EQ(net_status(&net, 1).applied, net_status(&net, 2).applied);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* A PERSISTED event for an (index, term) no longer in the log — the log was truncated and
 * rewritten at that index in between — proves nothing and is ignored (the ABA case of
 * etcd-raft's async_storage_writes_append_aba_race). */
static void persisted_with_a_stale_index_and_term_is_ignored(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    net_tick(&net, 2, 1);
    net.nodes[2].async = true;
    uint8_t d[2] = {'a', 'b'};
    struct raft_entry e[2] = {{.term = 2, .index = 2, .len = 1, .data = &d[0]},
                              {.term = 2, .index = 3, .len = 1, .data = &d[1]}};
    struct raft_msg a = mk(RAFT_MSG_APPEND, 1, 2, 2);
    a.index = 1;
    a.log_term = 1;
    a.entries = e;
    a.n_entries = 2;
    a.commit = 1;
    CHECK_OK(net_recv(&net, &a));
    CHECK_EQ(net.last_up.persist_index, 3);
    CHECK_EQ(net.last_up.persist_term, 2);
    /* Leader 3 of term 3 overwrites 2..3 before that write completes. */
    struct raft_entry e3[2] = {{.term = 3, .index = 2, .len = 1, .data = &d[1]},
                               {.term = 3, .index = 3, .len = 1, .data = &d[0]}};
    a = mk(RAFT_MSG_APPEND, 3, 2, 3);
    a.index = 1;
    a.log_term = 1;
    a.entries = e3;
    a.n_entries = 2;
    a.commit = 1;
    CHECK_OK(net_recv(&net, &a));
    CHECK_EQ(net_status(&net, 2).durable_index, 1);
    struct raft_event ev = {.type = RAFT_EVENT_PERSISTED};
    ev.u.persisted.index = 3;
    ev.u.persisted.term = 2;
    CHECK_OK(net_step(&net, 2, &ev));
    CHECK_EQ(net_status(&net, 2).durable_index, 1);
    ev.u.persisted.index = 9;
    ev.u.persisted.term = 3;
    CHECK_OK(net_step(&net, 2, &ev));
    CHECK_EQ(net_status(&net, 2).durable_index, 1);
    ev.u.persisted.index = 3;
    ev.u.persisted.term = 3;
    CHECK_OK(net_step(&net, 2, &ev));
    CHECK_EQ(net_status(&net, 2).durable_index, 3);
    net_free(&net);
}

/* ---- bad events ---- */

/* Malformed events are refused with ASPEN_E_INVALID (or TOO_LARGE) and change nothing:
 * no state, no messages, nothing to persist. */
static void bad_events_are_refused_without_any_effect(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_clear(&net);
    struct raft_status before = net_status(&net, 1);
    struct raft_config conf_before = *raft_config(net.nodes[1].r);
    struct raft_msg ok = mk(RAFT_MSG_HEARTBEAT_RESP, 2, 1, 2);
    struct raft_msg wrong_to = ok, from0 = ok, from_self = ok, bad_type = ok;
    wrong_to.to = 3;
    from0.from = 0;
    from_self.from = 1;
    bad_type.type = RAFT_MSG_TYPE_COUNT;
    struct raft_proposal p_null = {.data = NULL, .len = 5};
    static uint8_t big[ASPEN_MAX_REQUEST_BYTES + 1];
    struct raft_proposal p_big = {.data = big, .len = sizeof(big)};
    struct raft_conf_change cc_bad[6];
    memset(cc_bad, 0, sizeof(cc_bad));
    cc_bad[0] = (struct raft_conf_change){.transition = 0, .n_changes = 1};
    cc_bad[0].changes[0] = (struct raft_change){.type = 7, .node = 4};
    cc_bad[1] = (struct raft_conf_change){.transition = 0, .n_changes = 1};
    cc_bad[1].changes[0] = (struct raft_change){.type = RAFT_CHANGE_ADD_VOTER, .node = 0};
    cc_bad[2] = (struct raft_conf_change){.transition = 9, .n_changes = 1};
    cc_bad[2].changes[0] = (struct raft_change){.type = RAFT_CHANGE_ADD_VOTER, .node = 4};
    cc_bad[3] = (struct raft_conf_change){.transition = 0, .n_changes = ASPEN_RAFT_MAX_CHANGES + 1};
    cc_bad[4] = (struct raft_conf_change){.transition = 0, .n_changes = 0}; /* not joint */
    cc_bad[5] = (struct raft_conf_change){.transition = 1, .n_changes = 3};
    for (uint32_t i = 0; i < 3; i++)
        cc_bad[5].changes[i] = (struct raft_change){.type = RAFT_CHANGE_REMOVE, .node = i + 1};
    struct raft_event evs[20];
    int want[20];
    size_t n = 0;
    memset(evs, 0, sizeof(evs));
    evs[n].type = RAFT_EVENT_RECEIVE, evs[n].u.msg = NULL, want[n++] = ASPEN_E_INVALID;
    evs[n].type = RAFT_EVENT_RECEIVE, evs[n].u.msg = &wrong_to, want[n++] = ASPEN_E_INVALID;
    evs[n].type = RAFT_EVENT_RECEIVE, evs[n].u.msg = &from0, want[n++] = ASPEN_E_INVALID;
    evs[n].type = RAFT_EVENT_RECEIVE, evs[n].u.msg = &from_self, want[n++] = ASPEN_E_INVALID;
    evs[n].type = RAFT_EVENT_RECEIVE, evs[n].u.msg = &bad_type, want[n++] = ASPEN_E_INVALID;
    evs[n].type = RAFT_EVENT_PROPOSE, evs[n].u.propose.n = 0, evs[n].u.propose.items = &p_null,
    want[n++] = ASPEN_E_INVALID;
    evs[n].type = RAFT_EVENT_PROPOSE, evs[n].u.propose.n = 1, evs[n].u.propose.items = NULL,
    want[n++] = ASPEN_E_INVALID;
    evs[n].type = RAFT_EVENT_PROPOSE, evs[n].u.propose.n = 1, evs[n].u.propose.items = &p_null,
    want[n++] = ASPEN_E_INVALID;
    evs[n].type = RAFT_EVENT_PROPOSE, evs[n].u.propose.n = 1, evs[n].u.propose.items = &p_big,
    want[n++] = ASPEN_E_TOO_LARGE;
    evs[n].type = RAFT_EVENT_PROPOSE, evs[n].u.propose.n = ASPEN_RAFT_MAX_PENDING_PROPOSALS + 1,
    evs[n].u.propose.items = &p_big, want[n++] = ASPEN_E_TOO_LARGE;
    evs[n].type = RAFT_EVENT_CONF_CHANGE, evs[n].u.conf = NULL, want[n++] = ASPEN_E_INVALID;
    for (int i = 0; i < 6; i++)
        evs[n].type = RAFT_EVENT_CONF_CHANGE, evs[n].u.conf = &cc_bad[i],
        want[n++] = ASPEN_E_INVALID;
    evs[n].type = RAFT_EVENT_TRANSFER, evs[n].u.node = 0, want[n++] = ASPEN_E_INVALID;
    evs[n].type = RAFT_EVENT_SNAPSHOT_TAKEN, evs[n].u.taken = NULL, want[n++] = ASPEN_E_INVALID;
    evs[n].type = 99, want[n++] = ASPEN_E_INVALID;
    for (size_t k = 0; k < n; k++) {
        int rc = net_step(&net, 1, &evs[k]);
        CHECK_MSG(rc == want[k], "event %zu: %s, want %s", k, aspen_err_name(rc),
                  aspen_err_name(want[k]));
        CHECK_MSG(net.last_up.n_msgs == 0 && !net.last_up.must_persist && net.q_len == 0,
                  "event %zu had an effect", k);
        struct raft_status after = net_status(&net, 1);
        CHECK_MSG(memcmp(&before, &after, sizeof(before)) == 0, "event %zu changed the state", k);
        CHECK(memcmp(&conf_before, raft_config(net.nodes[1].r), sizeof(conf_before)) == 0);
    }
    CHECK_OK(net_propose(&net, 1, "still fine"));
    net_free(&net);
}

/* ---- allocation failures ---- */

/* The scenario the allocation-failure test replays: elections, proposals, reads, a
 * partition, compaction and a snapshot transfer, a leader change. Returns a step count
 * so the caller knows how many top-level steps there are. */
static void oom_scenario(struct net *net)
{
    elect(net, 1);
    for (int i = 0; i < 8; i++) {
        net_propose(net, 1, "a");
        net_deliver(net, 100000);
    }
    net_read(net, 1, 1);
    net_read(net, 2, 2);
    net_run(net, 2);
    net_isolate(net, 3, true);
    for (int i = 0; i < 30; i++) {
        net_propose(net, 1, "bb");
        net_deliver(net, 100000);
    }
    net_isolate(net, 3, false);
    net_run(net, 4);
    net_isolate(net, 1, true);
    net_campaign(net, 2);
    net_deliver(net, 100000);
    net_propose(net, 2, "ccc");
    net_run(net, 2);
    net_isolate(net, 1, false);
    net_run(net, 4);
}

static void tweak_oom(struct raft_options *o)
{
    o->snapshot_threshold = 20;
    o->snapshot_keep = 5;
    o->max_msg_entries = 4;
}

/* One allocation failure injected into one step of the scenario, for every step and the
 * first few allocations of each: the step may fail (ASPEN_E_NOMEM) but the cluster stays
 * safe, every node's storage matches what its core believes durable, the cluster
 * converges afterwards, and nothing leaks. */
static void allocation_failures_never_corrupt_state_or_leak(void)
{
    static uint32_t allocs[20000];
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_oom));
    for (raft_id i = 1; i <= 3; i++)
        net_tick(&net, i, 1);
    uint64_t base = net.top_steps;
    memset(allocs, 0, sizeof(allocs));
    net.allocs_per_step = allocs;
    net.n_allocs_per_step = sizeof(allocs) / sizeof(allocs[0]);
    oom_scenario(&net);
    uint64_t steps = net.top_steps;
    CHECK(steps < net.n_allocs_per_step);
    net_free(&net);
    uint32_t failures = 0, runs = 0;
    for (uint64_t s = base + 1; s <= steps; s++) {
        if (!allocs[s - 1])
            continue;
        for (uint64_t k = 1; k <= allocs[s - 1] && k <= 3; k++) {
            CHECK_OK(net_init(&net, 3, tweak_oom));
            for (raft_id i = 1; i <= 3; i++)
                net_tick(&net, i, 1);
            net.fail_step = s;
            net.fail_step_alloc = k;
            oom_scenario(&net);
            failures += net.n_nomem > 0;
            net_heal(&net);
            for (int i = 0; i < 60; i++)
                net_run(&net, 1);
            CHECK_MSG(net_violation(&net) == NULL, "step %llu alloc %llu: %s",
                      (unsigned long long)s, (unsigned long long)k, net_violation(&net));
            raft_id l = net_leader(&net);
            CHECK_MSG(l != 0, "step %llu alloc %llu: no leader", (unsigned long long)s,
                      (unsigned long long)k);
            CHECK_OK(net_propose(&net, l, "final"));
            net_run(&net, 3);
            for (raft_id i = 1; i <= 3; i++) {
                const char *bad = net_check_store(&net, i);
                CHECK_MSG(bad == NULL, "step %llu alloc %llu: %s", (unsigned long long)s,
                          (unsigned long long)k, bad);
                CHECK_MSG(net_status(&net, i).applied == net_status(&net, l).applied,
                          "step %llu alloc %llu: node %llu applied %llu, leader %llu",
                          (unsigned long long)s, (unsigned long long)k, (unsigned long long)i,
                          (unsigned long long)net_status(&net, i).applied,
                          (unsigned long long)net_status(&net, l).applied);
            }
            /* And from storage: every node restarts and the cluster still agrees. */
            for (raft_id i = 1; i <= 3; i++)
                CHECK_OK(net_restart(&net, i));
            for (int i = 0; i < 60 && !net_leader(&net); i++)
                net_run(&net, 1);
            l = net_leader(&net);
            CHECK(l != 0);
            CHECK_OK(net_propose(&net, l, "after restart"));
            net_run(&net, 3);
            CHECK_MSG(net_violation(&net) == NULL, "step %llu alloc %llu: %s",
                      (unsigned long long)s, (unsigned long long)k, net_violation(&net));
            net_free(&net);
            runs++;
        }
    }
    if (getenv("PROP_TRACE"))
        fprintf(stderr, "oom: %u runs, %u with failures\n", runs, failures);
    CHECK(runs > 50);
    CHECK_MSG(failures == runs, "only %u of %u runs saw an allocation failure", failures, runs);
}

/* An allocation failure while answering reads may fail that step, but must not make a
 * read vanish: every read is eventually answered, successfully or with an error. */
static void an_allocation_failure_never_loses_a_read(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_run(&net, 1);
    CHECK_OK(net_read(&net, 1, 42));
    CHECK_EQ(net.nodes[1].n_reads, 0);
    /* The first heartbeat response confirms the round: fail the answer's allocation. */
    net_deliver_only(&net, RAFT_MSG_HEARTBEAT, 1, 0);
    net.fail_alloc_in_step = 1;
    net_deliver_only(&net, RAFT_MSG_HEARTBEAT_RESP, 2, 1);
    CHECK_EQ(net.n_nomem, 1); /* the step failed: fine */
    net_run(&net, 20);
    CHECK_MSG(net.nodes[1].n_reads == 1, "read 42 never answered (%u answers)",
              net.nodes[1].n_reads);
    net_free(&net);
}

/* Found by the property test (seed 1882500655978032): a single voter elects itself in
 * one step, so no vote request ever waited for its new term to be durable. Its appends
 * to a learner went out at once; it crashed before the write, came back in the old term,
 * won the same term again and wrote different entries at the same (index, term) — Log
 * Matching broken on the learner. Nothing may carry the term before it is durable. */
static void a_lone_voter_sends_nothing_in_a_term_that_is_not_durable(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 1, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_OK(boot_empty(&net, 2, NULL));
    struct raft_change add = {RAFT_CHANGE_ADD_LEARNER, 2};
    CHECK_OK(conf_change(&net, 1, RAFT_TRANSITION_AUTO, 1, &add));
    net_deliver(&net, 100000);
    net_run(&net, 3);
    CHECK_EQ(net_status(&net, 2).last_index, net_status(&net, 1).last_index);
    CHECK_OK(net_restart(&net, 1));
    net.nodes[1].async = true;
    net_campaign(&net, 1);
    CHECK_EQ(role_of(&net, 1), RAFT_LEADER);
    CHECK_OK(net_propose(&net, 1, "x"));
    net_tick(&net, 1, 2); /* heartbeats too, not delivered */
    CHECK_EQ(net_count(&net, RAFT_MSG_APPEND, 1, 2) + net_count(&net, RAFT_MSG_HEARTBEAT, 1, 2), 0);
    net_persist_all(&net, 1);
    net_deliver(&net, 100000);
    net_run(&net, 2);
    CHECK_EQ(net_status(&net, 2).last_index, net_status(&net, 1).last_index);
    net_free(&net);
}

/* ---- randomized property test ---- */

static struct {
    bool pre_vote, check_quorum, lease_reads;
    uint32_t max_msg_entries;
} prop_opts;

static void tweak_prop(struct raft_options *o)
{
    o->pre_vote = prop_opts.pre_vote;
    o->check_quorum = prop_opts.check_quorum;
    o->lease_reads = prop_opts.lease_reads;
    o->lease_drift_ticks = 1;
    o->snapshot_threshold = 30;
    o->snapshot_keep = 5;
    o->max_msg_entries = prop_opts.max_msg_entries;
    o->max_inflight_msgs = 4;
    o->election_ticks = 10;
    o->heartbeat_ticks = 2;
}

/* Log Matching between every pair: if two logs hold an entry with the same index and
 * term, they hold the same bytes there and agree on every entry before it. */
static const char *check_log_matching(struct net *net)
{
    static char buf[200];
    for (raft_id a = 1; a <= net->n; a++) {
        for (raft_id b = a + 1; b <= net->n; b++) {
            struct raft_status sa = net_status(net, a), sb = net_status(net, b);
            raft_index lo = sa.first_index > sb.first_index ? sa.first_index : sb.first_index;
            raft_index hi = sa.last_index < sb.last_index ? sa.last_index : sb.last_index;
            raft_index match = 0;
            for (raft_index i = hi; i >= lo && i > 0; i--) {
                if (raft_term_at(net->nodes[a].r, i) == raft_term_at(net->nodes[b].r, i)) {
                    match = i;
                    break;
                }
            }
            for (raft_index i = lo; i <= match; i++) {
                const struct raft_entry *x = raft_entry_at(net->nodes[a].r, i);
                const struct raft_entry *y = raft_entry_at(net->nodes[b].r, i);
                if (!x || !y || x->term != y->term || x->type != y->type || x->len != y->len ||
                    (x->len && memcmp(x->data, y->data, x->len) != 0)) {
                    snprintf(buf, sizeof(buf),
                             "log matching: nodes %llu and %llu agree at %llu but differ at %llu",
                             (unsigned long long)a, (unsigned long long)b,
                             (unsigned long long)match, (unsigned long long)i);
                    return buf;
                }
            }
        }
    }
    return NULL;
}

struct leader_log {
    raft_term term; /* 0: not leader at the last check */
    raft_index first, last;
    raft_term terms[256];
};

/* Leader Append-Only: while a node leads a term, entries it held stay unchanged. */
static const char *check_append_only(struct net *net, struct leader_log *ll)
{
    static char buf[160];
    for (raft_id id = 1; id <= net->n; id++) {
        struct raft_status st = net_status(net, id);
        struct leader_log *l = &ll[id];
        if (st.role == RAFT_LEADER && l->term == st.hard_state.term) {
            for (raft_index i = l->first > st.first_index ? l->first : st.first_index; i <= l->last;
                 i++) {
                if (raft_term_at(net->nodes[id].r, i) != l->terms[i % 256]) {
                    snprintf(buf, sizeof(buf), "leader %llu of term %llu changed entry %llu",
                             (unsigned long long)id, (unsigned long long)l->term,
                             (unsigned long long)i);
                    return buf;
                }
            }
        }
        l->term = st.role == RAFT_LEADER ? st.hard_state.term : 0;
        l->first =
            st.first_index + 256 > st.last_index + 1 ? st.first_index : st.last_index + 1 - 256;
        l->last = st.last_index;
        for (raft_index i = l->first; i <= l->last; i++)
            l->terms[i % 256] = raft_term_at(net->nodes[id].r, i);
    }
    return NULL;
}

/* Linearizable reads: a read answered at index i must see every entry committed (on
 * any node) before the read was issued. */
#define PROP_MAX_READS 4096
static raft_index read_floor[PROP_MAX_READS];

static raft_index cluster_commit(struct net *net)
{
    raft_index c = 0;
    for (raft_id id = 1; id <= net->n; id++) {
        raft_index x = net_status(net, id).hard_state.commit;
        c = x > c ? x : c;
    }
    return c;
}

static const char *check_reads(struct net *net)
{
    static char buf[160];
    for (raft_id id = 1; id <= net->n; id++) {
        struct net_node *nd = &net->nodes[id];
        for (uint32_t i = 0; i < nd->n_reads; i++) {
            const struct raft_read_state *rs = &nd->reads[i];
            if (rs->err || rs->ctx >= PROP_MAX_READS)
                continue;
            if (rs->index < read_floor[rs->ctx]) {
                snprintf(buf, sizeof(buf),
                         "stale read on node %llu: index %llu, but %llu was committed before",
                         (unsigned long long)id, (unsigned long long)rs->index,
                         (unsigned long long)read_floor[rs->ctx]);
                return buf;
            }
        }
        nd->n_reads = 0;
    }
    return NULL;
}

/* A random membership change on the leader: any mix of adds, promotions, demotions and
 * removals among ids 1..max_id, any transition, sometimes an empty leave — down to a
 * single voter, including the leader removing or demoting itself. */
static void random_conf_change(struct net *net, struct rng *g, raft_id leader, raft_id max_id)
{
    struct raft_conf_change cc = {.transition = (uint8_t)rng_below(g, 3)};
    if (!rng_ratio(g, 1, 6)) {
        cc.n_changes = (uint32_t)rng_range(g, 1, 2);
        for (uint32_t i = 0; i < cc.n_changes; i++)
            cc.changes[i] = (struct raft_change){.type = (uint8_t)rng_below(g, 3),
                                                 .node = (raft_id)rng_range(g, 1, max_id)};
    }
    struct raft_event ev = {.type = RAFT_EVENT_CONF_CHANGE, .u.conf = &cc};
    net_step(net, leader, &ev);
}

static void dump_nodes(struct net *net, raft_id max_id)
{
    if (!getenv("PROP_TRACE") || atoi(getenv("PROP_TRACE")) < 2)
        return;
    for (raft_id i = 1; i <= max_id; i++) {
        struct raft_status st = net_status(net, i);
        fprintf(stderr,
                "  node %llu role %u term %llu commit %llu applied %llu last %llu "
                "durable %llu writes %u voter %d learner %d outgoing %u lastterm %llu\n",
                (unsigned long long)i, st.role, (unsigned long long)st.hard_state.term,
                (unsigned long long)st.hard_state.commit, (unsigned long long)st.applied,
                (unsigned long long)st.last_index, (unsigned long long)st.durable_index,
                net->nodes[i].n_writes, raft_config_is_voter(raft_config(net->nodes[i].r), i),
                raft_config_is_learner(raft_config(net->nodes[i].r), i),
                raft_config(net->nodes[i].r)->n_outgoing,
                (unsigned long long)raft_term_at(net->nodes[i].r, st.last_index));
        const struct raft_config *c = raft_config(net->nodes[i].r);
        fprintf(stderr, "    voters");
        for (uint32_t k = 0; k < c->n_voters; k++)
            fprintf(stderr, " %llu", (unsigned long long)c->voters[k]);
        fprintf(stderr, " outgoing");
        for (uint32_t k = 0; k < c->n_outgoing; k++)
            fprintf(stderr, " %llu", (unsigned long long)c->outgoing[k]);
        fprintf(stderr, " learners");
        for (uint32_t k = 0; k < c->n_learners; k++)
            fprintf(stderr, " %llu", (unsigned long long)c->learners[k]);
        fprintf(stderr, " auto_leave %d\n", c->auto_leave);
    }
}

static void random_run(uint32_t n, uint64_t seed, uint32_t steps, bool membership)
{
    struct rng g;
    rng_seed(&g, seed);
    prop_opts.pre_vote = rng_ratio(&g, 1, 2);
    prop_opts.check_quorum = rng_ratio(&g, 1, 2);
    /* Leases assume clocks that advance together: then every tick ticks every node. */
    prop_opts.lease_reads = prop_opts.check_quorum && rng_ratio(&g, 1, 2);
    prop_opts.max_msg_entries = (uint32_t)rng_range(&g, 1, 4);
    struct net net;
    CHECK_OK(net_init(&net, n, tweak_prop));
    raft_id max_id = n;
    if (membership) {
        max_id = n + 2;
        for (raft_id i = n + 1; i <= max_id; i++)
            CHECK_OK(boot_empty(&net, i, tweak_prop));
    }
    for (raft_id i = 1; i <= max_id; i++)
        net.nodes[i].async = rng_ratio(&g, 1, 2);
    static struct leader_log ll[NET_MAX_NODES + 1];
    memset(ll, 0, sizeof(ll));
    uint32_t proposals = 0, reads = 0;
    for (uint32_t step = 0; step < steps; step++) {
        uint64_t r = rng_below(&g, 1000);
        raft_id id = (raft_id)rng_range(&g, 1, max_id);
        if (r < 350) {
            if (prop_opts.lease_reads) {
                if (rng_ratio(&g, 1, max_id))
                    for (raft_id i = 1; i <= max_id; i++)
                        net_tick(&net, i, 1);
            } else {
                net_tick(&net, id, 1);
            }
        } else if (r < 480) {
            raft_id l = net_leader(&net);
            if (l) {
                char buf[24];
                snprintf(buf, sizeof(buf), "p%u-%llu", proposals++, (unsigned long long)seed);
                net_propose(&net, l, buf);
            }
        } else if (r < 700) {
            if (rng_ratio(&g, 1, 5))
                net_shuffle(&net, &g);
            net_deliver(&net, (uint32_t)rng_range(&g, 1, 20));
        } else if (r < 740) {
            if (net.q_len)
                net.q[(net.q_head + rng_below(&g, net.q_len)) % NET_MAX_MSGS].dropped = true;
        } else if (r < 760) {
            if (net.q_len)
                net_duplicate(&net, (uint32_t)rng_below(&g, net.q_len));
        } else if (r < 780) {
            net_cut(&net, id, (raft_id)rng_range(&g, 1, max_id));
        } else if (r < 800) {
            net_heal(&net);
        } else if (r < 810) {
            net_isolate(&net, id, !net.nodes[id].down);
        } else if (r < 825) {
            CHECK_OK(net_restart(&net, id));
        } else if (r < 940) {
            for (uint64_t k = rng_range(&g, 1, 4); k > 0; k--)
                net_persist(&net, id);
        } else if (r < 975) {
            if (reads < PROP_MAX_READS) {
                read_floor[reads] = cluster_commit(&net);
                net_read(&net, id, reads++);
            }
        } else if (membership && r < 990) {
            raft_id l = net_leader(&net);
            if (l)
                random_conf_change(&net, &g, l, max_id);
        } else {
            raft_id l = net_leader(&net);
            if (l)
                transfer(&net, l, id);
        }
        if (net.q_len > NET_MAX_MSGS / 2)
            net_deliver(&net, NET_MAX_MSGS / 4);
        CHECK_MSG(net_violation(&net) == NULL, "seed %llu step %u: %s", (unsigned long long)seed,
                  step, net_violation(&net));
        const char *bad = check_log_matching(&net);
        CHECK_MSG(bad == NULL, "seed %llu step %u: %s", (unsigned long long)seed, step, bad);
        bad = check_append_only(&net, ll);
        CHECK_MSG(bad == NULL, "seed %llu step %u: %s", (unsigned long long)seed, step, bad);
        bad = check_reads(&net);
        CHECK_MSG(bad == NULL, "seed %llu step %u: %s", (unsigned long long)seed, step, bad);
        for (raft_id i = 1; i <= max_id; i++) {
            struct raft_status st = net_status(&net, i);
            CHECK_MSG(st.applied <= st.hard_state.commit,
                      "seed %llu step %u: node %llu applied %llu > commit %llu",
                      (unsigned long long)seed, step, (unsigned long long)i,
                      (unsigned long long)st.applied, (unsigned long long)st.hard_state.commit);
        }
    }
    /* Liveness once the faults stop: a leader, and every member applies the same prefix
     * (a follower whose whole in-flight window was lost included: docs/FINDINGS.md #2). */
    net_heal(&net);
    raft_id l = 0;
    for (int i = 0; i < 300; i++) {
        /* Without CheckQuorum's leader lease, removed nodes that still think they are
         * voters are shut down: they would keep disrupting elections (thesis §4.2.3).
         * Those that know they were removed stay: they never campaign, and their vote
         * refusals carry the commit index that lets the new voters learn of the change. */
        raft_id most = 1;
        for (raft_id k = 1; k <= max_id; k++)
            if (net_status(&net, k).applied > net_status(&net, most).applied)
                most = k;
        const struct raft_config *mc = raft_config(net.nodes[most].r);
        for (raft_id k = 1; k <= max_id && !prop_opts.check_quorum; k++)
            net_isolate(&net, k,
                        !raft_config_is_voter(mc, k) && !raft_config_is_learner(mc, k) &&
                            raft_config_is_voter(raft_config(net.nodes[k].r), k));
        for (raft_id id = 1; id <= max_id; id++)
            net_persist_all(&net, id);
        net_run(&net, 1);
    }
    for (raft_id id = 1; id <= max_id; id++)
        net_persist_all(&net, id);
    l = net_leader(&net);
    dump_nodes(&net, max_id);
    CHECK_MSG(l != 0, "seed %llu (n %u, membership %d): no leader after healing",
              (unsigned long long)seed, n, membership);
    const struct raft_config *conf = raft_config(net.nodes[l].r);
    for (raft_id i = 1; i <= max_id; i++) {
        if (!raft_config_is_voter(conf, i) && !raft_config_is_learner(conf, i))
            continue;
        CHECK_MSG(net_status(&net, i).applied == net_status(&net, l).applied,
                  "seed %llu: node %llu applied %llu, leader %llu applied %llu",
                  (unsigned long long)seed, (unsigned long long)i,
                  (unsigned long long)net_status(&net, i).applied, (unsigned long long)l,
                  (unsigned long long)net_status(&net, l).applied);
    }
    for (raft_id i = 1; i <= max_id; i++) {
        const char *bad = net_check_store(&net, i);
        CHECK_MSG(bad == NULL, "seed %llu: %s", (unsigned long long)seed, bad);
    }
    if (getenv("PROP_TRACE"))
        fprintf(stderr,
                "seed %llu n=%u pv=%d cq=%d lease=%d: term %llu commit %llu snap %llu "
                "voters %u\n",
                (unsigned long long)seed, n, prop_opts.pre_vote, prop_opts.check_quorum,
                prop_opts.lease_reads, (unsigned long long)term_of(&net, l),
                (unsigned long long)net_status(&net, l).hard_state.commit,
                (unsigned long long)net_status(&net, l).snapshot_index, conf->n_voters);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* Replays one run: PROP_SEED=<seed> PROP_N=<nodes> PROP_MEMBERSHIP=0|1 (printed by a
 * failing run), e.g. with NET_TRACE=1 for the message trace. */
static void random_replay(void)
{
    const char *seed = getenv("PROP_SEED");
    if (!seed)
        return;
    const char *n = getenv("PROP_N"), *m = getenv("PROP_MEMBERSHIP");
    random_run(n ? (uint32_t)atoi(n) : 3, strtoull(seed, NULL, 0), 3000, m && atoi(m));
}

static void random_faults_keep_three_nodes_safe(void)
{
    uint64_t seed = test_seed();
    for (uint64_t i = 0; i < test_iters(8) && !test_failed(); i++)
        random_run(3, seed + i, 3000, false);
}

static void random_faults_keep_five_nodes_safe(void)
{
    uint64_t seed = test_seed() ^ 0x5555;
    for (uint64_t i = 0; i < test_iters(5) && !test_failed(); i++)
        random_run(5, seed + i, 3000, false);
}

static void random_membership_changes_keep_the_cluster_safe(void)
{
    uint64_t seed = test_seed() ^ 0xc0ffee;
    for (uint64_t i = 0; i < test_iters(8) && !test_failed(); i++)
        random_run(i % 2 ? 5 : 3, seed + i, 3000, true);
}

static const struct test_case tests[] = {
    TEST(dueling_candidates_the_one_with_the_shorter_log_loses),
    TEST(dueling_pre_candidates_do_not_disrupt_the_leader),
    TEST(a_single_node_pre_candidate_becomes_leader),
    TEST(a_split_vote_is_resolved_by_a_later_election),
    TEST(prevote_with_check_quorum_replaces_a_lost_leader),
    TEST(a_node_cut_off_from_the_leader_does_not_depose_it),
    TEST(check_quorum_frees_a_stuck_candidate),
    TEST(check_quorum_a_leader_is_superseded_only_after_its_lease),
    TEST(a_learner_votes_when_asked),
    TEST(a_learner_never_campaigns),
    TEST(replication_pauses_at_the_inflight_limit_and_acks_resume_it),
    TEST(replication_pauses_at_the_inflight_bytes_limit),
    TEST(a_probing_leader_sends_one_append_per_heartbeat),
    TEST(an_unreachable_report_sends_a_follower_back_to_probing),
    TEST(a_follower_whose_full_window_was_lost_recovers),
    TEST(fast_back_off_repairs_a_long_divergent_tail_in_few_round_trips),
    TEST(the_commit_index_is_the_quorum_match_of_a_current_term_entry),
    TEST(the_uncommitted_bytes_limit_refuses_proposals_until_commit),
    TEST(requests_on_a_non_leader_fail_with_a_leader_hint),
    TEST(duplicate_read_contexts_get_distinct_answers),
    TEST(a_read_on_a_leader_that_loses_leadership_fails),
    TEST(a_new_leader_answers_reads_only_after_committing_in_its_term),
    TEST(lease_reads_skip_the_round_trip_until_the_lease_expires),
    TEST(without_lease_reads_every_read_takes_a_round_trip),
    TEST(no_lease_read_during_a_transfer),
    TEST(a_transfer_to_a_lagging_follower_catches_it_up_first),
    TEST(a_transfer_to_self_is_a_noop),
    TEST(a_transfer_to_a_non_voter_is_invalid),
    TEST(a_transfer_times_out_after_an_election_timeout),
    TEST(a_second_transfer_replaces_the_first),
    TEST(a_transfer_to_a_follower_behind_compaction_goes_through_a_snapshot),
    TEST(a_transferring_leader_steps_down_on_a_higher_term),
    TEST(a_learner_read_is_served_through_the_leader),
    TEST(removing_a_follower_shrinks_the_quorum),
    TEST(a_voter_is_demoted_to_learner),
    TEST(joint_consensus_with_explicit_leave),
    TEST(a_new_leader_refuses_a_change_until_its_pending_one_applies),
    TEST(the_leader_is_removed_in_a_joint_change),
    TEST(a_new_leader_leaves_an_auto_leave_joint_configuration),
    TEST(a_leader_stepping_down_after_its_removal_does_not_wedge_the_cluster),
    TEST(a_late_timeout_now_does_not_break_lease_reads),
    TEST(a_restarted_follower_does_not_break_lease_reads),
    TEST(an_allocation_failure_never_loses_a_read),
    TEST(a_lone_voter_sends_nothing_in_a_term_that_is_not_durable),
    TEST(a_follower_behind_compaction_gets_a_snapshot_and_appends_pause),
    TEST(a_stale_snapshot_is_ignored),
    TEST(a_snapshot_matching_the_follower_log_keeps_the_log),
    TEST(a_failed_snapshot_is_retried_and_a_reported_one_resumes_appends),
    TEST(want_snapshot_every_threshold_and_compaction_keeps_entries),
    TEST(a_snapshot_taken_event_with_bad_metadata_is_invalid),
    TEST(a_restarted_node_keeps_its_vote),
    TEST(a_restarted_node_never_reapplies_entries),
    TEST(writes_lost_in_a_crash_were_never_acknowledged),
    TEST(persisted_with_a_stale_index_and_term_is_ignored),
    TEST(bad_events_are_refused_without_any_effect),
    TEST(allocation_failures_never_corrupt_state_or_leak),
    TEST(random_faults_keep_three_nodes_safe),
    TEST(random_faults_keep_five_nodes_safe),
    TEST(random_membership_changes_keep_the_cluster_safe),
    TEST(random_replay),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("raft_more", tests);
}
