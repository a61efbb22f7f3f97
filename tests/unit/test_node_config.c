/*
 * aspen-node's configuration (src/node/config.h): defaults, the precedence of the four
 * sources for every combination, each parse and validation error with its exact message,
 * the YAML rules, raft profile overrides, and print -> load round trips.
 */
#include "test.h"

#include "base/mem.h"
#include "node/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static struct node_config cfg, cfg2;
static char err[1024];
static char dir[64];
static char path[128];

/* ---- Helpers ---- */

#define ARGV(...) ((char *[]){"aspen-node", __VA_ARGS__, NULL})
#define ENV(...)  ((char *[]){__VA_ARGS__, NULL})

static char *no_args[] = {"aspen-node", NULL};
static char *no_env[] = {NULL};

static int count(char **v)
{
    int n = 0;
    while (v[n])
        n++;
    return n;
}

static int load(struct node_config *c, char **argv, char **envp)
{
    return config_load(c, count(argv), argv, envp, err, sizeof(err));
}

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/aspen-config-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof(path), "%s/aspen.yaml", dir);
}

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

static void write_yaml(const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
}

/* Replaces every "FILE" in pattern with the config file's path. */
static const char *with_path(const char *pattern)
{
    static char out[1024];
    size_t j = 0;
    for (size_t i = 0; pattern[i] && j + 1 < sizeof(out);) {
        if (strncmp(pattern + i, "FILE", 4) == 0) {
            j += (size_t)snprintf(out + j, sizeof(out) - j, "%s", path);
            i += 4;
        } else {
            out[j++] = pattern[i++];
        }
    }
    out[j] = '\0';
    return out;
}

/* ---- Defaults ---- */

static void test_defaults(void)
{
    CHECK_OK(load(&cfg, no_args, no_env));
    CHECK_STR_EQ(cfg.name, "default");
    CHECK_STR_EQ(cfg.data_dir, "./aspen-data");
    CHECK_EQ(cfg.listen_client_urls.count, 1);
    const struct config_endpoint *ep = &cfg.listen_client_urls.items[0];
    CHECK_STR_EQ(ep->text, "http://127.0.0.1:2379");
    CHECK_STR_EQ(ep->host, "127.0.0.1");
    CHECK_EQ(ep->port, 2379);
    CHECK_EQ(ep->scheme, CONFIG_SCHEME_HTTP);
    CHECK_EQ(cfg.advertise_client_urls.count, 1);
    CHECK_STR_EQ(cfg.advertise_client_urls.items[0].text, "http://127.0.0.1:2379");
    CHECK_EQ(cfg.listen_peer_urls.count, 1);
    CHECK_STR_EQ(cfg.listen_peer_urls.items[0].text, "127.0.0.1:2380");
    CHECK_EQ(cfg.listen_peer_urls.items[0].scheme, CONFIG_SCHEME_NONE);
    CHECK_STR_EQ(cfg.advertise_peer_urls.items[0].text, "127.0.0.1:2380");
    CHECK_EQ(cfg.listen_metrics_urls.count, 0);
    CHECK_EQ(cfg.raft_profile, CONFIG_RAFT_BALANCED);
    CHECK_EQ(cfg.heartbeat_interval_ms, ASPEN_RAFT_BALANCED_HEARTBEAT_MS);
    CHECK_EQ(cfg.election_timeout_ms, ASPEN_RAFT_BALANCED_ELECTION_MIN_MS);
    CHECK_EQ(cfg.election_timeout_max_ms, ASPEN_RAFT_BALANCED_ELECTION_MAX_MS);
    CHECK(!cfg.init);
    CHECK_STR_EQ(cfg.join, "");
    CHECK_STR_EQ(cfg.join_credential, "");
    CHECK(cfg.auto_promote);
    CHECK_EQ(cfg.snapshot_count, ASPEN_NODE_DEFAULT_SNAPSHOT_COUNT);
    CHECK_EQ_U64(cfg.quota_backend_bytes, 2 * ASPEN_GIB);
    CHECK_EQ(cfg.log_level, LOG_LEVEL_INFO);
    CHECK_EQ(cfg.log_format, CONFIG_LOG_FORMAT_LOGFMT);
    CHECK_EQ(cfg.max_request_bytes, ASPEN_MAX_REQUEST_BYTES);
    for (int i = 0; i < CONFIG_SETTING_COUNT; i++)
        CHECK_EQ(cfg.source[i], CONFIG_SOURCE_DEFAULT);
    CHECK_STR_EQ(cfg.config_file, "");
    CHECK(!cfg.print_config && !cfg.show_help);
}

/* ---- Precedence ---- */

