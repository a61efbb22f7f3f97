/*
 * Tests of the node's pure wire pieces: cluster tickets (node/ticket.h), the join request
 * and answer bodies with the joiner's signature (node/join.h), and the member helpers
 * (node/member.h). The running node uses them end to end in tests/integration; here each
 * rule is checked on its own, including every way a damaged input must be refused.
 *
 * With ASPEN_TICKET_CORPUS_DIR / ASPEN_JOIN_CORPUS_DIR set, test_fuzz_seeds writes the seed
 * corpora of fuzz_ticket and fuzz_join (tests/fuzz/corpus/ticket, .../join) there: bodies
 * made by the encoders under test, plus a few damaged ones.
 */
#include "base/buf.h"
#include "base/crc32c.h"
#include "base/hlc.h"
#include "base/slice.h"
#include "node/join.h"
#include "node/member.h"
#include "node/ticket.h"
#include "test.h"

#include <aspen/error.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void make_key(uint8_t seed_byte, uint8_t pk[32], uint8_t sk[64])
{
    uint8_t seed[32];
    memset(seed, seed_byte, sizeof(seed));
    crypto_sign_seed_keypair(pk, sk, seed);
}

static struct member_info member(uint8_t seed_byte, const char *name, const char *addr,
                                 const char *urls)
{
    struct member_info m = {0};
    uint8_t sk[64];
    make_key(seed_byte, m.pk, sk);
    m.id = hlc_node_id_from_key(m.pk, 32);
    snprintf(m.name, sizeof(m.name), "%s", name);
    snprintf(m.peer_addr, sizeof(m.peer_addr), "%s", addr);
    snprintf(m.client_urls, sizeof(m.client_urls), "%s", urls);
    return m;
}

static void test_ticket_round_trip(void)
{
    struct ticket t = {.cluster_id = 0x1122334455667788u, .n = 3};
    t.members[0] = member(1, "", "127.0.0.1:12380", "http://127.0.0.1:2379");
    t.members[1] = member(2, "", "[::1]:22380", "http://[::1]:22379,http://10.0.0.2:2379");
    t.members[2] = member(3, "", "10.0.0.3:2380", "");
    struct buf b;
    buf_init(&b, 1 << 16);
    CHECK_OK(ticket_encode(&t, &b));
    CHECK(b.len > strlen(TICKET_PREFIX) && memcmp(b.data, TICKET_PREFIX, 15) == 0);
    for (size_t i = 0; i < b.len; i++) /* base64url: safe unquoted in shells and YAML */
        CHECK(b.data[i] == '.' || b.data[i] == '-' || b.data[i] == '_' ||
              (b.data[i] >= '0' && b.data[i] <= '9') || (b.data[i] >= 'a' && b.data[i] <= 'z') ||
              (b.data[i] >= 'A' && b.data[i] <= 'Z'));
    struct ticket got;
    char why[160];
    /* Surrounding whitespace (a pasted line) is accepted. */
    CHECK_OK(buf_append(&b, " \n", 2));
    CHECK_OK(ticket_decode((const char *)b.data, b.len, &got, why, sizeof(why)));
    CHECK_EQ_U64(got.cluster_id, t.cluster_id);
    CHECK_EQ(got.n, 3u);
    for (uint32_t i = 0; i < 3; i++) {
        CHECK_MEM_EQ(got.members[i].pk, t.members[i].pk, 32);
        CHECK_EQ_U64(got.members[i].id, t.members[i].id);
        CHECK(strcmp(got.members[i].peer_addr, t.members[i].peer_addr) == 0);
        CHECK(strcmp(got.members[i].client_urls, t.members[i].client_urls) == 0);
    }
    buf_release(&b);
}

