/*
 * The node runtime: one Aspen server process around one raft core.
 *
 * Threads: the libuv loop thread runs everything — the raft core (raft_step), the peer
 * transport, the HTTP endpoint, timers — and the committer's storage thread does the
 * durable writes (group commit). Each raft update becomes one storage job (log change,
 * hard state and the KV apply of committed entries in ONE transaction, one fsync);
 * finished batches come back to the loop through a uv_async, where the node sends the
 * messages that waited for the write, steps PERSISTED and answers the clients. Nothing on
 * the loop blocks on the disk: reads use LMDB read transactions, which never wait for the
 * writer.
 *
 * Lifecycle (aspen-node's main):
 *   node_open      open the data dir (LMDB, raft state), bootstrap (--init) or take a
 *                  joiner's membership, start the committer, the transport and the HTTP
 *                  endpoint;
 *   uv_run         serve;
 *   node_shutdown  graceful stop in phases (stop accepting clients → hand over
 *                  leadership if leader → drain in-flight writes → stop raft → stop the
 *                  committer and close storage → close the network), then `done`.
 * SIGKILL at any moment is safe: durable state is only what a committed transaction holds.
 */
#ifndef ASPEN_NODE_NODE_H
#define ASPEN_NODE_NODE_H

#include "node/config.h"
#include "node/identity.h"
#include "node/join.h"

#include <stddef.h>
#include <uv.h>

struct node;

/* Opens the node described by cfg with identity id (both copied) on loop (borrowed; must
 * outlive the node). `joined` is the outcome of a join (join.h) for a node with an empty
 * data dir started with --join, else NULL. On success *out belongs to the caller, who
 * runs the loop and ends with node_shutdown. On failure a one-line reason is in err.
 * Errors: ASPEN_E_INVALID (the data dir's state contradicts the flags: --init on an
 * initialised node, a joined cluster's id differs), ASPEN_E_CORRUPT (damaged storage),
 * ASPEN_E_NOMEM, storage and socket errors. */
int node_open(struct node **out, uv_loop_t *loop, const struct node_config *cfg,
              const struct node_identity *id, const struct join_result *joined, char *err,
              size_t errlen);

/* True if the data dir holds Raft state already (the node was initialised or joined). */
int node_data_dir_initialised(const char *data_dir, bool *initialised, char *err, size_t errlen);

/* Starts the graceful shutdown; `done(ctx)` runs on the loop once everything is closed
 * and n is freed (the loop then has no handles left of the node). Idempotent: a second
 * call while shutting down only logs. */
void node_shutdown(struct node *n, void (*done)(void *ctx), void *ctx);

#endif /* ASPEN_NODE_NODE_H */
