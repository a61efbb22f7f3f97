/*
 * The workload: concurrent clients issuing put/get/cas/delete on a few keys, recording
 * the history the linearizability checker reads (history.h).
 *
 * Each client has at most one operation outstanding and sends it to the node it
 * believes leads; a NOT_LEADER answer carries the core's leader hint and the client
 * retries there (a definite failure: the operation never executed). Reads sometimes go
 * to a random node on purpose: a follower forwards them to the leader (ReadIndex). A
 * timeout leaves the outcome unknown; that client id is retired and the slot continues
 * under a fresh id (Knossos' rule, research consensus.md §4.2). Written values are
 * unique (the operation id + 1), so every read names the write it observed.
 *
 * Client <-> node traffic uses its own small delays and is not partitioned: clients sit
 * outside the cluster network. Replies may be lost (a seed option), which produces
 * writes that executed but whose outcome the client never learned.
 */
#include "sim/cluster.h"

#include "base/assert.h"
#include "sim/stream.h"

#include <inttypes.h>

static void schedule_next(struct sim *s, struct sim_client *c, uint64_t delay_ns)
{
    sim_schedule(s, &(struct sim_event){.time_ns = s->now_ns + delay_ns,
                                        .kind = EV_CLIENT_NEXT,
                                        .client = c->slot});
}

static uint32_t random_slot(struct sim *s, struct sim_client *c)
{
    return (uint32_t)rng_below(&c->rng, s->p.slots);
}

void workload_start(struct sim *s)
{
    for (uint32_t i = 0; i < s->p.clients; i++) {
        struct sim_client *c = &s->clients[i];
        *c = (struct sim_client){.slot = (uint8_t)i, .id = s->next_client_id++};
        sim_stream(&c->rng, s->seed, SIM_STREAM_WORKLOAD, i);
        c->target = (uint32_t)rng_below(&c->rng, s->p.nodes);
        schedule_next(s, c, 1 + rng_below(&c->rng, s->p.think_max_ns + 1));
    }
}

static void remember(struct sim *s, uint8_t key, uint64_t value)
{
    uint64_t *seen = s->key_seen[key];
    for (int i = 3; i > 0; i--)
        seen[i] = seen[i - 1];
    seen[0] = value;
}

static void issue(struct sim *s, struct sim_client *c)
{
    /* The safety phase leaves an eighth of the history for the liveness phase, whose
     * writes prove the cluster recovered. */
    size_t limit = s->phase == PHASE_SAFETY ? s->hist.max - s->hist.max / 8 : s->hist.max;
    if (s->phase == PHASE_DRAIN || s->hist.n >= limit) {
        if (s->phase == PHASE_SAFETY)
            schedule_next(s, c, s->p.op_timeout_ns); /* idle until the liveness phase */
        return;
    }
    const struct sim_params *p = &s->p;
    struct history_op op = {.client = c->id, .key = (uint8_t)rng_below(&c->rng, p->keys)};
    if (rng_ratio(&c->rng, p->read_permille, 1000)) {
        op.kind = MODEL_OP_GET;
    } else {
        uint64_t r = rng_below(&c->rng, 1000);
        if (r < p->cas_permille)
            op.kind = MODEL_OP_CAS;
        else if (r < p->cas_permille + p->delete_permille)
            op.kind = MODEL_OP_DELETE;
        else
            op.kind = MODEL_OP_PUT;
    }
    op.value = s->hist.n + 1; /* unique: the op id it is about to get, plus one */
    if (op.kind == MODEL_OP_DELETE || op.kind == MODEL_OP_GET)
        op.value = 0;
    if (op.kind == MODEL_OP_CAS) {
        /* Expect a recently seen value (likely current), sometimes absence. */
        uint64_t pick = rng_below(&c->rng, 5);
        op.expect = pick < 4 ? s->key_seen[op.key][pick] : 0;
    }
    uint32_t target = c->target;
    if (op.kind == MODEL_OP_GET && p->follower_read_permille &&
        rng_ratio(&c->rng, p->follower_read_permille, 1000))
        target = random_slot(s, c);
    op.invoke_ns = s->now_ns;
    op.must_see = s->acked_max;
    op.return_ns = HISTORY_NEVER;
    op.node = (uint8_t)target;
    uint64_t id;
    if (history_add(&s->hist, &op, &id))
        return; /* the history is full: this client stops */
    if (op.kind == MODEL_OP_PUT || op.kind == MODEL_OP_CAS)
        remember(s, op.key, op.value);
    c->busy = true;
    c->op = id;
    sim_trace(s, TR_INVOKE, &s->nodes[target], (uint8_t)(c->slot + 1), id, op.kind, target);
    sim_schedule(s,
                 &(struct sim_event){.time_ns = s->now_ns + 1 +
                                                rng_below(&s->r_client_net, p->client_delay_max_ns),
                                     .kind = EV_CLIENT_REQ,
                                     .node = (uint8_t)target,
                                     .client = c->slot,
                                     .a = id});
    sim_schedule(s, &(struct sim_event){.time_ns = s->now_ns + p->op_timeout_ns,
                                        .kind = EV_CLIENT_TIMEOUT,
                                        .client = c->slot,
                                        .a = id});
}