static void test_ticket_damage_refused(void)
{
    struct ticket t = {.cluster_id = 7, .n = 1};
    t.members[0] = member(1, "", "127.0.0.1:12380", "http://127.0.0.1:2379");
    struct buf b;
    buf_init(&b, 1 << 16);
    CHECK_OK(ticket_encode(&t, &b));
    struct ticket got;
    char why[160];
    char text[4096];
    CHECK(b.len < sizeof(text));
    /* Every single-character change is refused (checksum, base64 or prefix). */
    size_t refused = 0, tried = 0;
    for (size_t i = 0; i < b.len; i++) {
        memcpy(text, b.data, b.len);
        text[i] = text[i] == 'A' ? 'B' : 'A';
        tried++;
        int rc = ticket_decode(text, b.len, &got, why, sizeof(why));
        refused += rc == ASPEN_E_CORRUPT || rc == ASPEN_E_MALFORMED;
    }
    CHECK_EQ(refused, tried);
    /* Truncation at any point is refused. */
    for (size_t n = 0; n < b.len; n++)
        CHECK(ticket_decode((const char *)b.data, n, &got, why, sizeof(why)) != 0);
    CHECK_ERR(ticket_decode("hello", 5, &got, why, sizeof(why)), ASPEN_E_MALFORMED);
    CHECK(strstr(why, "not an aspen ticket") != NULL);
    /* Limits on the encoder. */
    struct ticket bad = t;
    bad.n = 0;
    CHECK_ERR(ticket_encode(&bad, &b), ASPEN_E_INVALID);
    bad.n = ASPEN_MAX_VOTERS + 1;
    CHECK_ERR(ticket_encode(&bad, &b), ASPEN_E_INVALID);
    bad = t;
    bad.members[0].peer_addr[0] = 0;
    CHECK_ERR(ticket_encode(&bad, &b), ASPEN_E_INVALID);
    buf_release(&b);
}

/* Regressions found by fuzz_ticket: the text has one spelling per ticket. A byte from
 * 0x80 up where '_' belongs is refused (libsodium 1.0.18 alone decodes it as '_'), and so
 * is an address or URL list with a byte outside printable ASCII, even under a correct
 * checksum (a NUL would cut the C string short). */