/* Every combination of file, env and flag for a string, a number, a list and a bool. */
static void test_precedence_every_combination(void)
{
    make_dir();
    write_yaml("name: from-file\nsnapshot-count: 2000\nlisten-client-urls: http://file:1\n"
               "auto-promote: false\n");
    for (int mask = 0; mask < 8; mask++) {
        bool file = mask & 1, env = mask & 2, flag = mask & 4;
        char env_file[160];
        snprintf(env_file, sizeof(env_file), "ASPEN_CONFIG_FILE=%s", path);
        char *envp[8] = {0}, *argv[8] = {"aspen-node"};
        int ne = 0, na = 1;
        if (file)
            envp[ne++] = env_file;
        if (env) {
            envp[ne++] = "ASPEN_NAME=from-env";
            envp[ne++] = "ASPEN_SNAPSHOT_COUNT=3000";
            envp[ne++] = "ASPEN_LISTEN_CLIENT_URLS=http://env:2";
            envp[ne++] = "ASPEN_AUTO_PROMOTE=yes";
        }
        if (flag) {
            argv[na++] = "--name=from-flag";
            argv[na++] = "--snapshot-count=4000";
            argv[na++] = "--listen-client-urls=http://flag:3";
            argv[na++] = "--auto-promote=0";
        }
        int rc = load(&cfg, argv, envp);
        CHECK_MSG(rc == 0, "mask %d: %s", mask, err);
        enum config_source want = flag   ? CONFIG_SOURCE_FLAG
                                  : env  ? CONFIG_SOURCE_ENV
                                  : file ? CONFIG_SOURCE_FILE
                                         : CONFIG_SOURCE_DEFAULT;
        const char *name = flag ? "from-flag" : env ? "from-env" : file ? "from-file" : "default";
        uint64_t count = flag ? 4000 : env ? 3000 : file ? 2000 : ASPEN_NODE_DEFAULT_SNAPSHOT_COUNT;
        const char *url = flag   ? "http://flag:3"
                          : env  ? "http://env:2"
                          : file ? "http://file:1"
                                 : "http://127.0.0.1:2379";
        bool promote = flag ? false : env ? true : file ? false : true;
        CHECK_STR_EQ(cfg.name, name);
        CHECK_EQ_U64(cfg.snapshot_count, count);
        CHECK_STR_EQ(cfg.listen_client_urls.items[0].text, url);
        CHECK_STR_EQ(cfg.advertise_client_urls.items[0].text, url); /* follows listen */
        CHECK_EQ(cfg.auto_promote, promote);
        CHECK_EQ(cfg.source[CONFIG_NAME], want);
        CHECK_EQ(cfg.source[CONFIG_SNAPSHOT_COUNT], want);
        CHECK_EQ(cfg.source[CONFIG_LISTEN_CLIENT_URLS], want);
        CHECK_EQ(cfg.source[CONFIG_AUTO_PROMOTE], want);
        CHECK_EQ(cfg.source[CONFIG_ADVERTISE_CLIENT_URLS], CONFIG_SOURCE_DEFAULT);
        CHECK_EQ(cfg.source[CONFIG_DATA_DIR], CONFIG_SOURCE_DEFAULT);
    }
    remove_dir();
}

static void test_config_file_path_precedence(void)
{
    make_dir();
    write_yaml("name: chosen\n");
    char env_file[160];
    snprintf(env_file, sizeof(env_file), "ASPEN_CONFIG_FILE=%s", path);
    char flag_file[160];
    snprintf(flag_file, sizeof(flag_file), "--config-file=%s", path);
    /* The flag's path wins over the variable's (which does not exist). */
    CHECK_OK(load(&cfg, ARGV(flag_file), ENV("ASPEN_CONFIG_FILE=/nonexistent/x.yaml")));
    CHECK_STR_EQ(cfg.name, "chosen");
    CHECK_STR_EQ(cfg.config_file, path);
    CHECK_OK(load(&cfg, ARGV("--config-file", path), no_env));
    CHECK_STR_EQ(cfg.name, "chosen");
    CHECK_OK(load(&cfg, no_args, ENV(env_file)));
    CHECK_STR_EQ(cfg.name, "chosen");
    CHECK_EQ(cfg.source[CONFIG_NAME], CONFIG_SOURCE_FILE);
    CHECK_ERR(load(&cfg, no_args, ENV("ASPEN_CONFIG_FILE=/nonexistent/x.yaml")), -ENOENT);
    CHECK_STR_EQ(err, "config: /nonexistent/x.yaml: cannot open: No such file or directory");
    remove_dir();
}

static void test_flag_forms(void)
{
    CHECK_OK(
        load(&cfg, ARGV("--name", "n1", "--data-dir=/d", "--init", "--auto-promote=no"), no_env));
    CHECK_STR_EQ(cfg.name, "n1");
    CHECK_STR_EQ(cfg.data_dir, "/d");
    CHECK(cfg.init);
    CHECK(!cfg.auto_promote);
    CHECK_OK(load(&cfg, ARGV("--init=false", "--print-config"), no_env));
    CHECK(!cfg.init);
    CHECK(cfg.print_config);
    CHECK_EQ(cfg.source[CONFIG_INIT], CONFIG_SOURCE_FLAG);
    static const char *const truths[] = {"true", "yes", "1"};
    static const char *const lies[] = {"false", "no", "0"};
    for (int i = 0; i < 3; i++) {
        char on[32], off[32];
        snprintf(on, sizeof(on), "ASPEN_INIT=%s", truths[i]);
        snprintf(off, sizeof(off), "--auto-promote=%s", lies[i]);
        CHECK_OK(load(&cfg, ARGV(off), ENV(on)));
        CHECK(cfg.init && !cfg.auto_promote);
    }
    /* Other variables are ignored; duplicate variables: the first counts, like getenv. */
    CHECK_OK(load(&cfg, no_args,
                  ENV("PATH=/bin", "ASPENX=1", "ASPEN_TEST_SEED=5", "ASPEN_BENCH_KV_ARGS=x",
                      "ASPEN_CRASH_CYCLES=2", "ASPEN_CODEC_CORPUS_DIR=/x", "ASPEN_NAME=first",
                      "ASPEN_NAME=second")));
    CHECK_STR_EQ(cfg.name, "first");
}

static void test_help_reads_nothing_else(void)
{
    /* --help works whatever the environment holds. */
    CHECK_OK(load(&cfg, ARGV("--help"), ENV("ASPEN_BOGUS=1", "ASPEN_CONFIG_FILE=/nonexistent")));
    CHECK(cfg.show_help);
    CHECK_OK(load(&cfg, ARGV("-h"), no_env));
    CHECK(cfg.show_help);
    struct buf b;
    buf_init(&b, 1 << 20);
    CHECK_OK(config_help(&b));
    CHECK_OK(buf_append_u8(&b, 0));
    const char *text = (const char *)b.data;
    bool ok = strstr(text, "Usage: aspen-node [flags]") &&
              strstr(text, "  --listen-client-urls=URLS\n") &&
              strstr(text, "default: \"http://127.0.0.1:2379\"; env ASPEN_LISTEN_CLIENT_URLS\n") &&
              strstr(text, "  --raft-profile=conservative|balanced|fast\n") &&
              strstr(text, "  --init[=false]\n") &&
              strstr(text, "default: from raft-profile; env ASPEN_HEARTBEAT_INTERVAL\n") &&
              strstr(text, "default: 10000; env ASPEN_SNAPSHOT_COUNT\n") &&
              strstr(text, "  --config-file=PATH\n") && strstr(text, "  --print-config\n");
    if (!ok)
        test_fail(__FILE__, __LINE__, "help text:\n%s", text);
    buf_release(&b);
}

