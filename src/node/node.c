/*
 * The node's lifecycle (node.h): opening the data dir and deciding how to start
 * (restart, bootstrap a new cluster, or take a joiner's membership), wiring the raft
 * core to the committer, the transport and the HTTP endpoint, the tick timer, and the
 * graceful shutdown phases.
 *
 * Bootstrap (--init on an empty data dir): the founder writes, durably and before anything
 * runs, a log of three committed entries of term 1 — the configuration {self}
 * (raft_bootstrap), CLUSTER_INIT with a fresh random cluster id, and MEMBER_SET with its
 * own record — so that every later member, replaying the log from index 1, learns the
 * cluster id and the founder's key and address from the log itself.
 *
 * Ticks: the core's time is a count of ticks. A tick is half the heartbeat interval, so
 * the heartbeat is 2 ticks and the election timeout the configured minimum rounded up to
 * whole ticks (the core draws from [t, 2t), raft.h).
 */
#include "node/internal.h"

#include "base/assert.h"
#include "base/log.h"
#include "net/tls_tcp.h"
#include "storage/raftlog.h"
#include "storage/store_lmdb.h"

#include <aspen/error.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NODE_TICKS_PER_HEARTBEAT 2

uint64_t node_now_ms(const struct node *n)
{
    return uv_now(n->loop);
}

static void on_tick(uv_timer_t *t)
{
    struct node *n = t->data;
    if (!n->raft)
        return;
    (void)shell_step(n, &(struct raft_event){.type = RAFT_EVENT_TICK}, NULL);
    shell_expire(n);
    members_tick(n);
    snap_send_tick(n);
    snap_recv_tick(n);
    metrics_tick(n);
}

/* ---- opening ---- */

/* "<what><subject>: <reason>" into err; returns rc. */
static int open_fail(char *err, size_t errlen, int rc, const char *what, const char *subject)
{
    snprintf(err, errlen, "%s%s: %s", what, subject, aspen_strerror(rc));
    return rc;
}

/* Does s hold Raft state (a hard state, log entries or a snapshot)? A damaged record is
 * reported in err, naming `where`. */
static int has_raft_state(struct store *s, const char *where, bool *out, char *err, size_t errlen)
{
    *out = false;
    struct store_txn *t = NULL;
    int rc = store_begin(s, false, &t);
    if (rc)
        return open_fail(err, errlen, rc, "cannot read storage in ", where);
    struct raftlog_state ls;
    rc = raftlog_load(t, &ls);
    if (rc == ASPEN_E_CORRUPT)
        snprintf(err, errlen, "%s: %s", where, ls.error);
    else if (rc)
        open_fail(err, errlen, rc, "cannot load the raft state in ", where);
    else
        *out =
            ls.boot.hard_state.term != 0 || ls.boot.n_entries != 0 || ls.boot.snapshot.index != 0;
    raftlog_state_release(&ls);
    store_abort(t);
    return rc;
}

int node_data_dir_initialised(const char *data_dir, bool *initialised, char *err, size_t errlen)
{
    *initialised = false;
    char path[ASPEN_NODE_CONFIG_VALUE_MAX_BYTES + 32];
    snprintf(path, sizeof(path), "%s/%s", data_dir, STORE_LMDB_FILE_NAME);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT)
            return 0;
        return open_fail(err, errlen, -errno, "", path);
    }
    struct store *s = NULL;
    int rc = store_lmdb_open(&s, data_dir, NULL, err, errlen);
    if (rc)
        return rc;
    rc = has_raft_state(s, data_dir, initialised, err, errlen);
    store_close(s);
    return rc;
}

