/*
 * Linearizability checker for per-key register histories (sim/lincheck.h): Wing & Gong's
 * search with Lowe's memoization, after Porcupine's checkSingle, one key at a time.
 *
 * Per key, the operations become a list of call and return entries sorted by time (calls
 * before returns on equal times, so touching intervals are concurrent). The search walks
 * the list from its head: a call met before any return is a "minimal" operation that may
 * be linearized next. If the register model accepts it and the resulting configuration
 * (set of linearized operations, register state) has not been explored, the operation is
 * linearized: pushed on an explicit stack and lifted out of the list, and the walk starts
 * again from the head. Meeting a return entry means the operation it belongs to could not
 * be placed before it returned: pop the last choice, put it back, try the next candidate.
 * The history is linearizable once every known-outcome operation is placed; it is not
 * once the stack is empty at a return entry.
 *
 * Register states are interned per key into small integers, so a model step is a couple
 * of integer compares: 0 is absent, 1 stands for every "anonymous" value (one that no
 * operation can tell apart from another: no GET returns it, no CAS expects it), and the
 * remaining written values are numbered from 2. Merging the anonymous values loses
 * nothing, since every step treats them alike, and it shrinks the state space.
 *
 * Unknown-outcome writes are what makes the search expensive: each stays pending forever
 * (its return is at +infinity) and is never required (the search succeeds once the known
 * operations are placed; an unknown operation left out never took effect, or took effect
 * unobserved at the end). Without care, proving a violation explores every subset of the
 * pending unknown writes. Four reductions, each of which keeps the verdict exact:
 *
 *  1. Patching (etcd's robustness tests do the same): an unknown PUT or CAS whose value is
 *     the only write of that value and is observed (a GET returns it, a successful CAS
 *     expects it) certainly took effect before the observer returned. It becomes a known
 *     operation that returns at the earliest observation (a CAS, a successful one).
 *
 *  2. Dominance memo: a configuration is (K known set, U unknown set, state s). If (K, U',
 *     s) with U' a subset of U was explored, (K, U, s) can be skipped: any completion of it
 *     is one of (K, U', s) too, which merely leaves more unknown operations available
 *     (they have no return entries, so real-time order never depends on them). When the
 *     skip is safe depends on the pass (see search()).
 *
 *  3. Symmetry: unknown operations with the same transition (two unknown DELETEs, two
 *     unknown PUTs of anonymous values, two CAS with the same expected and new states) are
 *     interchangeable once invoked, so of those pending only the earliest invoked is tried.
 *     The set consumed from each such class is then always a prefix, so U varies little.
 *     Likewise an unknown CAS(a -> b) can do nothing an unknown PUT(b) cannot, so when both
 *     would take the state from a to b, only the CAS is tried.
 *
 *  4. Normal form: an unknown operation is placed only right before an operation it
 *     enables. Take any linearization and let u (taking the state from s to s') be followed
 *     by o. If o is legal from s with the same result, u can be dropped; if o is legal from
 *     both and changes nothing (a failed CAS), u can move after o (unknown operations may
 *     move later freely); if u is a no-op it can be dropped; if u is last it can be dropped.
 *     Repeating this ends with every remaining u directly followed by a known o that is
 *     illegal from s, or by an unknown CAS that succeeds from s' but not from s. So after
 *     an unknown operation the search only tries such "enabled" operations, and tries the
 *     unknown operation at all only if one is pending. Because this restriction depends on
 *     the state before u, a configuration reached right after an unknown operation is
 *     checked against the memo table (an unrestricted visit dominates it) but not
 *     recorded: it must not stand for later unrestricted visits.
 *
 * The walk tries known candidates before unknown ones, so the cheap explanation (no
 * unknown operation took effect) is explored first. The search runs in passes (search()):
 * a greedy one with a step cap, which finds linearizations fast, then, if it was cut off,
 * passes that allow more and more unknown operations, so that a configuration reachable
 * with fewer of them is recorded before it is met with more, and a final unlimited one.
 *
 * Memo entries store the known-operation bitset compactly: operations are numbered in
 * invocation order, so a linearized set is mostly a run of leading all-ones words; those
 * are counted, not stored, and trailing zero words are dropped. A 10^4-operation search
 * then costs a few words per entry instead of 1.25 KiB. The hash of the known set is
 * Zobrist-style (an XOR of one random word per operation), updated in O(1) per step.
 *
 * The memo table has a byte budget; a search that would exceed it stops with UNKNOWN. A
 * pass is bounded by it: every iteration advances along the list (at most its length
 * between two other events), inserts or re-explores a configuration (each at most once
 * per pass, and their number is bounded by the budget) or undoes one such step; and
 * there are at most ASPEN_LINCHECK_DEEPENING_PASSES + 1 passes.
 */
#include "sim/lincheck.h"

#include "base/assert.h"
#include "base/mem.h"
#include "sim/lincheck_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

/* ---- Shared helpers (lincheck_internal.h) ---- */

int lincheck_validate(const struct lincheck_op *ops, size_t n)
{
    if (n > 0 && !ops)
        return ASPEN_E_INVALID;
    for (size_t i = 0; i < n; i++) {
        const struct lincheck_op *op = &ops[i];
        if (op->kind < LINCHECK_PUT || op->kind > LINCHECK_DELETE)
            return ASPEN_E_INVALID;
        if (op->invoke_t == LINCHECK_INF)
            return ASPEN_E_INVALID;
        if (!lincheck_is_unknown(op) && op->return_t < op->invoke_t)
            return ASPEN_E_INVALID;
        if ((op->kind == LINCHECK_PUT || op->kind == LINCHECK_CAS) && op->value == LINCHECK_ABSENT)
            return ASPEN_E_INVALID;
    }
    return 0;
}

struct part_ref {
    uint64_t key;
    uint64_t t;
    size_t i;
};

static int part_ref_cmp(const void *pa, const void *pb)
{
    const struct part_ref *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

int lincheck_partition(const struct lincheck_op *ops, size_t n, size_t **order_out,
                       size_t *count_out)
{
    *order_out = NULL;
    *count_out = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!(ops[i].kind == LINCHECK_GET && lincheck_is_unknown(&ops[i])))
            m++;
    if (m == 0)
        return 0;
    struct part_ref *refs = mem_calloc(m, sizeof(*refs));
    if (!refs)
        return ASPEN_E_NOMEM;
    size_t *order = mem_calloc(m, sizeof(*order));
    if (!order) {
        mem_free(refs);
        return ASPEN_E_NOMEM;
    }
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind == LINCHECK_GET && lincheck_is_unknown(&ops[i]))
            continue;
        refs[j].key = ops[i].key;
        refs[j].t = ops[i].invoke_t;
        refs[j].i = i;
        j++;
    }
    qsort(refs, m, sizeof(*refs), part_ref_cmp);
    size_t run = 0;
    for (size_t i = 0; i < m; i++) {
        run = i > 0 && refs[i].key == refs[i - 1].key ? run + 1 : 1;
        if (run > ASPEN_LINCHECK_MAX_OPS_PER_KEY) {
            mem_free(order);
            mem_free(refs);
            return ASPEN_E_TOO_LARGE;
        }
        order[i] = refs[i].i;
    }
    mem_free(refs);
    *order_out = order;
    *count_out = m;
    return 0;
}

