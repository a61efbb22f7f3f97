/*
 * The simulation loop (sim/sim.h): builds the cluster for a seed, pops events in
 * (virtual time, sequence) order and hands each to its owner — a node's shell, the
 * workload or the fault injector — until the run ends or an invariant breaks.
 *
 * Phases: SAFETY (faults on) until p.safety_ns; then LIVENESS: the network calms down
 * (no partitions, loss, duplication or clogs), paused nodes resume, crashed nodes
 * restart, faults stop, and a write invoked after that point must commit before
 * p.liveness_ns has passed; then DRAIN: clients stop issuing and the run ends when their
 * outstanding operations have returned or timed out. The history is then checked.
 */
#include "sim/sim.h"

#include "base/assert.h"
#include "base/mem.h"
#include "sim/cluster.h"
#include "sim/packet.h"
#include "sim/stream.h"

#include <aspen/error.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

void sim_schedule(struct sim *s, const struct sim_event *ev)
{
    int rc = heap_push(&s->heap, ev);
    if (rc) {
        if (ev->ptr)
            packet_free(ev->ptr);
        sim_internal_error(s, rc, "event queue");
    }
}

void sim_trace(struct sim *s, uint8_t kind, const struct sim_node *n, uint8_t peer, uint64_t a,
               uint64_t b, uint64_t c)
{
    struct trace_rec r = {.time_ns = s->now_ns, .kind = kind, .peer = peer, .a = a, .b = b, .c = c};
    if (n) {
        r.node = (uint8_t)(n->slot + 1);
        r.role = n->up ? n->role : 9;
        r.term = n->term;
        r.commit = n->commit;
        r.applied = n->applied;
    }
    trace_add(&s->trace, &r);
}

void sim_violation(struct sim *s, const char *invariant, const char *fmt, ...)
{
    if (s->res->violation)
        return;
    s->res->violation = true;
    snprintf(s->res->invariant, sizeof(s->res->invariant), "%s", invariant);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->res->detail, sizeof(s->res->detail), fmt, ap);
    va_end(ap);
    sim_trace(s, TR_VIOLATION, NULL, 0, 0, 0, 0);
}

void sim_internal_error(struct sim *s, int rc, const char *what)
{
    if (s->internal_error)
        return;
    s->internal_error = rc ? rc : ASPEN_E_INTERNAL;
    snprintf(s->res->detail, sizeof(s->res->detail), "simulator: %s: %s", what, aspen_err_name(rc));
}

int sim_leader_slot(const struct sim *s)
{
    int best = -1;
    for (uint32_t i = 0; i < s->p.slots; i++) {
        const struct sim_node *n = &s->nodes[i];
        if (n->up && !n->paused && n->role == RAFT_LEADER &&
            (best < 0 || n->term > s->nodes[best].term))
            best = (int)i;
    }
    return best;
}

static void free_event_ptr(struct sim_event *ev)
{
    packet_free(ev->ptr);
}

/* Holds an event for a paused node; when the buffer is full the oldest message goes. */
static void defer(struct sim *s, struct sim_node *n, const struct sim_event *ev)
{
    if (n->n_deferred == n->cap_deferred) {
        if (n->cap_deferred >= ASPEN_SIM_MAX_DEFERRED_EVENTS) {
            for (size_t i = 0; i < n->n_deferred; i++) {
                struct sim_event *old = &n->deferred[i];
                if (old->kind != EV_DELIVER)
                    continue;
                net_arrived(&s->net, (uint32_t)old->a, n->slot);
                sim_trace(s, TR_DROP, &s->nodes[old->a], (uint8_t)(n->slot + 1),
                          packet_type(old->ptr), TR_DROP_PAUSED, 0);
                packet_free(old->ptr);
                memmove(old, old + 1, (n->n_deferred - i - 1) * sizeof(*old));
                n->n_deferred--;
                break;
            }
            if (n->n_deferred == n->cap_deferred) {
                sim_internal_error(s, ASPEN_E_FULL, "deferred events");
                if (ev->ptr)
                    packet_free(ev->ptr);
                return;
            }
        } else {
            size_t cap = n->cap_deferred ? n->cap_deferred * 2 : 64;
            struct sim_event *v = mem_realloc(n->deferred, cap * sizeof(*v));
            if (!v) {
                sim_internal_error(s, ASPEN_E_NOMEM, "deferred events");
                if (ev->ptr)
                    packet_free(ev->ptr);
                return;
            }
            n->deferred = v;
            n->cap_deferred = cap;
        }
    }
    n->deferred[n->n_deferred++] = *ev;
}