/* ---- Values ---- */

static void test_endpoints(void)
{
    CHECK_OK(load(&cfg,
                  ARGV("--listen-client-urls= http://[::1]:2379 ,https://node-1.example.com:443",
                       "--listen-peer-urls=10.0.0.1:2380,[fe80::1]:2380,peer.local:7000",
                       "--listen-metrics-urls=http://127.0.0.1:9090"),
                  no_env));
    const struct config_endpoints *c = &cfg.listen_client_urls;
    CHECK_EQ(c->count, 2);
    CHECK_STR_EQ(c->items[0].text, "http://[::1]:2379");
    CHECK_STR_EQ(c->items[0].host, "::1");
    CHECK(c->items[0].is_ipv6);
    CHECK_EQ(c->items[1].scheme, CONFIG_SCHEME_HTTPS);
    CHECK_STR_EQ(c->items[1].host, "node-1.example.com");
    CHECK_EQ(c->items[1].port, 443);
    const struct config_endpoints *p = &cfg.listen_peer_urls;
    CHECK_EQ(p->count, 3);
    CHECK_STR_EQ(p->items[1].host, "fe80::1");
    CHECK_EQ(p->items[2].port, 7000);
    CHECK_EQ(cfg.advertise_peer_urls.count, 3);
    CHECK_EQ(cfg.listen_metrics_urls.count, 1);

    /* A wildcard listener needs explicit advertised addresses. */
    CHECK_OK(load(&cfg,
                  ARGV("--listen-client-urls=http://0.0.0.0:2379",
                       "--advertise-client-urls=http://10.1.2.3:2379",
                       "--listen-peer-urls=[::]:2380", "--advertise-peer-urls=node1:2380"),
                  no_env));
    CHECK_STR_EQ(cfg.advertise_client_urls.items[0].text, "http://10.1.2.3:2379");
}

struct bad_case {
    char *args[4]; /* flags, NULL-terminated */
    char *env[3];  /* variables, NULL-terminated */
    int rc;
    const char *msg;
};

