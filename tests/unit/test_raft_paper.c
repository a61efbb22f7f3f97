/*
 * The raft core against the rules of the paper, one test per rule (Ongaro & Ousterhout,
 * "In Search of an Understandable Consensus Algorithm", Figure 2 and §5), in the manner
 * of etcd-raft's raft_paper_test.go. Each test drives the core through raft.h only: on
 * raft_net (tests/unit/raft_net.h) or by feeding crafted messages to one node.
 *
 * raft_net records safety violations on every step (two leaders in a term, different
 * entries applied or committed at one index, entries handed out twice or beyond the
 * commit index); every test ends by checking there were none.
 */
#include "test.h"

#include "base/mem.h"
#include "raft/raft.h"
#include "raft_net.h"

#include <stdio.h>
#include <string.h>

/* ---- helpers ---- */

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

/* An APPEND from `from` at `term` with previous entry (prev, prev_term). */
static struct raft_msg mk_append(raft_id from, raft_id to, raft_term term, raft_index prev,
                                 raft_term prev_term, raft_index commit,
                                 const struct raft_entry *ents, uint32_t n)
{
    struct raft_msg m = mk(RAFT_MSG_APPEND, from, to, term);
    m.index = prev;
    m.log_term = prev_term;
    m.commit = commit;
    m.entries = ents;
    m.n_entries = n;
    return m;
}

/* Entries (index from `first`, terms[i]) with the same bytes net_boot_terms uses. */
static char ent_data[64][32];
static struct raft_entry ent_buf[64];

static const struct raft_entry *mk_ents(raft_index first, const raft_term *terms, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        raft_index idx = first + i;
        int len = snprintf(ent_data[i], sizeof(ent_data[i]), "i%llut%llu", (unsigned long long)idx,
                           (unsigned long long)terms[i]);
        ent_buf[i] = (struct raft_entry){.term = terms[i],
                                         .index = idx,
                                         .type = RAFT_ENTRY_NORMAL,
                                         .len = (uint32_t)len,
                                         .data = (uint8_t *)ent_data[i]};
    }
    return ent_buf;
}

static raft_id elect(struct net *net, raft_id id)
{
    net_campaign(net, id);
    net_deliver(net, 100000);
    return net_leader(net);
}

static uint32_t count_type(struct net *net, uint8_t type, raft_id from, raft_id to)
{
    return net_count(net, type, from, to);
}

/* Fails the running test if raft_net recorded a safety violation. */
#define CHECK_SAFE(net)                                                                            \
    CHECK_MSG(net_violation(net) == NULL, "safety violation: %s", net_violation(net))

static void tweak_prevote(struct raft_options *o)
{
    o->pre_vote = true;
}

static void tweak_check_quorum(struct raft_options *o)
{
    o->check_quorum = true;
}

/* ---- §5.1 term rules ---- */

/* Figure 2, "Rules for all servers": a message with a higher term makes a follower,
 * candidate or leader adopt that term and become a follower (etcd-raft
 * Test{Follower,Candidate,Leader}UpdateTermFromMessage). */
static void a_higher_term_makes_every_role_a_follower_of_that_term(void)
{
    for (int role = RAFT_FOLLOWER; role <= RAFT_LEADER; role++) {
        if (role == RAFT_PRE_CANDIDATE)
            continue;
        struct net net;
        CHECK_OK(net_init(&net, 3, NULL));
        net_tick(&net, 2, 1); /* applies the bootstrap configuration */
        if (role == RAFT_CANDIDATE)
            net_campaign(&net, 2);
        if (role == RAFT_LEADER)
            CHECK_EQ(elect(&net, 2), 2);
        net_clear(&net);
        CHECK_EQ(net_status(&net, 2).role, role);
        struct raft_msg m = mk_append(1, 2, 9, 1, 1, 1, NULL, 0);
        CHECK_OK(net_recv(&net, &m));
        struct raft_status st = net_status(&net, 2);
        CHECK_EQ(st.role, RAFT_FOLLOWER);
        CHECK_EQ(st.hard_state.term, 9);
        CHECK_EQ(st.leader, 1);
        CHECK_EQ(st.hard_state.vote, 0);
        /* The new term is persisted before anything is acknowledged. */
        CHECK(net.last_up.hard_state_changed && net.last_up.must_sync);
        CHECK_EQ(net.last_up.hard_state.term, 9);
        net_free(&net);
    }
}

/* A leader learns of a higher term from any reply, and steps down. */
static void a_leader_steps_down_on_a_reply_with_a_higher_term(void)
{
    const uint8_t types[] = {RAFT_MSG_APPEND_RESP, RAFT_MSG_HEARTBEAT_RESP, RAFT_MSG_VOTE_RESP,
                             RAFT_MSG_VOTE};
    for (size_t k = 0; k < sizeof(types); k++) {
        struct net net;
        CHECK_OK(net_init(&net, 3, NULL));
        CHECK_EQ(elect(&net, 1), 1);
        struct raft_msg m = mk(types[k], 3, 1, 7);
        m.reject = types[k] == RAFT_MSG_VOTE_RESP;
        m.index = 100; /* a VOTE from a candidate with a longer log */
        m.log_term = 7;
        CHECK_OK(net_recv(&net, &m));
        struct raft_status st = net_status(&net, 1);
        CHECK_EQ(st.role, RAFT_FOLLOWER);
        CHECK_EQ(st.hard_state.term, 7);
        CHECK_EQ(st.leader, 0);
        CHECK_SAFE(&net);
        net_free(&net);
    }
}

/* Figure 2: a message from an older term is ignored: no term, log, vote or commit change
 * (etcd-raft TestStepIgnoreOldTermMsg, TestRejectStaleTermMessage). */