static void test_ticket_one_spelling(void)
{
    struct ticket t = {.n = 1};
    t.members[0] = member(1, "", "127.0.0.1:12380", "http://127.0.0.1:2379");
    struct buf b;
    buf_init(&b, 1 << 16);
    struct ticket got;
    char why[160];
    char *u = NULL;
    for (t.cluster_id = 1; !u && t.cluster_id < 1000; t.cluster_id++) {
        buf_clear(&b);
        CHECK_OK(ticket_encode(&t, &b));
        u = memchr(b.data, '_', b.len);
    }
    CHECK(u != NULL);
    CHECK_OK(ticket_decode((const char *)b.data, b.len, &got, why, sizeof(why)));
    *u = (char)0xdf;
    CHECK_ERR(ticket_decode((const char *)b.data, b.len, &got, why, sizeof(why)),
              ASPEN_E_MALFORMED);
    CHECK(strstr(why, "base64url") != NULL);

    static const char *const addrs[] = {"127.0.0.1:2380\0x", "127.0.0.1 :2380", "a\tb:1"};
    static const size_t lens[] = {16, 15, 5};
    for (size_t k = 0; k < 3; k++) {
        uint8_t bin[128];
        size_t n = 0;
        bin[n++] = TICKET_VERSION;
        be64_store(bin + n, 7);
        n += 8;
        bin[n++] = 1;
        memcpy(bin + n, t.members[0].pk, 32);
        n += 32;
        bin[n++] = (uint8_t)lens[k];
        memcpy(bin + n, addrs[k], lens[k]);
        n += lens[k];
        be16_store(bin + n, 0);
        n += 2;
        be32_store(bin + n, crc32c(bin, n));
        n += 4;
        char text[256];
        size_t pl = strlen(TICKET_PREFIX);
        memcpy(text, TICKET_PREFIX, pl);
        sodium_bin2base64(text + pl, sizeof(text) - pl, bin, n,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        CHECK_ERR(ticket_decode(text, strlen(text), &got, why, sizeof(why)), ASPEN_E_MALFORMED);
        CHECK(strstr(why, "printable") != NULL);
    }
    /* The encoder holds the same rule. */
    snprintf(t.members[0].client_urls, sizeof(t.members[0].client_urls), "http://a b");
    CHECK_ERR(ticket_encode(&t, &b), ASPEN_E_INVALID);
    buf_release(&b);
}

static struct join_request signed_request(uint8_t seed_byte, uint8_t sk[64])
{
    struct join_request r = {0};
    snprintf(r.credential, sizeof(r.credential), "%s", "00112233445566778899aabbccddeeff");
    make_key(seed_byte, r.member.pk, sk);
    snprintf(r.member.name, sizeof(r.member.name), "n4");
    snprintf(r.member.peer_addr, sizeof(r.member.peer_addr), "127.0.0.1:42380");
    snprintf(r.member.client_urls, sizeof(r.member.client_urls), "http://127.0.0.1:42379");
    r.member.flags = KV_MEMBER_F_MANUAL_PROMOTE;
    join_request_sign(&r, sk);
    return r;
}

static void test_join_request_round_trip(void)
{
    uint8_t sk[64];
    struct join_request r = signed_request(9, sk);
    struct buf b;
    buf_init(&b, 1 << 16);
    CHECK_OK(join_request_encode(&r, &b));
    struct join_request got;
    char why[160] = "";
    CHECK_OK(join_request_decode(buf_slice(&b), &got, why, sizeof(why)));
    CHECK(strcmp(got.credential, r.credential) == 0);
    CHECK_MEM_EQ(got.member.pk, r.member.pk, 32);
    CHECK_EQ_U64(got.member.id, hlc_node_id_from_key(r.member.pk, 32));
    CHECK(strcmp(got.member.name, "n4") == 0);
    CHECK(strcmp(got.member.peer_addr, "127.0.0.1:42380") == 0);
    CHECK(strcmp(got.member.client_urls, "http://127.0.0.1:42379") == 0);
    CHECK_EQ(got.member.flags, KV_MEMBER_F_MANUAL_PROMOTE);
    buf_release(&b);
}

/* The signature binds every field: changing any of them, or signing with another key,
 * is refused with PERMISSION — so a ticket reader cannot re-register a member's key. */
static void test_join_request_signature(void)
{
    uint8_t sk[64], other_sk[64];
    struct join_request base = signed_request(9, sk);
    struct join_request forged = signed_request(10, other_sk);
    memcpy(forged.member.pk, base.member.pk, 32); /* claims n4's key, signed by another */
    struct join_request variants[6];
    for (int i = 0; i < 6; i++)
        variants[i] = base;
    variants[0].credential[0] = '1';
    variants[1].member.name[0] = 'm';
    variants[2].member.peer_addr[0] = '9';
    variants[3].member.client_urls[7] = 'X';
    variants[4].member.flags = 0;
    variants[5] = forged;
    struct buf b;
    buf_init(&b, 1 << 16);
    for (int i = 0; i < 6; i++) {
        buf_clear(&b);
        CHECK_OK(join_request_encode(&variants[i], &b));
        struct join_request got;
        char why[160] = "";
        CHECK_ERR(join_request_decode(buf_slice(&b), &got, why, sizeof(why)), ASPEN_E_PERMISSION);
        CHECK(strstr(why, "signature") != NULL);
    }
    buf_release(&b);
}

static void test_join_request_malformed(void)
{
    struct join_request got;
    char why[160];
    const char *bad[] = {
        "",
        "credential=x\n",
        "no equals sign\n",
        "credential=x\npublic-key=zz\nname=a\npeer-addr=b\nsignature=00\n",
        "credential=x\npublic-key=00\nname=a\npeer-addr=b\nauto-promote=maybe\nsignature=00\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = 0;
        int rc = join_request_decode(slice_str(bad[i]), &got, why, sizeof(why));
        CHECK_MSG(rc == ASPEN_E_INVALID || rc == ASPEN_E_MALFORMED, "case %zu: %s", i,
                  aspen_err_name(rc));
        CHECK(why[0] != 0);
    }
    /* A name with a space is refused even when correctly signed; so is a credential
     * ending in CR (found with fuzz_join: "credential=x\r\r\n" decoded to "x\r", which
     * does not encode back). */
    uint8_t sk[64];
    struct join_request r = signed_request(9, sk);
    snprintf(r.member.name, sizeof(r.member.name), "a b");
    join_request_sign(&r, sk);
    struct buf b;
    buf_init(&b, 1 << 16);
    CHECK_OK(join_request_encode(&r, &b));
    CHECK_ERR(join_request_decode(buf_slice(&b), &got, why, sizeof(why)), ASPEN_E_INVALID);
    r = signed_request(9, sk);
    snprintf(r.credential, sizeof(r.credential), "%s", "0011\r");
    join_request_sign(&r, sk);
    buf_clear(&b);
    CHECK_OK(join_request_encode(&r, &b));
    CHECK_OK(buf_append(&b, "credential=0011\r\r\n", 18)); /* the last one counts */
    CHECK_ERR(join_request_decode(buf_slice(&b), &got, why, sizeof(why)), ASPEN_E_INVALID);
    buf_release(&b);
}

static void test_join_response_round_trip(void)
{
    struct member_info m[2] = {member(1, "n1", "127.0.0.1:12380", "http://127.0.0.1:2379"),
                               member(2, "n2", "127.0.0.1:22380", "")};
    m[1].flags = KV_MEMBER_F_MANUAL_PROMOTE;
    struct buf b;
    buf_init(&b, 1 << 16);
    CHECK_OK(join_response_encode(0xabcdefu, m, 2, &b));
    struct join_result r;
    char why[160] = "";
    CHECK_OK(join_response_decode(buf_slice(&b), &r, why, sizeof(why)));
    CHECK_EQ_U64(r.cluster_id, 0xabcdefu);
    CHECK_EQ(r.n, 2u);
    for (int i = 0; i < 2; i++) {
        CHECK_MEM_EQ(r.members[i].pk, m[i].pk, 32);
        CHECK_EQ_U64(r.members[i].id, m[i].id);
        CHECK(strcmp(r.members[i].name, m[i].name) == 0);
        CHECK(strcmp(r.members[i].peer_addr, m[i].peer_addr) == 0);
        CHECK(strcmp(r.members[i].client_urls, m[i].client_urls) == 0);
    }
    join_result_release(&r);
    /* Without a cluster id, or without members, the answer is refused. */
    CHECK_ERR(
        join_response_decode(slice_str("cluster-id=00000000000000ff\n"), &r, why, sizeof(why)),
        ASPEN_E_MALFORMED);
    CHECK_ERR(join_response_decode(slice_str("member=00 a b c\n"), &r, why, sizeof(why)),
              ASPEN_E_MALFORMED);
    /* Member fields follow the registry's rule: a name ending in CR or holding a space or
     * a control byte is refused (found with fuzz_join). */
    const char *names[] = {"n1\r", "n 1", "n\x01"};
    for (size_t i = 0; i < 3; i++) {
        buf_clear(&b);
        struct member_info bad = m[0];
        snprintf(bad.name, sizeof(bad.name), "%s", names[i]);
        CHECK_OK(join_response_encode(0xabcdefu, &bad, 1, &b));
        if (i == 0) { /* "...n1\r\n" + "\r\n" would be two lines: make it "...n1\r\r\n" */
            b.len--;
            CHECK_OK(buf_append(&b, "\r\n", 2));
        }
        CHECK_MSG(join_response_decode(buf_slice(&b), &r, why, sizeof(why)) == ASPEN_E_MALFORMED,
                  "name %zu", i);
    }
    buf_release(&b);
}

static void test_member_helpers(void)
{
    char host[64];
    uint16_t port = 0;
    CHECK_OK(member_split_addr("127.0.0.1:2380", host, sizeof(host), &port));
    CHECK(strcmp(host, "127.0.0.1") == 0 && port == 2380);
    CHECK_OK(member_split_addr("[::1]:12380", host, sizeof(host), &port));
    CHECK(strcmp(host, "::1") == 0 && port == 12380);
    const char *bad[] = {"",           ":1",       "host",   "host:", "host:0",
                         "host:65536", "host:12x", "[::1:5", "[]:5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_MSG(member_split_addr(bad[i], host, sizeof(host), &port) == ASPEN_E_INVALID, "%s",
                  bad[i]);
    char tiny[4];
    CHECK_ERR(member_split_addr("longhost:1", tiny, sizeof(tiny), &port), ASPEN_E_INVALID);
    char url[32];
    member_first_url("http://a:1,http://b:2", url, sizeof(url));
    CHECK(strcmp(url, "http://a:1") == 0);
    member_first_url("", url, sizeof(url));
    CHECK(url[0] == 0);
    struct member_info m = member(5, "n5", "127.0.0.1:1", "http://x:1");
    m.flags = KV_MEMBER_F_MANUAL_PROMOTE;
    struct kv_member k = member_to_kv(&m);
    struct member_info back;
    member_from_kv(&k, &back);
    CHECK_EQ_U64(back.id, m.id);
    CHECK_MEM_EQ(back.pk, m.pk, 32);
    CHECK(strcmp(back.name, m.name) == 0 && strcmp(back.peer_addr, m.peer_addr) == 0 &&
          strcmp(back.client_urls, m.client_urls) == 0);
    CHECK_EQ(back.flags, m.flags);
}

/* ---- seed corpora for the fuzz targets ---- */

static void write_seed(const char *dir, const char *name, const void *data, size_t len)
{
    if (!dir)
        return;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot write '%s'", path);
    if (f) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
}

/* Encodes t, checks it decodes, and writes it (and optionally damaged copies) as seeds. */
static void ticket_seed(const char *dir, const char *name, const struct ticket *t)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    CHECK_OK(ticket_encode(t, &b));
    struct ticket got;
    char why[160];
    CHECK_OK(ticket_decode((const char *)b.data, b.len, &got, why, sizeof(why)));
    write_seed(dir, name, b.data, b.len);
    buf_release(&b);
}