static const struct bad_case bad_values[] = {
    /* Numbers */
    {{"--snapshot-count=-1"},
     {0},
     ASPEN_E_INVALID,
     "config: --snapshot-count=\"-1\": not a whole number"},
    {{0},
     {"ASPEN_HEARTBEAT_INTERVAL=abc"},
     ASPEN_E_INVALID,
     "config: ASPEN_HEARTBEAT_INTERVAL=\"abc\": not a whole number of milliseconds"},
    {{"--heartbeat-interval="},
     {0},
     ASPEN_E_INVALID,
     "config: --heartbeat-interval=\"\": not a whole number of milliseconds"},
    {{"--heartbeat-interval= 50"},
     {0},
     ASPEN_E_INVALID,
     "config: --heartbeat-interval=\" 50\": not a whole number of milliseconds"},
    {{"--heartbeat-interval=9"},
     {0},
     ASPEN_E_INVALID,
     "config: --heartbeat-interval=\"9\": out of range: must be from 10 to 16666 milliseconds"},
    {{"--election-timeout=50001"},
     {0},
     ASPEN_E_INVALID,
     "config: --election-timeout=\"50001\": out of range: must be from 100 to 50000 milliseconds"},
    {{"--snapshot-count=1000"},
     {0},
     ASPEN_E_INVALID,
     "config: --snapshot-count=\"1000\": out of range: must be from 1001 to 1000000"},
    {{"--quota-backend-bytes=18446744073709551616"},
     {0},
     ASPEN_E_INVALID,
     "config: --quota-backend-bytes=\"18446744073709551616\": out of range: must be from "
     "16777216 to 274877906944 bytes"},
    {{"--quota-backend-bytes=2GiB"},
     {0},
     ASPEN_E_INVALID,
     "config: --quota-backend-bytes=\"2GiB\": not a whole number of bytes"},
    {{"--max-request-bytes=1572865"},
     {0},
     ASPEN_E_INVALID,
     "config: --max-request-bytes=\"1572865\": out of range: must be from 1024 to 1572864 bytes"},
    /* Booleans and choices */
    {{"--init=maybe"},
     {0},
     ASPEN_E_INVALID,
     "config: --init=\"maybe\": not a boolean (true/false, yes/no, 1/0)"},
    {{0},
     {"ASPEN_AUTO_PROMOTE=TRUE"},
     ASPEN_E_INVALID,
     "config: ASPEN_AUTO_PROMOTE=\"TRUE\": not a boolean (true/false, yes/no, 1/0)"},
    {{"--raft-profile=turbo"},
     {0},
     ASPEN_E_INVALID,
     "config: --raft-profile=\"turbo\": must be one of: conservative, balanced, fast"},
    {{"--log-level=verbose"},
     {0},
     ASPEN_E_INVALID,
     "config: --log-level=\"verbose\": must be one of: trace, debug, info, warn, error"},
    {{0},
     {"ASPEN_LOG_FORMAT=json"},
     ASPEN_E_INVALID,
     "config: ASPEN_LOG_FORMAT=\"json\": must be one of: logfmt"},
    /* Strings */
    {{"--name="}, {0}, ASPEN_E_INVALID, "config: --name=\"\": must not be empty"},
    {{"--data-dir="}, {0}, ASPEN_E_INVALID, "config: --data-dir=\"\": must not be empty"},
    {{"--name=a\tb"},
     {0},
     ASPEN_E_INVALID,
     "config: --name=\"a\\x09b\": contains a control character"},
    {{"--name=a\xc3("}, {0}, ASPEN_E_INVALID, "config: --name=\"a\xc3(\": is not valid UTF-8"},
    {{"--name=\xc0\xaf"}, {0}, ASPEN_E_INVALID, "config: --name=\"\xc0\xaf\": is not valid UTF-8"},
    {{"--name=\xed\xa0\x80"},
     {0},
     ASPEN_E_INVALID,
     "config: --name=\"\xed\xa0\x80\": is not valid UTF-8"},
    {{"--join-credential=\x01"},
     {0},
     ASPEN_E_INVALID,
     "config: --join-credential=<secret>: contains a control character"},
    /* Client URLs */
    {{"--listen-client-urls=ftp://x:1"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"ftp://x:1\": the scheme must be http or https"},
    {{"--listen-client-urls=127.0.0.1:2379"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"127.0.0.1:2379\": not a URL: write http://host:port or "
     "https://host:port"},
    {{"--listen-client-urls=HTTP://x:1"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"HTTP://x:1\": the scheme must be http or https"},
    {{"--listen-client-urls=http://127.0.0.1"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://127.0.0.1\": missing :port"},
    {{"--listen-client-urls=http://127.0.0.1:0"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://127.0.0.1:0\": the port must be a number from 1 to "
     "65535"},
    {{"--listen-client-urls=http://127.0.0.1:65536"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://127.0.0.1:65536\": the port must be a number from 1 "
     "to 65535"},
    {{"--listen-client-urls=http://127.0.0.1:02379"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://127.0.0.1:02379\": the port must be a number from 1 "
     "to 65535"},
    {{"--listen-client-urls=http://127.0.0.1:"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://127.0.0.1:\": the port must be a number from 1 to "
     "65535"},
    {{"--listen-client-urls=http://:2379"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://:2379\": missing host"},
    {{"--listen-client-urls=http://[::1:2379"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://[::1:2379\": '[' without a closing ']'"},
    {{"--listen-client-urls=http://[::1]"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://[::1]\": missing :port after the address"},
    {{"--listen-client-urls=http://::1:2379"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://::1:2379\": an IPv6 address needs brackets: "
     "[::1]:2379"},
    {{"--listen-client-urls=http://[zz::1]:1"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://[zz::1]:1\": \"zz::1\" is not an IPv6 address"},
    {{"--listen-client-urls=http://256.1.1.1:1"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://256.1.1.1:1\": \"256.1.1.1\" is not an IPv4 address"},
    {{"--listen-client-urls=http://1.2.3:1"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://1.2.3:1\": \"1.2.3\" is not an IPv4 address"},
    {{"--listen-client-urls=http://01.2.3.4:1"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://01.2.3.4:1\": \"01.2.3.4\" is not an IPv4 address"},
    {{"--listen-client-urls=http://bad_host:1"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://bad_host:1\": \"bad_host\" is not a valid host name"},
    {{"--listen-client-urls=http://-a.b:1"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://-a.b:1\": \"-a.b\" is not a valid host name"},
    {{"--listen-client-urls=http://a..b:1"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://a..b:1\": \"a..b\" is not a valid host name"},
    {{"--listen-client-urls=http://a.b:1/v3"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://a.b:1/v3\": unexpected '/': only host:port may "
     "follow the scheme"},
    {{"--listen-client-urls=http://user@a.b:1"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://user@a.b:1\": unexpected '@': only host:port may "
     "follow the scheme"},
    /* Lists */
    {{"--listen-client-urls="},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"\": at least one address is needed"},
    {{"--listen-client-urls=http://a:1,,http://b:2"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://a:1,,http://b:2\": empty entry in the list"},
    {{"--listen-client-urls=http://a:1,"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://a:1,\": empty entry in the list"},
    {{"--listen-client-urls=http://a:1,ftp://b:2"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://a:1,ftp://b:2\": \"ftp://b:2\": the scheme must be "
     "http or https"},
    {{"--listen-client-urls=http://a:1, http://a:1"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-client-urls=\"http://a:1, http://a:1\": \"http://a:1\": listed twice"},
    {{"--listen-metrics-urls=http://a:1,http://a:2,http://a:3,http://a:4,http://a:5,http://a:6,"
      "http://a:7,http://a:8,http://a:9"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-metrics-urls=\"http://a:1,http://a:2,http://a:3,http://a:4,http://a:5,http:"
     "//a:...\": more than 8 addresses"},
    /* Peer addresses */
    {{"--listen-peer-urls=http://10.0.0.1:2380"},
     {0},
     ASPEN_E_INVALID,
     "config: --listen-peer-urls=\"http://10.0.0.1:2380\": peer addresses are host:port without "
     "a scheme (peers speak TLS with raw public keys)"},
    {{0},
     {"ASPEN_ADVERTISE_PEER_URLS=10.0.0.1"},
     ASPEN_E_INVALID,
     "config: ASPEN_ADVERTISE_PEER_URLS=\"10.0.0.1\": missing :port"},
    /* Names */
    {{"--lisen-client-urls=x"},
     {0},
     ASPEN_E_INVALID,
     "config: unknown flag --lisen-client-urls (did you mean --listen-client-urls?)"},
    {{"--print-conifg"},
     {0},
     ASPEN_E_INVALID,
     "config: unknown flag --print-conifg (did you mean --print-config?)"},
    {{"--frobnicate"}, {0}, ASPEN_E_INVALID, "config: unknown flag --frobnicate"},
    {{"--help=1"}, {0}, ASPEN_E_INVALID, "config: unknown flag --help (did you mean --help?)"},
    {{"-name=x"},
     {0},
     ASPEN_E_INVALID,
     "config: unexpected argument \"-name=x\" (settings are given as --name=value)"},
    {{"extra"},
     {0},
     ASPEN_E_INVALID,
     "config: unexpected argument \"extra\" (settings are given as --name=value)"},
    {{"--"},
     {0},
     ASPEN_E_INVALID,
     "config: unexpected argument \"--\" (settings are given as --name=value)"},
    {{"--name"}, {0}, ASPEN_E_INVALID, "config: --name needs a value"},
    {{"--name", "--init"},
     {0},
     ASPEN_E_INVALID,
     "config: --name needs a value (found the flag --init instead)"},
    {{"--config-file"}, {0}, ASPEN_E_INVALID, "config: --config-file needs a value"},
    {{"--name=a", "--name=b"}, {0}, ASPEN_E_INVALID, "config: --name is given twice"},
    {{"--config-file=a", "--config-file=b"},
     {0},
     ASPEN_E_INVALID,
     "config: --config-file is given twice"},
    {{"--print-config=yes"}, {0}, ASPEN_E_INVALID, "config: --print-config takes no value"},
    {{0},
     {"ASPEN_LISEN_CLIENT_URLS=x"},
     ASPEN_E_INVALID,
     "config: unknown environment variable ASPEN_LISEN_CLIENT_URLS (did you mean "
     "ASPEN_LISTEN_CLIENT_URLS?)"},
    {{0}, {"ASPEN_FOO=1"}, ASPEN_E_INVALID, "config: unknown environment variable ASPEN_FOO"},
    {{0},
     {"ASPEN_DATA-DIR=/x"},
     ASPEN_E_INVALID,
     "config: unknown environment variable ASPEN_DATA-DIR (did you mean ASPEN_DATA_DIR?)"},
    {{0},
     {"ASPEN_name=x"},
     ASPEN_E_INVALID,
     "config: unknown environment variable ASPEN_name (did you mean ASPEN_NAME?)"},
    {{0}, {"ASPEN_CONFIG_FILE="}, ASPEN_E_INVALID, "config: the config file's path is empty"},
    /* Rules across settings */
    {{"--heartbeat-interval=200"},
     {0},
     ASPEN_E_INVALID,
     "config: heartbeat-interval 200 ms (flag) is more than a third of election-timeout 500 ms "
     "(default of raft-profile balanced): followers must miss several heartbeats before they "
     "start an election"},
    {{"--raft-profile=fast"},
     {"ASPEN_HEARTBEAT_INTERVAL=50"},
     ASPEN_E_INVALID,
     "config: heartbeat-interval 50 ms (env) is more than a third of election-timeout 100 ms "
     "(default of raft-profile fast): followers must miss several heartbeats before they start an "
     "election"},
    {{"--election-timeout=299"},
     {0},
     ASPEN_E_INVALID,
     "config: heartbeat-interval 100 ms (default of raft-profile balanced) is more than a third "
     "of election-timeout 299 ms (flag): followers must miss several heartbeats before they start "
     "an election"},
    {{"--init", "--join=ticket"},
     {0},
     ASPEN_E_INVALID,
     "config: init (flag) and join (flag) cannot both be set: init forms a new cluster, join "
     "enters an existing one"},
    {{0},
     {"ASPEN_JOIN_CREDENTIAL=s3cret"},
     ASPEN_E_INVALID,
     "config: join-credential (env) is set but join is not"},
    {{"--listen-client-urls=http://0.0.0.0:2379"},
     {0},
     ASPEN_E_INVALID,
     "config: advertise-client-urls \"http://0.0.0.0:2379\" (default: same as listen-client-urls): "
     "0.0.0.0 is a wildcard address that nobody can dial; set advertise-client-urls to an "
     "address others can reach"},
    {{"--advertise-peer-urls=10.0.0.1:2380,[::]:2380"},
     {0},
     ASPEN_E_INVALID,
     "config: advertise-peer-urls \"[::]:2380\" (flag): :: is a wildcard address that nobody can "
     "dial; set advertise-peer-urls to an address others can reach"},
};

static void test_bad_values(void)
{
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
        const struct bad_case *c = &bad_values[i];
        char *argv[8] = {"aspen-node"};
        for (int k = 0; c->args[k]; k++)
            argv[k + 1] = c->args[k];
        int rc = load(&cfg, argv, (char **)c->env);
        CHECK_MSG(rc == c->rc, "case %zu: rc %s, want %s (%s)", i, aspen_err_name(rc),
                  aspen_err_name(c->rc), err);
        CHECK_MSG(strcmp(err, c->msg) == 0, "case %zu:\n      got  %s\n      want %s", i, err,
                  c->msg);
    }
}

static void test_secret_not_in_messages(void)
{
    char long_secret[ASPEN_NODE_CONFIG_VALUE_MAX_BYTES + 32];
    memset(long_secret, 'k', sizeof(long_secret) - 1);
    long_secret[sizeof(long_secret) - 1] = '\0';
    memcpy(long_secret, "--join-credential=", 18);
    CHECK_ERR(load(&cfg, ARGV("--join=t", long_secret), no_env), ASPEN_E_INVALID);
    CHECK_STR_EQ(err, "config: --join-credential=<secret>: longer than the 4095-byte limit");
}

static void test_long_values(void)
{
    static char arg[ASPEN_NODE_CONFIG_VALUE_MAX_BYTES + 16];
    /* The longest accepted string fills the field exactly. */
    int n = snprintf(arg, sizeof(arg), "--data-dir=");
    memset(arg + n, 'd', ASPEN_NODE_CONFIG_VALUE_MAX_BYTES - 1);
    arg[n + ASPEN_NODE_CONFIG_VALUE_MAX_BYTES - 1] = '\0';
    CHECK_OK(load(&cfg, ARGV(arg), no_env));
    CHECK_EQ(strlen(cfg.data_dir), ASPEN_NODE_CONFIG_VALUE_MAX_BYTES - 1);
    arg[n + ASPEN_NODE_CONFIG_VALUE_MAX_BYTES - 1] = 'd';
    arg[n + ASPEN_NODE_CONFIG_VALUE_MAX_BYTES] = '\0';
    CHECK_ERR(load(&cfg, ARGV(arg), no_env), ASPEN_E_INVALID);
    CHECK(strstr(err, "...\": longer than the 4095-byte limit") != NULL);
    /* A host name of 253 bytes in labels of 63 fits; a 64-byte label does not. */
    char host[300];
    n = snprintf(host, sizeof(host), "--listen-peer-urls=");
    for (int i = 0; i < 4; i++) {
        memset(host + n, 'h', 63);
        n += 63;
        host[n++] = '.';
    }
    n -= 3; /* 4 * 64 - 3 = 253 */
    host[n - 1] = 'z';
    snprintf(host + n, sizeof(host) - (size_t)n, ":1");
    CHECK_MSG(load(&cfg, ARGV(host), no_env) == 0, "%s", err);
    CHECK_EQ(strlen(cfg.listen_peer_urls.items[0].host), 253);
    char label[100];
    snprintf(label, sizeof(label), "--listen-peer-urls=%064d:1", 0);
    memset(label + 19, 'x', 64);
    CHECK_ERR(load(&cfg, ARGV(label), no_env), ASPEN_E_INVALID);
    CHECK(strstr(err, "is not a valid host name") != NULL);
}

/* ---- Raft profiles ---- */

static void test_profiles_and_overrides(void)
{
    CHECK_OK(load(&cfg, ARGV("--raft-profile=fast"), no_env));
    CHECK_EQ(cfg.heartbeat_interval_ms, 30);
    CHECK_EQ(cfg.election_timeout_ms, 100);
    CHECK_EQ(cfg.election_timeout_max_ms, 200);
    CHECK_OK(load(&cfg, no_args, ENV("ASPEN_RAFT_PROFILE=conservative")));
    CHECK_EQ(cfg.heartbeat_interval_ms, 500);
    CHECK_EQ(cfg.election_timeout_ms, 1500);
    CHECK_EQ(cfg.election_timeout_max_ms, 3000);
    /* An election override keeps the [t, 2t] range; a heartbeat override keeps the
     * profile's elections. */
    CHECK_OK(load(&cfg, ARGV("--election-timeout=1200"), no_env));
    CHECK_EQ(cfg.heartbeat_interval_ms, 100);
    CHECK_EQ(cfg.election_timeout_ms, 1200);
    CHECK_EQ(cfg.election_timeout_max_ms, 2400);
    CHECK_EQ(cfg.source[CONFIG_ELECTION_TIMEOUT], CONFIG_SOURCE_FLAG);
    CHECK_OK(load(&cfg, ARGV("--heartbeat-interval=166"), no_env));
    CHECK_EQ(cfg.heartbeat_interval_ms, 166); /* 3 * 166 = 498 <= 500 */
    CHECK_EQ(cfg.election_timeout_max_ms, 1000);
    CHECK_OK(load(
        &cfg, ARGV("--raft-profile=fast", "--heartbeat-interval=10", "--election-timeout=30000"),
        no_env));
    CHECK_ERR(load(&cfg, ARGV("--raft-profile=fast", "--heartbeat-interval=34"), no_env),
              ASPEN_E_INVALID);
    CHECK_OK(load(&cfg, ARGV("--raft-profile=fast", "--heartbeat-interval=33"), no_env));
}

/* ---- YAML ---- */

static void test_yaml_forms(void)
{
    make_dir();
    char *argv[] = {"aspen-node", "--config-file", path, NULL};
    write_yaml("# a comment\n"
               "---\n"
               "name: \"quoted: value\"   # trailing comment\n"
               "data-dir: '/var/lib/aspen'\n"
               "listen-client-urls:\n"
               "  - http://10.0.0.1:2379\n"
               "  - \"https://[::1]:2379\"\n"
               "listen-peer-urls: [10.0.0.1:2380, 10.0.0.2:2380]\n"
               "listen-metrics-urls: []\n"
               "init: yes\n"
               "snapshot-count: 5000\n"
               "log-level: debug\n"
               "...\n");
    CHECK_MSG(load(&cfg, argv, no_env) == 0, "%s", err);
    CHECK_STR_EQ(cfg.name, "quoted: value");
    CHECK_STR_EQ(cfg.data_dir, "/var/lib/aspen");
    CHECK_EQ(cfg.listen_client_urls.count, 2);
    CHECK_STR_EQ(cfg.listen_client_urls.items[1].host, "::1");
    CHECK_EQ(cfg.listen_peer_urls.count, 2);
    CHECK_EQ(cfg.listen_metrics_urls.count, 0);
    CHECK_EQ(cfg.source[CONFIG_LISTEN_METRICS_URLS], CONFIG_SOURCE_FILE);
    CHECK(cfg.init);
    CHECK_EQ(cfg.snapshot_count, 5000);
    CHECK_EQ(cfg.log_level, LOG_LEVEL_DEBUG);
    /* Empty files and empty documents set nothing. */
    static const char *const empties[] = {"", "# only a comment\n", "---\n", "{}\n", "~\n"};
    for (size_t i = 0; i < 5; i++) {
        write_yaml(empties[i]);
        CHECK_MSG(load(&cfg, argv, no_env) == 0, "\"%s\": %s", empties[i], err);
        CHECK_EQ(cfg.source[CONFIG_NAME], CONFIG_SOURCE_DEFAULT);
    }
    remove_dir();
}

struct yaml_case {
    const char *text;
    int rc;
    const char *msg; /* FILE stands for the path */
};

static const struct yaml_case bad_yaml[] = {
    {"name: a\nlisen-client-urls: http://x:1\n", ASPEN_E_INVALID,
     "config: FILE line 2: unknown setting \"lisen-client-urls\" (did you mean "
     "\"listen-client-urls\"?)"},
    {"bogus: 1\n", ASPEN_E_INVALID, "config: FILE line 1: unknown setting \"bogus\""},
    {"config-file: other.yaml\n", ASPEN_E_INVALID,
     "config: FILE line 1: config-file cannot be set inside a config file"},
    {"name: a\nname: b\n", ASPEN_E_INVALID,
     "config: FILE line 2: name is set twice (first on line 1)"},
    {"heartbeat-interval: abc\n", ASPEN_E_INVALID,
     "config: FILE line 1: heartbeat-interval: \"abc\": not a whole number of milliseconds"},
    {"\n\nheartbeat-interval: \"250\"\n", ASPEN_E_INVALID,
     "config: heartbeat-interval 250 ms (file) is more than a third of election-timeout 500 ms "
     "(default of raft-profile balanced): followers must miss several heartbeats before they "
     "start an election"},
    {"name:\n", ASPEN_E_INVALID,
     "config: FILE line 1: name has no value (write \"\" for an empty string)"},
    {"join: ~\n", ASPEN_E_INVALID,
     "config: FILE line 1: join has no value (write \"\" for an empty string)"},
    {"raft:\n  profile: fast\n", ASPEN_E_INVALID, "config: FILE line 1: unknown setting \"raft\""},
    {"name:\n  first: a\n", ASPEN_E_INVALID,
     "config: FILE line 2: name: nested mappings are not supported (settings are one flat list "
     "of name: value)"},
    {"name: [a, b]\n", ASPEN_E_INVALID,
     "config: FILE line 1: name takes a single value, not a list"},
    {"listen-client-urls:\n  - http://a:1\n  - [http://b:2]\n", ASPEN_E_INVALID,
     "config: FILE line 3: listen-client-urls: a list item must be a plain value"},
    {"listen-client-urls:\n  - http://a:1\n  - ftp://b:2\n", ASPEN_E_INVALID,
     "config: FILE line 3: listen-client-urls: \"ftp://b:2\": the scheme must be http or https"},
    {"listen-client-urls: []\n", ASPEN_E_INVALID,
     "config: FILE line 1: listen-client-urls: \"[]\": at least one address is needed"},
    {"name: &n x\njoin: *n\n", ASPEN_E_INVALID,
     "config: FILE line 1: anchors (&n) are not supported"},
    {"join: *n\n", ASPEN_E_INVALID, "config: FILE line 1: aliases (*n) are not supported"},
    {"name: !!str x\n", ASPEN_E_INVALID,
     "config: FILE line 1: tags (tag:yaml.org,2002:str) are not supported"},
    {"- name\n- data-dir\n", ASPEN_E_INVALID,
     "config: FILE line 1: the file must be a mapping of settings (name: value)"},
    {"just a sentence\n", ASPEN_E_INVALID,
     "config: FILE line 1: the file must be a mapping of settings (name: value)"},
    {"[name]: x\n", ASPEN_E_INVALID, "config: FILE line 1: a setting name must be a plain word"},
    {"name: a\n---\nname: b\n", ASPEN_E_INVALID,
     "config: FILE line 2: more than one YAML document"},
    {"name: \"unterminated\n", ASPEN_E_MALFORMED,
     "config: FILE line 2: not valid YAML: found unexpected end of stream while scanning a "
     "quoted scalar"},
    {"name: a\n  data-dir: b\n", ASPEN_E_MALFORMED,
     "config: FILE line 2: not valid YAML: mapping values are not allowed in this context"},
    {"name: \"tab\\there\"\n", ASPEN_E_INVALID,
     "config: FILE line 1: name: \"tab\\x09here\": contains a control character"},
};

static void test_bad_yaml(void)
{
    make_dir();
    char *argv[] = {"aspen-node", "--config-file", path, NULL};
    for (size_t i = 0; i < sizeof(bad_yaml) / sizeof(bad_yaml[0]); i++) {
        write_yaml(bad_yaml[i].text);
        int rc = load(&cfg, argv, no_env);
        const char *want = with_path(bad_yaml[i].msg);
        CHECK_MSG(rc == bad_yaml[i].rc, "case %zu: rc %s, want %s (%s)", i, aspen_err_name(rc),
                  aspen_err_name(bad_yaml[i].rc), err);
        CHECK_MSG(strcmp(err, want) == 0, "case %zu:\n      got  %s\n      want %s", i, err, want);
    }
    remove_dir();
}

static void test_file_limits(void)
{
    make_dir();
    char *argv[] = {"aspen-node", "--config-file", path, NULL};
    /* One byte over the limit (sparse, so the test writes almost nothing). */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, (off_t)ASPEN_MAX_CONFIG_FILE_BYTES + 1) == 0);
    close(fd);
    CHECK_ERR(load(&cfg, argv, no_env), ASPEN_E_TOO_LARGE);
    char want[256];
    snprintf(want, sizeof(want), "config: %s: 10485761 bytes, more than the 10485760-byte limit",
             path);
    CHECK_STR_EQ(err, want);
    /* A directory is not a config file. */
    char *argv_dir[] = {"aspen-node", "--config-file", dir, NULL};
    CHECK_ERR(load(&cfg, argv_dir, no_env), ASPEN_E_INVALID);
    snprintf(want, sizeof(want), "config: %s: not a regular file", dir);
    CHECK_STR_EQ(err, want);
    remove_dir();
}

/* ---- Printing ---- */

static const char default_print[] =
    "# aspen-node configuration; the comment on each line names the source of its value\n"
    "name: \"default\"  # default\n"
    "data-dir: \"./aspen-data\"  # default\n"
    "listen-client-urls: \"http://127.0.0.1:2379\"  # default\n"
    "advertise-client-urls: \"http://127.0.0.1:2379\"  # default: same as listen-client-urls\n"
    "listen-peer-urls: \"127.0.0.1:2380\"  # default\n"
    "advertise-peer-urls: \"127.0.0.1:2380\"  # default: same as listen-peer-urls\n"
    "listen-metrics-urls: \"\"  # default\n"
    "raft-profile: balanced  # default\n"
    "heartbeat-interval: 100  # default of raft-profile balanced\n"
    "election-timeout: 500  # default of raft-profile balanced\n"
    "init: false  # default\n"
    "join: \"\"  # default\n"
    "join-credential: \"\"  # default\n"
    "auto-promote: true  # default\n"
    "snapshot-count: 10000  # default\n"
    "quota-backend-bytes: 2147483648  # default\n"
    "log-level: info  # default\n"
    "log-format: logfmt  # default\n"
    "max-request-bytes: 1572864  # default\n";

static void test_print_defaults(void)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    CHECK_OK(load(&cfg, no_args, no_env));
    CHECK_OK(config_print(&cfg, &b));
    CHECK_OK(buf_append_u8(&b, 0));
    CHECK_STR_EQ((const char *)b.data, default_print);
    buf_release(&b);
}

/* Prints c, loads the text back as a config file, and checks the values are equal. */
static int round_trip(const struct node_config *c, struct buf *b)
{
    buf_clear(b);
    if (config_print(c, b) != 0)
        return -1;
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fwrite(b->data, 1, b->len, f);
    fclose(f);
    char *argv[] = {"aspen-node", "--config-file", path, NULL};
    int rc = load(&cfg2, argv, no_env);
    if (rc != 0) {
        printf("    reload failed: %s\n", err);
        return rc;
    }
    return config_equal(c, &cfg2) ? 0 : 1;
}

static void test_print_round_trip(void)
{
    make_dir();
    struct buf b;
    buf_init(&b, 1 << 20);
    CHECK_OK(load(&cfg, no_args, no_env));
    CHECK_EQ(round_trip(&cfg, &b), 0);
    for (int i = 0; i < CONFIG_SETTING_COUNT; i++)
        CHECK_EQ(cfg2.source[i], CONFIG_SOURCE_FILE); /* every setting was read back */

    /* Every source at once, values that need quoting and escaping included. */
    char conf[160];
    snprintf(conf, sizeof(conf), "%s/base.yaml", dir);
    FILE *f = fopen(conf, "w");
    CHECK(f != NULL);
    fputs("snapshot-count: 12345\nlisten-peer-urls: [\"[::1]:7000\", 10.0.0.1:7001]\n", f);
    fclose(f);
    char env_file[200];
    snprintf(env_file, sizeof(env_file), "ASPEN_CONFIG_FILE=%s", conf);
    CHECK_MSG(load(&cfg,
                   ARGV("--name=n\"o\\d:e #1 \xc3\xa9\xe2\x82\xac\xf0\x9f\x8c\xb2",
                        "--raft-profile=fast", "--election-timeout=150", "--join=t:abc",
                        "--listen-metrics-urls=https://m.example:9100,http://[::1]:9101"),
                   ENV(env_file, "ASPEN_DATA_DIR=/var/lib/a b", "ASPEN_LOG_LEVEL=error",
                       "ASPEN_AUTO_PROMOTE=false", "ASPEN_QUOTA_BACKEND_BYTES=16777216")) == 0,
              "%s", err);
    CHECK_EQ(cfg.source[CONFIG_SNAPSHOT_COUNT], CONFIG_SOURCE_FILE);
    CHECK_EQ(cfg.source[CONFIG_DATA_DIR], CONFIG_SOURCE_ENV);
    CHECK_EQ(cfg.source[CONFIG_NAME], CONFIG_SOURCE_FLAG);
    CHECK_EQ(round_trip(&cfg, &b), 0);
    CHECK_OK(buf_append_u8(&b, 0));
    const char *text = (const char *)b.data;
    bool ok = strstr(text, "name: \"n\\\"o\\\\d:e #1 \\u00e9\\u20ac\\U0001f332\"  # flag\n") &&
              strstr(text, "snapshot-count: 12345  # file\n") &&
              strstr(text, "data-dir: \"/var/lib/a b\"  # env\n") &&
              strstr(text, "heartbeat-interval: 30  # default of raft-profile fast\n") &&
              strstr(text, "election-timeout: 150  # flag\n") &&
              strstr(text, "listen-peer-urls: \"[::1]:7000,10.0.0.1:7001\"  # file\n") &&
              strstr(text, "# config file: \"");
    if (!ok)
        test_fail(__FILE__, __LINE__, "printed:\n%s", text);
    CHECK_EQ(cfg2.election_timeout_max_ms, 300);
    unlink(conf);
    buf_release(&b);
    remove_dir();
}

static void test_print_hides_secret(void)
{
    make_dir();
    struct buf b;
    buf_init(&b, 1 << 20);
    CHECK_OK(load(&cfg, ARGV("--join=ticket-1"), ENV("ASPEN_JOIN_CREDENTIAL=hunter2")));
    CHECK_STR_EQ(cfg.join_credential, "hunter2");
    CHECK_OK(config_print(&cfg, &b));
    CHECK_OK(buf_append_u8(&b, 0));
    const char *text = (const char *)b.data;
    CHECK(strstr(text, "hunter2") == NULL);
    CHECK(strstr(text, "join-credential: \"\"  # env (set; secret, not printed)\n") != NULL);
    /* Everything but the secret survives the round trip. */
    CHECK_EQ(round_trip(&cfg, &b), 1);
    CHECK_STR_EQ(cfg2.join_credential, "");
    memcpy(cfg2.join_credential, "hunter2", 8);
    CHECK(config_equal(&cfg, &cfg2));
    buf_release(&b);
    remove_dir();
}

static void test_equal_compares_values(void)
{
    CHECK_OK(load(&cfg, no_args, no_env));
    CHECK_OK(load(&cfg2, ARGV("--name=default"), no_env)); /* same value, other source */
    CHECK(config_equal(&cfg, &cfg2));
    CHECK_OK(load(&cfg2, ARGV("--listen-metrics-urls=http://a:1"), no_env));
    CHECK(!config_equal(&cfg, &cfg2));
    CHECK_OK(load(&cfg2, ARGV("--log-level=warn"), no_env));
    CHECK(!config_equal(&cfg, &cfg2));
    CHECK_OK(load(&cfg2, ARGV("--election-timeout=500"), no_env)); /* max 1000 either way */
    CHECK(config_equal(&cfg, &cfg2));
}

static void test_out_of_memory(void)
{
    make_dir();
    write_yaml("name: x\n");
    char *argv[] = {"aspen-node", "--config-file", path, NULL};
    for (uint64_t n = 1; n < 4; n++) {
        mem_fail_at(n, 0);
        int rc = load(&cfg, argv, no_env);
        mem_fail_at(0, 0);
        CHECK(rc == 0 || rc == ASPEN_E_NOMEM);
    }
    remove_dir();
}

static const struct test_case tests[] = {
    TEST(test_defaults),
    TEST(test_precedence_every_combination),
    TEST(test_config_file_path_precedence),
    TEST(test_flag_forms),
    TEST(test_help_reads_nothing_else),
    TEST(test_endpoints),
    TEST(test_bad_values),
    TEST(test_secret_not_in_messages),
    TEST(test_long_values),
    TEST(test_profiles_and_overrides),
    TEST(test_yaml_forms),
    TEST(test_bad_yaml),
    TEST(test_file_limits),
    TEST(test_print_defaults),
    TEST(test_print_round_trip),
    TEST(test_print_hides_secret),
    TEST(test_equal_compares_values),
    TEST(test_out_of_memory),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("node_config", tests);
}
