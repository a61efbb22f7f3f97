/*
 * The watch hub: etcd v3 watch semantics over the KV's change events, independent of any
 * transport.
 *
 * The node's loop feeds it: watch_publish after each durable apply batch with that
 * batch's events (kv_apply's struct kv_events), watch_set_compacted after a compaction
 * applies, watch_sync to let slow watchers catch up from history, and the progress calls.
 * The RPC layer (later) creates and cancels watchers for its streams and pulls responses
 * with watch_take when a stream can send; the on_ready callback tells it which watchers
 * have something to send.
 *
 * Each watcher is either SYNCED — it receives new events as they are published — or
 * UNSYNCED — it is behind and catches up by reading history (the history source, which
 * is kv_history in production and a fake in tests). A watcher starts unsynced when it
 * asks for a past revision, and becomes unsynced when it is slow: a revision's events do
 * not fit its bounded queue. It becomes synced again when history has brought it up to
 * the hub's current revision. The invariant (watch.c states it in full): the events a
 * watcher delivers are exactly the matching events from its start revision, in order,
 * each once — or a prefix of them followed by a "compacted" cancel when the history it
 * needed was compacted away, as etcd does.
 *
 * Single-threaded: the node's loop owns the hub. Memory is bounded: at most max_watchers
 * watchers (ASPEN_E_FULL), and a watcher's queue holds at most queue_max events, except
 * that one revision is always admitted whole into an empty queue — one delete-range can
 * change more keys than a queue holds, and a revision is never split, or it could be
 * neither skipped nor delivered.
 */
#ifndef ASPEN_KV_WATCH_H
#define ASPEN_KV_WATCH_H

#include "base/mem.h"
#include "base/slice.h"
#include "kv/kv.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where catch-up events come from; same meaning as kv_history in kv.h, bound to a read
 * transaction by the caller. The hub calls it only from watch_sync, with to_rev <= the
 * hub's current revision, and expects:
 * - the events with revision in [from_rev, to_rev] of keys in [key, range_end), in
 *   revision order, with prev_kv when `prev`, appended to `out` (allocated in out->arena);
 * - *next_rev: every such event with revision < *next_rev has been returned. Events of
 *   revision >= *next_rev that were returned anyway (a revision cut by `max`) are dropped
 *   by the hub and read again later, so a source may stop anywhere;
 * - ASPEN_E_COMPACTED when from_rev is compacted; any other error is passed on. */
struct watch_history {
    void *ctx;
    int (*history)(void *ctx, struct slice key, struct slice range_end, int64_t from_rev,
                   int64_t to_rev, bool prev, size_t max, struct kv_events *out, int64_t *next_rev);
};

struct watch_options {
    struct watch_history source;
    int64_t current_revision;   /* the store's revision when the hub is created (>= 1) */
    int64_t compacted_revision; /* the store's compacted revision (0: none) */
    size_t max_watchers;        /* 0: ASPEN_MAX_WATCHERS */
    size_t queue_max_events;    /* 0: ASPEN_WATCH_EVENT_QUEUE_MAX */
    /* Called when a watcher goes from "nothing to send" to "something to send" (called
     * from inside hub functions: it must not call into the hub). May be NULL. */
    void (*on_ready)(void *ctx, int64_t watch_id);
    void *on_ready_ctx;
};

/* etcd's WatchCreateRequest. */
struct watch_request {
    struct slice key;       /* 1..ASPEN_MAX_KEY_BYTES bytes */
    struct slice range_end; /* empty: the key alone; "\0": every key >= key; else [key, end) */
    int64_t start_revision; /* <= 0: from the next revision */
    bool prev_kv;
    bool filter_noput;
    bool filter_nodelete;
    bool progress_notify; /* receive watch_progress_tick's notifications */
    int64_t watch_id;     /* 0: the hub picks one; else must be unused (> 0) */
};

/* One response for one watcher, etcd's WatchResponse. Exactly one kind per response:
 * created, canceled, progress, or events. */
