/* tier.c: reading cold values back (see tier.h).
 * State: a slot array of loads, one per key being read, each holding a copy
 * of the key, the cold entry it read for (pointer and cas: the entry is
 * replaced through requests that wait behind the load, or by one that
 * started the load for a retry and went on (a transaction, cmd_read_back),
 * or removed by expiry, eviction or flush; a changed cas drops what was
 * read), the log position, the read buffer and the
 * FIFO of requests waiting for it. `blocked` is the FIFO of requests that
 * wait behind a shard-wide one (tier.h, Order).
 * A waiting message is parked as a request of the shard (req.h: one
 * sub-result, the shard's deadline, the message as its owner datum); the
 * FIFOs hold request ids, so one that ended meanwhile (its deadline passed
 * and its origin was told) is skipped when its turn comes.
 * A load's life: made by tier_wait(); its read is submitted at once when
 * the record is written (readable), else by a later tier_turn() (a record
 * that compaction has just copied is in the next batch); the completion
 * decodes the record, checks it is the key's current version, puts the
 * value back (store_load_value) and runs the waiting messages in order,
 * each with its key pinned. A record that does not match (the entry moved
 * meanwhile) is read again from the entry's position, twice at most.
 * user_data packs the slot and its generation, so a completion for a slot
 * reused since is recognised. Lookups of "is this key being read?" scan the
 * active loads, which are few (at most one per waiting client request). */
#include "tier.h"

#include <errno.h>
#include <mimalloc.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "net.h"
#include "persist.h"
#include "req.h"
#include "seg.h"
#include "shard.h"
#include "store.h"

#define TIER_READ_TRIES 3
#define TIER_KEEP_BUFFER (64u << 10) /* a slot keeps a read buffer up to this size */

struct tier_load {
    bool in_use;
    bool parked; /* waiting for its record to be written */
    uint32_t gen;
    int tries;
    uint64_t hash;
    char *key;
    uint32_t klen;
    struct table_entry *cold;
    uint64_t cas;
    char *data; /* the read buffer */
    size_t data_cap;
    uint64_t *waiting; /* request ids */
    uint32_t nwaiting, waiting_cap;
};

/* Request ids in order: a growable ring. */
struct tier_fifo {
    uint64_t *ids;
    uint32_t head, len, cap;
};

struct tier {
    struct shard *sh;
    struct tier_load *loads;
    uint32_t nslots;
    uint32_t active;      /* loads in use */
    uint32_t parked;      /* loads waiting for their record to be written */
    uint32_t inflight;    /* reads in the kernel */
    struct tier_fifo blocked;
    int64_t last_error_log_ms;
};

struct tier *tier_create(struct shard *sh)
{
    struct tier *t = mi_zalloc(sizeof *t);
    if (t)
        t->sh = sh;
    return t;
}

static int fifo_push(struct tier_fifo *f, uint64_t id)
{
    if (f->len == f->cap) {
        uint32_t cap = f->cap ? f->cap * 2 : 64;
        uint64_t *ids = mi_malloc(cap * sizeof *ids);
        if (!ids)
            return -ENOMEM;
        for (uint32_t k = 0; k < f->len; k++)
            ids[k] = f->ids[(f->head + k) % f->cap];
        mi_free(f->ids);
        f->ids = ids;
        f->head = 0;
        f->cap = cap;
    }
    f->ids[(f->head + f->len) % f->cap] = id;
    f->len++;
    return 0;
}

static uint64_t fifo_pop(struct tier_fifo *f)
{
    uint64_t id = f->ids[f->head];
    f->head = (f->head + 1) % f->cap;
    f->len--;
    return id;
}

void tier_destroy(struct tier *t)
{
    if (!t)
        return;
    /* Stopping: the waiting messages are the shard's requests, which
     * req_table_fini() drops. */
    for (uint32_t i = 0; i < t->nslots; i++) {
        struct tier_load *l = &t->loads[i];
        mi_free(l->key);
        mi_free(l->data);
        mi_free(l->waiting);
    }
    mi_free(t->blocked.ids);
    mi_free(t->loads);
    mi_free(t);
}

uint32_t tier_busy(const struct tier *t) { return t ? t->inflight : 0; }

/* The request's key: argv[1], or the memcached key. */
static void msg_key(const struct cmd_msg *m, const char **key, uint32_t *klen)
{
    if (m->is_mc) {
        *key = m->mc.nkeys ? m->mc.keys[0].ptr : "";
        *klen = m->mc.nkeys ? m->mc.keys[0].len : 0;
    } else {
        *key = m->argc > 1 ? m->argv[1].ptr : "";
        *klen = m->argc > 1 ? m->argv[1].len : 0;
    }
}

