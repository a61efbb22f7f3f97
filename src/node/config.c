/*
 * config.c — aspen-node's configuration (config.h).
 *
 * The file reads top to bottom as: the settings table (one row per setting; everything
 * else walks it), the value parsers (text in, value or a reason out, no I/O), the sources
 * in precedence order (defaults, the YAML file through libyaml's event parser, the
 * environment, the flags), the rules across settings, then printing and help.
 *
 * libyaml allocates with malloc, outside base/mem.h: it has no allocator hook. Everything
 * it allocates is freed before config_load returns.
 */
#include "node/config.h"

#include "base/assert.h"
#include "base/mem.h"
#include <aspen/error.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* ---------------------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------------------- */

enum type {
    T_STRING, /* char[size] */
    T_URLS,   /* struct config_endpoints of http(s):// URLs */
    T_PEERS,  /* struct config_endpoints of host:port */
    T_BOOL,   /* bool */
    T_UINT,   /* uint64_t within [min, max] */
    T_CHOICE, /* an enum whose values are the indexes of `choices` */
};

struct setting {
    const char *name; /* flag and YAML key; the variable is ASPEN_ + upper snake case */
    enum type type;
    size_t offset, size;        /* of the field in struct node_config */
    uint64_t min, max;          /* T_UINT: bounds; T_STRING: min length; lists: min count */
    const char *unit;           /* T_UINT: "milliseconds", "bytes" or NULL */
    const char *const *choices; /* T_CHOICE: NULL-terminated names */
    const char *def_text;       /* default as input (T_STRING, lists, T_CHOICE) */
    uint64_t def_num;           /* default of T_BOOL and T_UINT */
    const char *derived_from;   /* the default is computed from this setting instead */
    bool is_secret;             /* never printed, nor shown in error messages */
    const char *arg;            /* placeholder in --help */
    const char *help;
};

#define AT(field)                                                                                  \
    .offset = offsetof(struct node_config, field), .size = sizeof(((struct node_config *)0)->field)

static const char *const profile_names[] = {"conservative", "balanced", "fast", NULL};
static const char *const level_names[] = {"trace", "debug", "info", "warn", "error", NULL};
static const char *const format_names[] = {"logfmt", NULL};

/* T_CHOICE fields are written and read as unsigned int (memcpy): each enum must be that
 * size, and the choice lists must follow the enums' order. */
_Static_assert(sizeof(enum config_raft_profile) == sizeof(unsigned), "choice enum size");
_Static_assert(sizeof(enum log_level) == sizeof(unsigned), "choice enum size");
_Static_assert(sizeof(enum config_log_format) == sizeof(unsigned), "choice enum size");
_Static_assert(CONFIG_RAFT_CONSERVATIVE == 0 && CONFIG_RAFT_BALANCED == 1 && CONFIG_RAFT_FAST == 2,
               "profile_names follows enum config_raft_profile");
_Static_assert(LOG_LEVEL_TRACE == 0 && LOG_LEVEL_DEBUG == 1 && LOG_LEVEL_INFO == 2 &&
                   LOG_LEVEL_WARN == 3 && LOG_LEVEL_ERROR == 4,
               "level_names follows enum log_level");

static const struct setting settings[CONFIG_SETTING_COUNT] = {
    [CONFIG_NAME] = {.name = "name",
                     .type = T_STRING,
                     AT(name),
                     .min = 1,
                     .def_text = "default",
                     .arg = "NAME",
                     .help = "Human-readable name of this member (logs, member lists)."},
    [CONFIG_DATA_DIR] = {.name = "data-dir",
                         .type = T_STRING,
                         AT(data_dir),
                         .min = 1,
                         .def_text = "./aspen-data",
                         .arg = "DIR",
                         .help = "Directory of the node's identity key and data files."},
    [CONFIG_LISTEN_CLIENT_URLS] = {.name = "listen-client-urls",
                                   .type = T_URLS,
                                   AT(listen_client_urls),
                                   .min = 1,
                                   .def_text = "http://127.0.0.1:2379",
                                   .arg = "URLS",
                                   .help = "URLs to serve the client API on (comma-separated)."},
    [CONFIG_ADVERTISE_CLIENT_URLS] = {.name = "advertise-client-urls",
                                      .type = T_URLS,
                                      AT(advertise_client_urls),
                                      .min = 1,
                                      .derived_from = "listen-client-urls",
                                      .arg = "URLS",
                                      .help = "Client URLs this member tells the cluster about."},
    [CONFIG_LISTEN_PEER_URLS] = {.name = "listen-peer-urls",
                                 .type = T_PEERS,
                                 AT(listen_peer_urls),
                                 .min = 1,
                                 .def_text = "127.0.0.1:2380",
                                 .arg = "HOST:PORTS",
                                 .help = "Addresses to accept peers on (TLS with raw public "
                                         "keys, so host:port, comma-separated)."},
    [CONFIG_ADVERTISE_PEER_URLS] = {.name = "advertise-peer-urls",
                                    .type = T_PEERS,
                                    AT(advertise_peer_urls),
                                    .min = 1,
                                    .derived_from = "listen-peer-urls",
                                    .arg = "HOST:PORTS",
                                    .help = "Peer addresses this member tells the cluster about."},
    [CONFIG_LISTEN_METRICS_URLS] = {.name = "listen-metrics-urls",
                                    .type = T_URLS,
                                    AT(listen_metrics_urls),
                                    .min = 0,
                                    .def_text = "",
                                    .arg = "URLS",
                                    .help = "Extra URLs serving /metrics and /health; empty: "
                                            "they are served on the client port."},
    [CONFIG_RAFT_PROFILE] = {.name = "raft-profile",
                             .type = T_CHOICE,
                             AT(raft_profile),
                             .choices = profile_names,
                             .def_text = "balanced",
                             .help = "Raft timing: heartbeat / election timeouts of 500 / "
                                     "1500-3000, 100 / 500-1000 or 30 / 100-200 ms."},
    [CONFIG_HEARTBEAT_INTERVAL] = {.name = "heartbeat-interval",
                                   .type = T_UINT,
                                   AT(heartbeat_interval_ms),
                                   .min = ASPEN_NODE_MIN_HEARTBEAT_MS,
                                   .max = ASPEN_NODE_MAX_ELECTION_TIMEOUT_MS / 3,
                                   .unit = "milliseconds",
                                   .derived_from = "raft-profile",
                                   .arg = "MS",
                                   .help = "Override the profile's heartbeat interval; at most "
                                           "a third of the election timeout."},
    [CONFIG_ELECTION_TIMEOUT] = {.name = "election-timeout",
                                 .type = T_UINT,
                                 AT(election_timeout_ms),
                                 .min = ASPEN_NODE_MIN_ELECTION_TIMEOUT_MS,
                                 .max = ASPEN_NODE_MAX_ELECTION_TIMEOUT_MS,
                                 .unit = "milliseconds",
                                 .derived_from = "raft-profile",
                                 .arg = "MS",
                                 .help = "Override the profile's minimum election timeout t; "
                                         "elections then wait between t and 2t."},
    [CONFIG_INIT] = {.name = "init",
                     .type = T_BOOL,
                     AT(init),
                     .def_num = 0,
                     .help = "Form a new cluster with this node as its first member."},
    [CONFIG_JOIN] = {.name = "join",
                     .type = T_STRING,
                     AT(join),
                     .def_text = "",
                     .arg = "TICKET",
                     .help = "Ticket of an existing cluster to join."},
    [CONFIG_JOIN_CREDENTIAL] = {.name = "join-credential",
                                .type = T_STRING,
                                AT(join_credential),
                                .def_text = "",
                                .is_secret = true,
                                .arg = "SECRET",
                                .help = "Credential presented when joining (never printed)."},
    [CONFIG_AUTO_PROMOTE] = {.name = "auto-promote",
                             .type = T_BOOL,
                             AT(auto_promote),
                             .def_num = 1,
                             .help = "Promote this node from learner to voter once it has "
                                     "caught up."},
    [CONFIG_SNAPSHOT_COUNT] = {.name = "snapshot-count",
                               .type = T_UINT,
                               AT(snapshot_count),
                               .min = ASPEN_NODE_MIN_SNAPSHOT_COUNT,
                               .max = ASPEN_NODE_MAX_SNAPSHOT_COUNT,
                               .def_num = ASPEN_NODE_DEFAULT_SNAPSHOT_COUNT,
                               .arg = "N",
                               .help = "Applied entries between two snapshots."},
    [CONFIG_QUOTA_BACKEND_BYTES] = {.name = "quota-backend-bytes",
                                    .type = T_UINT,
                                    AT(quota_backend_bytes),
                                    .min = ASPEN_NODE_MIN_QUOTA_BACKEND_BYTES,
                                    .max = ASPEN_NODE_MAX_QUOTA_BACKEND_BYTES,
                                    .unit = "bytes",
                                    .def_num = ASPEN_NODE_DEFAULT_QUOTA_BACKEND_BYTES,
                                    .arg = "BYTES",
                                    .help = "Size of the store beyond which writes raise the "
                                            "space alarm."},
    [CONFIG_LOG_LEVEL] = {.name = "log-level",
                          .type = T_CHOICE,
                          AT(log_level),
                          .choices = level_names,
                          .def_text = "info",
                          .help = "Lowest level of log lines written."},
    [CONFIG_LOG_FORMAT] = {.name = "log-format",
                           .type = T_CHOICE,
                           AT(log_format),
                           .choices = format_names,
                           .def_text = "logfmt",
                           .help = "Log line format."},
    [CONFIG_MAX_REQUEST_BYTES] = {.name = "max-request-bytes",
                                  .type = T_UINT,
                                  AT(max_request_bytes),
                                  .min = ASPEN_NODE_MIN_REQUEST_BYTES,
                                  .max = ASPEN_MAX_REQUEST_BYTES,
                                  .unit = "bytes",
                                  .def_num = ASPEN_MAX_REQUEST_BYTES,
                                  .arg = "BYTES",
                                  .help = "Largest client request accepted."},
};

