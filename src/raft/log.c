/*
 * The core's in-memory log: the entries after the last compaction point.
 *
 * The core keeps every entry it may still need to send or apply in memory, so replication
 * never waits on a storage read and the core stays free of I/O. The log is bounded: the
 * committed part by the snapshot threshold (the shell snapshots and the core compacts),
 * the uncommitted part by max_uncommitted_bytes. Storage keeps its own durable copy; this
 * one is rebuilt from it at start-up (struct raft_boot).
 */
#include "raft/internal.h"

#include "base/assert.h"
#include "base/mem.h"

#include <string.h>

void log_init(struct raft_log *log, raft_index prev_index, raft_term prev_term)
{
    memset(log, 0, sizeof(*log));
    log->first = prev_index + 1;
    log->prev_term = prev_term;
}

static void free_range(struct raft_log *log, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        log->bytes -= log->ents[i].len;
        mem_free(log->ents[i].data);
        log->ents[i].data = NULL;
    }
}

void log_release(struct raft_log *log)
{
    free_range(log, 0, log->len);
    mem_free(log->ents);
    memset(log, 0, sizeof(*log));
}

bool log_term(const struct raft_log *log, raft_index index, raft_term *term)
{
    if (index + 1 == log->first) {
        *term = log->prev_term;
        return true;
    }
    if (index < log->first || index > log_last_index(log))
        return false;
    *term = log->ents[index - log->first].term;
    return true;
}

raft_term log_last_term(const struct raft_log *log)
{
    return log->len ? log->ents[log->len - 1].term : log->prev_term;
}

const struct raft_entry *log_entry(const struct raft_log *log, raft_index index)
{
    ASPEN_ASSERT(index >= log->first && index <= log_last_index(log));
    return &log->ents[index - log->first];
}

int log_append(struct raft_log *log, const struct raft_entry *e)
{
    ASPEN_ASSERT(e->index == log_last_index(log) + 1);
    ASPEN_ASSERT(e->term >= log_last_term(log)); /* terms never decrease along a log */
    int rc = mem_grow(&log->ents, &log->cap, log->len, sizeof(*log->ents), 64, SIZE_MAX);
    if (rc)
        return rc;
    uint8_t *data = NULL;
    if (e->len) {
        data = mem_alloc(e->len);
        if (!data)
            return ASPEN_E_NOMEM;
        memcpy(data, e->data, e->len);
    }
    struct raft_entry *d = &log->ents[log->len++];
    *d = *e;
    d->data = data;
    log->bytes += e->len;
    return 0;
}

void log_truncate(struct raft_log *log, raft_index index)
{
    ASPEN_ASSERT(index >= log->first && index <= log_last_index(log) + 1);
    size_t keep = (size_t)(index - log->first);
    free_range(log, keep, log->len);
    log->len = keep;
}

void log_compact(struct raft_log *log, raft_index index)
{
    ASPEN_ASSERT(index + 1 >= log->first && index <= log_last_index(log));
    if (index < log->first)
        return;
    size_t drop = (size_t)(index - log->first + 1);
    log->prev_term = log->ents[drop - 1].term;
    free_range(log, 0, drop);
    memmove(log->ents, log->ents + drop, (log->len - drop) * sizeof(*log->ents));
    log->len -= drop;
    log->first = index + 1;
    /* Give memory back after a large compaction so a burst does not pin its peak. */
    if (log->cap > 1024 && log->len < log->cap / 4) {
        size_t cap = log->cap / 2;
        struct raft_entry *n = mem_realloc(log->ents, cap * sizeof(*n));
        if (n) {
            log->ents = n;
            log->cap = cap;
        }
    }
}

void log_reset(struct raft_log *log, raft_index index, raft_term term)
{
    free_range(log, 0, log->len);
    log->len = 0;
    log->first = index + 1;
    log->prev_term = term;
}

raft_index log_find_conflict_by_term(const struct raft_log *log, raft_index index, raft_term term)
{
    raft_index last = log_last_index(log);
    if (index > last)
        index = last;
    while (index >= log->first && log->ents[index - log->first].term > term)
        index--;
    return index;
}