struct watch_response {
    int64_t watch_id;
    /* Every matching event with mod_revision <= revision has now been delivered (for a
     * created response: the store's revision at creation; for a fragment: the revision
     * before the fragment's). */
    int64_t revision;
    bool created;
    bool canceled;
    bool progress;             /* a progress notification: no events */
    bool fragment;             /* the events are part of one revision too large for max_events; more
                                  of the same revision follow */
    int cancel_code;           /* 0 (canceled by the client) or ASPEN_E_COMPACTED */
    const char *cancel_reason; /* static text; "" unless canceled */
    int64_t compact_revision;  /* with ASPEN_E_COMPACTED: the compacted revision */
    struct kv_event *events;   /* n_events, in the arena passed to watch_take */
    size_t n_events;
};

struct watch_hub;

/* On success *out belongs to the caller (watch_hub_free). ASPEN_E_INVALID (no history
 * callback, current_revision < 1, compacted > current), ASPEN_E_NOMEM. */
int watch_hub_new(const struct watch_options *opts, struct watch_hub **out);

/* Frees the hub and every watcher. */
void watch_hub_free(struct watch_hub *hub);

/* Creates a watcher; its id in *id. The request is borrowed (copied). The first response
 * is always a created one. A start revision below the compacted revision creates the
 * watcher and cancels it at once, with ASPEN_E_COMPACTED and the compacted revision (the
 * created response comes first, as in etcd). ASPEN_E_INVALID (bad key or range_end
 * length, negative id), ASPEN_E_EXISTS (the id is in use), ASPEN_E_FULL (max_watchers),
 * ASPEN_E_NOMEM. */
int watch_create(struct watch_hub *hub, const struct watch_request *req, int64_t *id);

/* Cancels a watcher at the client's request: queued events are dropped and its next
 * (and last) response is a canceled one; the id is free once that has been taken.
 * ASPEN_E_NOT_FOUND (unknown id or already canceled). */
int watch_cancel(struct watch_hub *hub, int64_t id);

/* The events of every revision in (current, revision], in order, after they are durable.
 * Events of one revision are never split across calls; revision may advance with n == 0.
 * ev is borrowed: what the hub keeps it copies. A watcher whose queue cannot take a
 * revision (or whose copy fails for lack of memory) becomes unsynced from that revision
 * and catches up later from history: publish itself never fails. */
void watch_publish(struct watch_hub *hub, int64_t revision, const struct kv_event *ev, size_t n);

/* A compaction at `revision` has applied: unsynced watchers still needing an earlier
 * revision are canceled with ASPEN_E_COMPACTED (after their queued events). */
void watch_set_compacted(struct watch_hub *hub, int64_t revision);

/* Catches unsynced watchers up from history, round-robin, reading about `budget` events
 * at most (at least one history call is made if any watcher can take events). Returns 0
 * or the first error of the history source other than ASPEN_E_COMPACTED (the watcher
 * stays unsynced and is retried next time), or ASPEN_E_NOMEM. */
int watch_sync(struct watch_hub *hub, size_t budget);

/* Number of watchers that are behind (for the loop: call watch_sync while it is > 0). */
size_t watch_unsynced_count(const struct watch_hub *hub);

/* Number of live watchers, canceled ones not yet taken included. */
size_t watch_count(const struct watch_hub *hub);

/* The hub's current revision (the last one published). */
int64_t watch_current_revision(const struct watch_hub *hub);

/* etcd's ProgressRequest: every synced watcher with nothing queued gets a progress
 * response at the current revision. */
void watch_request_progress(struct watch_hub *hub);

/* The periodic progress notification (every ASPEN_WATCH_PROGRESS_INTERVAL_MS): the same,
 * for watchers created with progress_notify only. etcd's rule: only a synced watcher with
 * an empty queue gets one, so the revision it carries promises that everything up to it
 * was sent. */
void watch_progress_tick(struct watch_hub *hub);

/* True when watch_take would produce a response. */
bool watch_has_pending(const struct watch_hub *hub, int64_t id);

/* The next response of watcher id, with at most max_events events (>= 1) allocated in
 * `a` (the caller resets the arena once the response is sent). Events of one revision
 * are not split unless that revision alone has more than max_events (then `fragment`).
 * Returns 1 when *out holds a response, 0 when there is nothing to send,
 * ASPEN_E_NOT_FOUND (unknown id), ASPEN_E_NOMEM (the arena is full: nothing was taken).
 * Taking a canceled response frees the watcher. */
int watch_take(struct watch_hub *hub, int64_t id, size_t max_events, struct watch_response *out,
               struct arena *a);

#endif /* ASPEN_KV_WATCH_H */
