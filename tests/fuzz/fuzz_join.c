/*
 * Fuzz target for the join bodies (node/join.h): the signed join request a leader parses
 * from anyone who can reach its client port (POST /v1/cluster/join), and the join answer a
 * new node parses from whatever its ticket's URL answered over plain HTTP.
 *
 * Every input is decoded as both. Neither decoder may crash, read out of bounds or leak,
 * and each may only fail with the codes join.h documents, with a reason. Then:
 *
 *   request: what decodes has its non-empty printable fields and its id derived from its
 *   key, and round-trips: encoding it and decoding that gives the same request (same
 *   credential, key, name, addresses, flags and signature), which verifies again. A body
 *   refused only for its signature (PERMISSION: every field was parsed and checked first)
 *   is re-signed with a key of this target's and must then round-trip the same way, so
 *   the fuzzer's field values reach the accepted path although it cannot forge Ed25519.
 *
 *   answer: what decodes has a non-zero cluster id, 1..ASPEN_MAX_MEMBER_RECORDS members
 *   with non-empty addresses and names and ids derived from their keys; it re-encodes,
 *   that decodes to an equal answer, and encoding that again gives the same bytes (the
 *   decoder is lenient about spelling — line endings, hex case, unknown keys — so the
 *   first re-encoding is the canonical form rather than the input).
 */
#include "base/assert.h"
#include "base/buf.h"
#include "base/hlc.h"
#include "base/mem.h"
#include "node/join.h"
#include <aspen/error.h>

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bodies are small; an encoded answer of ASPEN_MAX_MEMBER_RECORDS members fits easily. */
#define FUZZ_MAX_BODY (1u << 20)

static uint8_t test_pk[32], test_sk[64];

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

static bool members_equal(const struct member_info *x, const struct member_info *y)
{
    return x->id == y->id && memcmp(x->pk, y->pk, sizeof(x->pk)) == 0 &&
           strcmp(x->name, y->name) == 0 && strcmp(x->peer_addr, y->peer_addr) == 0 &&
           strcmp(x->client_urls, y->client_urls) == 0 && x->flags == y->flags;
}

/* r is a request the decoder accepted (or would, signature aside): encode, decode, same. */
static void request_round_trip(const struct join_request *r)
{
    static struct join_request again; /* 4 KiB of credential: off the stack */
    struct buf b;
    buf_init(&b, FUZZ_MAX_BODY);
    ASPEN_ASSERT(join_request_encode(r, &b) == 0);
    char why[160] = "";
    int rc = join_request_decode(buf_slice(&b), &again, why, sizeof(why));
    ASPEN_ASSERT(rc == 0);
    ASPEN_ASSERT(strcmp(again.credential, r->credential) == 0);
    ASPEN_ASSERT(members_equal(&again.member, &r->member));
    ASPEN_ASSERT(memcmp(again.signature, r->signature, sizeof(r->signature)) == 0);
    buf_release(&b);
}

static void check_request(struct slice body)
{
    static struct join_request r;
    char why[160] = "";
    int rc = join_request_decode(body, &r, why, sizeof(why));
    if (rc != 0) {
        ASPEN_ASSERT(rc == ASPEN_E_MALFORMED || rc == ASPEN_E_INVALID || rc == ASPEN_E_TOO_LARGE ||
                     rc == ASPEN_E_PERMISSION);
        ASPEN_ASSERT(why[0] != '\0');
        if (rc != ASPEN_E_PERMISSION)
            return;
        /* Relies on join.c verifying the signature last, over fields already checked. */
        memcpy(r.member.pk, test_pk, sizeof(test_pk));
        r.member.id = hlc_node_id_from_key(test_pk, sizeof(test_pk));
        join_request_sign(&r, test_sk);
    }
    const struct member_info *m = &r.member;
    ASPEN_ASSERT(r.credential[0] && m->name[0] && m->peer_addr[0]);
    ASPEN_ASSERT(printable(m->name) && printable(m->peer_addr) && printable(m->client_urls));
    ASPEN_ASSERT(m->id == hlc_node_id_from_key(m->pk, sizeof(m->pk)));
    ASPEN_ASSERT((m->flags & ~KV_MEMBER_F_MANUAL_PROMOTE) == 0);
    request_round_trip(&r);
}

static void check_answer(struct slice body)
{
    struct join_result r, again;
    char why[160] = "";
    int rc = join_response_decode(body, &r, why, sizeof(why));
    if (rc != 0) {
        ASPEN_ASSERT(rc == ASPEN_E_MALFORMED || rc == ASPEN_E_TOO_LARGE || rc == ASPEN_E_NOMEM);
        ASPEN_ASSERT(why[0] != '\0');
        ASPEN_ASSERT(r.members == NULL && r.n == 0); /* released on failure */
        return;
    }
    ASPEN_ASSERT(r.cluster_id != 0);
    ASPEN_ASSERT(r.n >= 1 && r.n <= ASPEN_MAX_MEMBER_RECORDS);
    for (uint32_t i = 0; i < r.n; i++) {
        const struct member_info *m = &r.members[i];
        ASPEN_ASSERT(m->id == hlc_node_id_from_key(m->pk, sizeof(m->pk)));
        ASPEN_ASSERT(m->peer_addr[0] && m->name[0]);
        ASPEN_ASSERT(m->flags == 0); /* the answer does not carry flags */
    }
    struct buf b1, b2;
    buf_init(&b1, FUZZ_MAX_BODY);
    buf_init(&b2, FUZZ_MAX_BODY);
    ASPEN_ASSERT(join_response_encode(r.cluster_id, r.members, r.n, &b1) == 0);
    ASPEN_ASSERT(join_response_decode(buf_slice(&b1), &again, why, sizeof(why)) == 0);
    ASPEN_ASSERT(again.cluster_id == r.cluster_id && again.n == r.n);
    for (uint32_t i = 0; i < r.n; i++)
        ASPEN_ASSERT(members_equal(&again.members[i], &r.members[i]));
    ASPEN_ASSERT(join_response_encode(again.cluster_id, again.members, again.n, &b2) == 0);
    ASPEN_ASSERT(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
    buf_release(&b1);
    buf_release(&b2);
    join_result_release(&again);
    join_result_release(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        ASPEN_ASSERT(sodium_init() >= 0);
        uint8_t seed[32];
        memset(seed, 0x5a, sizeof(seed));
        crypto_sign_seed_keypair(test_pk, test_sk, seed);
        ready = true;
    }
    struct slice body = slice_make(data, size);
    check_request(body);
    check_answer(body);
    return 0;
}
