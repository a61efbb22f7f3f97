/*
 * The event trace (sim/trace.h).
 */
#include "sim/trace.h"

#include "sim/stream.h"

#include <inttypes.h>
#include <string.h>

static const char *const kind_name[TR_KIND_COUNT] = {
    [TR_TICK] = "tick",         [TR_RECV] = "recv",           [TR_DROP] = "drop",
    [TR_PERSIST] = "persist",   [TR_ROLE] = "role",           [TR_PROPOSE] = "propose",
    [TR_READ] = "read",         [TR_REPLY] = "reply",         [TR_TIMEOUT] = "timeout",
    [TR_INVOKE] = "invoke",     [TR_CRASH] = "CRASH",         [TR_RESTART] = "RESTART",
    [TR_PAUSE] = "PAUSE",       [TR_RESUME] = "RESUME",       [TR_PARTITION] = "PARTITION",
    [TR_HEAL] = "HEAL",         [TR_CLOG] = "CLOG",           [TR_CONF] = "conf-change",
    [TR_TRANSFER] = "transfer", [TR_SNAPSHOT] = "snapshot",   [TR_INSTALL] = "install",
    [TR_PHASE] = "PHASE",       [TR_VIOLATION] = "VIOLATION",
};

static const char *const msg_name[] = {
    "append",    "append-resp",    "vote",     "vote-resp",   "prevote",    "prevote-resp",
    "heartbeat", "heartbeat-resp", "snapshot", "timeout-now", "read-index", "read-index-resp",
};

static const char *const role_name[] = {"F", "P", "C", "L"};

void trace_init(struct trace *t, FILE *print)
{
    memset(t, 0, sizeof(*t));
    t->print = print;
}

void trace_add(struct trace *t, const struct trace_rec *r)
{
    uint64_t h = t->digest;
    h = sim_hash_u64(h, r->time_ns);
    h = sim_hash_u64(h, (uint64_t)r->kind | (uint64_t)r->node << 8 | (uint64_t)r->peer << 16 |
                            (uint64_t)r->role << 24);
    h = sim_hash_u64(h, r->a);
    h = sim_hash_u64(h, r->b);
    h = sim_hash_u64(h, r->c);
    h = sim_hash_u64(h, r->term);
    h = sim_hash_u64(h, r->commit);
    h = sim_hash_u64(h, r->applied);
    t->digest = h;
    /* Ticks go into the digest but not the ring: they would crowd out the events that
     * explain a violation. */
    if (r->kind != TR_TICK) {
        t->ring[t->count % ASPEN_SIM_TRACE_RING] = *r;
        t->count++;
    }
    if (t->print && (r->kind != TR_TICK || t->print_ticks)) {
        char line[256];
        trace_format(r, line, sizeof(line));
        fprintf(t->print, "%s\n", line);
    }
}

static const char *msg_type_name(uint64_t type)
{
    return type < sizeof(msg_name) / sizeof(msg_name[0]) ? msg_name[type] : "?";
}

void trace_format(const struct trace_rec *r, char *out, size_t len)
{
    char who[16], detail[160];
    if (r->node)
        snprintf(who, sizeof(who), "n%u", r->node);
    else
        snprintf(who, sizeof(who), "--");
    const char *kn = r->kind < TR_KIND_COUNT ? kind_name[r->kind] : "?";
    switch (r->kind) {
    case TR_RECV:
        snprintf(detail, sizeof(detail), "%s%s from=n%u term=%" PRIu64 " index=%" PRIu64,
                 msg_type_name(r->a & 0xff), r->a & 0x100 ? " REJECT" : "", r->peer, r->b, r->c);
        break;
    case TR_DROP:
        snprintf(detail, sizeof(detail), "%s to=n%u why=%" PRIu64, msg_type_name(r->a), r->peer,
                 r->b);
        break;
    case TR_PERSIST:
        snprintf(detail, sizeof(detail),
                 "persisted=%" PRIu64 " entries=%" PRIu64 " applied=%" PRIu64, r->a, r->b, r->c);
        break;
    case TR_ROLE:
        snprintf(detail, sizeof(detail), "role=%s term=%" PRIu64 " leader=%" PRIu64,
                 r->a < 4 ? role_name[r->a] : "?", r->b, r->c);
        break;
    case TR_PROPOSE:
    case TR_READ:
    case TR_REPLY:
    case TR_TIMEOUT:
    case TR_INVOKE:
        snprintf(detail, sizeof(detail), "client=c%u op=%" PRIu64 " %" PRIu64 " %" PRIu64,
                 r->peer ? r->peer - 1 : 0, r->a, r->b, r->c);
        break;
    default:
        snprintf(detail, sizeof(detail), "peer=%u a=%" PRIu64 " b=%" PRIu64 " c=%" PRIu64, r->peer,
                 r->a, r->b, r->c);
        break;
    }
    snprintf(out, len,
             "%4" PRIu64 ".%06" PRIu64 " %-3s %s%-3" PRIu64 " c%-5" PRIu64 " a%-5" PRIu64
             " %-11s %s",
             r->time_ns / 1000000000u, (r->time_ns / 1000u) % 1000000u, who,
             r->role < 4 ? role_name[r->role] : "-", r->term, r->commit, r->applied, kn, detail);
}

void trace_dump(const struct trace *t, FILE *f, uint32_t n)
{
    uint64_t have = t->count < ASPEN_SIM_TRACE_RING ? t->count : ASPEN_SIM_TRACE_RING;
    if (n > have)
        n = (uint32_t)have;
    for (uint64_t i = t->count - n; i < t->count; i++) {
        char line[256];
        trace_format(&t->ring[i % ASPEN_SIM_TRACE_RING], line, sizeof(line));
        fprintf(f, "  %s\n", line);
    }
}
