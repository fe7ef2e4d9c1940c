/* cmd_lcs.c: Redis 7.0's LCS, the longest common subsequence of two string
 * values (cmd_lcs.h).
 *
 * LCS k1 k2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the classic dynamic
 * programme over a (len1 + 1) x (len2 + 1) table of 32-bit lengths, then a
 * walk back from its corner that rebuilds the subsequence and, for IDX,
 * the matching ranges, last first, as Redis lists them: on a match the
 * current range grows backward (or one starts); off a match the walk steps
 * toward the larger neighbour (j when they tie), and a range open then, or
 * one that reached the first byte of either string, is emitted. A missing
 * key reads as an empty string. The replies, option checks and error texts
 * are Redis 7.0's; bits_vs_redis.sh compares them with redis-server.
 *
 * Options are checked before the keys are read (Redis reads first; only
 * -TRYAGAIN, below, could tell the difference).
 *
 * Bounds: the table is transient memory and its fill runs on the shard's
 * loop, holding up every other client of the shard, so a pair of strings
 * whose table would pass LCS_MAX_CELLS (4M cells, two strings of about
 * 2 KB: 16 MiB, 10 to 30 ms here) is refused with an error instead (Redis
 * refuses past proto-max-bulk-len bytes of table, 512 MiB by default,
 * and blocks its one thread meanwhile: seconds). Values beyond RAM: a
 * value on disk only is read back and the client told to retry
 * (-TRYAGAIN), as BITOP's sources are (the first key's is read back before
 * the handler runs, but a transaction's earlier write may cool it). In a
 * cluster LCS is a read of two keys of one slot, coordinated as WATCH is
 * (a quorum read of both, then the command here; coord.c). */
#include "cmd_lcs.h"

#include <mimalloc.h>
#include <string.h>

#include "cmd_string.h"
#include "keyhash.h"
#include "num.h"
#include "resp.h"
#include "store.h"
#include "table.h"

#define LCS_MAX_CELLS (1ull << 22)

struct lcs_opts {
    bool idx, len, withmatchlen;
    int64_t minmatchlen;
};

/* The options (argv[3..]); replies and returns false on a bad one. */
static bool lcs_parse(struct cmd_ctx *c, struct lcs_opts *o)
{
    *o = (struct lcs_opts){0};
    for (uint32_t j = 3; j < c->argc; j++) {
        const struct resp_arg *a = &c->argv[j];
        if (cmd_arg_is(a, "idx")) {
            o->idx = true;
        } else if (cmd_arg_is(a, "len")) {
            o->len = true;
        } else if (cmd_arg_is(a, "withmatchlen")) {
            o->withmatchlen = true;
        } else if (cmd_arg_is(a, "minmatchlen") && j + 1 < c->argc) {
            if (!num_parse_i64(c->argv[j + 1].ptr, c->argv[j + 1].len, &o->minmatchlen)) {
                cmd_reply_error(c, CMD_ERR_NOT_INT);
                return false;
            }
            if (o->minmatchlen < 0)
                o->minmatchlen = 0;
            j++;
        } else {
            cmd_reply_error(c, CMD_ERR_SYNTAX);
            return false;
        }
    }
    if (o->idx && o->len) {
        cmd_reply_error(c, "ERR If you want both the length and indexes, please just use IDX.");
        return false;
    }
    return true;
}

/* One range of an IDX reply: [[a_start, a_end], [b_start, b_end]] and the
 * match's length with WITHMATCHLEN. */
static void lcs_write_range(struct buf *out, uint32_t a0, uint32_t a1, uint32_t b0, uint32_t b1,
                            bool withlen)
{
    resp_write_array_len(out, withlen ? 3 : 2);
    resp_write_array_len(out, 2);
    resp_write_int(out, a0);
    resp_write_int(out, a1);
    resp_write_array_len(out, 2);
    resp_write_int(out, b0);
    resp_write_int(out, b1);
    if (withlen)
        resp_write_int(out, (int64_t)a1 - a0 + 1);
}

/* The walk back from the table's corner (see the top of the file): fills
 * `result` (the subsequence, its length known) and, with `ranges`, writes
 * the ranges kept into it; returns how many were written. */