void lincheck_result_reset(struct lincheck_result *res)
{
    memset(res, 0, sizeof(*res));
    res->verdict = LINCHECK_OK;
    res->op = SIZE_MAX;
    res->other_op = SIZE_MAX;
}

void lincheck_explain(struct lincheck_result *res, const char *fmt, ...)
{
    size_t len = strlen(res->explain);
    if (len + 1 >= sizeof(res->explain))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->explain + len, sizeof(res->explain) - len, fmt, ap);
    va_end(ap);
}

void lincheck_explain_op(struct lincheck_result *res, const struct lincheck_op *ops, size_t i)
{
    char desc[160];
    lincheck_describe_op(&ops[i], desc, sizeof(desc));
    lincheck_explain(res, "#%zu %s", i, desc);
}

/* ---- Descriptions ---- */

const char *lincheck_value_str(uint64_t v, char *tmp, size_t size)
{
    if (v == LINCHECK_ABSENT)
        return "absent";
    snprintf(tmp, size, "%" PRIu64, v);
    return tmp;
}

void lincheck_describe_op(const struct lincheck_op *op, char *out, size_t size)
{
    if (size == 0)
        return;
    char a[24], b[24], what[80];
    bool unknown = lincheck_is_unknown(op);
    switch (op->kind) {
    case LINCHECK_PUT:
        snprintf(what, sizeof(what), "put(%s)", lincheck_value_str(op->value, a, sizeof(a)));
        break;
    case LINCHECK_GET:
        snprintf(what, sizeof(what), "get -> %s",
                 unknown ? "?" : lincheck_value_str(op->value, a, sizeof(a)));
        break;
    case LINCHECK_CAS:
        snprintf(what, sizeof(what), "cas(%s -> %s) %s",
                 lincheck_value_str(op->expected, a, sizeof(a)),
                 lincheck_value_str(op->value, b, sizeof(b)),
                 unknown  ? "?"
                 : op->ok ? "ok"
                          : "fail");
        break;
    case LINCHECK_DELETE:
        snprintf(what, sizeof(what), "delete%s",
                 unknown              ? " ?"
                 : !op->existed_known ? ""
                 : op->existed        ? " (existed)"
                                      : " (was absent)");
        break;
    default:
        snprintf(what, sizeof(what), "bad-kind-%d", (int)op->kind);
        break;
    }
    char idx[32] = "";
    if (op->raft_index && !unknown)
        snprintf(idx, sizeof(idx), " @%" PRIu64, op->raft_index);
    if (unknown)
        snprintf(out, size, "c%" PRIu64 " %s [%" PRIu64 ", ?]%s", op->client, what, op->invoke_t,
                 idx);
    else
        snprintf(out, size, "c%" PRIu64 " %s [%" PRIu64 ", %" PRIu64 "]%s", op->client, what,
                 op->invoke_t, op->return_t, idx);
}

const char *lincheck_verdict_name(enum lincheck_verdict v)
{
    switch (v) {
    case LINCHECK_OK:
        return "ok";
    case LINCHECK_VIOLATION:
        return "violation";
    case LINCHECK_UNKNOWN:
        return "unknown";
    }
    return "?";
}

/* ---- The memo table ---- */

/* splitmix64's finalizer: a bijective mixer, so distinct inputs give distinct words. */
static inline uint64_t mix64(uint64_t x)
{
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* The Zobrist word of known operation id. */
static inline uint64_t zobrist(uint32_t id)
{
    return mix64((uint64_t)id * UINT64_C(0x9e3779b97f4a7c15) + UINT64_C(0x632be59bd9b4e019));
}

/* A recorded configuration. Its bitsets live in the pool. */
struct memo_entry {
    uint64_t hash;    /* of (known set, state) only, so every entry that might dominate a
                         configuration sits in the probe sequence of its hash */
    uint32_t off;     /* first word in the pool: klen known words, then ulen unknown ones */
    uint32_t state;   /* register state */
    uint32_t kprefix; /* leading all-ones words of the known set (not stored) */
    uint32_t ustart;  /* leading all-zero words of the unknown set (not stored) */
    uint16_t klen;    /* known-set words stored after the prefix (trailing zeros dropped) */
    uint16_t ulen;    /* unknown-set words stored (trailing zeros dropped) */
    uint32_t proven;  /* no completion places at most this many more unknown-outcome
                         operations; PROVEN_ALL: no completion at all */
};

#define PROVEN_ALL UINT32_MAX

_Static_assert(sizeof(struct memo_entry) == 32, "memo entries stay small: there are millions");
_Static_assert((ASPEN_LINCHECK_MAX_OPS_PER_KEY + 63) / 64 <= UINT16_MAX,
               "a key's bitset length fits a memo entry's uint16_t");

/* The hash index: entry number + 1 (0: empty) and the hash's high half, to skip most
 * mismatches without touching the entry. */
struct memo_slot {
    uint32_t id1;
    uint32_t tag;
};

struct memo {
    struct memo_slot *slots;    /* owned; open addressing, linear probing, load <= 3/4 */
    size_t cap;                 /* power of two, 0 before the first insertion */
    struct memo_entry *entries; /* owned; numbered in insertion order (stable) */
    size_t count, entries_cap;
    uint64_t *pool; /* owned; the bitset words of every entry */
    size_t pool_len, pool_cap;
    size_t budget_bytes;
};

enum { MEMO_SEEN = 0, MEMO_NEW = 1, MEMO_FULL = 2 };

#define MEMO_INITIAL_SLOTS 128

static void memo_release(struct memo *m)
{
    mem_free(m->slots);
    mem_free(m->entries);
    mem_free(m->pool);
    memset(m, 0, sizeof(*m));
}

static size_t memo_bytes(size_t cap, size_t entries_cap, size_t pool_cap)
{
    return cap * sizeof(struct memo_slot) + entries_cap * sizeof(struct memo_entry) +
           pool_cap * sizeof(uint64_t);
}

/* Grows an array of *cap elements of size bytes to hold need, doubling, within what the
 * budget has left once the other arrays' bytes (other) are counted. MEMO_NEW, MEMO_FULL
 * or ASPEN_E_NOMEM. */
static int memo_grow_array(const struct memo *m, void **arr, size_t *cap, size_t size, size_t need,
                           size_t other, size_t limit)
{
    if (need <= *cap)
        return MEMO_NEW;
    if (other > m->budget_bytes)
        return MEMO_FULL;
    size_t fit = (m->budget_bytes - other) / size;
    if (fit > limit)
        fit = limit;
    size_t grown = *cap ? *cap * 2 : 64;
    if (grown < need)
        grown = need;
    if (grown > fit)
        grown = fit; /* the last growth takes what the budget has left */
    if (grown < need)
        return MEMO_FULL;
    void *p = mem_realloc(*arr, grown * size);
    if (!p)
        return ASPEN_E_NOMEM;
    *arr = p;
    *cap = grown;
    return MEMO_NEW;
}

/* Doubles the index (or creates it). MEMO_NEW, MEMO_FULL or ASPEN_E_NOMEM. */
static int memo_grow_index(struct memo *m)
{
    size_t cap = m->cap ? m->cap * 2 : MEMO_INITIAL_SLOTS;
    if (cap > m->budget_bytes / sizeof(struct memo_slot) ||
        memo_bytes(cap, m->entries_cap, m->pool_cap) > m->budget_bytes)
        return MEMO_FULL;
    struct memo_slot *slots = mem_calloc(cap, sizeof(*slots));
    if (!slots)
        return ASPEN_E_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].id1)
            continue;
        size_t j = (size_t)m->entries[m->slots[i].id1 - 1].hash & (cap - 1);
        while (slots[j].id1)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    mem_free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return MEMO_NEW;
}

