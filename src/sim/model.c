/*
 * The simulator's key-value register model (sim/model.h).
 *
 * Entry layout (big-endian): 'K', kind, key, client(4), op_id(8), value(8), expect(8).
 * The leading magic byte lets apply refuse data that is not a model operation instead of
 * misreading it; the length is fixed, so any truncation is caught too.
 */
#include "sim/model.h"

#include "base/mem.h"

#include "base/slice.h"
#include "sim/stream.h"

#include <aspen/error.h>

#define MODEL_MAGIC 'K'
#define SNAP_MAGIC  'S'

void model_op_encode(const struct model_op *op, uint8_t out[MODEL_OP_BYTES])
{
    out[0] = MODEL_MAGIC;
    out[1] = op->kind;
    out[2] = op->key;
    be32_store(out + 3, op->client);
    be64_store(out + 7, op->op_id);
    be64_store(out + 15, op->value);
    be64_store(out + 23, op->expect);
}

int model_op_decode(const uint8_t *data, size_t len, struct model_op *op)
{
    if (len != MODEL_OP_BYTES || data[0] != MODEL_MAGIC)
        return ASPEN_E_MALFORMED;
    op->kind = data[1];
    op->key = data[2];
    op->client = be32_load(data + 3);
    op->op_id = be64_load(data + 7);
    op->value = be64_load(data + 15);
    op->expect = be64_load(data + 23);
    if (op->key >= ASPEN_SIM_MAX_KEYS || op->kind == MODEL_OP_GET || op->kind > MODEL_OP_DELETE)
        return ASPEN_E_MALFORMED;
    if ((op->kind == MODEL_OP_PUT || op->kind == MODEL_OP_CAS) && op->value == 0)
        return ASPEN_E_MALFORMED;
    return 0;
}

void model_init(struct model *m)
{
    *m = (struct model){0};
}

static int model_apply(void *sm, const struct raft_entry *e, struct sm_result *res)
{
    struct model *m = sm;
    *res = (struct sm_result){0};
    /* Leader no-ops (empty) and membership entries belong to the core, not the store. */
    if (e->type != RAFT_ENTRY_NORMAL || e->len == 0)
        return 0;
    struct model_op op;
    int rc = model_op_decode(e->data, e->len, &op);
    if (rc)
        return rc;
    res->is_op = true;
    res->op_id = op.op_id;
    res->client = op.client;
    uint64_t *v = &m->value[op.key];
    switch (op.kind) {
    case MODEL_OP_PUT:
        *v = op.value;
        res->ok = true;
        break;
    case MODEL_OP_CAS:
        res->ok = *v == op.expect;
        if (res->ok)
            *v = op.value;
        break;
    case MODEL_OP_DELETE:
        res->ok = *v != 0;
        *v = 0;
        break;
    default:
        return ASPEN_E_MALFORMED;
    }
    res->value = *v;
    return 0;
}

static int model_snapshot(void *sm, struct buf *out)
{
    const struct model *m = sm;
    int rc = buf_append_u8(out, SNAP_MAGIC);
    rc = rc ? rc : buf_append_u8(out, ASPEN_SIM_MAX_KEYS);
    for (uint32_t k = 0; k < ASPEN_SIM_MAX_KEYS && !rc; k++)
        rc = buf_append_be64(out, m->value[k]);
    return rc;
}

static int model_restore(void *sm, const uint8_t *blob, size_t len)
{
    struct model *m = sm;
    if (len == 0) {
        model_init(m);
        return 0;
    }
    if (len != 2 + 8 * ASPEN_SIM_MAX_KEYS || blob[0] != SNAP_MAGIC || blob[1] != ASPEN_SIM_MAX_KEYS)
        return ASPEN_E_MALFORMED;
    for (uint32_t k = 0; k < ASPEN_SIM_MAX_KEYS; k++)
        m->value[k] = be64_load(blob + 2 + 8 * k);
    return 0;
}

static uint64_t model_digest(void *sm)
{
    const struct model *m = sm;
    uint64_t h = 0x6d6f64656cULL; /* "model" */
    for (uint32_t k = 0; k < ASPEN_SIM_MAX_KEYS; k++)
        h = sim_hash_u64(h, m->value[k]);
    return h;
}

static void model_get(void *sm, uint32_t key, struct sm_result *res)
{
    const struct model *m = sm;
    *res = (struct sm_result){.is_op = true, .ok = true, .value = m->value[key]};
}

static int model_create(void **out)
{
    struct model *m = mem_calloc(1, sizeof(*m));
    if (!m)
        return ASPEN_E_NOMEM;
    *out = m;
    return 0;
}

static void model_free(void *sm)
{
    mem_free(sm);
}

static int model_copy(void *dst, void *src)
{
    *(struct model *)dst = *(const struct model *)src;
    return 0;
}

static int model_encode(const struct model_op *op, struct buf *out)
{
    uint8_t data[MODEL_OP_BYTES];
    model_op_encode(op, data);
    return buf_append(out, data, sizeof(data));
}

const struct sm_ops model_sm_ops = {
    .name = "model",
    .create = model_create,
    .free = model_free,
    .copy = model_copy,
    .encode = model_encode,
    .apply = model_apply,
    .snapshot = model_snapshot,
    .restore = model_restore,
    .digest = model_digest,
    .get = model_get,
};