/* Writes a new cluster's first entries (see the file comment). */
static int bootstrap(struct node *n)
{
    uint64_t cluster_id = 0;
    while (cluster_id == 0)
        cluster_id = rng_next(&n->rng);
    uint8_t conf_buf[RAFT_CONF_CHANGE_MAX_BYTES];
    struct raft_entry e[3];
    struct raft_boot boot;
    raft_id self = n->id.raft_id;
    int rc = raft_bootstrap(&self, 1, conf_buf, &e[0], &boot);
    if (rc)
        return rc;
    struct buf c1, c2;
    buf_init(&c1, ASPEN_MAX_REQUEST_BYTES);
    buf_init(&c2, ASPEN_MAX_REQUEST_BYTES);
    struct kv_cmd init = {.kind = KV_CMD_CLUSTER_INIT};
    init.u.cluster_init.cluster_id = cluster_id;
    struct member_info me = {.id = self};
    memcpy(me.pk, n->id.public_key, sizeof(me.pk));
    snprintf(me.name, sizeof(me.name), "%.*s", (int)sizeof(me.name) - 1, n->cfg.name);
    snprintf(me.peer_addr, sizeof(me.peer_addr), "%.*s", (int)sizeof(me.peer_addr) - 1,
             n->cfg.advertise_peer_urls.items[0].text);
    size_t off = 0;
    for (uint32_t i = 0; i < n->cfg.advertise_client_urls.count; i++) {
        int w = snprintf(me.client_urls + off, sizeof(me.client_urls) - off, "%s%s", i ? "," : "",
                         n->cfg.advertise_client_urls.items[i].text);
        if (w < 0 || (size_t)w >= sizeof(me.client_urls) - off)
            break;
        off += (size_t)w;
    }
    struct kv_cmd set = {.kind = KV_CMD_MEMBER_SET};
    set.u.member_set = member_to_kv(&me);
    rc = kv_cmd_encode(&init, &c1);
    if (!rc)
        rc = kv_cmd_encode(&set, &c2);
    if (!rc) {
        e[1] = (struct raft_entry){.term = 1,
                                   .index = 2,
                                   .type = RAFT_ENTRY_NORMAL,
                                   .len = (uint32_t)c1.len,
                                   .data = c1.data};
        e[2] = (struct raft_entry){.term = 1,
                                   .index = 3,
                                   .type = RAFT_ENTRY_NORMAL,
                                   .len = (uint32_t)c2.len,
                                   .data = c2.data};
        struct store_txn *t = NULL;
        rc = store_begin(n->store, true, &t);
        if (!rc) {
            rc = raftlog_append(t, e, 3);
            struct raft_hard_state hs = {.term = 1, .vote = 0, .commit = 3};
            if (!rc)
                rc = raftlog_set_hard_state(t, &hs);
            if (!rc)
                rc = kv_init(t);
            if (rc)
                store_abort(t);
            else
                rc = store_commit(t, true);
        }
    }
    buf_release(&c1);
    buf_release(&c2);
    if (!rc)
        LOG_INFO("node", "new cluster bootstrapped", "cluster=%016" PRIx64 " member=%s", cluster_id,
                 n->cfg.name);
    return rc;
}

