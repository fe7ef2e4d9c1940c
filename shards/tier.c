/* tier.c: reading cold values back (see tier.h).
 * State: a slot array of loads, one per key being read, each holding a copy
 * of the key, the cold entry it read for (pointer and cas: the entry is
 * only ever replaced through requests that wait behind the load, or removed
 * by expiry, eviction or flush), the log position, the read buffer and the
 * FIFO of messages waiting for it. `blocked` is the FIFO of messages that
 * wait behind a shard-wide request (tier.h, Order).
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
#include "cmd_keys.h"
#include "cmd_mc.h"
#include "cmd_server.h"
#include "cmd_string.h"
#include "log.h"
#include "net.h"
#include "persist.h"
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
    struct cmd_msg **waiting;
    uint32_t nwaiting, waiting_cap;
};

struct tier {
    struct shard *sh;
    struct tier_load *loads;
    uint32_t nslots;
    uint32_t active;      /* loads in use */
    uint32_t parked;      /* loads waiting for their record to be written */
    uint32_t inflight;    /* reads in the kernel */
    struct shard_backlog blocked;
    int64_t last_error_log_ms;
};

struct tier *tier_create(struct shard *sh)
{
    struct tier *t = mi_zalloc(sizeof *t);
    if (t)
        t->sh = sh;
    return t;
}

static void free_msg(struct cmd_msg *m)
{
    buf_fini(&m->reply);
    mi_free(m);
}