/* Flags that are not settings, offered by did-you-mean and listed by --help. */
static const char *const command_flags[] = {"config-file", "print-config", "help", NULL};

/* ASPEN_ variables that are not settings and are left alone: the config file's path, and
 * the test and benchmark harnesses' knobs, which a developer's shell may well export. */
static const char *const env_exact_allowed[] = {"CONFIG_FILE", "CODEC_CORPUS_DIR", NULL};
static const char *const env_prefix_allowed[] = {"TEST_", "BENCH_", "CRASH_", NULL};

struct profile_timing {
    uint64_t heartbeat_ms, election_min_ms, election_max_ms;
};

static const struct profile_timing profile_timings[] = {
    [CONFIG_RAFT_CONSERVATIVE] = {ASPEN_RAFT_CONSERVATIVE_HEARTBEAT_MS,
                                  ASPEN_RAFT_CONSERVATIVE_ELECTION_MIN_MS,
                                  ASPEN_RAFT_CONSERVATIVE_ELECTION_MAX_MS},
    [CONFIG_RAFT_BALANCED] = {ASPEN_RAFT_BALANCED_HEARTBEAT_MS, ASPEN_RAFT_BALANCED_ELECTION_MIN_MS,
                              ASPEN_RAFT_BALANCED_ELECTION_MAX_MS},
    [CONFIG_RAFT_FAST] = {ASPEN_RAFT_FAST_HEARTBEAT_MS, ASPEN_RAFT_FAST_ELECTION_MIN_MS,
                          ASPEN_RAFT_FAST_ELECTION_MAX_MS},
};

static void *field_of(struct node_config *cfg, const struct setting *s)
{
    return (char *)cfg + s->offset;
}

static const void *cfield_of(const struct node_config *cfg, const struct setting *s)
{
    return (const char *)cfg + s->offset;
}

static unsigned choice_get(const struct node_config *cfg, const struct setting *s)
{
    unsigned v;
    memcpy(&v, cfield_of(cfg, s), sizeof(v));
    return v;
}

/* ---------------------------------------------------------------------------------------
 * Value parsers: text in, value out, or ASPEN_E_INVALID with a reason in why.
 * ------------------------------------------------------------------------------------- */