/* memcmp of n words, where n may be 0 and a NULL (memcmp forbids NULL even then). */
static bool words_equal(const uint64_t *a, const uint64_t *b, size_t n)
{
    return n == 0 || memcmp(a, b, n * sizeof(uint64_t)) == 0;
}

/* A configuration as the memo table sees it. The known set is given in compact form:
 * kbits[0..kprefix) are all ones and kbits[kend..) all zero. budget is how many more
 * unknown-outcome operations the current pass lets it place. */
struct config {
    const uint64_t *kbits;
    size_t kprefix, kend;
    const uint64_t *ubits;
    size_t uwords;
    uint64_t khash;
    uint32_t state;
    uint32_t budget;
};

/* Looks configuration c up. It is dominated by an entry with the same known set and
 * state, an unknown set that is a subset of c's, and a proof covering c's budget (in the
 * final pass: any entry with a strict subset, or c's own entry explored in this pass):
 * then MEMO_SEEN, with that proof in *proven. Otherwise MEMO_NEW: if record is set, c is
 * recorded (or its own entry, left by an earlier pass, is reused) with c's budget as a
 * provisional proof, and *id is its entry number (NONE when not recorded). MEMO_FULL
 * when the budget is exhausted, or ASPEN_E_NOMEM. */
static int memo_visit(struct memo *m, const struct config *c, bool record, bool final,
                      uint32_t *proven, uint32_t *id)
{
    uint64_t hash = c->khash ^ mix64((uint64_t)c->state + UINT64_C(0x2545f4914f6cdd1d));
    uint32_t tag = (uint32_t)(hash >> 32);
    size_t klen = c->kend - c->kprefix;
    size_t ustart = 0, uend = c->uwords;
    while (ustart < uend && c->ubits[ustart] == 0)
        ustart++;
    while (uend > ustart && c->ubits[uend - 1] == 0)
        uend--;
    size_t ulen = uend - ustart;
    *id = NONE;

    uint32_t own = NONE; /* c's exact entry, if an earlier pass left one */
    if (m->cap) {
        for (size_t i = (size_t)hash & (m->cap - 1); m->slots[i].id1; i = (i + 1) & (m->cap - 1)) {
            if (m->slots[i].tag != tag)
                continue;
            const struct memo_entry *x = &m->entries[m->slots[i].id1 - 1];
            if (x->hash != hash || x->state != c->state || x->kprefix != c->kprefix ||
                x->klen != klen)
                continue;
            /* The pool is NULL until some entry stores a word. */
            const uint64_t *w = m->pool ? m->pool + x->off : NULL;
            if (!words_equal(w, c->kbits + c->kprefix, klen))
                continue;
            /* Subset: every stored unknown word lies within c's nonzero range. */
            bool subset = x->ulen == 0 || (x->ustart >= ustart && x->ustart + x->ulen <= uend);
            for (size_t k = 0; k < x->ulen && subset; k++)
                subset = (w[klen + k] & ~c->ubits[x->ustart + k]) == 0;
            if (!subset)
                continue;
            bool exact = x->ustart == ustart && x->ulen == ulen &&
                         (ulen == 0 || words_equal(w + klen, c->ubits + ustart, ulen));
            if (x->proven >= c->budget || (final && !exact)) {
                *proven = x->proven;
                return MEMO_SEEN;
            }
            if (exact)
                own = m->slots[i].id1 - 1;
        }
    }
    if (!record)
        return MEMO_NEW;
    if (own != NONE) {
        m->entries[own].proven = c->budget;
        *id = own;
        return MEMO_NEW;
    }
    if ((m->count + 1) * 4 > m->cap * 3) {
        int rc = memo_grow_index(m);
        if (rc != MEMO_NEW)
            return rc;
    }
    int rc = memo_grow_array(m, (void **)&m->entries, &m->entries_cap, sizeof(struct memo_entry),
                             m->count + 1, memo_bytes(m->cap, 0, m->pool_cap), UINT32_MAX - 1);
    if (rc != MEMO_NEW)
        return rc;
    rc = memo_grow_array(m, (void **)&m->pool, &m->pool_cap, sizeof(uint64_t),
                         m->pool_len + klen + ulen, memo_bytes(m->cap, m->entries_cap, 0),
                         UINT32_MAX);
    if (rc != MEMO_NEW)
        return rc;
    struct memo_entry *x = &m->entries[m->count];
    x->hash = hash;
    x->off = (uint32_t)m->pool_len;
    x->state = c->state;
    x->kprefix = (uint32_t)c->kprefix;
    x->ustart = (uint32_t)ustart;
    x->klen = (uint16_t)klen;
    x->ulen = (uint16_t)ulen;
    x->proven = c->budget;
    if (klen)
        memcpy(m->pool + m->pool_len, c->kbits + c->kprefix, klen * sizeof(uint64_t));
    if (ulen)
        memcpy(m->pool + m->pool_len + klen, c->ubits + ustart, ulen * sizeof(uint64_t));
    m->pool_len += klen + ulen;
    size_t i = (size_t)hash & (m->cap - 1);
    while (m->slots[i].id1)
        i = (i + 1) & (m->cap - 1);
    m->slots[i] = (struct memo_slot){(uint32_t)(m->count + 1), tag};
    *id = (uint32_t)m->count++;
    return MEMO_NEW;
}

/* ---- One key's history ---- */

#define ST_ABSENT 0u /* the key is absent */
#define ST_ANON   1u /* some value no operation can tell from another */
#define ST_FIRST  2u /* state ST_FIRST + i holds the value vals[i] */

_Static_assert(ST_FIRST + ASPEN_LINCHECK_MAX_OPS_PER_KEY < (1u << 30),
               "state ids fit the 30-bit fields of an unknown operation's class key");

/* One operation of the partition, numbered p in invocation order. */
struct wop {
    size_t src;        /* index in the caller's ops[] */
    uint64_t inv_t;    /* invocation time */
    uint64_t ret_t;    /* return time; LINCHECK_INF for unknown outcome */
    uint32_t a, b;     /* interned operands, see step() */
    uint32_t id;       /* bit number: among known ops, or among unknown ones */
    uint32_t call;     /* list entry of the call */
    uint32_t ret;      /* list entry of the return; NONE for unknown outcome */
    uint32_t cls_prev; /* unknown ops: the previous one with the same transition, or NONE */
    enum lincheck_kind kind;
    bool unknown, ok, existed_known, existed;
};