static int start_raft(struct node *n, char *err, size_t errlen)
{
    struct store_txn *t = NULL;
    int rc = store_begin(n->store, false, &t);
    if (rc)
        return open_fail(err, errlen, rc, "cannot read storage in ", n->cfg.data_dir);
    struct raftlog_state ls;
    rc = raftlog_load(t, &ls);
    raft_index applied = 0;
    raft_term applied_term = 0;
    if (!rc)
        rc = kv_applied(t, &applied, &applied_term);
    if (rc) {
        if (rc == ASPEN_E_CORRUPT)
            snprintf(err, errlen, "%s: %s", n->cfg.data_dir, ls.error);
        else
            open_fail(err, errlen, rc, "cannot load the raft state in ", n->cfg.data_dir);
        raftlog_state_release(&ls);
        store_abort(t);
        return rc;
    }
    ls.boot.applied = applied;
    struct raft_options o;
    raft_options_default(&o, n->id.raft_id, rng_as_random(&n->raft_rng));
    n->tick_ms = n->cfg.heartbeat_interval_ms / NODE_TICKS_PER_HEARTBEAT;
    if (n->tick_ms == 0)
        n->tick_ms = 1;
    o.heartbeat_ticks = NODE_TICKS_PER_HEARTBEAT;
    o.election_ticks = (uint32_t)((n->cfg.election_timeout_ms + n->tick_ms - 1) / n->tick_ms);
    if (o.election_ticks <= o.heartbeat_ticks)
        o.election_ticks = o.heartbeat_ticks + 1;
    o.snapshot_threshold = n->cfg.snapshot_count;
    rc = raft_create(&n->raft, &o, &ls.boot);
    if (rc)
        snprintf(err, errlen, "%s: the raft state does not start a core: %s", n->cfg.data_dir,
                 aspen_strerror(rc));
    n->applied = n->handed_applied = applied;
    n->handed_term = applied_term;
    n->snapshot_index = ls.boot.snapshot.index;
    raftlog_state_release(&ls);
    store_abort(t);
    if (!rc)
        shell_config_reset(n, applied); /* the core starts in the configuration at applied */
    if (!rc) {
        struct raft_status st;
        raft_status(n->raft, &st);
        n->term = st.hard_state.term;
        LOG_INFO("node", "raft started",
                 "term=%" PRIu64 " commit=%" PRIu64 " applied=%" PRIu64 " last=%" PRIu64
                 " snapshot=%" PRIu64 " tick_ms=%" PRIu64 " election_ticks=%u",
                 st.hard_state.term, st.hard_state.commit, applied, st.last_index,
                 st.snapshot_index, n->tick_ms, o.election_ticks);
    }
    return rc;
}

static int start_network(struct node *n, char *err, size_t errlen)
{
    struct net_identity nid;
    memcpy(nid.pk, n->id.public_key, sizeof(nid.pk));
    memcpy(nid.sk, n->id.secret_key, sizeof(nid.sk));
    n->net_random = rng_as_random(&n->rng);
    int rc = net_tls_tcp_open(n->loop, &nid, NULL, &n->net_random, &n->net);
    memset(&nid, 0, sizeof(nid));
    if (rc)
        return open_fail(err, errlen, rc, "peer transport", "");
    n->net_open = true;
    struct net_handlers h = {.ctx = n, .on_frame = shell_on_frame};
    rc = net_register_protocol(&n->net, NET_ALPN_RAFT, &h);
    if (!rc)
        rc = snap_register(n);
    const struct config_endpoint *pe = &n->cfg.listen_peer_urls.items[0];
    if (!rc)
        rc = net_listen(&n->net, pe->host, pe->port, NULL);
    if (rc)
        return open_fail(err, errlen, rc, "peer listener ", pe->text);
    const struct config_endpoint *ce = &n->cfg.listen_client_urls.items[0];
    struct http_handlers hh = {.on_request = api_on_request, .ctx = n};
    rc = http_server_open(n->loop, ce->host, ce->port, &hh, &n->http, err, errlen);
    if (rc)
        return rc;
    n->http_port = http_server_port(n->http);
    return 0;
}

static void node_abort_open(struct node *n);

/* Spools of snapshot transfers a crash interrupted (node/snap.h): never resumed, so
 * they are only clutter. Start-up may block; the loop is not serving yet. */
static void remove_stale_spools(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "snapshot.", 9) != 0 || len < 14 ||
            strcmp(e->d_name + len - 5, ".recv") != 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            LOG_INFO("node", "removed an interrupted snapshot spool", "file=%s", e->d_name);
    }
    closedir(d);
}

static void free_node(struct node *n)
{
    mem_free(n->members);
    metrics_release(&n->metrics);
    identity_release(&n->id);
    pthread_mutex_destroy(&n->done_mu);
    mem_free(n);
}

