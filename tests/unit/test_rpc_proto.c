/*
 * The client API schemas (proto/): messages built and encoded with the protoc-c code that
 * meson generated, then read back by Google's protoc. `protoc --decode_raw` prints the
 * field numbers actually on the wire, which must be etcd v3.4's (written out below from
 * etcd's published numbering, independently of our .proto files); `protoc --decode`
 * with our schemas prints the names, which must be etcd's too. Nested messages, oneofs,
 * packed repeated enums, the gap to Compare.range_end = 64 and WatchResponse.events = 11
 * are covered, plus one aspen.v1 message.
 *
 * Needs protoc: meson passes its path in ASPEN_TEST_PROTOC and the schema root in
 * ASPEN_TEST_PROTO_DIR.
 */
#include "test.h"

#include "aspen/v1/aspen.pb-c.h"
#include "base/mem.h"
#include "etcd/etcdserverpb/rpc.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OUT_MAX (64 * 1024)

static ProtobufCBinaryData bin(const char *s)
{
    return (ProtobufCBinaryData){.len = strlen(s), .data = (uint8_t *)(uintptr_t)s};
}

/* Encodes m into a temp file and runs protoc on it with args; the output goes to out. */
static bool run_protoc(const ProtobufCMessage *m, const char *args, char *out, size_t cap)
{
    const char *protoc = getenv("ASPEN_TEST_PROTOC");
    const char *dir = getenv("ASPEN_TEST_PROTO_DIR");
    if (!protoc || !dir) {
        fprintf(stderr, "ASPEN_TEST_PROTOC and ASPEN_TEST_PROTO_DIR must be set\n");
        return false;
    }
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *bytes = mem_alloc(len + 1);
    protobuf_c_message_pack(m, bytes);
    char path[] = "/tmp/aspen-proto-XXXXXX";
    int fd = mkstemp(path);
    bool ok = fd >= 0 && write(fd, bytes, len) == (ssize_t)len;
    if (fd >= 0)
        close(fd);
    mem_free(bytes);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "'%s' -I'%s' %s < '%s' 2>&1", protoc, dir, args, path);
    FILE *p = ok ? popen(cmd, "r") : NULL;
    size_t n = p ? fread(out, 1, cap - 1, p) : 0;
    out[n] = '\0';
    ok = p && pclose(p) == 0;
    unlink(path);
    if (!ok)
        fprintf(stderr, "protoc failed: %s\n%s\n", cmd, out);
    return ok;
}

static bool output_is(const ProtobufCMessage *m, const char *args, const char *want)
{
    static char out[OUT_MAX];
    if (!run_protoc(m, args, out, sizeof(out)))
        return false;
    if (strcmp(out, want) != 0) {
        fprintf(stderr, "protoc %s printed:\n%s\nwanted:\n%s\n", args, out, want);
        return false;
    }
    return true;
}

#define RAW "--decode_raw"

static void test_range_request(void)
{
    Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
    r.key = bin("k");
    r.range_end = bin("z");
    r.limit = 3;
    r.revision = 4;
    r.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
    r.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD;
    r.serializable = r.keys_only = r.count_only = 1;
    r.min_mod_revision = 10;
    r.max_mod_revision = 11;
    r.min_create_revision = 12;
    r.max_create_revision = 13;
    CHECK(output_is(&r.base, RAW,
                    "1: \"k\"\n2: \"z\"\n3: 3\n4: 4\n5: 2\n6: 3\n7: 1\n8: 1\n9: 1\n10: 10\n"
                    "11: 11\n12: 12\n13: 13\n"));
    CHECK(output_is(&r.base, "--decode=etcdserverpb.RangeRequest etcd/etcdserverpb/rpc.proto",
                    "key: \"k\"\nrange_end: \"z\"\nlimit: 3\nrevision: 4\nsort_order: DESCEND\n"
                    "sort_target: MOD\nserializable: true\nkeys_only: true\ncount_only: true\n"
                    "min_mod_revision: 10\nmax_mod_revision: 11\nmin_create_revision: 12\n"
                    "max_create_revision: 13\n"));
}

