/*
 * The simulator's replicated state machine: a small key-value register store, and the
 * encoding of its operations in log entries.
 *
 * Each key holds one value or nothing. Operations are put, cas (compare-and-set,
 * "absent" may be expected) and delete through the log, and get through linearizable
 * reads (raft ReadIndex) served from the applied state. Values are unique 64-bit ids
 * chosen by the workload (value 0 means "absent"), which keeps the linearizability
 * search small (research consensus.md §4.4).
 *
 * The simulator drives a state machine only through struct sm_ops — encode an operation,
 * apply an entry, take a snapshot blob, restore from one, digest the state. The register
 * model here is one implementation (`--sm model`); the real KV state machine (src/kv, in
 * kvsm.c) is the other and the default.
 */
#ifndef ASPEN_SIM_MODEL_H
#define ASPEN_SIM_MODEL_H

#include "base/buf.h"
#include "base/constants.h"
#include "raft/raft.h"

#include <stdbool.h>
#include <stdint.h>

enum model_op_kind {
    MODEL_OP_GET = 0, /* never in the log: reads go through RAFT_EVENT_READ */
    MODEL_OP_PUT = 1,
    MODEL_OP_CAS = 2,
    MODEL_OP_DELETE = 3,
};

/* One operation as the workload issues it and as a log entry carries it. */
struct model_op {
    uint8_t kind; /* enum model_op_kind */
    uint8_t key;  /* < ASPEN_SIM_MAX_KEYS */
    uint32_t client;
    uint64_t op_id;  /* the history's id of the operation */
    uint64_t value;  /* PUT/CAS: the new value (never 0) */
    uint64_t expect; /* CAS: the value expected (0: absent) */
};

#define MODEL_OP_BYTES 31

/* Writes the entry encoding of op into out (MODEL_OP_BYTES). */
void model_op_encode(const struct model_op *op, uint8_t out[MODEL_OP_BYTES]);

/* Decodes entry data. 0 or ASPEN_E_MALFORMED. */
int model_op_decode(const uint8_t *data, size_t len, struct model_op *op);

/* The outcome of applying one entry (or of serving a read). */
struct sm_result {
    bool is_op;      /* false for no-ops and configuration entries */
    bool ok;         /* CAS: swapped; DELETE: the key existed; PUT: always true */
    uint64_t op_id;  /* the operation applied (is_op) */
    uint32_t client; /* its client */
    uint64_t value;  /* GET: the value read (0: absent) */
};

/* The state machine interface the simulator drives. `sm` is the implementation's state,
 * created by create() (empty) and owned by whoever holds the pointer. */
struct sm_ops {
    const char *name;
    /* A new, empty state machine in *out. 0 or ASPEN_E_NOMEM. */
    int (*create)(void **out);
    void (*free)(void *sm);
    /* dst := src (a crash restores the live state from the durable image). */
    int (*copy)(void *dst, void *src);
    /* Encodes a workload operation as log entry data. */
    int (*encode)(const struct model_op *op, struct buf *out);
    /* Applies one committed entry; fills *res. 0 or ASPEN_E_MALFORMED (undecodable
     * data: the simulator reports it as a violation). */
    int (*apply)(void *sm, const struct raft_entry *e, struct sm_result *res);
    /* Appends the state's snapshot to out. 0 or a buf error. */
    int (*snapshot)(void *sm, struct buf *out);
    /* Replaces the state with a snapshot's; len 0: the empty state. 0 or
     * ASPEN_E_MALFORMED. */
    int (*restore)(void *sm, const uint8_t *blob, size_t len);
    /* A digest of the whole state: equal states, equal digests. */
    uint64_t (*digest)(void *sm);
    /* Serves a read of `key`. */
    void (*get)(void *sm, uint32_t key, struct sm_result *res);
};

/* The register store. Plain data: copy it by assignment. */
struct model {
    uint64_t value[ASPEN_SIM_MAX_KEYS]; /* 0: absent */
};

void model_init(struct model *m);

/* The register store's sm_ops (sm points to a struct model). */
extern const struct sm_ops model_sm_ops;

#endif