static struct tier_load *find_load(struct tier *t, uint64_t hash, const char *key, uint32_t klen)
{
    if (t->active == 0)
        return NULL;
    for (uint32_t i = 0; i < t->nslots; i++) {
        struct tier_load *l = &t->loads[i];
        if (l->in_use && l->hash == hash && l->klen == klen && memcmp(l->key, key, klen) == 0)
            return l;
    }
    return NULL;
}

/* tier_may_run() for a request that is not behind a shard-wide one. */
static bool may_run(struct shard *sh, uint32_t flags, uint64_t hash, const char *key,
                    uint32_t klen)
{
    struct tier *t = sh->tier;
    struct store *s = sh->store;
    store_pin(s, NULL);
    if (flags & CMD_BARRIER)
        return t->active == 0;
    if (find_load(t, hash, key, klen))
        return false;
    struct table_entry *e = table_find(s->table, key, klen, hash);
    if (e && table_entry_is_cold(e) && !store_is_expired(s, e) && (flags & CMD_READS_VALUE))
        return false;
    store_pin(s, e);
    return true;
}

bool tier_may_run(struct shard *sh, uint32_t flags, uint64_t hash, const char *key,
                  uint32_t klen)
{
    store_pin(sh->store, NULL);
    return sh->tier->blocked.len == 0 && may_run(sh, flags, hash, key, klen);
}

/* The message a waiting request runs (NULL when the request has ended). */
static struct cmd_msg *req_msg(struct shard *sh, uint64_t id, struct req **r)
{
    *r = req_find(&sh->reqs, id);
    return *r ? (*r)->owner_ptr : NULL;
}

/* Runs a waiting request's message now, its key's entry pinned, and ends
 * the request (its result goes back). */
static void run_req(struct shard *sh, struct req *r)
{
    struct cmd_msg *m = r->owner_ptr;
    const char *key;
    uint32_t klen;
    msg_key(m, &key, &klen);
    bool keyless = (m->flags & CMD_NOKEY) != 0;
    store_pin(sh->store, keyless ? NULL : table_find(sh->store->table, key, klen, m->hash));
    cmd_msg_run(sh, m);
    store_pin(sh->store, NULL);
    req_sub_done(&sh->reqs, r);
}

static void fail_req(struct shard *sh, struct req *r, const char *why)
{
    cmd_msg_fail(r->owner_ptr, why);
    req_sub_done(&sh->reqs, r);
}

/* A waiting request ends: its message's result goes back to its origin
 * (done), or a timeout error does (its deadline passed first), or it is
 * freed (stopping). */
static bool tier_req_done(struct req_table *rt, struct req *r, enum req_end how)
{
    struct shard *sh = rt->ctx;
    struct cmd_msg *m = r->owner_ptr;
    if (how == REQ_END_DROP) {
        cmd_msg_free(m);
        return true;
    }
    if (how == REQ_END_TIMEOUT)
        cmd_msg_timeout(m, sh->request_timeout_ms);
    cmd_msg_reply(sh, m);
    return true;
}

static struct tier_load *new_load(struct tier *t)
{
    for (uint32_t i = 0; i < t->nslots; i++)
        if (!t->loads[i].in_use)
            return &t->loads[i];
    uint32_t n = t->nslots ? t->nslots * 2 : 16;
    if (n > (1u << 24)) /* slots fit 24 bits of user_data */
        return NULL;
    struct tier_load *loads = mi_realloc(t->loads, n * sizeof *loads);
    if (!loads)
        return NULL;
    uint32_t first = t->nslots;
    memset(loads + first, 0, (n - first) * sizeof *loads);
    t->loads = loads;
    t->nslots = n;
    return &t->loads[first];
}

static void submit_read(struct tier *t, struct tier_load *l);
static void wait_on_load(struct shard *sh, struct req *r);

/* Ends a load: the value is back (or failed with `why`); the waiting
 * messages run or fail, in order; then what the end of reads unblocks. */