void workload_reply(struct sim *s, struct sim_node *from, uint8_t client, uint64_t op_id,
                    enum sim_reply status, uint64_t value, bool ok, raft_index index,
                    raft_index read_index, raft_id hint)
{
    sim_trace(s, TR_REPLY, from, (uint8_t)(client + 1), op_id, status, index);
    if (s->p.reply_loss_permille && rng_ratio(&s->r_client_net, s->p.reply_loss_permille, 1000))
        return;
    sim_schedule(
        s, &(struct sim_event){.time_ns = s->now_ns + 1 +
                                          rng_below(&s->r_client_net, s->p.client_delay_max_ns),
                               .kind = EV_CLIENT_RESP,
                               .client = client,
                               .node = (uint8_t)(hint <= s->p.slots ? hint : 0),
                               .flag = (uint8_t)(status | (ok ? 0x10 : 0)),
                               .a = op_id,
                               .b = value,
                               .c = index,
                               .d = read_index});
}

static void on_reply(struct sim *s, struct sim_client *c, const struct sim_event *ev)
{
    if (!c->busy || c->op != ev->a)
        return; /* a late answer to an operation that already timed out */
    struct history_op *op = &s->hist.ops[ev->a];
    enum sim_reply status = (enum sim_reply)(ev->flag & 0x0f);
    op->return_ns = s->now_ns;
    c->busy = false;
    uint64_t backoff = 1 + rng_below(&c->rng, s->p.think_max_ns + 1);
    switch (status) {
    case REPLY_OK:
        op->status = HISTORY_OK;
        op->ok = (ev->flag & 0x10) != 0;
        op->index = ev->c;
        op->read_index = ev->d;
        if (op->kind == MODEL_OP_GET) {
            op->value = ev->b;
            if (ev->b)
                remember(s, op->key, ev->b);
        }
        /* Index order (research consensus.md §4.4 rule b): an operation that began after
         * a write was acknowledged must be served at or after that write's index, and a
         * write must land after it. A stale read shows up here as soon as it returns. */
        if (op->kind == MODEL_OP_GET ? op->index < op->must_see : op->index <= op->must_see)
            sim_violation(s, "real-time index order",
                          "op %" PRIu64 " (%s key %u by client %u, invoked at %" PRIu64
                          " us) was served at index %" PRIu64 " (read index %" PRIu64
                          "), but a write acknowledged before it began is at %" PRIu64,
                          ev->a, op->kind == MODEL_OP_GET ? "get" : "write", op->key, op->client,
                          op->invoke_ns / 1000, op->index, op->read_index, op->must_see);
        if (op->kind != MODEL_OP_GET && op->index > s->acked_max)
            s->acked_max = op->index;
        s->res->ops_ok++;
        if (s->phase == PHASE_LIVENESS && op->kind != MODEL_OP_GET && op->invoke_ns >= s->heal_ns) {
            s->live_write_done = true;
            s->phase = PHASE_DRAIN;
            sim_trace(s, TR_PHASE, NULL, 0, PHASE_DRAIN, ev->a, 0);
        }
        break;
    case REPLY_NOT_LEADER:
        op->status = HISTORY_FAILED;
        s->res->ops_failed++;
        c->target = ev->node ? (uint32_t)ev->node - 1 : random_slot(s, c);
        /* Back off a little: an election may be under way. */
        backoff += 5 * ASPEN_SIM_TICK_NS;
        break;
    case REPLY_BUSY:
    case REPLY_FAILED:
    default:
        op->status = HISTORY_FAILED;
        s->res->ops_failed++;
        backoff += 5 * ASPEN_SIM_TICK_NS;
        break;
    }
    schedule_next(s, c, backoff);
}

static void on_timeout(struct sim *s, struct sim_client *c, const struct sim_event *ev)
{
    if (!c->busy || c->op != ev->a)
        return;
    struct history_op *op = &s->hist.ops[ev->a];
    op->status = HISTORY_UNKNOWN;
    op->return_ns = HISTORY_NEVER;
    s->res->ops_unknown++;
    sim_trace(s, TR_TIMEOUT, &s->nodes[op->node], (uint8_t)(c->slot + 1), ev->a, 0, 0);
    /* The outcome is unknown: this client id may not issue more (the checker treats its
     * operation as concurrent with everything after it). */
    c->id = s->next_client_id++;
    c->busy = false;
    c->target = random_slot(s, c);
    schedule_next(s, c, 1 + rng_below(&c->rng, s->p.think_max_ns + 1));
}

void workload_on_event(struct sim *s, const struct sim_event *ev)
{
    struct sim_client *c = &s->clients[ev->client];
    switch (ev->kind) {
    case EV_CLIENT_NEXT:
        if (!c->busy)
            issue(s, c);
        return;
    case EV_CLIENT_RESP:
        on_reply(s, c, ev);
        return;
    case EV_CLIENT_TIMEOUT:
        on_timeout(s, c, ev);
        return;
    default:
        ASPEN_UNREACHABLE();
    }
}

bool workload_idle(const struct sim *s)
{
    for (uint32_t i = 0; i < s->p.clients; i++)
        if (s->clients[i].busy)
            return false;
    return true;
}