static void start_liveness(struct sim *s)
{
    s->phase = PHASE_LIVENESS;
    s->heal_ns = s->now_ns;
    sim_trace(s, TR_PHASE, NULL, 0, PHASE_LIVENESS, 0, 0);
    faults_heal_all(s);
    sim_schedule(s,
                 &(struct sim_event){.time_ns = s->now_ns + s->p.liveness_ns, .kind = EV_DEADLINE});
}

static void dispatch(struct sim *s, const struct sim_event *ev)
{
    switch (ev->kind) {
    case EV_TICK:
    case EV_DELIVER:
    case EV_DISK:
    case EV_CLIENT_REQ:
    case EV_SNAPSHOT_STATUS: {
        struct sim_node *n = &s->nodes[ev->node];
        if (n->up && n->paused && ev->kind != EV_TICK) {
            defer(s, n, ev);
            return;
        }
        node_on_event(s, n, ev);
        return;
    }
    case EV_CLIENT_RESP:
    case EV_CLIENT_TIMEOUT:
    case EV_CLIENT_NEXT:
        workload_on_event(s, ev);
        return;
    case EV_FAULT:
        faults_on_tick(s);
        return;
    case EV_RESTART: {
        struct sim_node *n = &s->nodes[ev->node];
        if (n->incarnation == ev->incarnation)
            faults_restart(s, n);
        return;
    }
    case EV_RESUME: {
        struct sim_node *n = &s->nodes[ev->node];
        if (n->incarnation == ev->incarnation)
            faults_resume(s, n);
        return;
    }
    case EV_CRASH: {
        struct sim_node *n = &s->nodes[ev->node];
        if (n->incarnation == ev->incarnation && s->phase == PHASE_SAFETY)
            faults_crash_quick(s, n);
        return;
    }
    case EV_PHASE:
        start_liveness(s);
        return;
    case EV_DEADLINE:
        if (s->phase == PHASE_LIVENESS)
            sim_violation(s, "liveness",
                          "no write invoked after the network healed (t=%" PRIu64
                          " ms) committed within %" PRIu64 " ms",
                          s->heal_ns / 1000000u, s->p.liveness_ns / 1000000u);
        else
            s->phase = PHASE_DRAIN; /* unreachable in practice: ops time out first */
        return;
    default:
        ASPEN_UNREACHABLE();
    }
}

static void describe(const struct sim *s, FILE *f)
{
    const struct sim_params *p = &s->p;
    fprintf(f,
            "  cluster: %u voters + %u spares, election %u ticks, heartbeat %u, prevote %d, "
            "checkquorum %d, lease %d, snapshot every %" PRIu64 " keep %" PRIu64
            ", msg entries %u, inflight %u\n",
            p->nodes, p->slots - p->nodes, p->election_ticks, p->heartbeat_ticks, p->pre_vote,
            p->check_quorum, p->lease_reads, p->snapshot_threshold, p->snapshot_keep,
            p->max_msg_entries, p->max_inflight_msgs);
    fprintf(f,
            "  network: delay %" PRIu64 "-%" PRIu64 " us, tail %u, loss %u, dup %u, corrupt %u, "
            "capacity %u, fifo %d; disk %" PRIu64 "-%" PRIu64 " us slow %u x%u lose-unsynced %d\n",
            p->net.delay_min_ns / 1000, p->net.delay_mean_ns / 1000, p->net.tail_permille,
            p->net.loss_permille, p->net.dup_permille, p->net.corrupt_permille, p->net.capacity,
            p->net.fifo, p->disk.latency_min_ns / 1000, p->disk.latency_mean_ns / 1000,
            p->disk.slow_permille, p->disk.slow_factor, p->disk.lose_unsynced);
    fprintf(f,
            "  faults (per mille per 100 ms): crash %u, pause %u, partition %u/heal %u modes %#x "
            "asym %d, clog %u, conf %u, transfer %u, drift %u, crash-after-vote %u; clients %u "
            "keys %u; safety %" PRIu64 " ms\n",
            p->crash_permille, p->pause_permille, p->partition_permille, p->heal_permille,
            p->partition_modes, p->asymmetric, p->clog_permille, p->conf_permille,
            p->transfer_permille, p->drift_permille, p->vote_crash_permille, p->clients, p->keys,
            p->safety_ns / 1000000u);
}

