/*
 * Forwarding a follower's proposals to the leader (one hop), so a client may write
 * through any member, as with etcd.
 *
 * The follower sends the encoded command to the leader (REQ). The leader proposes it like
 * its own and answers at once with where the entry went, (index, term), or why it could
 * not (RESP). The follower then waits for that entry like a local proposal. Its own
 * state machine applies the entry and yields the same result the leader's does
 * (kv_apply is deterministic), so no result ever crosses the network. A different term
 * at that index means another leader overwrote the entry; it will never apply, and the
 * client hears NOT_LEADER. A lost RESP leaves the outcome unknown (TIMEOUT), as any
 * timeout does.
 *
 * Both frames travel on the raft protocol, beside the raft messages. The leader's RESP
 * is queued on the same ordered connection as the appends to that follower, before any
 * message that could carry the entry's commit. The follower therefore knows (index,
 * term) before it can apply the entry. A frame starts with magic 0xA5 'F' (raft messages
 * start with 0xA5 'R'), then:
 *   u8 version (1), u8 type (1 REQ, 2 RESP), be64 request id, then
 *   REQ:  be32 timeout ms, the encoded kv_cmd (the rest)
 *   RESP: be32 negated code (0 = proposed), be64 index, be64 term, be64 leader hint
 */
#include "node/internal.h"

#include "base/assert.h"
#include "base/log.h"

#include <aspen/error.h>
#include <inttypes.h>
#include <string.h>

#define FWD_VERSION    1
#define FWD_REQ        1
#define FWD_RESP       2
#define FWD_HEAD_BYTES (2 + 1 + 1 + 8)
#define FWD_RESP_BYTES (FWD_HEAD_BYTES + 4 + 8 + 8 + 8)

bool forward_is_frame(struct slice frame)
{
    return frame.len >= 2 && frame.ptr[0] == FORWARD_MAGIC0 && frame.ptr[1] == FORWARD_MAGIC1;
}

static int head(struct buf *b, uint8_t type, uint64_t id)
{
    int rc = buf_append_u8(b, FORWARD_MAGIC0);
    if (!rc)
        rc = buf_append_u8(b, FORWARD_MAGIC1);
    if (!rc)
        rc = buf_append_u8(b, FWD_VERSION);
    if (!rc)
        rc = buf_append_u8(b, type);
    if (!rc)
        rc = buf_append_be64(b, id);
    return rc;
}

/* ---- the follower ---- */

int forward_propose(struct node *n, struct slice cmd, struct node_waiter *w, uint64_t timeout_ms,
                    raft_id *hint)
{
    const struct member_info *ld = n->leader ? members_find(n, n->leader) : NULL;
    if (!ld) {
        if (hint)
            *hint = n->leader;
        return ASPEN_E_NOT_LEADER; /* no leader known: nothing to forward to */
    }
    if (n->proposals.n + n->forwards.n >= ASPEN_NODE_MAX_PENDING)
        return ASPEN_E_BUSY;
    struct buf b;
    buf_init(&b, FWD_HEAD_BYTES + 4 + ASPEN_MAX_REQUEST_BYTES);
    uint64_t id = ++n->next_forward_id;
    int rc = head(&b, FWD_REQ, id);
    if (!rc)
        rc = buf_append_be32(&b, (uint32_t)(timeout_ms > UINT32_MAX ? UINT32_MAX : timeout_ms));
    if (!rc)
        rc = buf_append_slice(&b, cmd);
    if (!rc)
        rc = net_send(&n->net, ld->pk, NET_ALPN_RAFT, buf_slice(&b));
    buf_release(&b);
    if (rc == ASPEN_E_PERMISSION || rc == ASPEN_E_NOT_FOUND) {
        if (hint)
            *hint = n->leader;
        return ASPEN_E_NOT_LEADER;
    }
    if (rc)
        return rc == ASPEN_E_TOO_LARGE ? rc : ASPEN_E_BUSY;
    w->kind = WAITER_FORWARD;
    w->ready = false;
    w->index = 0;
    w->term = 0;
    w->read_ctx = id;
    w->deadline_ms = node_now_ms(n) + timeout_ms;
    shell_waiter_push(n, w);
    n->m.forwarded->value++;
    return 0;
}

static void on_resp(struct node *n, uint64_t id, struct reader *r)
{
    uint32_t code;
    uint64_t index, term, hint;
    if (reader_be32(r, &code) || reader_be64(r, &index) || reader_be64(r, &term) ||
        reader_be64(r, &hint) || r->left != 0 || code > (uint32_t)INT32_MAX) {
        LOG_WARN("node", "malformed forwarding answer dropped", "");
        return;
    }
    struct node_waiter *w = shell_forward_find(n, id);
    if (!w)
        return; /* timed out already */
    int rc = -(int)code;
    if (!rc && index <= n->applied)
        rc = ASPEN_E_TIMEOUT; /* cannot happen with ordered delivery; the outcome is unknown */
    if (rc) {
        shell_waiter_finish(n, w, rc, NULL, 0);
        return;
    }
    shell_forward_proposed(n, w, index, term);
}

/* ---- the leader ---- */

static void on_req(struct node *n, const struct member_info *from, uint64_t id, struct reader *r)
{
    uint32_t timeout_ms;
    if (reader_be32(r, &timeout_ms) || r->left == 0) {
        LOG_WARN("node", "malformed forwarded proposal dropped", "from=%s", from->name);
        return;
    }
    struct slice cmd = slice_make(r->ptr, r->left);
    raft_id hint = 0;
    int rc = shell_propose_unwaited(n, cmd, &hint);
    struct buf b;
    buf_init(&b, FWD_RESP_BYTES);
    int erc = head(&b, FWD_RESP, id);
    if (!erc)
        erc = buf_append_be32(&b, (uint32_t)(rc < 0 ? -rc : 0));
    if (!erc)
        erc = buf_append_be64(&b, rc ? 0 : n->last_proposed_index);
    if (!erc)
        erc = buf_append_be64(&b, rc ? 0 : n->last_proposed_term);
    if (!erc)
        erc = buf_append_be64(&b, rc ? hint : n->id.raft_id);
    if (!erc)
        erc = net_send(&n->net, from->pk, NET_ALPN_RAFT, buf_slice(&b));
    if (erc)
        LOG_DEBUG("node", "forwarding answer not sent", "to=%s reason=%s", from->name,
                  aspen_err_name(erc));
    buf_release(&b);
    (void)timeout_ms; /* the follower's deadline; the entry itself cannot be withdrawn */
}

void forward_on_frame(struct node *n, const struct member_info *from, struct slice frame)
{
    struct reader r = reader_make(frame);
    uint8_t m0, m1, version, type;
    uint64_t id;
    if (reader_u8(&r, &m0) || reader_u8(&r, &m1) || reader_u8(&r, &version) ||
        reader_u8(&r, &type) || reader_be64(&r, &id) || version != FWD_VERSION) {
        LOG_WARN("node", "malformed forwarding frame dropped", "from=%s", from->name);
        return;
    }
    if (type == FWD_REQ)
        on_req(n, from, id, &r);
    else if (type == FWD_RESP)
        on_resp(n, id, &r);
    else
        LOG_WARN("node", "unknown forwarding frame dropped", "from=%s type=%u", from->name, type);
}