static void a_message_with_a_stale_term_is_rejected_without_effect(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_clear(&net);
    struct raft_status before = net_status(&net, 2);
    CHECK_EQ(before.hard_state.term, 2);
    /* A stale leader's append would overwrite index 2 with term 1 entries. */
    raft_term t1[] = {1, 1, 1};
    struct raft_msg m = mk_append(3, 2, 1, 1, 1, 4, mk_ents(2, t1, 3), 3);
    CHECK_OK(net_recv(&net, &m));
    struct raft_msg v = mk(RAFT_MSG_VOTE, 3, 2, 1);
    v.index = 50;
    v.log_term = 1;
    CHECK_OK(net_recv(&net, &v));
    struct raft_msg hb = mk(RAFT_MSG_HEARTBEAT, 3, 2, 1);
    hb.commit = 2;
    CHECK_OK(net_recv(&net, &hb));
    struct raft_status after = net_status(&net, 2);
    CHECK(memcmp(&before, &after, sizeof(before)) == 0);
    CHECK_EQ(raft_term_at(net.nodes[2].r, 2), 2);
    /* §5.1: all three are rejected with our term, so their sender steps down. */
    CHECK_EQ(net.q_len, 3);
    CHECK_EQ(net_count(&net, RAFT_MSG_APPEND_RESP, 2, 3), 2);
    CHECK_EQ(net_count(&net, RAFT_MSG_VOTE_RESP, 2, 3), 1);
    CHECK_EQ(net.q[net.q_head].m.term, 2);
    net_clear(&net);
    /* A leader ignores a stale acknowledgement claiming a far match. */
    struct raft_msg ack = mk(RAFT_MSG_APPEND_RESP, 2, 1, 1);
    ack.index = 2;
    CHECK_OK(net_propose(&net, 1, "x"));
    net_clear(&net);
    raft_index c = net_status(&net, 1).hard_state.commit;
    ack.index = 3;
    CHECK_OK(net_recv(&net, &ack));
    ack.from = 3;
    CHECK_OK(net_recv(&net, &ack));
    CHECK_EQ(net_status(&net, 1).hard_state.commit, c);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* With CheckQuorum, a stale leader's append is answered with the current term so that
 * the stale leader steps down (etcd-raft's rule for TestFreeStuckCandidateWithCheckQuorum). */
static void a_stale_leader_learns_the_new_term_from_its_followers(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_check_quorum));
    CHECK_EQ(elect(&net, 1), 1);
    net_isolate(&net, 1, true);
    /* Nodes 2 and 3 elect a new leader once their leader lease has run out. */
    for (int i = 0; i < 60 && !net_leader(&net); i++) {
        net_tick(&net, 2, 1);
        net_tick(&net, 3, 1);
        net_deliver(&net, 100000);
        if (net_status(&net, 2).role == RAFT_LEADER || net_status(&net, 3).role == RAFT_LEADER)
            break;
    }
    raft_id l = net_status(&net, 2).role == RAFT_LEADER ? 2 : 3;
    CHECK_EQ(net_status(&net, l).role, RAFT_LEADER);
    net_isolate(&net, 1, false);
    net_clear(&net);
    CHECK_EQ(net_status(&net, 1).role, RAFT_LEADER); /* still believes it leads term 2 */
    net_tick(&net, 1, 1);                            /* heartbeats of term 2 */
    net_deliver(&net, 100000);
    CHECK_EQ(net_status(&net, 1).role, RAFT_FOLLOWER);
    CHECK_EQ(net_status(&net, 1).hard_state.term, 3);
    CHECK_EQ(net_leader(&net), l);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* ---- §5.2 leader election ---- */

/* §5.2: a follower that hears nothing for its election timeout becomes a candidate:
 * increments its term, votes for itself (durably) and asks every other voter, telling
 * them its last log position (etcd-raft TestFollowerStartElection). */
static void a_follower_times_out_and_campaigns_in_a_new_term(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    uint32_t ticks = 0;
    while (net_status(&net, 1).role == RAFT_FOLLOWER && ticks < 100) {
        net_tick(&net, 1, 1);
        ticks++;
    }
    struct raft_status st = net_status(&net, 1);
    CHECK_EQ(st.role, RAFT_CANDIDATE);
    CHECK_EQ(st.hard_state.term, 2);
    CHECK_EQ(st.hard_state.vote, 1);
    CHECK(net.last_up.must_sync && net.last_up.hard_state.vote == 1);
    for (raft_id to = 2; to <= 3; to++) {
        struct net_msg *v = net_find(&net, RAFT_MSG_VOTE, 1, to);
        CHECK(v != NULL);
        CHECK_EQ(v->m.term, 2);
        CHECK_EQ(v->m.index, 1);
        CHECK_EQ(v->m.log_term, 1);
        CHECK(v->after_persist); /* carries the new term and the self-vote */
    }
    CHECK_EQ(count_type(&net, RAFT_MSG_VOTE, 1, 0), 2);
    net_free(&net);
}

/* §5.2: a candidate wins with votes from a majority, and goes back to following when a
 * majority refused (etcd-raft TestLeaderElectionInOneRoundRPC). */
static void a_candidate_wins_with_a_majority_and_loses_with_a_majority_of_refusals(void)
{
    static const struct {
        uint32_t size;
        uint32_t grants, rejects;
        uint8_t role;
    } cases[] = {
        {1, 0, 0, RAFT_LEADER},    {3, 1, 0, RAFT_LEADER},    {3, 2, 0, RAFT_LEADER},
        {3, 0, 1, RAFT_CANDIDATE}, {3, 0, 2, RAFT_FOLLOWER},  {5, 2, 0, RAFT_LEADER},
        {5, 1, 0, RAFT_CANDIDATE}, {5, 1, 2, RAFT_CANDIDATE}, {5, 1, 3, RAFT_FOLLOWER},
        {5, 0, 3, RAFT_FOLLOWER},  {5, 4, 0, RAFT_LEADER},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct net net;
        CHECK_OK(net_init(&net, cases[k].size, NULL));
        net_campaign(&net, 1);
        net_clear(&net);
        raft_id from = 2;
        for (uint32_t i = 0; i < cases[k].grants; i++) {
            struct raft_msg r = mk(RAFT_MSG_VOTE_RESP, from++, 1, 2);
            CHECK_OK(net_recv(&net, &r));
        }
        for (uint32_t i = 0; i < cases[k].rejects; i++) {
            struct raft_msg r = mk(RAFT_MSG_VOTE_RESP, from++, 1, 2);
            r.reject = true;
            CHECK_OK(net_recv(&net, &r));
        }
        struct raft_status st = net_status(&net, 1);
        CHECK_MSG(st.role == cases[k].role, "case %zu: role %u, want %u", k, st.role,
                  cases[k].role);
        CHECK_EQ(st.hard_state.term, 2);
        net_free(&net);
    }
}

/* A candidate (or pre-candidate) that hears from a leader of its own term concedes
 * (§5.2; etcd-raft TestCandidateConcede / TestCandidateFallback). */
static void a_candidate_concedes_to_a_leader_of_its_term(void)
{
    for (int pre = 0; pre <= 1; pre++) {
        for (int hb = 0; hb <= 1; hb++) {
            struct net net;
            CHECK_OK(net_init(&net, 3, pre ? tweak_prevote : NULL));
            net_campaign(&net, 1);
            net_clear(&net);
            struct raft_status st = net_status(&net, 1);
            CHECK_EQ(st.role, pre ? RAFT_PRE_CANDIDATE : RAFT_CANDIDATE);
            raft_term t = st.hard_state.term;
            struct raft_msg m =
                hb ? mk(RAFT_MSG_HEARTBEAT, 2, 1, t) : mk_append(2, 1, t, 1, 1, 1, NULL, 0);
            CHECK_OK(net_recv(&net, &m));
            st = net_status(&net, 1);
            CHECK_EQ(st.role, RAFT_FOLLOWER);
            CHECK_EQ(st.leader, 2);
            CHECK_EQ(st.hard_state.term, t);
            CHECK_EQ(st.hard_state.vote, pre ? 0 : 1); /* a vote is never taken back */
            net_free(&net);
        }
    }
}

static uint64_t rng_u64(void *ctx)
{
    return rng_next(ctx);
}

/* A core of a `size`-voter cluster, driven directly. */
static int raw_core(struct raft **out, struct rng *g, uint32_t size, uint32_t et)
{
    raft_id ids[5] = {1, 2, 3, 4, 5};
    uint8_t buf[RAFT_CONF_CHANGE_MAX_BYTES];
    struct raft_entry e;
    struct raft_boot boot;
    int rc = raft_bootstrap(ids, size, buf, &e, &boot);
    if (rc)
        return rc;
    boot.applied = 1;
    struct raft_options o;
    raft_options_default(&o, 1, (struct aspen_random){rng_u64, g});
    o.pre_vote = false;
    o.check_quorum = false;
    o.election_ticks = et;
    return raft_create(out, &o, &boot);
}

/* Ticks until the core's term grows; returns the number of ticks. */
static uint32_t ticks_to_campaign(struct raft *r, uint32_t limit)
{
    struct raft_status st;
    raft_status(r, &st);
    raft_term t0 = st.hard_state.term;
    for (uint32_t k = 1; k <= limit; k++) {
        const struct raft_update *u;
        struct raft_event ev = {.type = RAFT_EVENT_TICK};
        raft_step(r, &ev, &u);
        if (u->term != t0)
            return k;
    }
    return 0;
}

/* §5.2: election timeouts are chosen at random from [et, 2et), for followers and again
 * for candidates after a split vote (etcd-raft Test{Follower,Candidate}ElectionTimeout
 * Randomized). */
static void election_timeouts_are_randomized_between_et_and_twice_et(void)
{
    const uint32_t et = 10;
    bool seen_f[20] = {false}, seen_c[20] = {false};
    struct rng g;
    rng_seed(&g, test_seed());
    for (int trial = 0; trial < 200; trial++) {
        struct raft *r;
        CHECK_OK(raw_core(&r, &g, 3, et));
        uint32_t f = ticks_to_campaign(r, 3 * et);
        uint32_t c = ticks_to_campaign(r, 3 * et); /* split vote: the candidate retries */
        raft_free(r);
        CHECK_MSG(f >= et && f < 2 * et, "follower timeout %u", f);
        CHECK_MSG(c >= et && c < 2 * et, "candidate timeout %u", c);
        seen_f[f] = seen_c[c] = true;
    }
    for (uint32_t t = et; t < 2 * et; t++)
        CHECK_MSG(seen_f[t] && seen_c[t], "timeout %u never drawn", t);
}

/* A leader's messages keep resetting a follower's election timer: it never campaigns
 * while it hears from the leader more often than the election timeout. */
static void a_follower_hearing_from_its_leader_never_campaigns(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    for (int round = 0; round < 20; round++) {
        net_tick(&net, 2, 9); /* just below the minimum timeout */
        net_tick(&net, 3, 9);
        net_drop(&net, 0xff, 0, 0);
        struct raft_msg hb = mk(RAFT_MSG_HEARTBEAT, 1, 2, 2);
        CHECK_OK(net_recv(&net, &hb));
        hb.to = 3;
        CHECK_OK(net_recv(&net, &hb));
        net_clear(&net);
    }
    CHECK_EQ(net_status(&net, 2).role, RAFT_FOLLOWER);
    CHECK_EQ(net_status(&net, 3).role, RAFT_FOLLOWER);
    CHECK_EQ(net_status(&net, 2).hard_state.term, 2);
    net_free(&net);
}

/* §5.2: each server votes for at most one candidate in a term, first come first served;
 * a retransmitted request from the same candidate gets the same answer (etcd-raft
 * TestVoter / TestRecvMsgVote). A new term frees the vote. */
static void a_vote_is_given_once_per_term_and_repeated_to_the_same_candidate(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    net_tick(&net, 1, 1);
    struct raft_msg v = mk(RAFT_MSG_VOTE, 2, 1, 3);
    v.index = 1;
    v.log_term = 1;
    CHECK_OK(net_recv(&net, &v));
    struct net_msg *r = net_find(&net, RAFT_MSG_VOTE_RESP, 1, 2);
    CHECK(r && !r->m.reject && r->m.term == 3);
    net_clear(&net);
    v.from = 3;
    CHECK_OK(net_recv(&net, &v));
    r = net_find(&net, RAFT_MSG_VOTE_RESP, 1, 3);
    CHECK(r && r->m.reject);
    net_clear(&net);
    v.from = 2; /* the same candidate asks again */
    CHECK_OK(net_recv(&net, &v));
    r = net_find(&net, RAFT_MSG_VOTE_RESP, 1, 2);
    CHECK(r && !r->m.reject);
    net_clear(&net);
    CHECK_EQ(net_status(&net, 1).hard_state.vote, 2);
    v.from = 3;
    v.term = 4; /* a new term: free to vote again */
    CHECK_OK(net_recv(&net, &v));
    r = net_find(&net, RAFT_MSG_VOTE_RESP, 1, 3);
    CHECK(r && !r->m.reject && r->m.term == 4);
    CHECK_EQ(net_status(&net, 1).hard_state.vote, 3);
    net_free(&net);
}

/* §5.4.1: a vote (and a pre-vote) goes only to a candidate whose log is at least as up to
 * date: a higher last term wins over a longer log; with equal last terms the longer log
 * wins (etcd-raft TestVoter, TestRecvMsgVote, and canary vote_without_log_check). */
static void a_vote_requires_a_log_at_least_as_up_to_date_both_ways(void)
{
    /* The voter's log: 1:t1 2:t2 3:t2. */
    static const raft_term voter[] = {2, 2};
    static const struct {
        raft_index index;
        raft_term term;
        bool grant;
    } cases[] = {
        {3, 2, true},  /* same last entry */
        {4, 2, true},  /* same term, longer */
        {2, 2, false}, /* same term, shorter */
        {9, 1, false}, /* longer, but an older last term */
        {1, 3, true},  /* shorter, but a newer last term */
        {2, 3, true},  {0, 0, false}, {3, 1, false},
    };
    for (int pre = 0; pre <= 1; pre++) {
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
            struct net net;
            CHECK_OK(net_init(&net, 3, pre ? tweak_prevote : NULL));
            CHECK_OK(net_boot_terms(&net, 1, 3, voter, 2, 2, pre ? tweak_prevote : NULL));
            struct raft_msg v = mk(pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE, 2, 1, 3);
            v.index = cases[k].index;
            v.log_term = cases[k].term;
            CHECK_OK(net_recv(&net, &v));
            struct net_msg *r =
                net_find(&net, pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, 1, 2);
            CHECK(r != NULL);
            CHECK_MSG(r->m.reject == !cases[k].grant, "%s case %zu (%llu, t%llu): reject=%d",
                      pre ? "prevote" : "vote", k, (unsigned long long)cases[k].index,
                      (unsigned long long)cases[k].term, r->m.reject);
            struct raft_status st = net_status(&net, 1);
            /* A pre-vote changes neither the term nor the vote. */
            CHECK_EQ(st.hard_state.term, pre ? 2 : 3);
            CHECK_EQ(st.hard_state.vote, !pre && cases[k].grant ? 2 : 0);
            net_free(&net);
        }
    }
}