static int setup(struct sim *s)
{
    const struct sim_params *p = &s->p;
    heap_init(&s->heap, ASPEN_SIM_MAX_EVENTS);
    history_init(&s->hist, ASPEN_SIM_MAX_OPS);
    int rc = check_init(&s->chk);
    if (rc)
        return rc;
    trace_init(&s->trace, s->opt.trace ? s->out : NULL);
    struct rng r;
    sim_stream(&r, s->seed, SIM_STREAM_NET, 0);
    net_init(&s->net, &p->net, rng_next(&r), p->slots);
    sim_stream(&s->r_crash, s->seed, SIM_STREAM_CRASH, 0);
    sim_stream(&s->r_pause, s->seed, SIM_STREAM_PAUSE, 0);
    sim_stream(&s->r_part, s->seed, SIM_STREAM_PARTITION, 0);
    sim_stream(&s->r_member, s->seed, SIM_STREAM_MEMBERSHIP, 0);
    sim_stream(&s->r_client_net, s->seed, SIM_STREAM_CLIENT_NET, 0);
    sim_stream(&s->r_corrupt, s->seed, SIM_STREAM_CORRUPT, 0);

    raft_id founders[ASPEN_SIM_MAX_NODES];
    for (uint32_t i = 0; i < p->nodes; i++)
        founders[i] = i + 1;
    uint8_t conf_buf[RAFT_CONF_CHANGE_MAX_BYTES];
    struct raft_entry conf_entry;
    struct raft_boot boot;
    rc = raft_bootstrap(founders, p->nodes, conf_buf, &conf_entry, &boot);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < p->slots; i++) {
        struct sim_node *n = &s->nodes[i];
        n->slot = i;
        n->id = i + 1;
        sim_stream(&n->raft_rng, s->seed, SIM_STREAM_RAFT, i);
        sim_stream(&n->clock_rng, s->seed, SIM_STREAM_CLOCK, i);
        n->tick_ns = ASPEN_SIM_TICK_NS;
        if (p->drift_permille) {
            /* This node's clock runs up to drift_permille fast or slow. */
            int64_t d = (int64_t)rng_below(&n->clock_rng, 2 * p->drift_permille + 1) -
                        (int64_t)p->drift_permille;
            n->tick_ns =
                (uint64_t)((int64_t)ASPEN_SIM_TICK_NS + (int64_t)ASPEN_SIM_TICK_NS * d / 1000);
        }
        struct rng dr;
        sim_stream(&dr, s->seed, SIM_STREAM_DISK, i);
        n->sm_ops = s->sm_ops;
        if ((rc = disk_init(&n->disk, &p->disk, s->sm_ops, rng_next(&dr))) != 0 ||
            (rc = s->sm_ops->create(&n->sm)) != 0)
            return rc;
        if (i < p->nodes) {
            rc = disk_bootstrap(&n->disk, &boot);
            if (rc)
                return rc;
        }
    }
    for (uint32_t i = 0; i < p->slots; i++) {
        rc = node_start(s, &s->nodes[i]);
        if (rc)
            return rc;
    }
    workload_start(s);
    sim_schedule(s, &(struct sim_event){.time_ns = p->fault_tick_ns, .kind = EV_FAULT});
    sim_schedule(s, &(struct sim_event){.time_ns = p->safety_ns, .kind = EV_PHASE});
    return 0;
}

static void teardown(struct sim *s)
{
    heap_release(&s->heap, free_event_ptr);
    for (uint32_t i = 0; i < ASPEN_SIM_MAX_NODES; i++)
        node_release(&s->nodes[i]);
    history_release(&s->hist);
    check_release(&s->chk);
}

static void print_ids(FILE *f, const char *name, const raft_id *ids, uint32_t n)
{
    if (n == 0)
        return;
    fprintf(f, " %s=", name);
    for (uint32_t i = 0; i < n; i++)
        fprintf(f, "%s%" PRIu64, i ? "," : "", ids[i]);
}