static void test_put_and_txn(void)
{
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    put.key = bin("a");
    put.value = bin("v");
    put.lease = 7;
    put.prev_kv = put.ignore_value = put.ignore_lease = 1;
    CHECK(output_is(&put.base, RAW, "1: \"a\"\n2: \"v\"\n3: 7\n4: 1\n5: 1\n6: 1\n"));

    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
    cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__NOT_EQUAL;
    cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE;
    cmp.key = bin("a");
    cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
    cmp.value = bin("old");
    cmp.range_end = bin("b");
    Etcdserverpb__Compare *cmps[1] = {&cmp};
    Etcdserverpb__RequestOp ok_op = ETCDSERVERPB__REQUEST_OP__INIT;
    ok_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    ok_op.request_put = &put;
    Etcdserverpb__DeleteRangeRequest del = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    del.key = bin("d");
    del.prev_kv = 1;
    Etcdserverpb__RequestOp fail_op = ETCDSERVERPB__REQUEST_OP__INIT;
    fail_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
    fail_op.request_delete_range = &del;
    Etcdserverpb__RequestOp *succ[1] = {&ok_op}, *fail[1] = {&fail_op};
    Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
    txn.n_compare = 1;
    txn.compare = cmps;
    txn.n_success = 1;
    txn.success = succ;
    txn.n_failure = 1;
    txn.failure = fail;
    CHECK(output_is(&txn.base, RAW,
                    "1 {\n  1: 3\n  2: 3\n  3: \"a\"\n  7: \"old\"\n  64: \"b\"\n}\n"
                    "2 {\n  2 {\n    1: \"a\"\n    2: \"v\"\n    3: 7\n    4: 1\n    5: 1\n"
                    "    6: 1\n  }\n}\n"
                    "3 {\n  3 {\n    1: \"d\"\n    3: 1\n  }\n}\n"));
    CHECK(output_is(&txn.base, "--decode=etcdserverpb.TxnRequest etcd/etcdserverpb/rpc.proto",
                    "compare {\n  result: NOT_EQUAL\n  target: VALUE\n  key: \"a\"\n"
                    "  value: \"old\"\n  range_end: \"b\"\n}\n"
                    "success {\n  request_put {\n    key: \"a\"\n    value: \"v\"\n    lease: 7\n"
                    "    prev_kv: true\n    ignore_value: true\n    ignore_lease: true\n  }\n}\n"
                    "failure {\n  request_delete_range {\n    key: \"d\"\n    prev_kv: true\n"
                    "  }\n}\n"));
}

static void test_watch(void)
{
    Etcdserverpb__WatchCreateRequest c = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    c.key = bin("w");
    c.range_end = bin("x");
    c.start_revision = 3;
    c.progress_notify = 1;
    Etcdserverpb__WatchCreateRequest__FilterType filters[2] = {
        ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE,
        ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT};
    c.n_filters = 2;
    c.filters = filters;
    c.prev_kv = 1;
    c.watch_id = 7;
    c.fragment = 1;
    Etcdserverpb__WatchRequest w = ETCDSERVERPB__WATCH_REQUEST__INIT;
    w.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    w.create_request = &c;
    CHECK(output_is(&w.base, RAW,
                    "1 {\n  1: \"w\"\n  2: \"x\"\n  3: 3\n  4: 1\n  5: \"\\001\\000\"\n  6: 1\n"
                    "  7: 7\n  8: 1\n}\n"));

    Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT, prev = MVCCPB__KEY_VALUE__INIT;
    kv.key = bin("w");
    kv.create_revision = 2;
    kv.mod_revision = 3;
    kv.version = 4;
    kv.value = bin("v");
    kv.lease = 6;
    prev.key = bin("w");
    Mvccpb__Event ev = MVCCPB__EVENT__INIT;
    ev.type = MVCCPB__EVENT__EVENT_TYPE__DELETE;
    ev.kv = &kv;
    ev.prev_kv = &prev;
    Mvccpb__Event *evs[1] = {&ev};
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    h.cluster_id = 1;
    h.member_id = 2;
    h.revision = 3;
    h.raft_term = 4;
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.header = &h;
    r.watch_id = 2;
    r.created = r.canceled = 1;
    r.compact_revision = 5;
    r.cancel_reason = (char *)"gone";
    r.fragment = 1;
    r.n_events = 1;
    r.events = evs;
    CHECK(output_is(&r.base, RAW,
                    "1 {\n  1: 1\n  2: 2\n  3: 3\n  4: 4\n}\n2: 2\n3: 1\n4: 1\n5: 5\n6: \"gone\"\n"
                    "7: 1\n11 {\n  1: 1\n  2 {\n    1: \"w\"\n    2: 2\n    3: 3\n    4: 4\n"
                    "    5: \"v\"\n    6: 6\n  }\n  3 {\n    1: \"w\"\n  }\n}\n"));
}