static void finish_load(struct tier *t, struct tier_load *l, const char *why)
{
    struct shard *sh = t->sh;
    /* The slot is free before the messages run: they may start loads. */
    uint64_t *waiting = l->waiting;
    uint32_t n = l->nwaiting;
    l->waiting = NULL;
    l->nwaiting = l->waiting_cap = 0;
    if (l->parked)
        t->parked--;
    l->parked = false;
    l->in_use = false;
    mi_free(l->key);
    l->key = NULL;
    if (l->data_cap > TIER_KEEP_BUFFER) { /* a big value's buffer goes with it */
        mi_free(l->data);
        l->data = NULL;
        l->data_cap = 0;
    }
    l->gen++;
    t->active--;
    for (uint32_t i = 0; i < n; i++) {
        struct req *r;
        if (!req_msg(sh, waiting[i], &r))
            continue; /* ended by its deadline meanwhile */
        if (why)
            fail_req(sh, r, why);
        else
            run_req(sh, r);
    }
    mi_free(waiting);
    while (t->blocked.len > 0) {
        struct req *r;
        struct cmd_msg *m = req_msg(sh, t->blocked.ids[t->blocked.head], &r);
        if (m && (m->flags & CMD_BARRIER) && t->active > 0)
            break;
        fifo_pop(&t->blocked);
        if (!m)
            continue;
        const char *key;
        uint32_t klen;
        msg_key(m, &key, &klen);
        if (may_run(sh, m->flags, m->hash, key, klen)) {
            store_pin(sh->store, NULL);
            run_req(sh, r);
        } else {
            wait_on_load(sh, r); /* joins or starts a load */
        }
    }
}

static void log_read_error(struct tier *t, const char *what, const struct tier_load *l)
{
    int64_t now = t->sh->store->now_ms;
    if (now - t->last_error_log_ms < 1000)
        return;
    t->last_error_log_ms = now;
    log_error("cannot read the value of key '%.*s' back from disk: %s; failing its requests",
              (int)(l->klen > 64 ? 64 : l->klen), l->key, what);
}

/* The load's cold entry, if it is still the key's (NULL when the key went:
 * expired, evicted or flushed; it may have been freed then, so it is only
 * compared, never read, until found again). */
static struct table_entry *load_entry(struct tier *t, const struct tier_load *l)
{
    struct table_entry *e = table_find(t->sh->store->table, l->key, l->klen, l->hash);
    return e == l->cold && table_entry_is_cold(e) && e->cas == l->cas ? e : NULL;
}

/* The most bytes the record of cold entry e can take (a versioned entry's
 * record holds its meta, and its body as the value). */
static size_t record_max(const struct table_entry *e, uint32_t klen)
{
    struct store_version v = {0};
    if (e->meta & TABLE_ENTRY_VERSIONED)
        store_entry_version(e, &v);
    return seg_put_record_max(klen, store_entry_record_len(e), (uint16_t)v.meta_len);
}

static void submit_read(struct tier *t, struct tier_load *l)
{
    struct shard *sh = t->sh;
    if (!load_entry(t, l)) {
        finish_load(t, l, NULL); /* the handlers find the key gone */
        return;
    }
    uint64_t lsn = table_entry_lsn(l->cold);
    if (lsn >= persist_readable_lsn(sh->persist)) {
        if (!l->parked) /* compaction copied it into the batch not yet written */
            t->parked++;
        l->parked = true;
        return;
    }
    if (l->parked)
        t->parked--;
    l->parked = false;
    int fd;
    uint64_t offset;
    int rc = persist_locate(sh->persist, lsn, &fd, &offset);
    size_t want = record_max(l->cold, l->klen);
    if (rc == 0 && l->data_cap < want) {
        mi_free(l->data);
        l->data = mi_malloc(want);
        l->data_cap = l->data ? want : 0;
        if (!l->data)
            rc = -ENOMEM;
    }
    if (rc < 0) {
        log_read_error(t, strerror(-rc), l);
        finish_load(t, l, "cannot read the value from disk (see the log)");
        return;
    }
    l->tries++;
    struct io_uring_sqe *sqe = shard_sqe(sh);
    io_uring_prep_read(sqe, fd, l->data, (unsigned)want, offset);
    io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_TIER_READ, (uint32_t)(l - t->loads), l->gen));
    t->inflight++;
}

void tier_wait(struct shard *sh, struct cmd_msg *m)
{
    struct tier *t = sh->tier;
    store_pin(sh->store, NULL);
    struct req *r = req_new(&sh->reqs, 1, 1, tier_req_done, shard_deadline(sh));
    if (!r) {
        cmd_msg_fail(m, "out of memory");
        cmd_msg_reply(sh, m);
        return;
    }
    r->owner_ptr = m;
    req_arm(&sh->reqs, r);
    if (t->blocked.len > 0 || ((m->flags & CMD_BARRIER) && t->active > 0)) {
        if (fifo_push(&t->blocked, r->id) != 0)
            fail_req(sh, r, "out of memory");
        return;
    }
    wait_on_load(sh, r);
}

