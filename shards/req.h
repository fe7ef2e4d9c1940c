/* req.h: requests answered later, the one way a shard parks work.
 * A request whose answer is not known at once (sub-requests out on other
 * shards, a value being read back from disk, a reply that must wait for the
 * log's fdatasync, and later replica acks) is a struct req in its shard's
 * table. It has N sub-results, a quorum (how many of them complete it; N
 * for a split command, R or W for a replicated one), an optional
 * durability hold (a log sequence that must be durable first), a deadline,
 * and a done callback (the owner's combiner), called exactly once:
 *   REQ_END_DONE     quorum reached, hold released: combine the results;
 *   REQ_END_TIMEOUT  the deadline passed first: answer with a timeout error;
 *   REQ_END_DROP     cancelled (its client left) or the table is going away:
 *                    release what it owns, answer nothing.
 * Requests are named by id (slot + generation, packed in 64 bits), never by
 * pointer: whatever comes back for a request that has ended (a late
 * sub-result from another shard, a value read after the deadline) finds
 * req_find() NULL and is dropped by its carrier.
 *
 * Sub-results are structured (struct req_result): status, an integer, a
 * version, and the reply bytes with where their payload starts, so a
 * combiner merges them without parsing protocol text.
 *
 * Threads: a table and its requests belong to one shard thread.
 * Ownership: the table allocates and frees requests; a request is freed
 *   right after its done callback returns true. sub-result bodies are freed
 *   with it unless the callback took them.
 * Errors: req_new() returns NULL on out of memory. */
#ifndef RINGKV_SHARDS_REQ_H
#define RINGKV_SHARDS_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

/* What a reply is, as its handler reported it (cmd.h's cmd_reply_* helpers). */
enum req_status {
    REQ_NONE = 0, /* not reported: protocol bytes only (memcached lines, INFO...) */
    REQ_OK,
    REQ_ERR,
    REQ_NULL,
    REQ_INT,   /* num is the integer */
    REQ_BULK,  /* the payload is the string */
    REQ_ARRAY, /* num elements; the payload is the elements */
};

struct req_result {
    uint8_t status;   /* enum req_status */
    uint32_t skip;    /* body bytes before the payload (an array's or string's header) */
    int64_t num;      /* REQ_INT: the integer; REQ_ARRAY: the elements; SCAN: next cursor */
    uint64_t version; /* the value's version (cas), for replicas to compare */
    uint64_t hold_seq; /* log sequence the reply depends on, not durable yet; 0 none */
    struct buf body;  /* the reply in the client's protocol, as its handler wrote it */
};

enum req_end { REQ_END_DONE, REQ_END_TIMEOUT, REQ_END_DROP };

struct req;
struct req_table;
/* The owner's callback. Returns true when the request is over (the table
 * frees it), false when it re-armed it for another phase (REQ_END_DONE
 * only: new sub-results under the same id and deadline, see req_rearm()). */
typedef bool req_done_fn(struct req_table *t, struct req *r, enum req_end how);

struct req {
    uint64_t id;
    req_done_fn *done;
    uint32_t nsub;    /* sub-results */
    uint32_t ndone;   /* sub-results in */
    uint32_t quorum;  /* sub-results that complete it */
    uint32_t held_at; /* position in the held heap; UINT32_MAX: not in it */
    bool is_armed;    /* routing is over: completing it may happen */
    bool is_small;    /* allocated without room for sub-results: reusable (the pool) */
    uint32_t kind;    /* the owner's: which combiner (cmd.h, enum cmd_combine) */
    uint64_t owner;   /* the owner's handle (a connection's slot and generation) */
    void *owner_ptr;  /* the owner's datum, valid while the request lives (a
                         connection's reply slot, a message being run) */
    int64_t aux;      /* the combiner's datum (SCAN: the shard) */
    uint64_t charged; /* the owner's: work charged to its client (conn_charge) */
    int64_t deadline_ms;
    uint64_t hold_seq; /* log sequence that must be durable before done; 0: none */
    struct buf extra;  /* the owner's saved bytes (MSETNX arguments, CLIENT LIST ids) */
    struct req_result *subs;
    struct req_result one;
};

