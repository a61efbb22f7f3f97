/*
 * The safety invariants, checked as the run unfolds (research consensus.md §3.5,
 * "checkers after every event"). Each hook is called by the node shell at the moment
 * the fact it checks is created, so a violation is reported at the event that caused it:
 *
 *   one leader per term      every (term, leader) ever claimed, by a leader or a follower
 *   log matching             per (index, term) the chain hash of the whole prefix: two
 *                            logs with the same entry there must agree on everything before
 *   leader completeness      a new leader's log holds every entry known committed
 *   state machine safety     per index the entry (and state digest) applied first anywhere;
 *                            every other node must apply the same there
 *   committed never lost     an entry is durable, when first applied, on enough voters that
 *                            every quorum holds it (and still after every crash); a committed
 *                            entry is never truncated
 *   node bounds              applied <= commit <= last, and the shell's view of the log and
 *                            applied index equals the core's (raft_status)
 *
 * The tables grow with the run (by term and by index) up to the limits in constants.h.
 */
#include "sim/cluster.h"

#include "base/mem.h"

#include <aspen/error.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int check_init(struct check *c)
{
    memset(c, 0, sizeof(*c));
    return 0;
}

void check_release(struct check *c)
{
    for (size_t i = 0; i < c->n_idx; i++)
        mem_free(c->idx[i].v);
    mem_free(c->idx);
    mem_free(c->term_leader);
    mem_free(c->commit);
    memset(c, 0, sizeof(*c));
}

/* Grows a zero-filled table so that index `need` is valid. */
static bool grow(struct sim *s, void **v, size_t *n, size_t need, size_t elem, size_t max)
{
    if (need < *n)
        return true;
    if (need >= max) {
        sim_violation(s, "simulator limit", "table index %zu beyond %zu (a term or log storm)",
                      need, max);
        return false;
    }
    size_t cap = *n ? *n : 64;
    while (cap <= need)
        cap *= 2;
    if (cap > max)
        cap = max;
    uint8_t *nv = mem_realloc(*v, cap * elem);
    if (!nv) {
        sim_internal_error(s, ASPEN_E_NOMEM, "check table");
        return false;
    }
    memset(nv + *n * elem, 0, (cap - *n) * elem);
    *v = nv;
    *n = cap;
    return true;
}

static bool grow_commit(struct sim *s, raft_index index)
{
    return grow(s, (void **)&s->chk.commit, &s->chk.n_commit, index, sizeof(struct check_commit),
                ASPEN_SIM_MAX_LOG_ENTRIES * 64);
}

void check_leader(struct sim *s, const struct sim_node *n)
{
    struct check *c = &s->chk;
    if (n->term > c->max_term)
        c->max_term = n->term;
    raft_id claimed = n->role == RAFT_LEADER ? n->id : n->leader;
    if (claimed == 0)
        return;
    if (!grow(s, (void **)&c->term_leader, &c->n_terms, n->term, sizeof(raft_id),
              ASPEN_SIM_MAX_TERMS))
        return;
    raft_id *slot = &c->term_leader[n->term];
    if (n->role == RAFT_LEADER) {
        if (*slot == 0)
            *slot = n->id;
        else if (*slot != n->id)
            sim_violation(s, "one leader per term",
                          "term %" PRIu64 ": n%" PRIu64 " became leader, but n%" PRIu64
                          " already led it",
                          n->term, n->id, *slot);
        return;
    }
    /* A follower learns its leader from that leader's messages, which are sent only
     * after the leader's own update was processed — so the leader is already known. */
    if (*slot != claimed)
        sim_violation(s, "one leader per term",
                      "term %" PRIu64 ": n%u follows n%" PRIu64 ", but the leader of that term "
                      "is %s%" PRIu64,
                      n->term, n->slot + 1, claimed, *slot ? "n" : "nobody: ", *slot);
}

