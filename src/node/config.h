/*
 * config.h — aspen-node's configuration: the effective value of every setting and where
 * each one came from.
 *
 * Four sources, the later overriding the earlier: built-in defaults, a YAML config file
 * (--config-file or ASPEN_CONFIG_FILE), ASPEN_* environment variables, command-line flags.
 * One table in config.c lists every setting once, and drives all of them: the flag
 * `--listen-client-urls`, the YAML key `listen-client-urls`, the variable
 * `ASPEN_LISTEN_CLIENT_URLS`, --print-config and --help. Names follow etcd's flags where
 * etcd has one, so an etcd operator finds what they expect.
 *
 * Everything is strict: an unknown flag, key or ASPEN_ variable is an error (with a
 * did-you-mean), and so is a value that does not parse, a YAML file that is not a flat
 * mapping of scalars, or settings that contradict each other. Every message names the
 * setting and its source, e.g.
 *     config: ASPEN_HEARTBEAT_INTERVAL="abc": not a whole number of milliseconds
 *     config: /etc/aspen.yaml line 3: unknown setting "lisen-client-urls" (did you mean ...)
 *
 * The loader reads the config file and otherwise touches nothing of the process: the
 * arguments and the environment come in as arrays, so tests pass their own.
 */
#ifndef ASPEN_NODE_CONFIG_H
#define ASPEN_NODE_CONFIG_H

#include "base/buf.h"
#include "base/constants.h"
#include "base/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where a setting's value came from, in increasing precedence. */
enum config_source {
    CONFIG_SOURCE_DEFAULT,
    CONFIG_SOURCE_FILE,
    CONFIG_SOURCE_ENV,
    CONFIG_SOURCE_FLAG,
};

/* Every setting, in the order --print-config and --help list them. */
enum config_setting {
    CONFIG_NAME,
    CONFIG_DATA_DIR,
    CONFIG_LISTEN_CLIENT_URLS,
    CONFIG_ADVERTISE_CLIENT_URLS,
    CONFIG_LISTEN_PEER_URLS,
    CONFIG_ADVERTISE_PEER_URLS,
    CONFIG_LISTEN_METRICS_URLS,
    CONFIG_RAFT_PROFILE,
    CONFIG_HEARTBEAT_INTERVAL,
    CONFIG_ELECTION_TIMEOUT,
    CONFIG_INIT,
    CONFIG_JOIN,
    CONFIG_JOIN_CREDENTIAL,
    CONFIG_AUTO_PROMOTE,
    CONFIG_SNAPSHOT_COUNT,
    CONFIG_QUOTA_BACKEND_BYTES,
    CONFIG_LOG_LEVEL,
    CONFIG_LOG_FORMAT,
    CONFIG_MAX_REQUEST_BYTES,
    CONFIG_SETTING_COUNT
};

/* Raft timing profiles (constants.h ASPEN_RAFT_<PROFILE>_*). */
enum config_raft_profile {
    CONFIG_RAFT_CONSERVATIVE,
    CONFIG_RAFT_BALANCED,
    CONFIG_RAFT_FAST,
};

enum config_log_format {
    CONFIG_LOG_FORMAT_LOGFMT,
};

/* Client and metrics endpoints are URLs; peers speak TLS with raw public keys, so a peer
 * endpoint is a bare host:port. */
enum config_scheme {
    CONFIG_SCHEME_NONE, /* host:port */
    CONFIG_SCHEME_HTTP,
    CONFIG_SCHEME_HTTPS,
};

/* One parsed endpoint. host is an IPv4 dotted quad, an IPv6 address (without its
 * brackets) or a DNS name. */
struct config_endpoint {
    enum config_scheme scheme;
    bool is_ipv6;
    uint16_t port; /* 1..65535 */
    char host[ASPEN_NODE_CONFIG_HOST_MAX_BYTES];
    char text[ASPEN_NODE_CONFIG_URL_MAX_BYTES]; /* as written: "http://[::1]:2379" */
};