/* Figure 2 (persistent state): a vote is on stable storage before the grant goes out:
 * the update carries the vote in its hard state with a sync, and the grant is marked
 * after_persist (canary vote_not_persisted). */
static void a_vote_grant_waits_for_the_vote_to_be_durable(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    net_tick(&net, 1, 1);
    struct raft_msg v = mk(RAFT_MSG_VOTE, 2, 1, 2);
    v.index = 1;
    v.log_term = 1;
    CHECK_OK(net_recv(&net, &v));
    CHECK(net.last_up.must_persist && net.last_up.must_sync && net.last_up.hard_state_changed);
    CHECK_EQ(net.last_up.hard_state.term, 2);
    CHECK_EQ(net.last_up.hard_state.vote, 2);
    struct net_msg *r = net_find(&net, RAFT_MSG_VOTE_RESP, 1, 2);
    CHECK(r && !r->m.reject && r->after_persist);
    /* The storage the node restarts from holds the vote. */
    CHECK_EQ(net.nodes[1].store.hs.vote, 2);
    net_free(&net);
}

/* ---- §5.3 log replication ---- */

/* §5.3/§8: a new leader appends a no-op of its term and sends it to every follower
 * (etcd-raft TestLeaderStartReplication); a proposal is then appended at the next index
 * and sent at once to followers known to be in sync. */