static void test_fuzz_seeds(void)
{
    const char *tdir = getenv("ASPEN_TICKET_CORPUS_DIR");
    const char *jdir = getenv("ASPEN_JOIN_CORPUS_DIR");

    /* Tickets: one voter; three with IPv6, several and no client URLs; the voter limit;
     * fields at their length limits; whitespace around; damaged ones. */
    struct ticket t = {.cluster_id = 0x0123456789abcdefu, .n = 1};
    t.members[0] = member(1, "", "127.0.0.1:12380", "http://127.0.0.1:2379");
    ticket_seed(tdir, "one-voter", &t);
    t.n = 3;
    t.members[1] = member(2, "", "[::1]:22380", "http://[::1]:22379,http://10.0.0.2:2379");
    t.members[2] = member(3, "", "10.0.0.3:2380", "");
    ticket_seed(tdir, "three-voters", &t);
    t.n = ASPEN_MAX_VOTERS;
    for (uint32_t i = 0; i < t.n; i++) {
        char addr[32], url[48];
        snprintf(addr, sizeof(addr), "10.0.0.%u:2380", i + 1);
        snprintf(url, sizeof(url), "http://10.0.0.%u:2379", i + 1);
        t.members[i] = member((uint8_t)(i + 1), "", addr, url);
    }
    ticket_seed(tdir, "max-voters", &t);
    struct ticket big = {.cluster_id = UINT64_MAX, .n = 1};
    big.members[0] = member(7, "", "", "");
    memset(big.members[0].peer_addr, 'a', 255);
    memcpy(big.members[0].peer_addr + 250, ":2380", 5);
    memset(big.members[0].client_urls, 'u', ASPEN_MAX_MEMBER_URLS_BYTES);
    ticket_seed(tdir, "longest-fields", &big);
    t.n = 1;
    struct buf b;
    buf_init(&b, 1 << 16);
    CHECK_OK(buf_append(&b, " \t", 2));
    CHECK_OK(ticket_encode(&t, &b));
    CHECK_OK(buf_append(&b, "\r\n", 2));
    write_seed(tdir, "whitespace-around", b.data, b.len);
    b.data[b.len / 2] = b.data[b.len / 2] == 'A' ? 'B' : 'A';
    write_seed(tdir, "bad-checksum", b.data, b.len);
    write_seed(tdir, "bad-truncated", b.data, b.len - 9);
    write_seed(tdir, "bad-prefix", "aspen-ticket-2.AAAA", 19);

    /* Join requests: manual and auto promotion, CRLF line endings with an unknown key
     * (what a newer joiner may send), a broken signature. Answers: one member, three with
     * no client URLs and a name with spaces, uppercase hex; one without members. */
    uint8_t sk[64];
    struct join_request r = signed_request(9, sk);
    buf_clear(&b);
    CHECK_OK(join_request_encode(&r, &b));
    write_seed(jdir, "request-manual-promote", b.data, b.len);
    r.member.flags = 0;
    join_request_sign(&r, sk);
    buf_clear(&b);
    CHECK_OK(join_request_encode(&r, &b));
    struct join_request got;
    char why[160] = "";
    CHECK_OK(join_request_decode(buf_slice(&b), &got, why, sizeof(why)));
    write_seed(jdir, "request", b.data, b.len);
    struct buf crlf;
    buf_init(&crlf, 1 << 16);
    CHECK_OK(buf_append(&crlf, "x-future=1\r\n", 12));
    for (size_t i = 0; i < b.len; i++)
        CHECK_OK(b.data[i] == '\n' ? buf_append(&crlf, "\r\n", 2)
                                   : buf_append(&crlf, &b.data[i], 1));
    CHECK_OK(join_request_decode(buf_slice(&crlf), &got, why, sizeof(why)));
    write_seed(jdir, "request-crlf-unknown-key", crlf.data, crlf.len);
    buf_release(&crlf);
    b.data[b.len - 3] = b.data[b.len - 3] == '0' ? '1' : '0'; /* in the signature's hex */
    CHECK_ERR(join_request_decode(buf_slice(&b), &got, why, sizeof(why)), ASPEN_E_PERMISSION);
    write_seed(jdir, "request-bad-signature", b.data, b.len);

    struct member_info m[3] = {member(1, "n1", "127.0.0.1:12380", "http://127.0.0.1:2379"),
                               member(2, "n2-spare", "[::1]:22380", ""),
                               member(3, "n3", "10.0.0.3:2380", "http://a:1,http://b:2")};
    struct join_result res;
    buf_clear(&b);
    CHECK_OK(join_response_encode(0x42, m, 1, &b));
    CHECK_OK(join_response_decode(buf_slice(&b), &res, why, sizeof(why)));
    join_result_release(&res);
    write_seed(jdir, "answer-one", b.data, b.len);
    buf_clear(&b);
    CHECK_OK(join_response_encode(UINT64_MAX, m, 3, &b));
    CHECK_OK(join_response_decode(buf_slice(&b), &res, why, sizeof(why)));
    join_result_release(&res);
    write_seed(jdir, "answer-three", b.data, b.len);
    for (size_t i = 0; i + 7 + 64 <= b.len; i++) /* each member's key in upper case */
        if (memcmp(b.data + i, "member=", 7) == 0)
            for (size_t k = i + 7; k < i + 7 + 64; k++)
                if (b.data[k] >= 'a' && b.data[k] <= 'f')
                    b.data[k] = (uint8_t)(b.data[k] - 'a' + 'A');
    CHECK_OK(join_response_decode(buf_slice(&b), &res, why, sizeof(why)));
    join_result_release(&res);
    write_seed(jdir, "answer-uppercase-hex", b.data, b.len);
    write_seed(jdir, "answer-no-members", "cluster-id=0000000000000042\n", 28);
    buf_release(&b);
}

static const struct test_case tests[] = {
    TEST(test_ticket_round_trip),
    TEST(test_ticket_damage_refused),
    TEST(test_ticket_one_spelling),
    TEST(test_join_request_round_trip),
    TEST(test_join_request_signature),
    TEST(test_join_request_malformed),
    TEST(test_join_response_round_trip),
    TEST(test_member_helpers),
    TEST(test_fuzz_seeds),
};

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    return TEST_MAIN("node_ticket", tests);
}
