/*
 * Per-follower progress and flow control (the leader's bookkeeping, after etcd-raft's
 * tracker, design.md).
 *
 * A follower is probed (one append at a time) until the leader knows where the two logs
 * agree, then replicated optimistically: appends are pipelined without waiting for
 * acknowledgements, bounded by a window of messages and of bytes (the bandwidth-delay
 * product), so a slow follower costs the leader bounded memory. A follower too far
 * behind for the log the leader still holds waits for a snapshot.
 */
#include "raft/internal.h"

#include "base/assert.h"
#include "base/mem.h"

#include <string.h>

int progress_init(struct progress *pr, raft_id id, raft_index next, uint32_t max_inflight)
{
    memset(pr, 0, sizeof(*pr));
    pr->id = id;
    pr->next = next;
    pr->state = PROGRESS_PROBE;
    pr->inflights.cap = max_inflight;
    pr->inflights.last = mem_calloc(max_inflight, sizeof(raft_index));
    pr->inflights.bytes = mem_calloc(max_inflight, sizeof(uint64_t));
    if (!pr->inflights.last || !pr->inflights.bytes) {
        progress_release(pr);
        return ASPEN_E_NOMEM;
    }
    return 0;
}

void progress_release(struct progress *pr)
{
    mem_free(pr->inflights.last);
    mem_free(pr->inflights.bytes);
    pr->inflights.last = NULL;
    pr->inflights.bytes = NULL;
}

void inflights_reset(struct inflights *in)
{
    in->start = 0;
    in->count = 0;
    in->total_bytes = 0;
}

void inflights_free_to(struct inflights *in, raft_index index)
{
    while (in->count && in->last[in->start] <= index) {
        in->total_bytes -= in->bytes[in->start];
        in->start = (in->start + 1) % in->cap;
        in->count--;
    }
}

void inflights_free_first(struct inflights *in)
{
    if (in->count)
        inflights_free_to(in, in->last[in->start]);
}

static void reset_state(struct progress *pr, uint8_t state)
{
    pr->state = state;
    pr->probe_sent = false;
    pr->pending_snapshot = 0;
    pr->snapshot_ticks = 0;
    inflights_reset(&pr->inflights);
}

void progress_become_probe(struct progress *pr)
{
    /* Leaving a snapshot, resume after whichever is further: the snapshot or the match. */
    raft_index after_snapshot = pr->state == PROGRESS_SNAPSHOT ? pr->pending_snapshot + 1 : 0;
    reset_state(pr, PROGRESS_PROBE);
    pr->next = pr->match + 1 > after_snapshot ? pr->match + 1 : after_snapshot;
}

void progress_become_replicate(struct progress *pr)
{
    reset_state(pr, PROGRESS_REPLICATE);
    pr->next = pr->match + 1;
}

void progress_become_snapshot(struct progress *pr, raft_index snapshot_index)
{
    reset_state(pr, PROGRESS_SNAPSHOT);
    pr->pending_snapshot = snapshot_index;
}

bool progress_update(struct progress *pr, raft_index index)
{
    bool updated = false;
    if (pr->match < index) {
        pr->match = index;
        updated = true;
        pr->probe_sent = false;
    }
    if (pr->next < index + 1)
        pr->next = index + 1;
    return updated;
}

bool progress_decrease(struct progress *pr, raft_index rejected, raft_index hint)
{
    if (pr->state == PROGRESS_REPLICATE) {
        /* A rejection at or below the match point is an old message overtaken by events. */
        if (rejected <= pr->match)
            return false;
        pr->next = pr->match + 1;
        return true;
    }
    /* Probing: only the answer to the probe we sent (at next-1) counts. */
    if (pr->next == 0 || pr->next - 1 != rejected)
        return false;
    raft_index next = hint + 1 < rejected ? hint + 1 : rejected;
    if (next < pr->match + 1)
        next = pr->match + 1;
    if (next < 1)
        next = 1;
    pr->next = next;
    pr->probe_sent = false;
    return true;
}

bool progress_is_paused(const struct progress *pr, uint32_t max_msgs, uint64_t max_bytes)
{
    switch (pr->state) {
    case PROGRESS_PROBE:
        return pr->probe_sent;
    case PROGRESS_REPLICATE:
        return pr->inflights.count >= max_msgs || pr->inflights.count >= pr->inflights.cap ||
               pr->inflights.total_bytes >= max_bytes;
    default:
        return true;
    }
}

void progress_sent(struct progress *pr, raft_index last, uint64_t bytes, uint32_t n_entries)
{
    if (pr->state == PROGRESS_REPLICATE) {
        if (n_entries) {
            struct inflights *in = &pr->inflights;
            ASPEN_ASSERT(in->count < in->cap);
            uint32_t slot = (in->start + in->count) % in->cap;
            in->last[slot] = last;
            in->bytes[slot] = bytes;
            in->count++;
            in->total_bytes += bytes;
            pr->next = last + 1;
        }
    } else if (pr->state == PROGRESS_PROBE) {
        pr->probe_sent = true;
    }
}