static void a_new_leader_appends_a_noop_and_replicates_proposals(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    net_campaign(&net, 1);
    net_deliver_only(&net, RAFT_MSG_VOTE, 0, 0);
    net_deliver_only(&net, RAFT_MSG_VOTE_RESP, 0, 0);
    CHECK_EQ(net_status(&net, 1).role, RAFT_LEADER);
    const struct raft_entry *noop = raft_entry_at(net.nodes[1].r, 2);
    CHECK(noop && noop->term == 2 && noop->len == 0 && noop->type == RAFT_ENTRY_NORMAL);
    for (raft_id to = 2; to <= 3; to++) {
        struct net_msg *a = net_find(&net, RAFT_MSG_APPEND, 1, to);
        CHECK(a != NULL);
        CHECK_EQ(a->m.index, 1);
        CHECK_EQ(a->m.log_term, 1);
        CHECK_EQ(a->m.n_entries, 1);
        CHECK_EQ(a->m.entries[0].index, 2);
        CHECK_EQ(a->m.entries[0].term, 2);
    }
    net_deliver(&net, 100000);
    CHECK_EQ(net_status(&net, 1).hard_state.commit, 2);
    CHECK_OK(net_propose(&net, 1, "x"));
    CHECK_EQ(net.last_up.proposed_index, 3);
    CHECK_EQ(net.last_up.proposed_term, 2);
    for (raft_id to = 2; to <= 3; to++) {
        struct net_msg *a = net_find(&net, RAFT_MSG_APPEND, 1, to);
        CHECK(a != NULL);
        CHECK_EQ(a->m.index, 2);
        CHECK_EQ(a->m.log_term, 2);
        CHECK_EQ(a->m.commit, 2);
        CHECK_EQ(a->m.n_entries, 1);
        CHECK(a->m.entries[0].len == 1 && a->m.entries[0].data[0] == 'x');
    }
    net_free(&net);
}

/* §5.3: an entry is committed once the leader has it replicated on a majority, counting
 * the leader only once its own write is durable; followers learn the new commit index
 * (etcd-raft TestLeaderCommitEntry, TestLeaderAcknowledgeCommit). */
static void a_leader_commits_once_a_majority_holds_the_entry(void)
{
    static const struct {
        uint32_t size;
        uint32_t acks; /* followers 2..acks+1 acknowledge */
        bool commit;
    } cases[] = {
        {1, 0, true},  {3, 0, false}, {3, 1, true}, {3, 2, true},
        {5, 1, false}, {5, 2, true},  {5, 3, true}, {5, 4, true},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct net net;
        CHECK_OK(net_init(&net, cases[k].size, NULL));
        CHECK_EQ(elect(&net, 1), 1);
        CHECK_OK(net_propose(&net, 1, "x"));
        net_clear(&net);
        for (uint32_t i = 0; i < cases[k].acks; i++) {
            struct raft_msg a = mk(RAFT_MSG_APPEND_RESP, 2 + i, 1, 2);
            a.index = 3;
            CHECK_OK(net_recv(&net, &a));
        }
        CHECK_MSG((net_status(&net, 1).hard_state.commit == 3) == cases[k].commit,
                  "case %zu: commit %llu", k,
                  (unsigned long long)net_status(&net, 1).hard_state.commit);
        if (cases[k].commit && cases[k].size > 1) {
            /* Every follower is told. */
            for (raft_id to = 2; to <= cases[k].size; to++) {
                struct net_msg *a = net_find(&net, RAFT_MSG_APPEND, 1, to);
                CHECK(a && a->m.commit == 3);
            }
        }
        net_free(&net);
    }
}

