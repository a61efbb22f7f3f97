/*
 * Configurations and the rules for changing them (thesis §4.1 single-server changes,
 * §4.3 joint consensus; the transition rules follow etcd-raft's confchange package).
 *
 * A change touching at most one voter may be applied directly: the old and new majorities
 * always intersect. Anything larger goes through a joint configuration in which decisions
 * need a majority of both the old and the new voters, and a second (empty) change leaves
 * it. The very first change of a cluster, from the empty configuration, may add any set
 * of voters: there is no quorum yet whose decisions it could contradict (raft_bootstrap).
 */
#include "raft/internal.h"

#include "base/assert.h"
#include "base/slice.h"

#include <string.h>

bool config_has(const raft_id *ids, uint32_t n, raft_id id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static void remove_id(raft_id *ids, uint32_t *n, raft_id id)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (ids[i] == id) {
            ids[i] = ids[--*n];
            return;
        }
    }
}

static bool add_id(raft_id *ids, uint32_t *n, uint32_t cap, raft_id id)
{
    if (config_has(ids, *n, id))
        return true;
    if (*n >= cap)
        return false;
    ids[(*n)++] = id;
    return true;
}

bool config_is_joint(const struct raft_config *cfg)
{
    return cfg->n_outgoing > 0;
}

bool raft_config_is_voter(const struct raft_config *cfg, raft_id id)
{
    return config_has(cfg->voters, cfg->n_voters, id) ||
           config_has(cfg->outgoing, cfg->n_outgoing, id);
}

bool raft_config_is_learner(const struct raft_config *cfg, raft_id id)
{
    return config_has(cfg->learners, cfg->n_learners, id);
}

uint32_t config_members(const struct raft_config *cfg, raft_id *out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < cfg->n_voters; i++)
        out[n++] = cfg->voters[i];
    for (uint32_t i = 0; i < cfg->n_outgoing; i++)
        if (!config_has(out, n, cfg->outgoing[i]))
            out[n++] = cfg->outgoing[i];
    for (uint32_t i = 0; i < cfg->n_learners; i++)
        if (!config_has(out, n, cfg->learners[i]))
            out[n++] = cfg->learners[i];
    return n;
}

static bool unique(const raft_id *ids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == 0)
            return false;
        for (uint32_t j = i + 1; j < n; j++)
            if (ids[i] == ids[j])
                return false;
    }
    return true;
}

bool config_valid(const struct raft_config *cfg)
{
    if (cfg->n_voters > ASPEN_MAX_VOTERS || cfg->n_outgoing > ASPEN_MAX_VOTERS ||
        cfg->n_learners > ASPEN_MAX_MEMBERS || cfg->n_learners_next > ASPEN_MAX_VOTERS)
        return false;
    if (!unique(cfg->voters, cfg->n_voters) || !unique(cfg->outgoing, cfg->n_outgoing) ||
        !unique(cfg->learners, cfg->n_learners) ||
        !unique(cfg->learners_next, cfg->n_learners_next))
        return false;
    for (uint32_t i = 0; i < cfg->n_learners; i++)
        if (raft_config_is_voter(cfg, cfg->learners[i]))
            return false;
    for (uint32_t i = 0; i < cfg->n_learners_next; i++) {
        /* A demoted voter waits in outgoing until the joint configuration is left. */
        if (!config_has(cfg->outgoing, cfg->n_outgoing, cfg->learners_next[i]) ||
            config_has(cfg->voters, cfg->n_voters, cfg->learners_next[i]) ||
            config_has(cfg->learners, cfg->n_learners, cfg->learners_next[i]))
            return false;
    }
    if (!config_is_joint(cfg) && (cfg->n_learners_next || cfg->auto_leave))
        return false;
    uint32_t members = cfg->n_voters + cfg->n_learners;
    for (uint32_t i = 0; i < cfg->n_outgoing; i++)
        if (!config_has(cfg->voters, cfg->n_voters, cfg->outgoing[i]) &&
            !config_has(cfg->learners, cfg->n_learners, cfg->outgoing[i]))
            members++;
    return members <= ASPEN_MAX_MEMBERS;
}

/* Applies the member changes to the incoming side of *c. */
static bool apply_changes(struct raft_config *c, const struct raft_conf_change *cc)
{
    for (uint32_t i = 0; i < cc->n_changes; i++) {
        raft_id id = cc->changes[i].node;
        if (id == 0)
            return false;
        switch (cc->changes[i].type) {
        case RAFT_CHANGE_ADD_VOTER:
            remove_id(c->learners, &c->n_learners, id);
            remove_id(c->learners_next, &c->n_learners_next, id);
            if (!add_id(c->voters, &c->n_voters, ASPEN_MAX_VOTERS, id))
                return false;
            break;
        case RAFT_CHANGE_ADD_LEARNER:
            remove_id(c->voters, &c->n_voters, id);
            remove_id(c->learners, &c->n_learners, id);
            remove_id(c->learners_next, &c->n_learners_next, id);
            if (config_has(c->outgoing, c->n_outgoing, id)) {
                if (!add_id(c->learners_next, &c->n_learners_next, ASPEN_MAX_VOTERS, id))
                    return false;
            } else if (!add_id(c->learners, &c->n_learners, ASPEN_MAX_MEMBERS, id)) {
                return false;
            }
            break;
        case RAFT_CHANGE_REMOVE:
            remove_id(c->voters, &c->n_voters, id);
            remove_id(c->learners, &c->n_learners, id);
            remove_id(c->learners_next, &c->n_learners_next, id);
            break;
        default:
            return false;
        }
    }
    return true;
}