/* (value, time, op) triples for sorting values and their observations. */
struct vt {
    uint64_t v;
    uint64_t t;
    uint32_t p;
};

static int vt_cmp(const void *pa, const void *pb)
{
    const struct vt *a = pa, *b = pb;
    if (a->v != b->v)
        return a->v < b->v ? -1 : 1;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->p < b->p ? -1 : a->p > b->p;
}

/* The first index of value v in a[0..n) sorted by vt_cmp, or SIZE_MAX. */
static size_t vt_find(const struct vt *a, size_t n, uint64_t v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid].v < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && a[lo].v == v ? lo : SIZE_MAX;
}

struct event {
    uint64_t t;
    uint32_t p;
    uint32_t is_ret;
};

static int event_cmp(const void *pa, const void *pb)
{
    const struct event *a = pa, *b = pb;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    if (a->is_ret != b->is_ret)
        return a->is_ret ? 1 : -1; /* calls first: closed intervals */
    return a->p < b->p ? -1 : a->p > b->p;
}

/* One linearized operation, and the node of the search it led to. */
struct frame {
    uint32_t p;      /* the operation linearized */
    uint32_t state;  /* the register state before it */
    uint32_t writer; /* the operation that wrote that state's value (NONE: initial) */
    uint32_t entry;  /* the node's memo entry, NONE if not recorded */
    uint32_t proven; /* what the node's explored moves prove so far (see search_pass) */
};

/* Everything the search over one key needs; freed by part_release. */
struct part {
    const struct lincheck_op *ops; /* the caller's array */
    size_t m;                      /* operations */
    size_t known, unknown;         /* of which known / unknown outcome (after patching) */
    size_t patched;                /* unknown ones made known by an observation */
    struct wop *w;                 /* [m] */
    uint64_t *vals;                /* [m]: the named written values, ascending */
    size_t nvals;
    uint32_t *ent;  /* [entries]: p * 2 + is_ret; 0 and entries-1 are sentinels */
    uint32_t *next; /* [entries] */
    uint32_t *prev; /* [entries] */
    size_t entries;
    uint64_t *kbits, *ubits; /* linearized known / unknown operations */
    size_t kwords, uwords;
    size_t kfull;        /* kbits[0..kfull) are all ones: the compact form's prefix */
    size_t kend;         /* kbits[kend..) are all zero */
    struct frame *stack; /* [m] */
};

#define HEAD 0u

static void part_release(struct part *P)
{
    mem_free(P->w);
    mem_free(P->vals);
    mem_free(P->ent);
    mem_free(P->next);
    mem_free(P->prev);
    mem_free(P->kbits);
    mem_free(P->ubits);
    mem_free(P->stack);
    memset(P, 0, sizeof(*P));
}

