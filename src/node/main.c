/*
 * aspen-node: the server binary.
 *
 *   aspen-node                      a single-node cluster in ./aspen-data, clients on
 *                                   127.0.0.1:2379, peers on 127.0.0.1:2380 (etcd's ports)
 *   aspen-node --init ...           form a new cluster (first start of its founder)
 *   aspen-node --join TICKET --join-credential SECRET ...   join a running cluster
 *   aspen-node --print-config       print the effective configuration and exit
 *
 * With no --init and no --join, a node whose data dir is empty forms a single-node
 * cluster only if nothing in the flags, environment or config file asked for --init=false
 * (the embedded default); a node with existing state simply restarts, and --init or
 * --join on it are ignored (as etcd ignores --initial-cluster after the first start).
 *
 * SIGTERM / SIGINT start the graceful shutdown (node.h); a second signal is only logged.
 * SIGPIPE is ignored: the sockets report EPIPE instead.
 */
#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "node/config.h"
#include "node/identity.h"
#include "node/join.h"
#include "node/node.h"

#include <aspen/error.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

extern char **environ;

struct main_ctx {
    struct node *node;
    uv_signal_t sigterm, sigint;
    bool stopped;
};

static void on_stopped(void *ctx)
{
    struct main_ctx *m = ctx;
    m->node = NULL;
    m->stopped = true;
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
    LOG_INFO("node", "stopped", "");
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct main_ctx *m = h->data;
    LOG_INFO("node", "signal received", "signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    if (m->node)
        node_shutdown(m->node, on_stopped, m);
}

static int print_text(int (*fn)(const struct node_config *, struct buf *),
                      const struct node_config *cfg)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    int rc = fn(cfg, &b);
    if (!rc && fwrite(b.data, 1, b.len, stdout) != b.len)
        rc = ASPEN_E_IO;
    buf_release(&b);
    return rc;
}

static int help_fn(const struct node_config *cfg, struct buf *b)
{
    (void)cfg;
    return config_help(b);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    static struct node_config cfg;
    char err[1024];
    int rc = config_load(&cfg, argc, argv, environ, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "aspen-node: %s\n", err);
        return 2;
    }
    if (cfg.show_help)
        return print_text(help_fn, &cfg) ? 1 : 0;
    if (cfg.print_config)
        return print_text(config_print, &cfg) ? 1 : 0;
    log_set_level(cfg.log_level);

    bool initialised = false;
    rc = node_data_dir_initialised(cfg.data_dir, &initialised, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "aspen-node: %s\n", err);
        return 1;
    }
    struct node_identity id;
    rc = identity_load_or_create(cfg.data_dir, &id, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "aspen-node: %s\n", err);
        return 1;
    }
    if (id.was_created)
        LOG_INFO("node", "identity created", "id=%s dir=%s", id.id, cfg.data_dir);

    struct join_result joined = {0};
    bool has_join = false;
    if (!initialised) {
        if (cfg.join[0]) {
            if (cfg.init) {
                fprintf(stderr, "aspen-node: --init and --join contradict each other\n");
                identity_release(&id);
                return 2;
            }
            LOG_INFO("node", "joining cluster", "name=%s", cfg.name);
            rc = join_cluster(&cfg, &id, &joined, err, sizeof(err));
            if (rc) {
                fprintf(stderr, "aspen-node: %s\n", err);
                identity_release(&id);
                return 1;
            }
            has_join = true;
        } else if (!cfg.init && cfg.source[CONFIG_INIT] == CONFIG_SOURCE_DEFAULT) {
            LOG_INFO("node", "empty data dir: forming a single-node cluster", "dir=%s",
                     cfg.data_dir);
            cfg.init = true;
        }
    } else if (cfg.join[0] || cfg.init) {
        LOG_INFO("node", "data dir already holds a cluster: --init/--join ignored", "dir=%s",
                 cfg.data_dir);
        cfg.init = false;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct main_ctx m = {0};
    rc = node_open(&m.node, &loop, &cfg, &id, has_join ? &joined : NULL, err, sizeof(err));
    identity_release(&id);
    join_result_release(&joined);
    if (rc) {
        fprintf(stderr, "aspen-node: %s\n", err);
        uv_run(&loop, UV_RUN_DEFAULT); /* let what was opened close */
        uv_loop_close(&loop);
        return 1;
    }
    uv_signal_init(&loop, &m.sigterm);
    uv_signal_init(&loop, &m.sigint);
    m.sigterm.data = m.sigint.data = &m;
    uv_signal_start(&m.sigterm, on_signal, SIGTERM);
    uv_signal_start(&m.sigint, on_signal, SIGINT);
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&loop);
    if (rc)
        LOG_WARN("node", "loop closed with handles open", "reason=%s", uv_strerror(rc));
    return m.stopped ? 0 : 1;
}