/* §5.3: when the leader commits an entry of its term, the preceding entries of older
 * terms commit with it and are applied in order (etcd-raft
 * TestLeaderCommitPrecedingEntries). */
static void committing_a_current_term_entry_commits_all_preceding_entries(void)
{
    static const raft_term old[] = {2, 2, 3};
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    for (raft_id id = 1; id <= 3; id++)
        CHECK_OK(net_boot_terms(&net, id, 3, old, 3, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_run(&net, 2);
    for (raft_id id = 1; id <= 3; id++) {
        struct net_node *nd = &net.nodes[id];
        CHECK_EQ(net_status(&net, id).hard_state.commit, 5);
        CHECK_EQ(nd->n_applied, 4);
        for (uint32_t i = 0; i < 4; i++)
            CHECK_EQ(nd->applied_index[i], 2 + i);
        CHECK_EQ(nd->applied_term[3], 4);
    }
    CHECK_SAFE(&net);
    net_free(&net);
}

/* §5.3 consistency check: a follower refuses an append whose previous entry it lacks or
 * holds with another term, and its log stays as it was (etcd-raft TestFollowerCheckMsgApp). */
static void a_follower_rejects_an_append_whose_previous_entry_does_not_match(void)
{
    static const raft_term log[] = {2, 2}; /* 1:t1 2:t2 3:t2 */
    static const struct {
        raft_index prev;
        raft_term prev_term;
        bool reject;
        raft_index index; /* the response's index */
    } cases[] = {
        {0, 0, false, 1}, /* below the commit index: answered with it */
        {1, 1, false, 1}, {2, 2, false, 2}, {3, 2, false, 3}, {3, 3, true, 3}, /* term mismatch */
        {4, 2, true, 4},                                                       /* beyond the log */
        {2, 1, true, 2},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct net net;
        CHECK_OK(net_init(&net, 3, NULL));
        CHECK_OK(net_boot_terms(&net, 2, 3, log, 2, 2, NULL));
        struct raft_msg m = mk_append(1, 2, 3, cases[k].prev, cases[k].prev_term, 1, NULL, 0);
        CHECK_OK(net_recv(&net, &m));
        struct net_msg *r = net_find(&net, RAFT_MSG_APPEND_RESP, 2, 1);
        CHECK(r != NULL);
        CHECK_MSG(r->m.reject == cases[k].reject && r->m.index == cases[k].index,
                  "case %zu: reject=%d index=%llu", k, r->m.reject, (unsigned long long)r->m.index);
        if (r->m.reject)
            CHECK(r->m.reject_hint <= 3);
        struct raft_status st = net_status(&net, 2);
        CHECK_EQ(st.last_index, 3);
        CHECK_EQ(raft_term_at(net.nodes[2].r, 3), 2);
        CHECK_EQ(st.hard_state.commit, 1);
        CHECK_EQ(st.leader, 1);
        net_free(&net);
    }
}

/* §5.3: a follower deletes a conflicting entry and all that follow it, appends the new
 * entries, and never truncates on an entry it already holds (a delayed, shorter append
 * must not cut the log) (etcd-raft TestFollowerAppendEntries). */
static void a_follower_truncates_a_conflicting_tail_and_appends(void)
{
    static const raft_term log[] = {2, 3}; /* 1:t1 2:t2 3:t3 */
    static const struct {
        raft_index prev;
        raft_term prev_term;
        raft_term ents[3];
        uint32_t n;
        raft_term want[4]; /* terms of indexes 1.. */
        uint32_t want_n;
        raft_index persist_from; /* 0: nothing to persist */
    } cases[] = {
        {3, 3, {4}, 1, {1, 2, 3, 4}, 4, 4},
        {2, 2, {4}, 1, {1, 2, 4}, 3, 3},
        {1, 1, {2, 3, 4}, 3, {1, 2, 3, 4}, 4, 4},
        {1, 1, {2}, 1, {1, 2, 3}, 3, 0}, /* stale and shorter: nothing changes */
        {1, 1, {2, 3}, 2, {1, 2, 3}, 3, 0},
        {1, 1, {4}, 1, {1, 4}, 2, 2},
        {0, 0, {1}, 1, {1, 2, 3}, 3, 0}, /* below the commit index */
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct net net;
        CHECK_OK(net_init(&net, 3, NULL));
        CHECK_OK(net_boot_terms(&net, 2, 3, log, 2, 3, NULL));
        struct raft_msg m =
            mk_append(1, 2, 4, cases[k].prev, cases[k].prev_term, 1,
                      mk_ents(cases[k].prev + 1, cases[k].ents, cases[k].n), cases[k].n);
        CHECK_OK(net_recv(&net, &m));
        struct raft_status st = net_status(&net, 2);
        CHECK_MSG(st.last_index == cases[k].want_n, "case %zu: last %llu", k,
                  (unsigned long long)st.last_index);
        for (uint32_t i = 0; i < cases[k].want_n; i++)
            CHECK_MSG(raft_term_at(net.nodes[2].r, i + 1) == cases[k].want[i],
                      "case %zu: index %u term %llu", k, i + 1,
                      (unsigned long long)raft_term_at(net.nodes[2].r, i + 1));
        /* The update says what to persist: from the first changed index. */
        if (cases[k].persist_from)
            CHECK_MSG(net.last_up.n_entries > 0, "case %zu: nothing to persist", k);
        else
            CHECK_EQ(net.last_up.n_entries, 0);
        CHECK_EQ(net.nodes[2].store.snap.index + net.nodes[2].store.n, cases[k].want_n);
        const char *bad = net_check_store(&net, 2);
        CHECK_MSG(bad == NULL, "%s", bad);
        struct net_msg *r = net_find(&net, RAFT_MSG_APPEND_RESP, 2, 1);
        CHECK(r && !r->m.reject);
        if (cases[k].persist_from)
            CHECK(r->after_persist);
        net_free(&net);
    }
}

/* §5.3: a follower sets its commit index to min(leaderCommit, index of the last new
 * entry): entries past what this append verified may still differ from the leader's
 * (etcd-raft TestFollowerCommitEntry; copycat#265). A heartbeat's commit is capped by
 * the follower's log. */
static void a_follower_commits_min_of_leader_commit_and_last_new_entry(void)
{
    static const raft_term log[] = {1, 2, 2, 2}; /* 1:t1 2:t1 3..5:t2 */
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_OK(net_boot_terms(&net, 2, 3, log, 4, 2, NULL));
    /* The leader of term 3 verifies only up to index 2. */
    struct raft_msg m = mk_append(1, 2, 3, 2, 1, 5, NULL, 0);
    CHECK_OK(net_recv(&net, &m));
    CHECK_EQ(net_status(&net, 2).hard_state.commit, 2);
    CHECK_EQ(net.nodes[2].n_applied, 1);
    /* Now one new entry at 3 (term 3): the old 3..5 go, commit stops at 3. */
    static const raft_term t3[] = {3};
    m = mk_append(1, 2, 3, 2, 1, 5, mk_ents(3, t3, 1), 1);
    CHECK_OK(net_recv(&net, &m));
    struct raft_status st = net_status(&net, 2);
    CHECK_EQ(st.last_index, 3);
    CHECK_EQ(st.hard_state.commit, 3);
    /* A heartbeat never commits beyond the follower's last index. */
    struct raft_msg hb = mk(RAFT_MSG_HEARTBEAT, 1, 2, 3);
    hb.commit = 9;
    CHECK_OK(net_recv(&net, &hb));
    CHECK_EQ(net_status(&net, 2).hard_state.commit, 3);
    CHECK_EQ(net.nodes[2].n_applied, 2);
    CHECK_EQ(net.nodes[2].applied_term[1], 3);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* State Machine Safety: a follower applies only committed entries, however many it
 * holds (canary apply_uncommitted). */
static void a_follower_applies_only_committed_entries(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    net_tick(&net, 2, 1);
    static const raft_term t2[] = {2, 2, 2};
    struct raft_msg m = mk_append(1, 2, 2, 1, 1, 1, mk_ents(2, t2, 3), 3);
    CHECK_OK(net_recv(&net, &m));
    CHECK_EQ(net.last_up.n_committed, 0);
    CHECK_EQ(net_status(&net, 2).applied, 1);
    m = mk_append(1, 2, 2, 4, 2, 3, NULL, 0);
    CHECK_OK(net_recv(&net, &m));
    CHECK_EQ(net.last_up.n_committed, 2);
    CHECK_EQ(net_status(&net, 2).applied, 3);
    CHECK_EQ(net.nodes[2].applied_index[net.nodes[2].n_applied - 1], 3);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* §5.3/§5.4: a follower acknowledges entries only once they are durable: the
 * acknowledgement is marked after_persist and, with an asynchronous disk, the leader
 * cannot commit before the followers' writes complete (canary ack_before_durable). */
static void appends_are_acknowledged_only_once_durable(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net.nodes[1].async = net.nodes[2].async = net.nodes[3].async = true;
    CHECK_OK(net_propose(&net, 1, "x"));
    net_deliver(&net, 100000);
    /* Nobody's write has completed: nothing may be committed. */
    CHECK_EQ(net_status(&net, 1).hard_state.commit, 2);
    CHECK_EQ(count_type(&net, RAFT_MSG_APPEND_RESP, 0, 0), 0);
    net_persist_all(&net, 2);
    net_deliver(&net, 100000);
    /* Follower 2 holds it durably, the leader does not yet: one of three. */
    CHECK_EQ(net_status(&net, 1).hard_state.commit, 2);
    net_persist_all(&net, 1);
    CHECK_EQ(net_status(&net, 1).hard_state.commit, 3);
    net_free(&net);
}

/* Leader Append-Only (Figure 3): a leader never overwrites or deletes entries in its log,
 * whatever it receives (rejections with odd hints, stale appends, duplicate acks). */
static void a_leader_never_overwrites_or_deletes_its_entries(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    for (int i = 0; i < 4; i++)
        CHECK_OK(net_propose(&net, 1, "e"));
    net_clear(&net);
    struct raft_status before = net_status(&net, 1);
    raft_term terms[8];
    for (raft_index i = 1; i <= before.last_index; i++)
        terms[i - 1] = raft_term_at(net.nodes[1].r, i);
    static const raft_term t1[] = {1, 1, 1};
    struct raft_msg msgs[6];
    msgs[0] = mk_append(2, 1, 1, 1, 1, 1, mk_ents(2, t1, 3), 3); /* stale leader */
    msgs[1] = mk(RAFT_MSG_APPEND_RESP, 2, 1, 2);
    msgs[1].reject = true;
    msgs[1].index = 6;
    msgs[1].reject_hint = 0;
    msgs[2] = msgs[1];
    msgs[2].reject_hint = 100;
    msgs[2].log_term = 9;
    msgs[3] = mk(RAFT_MSG_APPEND_RESP, 3, 1, 2);
    msgs[3].index = 6;
    msgs[4] = mk(RAFT_MSG_HEARTBEAT_RESP, 3, 1, 2);
    msgs[5] = mk(RAFT_MSG_VOTE, 3, 1, 2);
    msgs[5].index = 99;
    msgs[5].log_term = 2;
    for (size_t k = 0; k < 6; k++) {
        CHECK_OK(net_recv(&net, &msgs[k]));
        struct raft_status st = net_status(&net, 1);
        CHECK_EQ(st.role, RAFT_LEADER);
        CHECK(st.last_index >= before.last_index);
        for (raft_index i = 1; i <= before.last_index; i++)
            CHECK_EQ(raft_term_at(net.nodes[1].r, i), terms[i - 1]);
    }
    CHECK_SAFE(&net);
    net_free(&net);
}

/* Figure 7: whatever a follower's log looks like (missing entries, extra uncommitted
 * entries, both), the leader of term 8 brings it to match its own (etcd-raft
 * TestLeaderSyncFollowerLog). Index 1 is the bootstrap entry (term 1). */
static void figure7_the_leader_repairs_every_divergent_follower_log(void)
{
    static const raft_term leader[] = {1, 1, 4, 4, 5, 5, 6, 6, 6};
    static const struct {
        raft_term terms[12];
        uint32_t n;
    } followers[] = {
        {{1, 1, 4, 4, 5, 5, 6, 6}, 8},           /* (a) */
        {{1, 1, 4}, 3},                          /* (b) */
        {{1, 1, 4, 4, 5, 5, 6, 6, 6, 6}, 10},    /* (c) */
        {{1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, 11}, /* (d) */
        {{1, 1, 4, 4, 4, 4}, 6},                 /* (e) */
        {{1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 10},    /* (f) */
    };
    for (size_t k = 0; k < sizeof(followers) / sizeof(followers[0]); k++) {
        struct net net;
        CHECK_OK(net_init(&net, 3, NULL));
        CHECK_OK(net_boot_terms(&net, 1, 3, leader, 9, 7, NULL));
        CHECK_OK(net_boot_terms(&net, 2, 3, followers[k].terms, followers[k].n, 7, NULL));
        CHECK_OK(net_boot_terms(&net, 3, 3, leader, 9, 7, NULL)); /* votes for 1 */
        CHECK_EQ(elect(&net, 1), 1);
        CHECK_EQ(net_status(&net, 1).hard_state.term, 8);
        net_run(&net, 3);
        struct raft_status l = net_status(&net, 1), f = net_status(&net, 2);
        CHECK_MSG(f.last_index == l.last_index, "follower (%c): last %llu, leader %llu",
                  (int)('a' + k), (unsigned long long)f.last_index,
                  (unsigned long long)l.last_index);
        for (raft_index i = 1; i <= l.last_index; i++)
            CHECK_MSG(raft_term_at(net.nodes[2].r, i) == raft_term_at(net.nodes[1].r, i),
                      "follower (%c): index %llu differs", (int)('a' + k), (unsigned long long)i);
        CHECK_EQ(f.hard_state.commit, l.hard_state.commit);
        CHECK_EQ(l.hard_state.commit, 11);
        CHECK_SAFE(&net);
        net_free(&net);
    }
}

/* Drops appends that would give node 3 an entry of term 4 once it holds entry 2. */
static bool drop_term4_to_3(struct net *net, const struct raft_msg *m, void *ctx)
{
    (void)ctx;
    if (m->type != RAFT_MSG_APPEND || m->to != 3 || raft_term_at(net->nodes[3].r, 2) != 2)
        return false;
    for (uint32_t i = 0; i < m->n_entries; i++)
        if (m->entries[i].term == 4)
            return true;
    return false;
}

static void tweak_one_entry_per_msg(struct raft_options *o)
{
    o->max_msg_entries = 1;
}

/* Figure 8 (§5.4.2), played out on five nodes: S1, leader of term 4, gets its term-2
 * entry onto a majority (S1, S2, S3) but must not count it committed; S5 can still be
 * elected and overwrite it. Entries of older terms commit only together with an entry of
 * the leader's term (canary old_term_commit). */
static void figure8_an_old_term_entry_on_a_majority_is_not_committed(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 5, tweak_one_entry_per_msg));
    for (raft_id i = 1; i <= 5; i++)
        net_tick(&net, i, 1);
    /* (a) S1 leads term 2; its entry 2 reaches S2 only. */
    net_campaign(&net, 1);
    net_deliver_only(&net, RAFT_MSG_VOTE, 0, 0);
    net_deliver_only(&net, RAFT_MSG_VOTE_RESP, 0, 0);
    CHECK_EQ(net_status(&net, 1).role, RAFT_LEADER);
    net_deliver_only(&net, RAFT_MSG_APPEND, 1, 2);
    net_clear(&net);
    CHECK_EQ(raft_term_at(net.nodes[2].r, 2), 2);
    /* (b) S1 crashes; S5 wins term 3 with S3, S4 and appends entry 2 of term 3 alone. */
    net_isolate(&net, 1, true);
    net_campaign(&net, 5);
    net_deliver_only(&net, RAFT_MSG_VOTE, 0, 0);
    net_deliver_only(&net, RAFT_MSG_VOTE_RESP, 0, 0);
    CHECK_EQ(net_status(&net, 5).role, RAFT_LEADER);
    CHECK_EQ(net_status(&net, 5).hard_state.term, 3);
    net_clear(&net);
    net_isolate(&net, 5, true);
    /* (c) S1 restarts and wins term 4 (after losing term 3); it brings S3 its term-2
     * entry but S3's copy of the term-4 no-op is lost. */
    net_isolate(&net, 1, false);
    CHECK_OK(net_restart(&net, 1));
    net.filter = drop_term4_to_3;
    for (int i = 0; i < 2 && net_status(&net, 1).role != RAFT_LEADER; i++) {
        net_campaign(&net, 1);
        net_deliver_only(&net, RAFT_MSG_VOTE, 0, 0);
        net_deliver_only(&net, RAFT_MSG_VOTE_RESP, 0, 0);
    }
    CHECK_EQ(net_status(&net, 1).role, RAFT_LEADER);
    CHECK_EQ(net_status(&net, 1).hard_state.term, 4);
    net_isolate(&net, 4, true); /* S4 voted but is gone before it gets anything */
    for (int i = 0; i < 5; i++)
        net_deliver(&net, 100000);
    CHECK_EQ(raft_term_at(net.nodes[3].r, 2), 2);
    CHECK_EQ(net_status(&net, 3).last_index, 2);
    CHECK_EQ(raft_term_at(net.nodes[2].r, 3), 4);
    /* Entry 2 is on S1, S2, S3 — a majority — but of term 2: not committed. */
    CHECK_EQ(net_status(&net, 1).hard_state.commit, 1);
    /* (d) S1 crashes again; S5 wins term 5 and replaces entry 2 everywhere. */
    net.filter = NULL;
    net_clear(&net);
    net_isolate(&net, 1, true);
    net_isolate(&net, 4, false);
    net_isolate(&net, 5, false);
    CHECK_OK(net_restart(&net, 5));
    for (int i = 0; i < 3 && net_status(&net, 5).role != RAFT_LEADER; i++) {
        net_campaign(&net, 5);
        net_deliver_only(&net, RAFT_MSG_VOTE, 0, 0);
        net_deliver_only(&net, RAFT_MSG_VOTE_RESP, 0, 0);
    }
    CHECK_EQ(net_status(&net, 5).role, RAFT_LEADER);
    net_run(&net, 3);
    net_isolate(&net, 1, false);
    net_run(&net, 3);
    for (raft_id i = 1; i <= 5; i++) {
        CHECK_EQ(raft_term_at(net.nodes[i].r, 2), 3);
        CHECK(net_status(&net, i).hard_state.commit >= 3);
    }
    CHECK_SAFE(&net);
    net_free(&net);
}

/* §5.4.1 Leader Completeness in an election: a node that missed a committed entry cannot
 * win even if it times out first; one that holds it can. */
static void a_node_missing_a_committed_entry_is_never_elected(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 5, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    net_isolate(&net, 4, true);
    net_isolate(&net, 5, true);
    CHECK_OK(net_propose(&net, 1, "committed"));
    net_deliver(&net, 100000);
    CHECK_EQ(net_status(&net, 1).hard_state.commit, 3);
    net_heal(&net);
    net_isolate(&net, 1, true);
    for (raft_id c = 4; c <= 5; c++) {
        net_campaign(&net, c);
        net_deliver(&net, 100000);
        CHECK(net_status(&net, c).role != RAFT_LEADER);
    }
    raft_id l = elect(&net, 2);
    CHECK(l >= 2 && l <= 3);
    net_run(&net, 2);
    CHECK_EQ(raft_term_at(net.nodes[5].r, 3), 2);
    CHECK_SAFE(&net);
    net_free(&net);
}

/* §8 (client interaction): a leader must know which entries are committed before it
 * answers a read-only request, so it first commits a blank no-op of its term; a new
 * leader that has not yet done so answers no read, even when a heartbeat round proves it
 * is still leader (canary read_before_term_commit). */
static void a_read_waits_until_the_leader_commits_its_noop(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, NULL));
    CHECK_EQ(elect(&net, 1), 1);
    CHECK_OK(net_propose(&net, 1, "w"));
    net_deliver_only(&net, RAFT_MSG_APPEND, 1, 0);
    net_deliver_only(&net, RAFT_MSG_APPEND_RESP, 0, 1);
    CHECK_EQ(net_status(&net, 1).hard_state.commit, 3); /* "w" is committed */
    net_clear(&net);
    CHECK_EQ(net_status(&net, 3).hard_state.commit, 2); /* 3 does not know */
    net_isolate(&net, 1, true);
    net_campaign(&net, 3);
    net_deliver_only(&net, RAFT_MSG_VOTE, 0, 0);
    net_deliver_only(&net, RAFT_MSG_VOTE_RESP, 0, 0);
    CHECK_EQ(net_status(&net, 3).role, RAFT_LEADER);
    net_clear(&net); /* the no-op's appends are lost */
    CHECK_OK(net_read(&net, 3, 7));
    for (int i = 0; i < 3; i++) {
        net_tick(&net, 3, 1);
        net_deliver_only(&net, RAFT_MSG_HEARTBEAT, 3, 0);
        net_deliver_only(&net, RAFT_MSG_HEARTBEAT_RESP, 0, 3);
        net_clear(&net);
    }
    CHECK_EQ(net.nodes[3].n_reads, 0);
    net_run(&net, 3);
    CHECK_EQ(net.nodes[3].n_reads, 1);
    CHECK_EQ(net.nodes[3].reads[0].err, 0);
    CHECK_EQ(net.nodes[3].reads[0].index, 4); /* its no-op: covers "w" */
    net_free(&net);
}

/* ---- heartbeats ---- */

static void tweak_heartbeat3(struct raft_options *o)
{
    o->heartbeat_ticks = 3;
}

/* §5.2: a leader sends heartbeats to every follower once per heartbeat interval, and
 * nothing in between when idle (etcd-raft TestLeaderBcastBeat). */
static void a_leader_sends_heartbeats_every_heartbeat_interval(void)
{
    struct net net;
    CHECK_OK(net_init(&net, 3, tweak_heartbeat3));
    CHECK_EQ(elect(&net, 1), 1);
    net_clear(&net);
    for (uint32_t t = 1; t <= 30; t++) {
        net_tick(&net, 1, 1);
        uint32_t want = t % 3 == 0 ? 1 : 0;
        CHECK_MSG(count_type(&net, RAFT_MSG_HEARTBEAT, 1, 2) == want &&
                      count_type(&net, RAFT_MSG_HEARTBEAT, 1, 3) == want,
                  "tick %u: heartbeats %u/%u", t, count_type(&net, RAFT_MSG_HEARTBEAT, 1, 2),
                  count_type(&net, RAFT_MSG_HEARTBEAT, 1, 3));
        CHECK_EQ(count_type(&net, RAFT_MSG_APPEND, 1, 0), 0);
        if (want) {
            struct net_msg *hb = net_find(&net, RAFT_MSG_HEARTBEAT, 1, 2);
            CHECK_EQ(hb->m.commit, 2);
            CHECK_EQ(hb->m.term, 2);
        }
        net_deliver(&net, 100000);
    }
    net_free(&net);
}

static const struct test_case tests[] = {
    TEST(a_higher_term_makes_every_role_a_follower_of_that_term),
    TEST(a_leader_steps_down_on_a_reply_with_a_higher_term),
    TEST(a_message_with_a_stale_term_is_rejected_without_effect),
    TEST(a_stale_leader_learns_the_new_term_from_its_followers),
    TEST(a_follower_times_out_and_campaigns_in_a_new_term),
    TEST(a_candidate_wins_with_a_majority_and_loses_with_a_majority_of_refusals),
    TEST(a_candidate_concedes_to_a_leader_of_its_term),
    TEST(election_timeouts_are_randomized_between_et_and_twice_et),
    TEST(a_follower_hearing_from_its_leader_never_campaigns),
    TEST(a_vote_is_given_once_per_term_and_repeated_to_the_same_candidate),
    TEST(a_vote_requires_a_log_at_least_as_up_to_date_both_ways),
    TEST(a_vote_grant_waits_for_the_vote_to_be_durable),
    TEST(a_new_leader_appends_a_noop_and_replicates_proposals),
    TEST(a_leader_commits_once_a_majority_holds_the_entry),
    TEST(committing_a_current_term_entry_commits_all_preceding_entries),
    TEST(a_follower_rejects_an_append_whose_previous_entry_does_not_match),
    TEST(a_follower_truncates_a_conflicting_tail_and_appends),
    TEST(a_follower_commits_min_of_leader_commit_and_last_new_entry),
    TEST(a_follower_applies_only_committed_entries),
    TEST(appends_are_acknowledged_only_once_durable),
    TEST(a_leader_never_overwrites_or_deletes_its_entries),
    TEST(figure7_the_leader_repairs_every_divergent_follower_log),
    TEST(figure8_an_old_term_entry_on_a_majority_is_not_committed),
    TEST(a_node_missing_a_committed_entry_is_never_elected),
    TEST(a_read_waits_until_the_leader_commits_its_noop),
    TEST(a_leader_sends_heartbeats_every_heartbeat_interval),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("raft_paper", tests);
}