/* Voters in one set but not the other. */
static uint32_t voter_difference(const struct raft_config *a, const struct raft_config *b)
{
    uint32_t d = 0;
    for (uint32_t i = 0; i < a->n_voters; i++)
        d += !config_has(b->voters, b->n_voters, a->voters[i]);
    for (uint32_t i = 0; i < b->n_voters; i++)
        d += !config_has(a->voters, a->n_voters, b->voters[i]);
    return d;
}

int config_apply(struct raft_config *cfg, const struct raft_conf_change *cc)
{
    struct raft_config c = *cfg;
    if (cc->n_changes > ASPEN_RAFT_MAX_CHANGES || cc->transition > RAFT_TRANSITION_EXPLICIT)
        return ASPEN_E_INVALID;

    if (cc->n_changes == 0) {
        /* Leave the joint configuration: the incoming voters alone decide from now on. */
        if (!config_is_joint(&c))
            return ASPEN_E_INVALID;
        for (uint32_t i = 0; i < c.n_learners_next; i++)
            if (!add_id(c.learners, &c.n_learners, ASPEN_MAX_MEMBERS, c.learners_next[i]))
                return ASPEN_E_INVALID;
        c.n_learners_next = 0;
        c.n_outgoing = 0;
        c.auto_leave = false;
    } else {
        if (config_is_joint(&c))
            return ASPEN_E_INVALID; /* one joint transition at a time */
        struct raft_config before = c;
        bool from_empty = c.n_voters == 0;
        bool joint = cc->transition != RAFT_TRANSITION_AUTO;
        if (joint) {
            memcpy(c.outgoing, c.voters, sizeof(c.voters));
            c.n_outgoing = c.n_voters;
        }
        if (!apply_changes(&c, cc))
            return ASPEN_E_INVALID;
        if (!joint && !from_empty && voter_difference(&before, &c) > 1) {
            /* More than one voter changes: only safe through a joint configuration. */
            c = before;
            memcpy(c.outgoing, c.voters, sizeof(c.voters));
            c.n_outgoing = c.n_voters;
            if (!apply_changes(&c, cc))
                return ASPEN_E_INVALID;
            joint = true;
        }
        if (joint)
            c.auto_leave = cc->transition != RAFT_TRANSITION_EXPLICIT;
        if (joint && from_empty)
            return ASPEN_E_INVALID; /* bootstrap is a plain change */
    }
    if (c.n_voters == 0 || !config_valid(&c))
        return ASPEN_E_INVALID;
    *cfg = c;
    return 0;
}

/* Encoding of a conf change (stable: it lives in the log):
 *   u8 version (1) | u8 transition | be16 n | n × { u8 type | be64 node } */
size_t raft_conf_change_encode(const struct raft_conf_change *cc, uint8_t *out)
{
    ASPEN_ASSERT(cc->n_changes <= ASPEN_RAFT_MAX_CHANGES);
    out[0] = 1;
    out[1] = cc->transition;
    be16_store(out + 2, (uint16_t)cc->n_changes);
    size_t off = 4;
    for (uint32_t i = 0; i < cc->n_changes; i++) {
        out[off] = cc->changes[i].type;
        be64_store(out + off + 1, cc->changes[i].node);
        off += 9;
    }
    return off;
}

int raft_conf_change_decode(const uint8_t *data, size_t len, struct raft_conf_change *cc)
{
    struct reader rd = reader_make(slice_make(data, len));
    uint8_t version, transition;
    uint16_t n;
    int rc;
    memset(cc, 0, sizeof(*cc));
    if ((rc = reader_u8(&rd, &version)) || (rc = reader_u8(&rd, &transition)) ||
        (rc = reader_be16(&rd, &n)))
        return rc;
    if (version != 1 || transition > RAFT_TRANSITION_EXPLICIT)
        return ASPEN_E_MALFORMED;
    if (n > ASPEN_RAFT_MAX_CHANGES)
        return ASPEN_E_TOO_LARGE;
    cc->transition = transition;
    cc->n_changes = n;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t type;
        uint64_t node;
        if ((rc = reader_u8(&rd, &type)) || (rc = reader_be64(&rd, &node)))
            return rc;
        if (type > RAFT_CHANGE_REMOVE || node == 0)
            return ASPEN_E_MALFORMED;
        cc->changes[i].type = type;
        cc->changes[i].node = node;
    }
    if (rd.left)
        return ASPEN_E_MALFORMED;
    return 0;
}

int raft_bootstrap(const raft_id *founders, uint32_t n, uint8_t buf[RAFT_CONF_CHANGE_MAX_BYTES],
                   struct raft_entry *entry, struct raft_boot *boot)
{
    if (n == 0 || n > ASPEN_MAX_VOTERS || !unique(founders, n))
        return ASPEN_E_INVALID;
    struct raft_conf_change cc = {.transition = RAFT_TRANSITION_AUTO, .n_changes = n};
    for (uint32_t i = 0; i < n; i++)
        cc.changes[i] = (struct raft_change){.type = RAFT_CHANGE_ADD_VOTER, .node = founders[i]};
    size_t len = raft_conf_change_encode(&cc, buf);
    *entry = (struct raft_entry){
        .term = 1, .index = 1, .type = RAFT_ENTRY_CONF, .len = (uint32_t)len, .data = buf};
    memset(boot, 0, sizeof(*boot));
    /* Term 1 with the entry committed: every founder holds the same committed prefix, so
     * the first election (term 2) starts from agreement. */
    boot->hard_state = (struct raft_hard_state){.term = 1, .vote = 0, .commit = 1};
    boot->entries = entry;
    boot->n_entries = 1;
    return 0;
}