static int reason(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int reason(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return ASPEN_E_INVALID;
}

/* Decimal digits only: no sign, no spaces, no base prefixes. 0, or -1 when it is not a
 * number, or -2 when it does not fit 64 bits. */
static int parse_u64(const char *t, size_t len, uint64_t *out)
{
    if (len == 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] < '0' || t[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(t[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_bool(const char *t, bool *out)
{
    static const char *const yes[] = {"true", "yes", "1"};
    static const char *const no[] = {"false", "no", "0"};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(t, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(t, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF) without
 * control characters: a value with a newline or an escape sequence in it is a mistake. */
static bool text_is_clean(const char *t, size_t len, const char **problem)
{
    const uint8_t *p = (const uint8_t *)t;
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c < 0x20 || c == 0x7f) {
            *problem = "contains a control character";
            return false;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1, cp = c & 0x1fu, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2, cp = c & 0x0fu, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3, cp = c & 0x07u, min = 0x10000;
        } else {
            goto bad;
        }
        if (len - i <= n)
            goto bad;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                goto bad;
            cp = (cp << 6) | (p[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            goto bad;
        if (cp < 0xa0) { /* C1 control characters */
            *problem = "contains a control character";
            return false;
        }
        i += n + 1;
    }
    return true;
bad:
    *problem = "is not valid UTF-8";
    return false;
}

/* An RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. */
static bool is_hostname(const char *h, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char c = h[i];
        if (c == '.') {
            if (label == 0 || h[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c == '-' && label > 0);
        if (!ok || ++label > 63)
            return false;
    }
    return label > 0 && h[len - 1] != '-';
}

/* Parses one endpoint, t[0..len): a URL "http(s)://host:port" when is_url, otherwise a
 * bare "host:port". Nothing may follow the port: no path, query or user part. */
static int parse_endpoint(const char *t, size_t len, bool is_url, struct config_endpoint *ep,
                          char *why, size_t whylen)
{
    memset(ep, 0, sizeof(*ep));
    if (len >= sizeof(ep->text))
        return reason(why, whylen, "longer than the %zu-byte limit of an address",
                      sizeof(ep->text) - 1);
    memcpy(ep->text, t, len);
    ep->text[len] = '\0';
    const char *s = ep->text;
    const char *sep = strstr(s, "://");
    if (is_url) {
        if (strncmp(s, "http://", 7) == 0) {
            ep->scheme = CONFIG_SCHEME_HTTP;
            s += 7;
        } else if (strncmp(s, "https://", 8) == 0) {
            ep->scheme = CONFIG_SCHEME_HTTPS;
            s += 8;
        } else if (sep) {
            return reason(why, whylen, "the scheme must be http or https");
        } else {
            return reason(why, whylen, "not a URL: write http://host:port or https://host:port");
        }
    } else {
        ep->scheme = CONFIG_SCHEME_NONE;
        if (sep)
            return reason(why, whylen,
                          "peer addresses are host:port without a scheme (peers speak TLS "
                          "with raw public keys)");
    }
    const char *bad = strpbrk(s, "/?#@ \t");
    if (bad)
        return reason(why, whylen, "unexpected '%c': only host:port may follow the scheme", *bad);

    const char *host, *colon;
    size_t host_len;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return reason(why, whylen, "'[' without a closing ']'");
        host = s + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
        if (*colon != ':')
            return reason(why, whylen, "missing :port after the address");
        ep->is_ipv6 = true;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return reason(why, whylen, "missing :port");
        host = s;
        host_len = (size_t)(colon - s);
        if (memchr(host, ':', host_len))
            return reason(why, whylen, "an IPv6 address needs brackets: [::1]:2379");
    }
    if (host_len == 0)
        return reason(why, whylen, "missing host");
    if (host_len >= sizeof(ep->host))
        return reason(why, whylen, "the host is longer than 253 bytes");
    memcpy(ep->host, host, host_len);
    ep->host[host_len] = '\0';

    const char *port = colon + 1;
    uint64_t pv = 0;
    if (port[0] == '0' || parse_u64(port, strlen(port), &pv) != 0 || pv < 1 || pv > 65535)
        return reason(why, whylen, "the port must be a number from 1 to 65535");
    ep->port = (uint16_t)pv;

    unsigned char addr[16];
    if (ep->is_ipv6) {
        if (inet_pton(AF_INET6, ep->host, addr) != 1)
            return reason(why, whylen, "\"%s\" is not an IPv6 address", ep->host);
        return 0;
    }
    if (strspn(ep->host, "0123456789.") == host_len) {
        /* All digits and dots: an IPv4 address or nothing (no host name is all-numeric).
         * inet_pton takes exactly four decimal parts, without leading zeros. */
        if (inet_pton(AF_INET, ep->host, addr) != 1)
            return reason(why, whylen, "\"%s\" is not an IPv4 address", ep->host);
        return 0;
    }
    if (!is_hostname(ep->host, host_len))
        return reason(why, whylen, "\"%s\" is not a valid host name", ep->host);
    return 0;
}

static bool endpoint_same(const struct config_endpoint *a, const struct config_endpoint *b)
{
    return a->scheme == b->scheme && a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* Adds one element to a list. quote names the element in the reason (lists of several). */
static int endpoints_add(const struct setting *s, struct config_endpoints *list, const char *t,
                         size_t len, bool quote, char *why, size_t whylen)
{
    char inner[200];
    if (list->count == ASPEN_NODE_CONFIG_MAX_URLS)
        return reason(why, whylen, "more than %d addresses", ASPEN_NODE_CONFIG_MAX_URLS);
    struct config_endpoint *ep = &list->items[list->count];
    int rc = parse_endpoint(t, len, s->type == T_URLS, ep, inner, sizeof(inner));
    if (rc == 0) {
        for (uint32_t i = 0; i < list->count; i++) {
            if (endpoint_same(&list->items[i], ep)) {
                rc = reason(inner, sizeof(inner), "listed twice");
                break;
            }
        }
    }
    if (rc != 0) {
        if (quote)
            return reason(why, whylen, "\"%.*s\": %s", (int)(len > 80 ? 80 : len), t, inner);
        return reason(why, whylen, "%s", inner);
    }
    list->count++;
    return 0;
}

static int endpoints_check_count(const struct setting *s, const struct config_endpoints *list,
                                 char *why, size_t whylen)
{
    if (list->count < s->min)
        return reason(why, whylen, "at least one address is needed");
    return 0;
}

/* A comma-separated list; blanks around elements are ignored, empty elements are not.
 * The empty string is the empty list. */
static int parse_list(const struct setting *s, const char *t, struct config_endpoints *list,
                      char *why, size_t whylen)
{
    memset(list, 0, sizeof(*list));
    size_t len = strlen(t);
    bool several = memchr(t, ',', len) != NULL;
    size_t i = 0;
    while (len > 0 && i <= len) {
        size_t j = i;
        while (j < len && t[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && (t[a] == ' ' || t[a] == '\t'))
            a++;
        while (b > a && (t[b - 1] == ' ' || t[b - 1] == '\t'))
            b--;
        if (a == b)
            return reason(why, whylen, "empty entry in the list");
        int rc = endpoints_add(s, list, t + a, b - a, several, why, whylen);
        if (rc != 0)
            return rc;
        i = j + 1;
    }
    return endpoints_check_count(s, list, why, whylen);
}

/* Parses text into the setting's field of cfg. */
static int parse_value(const struct setting *s, const char *t, struct node_config *cfg, char *why,
                       size_t whylen)
{
    void *field = field_of(cfg, s);
    size_t len = strlen(t);
    const char *problem = NULL;
    switch (s->type) {
    case T_STRING:
        if (len >= s->size)
            return reason(why, whylen, "longer than the %zu-byte limit", s->size - 1);
        if (len < s->min)
            return reason(why, whylen, "must not be empty");
        if (!text_is_clean(t, len, &problem))
            return reason(why, whylen, "%s", problem);
        memcpy(field, t, len + 1);
        return 0;
    case T_URLS:
    case T_PEERS:
        return parse_list(s, t, field, why, whylen);
    case T_BOOL: {
        bool b;
        if (parse_bool(t, &b) != 0)
            return reason(why, whylen, "not a boolean (true/false, yes/no, 1/0)");
        memcpy(field, &b, sizeof(b));
        return 0;
    }
    case T_UINT: {
        uint64_t v = 0;
        int rc = parse_u64(t, len, &v);
        if (rc == -1)
            return reason(why, whylen, "not a whole number%s%s", s->unit ? " of " : "",
                          s->unit ? s->unit : "");
        if (rc == -2 || v < s->min || v > s->max)
            return reason(why, whylen, "out of range: must be from %" PRIu64 " to %" PRIu64 "%s%s",
                          s->min, s->max, s->unit ? " " : "", s->unit ? s->unit : "");
        memcpy(field, &v, sizeof(v));
        return 0;
    }
    case T_CHOICE:
        for (unsigned i = 0; s->choices[i]; i++) {
            if (strcmp(t, s->choices[i]) == 0) {
                memcpy(field, &i, sizeof(i));
                return 0;
            }
        }
        {
            char list[128] = "";
            size_t used = 0;
            for (unsigned i = 0; s->choices[i] && used < sizeof(list); i++)
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                         s->choices[i]);
            return reason(why, whylen, "must be one of: %s", list);
        }
    }
    ASPEN_UNREACHABLE();
}

/* ---------------------------------------------------------------------------------------
 * Names: lookup and did-you-mean
 * ------------------------------------------------------------------------------------- */

static int setting_find(const char *name, size_t len)
{
    for (int i = 0; i < CONFIG_SETTING_COUNT; i++) {
        if (strlen(settings[i].name) == len && memcmp(settings[i].name, name, len) == 0)
            return i;
    }
    return -1;
}

/* Levenshtein distance, or SIZE_MAX for names too long to be worth comparing. */
static size_t edit_distance(const char *a, size_t la, const char *b)
{
    enum { MAX = 64 };
    size_t lb = strlen(b);
    if (la > MAX || lb > MAX)
        return SIZE_MAX;
    size_t row[MAX + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The known name closest to name[0..len), if it is close enough to be a typo. */
static const char *suggest(const char *name, size_t len, bool with_command_flags)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    size_t limit = len / 3 > 1 ? len / 3 : 1;
    for (int i = 0; i < CONFIG_SETTING_COUNT; i++) {
        size_t d = edit_distance(name, len, settings[i].name);
        if (d < best_d)
            best_d = d, best = settings[i].name;
    }
    for (size_t i = 0; with_command_flags && command_flags[i]; i++) {
        size_t d = edit_distance(name, len, command_flags[i]);
        if (d < best_d)
            best_d = d, best = command_flags[i];
    }
    return best_d <= limit ? best : NULL;
}

/* "ASPEN_" + the name in upper snake case. */
static void env_name(const struct setting *s, char *out, size_t n)
{
    size_t j = (size_t)snprintf(out, n, "ASPEN_");
    for (size_t i = 0; s->name[i] && j + 1 < n; i++) {
        char c = s->name[i];
        out[j++] = c == '-' ? '_' : (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    }
    out[j < n ? j : n - 1] = '\0';
}

/* ---------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------- */

struct loader {
    struct node_config *cfg;
    char *err;
    size_t errlen;
    const char *file;                         /* path of the config file being read */
    unsigned file_line[CONFIG_SETTING_COUNT]; /* where the file set each setting, or 0 */
    bool env_seen[CONFIG_SETTING_COUNT];
    const char *flag_value[CONFIG_SETTING_COUNT]; /* borrowed from argv */
};

static int fail(struct loader *ld, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct loader *ld, int code, const char *fmt, ...)
{
    if (ld->errlen == 0)
        return code;
    int n = snprintf(ld->err, ld->errlen, "config: ");
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < ld->errlen)
        vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

/* The value as shown in a message: quoted, control bytes escaped, long values cut. */
static void show_value(const struct setting *s, const char *v, char *out, size_t n)
{
    if (s && s->is_secret) {
        snprintf(out, n, "<secret>");
        return;
    }
    size_t j = 0;
    out[j++] = '"';
    for (size_t i = 0; v[i] && j + 8 < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (i == 64) {
            j += (size_t)snprintf(out + j, n - j, "...");
            break;
        }
        if (c == '"' || c == '\\')
            j += (size_t)snprintf(out + j, n - j, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            j += (size_t)snprintf(out + j, n - j, "\\x%02x", c);
        else
            out[j++] = (char)c;
    }
    out[j++] = '"';
    out[j] = '\0';
}

/* Where a value came from, for messages. */
struct origin {
    enum config_source source;
    unsigned line; /* file lines */
};

static int value_error(struct loader *ld, const struct setting *s, const struct origin *o,
                       const char *value, const char *why)
{
    char shown[96], env[80];
    show_value(s, value, shown, sizeof(shown));
    switch (o->source) {
    case CONFIG_SOURCE_FILE:
        return fail(ld, ASPEN_E_INVALID, "%s line %u: %s: %s: %s", ld->file, o->line, s->name,
                    shown, why);
    case CONFIG_SOURCE_ENV:
        env_name(s, env, sizeof(env));
        return fail(ld, ASPEN_E_INVALID, "%s=%s: %s", env, shown, why);
    case CONFIG_SOURCE_FLAG:
        return fail(ld, ASPEN_E_INVALID, "--%s=%s: %s", s->name, shown, why);
    case CONFIG_SOURCE_DEFAULT:
        break;
    }
    ASPEN_UNREACHABLE();
}

static int apply_text(struct loader *ld, enum config_setting id, const char *text,
                      const struct origin *o)
{
    const struct setting *s = &settings[id];
    char why[256];
    if (parse_value(s, text, ld->cfg, why, sizeof(why)) != 0)
        return value_error(ld, s, o, text, why);
    ld->cfg->source[id] = o->source;
    return 0;
}

static void apply_defaults(struct node_config *cfg)
{
    for (int i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const struct setting *s = &settings[i];
        ASPEN_ASSERT(s->name != NULL); /* every setting has its row */
        cfg->source[i] = CONFIG_SOURCE_DEFAULT;
        if (s->derived_from)
            continue; /* finish() fills it in */
        char why[256];
        switch (s->type) {
        case T_BOOL: {
            bool b = s->def_num != 0;
            memcpy(field_of(cfg, s), &b, sizeof(b));
            break;
        }
        case T_UINT:
            memcpy(field_of(cfg, s), &s->def_num, sizeof(s->def_num));
            break;
        default: {
            int rc = parse_value(s, s->def_text, cfg, why, sizeof(why));
            ASPEN_ASSERT(rc == 0); /* defaults pass their own parser */
            break;
        }
        }
    }
}

/* ---- The YAML file ---- */

static int read_file(struct loader *ld, const char *path, char **text_out, size_t *len_out)
{
    int rc = 0;
    char *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        return fail(ld, rc, "%s: cannot open: %s", path, strerror(-rc));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        fail(ld, rc, "%s: cannot stat: %s", path, strerror(-rc));
        goto close_fd;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = fail(ld, ASPEN_E_INVALID, "%s: not a regular file", path);
        goto close_fd;
    }
    if ((uint64_t)st.st_size > ASPEN_MAX_CONFIG_FILE_BYTES) {
        rc = fail(ld, ASPEN_E_TOO_LARGE, "%s: %lld bytes, more than the %llu-byte limit", path,
                  (long long)st.st_size, (unsigned long long)ASPEN_MAX_CONFIG_FILE_BYTES);
        goto close_fd;
    }
    /* Read one byte more than the limit, so a file that grew since fstat is caught. */
    size_t len = 0, want = (size_t)st.st_size + 1;
    text = mem_alloc(want + 1);
    if (!text) {
        rc = fail(ld, ASPEN_E_NOMEM, "%s: out of memory", path);
        goto close_fd;
    }
    while (len < want) {
        ssize_t r = read(fd, text + len, want - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            fail(ld, rc, "%s: cannot read: %s", path, strerror(-rc));
            goto free_text;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > (size_t)st.st_size) {
        rc = fail(ld, ASPEN_E_INVALID, "%s: the file changed while it was read", path);
        goto free_text;
    }
    text[len] = '\0';
    *text_out = text;
    *len_out = len;
    close(fd);
    return 0;

free_text:
    mem_free(text);
close_fd:
    close(fd);
    return rc;
}

static bool scalar_is_null(const yaml_event_t *ev)
{
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)ev->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* Anchors, aliases and tags: refused anywhere (they have no use in a flat mapping, and an
 * alias would let one line stand for another). */
static int check_node_extras(struct loader *ld, const yaml_event_t *ev)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;
    unsigned line = (unsigned)ev->start_mark.line + 1;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return fail(ld, ASPEN_E_INVALID, "%s line %u: aliases (*%s) are not supported", ld->file,
                    line, (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor, tag = ev->data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor, tag = ev->data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor, tag = ev->data.mapping_start.tag;
        break;
    default:
        return 0;
    }
    if (anchor)
        return fail(ld, ASPEN_E_INVALID, "%s line %u: anchors (&%s) are not supported", ld->file,
                    line, (const char *)anchor);
    if (tag)
        return fail(ld, ASPEN_E_INVALID, "%s line %u: tags (%s) are not supported", ld->file, line,
                    (const char *)tag);
    return 0;
}

enum yaml_state {
    Y_STREAM,   /* before the first document */
    Y_DOCUMENT, /* inside the document, before its top node */
    Y_KEY,      /* inside the top mapping, expecting a key or its end */
    Y_VALUE,    /* expecting the value of key `current` */
    Y_ITEMS,    /* inside a sequence value */
    Y_END,      /* after the top node, expecting the end of the document */
    Y_AFTER,    /* after the document, expecting the end of the stream */
    Y_DONE,
};

static int yaml_unexpected(struct loader *ld, const yaml_event_t *ev, const char *what)
{
    return fail(ld, ASPEN_E_INVALID, "%s line %zu: %s", ld->file, (size_t)ev->start_mark.line + 1,
                what);
}

/* One event of the file. */
static int yaml_step(struct loader *ld, const yaml_event_t *ev, enum yaml_state *state,
                     int *current, struct origin *o)
{
    unsigned line = (unsigned)ev->start_mark.line + 1;
    int rc = check_node_extras(ld, ev);
    if (rc != 0)
        return rc;
    const char *v = ev->type == YAML_SCALAR_EVENT ? (const char *)ev->data.scalar.value : NULL;

    switch (*state) {
    case Y_STREAM:
        if (ev->type == YAML_STREAM_START_EVENT)
            return 0;
        if (ev->type == YAML_STREAM_END_EVENT) {
            *state = Y_DONE;
            return 0;
        }
        *state = Y_DOCUMENT; /* YAML_DOCUMENT_START_EVENT */
        return 0;
    case Y_DOCUMENT:
        if (ev->type == YAML_MAPPING_START_EVENT) {
            *state = Y_KEY;
            return 0;
        }
        if (ev->type == YAML_SCALAR_EVENT && scalar_is_null(ev)) {
            *state = Y_END; /* an empty document: no settings */
            return 0;
        }
        return yaml_unexpected(ld, ev, "the file must be a mapping of settings (name: value)");
    case Y_KEY: {
        if (ev->type == YAML_MAPPING_END_EVENT) {
            *state = Y_END;
            return 0;
        }
        if (ev->type != YAML_SCALAR_EVENT)
            return yaml_unexpected(ld, ev, "a setting name must be a plain word");
        int id = setting_find(v, strlen(v));
        if (id < 0) {
            if (strcmp(v, "config-file") == 0)
                return yaml_unexpected(ld, ev, "config-file cannot be set inside a config file");
            const char *hint = suggest(v, strlen(v), false);
            char shown[96];
            show_value(NULL, v, shown, sizeof(shown));
            if (hint)
                return fail(ld, ASPEN_E_INVALID,
                            "%s line %u: unknown setting %s (did you mean \"%s\"?)", ld->file, line,
                            shown, hint);
            return fail(ld, ASPEN_E_INVALID, "%s line %u: unknown setting %s", ld->file, line,
                        shown);
        }
        if (ld->file_line[id])
            return fail(ld, ASPEN_E_INVALID, "%s line %u: %s is set twice (first on line %u)",
                        ld->file, line, settings[id].name, ld->file_line[id]);
        ld->file_line[id] = line;
        *current = id;
        *state = Y_VALUE;
        return 0;
    }
    case Y_VALUE: {
        const struct setting *s = &settings[*current];
        o->line = line;
        if (ev->type == YAML_SCALAR_EVENT) {
            if (scalar_is_null(ev))
                return fail(ld, ASPEN_E_INVALID,
                            "%s line %u: %s has no value (write \"\" for an empty string)",
                            ld->file, line, s->name);
            *state = Y_KEY;
            return apply_text(ld, (enum config_setting) * current, v, o);
        }
        if (ev->type == YAML_SEQUENCE_START_EVENT) {
            if (s->type != T_URLS && s->type != T_PEERS)
                return fail(ld, ASPEN_E_INVALID, "%s line %u: %s takes a single value, not a list",
                            ld->file, line, s->name);
            memset(field_of(ld->cfg, s), 0, sizeof(struct config_endpoints));
            *state = Y_ITEMS;
            return 0;
        }
        if (ev->type == YAML_MAPPING_START_EVENT)
            return fail(ld, ASPEN_E_INVALID,
                        "%s line %u: %s: nested mappings are not supported (settings are one "
                        "flat list of name: value)",
                        ld->file, line, s->name);
        return yaml_unexpected(ld, ev, "unexpected YAML structure");
    }
    case Y_ITEMS: {
        const struct setting *s = &settings[*current];
        struct config_endpoints *list = field_of(ld->cfg, s);
        char why[256];
        o->line = line;
        if (ev->type == YAML_SEQUENCE_END_EVENT) {
            *state = Y_KEY;
            if (endpoints_check_count(s, list, why, sizeof(why)) != 0)
                return value_error(ld, s, o, "[]", why);
            ld->cfg->source[*current] = CONFIG_SOURCE_FILE;
            return 0;
        }
        if (ev->type != YAML_SCALAR_EVENT)
            return fail(ld, ASPEN_E_INVALID, "%s line %u: %s: a list item must be a plain value",
                        ld->file, line, s->name);
        if (endpoints_add(s, list, v, strlen(v), false, why, sizeof(why)) != 0)
            return value_error(ld, s, o, v, why);
        return 0;
    }
    case Y_END:
        *state = Y_AFTER; /* YAML_DOCUMENT_END_EVENT */
        return 0;
    case Y_AFTER:
        if (ev->type == YAML_DOCUMENT_START_EVENT)
            return yaml_unexpected(ld, ev, "more than one YAML document");
        *state = Y_DONE;
        return 0;
    case Y_DONE:
        break;
    }
    ASPEN_UNREACHABLE();
}

static int load_file(struct loader *ld, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    ld->file = path;
    int rc = read_file(ld, path, &text, &len);
    if (rc != 0)
        return rc;

    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        rc = fail(ld, ASPEN_E_NOMEM, "%s: out of memory", path);
        goto free_text;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    enum yaml_state state = Y_STREAM;
    int current = -1;
    struct origin o = {.source = CONFIG_SOURCE_FILE};
    /* Every event consumes input or ends a node that did, so the loop ends: a stream of
     * n bytes yields O(n) events, and Y_DONE follows the stream's end. */
    while (state != Y_DONE) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            if (parser.error == YAML_MEMORY_ERROR)
                rc = fail(ld, ASPEN_E_NOMEM, "%s: out of memory", path);
            else
                rc = fail(ld, ASPEN_E_MALFORMED, "%s line %zu: not valid YAML: %s%s%s", path,
                          parser.problem_mark.line + 1, parser.problem ? parser.problem : "?",
                          parser.context ? " " : "", parser.context ? parser.context : "");
            goto delete_parser;
        }
        rc = yaml_step(ld, &ev, &state, &current, &o);
        yaml_event_delete(&ev);
        if (rc != 0)
            goto delete_parser;
    }

delete_parser:
    yaml_parser_delete(&parser);
free_text:
    mem_free(text);
    return rc;
}

/* ---- The environment ---- */

static bool env_allowed(const char *name, size_t len)
{
    for (size_t i = 0; env_exact_allowed[i]; i++) {
        if (strlen(env_exact_allowed[i]) == len && memcmp(name, env_exact_allowed[i], len) == 0)
            return true;
    }
    for (size_t i = 0; env_prefix_allowed[i]; i++) {
        size_t pl = strlen(env_prefix_allowed[i]);
        if (len >= pl && memcmp(name, env_prefix_allowed[i], pl) == 0)
            return true;
    }
    return false;
}

/* The setting whose variable is ASPEN_ + name[0..len), or -1. *dashed receives the name
 * in setting spelling (lower case, dashes) for did-you-mean. Variables are upper snake
 * case: ASPEN_name or ASPEN_DATA-DIR match nothing, but are offered the right spelling. */
static int env_find(const char *name, size_t len, char *dashed, size_t n)
{
    bool is_upper = true;
    if (len >= n)
        len = n - 1;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if ((c >= 'a' && c <= 'z') || c == '-')
            is_upper = false;
        dashed[i] = c == '_' ? '-' : (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    dashed[len] = '\0';
    return is_upper ? setting_find(dashed, len) : -1;
}

static const char *env_lookup(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    }
    return NULL;
}

static int load_env(struct loader *ld, char *const *envp)
{
    struct origin o = {.source = CONFIG_SOURCE_ENV};
    for (char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, "ASPEN_", 6) != 0)
            continue;
        const char *name = *e + 6;
        const char *eq = strchr(name, '=');
        if (!eq)
            continue;
        size_t len = (size_t)(eq - name);
        if (env_allowed(name, len))
            continue;
        char dashed[80];
        int id = env_find(name, len, dashed, sizeof(dashed));
        if (id < 0) {
            char hint_env[80];
            const char *hint = suggest(dashed, strlen(dashed), false);
            if (hint) {
                env_name(&settings[setting_find(hint, strlen(hint))], hint_env, sizeof(hint_env));
                return fail(ld, ASPEN_E_INVALID,
                            "unknown environment variable ASPEN_%.*s (did you mean %s?)",
                            (int)(len > 64 ? 64 : len), name, hint_env);
            }
            return fail(ld, ASPEN_E_INVALID, "unknown environment variable ASPEN_%.*s",
                        (int)(len > 64 ? 64 : len), name);
        }
        if (ld->env_seen[id])
            continue; /* like getenv: the first of duplicate entries counts */
        ld->env_seen[id] = true;
        int rc = apply_text(ld, (enum config_setting)id, eq + 1, &o);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- The flags ---- */

/* Reads argv: command flags into cfg, setting flags into ld->flag_value (applied later,
 * after the file and the environment). *config_file receives --config-file's value. */
static int scan_flags(struct loader *ld, int argc, char *const *argv, const char **config_file)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            ld->cfg->show_help = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            char shown[96];
            show_value(NULL, a, shown, sizeof(shown));
            return fail(ld, ASPEN_E_INVALID,
                        "unexpected argument %s (settings are given as --name=value)", shown);
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == strlen("print-config") && memcmp(name, "print-config", len) == 0) {
            if (eq)
                return fail(ld, ASPEN_E_INVALID, "--print-config takes no value");
            ld->cfg->print_config = true;
            continue;
        }
        int id = setting_find(name, len);
        bool is_config_file = len == strlen("config-file") && memcmp(name, "config-file", len) == 0;
        if (id < 0 && !is_config_file) {
            const char *hint = suggest(name, len, true);
            int shown_len = (int)(len > 64 ? 64 : len);
            if (hint)
                return fail(ld, ASPEN_E_INVALID, "unknown flag --%.*s (did you mean --%s?)",
                            shown_len, name, hint);
            return fail(ld, ASPEN_E_INVALID, "unknown flag --%.*s", shown_len, name);
        }
        const char *flag = is_config_file ? "config-file" : settings[id].name;
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (!is_config_file && settings[id].type == T_BOOL) {
            value = "true";
        } else if (i + 1 >= argc) {
            return fail(ld, ASPEN_E_INVALID, "--%s needs a value", flag);
        } else if (strncmp(argv[i + 1], "--", 2) == 0) {
            return fail(ld, ASPEN_E_INVALID, "--%s needs a value (found the flag %s instead)", flag,
                        argv[i + 1]);
        } else {
            value = argv[++i];
        }
        const char **slot = is_config_file ? config_file : &ld->flag_value[id];
        if (*slot)
            return fail(ld, ASPEN_E_INVALID, "--%s is given twice", flag);
        *slot = value;
    }
    return 0;
}

static int apply_flags(struct loader *ld)
{
    struct origin o = {.source = CONFIG_SOURCE_FLAG};
    for (int id = 0; id < CONFIG_SETTING_COUNT; id++) {
        if (!ld->flag_value[id])
            continue;
        int rc = apply_text(ld, (enum config_setting)id, ld->flag_value[id], &o);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- Rules across settings ---- */

/* "flag", "env", "file", or for a default computed from another setting, how. */
static const char *source_desc(const struct node_config *cfg, enum config_setting id, char *buf,
                               size_t n)
{
    const struct setting *s = &settings[id];
    if (cfg->source[id] != CONFIG_SOURCE_DEFAULT || !s->derived_from)
        return config_source_name(cfg->source[id]);
    if (id == CONFIG_HEARTBEAT_INTERVAL || id == CONFIG_ELECTION_TIMEOUT)
        snprintf(buf, n, "default of raft-profile %s", profile_names[cfg->raft_profile]);
    else
        snprintf(buf, n, "default: same as %s", s->derived_from);
    return buf;
}

static bool is_wildcard(const struct config_endpoint *ep)
{
    unsigned char addr[16] = {0};
    static const unsigned char zero[16] = {0};
    if (ep->is_ipv6)
        return inet_pton(AF_INET6, ep->host, addr) == 1 && memcmp(addr, zero, 16) == 0;
    return inet_pton(AF_INET, ep->host, addr) == 1 && memcmp(addr, zero, 4) == 0;
}

static int finish(struct loader *ld)
{
    struct node_config *cfg = ld->cfg;
    char d1[80], d2[80];

    /* Advertised addresses: the listening ones unless given, and never a wildcard. */
    static const enum config_setting adv[2][2] = {
        {CONFIG_ADVERTISE_CLIENT_URLS, CONFIG_LISTEN_CLIENT_URLS},
        {CONFIG_ADVERTISE_PEER_URLS, CONFIG_LISTEN_PEER_URLS},
    };
    for (int k = 0; k < 2; k++) {
        const struct setting *as = &settings[adv[k][0]];
        struct config_endpoints *a = field_of(cfg, as);
        if (cfg->source[adv[k][0]] == CONFIG_SOURCE_DEFAULT)
            memcpy(a, field_of(cfg, &settings[adv[k][1]]), sizeof(*a));
        for (uint32_t i = 0; i < a->count; i++) {
            if (is_wildcard(&a->items[i]))
                return fail(ld, ASPEN_E_INVALID,
                            "%s \"%s\" (%s): %s is a wildcard address that nobody can dial; "
                            "set %s to an address others can reach",
                            as->name, a->items[i].text, source_desc(cfg, adv[k][0], d1, sizeof(d1)),
                            a->items[i].host, as->name);
        }
    }

    /* Raft timing: the profile's, with explicit overrides checked against each other. */
    const struct profile_timing *p = &profile_timings[cfg->raft_profile];
    if (cfg->source[CONFIG_HEARTBEAT_INTERVAL] == CONFIG_SOURCE_DEFAULT)
        cfg->heartbeat_interval_ms = p->heartbeat_ms;
    if (cfg->source[CONFIG_ELECTION_TIMEOUT] == CONFIG_SOURCE_DEFAULT) {
        cfg->election_timeout_ms = p->election_min_ms;
        cfg->election_timeout_max_ms = p->election_max_ms;
    } else {
        cfg->election_timeout_max_ms = 2 * cfg->election_timeout_ms;
    }
    if (cfg->heartbeat_interval_ms * 3 > cfg->election_timeout_ms)
        return fail(
            ld, ASPEN_E_INVALID,
            "heartbeat-interval %" PRIu64 " ms (%s) is more than a third of "
            "election-timeout %" PRIu64 " ms (%s): followers must miss several "
            "heartbeats before they start an election",
            cfg->heartbeat_interval_ms, source_desc(cfg, CONFIG_HEARTBEAT_INTERVAL, d1, sizeof(d1)),
            cfg->election_timeout_ms, source_desc(cfg, CONFIG_ELECTION_TIMEOUT, d2, sizeof(d2)));

    /* Membership. */
    if (cfg->init && cfg->join[0])
        return fail(ld, ASPEN_E_INVALID,
                    "init (%s) and join (%s) cannot both be set: init forms a new cluster, "
                    "join enters an existing one",
                    config_source_name(cfg->source[CONFIG_INIT]),
                    config_source_name(cfg->source[CONFIG_JOIN]));
    if (cfg->join_credential[0] && !cfg->join[0])
        return fail(ld, ASPEN_E_INVALID, "join-credential (%s) is set but join is not",
                    config_source_name(cfg->source[CONFIG_JOIN_CREDENTIAL]));
    return 0;
}

int config_load(struct node_config *cfg, int argc, char *const *argv, char *const *envp, char *err,
                size_t errlen)
{
    struct loader *ld = mem_calloc(1, sizeof(*ld));
    if (!ld) {
        if (errlen)
            snprintf(err, errlen, "config: out of memory");
        return ASPEN_E_NOMEM;
    }
    ld->cfg = cfg;
    ld->err = err;
    ld->errlen = errlen;
    if (errlen)
        err[0] = '\0';
    memset(cfg, 0, sizeof(*cfg));
    apply_defaults(cfg);

    const char *config_file = NULL;
    int rc = scan_flags(ld, argc, argv, &config_file);
    if (rc != 0)
        goto done;
    if (cfg->show_help) {
        rc = finish(ld); /* fills in the defaults computed from others; cannot fail */
        goto done;
    }

    if (!config_file)
        config_file = env_lookup(envp, "ASPEN_CONFIG_FILE");
    if (config_file) {
        if (!*config_file) {
            rc = fail(ld, ASPEN_E_INVALID, "the config file's path is empty");
            goto done;
        }
        if (strlen(config_file) >= sizeof(cfg->config_file)) {
            rc = fail(ld, ASPEN_E_INVALID, "the config file's path is too long");
            goto done;
        }
        memcpy(cfg->config_file, config_file, strlen(config_file) + 1);
        rc = load_file(ld, cfg->config_file);
        if (rc != 0)
            goto done;
    }
    rc = load_env(ld, envp);
    if (rc != 0)
        goto done;
    rc = apply_flags(ld);
    if (rc != 0)
        goto done;
    rc = finish(ld);

done:
    mem_free(ld);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Printing and help
 * ------------------------------------------------------------------------------------- */

const char *config_source_name(enum config_source source)
{
    switch (source) {
    case CONFIG_SOURCE_DEFAULT:
        return "default";
    case CONFIG_SOURCE_FILE:
        return "file";
    case CONFIG_SOURCE_ENV:
        return "env";
    case CONFIG_SOURCE_FLAG:
        return "flag";
    }
    return "?";
}

/* A YAML double-quoted scalar. Everything outside printable ASCII is escaped (\u, \U), so
 * the output is ASCII and libyaml reads back exactly the bytes given (values are valid
 * UTF-8 by the time they are in a config). */
static int append_quoted(struct buf *out, const char *v)
{
    int rc = buf_append_u8(out, '"');
    const uint8_t *p = (const uint8_t *)v;
    for (size_t i = 0; rc == 0 && p[i]; i++) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\') {
            rc = buf_printf(out, "\\%c", c);
        } else if (c >= 0x20 && c < 0x7f) {
            rc = buf_append_u8(out, c);
        } else if (c < 0x80 || (c & 0xc0) == 0x80) {
            rc = buf_printf(out, "\\x%02x", c); /* not from config_load: controls, strays */
        } else {
            size_t n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
            uint32_t cp = c & (0x3fu >> n);
            size_t k = 1;
            for (; k <= n && (p[i + k] & 0xc0) == 0x80; k++)
                cp = (cp << 6) | (p[i + k] & 0x3fu);
            if (k <= n) {
                rc = buf_printf(out, "\\x%02x", c); /* a truncated sequence */
                continue;
            }
            i += n;
            rc = cp > 0xffff ? buf_printf(out, "\\U%08" PRIx32, cp)
                             : buf_printf(out, "\\u%04" PRIx32, cp);
        }
    }
    return rc ? rc : buf_append_u8(out, '"');
}

static int append_value(struct buf *out, const struct setting *s, const struct node_config *cfg)
{
    const void *f = cfield_of(cfg, s);
    switch (s->type) {
    case T_STRING:
        return append_quoted(out, s->is_secret ? "" : (const char *)f);
    case T_URLS:
    case T_PEERS: {
        const struct config_endpoints *l = f;
        char joined[ASPEN_NODE_CONFIG_MAX_URLS * ASPEN_NODE_CONFIG_URL_MAX_BYTES] = "";
        size_t used = 0;
        for (uint32_t i = 0; i < l->count; i++)
            used += (size_t)snprintf(joined + used, sizeof(joined) - used, "%s%s", i ? "," : "",
                                     l->items[i].text);
        return append_quoted(out, joined);
    }
    case T_BOOL: {
        bool b;
        memcpy(&b, f, sizeof(b));
        return buf_printf(out, "%s", b ? "true" : "false");
    }
    case T_UINT: {
        uint64_t v;
        memcpy(&v, f, sizeof(v));
        return buf_printf(out, "%" PRIu64, v);
    }
    case T_CHOICE:
        return buf_printf(out, "%s", s->choices[choice_get(cfg, s)]);
    }
    ASPEN_UNREACHABLE();
}

int config_print(const struct node_config *cfg, struct buf *out)
{
    int rc = buf_printf(out, "# aspen-node configuration; the comment on each line names the "
                             "source of its value\n");
    if (rc == 0 && cfg->config_file[0]) {
        rc = buf_printf(out, "# config file: ");
        if (rc == 0)
            rc = append_quoted(out, cfg->config_file);
        if (rc == 0)
            rc = buf_append_u8(out, '\n');
    }
    for (int i = 0; rc == 0 && i < CONFIG_SETTING_COUNT; i++) {
        const struct setting *s = &settings[i];
        char desc[80];
        rc = buf_printf(out, "%s: ", s->name);
        if (rc == 0)
            rc = append_value(out, s, cfg);
        if (rc == 0)
            rc = buf_printf(out, "  # %s",
                            source_desc(cfg, (enum config_setting)i, desc, sizeof(desc)));
        if (rc == 0 && s->is_secret && ((const char *)cfield_of(cfg, s))[0])
            rc = buf_printf(out, " (set; secret, not printed)");
        if (rc == 0)
            rc = buf_append_u8(out, '\n');
    }
    return rc;
}

int config_help(struct buf *out)
{
    struct node_config *def = mem_calloc(1, sizeof(*def));
    if (!def)
        return ASPEN_E_NOMEM;
    apply_defaults(def);

    int rc = buf_printf(
        out, "Usage: aspen-node [flags]\n\n"
             "Every setting is a flag (--name=value), a key of the YAML config file (name: "
             "value)\nand an environment variable (ASPEN_NAME). Flags override variables, "
             "variables\noverride the file, the file overrides the defaults. Lists are "
             "comma-separated\n(in YAML also sequences); booleans are true/false, yes/no or "
             "1/0.\n\n"
             "  --config-file=PATH\n        YAML file of settings.\n        env ASPEN_CONFIG_FILE\n"
             "  --print-config\n        Print the effective configuration as YAML, each value "
             "with its source, and exit.\n"
             "  --help\n        Print this text and exit.\n\n");
    for (int i = 0; rc == 0 && i < CONFIG_SETTING_COUNT; i++) {
        const struct setting *s = &settings[i];
        char env[80];
        env_name(s, env, sizeof(env));
        if (s->type == T_BOOL) {
            rc = buf_printf(out, "  --%s[=false]\n", s->name);
        } else if (s->type == T_CHOICE) {
            rc = buf_printf(out, "  --%s=", s->name);
            for (size_t k = 0; rc == 0 && s->choices[k]; k++)
                rc = buf_printf(out, "%s%s", k ? "|" : "", s->choices[k]);
            if (rc == 0)
                rc = buf_append_u8(out, '\n');
        } else {
            rc = buf_printf(out, "  --%s=%s\n", s->name, s->arg);
        }
        if (rc == 0)
            rc = buf_printf(out, "        %s\n        default: ", s->help);
        if (rc == 0 && s->derived_from)
            rc = buf_printf(out, "from %s", s->derived_from);
        else if (rc == 0)
            rc = append_value(out, s, def);
        if (rc == 0)
            rc = buf_printf(out, "; env %s\n", env);
    }
    mem_free(def);
    return rc;
}

bool config_equal(const struct node_config *a, const struct node_config *b)
{
    for (int i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const struct setting *s = &settings[i];
        const void *fa = cfield_of(a, s), *fb = cfield_of(b, s);
        switch (s->type) {
        case T_STRING:
            if (strcmp(fa, fb) != 0)
                return false;
            break;
        case T_URLS:
        case T_PEERS: {
            const struct config_endpoints *la = fa, *lb = fb;
            if (la->count != lb->count)
                return false;
            for (uint32_t k = 0; k < la->count; k++) {
                if (strcmp(la->items[k].text, lb->items[k].text) != 0)
                    return false;
            }
            break;
        }
        case T_BOOL:
        case T_UINT:
        case T_CHOICE:
            if (memcmp(fa, fb, s->size) != 0)
                return false;
            break;
        }
    }
    return a->election_timeout_max_ms == b->election_timeout_max_ms;
}