static size_t val_find(const struct part *P, uint64_t v)
{
    size_t lo = 0, hi = P->nvals;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (P->vals[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < P->nvals && P->vals[lo] == v ? lo : SIZE_MAX;
}

/* The state a write of v produces. */
static uint32_t state_written(const struct part *P, uint64_t v)
{
    size_t i = val_find(P, v);
    return i == SIZE_MAX ? ST_ANON : (uint32_t)(ST_FIRST + i);
}

/* The state an observation of v (a GET's output, a CAS's expectation) requires; NONE for
 * a value nothing writes, which no state matches. */
static uint32_t state_observed(const struct part *P, uint64_t v)
{
    if (v == LINCHECK_ABSENT)
        return ST_ABSENT;
    size_t i = val_find(P, v);
    return i == SIZE_MAX ? NONE : (uint32_t)(ST_FIRST + i);
}

/* Collects values, patches observed unknown writes, interns states (see the file comment)
 * and links each unknown operation to the previous one with the same transition. tmp has
 * room for 3 * m entries. */
static void part_values(struct part *P, const struct lincheck_op *ops, const size_t *order,
                        struct vt *tmp)
{
    size_t m = P->m, nw = 0, ns = 0, nn = 0;
    struct vt *writers = tmp, *seen = tmp + m, *named = tmp + 2 * m;
    for (size_t p = 0; p < m; p++) {
        const struct lincheck_op *op = &ops[order[p]];
        struct wop *w = &P->w[p];
        uint32_t p32 = (uint32_t)p;
        if (op->kind == LINCHECK_PUT || (op->kind == LINCHECK_CAS && (w->ok || w->unknown)))
            writers[nw++] = (struct vt){op->value, 0, p32};
        if (op->kind == LINCHECK_GET && !w->unknown) {
            named[nn++] = (struct vt){op->value, 0, 0};
            if (op->value != LINCHECK_ABSENT)
                seen[ns++] = (struct vt){op->value, w->ret_t, p32};
        }
        if (op->kind == LINCHECK_CAS) {
            named[nn++] = (struct vt){op->expected, 0, 0};
            if (w->ok && !w->unknown && op->expected != LINCHECK_ABSENT)
                seen[ns++] = (struct vt){op->expected, w->ret_t, p32};
        }
    }
    qsort(writers, nw, sizeof(*writers), vt_cmp);
    qsort(seen, ns, sizeof(*seen), vt_cmp);
    qsort(named, nn, sizeof(*named), vt_cmp);

    /* Patching: the sole writer of an observed value took effect before the earliest
     * observer returned. (If that was before its invocation, the history is violated
     * anyway; returning at the invocation keeps the interval well formed.) */
    for (size_t i = 0; i < nw; i++) {
        struct wop *w = &P->w[writers[i].p];
        uint64_t v = writers[i].v;
        bool sole = (i == 0 || writers[i - 1].v != v) && (i + 1 == nw || writers[i + 1].v != v);
        size_t at = sole && w->unknown ? vt_find(seen, ns, v) : SIZE_MAX;
        if (at == SIZE_MAX)
            continue;
        w->unknown = false;
        w->ok = true;
        w->ret_t = seen[at].t > w->inv_t ? seen[at].t : w->inv_t;
        P->patched++;
    }

    /* Named written values get states of their own; the rest share ST_ANON. */
    for (size_t i = 0; i < nw; i++)
        if ((P->nvals == 0 || P->vals[P->nvals - 1] != writers[i].v) &&
            vt_find(named, nn, writers[i].v) != SIZE_MAX)
            P->vals[P->nvals++] = writers[i].v;

    size_t nc = 0;
    struct vt *cls = tmp; /* the writers are no longer needed */
    for (size_t p = 0; p < m; p++) {
        const struct lincheck_op *op = &ops[order[p]];
        struct wop *w = &P->w[p];
        switch (op->kind) {
        case LINCHECK_PUT:
            w->a = state_written(P, op->value);
            break;
        case LINCHECK_GET:
            w->a = state_observed(P, op->value);
            break;
        case LINCHECK_CAS:
            w->a = state_observed(P, op->expected);
            w->b = w->ok || w->unknown ? state_written(P, op->value) : NONE;
            break;
        case LINCHECK_DELETE:
            break;
        }
        w->id = (uint32_t)(w->unknown ? P->unknown++ : P->known++);
        w->cls_prev = NONE;
        if (w->unknown) {
            /* State ids stay below 2^30 (asserted at ST_FIRST); NONE masks to a value
             * no state has. */
            uint64_t key = (uint64_t)w->kind << 60 | (uint64_t)(w->a & 0x3fffffffu) << 30 |
                           (uint64_t)(w->b & 0x3fffffffu);
            cls[nc++] = (struct vt){key, 0, (uint32_t)p};
        }
    }
    qsort(cls, nc, sizeof(*cls), vt_cmp);
    for (size_t i = 1; i < nc; i++)
        if (cls[i].v == cls[i - 1].v)
            P->w[cls[i].p].cls_prev = cls[i - 1].p;
}

/* Builds the partition for ops order[0..m) (one key, invocation order). */
static int part_build(struct part *P, const struct lincheck_op *ops, const size_t *order, size_t m)
{
    memset(P, 0, sizeof(*P));
    P->ops = ops;
    P->m = m;
    P->w = mem_calloc(m, sizeof(*P->w));
    P->vals = mem_calloc(m, sizeof(*P->vals));
    P->stack = mem_calloc(m, sizeof(*P->stack));
    struct vt *tmp = mem_calloc(3 * m, sizeof(*tmp));
    if (!P->w || !P->vals || !P->stack || !tmp) {
        mem_free(tmp);
        return ASPEN_E_NOMEM;
    }
    for (size_t p = 0; p < m; p++) {
        const struct lincheck_op *op = &ops[order[p]];
        struct wop *w = &P->w[p];
        w->src = order[p];
        w->kind = op->kind;
        w->unknown = lincheck_is_unknown(op);
        w->inv_t = op->invoke_t;
        w->ret_t = w->unknown ? LINCHECK_INF : op->return_t;
        w->ok = op->ok;
        w->existed_known = op->existed_known;
        w->existed = op->existed;
        w->a = w->b = NONE;
    }
    part_values(P, ops, order, tmp);
    mem_free(tmp);

    /* The entry list: m calls and one return per known operation, between sentinels. */
    P->entries = m + P->known + 2;
    struct event *ev = mem_calloc(m + P->known, sizeof(*ev));
    P->ent = mem_calloc(P->entries, sizeof(*P->ent));
    P->next = mem_calloc(P->entries, sizeof(*P->next));
    P->prev = mem_calloc(P->entries, sizeof(*P->prev));
    P->kwords = (P->known + 63) / 64;
    P->uwords = (P->unknown + 63) / 64;
    P->kbits = mem_calloc(P->kwords ? P->kwords : 1, sizeof(uint64_t));
    P->ubits = mem_calloc(P->uwords ? P->uwords : 1, sizeof(uint64_t));
    if (!ev || !P->ent || !P->next || !P->prev || !P->kbits || !P->ubits) {
        mem_free(ev);
        return ASPEN_E_NOMEM;
    }
    size_t n_ev = 0;
    for (size_t p = 0; p < m; p++) {
        const struct wop *w = &P->w[p];
        ev[n_ev++] = (struct event){w->inv_t, (uint32_t)p, 0};
        if (!w->unknown)
            ev[n_ev++] = (struct event){w->ret_t, (uint32_t)p, 1};
    }
    qsort(ev, n_ev, sizeof(*ev), event_cmp);
    for (size_t p = 0; p < m; p++)
        P->w[p].ret = NONE;
    for (size_t i = 0; i < n_ev; i++) {
        uint32_t e = (uint32_t)(i + 1);
        P->ent[e] = ev[i].p * 2 + ev[i].is_ret;
        if (ev[i].is_ret)
            P->w[ev[i].p].ret = e;
        else
            P->w[ev[i].p].call = e;
    }
    mem_free(ev);
    for (size_t e = 0; e < P->entries; e++) {
        P->next[e] = (uint32_t)(e + 1 < P->entries ? e + 1 : e);
        P->prev[e] = (uint32_t)(e ? e - 1 : 0);
    }
    return 0;
}

/* The register model. Returns whether w may take effect in state s, and the next state. */
static bool step(const struct wop *w, uint32_t s, uint32_t *ns)
{
    *ns = s;
    switch (w->kind) {
    case LINCHECK_PUT:
        *ns = w->a;
        return true;
    case LINCHECK_GET:
        return s == w->a;
    case LINCHECK_CAS:
        if (w->unknown || w->ok) {
            /* An unknown CAS accepts either outcome: the state decides it. */
            if (s == w->a)
                *ns = w->b;
            return w->unknown || s == w->a;
        }
        return s != w->a;
    case LINCHECK_DELETE:
        *ns = ST_ABSENT;
        if (w->existed_known && !w->unknown)
            return (s != ST_ABSENT) == w->existed;
        return true;
    }
    ASPEN_UNREACHABLE();
}

static bool is_placed(const struct part *P, const struct wop *w)
{
    const uint64_t *bits = w->unknown ? P->ubits : P->kbits;
    return (bits[w->id / 64] >> (w->id % 64)) & 1;
}

/* Whether placing unknown operation u (state s -> ns) would enable a pending candidate:
 * a known one illegal from s but legal from ns, or an unknown CAS that succeeds from ns
 * but not from s (normal form, see the file comment). */
static bool enables_some(const struct part *P, const struct wop *u, uint32_t s, uint32_t ns)
{
    for (uint32_t e = P->next[HEAD]; e != P->entries - 1 && !(P->ent[e] & 1); e = P->next[e]) {
        const struct wop *o = &P->w[P->ent[e] / 2];
        uint32_t dummy;
        if (o == u)
            continue;
        if (!o->unknown && step(o, ns, &dummy) && !step(o, s, &dummy))
            return true;
        if (o->unknown && o->kind == LINCHECK_CAS && o->a == ns && o->a != s && o->b != ns)
            return true;
    }
    return false;
}

/* Whether a pending unknown CAS would take state s to ns, as an unknown PUT of ns would.
 * A CAS(a -> b) can do nothing a PUT(b) cannot, so consuming the CAS and keeping the PUT
 * available is at least as good: the PUT need not be tried. */
static bool weaker_pending(const struct part *P, uint32_t s, uint32_t ns)
{
    for (uint32_t e = P->next[HEAD]; e != P->entries - 1 && !(P->ent[e] & 1); e = P->next[e]) {
        const struct wop *o = &P->w[P->ent[e] / 2];
        if (o->unknown && o->kind == LINCHECK_CAS && o->a == s && o->b == ns)
            return true;
    }
    return false;
}

/* Whether w may be placed next in state s. pre is NONE, or the state before the unknown
 * operation placed last (then only operations it enables may follow). */
static bool allowed(const struct part *P, const struct wop *w, uint32_t s, uint32_t pre,
                    uint32_t *ns)
{
    uint32_t dummy;
    if (!step(w, s, ns))
        return false;
    if (!w->unknown)
        return pre == NONE || !step(w, pre, &dummy);
    if (*ns == s)
        return false; /* a no-op at this point: leaving it out is the same */
    if (w->cls_prev != NONE && !is_placed(P, &P->w[w->cls_prev]))
        return false; /* an earlier interchangeable operation is pending: try that one */
    if (pre != NONE && (w->kind != LINCHECK_CAS || w->a == pre))
        return false; /* after an unknown op, only an unknown CAS it lets succeed */
    if (w->kind == LINCHECK_PUT && weaker_pending(P, s, *ns))
        return false;
    return enables_some(P, w, s, *ns);
}

static void unlink_entry(struct part *P, uint32_t e)
{
    P->next[P->prev[e]] = P->next[e];
    P->prev[P->next[e]] = P->prev[e];
}

static void relink_entry(struct part *P, uint32_t e)
{
    P->next[P->prev[e]] = e;
    P->prev[P->next[e]] = e;
}

/* Lift removes the call and return of a linearized operation; unlift puts them back in
 * the reverse order, which restores the list exactly (dancing links). */
static void lift(struct part *P, const struct wop *w)
{
    unlink_entry(P, w->call);
    if (w->ret != NONE)
        unlink_entry(P, w->ret);
}

static void unlift(struct part *P, const struct wop *w)
{
    if (w->ret != NONE)
        relink_entry(P, w->ret);
    relink_entry(P, w->call);
}

/* Flips w's bit. For known operations it also keeps the hash and the bounds of the
 * compact form current; both loops are amortized O(1) while the search moves forward. */
static void toggle(struct part *P, const struct wop *w, uint64_t *khash)
{
    uint64_t bit = UINT64_C(1) << (w->id % 64);
    size_t wi = w->id / 64;
    if (w->unknown) {
        P->ubits[wi] ^= bit;
        return;
    }
    P->kbits[wi] ^= bit;
    *khash ^= zobrist(w->id);
    if (P->kbits[wi] & bit) {
        if (wi + 1 > P->kend)
            P->kend = wi + 1;
        while (P->kfull < P->kwords && P->kbits[P->kfull] == UINT64_MAX)
            P->kfull++;
    } else {
        if (wi < P->kfull)
            P->kfull = wi;
        while (P->kend > 0 && P->kbits[P->kend - 1] == 0)
            P->kend--;
    }
}

struct outcome {
    enum lincheck_verdict verdict;
    size_t placed;       /* most known operations linearized at once */
    uint32_t stuck;      /* p of the operation met at its return in the deepest dead end */
    uint32_t last;       /* p of the operation linearized just before that, or NONE */
    uint64_t value;      /* the register's concrete value there (state may be ST_ANON) */
    size_t stuck_placed; /* known operations linearized at that dead end */
    bool have_stuck;
    bool capped; /* the pass stopped at its step or memory budget (verdict UNKNOWN) */
};

/* The concrete value of the register after writer p (NONE: the initial absent state). */
static uint64_t written_value(const struct part *P, uint32_t p)
{
    if (p == NONE || P->w[p].kind == LINCHECK_DELETE)
        return LINCHECK_ABSENT;
    return P->ops[P->w[p].src].value;
}

/* proven + cost, saturating at PROVEN_ALL. */
static uint32_t proven_add(uint32_t proven, uint32_t cost)
{
    return proven >= PROVEN_ALL - cost ? PROVEN_ALL : proven + cost;
}

/* One pass of the search. A deepening pass places at most limit unknown-outcome
 * operations on any path; the final pass places any number.
 *
 * In a deepening pass each node proves a bound: no completion from it places at most
 * `proven` more unknown operations. A node's bound is the minimum over its moves of the
 * child's bound plus the move's cost (1 for an unknown operation, 0 for a known one); a
 * move the limit refuses proves nothing beyond it (0), a pruned child counts its
 * dominator's bound, and a node with no moves proves PROVEN_ALL. Recorded nodes keep
 * their bound in the memo table, where later passes reuse it; the root's bound is
 * returned in *root_proven. The final pass instead prunes by any recorded strict subset
 * (see search()). 0 with *out filled, or ASPEN_E_NOMEM. */
static int search_pass(struct part *P, struct memo *memo, uint32_t limit, bool final,
                       uint64_t max_steps, struct outcome *out, uint32_t *root_proven)
{
    memset(out, 0, sizeof(*out));
    out->verdict = LINCHECK_OK;
    out->last = NONE;
    const uint32_t tail = (uint32_t)(P->entries - 1);
    size_t depth = 0, placed = 0, remaining = P->known;
    uint32_t unknowns = 0; /* unknown operations on the stack */
    uint64_t khash = 0;
    uint32_t state = ST_ABSENT;
    uint32_t pre = NONE;    /* see allowed() */
    uint32_t writer = NONE; /* the operation that wrote the current value, for explanations */
    uint32_t root_acc = PROVEN_ALL;
    int phase = 0; /* 0: try known-outcome calls; 1: then unknown-outcome ones */

    struct config c = {.kbits = P->kbits, .ubits = P->ubits, .uwords = P->uwords};
    c.budget = final ? PROVEN_ALL : limit;
    uint32_t proven, root_entry;
    int rc = memo_visit(memo, &c, true, final, &proven, &root_entry);
    if (rc < 0)
        return rc;
    if (rc == MEMO_FULL) {
        out->verdict = LINCHECK_UNKNOWN;
        out->capped = true;
        return 0;
    }
    ASPEN_ASSERT(rc == MEMO_NEW); /* each pass asks the root for more than it proved */

    uint32_t e = P->next[HEAD];
    for (uint64_t steps = 1; remaining > 0; steps++) {
        if (steps == max_steps) {
            out->verdict = LINCHECK_UNKNOWN;
            out->capped = true;
            break;
        }
        ASPEN_ASSERT(e != tail); /* a known operation's return is still in the list */
        uint32_t p = P->ent[e] / 2;
        const struct wop *w = &P->w[p];
        uint32_t *acc = depth ? &P->stack[depth - 1].proven : &root_acc;
        if (P->ent[e] & 1) {
            if (phase == 0) {
                phase = 1;
                e = P->next[HEAD];
                continue;
            }
            /* w returned before it could be linearized: this branch is dead. */
            if (!out->have_stuck || placed > out->stuck_placed) {
                out->have_stuck = true;
                out->stuck_placed = placed;
                out->stuck = p;
                out->last = depth ? P->stack[depth - 1].p : NONE;
                out->value = written_value(P, writer);
            }
            if (depth == 0) {
                if (!final)
                    memo->entries[root_entry].proven = root_acc;
                *root_proven = root_acc;
                out->verdict = LINCHECK_VIOLATION;
                break;
            }
            struct frame f = P->stack[--depth];
            const struct wop *back = &P->w[f.p];
            /* In the final pass an entry keeps PROVEN_ALL, set when it was visited: it
             * marks the entry as explored by this pass (see memo_visit). */
            if (f.entry != NONE && !final)
                memo->entries[f.entry].proven = f.proven;
            acc = depth ? &P->stack[depth - 1].proven : &root_acc;
            uint32_t got = proven_add(f.proven, back->unknown);
            if (got < *acc)
                *acc = got;
            toggle(P, back, &khash);
            unlift(P, back);
            state = f.state;
            writer = f.writer;
            if (back->unknown) {
                unknowns--;
            } else {
                remaining++;
                placed--;
            }
            pre = depth && P->w[P->stack[depth - 1].p].unknown ? P->stack[depth - 1].state : NONE;
            phase = back->unknown ? 1 : 0;
            e = P->next[back->call];
            continue;
        }
        uint32_t ns;
        if (w->unknown != (phase == 1) || !allowed(P, w, state, pre, &ns)) {
            e = P->next[e];
            continue;
        }
        if (w->unknown && unknowns == limit && !final) {
            *acc = 0; /* refused: this pass proves nothing about such completions */
            e = P->next[e];
            continue;
        }
        toggle(P, w, &khash);
        c.kprefix = P->kfull;
        c.kend = P->kend;
        c.khash = khash;
        c.state = ns;
        c.budget = final ? PROVEN_ALL : limit - unknowns - w->unknown;
        /* Right after an unknown operation the search is restricted (see allowed()), so
         * that configuration must not stand for unrestricted visits: check it against the
         * table but do not record it. It is reached from its recorded parent (rarely from
         * two), so it is still explored a bounded number of times. */
        uint32_t id;
        rc = memo_visit(memo, &c, !w->unknown, final, &proven, &id);
        if (rc == MEMO_NEW) {
            P->stack[depth++] = (struct frame){p, state, writer, id, PROVEN_ALL};
            pre = w->unknown ? state : NONE;
            if (w->kind == LINCHECK_PUT || w->kind == LINCHECK_DELETE ||
                (w->kind == LINCHECK_CAS && state == w->a))
                writer = p;
            state = ns;
            lift(P, w);
            if (w->unknown) {
                unknowns++;
            } else {
                remaining--;
                if (++placed > out->placed)
                    out->placed = placed;
            }
            phase = 0;
            e = P->next[HEAD];
            continue;
        }
        toggle(P, w, &khash);
        if (rc == MEMO_FULL) {
            out->verdict = LINCHECK_UNKNOWN;
            out->capped = true;
            break;
        }
        if (rc < 0)
            return rc;
        uint32_t got = proven_add(proven, w->unknown);
        if (got < *acc)
            *acc = got;
        e = P->next[e];
    }
    if (out->verdict == LINCHECK_OK)
        out->placed = P->known;
    /* A pass that stopped early (success, or a budget) leaves operations placed; the next
     * pass must start from the empty configuration. */
    while (depth > 0) {
        const struct wop *back = &P->w[P->stack[--depth].p];
        toggle(P, back, &khash);
        unlift(P, back);
    }
    return 0;
}

/* Keeps in *deepest the outcome whose dead end placed the most known operations, and
 * gives *out that explanation: later passes skip what earlier ones proved, so their own
 * dead ends may be shallower. */
static void keep_deepest(struct outcome *out, struct outcome *deepest)
{
    if (out->have_stuck && (!deepest->have_stuck || out->stuck_placed > deepest->stuck_placed))
        *deepest = *out;
    if (out->verdict != LINCHECK_VIOLATION || !deepest->have_stuck)
        return;
    out->stuck = deepest->stuck;
    out->last = deepest->last;
    out->value = deepest->value;
    out->stuck_placed = deepest->stuck_placed;
    if (deepest->placed > out->placed)
        out->placed = deepest->placed;
}

/* Runs the search, in passes.
 *
 * First one greedy pass with the final pass's rules (below) from an empty table, cut
 * off after `greedy_per_op` steps per operation. It is a complete
 * search on its own, so whatever it concludes stands; and depth first, trying known
 * operations before unknown ones, it usually walks straight to a linearization when
 * there is one, including one that needs unknown writes late in the history. If it is cut
 * off, the table is cleared (its entries record no proofs) and the search deepens.
 *
 * Pass 0 places no unknown-outcome operation. If it fails, pass L may place L of them,
 * and each records its configurations with the bound it proved (see search_pass), so the
 * next one re-explores only what was cut short. The point is order: a configuration
 * reached with fewer unknown operations is recorded before the same one reached with
 * more, so the dominance rule prunes the latter. A single unlimited pass instead meets,
 * deep in the history, many configurations first through paths that used unknown
 * operations as needless detours, and explores each of them before the cheaper one
 * dominating it: proving a violation can then take millions of entries instead of
 * thousands.
 *
 * Deepening stops once a pass records nothing new (or after `deepening` passes), and one
 * final unlimited pass settles the verdict. It re-explores entries it meets exactly, and
 * prunes any configuration for which the table holds the same known set and state with
 * a strictly smaller unknown set, whatever that entry proved. That is sound: if the
 * pruned configuration had a completion, the entry (recorded along some path from the
 * root that placed fewer unknown operations) would have the same completion, making a
 * success with strictly fewer unknown operations in total; so a success using the fewest
 * can never be pruned, and the pass finds one if any exists. 0 with *out filled, or
 * ASPEN_E_NOMEM. */
static int search(struct part *P, size_t budget_bytes, uint32_t greedy_per_op, uint32_t deepening,
                  struct outcome *out)
{
    struct memo memo = {.budget_bytes = budget_bytes};
    struct outcome deepest = {.have_stuck = false};
    uint32_t limit = 0, proven = PROVEN_ALL;
    /* Without unknown operations the greedy pass is the whole search: no step cap. */
    uint64_t greedy = P->unknown ? ((uint64_t)P->m + 1) * greedy_per_op : 0;
    int rc = search_pass(P, &memo, 0, true, greedy, out, &proven);
    if (!rc)
        keep_deepest(out, &deepest);
    if (rc || !out->capped || P->unknown == 0)
        goto release;
    memo_release(&memo);
    memo.budget_bytes = budget_bytes;
    for (uint32_t pass = 0;; pass++) {
        size_t recorded = memo.count;
        rc = search_pass(P, &memo, limit, false, 0, out, &proven);
        if (rc)
            break;
        keep_deepest(out, &deepest);
        /* No completion can place more unknown operations than there are, so a bound
         * that large already rules out every completion. */
        if (out->verdict != LINCHECK_VIOLATION || proven >= P->unknown)
            break;
        if (memo.count == recorded || pass + 1 >= deepening) {
            rc = search_pass(P, &memo, 0, true, 0, out, &proven);
            if (!rc)
                keep_deepest(out, &deepest);
            break;
        }
        ASPEN_ASSERT(proven >= limit);
        limit = proven + 1;
    }
release:
    memo_release(&memo);
    return rc;
}

static void explain_violation(struct lincheck_result *res, const struct part *P,
                              const struct outcome *o, uint64_t key)
{
    const struct wop *stuck = &P->w[o->stuck];
    res->op = stuck->src;
    res->t_lo = stuck->inv_t;
    res->t_hi = stuck->ret_t;
    char v[24];
    lincheck_explain(res,
                     "key %" PRIu64 ": not linearizable: at most %zu of %zu operations "
                     "(%zu of them of unknown outcome but observed, +%zu unknown) linearize; ",
                     key, o->placed, P->known, P->patched, P->unknown);
    lincheck_explain_op(res, P->ops, stuck->src);
    lincheck_explain(res, " has no linearization point with the register at %s",
                     lincheck_value_str(o->value, v, sizeof(v)));
    if (o->last != NONE) {
        const struct wop *last = &P->w[o->last];
        res->other_op = last->src;
        if (last->inv_t < res->t_lo)
            res->t_lo = last->inv_t;
        lincheck_explain(res, " after ");
        lincheck_explain_op(res, P->ops, last->src);
    } else {
        lincheck_explain(res, " (initial)");
    }
}

int lincheck_check(const struct lincheck_op *ops, size_t n, const struct lincheck_opts *opts,
                   struct lincheck_result *res)
{
    lincheck_result_reset(res);
    size_t budget = opts && opts->cache_max_bytes ? opts->cache_max_bytes
                                                  : (size_t)ASPEN_LINCHECK_CACHE_MAX_BYTES;
    uint32_t greedy = opts && opts->greedy_steps_per_op ? opts->greedy_steps_per_op
                                                        : ASPEN_LINCHECK_GREEDY_STEPS_PER_OP;
    uint32_t deepening =
        opts && opts->deepening_passes ? opts->deepening_passes : ASPEN_LINCHECK_DEEPENING_PASSES;
    int rc = lincheck_validate(ops, n);
    if (rc)
        return rc;
    size_t *order, count;
    rc = lincheck_partition(ops, n, &order, &count);
    if (rc)
        return rc;

    struct lincheck_result gaveup;
    lincheck_result_reset(&gaveup);
    for (size_t lo = 0, hi; lo < count; lo = hi) {
        uint64_t key = ops[order[lo]].key;
        for (hi = lo + 1; hi < count && ops[order[hi]].key == key; hi++)
            ;
        res->keys++;
        struct part P;
        struct outcome o;
        rc = part_build(&P, ops, order + lo, hi - lo);
        if (!rc)
            rc = search(&P, budget, greedy, deepening, &o);
        if (rc) {
            part_release(&P);
            break;
        }
        if (o.verdict == LINCHECK_VIOLATION) {
            res->verdict = LINCHECK_VIOLATION;
            res->key = key;
            res->placed_ops = o.placed;
            res->key_ops = P.known;
            explain_violation(res, &P, &o, key);
            part_release(&P);
            break;
        }
        if (o.verdict == LINCHECK_UNKNOWN && res->keys_gaveup++ == 0) {
            gaveup.key = key;
            gaveup.placed_ops = o.placed;
            gaveup.key_ops = P.known;
            lincheck_explain(&gaveup,
                             "key %" PRIu64 ": search gave up at the memo budget (%zu bytes) "
                             "with at most %zu of %zu operations linearized",
                             key, budget, o.placed, P.known);
        }
        part_release(&P);
    }
    mem_free(order);
    if (rc) {
        lincheck_result_reset(res);
        return rc;
    }
    if (res->verdict == LINCHECK_OK && res->keys_gaveup) {
        res->verdict = LINCHECK_UNKNOWN;
        res->key = gaveup.key;
        res->placed_ops = gaveup.placed_ops;
        res->key_ops = gaveup.key_ops;
        memcpy(res->explain, gaveup.explain, sizeof(res->explain));
    }
    return 0;
}

/* ---- Timelines ---- */

int lincheck_timeline(const struct lincheck_op *ops, size_t n, uint64_t key, uint64_t t_lo,
                      uint64_t t_hi, struct buf *out)
{
    if (n > 0 && !ops)
        return ASPEN_E_INVALID;
    /* Select and sort by invocation; more than the line cap are counted, not shown. */
    size_t sel = 0, total = 0;
    struct part_ref *refs = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct lincheck_op *op = &ops[i];
        uint64_t ret = lincheck_is_unknown(op) ? LINCHECK_INF : op->return_t;
        if (op->key == key && op->invoke_t <= t_hi && ret >= t_lo)
            total++;
    }
    if (total) {
        refs = mem_calloc(total, sizeof(*refs));
        if (!refs)
            return ASPEN_E_NOMEM;
    }
    uint64_t lo = LINCHECK_INF, hi = 0;
    for (size_t i = 0; i < n; i++) {
        const struct lincheck_op *op = &ops[i];
        bool unknown = lincheck_is_unknown(op);
        uint64_t ret = unknown ? LINCHECK_INF : op->return_t;
        if (op->key != key || op->invoke_t > t_hi || ret < t_lo)
            continue;
        refs[sel++] = (struct part_ref){key, op->invoke_t, i};
    }
    if (sel)
        qsort(refs, sel, sizeof(*refs), part_ref_cmp);
    size_t shown =
        sel < ASPEN_LINCHECK_TIMELINE_MAX_LINES ? sel : ASPEN_LINCHECK_TIMELINE_MAX_LINES;
    for (size_t j = 0; j < shown; j++) {
        const struct lincheck_op *op = &ops[refs[j].i];
        uint64_t a = op->invoke_t > t_lo ? op->invoke_t : t_lo;
        uint64_t b = lincheck_is_unknown(op) ? a : op->return_t < t_hi ? op->return_t : t_hi;
        lo = a < lo ? a : lo;
        hi = b > hi ? b : hi;
        hi = a > hi ? a : hi;
    }
    int rc = buf_printf(out, "key %" PRIu64 ": %zu operation(s)", key, sel);
    if (!rc && shown)
        rc = buf_printf(out, ", time %" PRIu64 "..%" PRIu64 "\n", lo, hi);
    else if (!rc)
        rc = buf_printf(out, "\n");
    const int cols = ASPEN_LINCHECK_TIMELINE_COLUMNS;
    double span = hi > lo ? (double)(hi - lo) : 1.0;
    for (size_t j = 0; j < shown && !rc; j++) {
        const struct lincheck_op *op = &ops[refs[j].i];
        bool unknown = lincheck_is_unknown(op);
        char desc[160], bar[ASPEN_LINCHECK_TIMELINE_COLUMNS + 1];
        lincheck_describe_op(op, desc, sizeof(desc));
        uint64_t a = op->invoke_t > lo ? op->invoke_t : lo;
        uint64_t b = unknown ? hi : op->return_t < hi ? op->return_t : hi;
        int ca = (int)((double)(a - lo) / span * (cols - 1));
        int cb = (int)((double)(b - lo) / span * (cols - 1));
        for (int c = 0; c < cols; c++)
            bar[c] = c < ca || c > cb ? ' ' : '=';
        bar[ca] = op->invoke_t < lo ? '<' : '[';
        bar[cb] = unknown || op->return_t > hi ? '>' : ']';
        if (ca == cb && !unknown && op->invoke_t >= lo && op->return_t <= hi)
            bar[ca] = '|';
        bar[cols] = '\0';
        rc = buf_printf(out, "  |%s| #%zu %s\n", bar, refs[j].i, desc);
    }
    if (!rc && sel > shown)
        rc = buf_printf(out, "  ... %zu more\n", sel - shown);
    mem_free(refs);
    return rc;
}