struct config_endpoints {
    uint32_t count;
    struct config_endpoint items[ASPEN_NODE_CONFIG_MAX_URLS];
};

/* The effective configuration. Plain data: no pointers, nothing to release. */
struct node_config {
    char name[ASPEN_NODE_CONFIG_VALUE_MAX_BYTES];
    char data_dir[ASPEN_NODE_CONFIG_VALUE_MAX_BYTES];
    struct config_endpoints listen_client_urls;
    struct config_endpoints advertise_client_urls; /* default: listen_client_urls */
    struct config_endpoints listen_peer_urls;
    struct config_endpoints advertise_peer_urls; /* default: listen_peer_urls */
    struct config_endpoints listen_metrics_urls; /* empty: served on the client port */
    enum config_raft_profile raft_profile;
    uint64_t heartbeat_interval_ms;   /* effective: the profile's unless overridden */
    uint64_t election_timeout_ms;     /* effective minimum; elections draw from [min, max] */
    uint64_t election_timeout_max_ms; /* derived: the profile's, or 2 * an override */
    bool init;                        /* form a new cluster */
    char join[ASPEN_NODE_CONFIG_VALUE_MAX_BYTES]; /* ticket of a cluster to join, or "" */
    char join_credential[ASPEN_NODE_CONFIG_VALUE_MAX_BYTES]; /* secret: never printed */
    bool auto_promote;
    uint64_t snapshot_count;
    uint64_t quota_backend_bytes;
    enum log_level log_level;
    enum config_log_format log_format;
    uint64_t max_request_bytes;

    enum config_source source[CONFIG_SETTING_COUNT];

    /* What the command line asked for besides settings. */
    char config_file[ASPEN_NODE_CONFIG_VALUE_MAX_BYTES]; /* the file read, or "" */
    bool print_config;                                   /* --print-config */
    bool show_help; /* --help: nothing but the flags was read */
};

/* Builds the configuration from argv (argv[0] is the program and is skipped), envp (a
 * NULL-terminated "NAME=value" array: `environ` in production) and the config file they
 * name. Flags take `--name=value` or `--name value`; boolean flags `--init` or
 * `--init=false`. --help stops after the flags: *cfg then holds defaults and show_help.
 *
 * ASPEN_ variables that are not settings are refused, except ASPEN_CONFIG_FILE, the test
 * harness's ASPEN_TEST_*, ASPEN_BENCH_*, ASPEN_CRASH_* and ASPEN_CODEC_CORPUS_DIR.
 *
 * Returns 0, or an error with a one-line message in err (NUL-terminated, cut to errlen):
 * ASPEN_E_INVALID (a bad name or value, or contradicting settings), ASPEN_E_MALFORMED (the
 * YAML does not parse), ASPEN_E_TOO_LARGE (the file exceeds ASPEN_MAX_CONFIG_FILE_BYTES),
 * ASPEN_E_NOMEM, or -errno from reading the file. *cfg is unspecified after an error. */
int config_load(struct node_config *cfg, int argc, char *const *argv, char *const *envp, char *err,
                size_t errlen);

/* Appends cfg as YAML that config_load reads back to the same values, one setting per
 * line, each with a trailing comment naming its source ("# flag"). The join credential is
 * a secret: it is printed as "" with a comment saying it was set. 0, ASPEN_E_TOO_LARGE or
 * ASPEN_E_NOMEM (out then holds what was appended before the failure). */
int config_print(const struct node_config *cfg, struct buf *out);

/* Appends the --help text: usage, then every setting with its flag, variable, default
 * and meaning, generated from the same table. Same errors as config_print. */
int config_help(struct buf *out);

/* True when a and b hold the same value for every setting. Sources and the command-line
 * fields (config_file, print_config, show_help) are not compared. */
bool config_equal(const struct node_config *a, const struct node_config *b);

/* "default", "file", "env" or "flag". */
const char *config_source_name(enum config_source source);

#endif