/* One line per node: what the core and the disk look like now. */
static void print_nodes(const struct sim *s, FILE *f)
{
    for (uint32_t i = 0; i < s->p.slots; i++) {
        const struct sim_node *n = &s->nodes[i];
        const struct disk_image *im = &n->disk.durable;
        fprintf(f, "  n%u: ", i + 1);
        if (!n->up || !n->raft) {
            fprintf(f, "down;");
        } else {
            struct raft_status st;
            raft_status(n->raft, &st);
            const struct raft_config *c = raft_config(n->raft);
            fprintf(f,
                    "%s role=%u term=%" PRIu64 " leader=%" PRIu64 " commit=%" PRIu64
                    " applied=%" PRIu64 " log=%" PRIu64 "..%" PRIu64 " durable=%" PRIu64 ";",
                    n->paused ? "PAUSED" : "up", st.role, st.hard_state.term, st.leader,
                    st.hard_state.commit, st.applied, st.first_index, st.last_index,
                    st.durable_index);
            print_ids(f, "voters", c->voters, c->n_voters);
            print_ids(f, "outgoing", c->outgoing, c->n_outgoing);
            print_ids(f, "learners", c->learners, c->n_learners);
            print_ids(f, "learners_next", c->learners_next, c->n_learners_next);
            fprintf(f, ";");
        }
        fprintf(f, " disk: last=%" PRIu64 " applied=%" PRIu64 " snapshot=%" PRIu64 " pending=%zu\n",
                disk_log_last(&im->log), im->applied, im->snap.index, n->disk.n);
    }
}

static void report(const struct sim *s)
{
    const struct sim_result *res = s->res;
    FILE *f = s->out;
    fprintf(f, "seed=%" PRIu64 " VIOLATION: %s\n  %s\n", s->seed, res->invariant, res->detail);
    fprintf(f,
            "  at t=%" PRIu64 ".%06" PRIu64 " s after %" PRIu64
            " events; replay: aspen-sim --seed %" PRIu64 " --trace\n",
            s->now_ns / 1000000000u, (s->now_ns / 1000u) % 1000000u, res->events, s->seed);
    describe(s, f);
    print_nodes(s, f);
    fprintf(f, "  recent events (time node role+term commit applied event):\n");
    trace_dump(&s->trace, f, 48);
}

int sim_run(uint64_t seed, const struct sim_options *opt, struct sim_result *res)
{
    memset(res, 0, sizeof(*res));
    struct sim *s = mem_calloc(1, sizeof(*s));
    if (!s)
        return ASPEN_E_NOMEM;
    s->seed = seed;
    s->opt = *opt;
    s->sm_ops = opt->sm_ops ? opt->sm_ops : &model_sm_ops;
    s->out = opt->out ? opt->out : stderr;
    s->res = res;
    swarm_draw(&s->p, seed, opt);
    res->nodes = s->p.nodes;
    res->slots = s->p.slots;
    res->clients = s->p.clients;
    if (opt->trace) {
        fprintf(s->out, "seed=%" PRIu64 "\n", seed);
        describe(s, s->out);
    }

    int rc = setup(s);
    if (rc && !s->internal_error && !res->violation)
        sim_internal_error(s, rc, "setup");
    struct sim_event ev;
    while (!res->violation && !s->internal_error) {
        if (s->phase == PHASE_DRAIN && workload_idle(s))
            break;
        if (!heap_pop(&s->heap, &ev))
            break;
        ASPEN_ASSERT(ev.time_ns >= s->now_ns);
        s->now_ns = ev.time_ns;
        res->events++;
        dispatch(s, &ev);
    }
    if (!res->violation && !s->internal_error) {
        char why[sizeof(res->detail)];
        rc = history_check(&s->hist, why, sizeof(why));
        if (rc == ASPEN_E_INVALID)
            sim_violation(s, "linearizability", "%s", why);
        else if (rc)
            fprintf(s->out, "seed=%" PRIu64 " note: history check undecided (%s)\n", seed,
                    aspen_err_name(rc));
    }
    res->virtual_ns = s->now_ns;
    res->digest = s->trace.digest;
    res->committed = s->chk.max_committed;
    res->max_term = s->chk.max_term;
    if (res->violation)
        report(s);
    rc = s->internal_error;
    if (rc) {
        fprintf(s->out, "seed=%" PRIu64 " SIMULATOR ERROR: %s\n", seed, res->detail);
        describe(s, s->out);
        print_nodes(s, s->out);
        trace_dump(&s->trace, s->out, 24);
    }
    teardown(s);
    mem_free(s);
    return rc;
}