void tier_destroy(struct tier *t)
{
    if (!t)
        return;
    /* Stopping: no reply can go any more; the messages are only memory. */
    for (uint32_t i = 0; i < t->nslots; i++) {
        struct tier_load *l = &t->loads[i];
        for (uint32_t j = 0; l->in_use && j < l->nwaiting; j++)
            free_msg(l->waiting[j]);
        mi_free(l->key);
        mi_free(l->data);
        mi_free(l->waiting);
    }
    shard_backlog_free(&t->blocked);
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

/* True for handlers that may read the value of an existing key. The rest
 * read only metadata (existence, expiry, length, flags, cas) or replace the
 * value whole. SET reads it only with its GET option. */
static bool reads_value(cmd_handler *h, const struct resp_arg *argv, uint32_t argc)
{
    if (h == cmd_set) {
        for (uint32_t i = 3; i < argc; i++)
            if (argv[i].len == 3 && strncasecmp(argv[i].ptr, "get", 3) == 0)
                return true;
        return false;
    }
    return !(h == cmd_del || h == cmd_exists || h == cmd_type || h == cmd_ttl ||
             h == cmd_pttl || h == cmd_strlen || h == cmd_setex || h == cmd_psetex ||
             h == cmd_setnx || h == cmd_msetnx_shard || h == cmd_mc_set || h == cmd_mc_add ||
             h == cmd_mc_replace || h == cmd_mc_cas || h == cmd_mc_delete);
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

/* Requests that must not overtake any read in flight: shard-wide ones, and
 * MSETNX on one shard, whose keys beyond the first are not the request's
 * key (it waits for every read, as a shard-wide request does). */
static bool is_barrier(cmd_handler *h, bool keyless)
{
    return keyless || h == cmd_msetnx_shard;
}

/* tier_may_run() for a request that is not behind a shard-wide one. */
static bool may_run(struct shard *sh, cmd_handler *h, uint64_t hash, const char *key,
                    uint32_t klen, bool keyless, const struct resp_arg *argv, uint32_t argc)
{
    struct tier *t = sh->tier;
    struct store *s = sh->store;
    store_pin(s, NULL);
    if (is_barrier(h, keyless))
        return t->active == 0;
    if (find_load(t, hash, key, klen))
        return false;
    struct table_entry *e = table_find(s->table, key, klen, hash);
    if (e && table_entry_is_cold(e) && !store_is_expired(s, e) && reads_value(h, argv, argc))
        return false;
    store_pin(s, e);
    return true;
}

bool tier_may_run(struct shard *sh, cmd_handler *h, uint64_t hash, const char *key,
                  uint32_t klen, bool keyless, const struct resp_arg *argv, uint32_t argc)
{
    store_pin(sh->store, NULL);
    return sh->tier->blocked.len == 0 && may_run(sh, h, hash, key, klen, keyless, argv, argc);
}

/* Runs a message now, its key's entry pinned. */
static void run_msg(struct shard *sh, struct cmd_msg *m)
{
    const char *key;
    uint32_t klen;
    msg_key(m, &key, &klen);
    store_pin(sh->store, m->keyless ? NULL : table_find(sh->store->table, key, klen, m->hash));
    cmd_msg_run(sh, m);
    store_pin(sh->store, NULL);
}

static void fail_msg(struct shard *sh, struct cmd_msg *m, const char *why)
{
    buf_clear(&m->reply);
    if (m->is_mc) {
        buf_append_str(&m->reply, "SERVER_ERROR ");
        buf_append_str(&m->reply, why);
        buf_append_str(&m->reply, "\r\n");
    } else {
        char msg[160];
        snprintf(msg, sizeof msg, "ERR %s", why);
        resp_write_error(&m->reply, msg);
    }
    shard_reply(sh, m);
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
static void wait_on_load(struct shard *sh, struct cmd_msg *m);

/* Ends a load: the value is back (or failed with `why`); the waiting
 * messages run or fail, in order; then what the end of reads unblocks. */
static void finish_load(struct tier *t, struct tier_load *l, const char *why)
{
    struct shard *sh = t->sh;
    /* The slot is free before the messages run: they may start loads. */
    struct cmd_msg **waiting = l->waiting;
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
        if (why)
            fail_msg(sh, waiting[i], why);
        else
            run_msg(sh, waiting[i]);
    }
    mi_free(waiting);
    while (t->blocked.len > 0) {
        struct cmd_msg *m = t->blocked.msgs[t->blocked.head];
        if (is_barrier(m->handler, m->keyless) && t->active > 0)
            break;
        shard_backlog_pop(&t->blocked);
        const char *key;
        uint32_t klen;
        msg_key(m, &key, &klen);
        if (may_run(sh, m->handler, m->hash, key, klen, m->keyless, m->argv, m->argc)) {
            cmd_msg_run(sh, m);
            store_pin(sh->store, NULL);
        } else {
            wait_on_load(sh, m); /* joins or starts a load */
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
    size_t want = seg_put_record_max(l->klen, l->cold->val_len, 0);
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
    io_uring_sqe_set_data64(sqe, net_ud(NET_OP_TIER_READ, (uint32_t)(l - t->loads), l->gen));
    t->inflight++;
}

void tier_wait(struct shard *sh, struct cmd_msg *m)
{
    struct tier *t = sh->tier;
    store_pin(sh->store, NULL);
    if (t->blocked.len > 0 || (is_barrier(m->handler, m->keyless) && t->active > 0)) {
        if (shard_backlog_push(&t->blocked, m) != 0)
            fail_msg(sh, m, "out of memory");
        return;
    }
    wait_on_load(sh, m);
}

/* Joins the load of m's key, or starts one. */
static void wait_on_load(struct shard *sh, struct cmd_msg *m)
{
    struct tier *t = sh->tier;
    const char *key;
    uint32_t klen;
    msg_key(m, &key, &klen);
    struct tier_load *l = find_load(t, m->hash, key, klen);
    if (!l) {
        struct table_entry *e = table_find(sh->store->table, key, klen, m->hash);
        if (!e || !table_entry_is_cold(e)) { /* nothing to wait for after all */
            run_msg(sh, m);
            return;
        }
        l = new_load(t);
        char *copy = l ? mi_malloc(klen ? klen : 1) : NULL;
        if (!copy) {
            fail_msg(sh, m, "out of memory");
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
            fail_msg(sh, m, "out of memory");
            return;
        }
        l->waiting[l->nwaiting++] = m;
        submit_read(t, l);
        return;
    }
    if (l->nwaiting == l->waiting_cap) {
        uint32_t cap = l->waiting_cap * 2;
        struct cmd_msg **w = mi_realloc(l->waiting, cap * sizeof *w);
        if (!w) {
            fail_msg(sh, m, "out of memory");
            return;
        }
        l->waiting = w;
        l->waiting_cap = cap;
    }
    l->waiting[l->nwaiting++] = m;
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
              r.raw_len == e->val_len;
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