void check_leader_complete(struct sim *s, const struct sim_node *n)
{
    const struct check *c = &s->chk;
    for (raft_index i = n->log.base + 1; i <= c->max_committed; i++) {
        if (!c->commit[i].set)
            continue;
        raft_term t = 0;
        bool has = live_log_term(&n->log, i, &t);
        if (!has || t != c->commit[i].term) {
            sim_violation(s, "leader completeness",
                          "n%u leads term %" PRIu64 " without committed entry %" PRIu64 "/%" PRIu64
                          " (its log has %s%" PRIu64 ")",
                          n->slot + 1, n->term, i, c->commit[i].term, has ? "term " : "nothing",
                          has ? t : 0);
            return;
        }
    }
}

void check_append(struct sim *s, const struct sim_node *n, raft_index index, raft_term term,
                  uint64_t chain)
{
    struct check *c = &s->chk;
    if (!grow(s, (void **)&c->idx, &c->n_idx, index, sizeof(struct check_index),
              ASPEN_SIM_MAX_LOG_ENTRIES * 64))
        return;
    struct check_index *ci = &c->idx[index];
    for (uint32_t i = 0; i < ci->n; i++) {
        if (ci->v[i].term != term)
            continue;
        if (ci->v[i].chain != chain)
            sim_violation(s, "log matching",
                          "n%u holds entry %" PRIu64 "/%" PRIu64
                          " with a log prefix that differs from another node's",
                          n->slot + 1, index, term);
        return;
    }
    if (ci->n == ci->cap) {
        uint32_t cap = ci->cap ? ci->cap * 2 : 2;
        struct check_term_chain *v = mem_realloc(ci->v, cap * sizeof(*v));
        if (!v) {
            sim_internal_error(s, ASPEN_E_NOMEM, "check index");
            return;
        }
        ci->v = v;
        ci->cap = cap;
    }
    ci->v[ci->n++] = (struct check_term_chain){.term = term, .chain = chain};
}

bool check_chain_of(const struct check *c, raft_index index, raft_term term, uint64_t *chain)
{
    if (index == 0) {
        *chain = 0;
        return true;
    }
    if (index >= c->n_idx)
        return false;
    const struct check_index *ci = &c->idx[index];
    for (uint32_t i = 0; i < ci->n; i++)
        if (ci->v[i].term == term) {
            *chain = ci->v[i].chain;
            return true;
        }
    return false;
}

void check_truncate(struct sim *s, const struct sim_node *n, raft_index index, raft_index covered)
{
    const struct check *c = &s->chk;
    raft_index last = n->log.base + n->log.n;
    raft_index from = index > covered ? index : covered + 1;
    /* The truncation comes from a leader of the node's current term. A leader older than
     * the commit may legitimately overwrite the entry on a node that has not heard of the
     * newer term yet (a quorum holds it; the coverage check watches that quorum). */
    struct raft_status st;
    raft_status(n->raft, &st);
    for (raft_index i = from; i <= last && i <= c->max_committed; i++) {
        raft_term t;
        if (c->commit[i].set && st.hard_state.term >= c->commit[i].commit_term &&
            live_log_term(&n->log, i, &t) && t == c->commit[i].term) {
            sim_violation(s, "committed entry lost",
                          "n%u discards committed entry %" PRIu64 "/%" PRIu64, n->slot + 1, i, t);
            return;
        }
    }
}

/* Does n's durable image hold (index, term)? A durable snapshot at or past index holds
 * it too: snapshots are only taken of applied, hence committed, state. */
static bool durable_has(const struct sim_node *n, raft_index index, raft_term term)
{
    const struct disk_image *im = &n->disk.durable;
    if (im->snap.index >= index)
        return true;
    const struct raft_entry *e = disk_log_at(&im->log, index);
    return e && e->term == term;
}

/* Every quorum of `ids` must contain a node that durably holds (index, term): at least
 * n - majority + 1 of them do. */
static bool quorum_covered(const struct sim *s, const raft_id *ids, uint32_t n_ids,
                           raft_index index, raft_term term, uint32_t *have)
{
    *have = 0;
    for (uint32_t i = 0; i < n_ids; i++)
        if (ids[i] >= 1 && ids[i] <= s->p.slots && durable_has(&s->nodes[ids[i] - 1], index, term))
            (*have)++;
    return n_ids == 0 || *have >= n_ids - (n_ids / 2 + 1) + 1;
}

