/*
 * kv_apply: one committed Raft entry in, its effect on the tables, its result and its
 * change events out. The dispatcher owns the revision bookkeeping: the command's changes
 * all happen at rev + 1, and kv.rev moves only if something was written (etcd bumps the
 * revision once per modifying request, never for a no-op delete or a lease grant).
 *
 * A command that is refused (res->rc) is refused before it writes anything — every
 * check runs first — so the entry still applies (the applied index moves) with no other
 * effect, identically on every replica. Commands that write without moving the revision
 * (the cluster registry) flag their first write in ctx.wrote_unversioned, so the same
 * rule is asserted for them.
 */
#include "kv/internal.h"

#include "base/assert.h"

#include <string.h>

/* Refusals: outcomes of the command, not failures of the store. */
static bool is_refusal(int rc)
{
    return rc == ASPEN_E_LEASE_NOT_FOUND || rc == ASPEN_E_NOT_FOUND || rc == ASPEN_E_COMPACTED ||
           rc == ASPEN_E_FUTURE_REV || rc == ASPEN_E_EXISTS || rc == ASPEN_E_DUPLICATE_KEY ||
           rc == ASPEN_E_LIMIT || rc == ASPEN_E_PERMISSION;
}

static int dispatch(struct kv_ctx *ctx, const struct kv_cmd *cmd, struct kv_result *res)
{
    switch (cmd->kind) {
    case KV_CMD_PUT:
        return kv_put_apply(ctx, &cmd->u.put, &res->u.put);
    case KV_CMD_DELETE:
        return kv_write_delete(ctx, &cmd->u.del, &res->u.del);
    case KV_CMD_TXN:
        return kv_txn_apply(ctx, &cmd->u.txn, &res->u.txn);
    case KV_CMD_COMPACT:
        return kv_compact_apply(ctx, cmd->u.compact.revision);
    case KV_CMD_COMPACT_STEP:
        return kv_compact_step(ctx->t, ASPEN_COMPACT_BATCH_REVISIONS);
    case KV_CMD_LEASE_GRANT:
        res->u.lease_grant.id = cmd->u.lease_grant.id;
        res->u.lease_grant.ttl_ms = cmd->u.lease_grant.ttl_ms;
        return kv_lease_grant_apply(ctx, cmd->u.lease_grant.id, cmd->u.lease_grant.ttl_ms);
    case KV_CMD_LEASE_REVOKE:
        return kv_lease_revoke_apply(ctx, cmd->u.lease_revoke.id);
    case KV_CMD_NOOP:
        return 0;
    case KV_CMD_CLUSTER_INIT:
        return kv_cluster_init_apply(ctx, cmd->u.cluster_init.cluster_id);
    case KV_CMD_MEMBER_SET:
        return kv_member_set_apply(ctx, &cmd->u.member_set);
    case KV_CMD_MEMBER_REMOVE:
        return kv_member_remove_apply(ctx, cmd->u.member_remove.id);
    case KV_CMD_CRED_ADD:
        return kv_cred_add_apply(ctx, &cmd->u.cred_add.cred, cmd->u.cred_add.now_ms);
    case KV_CMD_MEMBER_JOIN:
        return kv_member_join_apply(ctx, cmd->u.member_join.hash, cmd->u.member_join.now_ms,
                                    &cmd->u.member_join.member);
    default:
        ASPEN_UNREACHABLE(); /* kv_cmd_decode accepts known kinds only */
    }
}

/* The private arena's chunk when the caller passes none (kv_apply). */
#define KV_APPLY_ARENA_CHUNK (16 * 1024)

int kv_apply(struct store_txn *t, const struct raft_entry *e, struct arena *a,
             struct kv_result *res, struct kv_events *events)
{
    /* Without an arena the caller wants no results: decode into a private one. */
    struct arena own;
    ASPEN_ASSERT(a != NULL || res == NULL);
    if (!a) {
        arena_init(&own, KV_APPLY_ARENA_CHUNK, ASPEN_MAX_REQUEST_BYTES * 4);
        a = &own;
    }
    struct kv_result local;
    if (!res)
        res = &local;
    memset(res, 0, sizeof(*res));
    size_t events_n = events ? events->n : 0;

    raft_index applied;
    raft_term applied_term;
    struct slice v;
    int rc = store_get(t, STORE_T_META, slice_str(KV_META_APPLIED), &v);
    if (rc == ASPEN_E_NOT_FOUND)
        rc = kv_init(t);
    if (rc || (rc = kv_applied(t, &applied, &applied_term)))
        return rc;
    ASPEN_ASSERT(e->index == applied + 1);

    struct kv_ctx ctx = {.t = t, .a = a, .events = events};
    if ((rc = kv_revisions(t, &ctx.rev, &ctx.compacted)))
        return rc;
    ctx.new_rev = ctx.rev + 1;
    buf_init(&ctx.scratch, KV_REC_HEADER + ASPEN_MAX_KEY_BYTES + ASPEN_MAX_VALUE_BYTES);

    if (e->type == RAFT_ENTRY_NORMAL && e->len > 0) {
        struct kv_cmd cmd;
        rc = kv_cmd_decode(slice_make(e->data, e->len), a, &cmd);
        if (rc == ASPEN_E_NOMEM)
            goto out;
        if (rc) {
            res->rc = ASPEN_E_MALFORMED;
            rc = 0;
        } else {
            res->kind = cmd.kind;
            rc = dispatch(&ctx, &cmd, res);
            if (is_refusal(rc)) {
                /* every check runs before the first write */
                ASPEN_ASSERT(!ctx.wrote && !ctx.wrote_unversioned);
                res->rc = rc;
                rc = 0;
                int kind = res->kind;
                memset(&res->u, 0, sizeof(res->u));
                res->kind = (uint8_t)kind;
                if (events)
                    events->n = events_n;
            }
        }
    }
    if (!rc && ctx.wrote)
        rc = kv_meta_put_i64(t, KV_META_REV, ctx.new_rev);
    if (!rc) {
        uint8_t ap[16];
        be64_store(ap, e->index);
        be64_store(ap + 8, e->term);
        rc = store_put(t, STORE_T_META, slice_str(KV_META_APPLIED), slice_make(ap, 16));
    }
    res->revision = ctx.wrote ? ctx.new_rev : ctx.rev;
out:
    buf_release(&ctx.scratch);
    if (a == &own)
        arena_release(&own);
    return rc;
}
