/*
 * Linearizable reads by ReadIndex (thesis §6.4), batched, with optional leases (§6.4.1).
 *
 * A read is safe at index i if, after the read arrived, the leader (1) had committed an
 * entry of its own term — so its commit index covers every write acknowledged before it
 * became leader (etcd#7331 is what happens without this) — and (2) confirmed with a
 * quorum that it was still leader. The read then waits until the state machine applied i.
 *
 * Confirmation rides on heartbeats. Each heartbeat broadcast opens a new round numbered
 * by the leader (never reused, never chosen by clients: etcd#20418 / raft#397 was a stale
 * read caused by a retried request reusing its context). Every read waiting when a round
 * starts is stamped with it, so one heartbeat round serves any number of reads; a round
 * is confirmed once a quorum acknowledged it or a later one.
 *
 * Lease reads skip the round trip: a round acknowledged by a quorum proves that no other
 * leader can be elected before (round start + election timeout), because followers that
 * heard from us ignore candidates that long (CheckQuorum's lease). Minus the configured
 * clock-drift bound, that is how long we may serve reads from our commit index alone.
 */
#include "raft/internal.h"

#include "base/assert.h"
#include "base/mem.h"
#include "raft/canary.h"

static int push_out(struct raft *r, uint64_t ctx, raft_index index, int err)
{
    int rc = mem_grow(&r->out_reads, &r->cap_out_reads, r->n_out_reads, sizeof(*r->out_reads), 16,
                      SIZE_MAX);
    if (rc)
        return rc;
    r->out_reads[r->n_out_reads++] = (struct raft_read_state){ctx, index, err};
    return 0;
}

/* Answers one read: locally, or to the follower that forwarded it. False if out of
 * memory: the read stays queued and is answered at a later confirmation. */
static bool answer(struct raft *r, const struct pending_read *p, raft_index index, int err)
{
    if (p->from == 0) {
        int rc = push_out(r, p->ctx, index, err);
        if (rc)
            r->step_err = rc;
        return rc == 0;
    }
    struct raft_msg *m = raft_send(r, RAFT_MSG_READ_INDEX_RESP, p->from);
    if (!m)
        return false;
    m->context = p->ctx;
    m->index = index;
    m->reject = err != 0;
    return true;
}

static struct pending_read *read_at(struct raft *r, uint32_t i)
{
    return &r->reads[(r->reads_head + i) % r->reads_cap];
}

static void pop_read(struct raft *r)
{
    r->reads_head = (r->reads_head + 1) % r->reads_cap;
    r->reads_count--;
}

static int enqueue(struct raft *r, const struct pending_read *p)
{
    if (r->reads_count == ASPEN_RAFT_MAX_PENDING_READS)
        return ASPEN_E_BUSY;
    if (r->reads_count == r->reads_cap) {
        uint32_t cap = r->reads_cap ? r->reads_cap * 2 : 64;
        struct pending_read *n = mem_alloc(cap * sizeof(*n));
        if (!n)
            return ASPEN_E_NOMEM;
        for (uint32_t i = 0; i < r->reads_count; i++)
            n[i] = *read_at(r, i);
        mem_free(r->reads);
        r->reads = n;
        r->reads_cap = cap;
        r->reads_head = 0;
    }
    *read_at(r, r->reads_count++) = *p;
    return 0;
}

static bool committed_in_term(const struct raft *r)
{
    if (CANARY(READ_BEFORE_TERM_COMMIT))
        return true;
    raft_term t;
    return log_term(&r->log, r->commit, &t) && t == r->term;
}

uint64_t read_next_round(struct raft *r)
{
    r->read_round++;
    /* A round announced during a transfer proves no lease: its acknowledgements come from
     * voters ready to elect the transferee at once. */
    r->round_tick[r->read_round % READ_ROUND_TICKS] = r->transferee ? UINT64_MAX : r->now;
    /* Stamp every read still waiting for a round. Reads queue in arrival order and
     * rounds only grow, so the unstamped ones are a suffix. */
    raft_index index = r->commit;
    for (uint32_t i = r->reads_count; i > 0; i--) {
        struct pending_read *p = read_at(r, i - 1);
        if (p->round)
            break;
        if (p->index == 0 && !committed_in_term(r))
            break;
        p->round = r->read_round;
        p->index = index;
    }
    return r->read_round;
}