/* Held requests: a binary min-heap by hold_seq; each knows its place
 * (req.held_at), so one leaves in O(log n) wherever it is. The array grows
 * with the table, so inserting never fails. */
struct req_heap {
    struct req **v;
    uint32_t n;
};

/* A request's deadline as the deadline queues keep it: by id, so an entry
 * outlives its request (it is dropped when found stale). */
struct req_due {
    int64_t deadline_ms;
    uint64_t id;
};

/* Deadlines in the order they were set, each no sooner than the one before
 * (a ring of entries). Nearly every deadline is "request-timeout from now",
 * or that less a fixed margin (a coordinator's own operation): a few rings
 * keep such interleaved runs each in order; a deadline no ring can take in
 * order goes to the out-of-order heap. */
#define REQ_DUE_RINGS 4
struct req_due_fifo {
    struct req_due *v;
    uint32_t cap, head, n; /* cap a power of two */
};

struct req_table {
    void *ctx;          /* the owner's (the shard), for callbacks */
    struct req **slots; /* slot -> request, NULL when free */
    uint32_t *gen;      /* slot -> generation, bumped when freed */
    uint32_t *free_slots;
    uint32_t cap, nfree;
    uint32_t live;             /* requests in the table */
    struct req_due_fifo due[REQ_DUE_RINGS]; /* deadlines set in order (most of them) */
    struct req_due *due_late;  /* a min-heap by deadline of those set out of order */
    uint32_t nlate, late_cap;
    struct req_heap held;      /* complete but for their hold, by hold_seq */
    struct req *pool;          /* freed small requests, for the next (linked by owner_ptr) */
    uint32_t npool;
    uint64_t durable_seq; /* the log is durable up to here */
    uint64_t expired;     /* requests ended by their deadline (INFO) */
    uint64_t heap_steps;  /* levels walked in the heaps (tests count work) */
};

/* An empty table; ctx is handed back through t->ctx. */
void req_table_init(struct req_table *t, void *ctx);
/* Drops every request (done with REQ_END_DROP) and frees the table. */
void req_table_fini(struct req_table *t);

/* A new request of nsub sub-results (cleared), complete once quorum of them
 * are in (quorum <= nsub; 0 means at once), due by deadline_ms (monotonic,
 * req_now_ms()). Not armed: req_sub_done() only counts until req_arm().
 * NULL on out of memory. */
struct req *req_new(struct req_table *t, uint32_t nsub, uint32_t quorum, req_done_fn *done,
                    int64_t deadline_ms);
/* The live request with this id, or NULL when it has ended. */
struct req *req_find(const struct req_table *t, uint64_t id);

/* Routing is over: from now on the request completes as soon as it can
 * (maybe inside this call, after which r must not be used). */
void req_arm(struct req_table *t, struct req *r);
/* One more sub-result is in (the caller filled r->subs[i]). Completes an
 * armed request that reached its quorum (r must not be used after). */
void req_sub_done(struct req_table *t, struct req *r);
/* The request may complete only once the log is durable up to seq. */
void req_hold(struct req *r, uint64_t seq);
/* Starts another phase of the same request from its done callback: nsub
 * new sub-results (at most the first phase's), cleared, all needed. The
 * callback routes them and returns false; the table arms the request. */
void req_rearm(struct req *r, uint32_t nsub);

/* The log is durable up to seq: completes the held requests it releases. */
void req_durable(struct req_table *t, uint64_t seq);
/* Ends every request whose deadline is at or before now_ms (REQ_END_TIMEOUT). */
void req_expire(struct req_table *t, int64_t now_ms);
/* Ends a request without an answer (REQ_END_DROP): its client went. */
void req_cancel(struct req_table *t, uint64_t id);

/* Live requests. */
uint32_t req_count(const struct req_table *t);
/* A monotonic clock in milliseconds, for deadlines. */
int64_t req_now_ms(void);

#endif