int node_open(struct node **out, uv_loop_t *loop, const struct node_config *cfg,
              const struct node_identity *id, const struct join_result *joined, char *err,
              size_t errlen)
{
    struct node *n = mem_calloc(1, sizeof(*n));
    if (!n)
        return ASPEN_E_NOMEM;
    n->loop = loop;
    n->cfg = *cfg;
    n->id = *id;
    pthread_mutex_init(&n->done_mu, NULL);
    metrics_init(&n->metrics);
    uint64_t seed = 0;
    int rc = rng_os_seed(&seed);
    if (rc) {
        snprintf(err, errlen, "cannot seed the random generator: %s", aspen_strerror(rc));
        free_node(n);
        return rc;
    }
    rng_seed(&n->rng, seed);
    rng_split(&n->rng, &n->raft_rng);
    if ((rc = metrics_setup(n))) {
        snprintf(err, errlen, "metrics: %s", aspen_strerror(rc));
        free_node(n);
        return rc;
    }

    struct store_lmdb_options so = {.map_max_bytes = cfg->quota_backend_bytes};
    rc = store_lmdb_open(&n->store, cfg->data_dir, &so, err, errlen);
    if (rc) {
        free_node(n);
        return rc;
    }
    remove_stale_spools(cfg->data_dir);
    bool initialised = false;
    rc = has_raft_state(n->store, cfg->data_dir, &initialised, err, errlen);
    if (!rc && !initialised) {
        if (joined) {
            n->cluster_id = joined->cluster_id;
        } else if (cfg->init) {
            rc = bootstrap(n);
            if (rc)
                open_fail(err, errlen, rc, "bootstrap in ", cfg->data_dir);
        } else {
            snprintf(err, errlen,
                     "%s holds no cluster: start with --init to form a new one, or --join "
                     "TICKET --join-credential SECRET to join one",
                     cfg->data_dir);
            rc = ASPEN_E_INVALID;
        }
    }
    if (!rc)
        rc = start_raft(n, err, errlen);
    if (!rc) {
        rc = committer_start(
            &n->committer, n->store,
            &(struct committer_options){.deliver = shell_deliver, .deliver_ctx = n});
        if (rc)
            snprintf(err, errlen, "storage thread: %s", aspen_strerror(rc));
    }
    if (!rc) {
        uv_async_init(loop, &n->completions, shell_on_completions);
        n->completions.data = n;
        uv_timer_init(loop, &n->tick);
        n->tick.data = n;
        uv_timer_init(loop, &n->stop_timer);
        n->stop_timer.data = n;
        n->handles_open = true;
        rc = start_network(n, err, errlen);
    }
    if (!rc) {
        if (joined && !initialised)
            rc = members_set(n, joined->members, joined->n);
        else
            rc = members_reload(n);
        if (rc)
            snprintf(err, errlen, "member table: %s", aspen_strerror(rc));
    }
    if (rc) {
        /* Tear down synchronously what can be; the loop closes the handles. */
        node_abort_open(n);
        return rc;
    }
    uv_timer_start(&n->tick, on_tick, n->tick_ms, n->tick_ms);
    LOG_INFO("node", "serving", "name=%s id=%s client=%s peer=%s", cfg->name, n->id.short_id,
             cfg->listen_client_urls.items[0].text, cfg->listen_peer_urls.items[0].text);
    *out = n;
    return 0;
}

/* ---- shutdown ---- */

enum stop_phase {
    STOP_TRANSFER = 1,
    STOP_DRAIN = 2,
    STOP_CLOSE = 3,
};

static void release_ref(struct node *n)
{
    if (--n->closing_handles == 0) {
        void (*done)(void *) = n->stop_done;
        void *ctx = n->stop_ctx;
        free_node(n);
        if (done)
            done(ctx);
    }
}

static void handle_closed(uv_handle_t *h)
{
    release_ref(h->data);
}

static void part_closed(void *ctx)
{
    release_ref(ctx);
}