/* "n1:7/2s0 n2:5/2s3 ..." — each member's durable last index/term and snapshot index. */
static void describe_durable(const struct sim *s, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < s->p.slots && used < len; i++) {
        const struct disk_image *im = &s->nodes[i].disk.durable;
        raft_index last = disk_log_last(&im->log);
        const struct raft_entry *e = disk_log_at(&im->log, last);
        int n = snprintf(out + used, len - used, " n%u:%" PRIu64 "/%" PRIu64 "s%" PRIu64, i + 1,
                         last, e ? e->term : im->snap.term, im->snap.index);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* Does every quorum of cfg hold the entry? A joint quorum needs a majority of BOTH
 * halves, so it is enough that the holders meet every majority of EITHER half (the joint
 * configuration is only left by an entry that an incoming majority holds, and with it
 * this one). */
static bool config_covered(const struct sim *s, const struct raft_config *cfg, raft_index index,
                           raft_term term)
{
    uint32_t have;
    bool in = quorum_covered(s, cfg->voters, cfg->n_voters, index, term, &have);
    if (cfg->n_outgoing == 0)
        return in;
    return in || quorum_covered(s, cfg->outgoing, cfg->n_outgoing, index, term, &have);
}

/* Checks coverage under cfg unless `alt` (may be NULL) is covered. */
static void check_durable(struct sim *s, const struct raft_config *cfg,
                          const struct raft_config *alt, raft_index index, raft_term term,
                          const char *when)
{
    if ((alt && config_covered(s, alt, index, term)) || config_covered(s, cfg, index, term))
        return;
    uint32_t have, of = 0;
    const char *which = NULL;
    if (!quorum_covered(s, cfg->voters, cfg->n_voters, index, term, &have)) {
        which = "voters";
        of = cfg->n_voters;
    } else if (!quorum_covered(s, cfg->outgoing, cfg->n_outgoing, index, term, &have)) {
        which = "outgoing voters";
        of = cfg->n_outgoing;
    }
    if (!which)
        return;
    char durable[256];
    describe_durable(s, durable, sizeof(durable));
    sim_violation(s, "committed entry not durable",
                  "%s: entry %" PRIu64 "/%" PRIu64 " is durable on only %u of %u %s; durable:%s",
                  when, index, term, have, of, which, durable);
}

/* First sight of a committed (index, term), applied or installed by n: remember it, the
 * earliest term it is known committed in, and the configuration at the highest one. */
static void record_commit(struct sim *s, const struct sim_node *n, raft_index index, raft_term term,
                          uint64_t chain, uint64_t digest)
{
    struct check *c = &s->chk;
    struct check_commit *rec = &c->commit[index];
    raft_term commit_term = rec->commit_term; /* set if a leader's commit covered it */
    if (!commit_term) {
        struct raft_status st;
        raft_status(n->raft, &st);
        commit_term = st.hard_state.term;
    }
    *rec = (struct check_commit){
        .term = term, .commit_term = commit_term, .chain = chain, .digest = digest, .set = true};
    if (index > c->max_committed) {
        c->max_committed = index;
        c->committed_cfg = *raft_config(n->raft);
        c->has_committed_cfg = true;
    }
}

void check_apply(struct sim *s, const struct sim_node *n, raft_index index, raft_term term,
                 uint64_t chain, uint64_t digest)
{
    struct check *c = &s->chk;
    if (!grow_commit(s, index))
        return;
    struct check_commit *rec = &c->commit[index];
    if (!rec->set) {
        record_commit(s, n, index, term, chain, digest);
        /* Committed under the configuration before this step or the one after it (a
         * change handed out in this step): either must have it on every quorum. */
        check_durable(s, raft_config(n->raft), &n->cfg_before, index, term, "first applied");
        return;
    }
    if (rec->term != term || rec->chain != chain)
        sim_violation(s, "state machine safety",
                      "n%u applies %" PRIu64 "/%" PRIu64 " but %" PRIu64 "/%" PRIu64
                      " was applied there before%s",
                      n->slot + 1, index, term, index, rec->term,
                      rec->term == term ? " (same term, different log prefix)" : "");
    else if (rec->digest != digest)
        sim_violation(s, "state machine determinism",
                      "n%u's state after applying %" PRIu64 " differs from another node's",
                      n->slot + 1, index);
}

void check_install(struct sim *s, const struct sim_node *n, raft_index index, raft_term term,
                   uint64_t digest)
{
    struct check *c = &s->chk;
    if (index == 0 || !grow_commit(s, index))
        return;
    struct check_commit *rec = &c->commit[index];
    if (!rec->set) {
        uint64_t chain = 0;
        (void)check_chain_of(c, index, term, &chain);
        record_commit(s, n, index, term, chain, digest);
        return;
    }
    if (rec->term != term || rec->digest != digest)
        sim_violation(s, "state machine safety",
                      "n%u installs a snapshot at %" PRIu64 "/%" PRIu64
                      " whose state differs from what was applied there (%" PRIu64 ")",
                      n->slot + 1, index, term, rec->term);
}

void check_committed_durable(struct sim *s)
{
    const struct check *c = &s->chk;
    if (c->max_committed == 0 || !c->has_committed_cfg)
        return;
    /* Measured against the configuration at the highest committed index, wherever that
     * node is now: an up node that lags would offer an older configuration whose
     * quorums no longer decide anything. */
    const struct check_commit *rec = &c->commit[c->max_committed];
    check_durable(s, &c->committed_cfg, NULL, c->max_committed, rec->term, "after a crash");
}

void check_node(struct sim *s, struct sim_node *n)
{
    struct raft_status st;
    raft_status(n->raft, &st);
    if (st.applied > st.hard_state.commit)
        sim_violation(s, "applied <= commit",
                      "n%u applied %" PRIu64 " beyond its commit index %" PRIu64, n->slot + 1,
                      st.applied, st.hard_state.commit);
    else if (st.hard_state.commit > st.last_index)
        sim_violation(s, "commit <= last",
                      "n%u's commit index %" PRIu64 " is beyond its last entry %" PRIu64,
                      n->slot + 1, st.hard_state.commit, st.last_index);
    else if (n->step_was_leader && st.role == RAFT_LEADER && st.hard_state.term == n->step_term &&
             st.hard_state.commit > n->step_commit &&
             raft_term_at(n->raft, st.hard_state.commit) != st.hard_state.term)
        /* Figure 2 / §5.4.2: a leader advances its commit index only to an entry of its
         * own term; older entries commit indirectly (Figure 8). */
        sim_violation(s, "leader commits only its own term",
                      "n%u, leader of term %" PRIu64 ", advanced commit %" PRIu64 " -> %" PRIu64
                      " to an entry of term %" PRIu64,
                      n->slot + 1, st.hard_state.term, n->step_commit, st.hard_state.commit,
                      raft_term_at(n->raft, st.hard_state.commit));
    else if (st.last_index != n->log.base + n->log.n || st.applied != n->applied)
        sim_violation(s, "shell agrees with core",
                      "n%u: core last %" PRIu64 " applied %" PRIu64 ", shell last %" PRIu64
                      " applied %" PRIu64,
                      n->slot + 1, st.last_index, st.applied, n->log.base + n->log.n, n->applied);
    if (st.role == RAFT_LEADER && st.hard_state.commit > n->commit) {
        /* Remember the earliest term in which each index was known committed. */
        for (raft_index i = n->commit + 1; i <= st.hard_state.commit; i++) {
            if (!grow_commit(s, i))
                break;
            struct check_commit *rec = &s->chk.commit[i];
            if (!rec->commit_term || st.hard_state.term < rec->commit_term)
                rec->commit_term = st.hard_state.term;
        }
    }
    n->commit = st.hard_state.commit;
}