static bool single_voter(const struct raft *r)
{
    return r->conf.n_voters == 1 && r->conf.n_outgoing == 0 && r->conf.voters[0] == r->id;
}

int read_request(struct raft *r, uint64_t ctx, raft_id from)
{
    if (r->role != RAFT_LEADER) {
        if (from != 0)
            return 0;
        if (r->leader == 0)
            return ASPEN_E_NOT_LEADER;
        /* Ask the leader for a read index; its answer comes back as a read state. */
        struct raft_msg *m = raft_send(r, RAFT_MSG_READ_INDEX, r->leader);
        if (!m)
            return ASPEN_E_NOMEM;
        m->context = ctx;
        return 0;
    }
    struct pending_read p = {.ctx = ctx, .from = from};
    if (committed_in_term(r)) {
        bool lease = r->o.lease_reads && r->now < r->lease_until && r->transferee == 0;
        if (single_voter(r) || lease) {
            answer(r, &p, r->commit, 0);
            return r->step_err;
        }
        p.index = r->commit;
    }
    int rc = enqueue(r, &p);
    if (rc && from != 0)
        answer(r, &p, 0, rc);
    return from != 0 ? 0 : rc;
}

/* No one to confirm with: our commit index is the read index. */
static void answer_single_voter(struct raft *r)
{
    while (r->reads_count && committed_in_term(r) && answer(r, read_at(r, 0), r->commit, 0)) {
        pop_read(r);
    }
}

void read_start_round_if_needed(struct raft *r)
{
    if (!r->reads_count)
        return;
    if (single_voter(r)) {
        answer_single_voter(r); /* reads queued by an allocation failure */
        return;
    }
    struct pending_read *last = read_at(r, r->reads_count - 1);
    if (last->round != 0 || (last->index == 0 && !committed_in_term(r)))
        return;
    /* A round in flight (stamped, not yet confirmed) batches the newcomers into the next
     * one, which starts when it is confirmed or at the next heartbeat. */
    struct pending_read *head = read_at(r, 0);
    if (head->round != 0 && head->round > r->read_confirmed)
        return;
    replication_bcast_heartbeat(r, read_next_round(r));
}

/* The rounds a member acknowledged; we acknowledge every round we start. */
static uint64_t round_of(const struct raft *r, const struct progress *pr)
{
    return pr->id == r->id ? r->read_round : pr->read_ack;
}

void read_on_confirm(struct raft *r)
{
    uint64_t q = quorum_joint_value(r, round_of);
    if (q != UINT64_MAX && q > r->read_confirmed) {
        r->read_confirmed = q;
        uint64_t start = r->round_tick[q % READ_ROUND_TICKS];
        if (r->read_round - q < READ_ROUND_TICKS && start != UINT64_MAX) {
            uint64_t until = start + r->o.election_ticks - r->o.lease_drift_ticks;
            if (until > r->lease_until)
                r->lease_until = until;
        }
    }
    /* Also after an earlier answer failed for lack of memory: the rest wait in order. */
    while (r->reads_count) {
        struct pending_read *p = read_at(r, 0);
        if (p->round == 0 || p->round > r->read_confirmed || !answer(r, p, p->index, 0))
            break;
        pop_read(r);
    }
}

void read_on_term_commit(struct raft *r)
{
    if (single_voter(r)) {
        answer_single_voter(r);
        return;
    }
    /* Reads that arrived before our first commit in this term may now be served at
     * the new commit index; they wait for the next round like any other. */
    for (uint32_t i = 0; i < r->reads_count; i++) {
        struct pending_read *p = read_at(r, i);
        if (p->round == 0 && p->index == 0)
            p->index = r->commit;
    }
}

void read_fail_all(struct raft *r)
{
    while (r->reads_count) {
        /* If this answer cannot be allocated the read is dropped: we are no longer leader
         * and cannot keep it; the shell's timeout answers it. */
        answer(r, read_at(r, 0), 0, ASPEN_E_NOT_LEADER);
        pop_read(r);
    }
    r->lease_until = 0;
}

void read_on_read_index_resp(struct raft *r, const struct raft_msg *m)
{
    int rc = push_out(r, m->context, m->reject ? 0 : m->index, m->reject ? ASPEN_E_NOT_LEADER : 0);
    if (rc)
        r->step_err = rc;
}