static void test_lease_cluster_maintenance_auth(void)
{
    ProtobufCBinaryData keys[1] = {bin("k")};
    Etcdserverpb__LeaseTimeToLiveResponse ttl = ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT;
    ttl.id = 2;
    ttl.ttl = 3;
    ttl.grantedttl = 4;
    ttl.n_keys = 1;
    ttl.keys = keys;
    CHECK(output_is(&ttl.base, RAW, "2: 2\n3: 3\n4: 4\n5: \"k\"\n"));
    CHECK(output_is(&ttl.base,
                    "--decode=etcdserverpb.LeaseTimeToLiveResponse etcd/etcdserverpb/rpc.proto",
                    "ID: 2\nTTL: 3\ngrantedTTL: 4\nkeys: \"k\"\n"));

    char *urls[1] = {(char *)"http://p"};
    Etcdserverpb__Member m = ETCDSERVERPB__MEMBER__INIT;
    m.id = 9;
    m.name = (char *)"n";
    m.n_peerurls = 1;
    m.peerurls = urls;
    m.n_clienturls = 1;
    m.clienturls = urls;
    m.islearner = 1;
    CHECK(output_is(&m.base, RAW, "1: 9\n2: \"n\"\n3: \"http://p\"\n4: \"http://p\"\n5: 1\n"));

    Etcdserverpb__StatusResponse st = ETCDSERVERPB__STATUS_RESPONSE__INIT;
    char *errs[1] = {(char *)"e"};
    st.version = (char *)"3.4";
    st.dbsize = 3;
    st.leader = 4;
    st.raftindex = 5;
    st.raftterm = 6;
    st.raftappliedindex = 7;
    st.n_errors = 1;
    st.errors = errs;
    st.dbsizeinuse = 9;
    st.islearner = 1;
    CHECK(output_is(&st.base, RAW,
                    "2: \"3.4\"\n3: 3\n4: 4\n5: 5\n6: 6\n7: 7\n8: \"e\"\n9: 9\n10: 1\n"));

    Authpb__UserAddOptions o = AUTHPB__USER_ADD_OPTIONS__INIT;
    o.no_password = 1;
    Etcdserverpb__AuthUserAddRequest add = ETCDSERVERPB__AUTH_USER_ADD_REQUEST__INIT;
    add.name = (char *)"u";
    add.password = (char *)"p";
    add.options = &o;
    CHECK(output_is(&add.base, RAW, "1: \"u\"\n2: \"p\"\n3 {\n  1: 1\n}\n"));

    Authpb__Permission perm = AUTHPB__PERMISSION__INIT;
    perm.permtype = AUTHPB__PERMISSION__TYPE__READWRITE;
    perm.key = bin("a");
    perm.range_end = bin("b");
    Etcdserverpb__AuthRoleGrantPermissionRequest g =
        ETCDSERVERPB__AUTH_ROLE_GRANT_PERMISSION_REQUEST__INIT;
    g.name = (char *)"r";
    g.perm = &perm;
    CHECK(output_is(&g.base, RAW, "1: \"r\"\n2 {\n  1: 2\n  2: \"a\"\n  3: \"b\"\n}\n"));

    Etcdserverpb__AlarmRequest al = ETCDSERVERPB__ALARM_REQUEST__INIT;
    al.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE;
    al.memberid = 5;
    al.alarm = ETCDSERVERPB__ALARM_TYPE__CORRUPT;
    CHECK(output_is(&al.base, RAW, "1: 2\n2: 5\n3: 2\n"));
}

static void test_aspen_v1(void)
{
    Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
    kv.key = bin("k");
    Mvccpb__KeyValue *kvs[1] = {&kv};
    Aspen__V1__ScanKeysResponse r = ASPEN__V1__SCAN_KEYS_RESPONSE__INIT;
    r.n_kvs = 1;
    r.kvs = kvs;
    r.next_token = bin("t");
    r.scan_revision = 4;
    CHECK(output_is(&r.base, "--decode=aspen.v1.ScanKeysResponse aspen/v1/aspen.proto",
                    "kvs {\n  key: \"k\"\n}\nnext_token: \"t\"\nscan_revision: 4\n"));
}

static const struct test_case tests[] = {
    TEST(test_range_request), TEST(test_put_and_txn),
    TEST(test_watch),         TEST(test_lease_cluster_maintenance_auth),
    TEST(test_aspen_v1),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("rpc_proto", tests);
}