static void close_everything(struct node *n)
{
    /* Stop raft: no more ticks, no more steps; waiters learn the node is closing. */
    uv_timer_stop(&n->tick);
    shell_fail_all(n, ASPEN_E_CLOSED);
    struct raft *r = n->raft;
    n->raft = NULL;
    /* Storage: the committer runs what is queued; complete those batches here. */
    if (n->committer) {
        committer_stop(n->committer);
        n->committer = NULL;
        shell_on_completions(&n->completions);
    }
    raft_free(r);
    if (n->store) {
        store_close(n->store);
        n->store = NULL;
    }
    LOG_INFO("node", "storage closed", "");
    /* Network and handles last. */
    n->closing_handles = 1; /* released below, once everything is started closing */
    if (n->http) {
        n->closing_handles++;
        http_server_close(n->http, part_closed, n);
        n->http = NULL;
    }
    if (n->net_open) {
        n->closing_handles++;
        net_close(&n->net, part_closed, n);
        n->net_open = false;
    }
    if (n->handles_open) {
        n->closing_handles += 3;
        uv_close((uv_handle_t *)&n->tick, handle_closed);
        uv_close((uv_handle_t *)&n->stop_timer, handle_closed);
        uv_close((uv_handle_t *)&n->completions, handle_closed);
        n->handles_open = false;
    }
    release_ref(n);
}

static void node_abort_open(struct node *n)
{
    n->stopping = true;
    n->stop_done = NULL;
    close_everything(n);
}

static void on_stop_timer(uv_timer_t *t)
{
    struct node *n = t->data;
    uint64_t elapsed = node_now_ms(n) - n->stop_started_ms;
    switch (n->stop_phase) {
    case STOP_TRANSFER:
        if (n->role == RAFT_LEADER && elapsed < ASPEN_SHUTDOWN_TRANSFER_MS)
            return;
        if (n->role == RAFT_LEADER)
            LOG_WARN("node", "leadership transfer did not finish; stopping anyway", "");
        n->stop_phase = STOP_DRAIN;
        n->stop_started_ms = node_now_ms(n);
        return;
    case STOP_DRAIN:
        /* Snapshot transfers end now; a chunk being read from the store is waited for
         * whatever the time (it is bounded), since the store closes next. */
        snap_send_cancel_all(n, ASPEN_E_CLOSED);
        snap_recv_cancel(n, ASPEN_E_CLOSED);
        if (n->snap_works)
            return;
        if ((n->inflight || n->proposals.n) && elapsed < ASPEN_SHUTDOWN_DRAIN_MS)
            return;
        if (n->inflight || n->proposals.n)
            LOG_WARN("node", "stopping with writes still in flight", "jobs=%zu waiting=%zu",
                     n->inflight, n->proposals.n);
        n->stop_phase = STOP_CLOSE;
        uv_timer_stop(&n->stop_timer);
        close_everything(n);
        return;
    default:
        return;
    }
}

void node_shutdown(struct node *n, void (*done)(void *ctx), void *ctx)
{
    if (n->stopping) {
        LOG_INFO("node", "already shutting down", "");
        return;
    }
    n->stopping = true;
    n->stop_done = done;
    n->stop_ctx = ctx;
    LOG_INFO("node", "shutting down", "phase=stop-accepting-clients");
    if (n->http)
        http_server_stop_accepting(n->http);
    n->stop_phase = STOP_TRANSFER;
    n->stop_started_ms = node_now_ms(n);
    raft_id target = n->role == RAFT_LEADER ? members_most_caught_up_voter(n) : 0;
    if (target) {
        const struct member_info *m = members_find(n, target);
        LOG_INFO("node", "transferring leadership", "to=%s", m ? m->name : "?");
        struct raft_event ev = {.type = RAFT_EVENT_TRANSFER};
        ev.u.node = target;
        if (shell_step(n, &ev, NULL) != 0)
            n->stop_phase = STOP_DRAIN;
    } else {
        n->stop_phase = STOP_DRAIN;
    }
    uv_timer_start(&n->stop_timer, on_stop_timer, 0, 10);
}