/* Joins the load of r's key, or starts one. */
static void wait_on_load(struct shard *sh, struct req *r)
{
    struct tier *t = sh->tier;
    struct cmd_msg *m = r->owner_ptr;
    const char *key;
    uint32_t klen;
    msg_key(m, &key, &klen);
    struct tier_load *l = find_load(t, m->hash, key, klen);
    if (!l) {
        struct table_entry *e = table_find(sh->store->table, key, klen, m->hash);
        if (!e || !table_entry_is_cold(e)) { /* nothing to wait for after all */
            run_req(sh, r);
            return;
        }
        l = new_load(t);
        char *copy = l ? mi_malloc(klen ? klen : 1) : NULL;
        if (!copy) {
            fail_req(sh, r, "out of memory");
            return;
        }
        memcpy(copy, key, klen);
        uint32_t gen = l->gen;
        char *data = l->data;
        size_t data_cap = l->data_cap;
        *l = (struct tier_load){.in_use = true, .gen = gen, .hash = m->hash, .key = copy,
                                .klen = klen, .cold = e, .cas = e->cas, .data = data,
                                .data_cap = data_cap};
        t->active++;
        if (l->waiting_cap == 0) {
            l->waiting = mi_malloc(4 * sizeof *l->waiting);
            l->waiting_cap = l->waiting ? 4 : 0;
        }
        if (!l->waiting) {
            finish_load(t, l, "out of memory");
            fail_req(sh, r, "out of memory");
            return;
        }
        l->waiting[l->nwaiting++] = r->id;
        submit_read(t, l);
        return;
    }
    if (l->nwaiting == l->waiting_cap) {
        uint32_t cap = l->waiting_cap * 2;
        uint64_t *w = mi_realloc(l->waiting, cap * sizeof *w);
        if (!w) {
            fail_req(sh, r, "out of memory");
            return;
        }
        l->waiting = w;
        l->waiting_cap = cap;
    }
    l->waiting[l->nwaiting++] = r->id;
}

void tier_forget_cqe(struct tier *t)
{
    if (t)
        t->inflight--;
}

void tier_on_cqe(struct shard *sh, uint64_t ud, int res)
{
    struct tier *t = sh->tier;
    t->inflight--;
    uint32_t slot = net_ud_slot(ud);
    if (slot >= t->nslots)
        return;
    struct tier_load *l = &t->loads[slot];
    if (!l->in_use || l->gen != net_ud_gen(ud))
        return;
    struct store *s = sh->store;
    struct table_entry *e = load_entry(t, l);
    if (!e) {
        finish_load(t, l, NULL); /* the key went (expired, evicted, flushed) */
        return;
    }
    struct seg_record r;
    size_t used;
    if (res < 0) {
        log_read_error(t, strerror(-res), l);
        finish_load(t, l, "cannot read the value from disk (see the log)");
        return;
    }
    bool ok = seg_decode(l->data, (size_t)res, &r, &used) == SEG_OK && r.type == SEG_PUT &&
              r.key_len == l->klen && memcmp(r.key, l->key, l->klen) == 0 && r.seq == l->cas &&
              r.raw_len == store_entry_record_len(e);
    if (!ok) {
        if (l->tries < TIER_READ_TRIES) { /* the entry may have moved: read again */
            submit_read(t, l);
            return;
        }
        log_read_error(t, "the record there is not the key's current version", l);
        finish_load(t, l, "cannot read the value from disk (see the log)");
        return;
    }
    struct buf value;
    buf_init(&value);
    int rc = seg_value(&r, &value);
    if (rc == 0)
        rc = store_load_value(s, e, l->hash, value.data ? value.data : "", value.len, NULL);
    buf_fini(&value);
    if (rc == -ENOMEM) {
        finish_load(t, l, "out of memory");
        return;
    }
    if (rc < 0 && rc != -EINVAL) {
        log_read_error(t, "the value does not decompress", l);
        finish_load(t, l, "cannot read the value from disk (see the log)");
        return;
    }
    finish_load(t, l, NULL); /* -EINVAL: the key went meanwhile, as above */
}

void tier_turn(struct shard *sh)
{
    struct tier *t = sh->tier;
    if (!t || t->parked == 0)
        return;
    for (uint32_t i = 0; i < t->nslots && t->parked > 0; i++)
        if (t->loads[i].in_use && t->loads[i].parked)
            submit_read(t, &t->loads[i]); /* parks it again if still unwritten */
}