static uint32_t lcs_walk(const uint32_t *t, const char *a, uint32_t alen, const char *b,
                         uint32_t blen, char *result, struct buf *ranges,
                         const struct lcs_opts *o)
{
    const uint64_t w = (uint64_t)blen + 1;
#define LCS_AT(i, j) t[(uint64_t)(i) * w + (j)]
    uint32_t idx = LCS_AT(alen, blen), i = alen, j = blen, n = 0;
    uint32_t a0 = alen, a1 = 0, b0 = 0, b1 = 0; /* a0 == alen: no range open */
    while (i > 0 && j > 0) {
        bool emit = false;
        if (a[i - 1] == b[j - 1]) {
            result[idx - 1] = a[i - 1];
            if (a0 == alen) {
                a0 = a1 = i - 1;
                b0 = b1 = j - 1;
            } else if (a0 == i && b0 == j) { /* contiguous: the range grows backward */
                a0--;
                b0--;
            } else {
                emit = true;
            }
            if (a0 == 0 || b0 == 0)
                emit = true; /* a string's first byte: nothing before it */
            idx--;
            i--;
            j--;
        } else {
            if (LCS_AT(i - 1, j) > LCS_AT(i, j - 1))
                i--;
            else
                j--;
            if (a0 != alen)
                emit = true;
        }
        if (emit) {
            if (ranges && (o->minmatchlen == 0 || (int64_t)a1 - a0 + 1 >= o->minmatchlen)) {
                lcs_write_range(ranges, a0, a1, b0, b1, o->withmatchlen);
                n++;
            }
            a0 = alen;
        }
    }
#undef LCS_AT
    return n;
}

void cmd_lcs(struct cmd_ctx *c)
{
    struct lcs_opts o;
    if (!lcs_parse(c, &o))
        return;
    const struct resp_arg *k1 = &c->argv[1], *k2 = &c->argv[2];
    uint64_t h1 = c->hash, h2 = keyhash(k2->ptr, k2->len);
    struct table_entry *ea = store_lookup_read(c->store, k1->ptr, k1->len, h1);
    struct table_entry *eb = store_lookup_read(c->store, k2->ptr, k2->len, h2);
    c->hash = 0; /* two keys read: the reply waits for all of the shard's records */
    bool cold_a = ea && table_entry_is_cold(ea), cold_b = eb && table_entry_is_cold(eb);
    if (cold_a || cold_b) { /* the first too: a transaction's earlier write may cool it */
        if (cold_a)
            cmd_read_back(c, k1, h1);
        if (cold_b)
            cmd_read_back(c, k2, h2);
        cmd_reply_error(c, "TRYAGAIN a value was on disk only; it is being read back");
        return;
    }
    uint32_t alen = ea ? ea->val_len : 0, blen = eb ? eb->val_len : 0;
    uint64_t cells = ((uint64_t)alen + 1) * ((uint64_t)blen + 1);
    if (cells > LCS_MAX_CELLS) {
        cmd_reply_error(c, "ERR LCS of strings this long would hold up the server: "
                           "(len1 + 1) * (len2 + 1) must be at most 4194304");
        return;
    }
    uint32_t *t = mi_malloc(cells * sizeof *t);
    char *result = NULL;
    if (!t) {
        cmd_reply_error(c, CMD_ERR_OOM);
        return;
    }
    const char *a = ea ? table_entry_val(ea) : "", *b = eb ? table_entry_val(eb) : "";
    const uint64_t w = (uint64_t)blen + 1;
    memset(t, 0, w * sizeof *t);
    for (uint32_t i = 1; i <= alen; i++) {
        uint32_t *row = t + i * w, *up = row - w;
        row[0] = 0;
        for (uint32_t j = 1; j <= blen; j++)
            row[j] = a[i - 1] == b[j - 1] ? up[j - 1] + 1
                                          : (up[j] > row[j - 1] ? up[j] : row[j - 1]);
    }
    uint32_t total = t[(uint64_t)alen * w + blen];
    if (o.len) {
        mi_free(t);
        cmd_reply_int(c, total);
        return;
    }
    if (!(result = mi_malloc(total + 1))) {
        mi_free(t);
        cmd_reply_error(c, CMD_ERR_OOM);
        return;
    }
    if (!o.idx) {
        lcs_walk(t, a, alen, b, blen, result, NULL, &o);
        cmd_reply_bulk(c, result, total);
    } else {
        struct buf ranges;
        buf_init(&ranges);
        uint32_t n = lcs_walk(t, a, alen, b, blen, result, &ranges, &o);
        if (ranges.failed) {
            cmd_reply_error(c, CMD_ERR_OOM);
        } else {
            resp_write_map_len(c->out, c->proto, 2);
            resp_write_bulk_str(c->out, "matches");
            resp_write_array_len(c->out, n);
            buf_append(c->out, ranges.data, ranges.len);
            resp_write_bulk_str(c->out, "len");
            resp_write_int(c->out, total);
        }
        buf_fini(&ranges);
    }
    mi_free(result);
    mi_free(t);
}
