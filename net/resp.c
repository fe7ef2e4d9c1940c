/* resp.c: the Redis protocol parser and reply writers (see resp.h).
 * Resumable: the caller keeps a struct resp_state per connection, and each
 * call goes on from where the last stopped: a multibulk request moves through
 * phases (the "*N" line, then per argument its "$len" line and its bulk), and
 * a line's end is searched for only in bytes no earlier call searched. So
 * every byte of a request is looked at a bounded number of times however the
 * reads split it (a request of a million arguments arriving a few bytes at a
 * time costs linear work, not quadratic), while a whole request in one buffer
 * parses in one pass, as before. Argument slices made by an earlier call may
 * point into bytes the caller has since moved, so when a resumed request
 * completes, those slices are made again by a walk over the "$len" lines only
 * (refill_args); the state holds offsets, never pointers. st->examined counts
 * the bytes each call walked over (searched, decoded, or skipped as a bulk,
 * plus refill and inline re-splits), so tests can check the linearity; it
 * costs one subtraction per call.
 * *need (the end of the bulk being read) still tells the caller when calling
 * again is worth it.
 * Multibulk: "*N\r\n" then N times "$len\r\n<len bytes>\r\n". Count lines are
 * found with memchr and must end within COUNT_LINE_MAX bytes; numbers follow
 * Redis's string2ll (optional '-', no '+', no leading zeros, no spaces). Checks
 * run in stream order and each looks only at bytes before the point it
 * decides, so the outcome never depends on how the bytes were split into
 * reads: a prefix of a request yields RESP_MORE or the same RESP_BAD as the
 * whole. RESP_NEED_ARGS is only reported once the whole request is present,
 * so a hostile "*1000000" header cannot make the caller grow argv before the
 * arguments exist.
 * Inline: any request not starting with '*' is one line ending in "\n",
 * split the way Redis's sdssplitargs splits it (so a "\r" before the "\n" is
 * just another blank). Unquoted arguments point into the input; an argument
 * with quotes is unescaped into scratch. NUL is an ordinary byte here (Redis's
 * C-string scan stalls on it; we do not copy that).
 * Writers append to a struct buf; integers and lengths are formatted by hand
 * because they sit on every reply. Doubles use "%.17g", which round-trips but
 * prints e.g. 0.1 as 0.10000000000000001 (Redis trims that; we keep it simple). */
#include "resp.h"

#include "num.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Longest "*N" or "$N" line, as Redis's PROTO_INLINE_MAX_SIZE. */
#define COUNT_LINE_MAX (64 * 1024)

#define PROTO_ERR "ERR Protocol error: "
static const char err_mbulk_len[] = PROTO_ERR "invalid multibulk length";
static const char err_bulk_len[] = PROTO_ERR "invalid bulk length";
static const char err_bulk_crlf[] = PROTO_ERR "bulk data not followed by CRLF";
static const char err_big_mbulk[] = PROTO_ERR "too big mbulk count string";
static const char err_big_bulk[] = PROTO_ERR "too big bulk count string";

/* What a count line's errors say: "*N" or "$len". */
struct count_errs {
    const char *too_big;
    const char *invalid;
};
static const struct count_errs mbulk_errs = {err_big_mbulk, err_mbulk_len};
static const struct count_errs bulk_errs = {err_big_bulk, err_bulk_len};
static const char err_big_inline[] = PROTO_ERR "too big inline request";
static const char err_quotes[] = PROTO_ERR "unbalanced quotes in request";

/* "expected '$', got 'X'" for every byte X, built at compile time so *err is
 * always static text. CR, LF and NUL show as a space, as Redis's error
 * sanitising prints them. */
#define DOLLAR_SHOWN(b) ((b) == 0 || (b) == '\r' || (b) == '\n' ? ' ' : (char)(b))
#define DOLLAR_MSG(b)                                                                              \
    {                                                                                              \
        'E', 'R', 'R', ' ', 'P', 'r', 'o', 't', 'o', 'c', 'o', 'l', ' ', 'e', 'r', 'r', 'o', 'r',  \
            ':', ' ', 'e', 'x', 'p', 'e', 'c', 't', 'e', 'd', ' ', '\'', '$', '\'', ',', ' ', 'g', \
            'o', 't', ' ', '\'', DOLLAR_SHOWN(b), '\'', '\0'                                       \
    }
#define DOLLAR_4(b) DOLLAR_MSG(b), DOLLAR_MSG((b) + 1), DOLLAR_MSG((b) + 2), DOLLAR_MSG((b) + 3)
#define DOLLAR_16(b) DOLLAR_4(b), DOLLAR_4((b) + 4), DOLLAR_4((b) + 8), DOLLAR_4((b) + 12)
#define DOLLAR_64(b) DOLLAR_16(b), DOLLAR_16((b) + 16), DOLLAR_16((b) + 32), DOLLAR_16((b) + 48)
static const char err_dollar[256][42] = {DOLLAR_64(0), DOLLAR_64(64), DOLLAR_64(128),
                                         DOLLAR_64(192)};

/* Where a request stands between calls (resp.h: struct resp_state.phase). */
enum {
    PHASE_LINE,  /* reading the "*N" line, or an inline line */
    PHASE_HEAD,  /* reading the "$len" line of argument `done`, at `pos` */
    PHASE_DATA,  /* waiting for the bulk of argument `done`, at `pos` */
    PHASE_WHOLE, /* every byte is in, but argv was too small */
};

/* One call's inputs and results, so the phases below stay small. */
struct resp_parser {
    const struct resp_limits *lim;
    struct resp_state *st;
    const char *data;
    size_t len;
    struct resp_arg *argv;
    uint32_t argv_cap;
    char *scratch;
    size_t scratch_cap;
    uint32_t argc;
    size_t consumed;
    size_t need;
    const char *err;
};

static enum resp_status parse_bad(struct resp_parser *ps, const char *err)
{
    ps->err = err;
    return RESP_BAD;
}

/* Finds the "\r\n" ending the count line that starts at pos, searching from
 * `from` (pos, or further when an earlier call searched the bytes before it;
 * st->scan is saved when the end is not in yet).
 * 1: found, *cr is the index of '\r'; 0: need more bytes; -1: too long. */
static int find_count_line(struct resp_parser *ps, size_t pos, size_t from, size_t *cr)
{
    size_t avail = ps->len - pos;
    size_t limit = pos + (avail < COUNT_LINE_MAX ? avail : COUNT_LINE_MAX);
    const char *r = memchr(ps->data + from, '\r', limit - from);
    if (!r) {
        ps->st->scan = limit;
        return avail >= COUNT_LINE_MAX ? -1 : 0;
    }
    *cr = (size_t)(r - ps->data);
    if (*cr + 1 < ps->len)
        return 1;
    ps->st->scan = *cr; /* the '\n' still to come is looked for right here */
    return 0;
}

/* Reads "<type>N\r\n" at pos (searched from `from`, see find_count_line):
 * the number between type byte and CRLF. RESP_OK with *v and *next set;
 * RESP_MORE; or RESP_BAD with ps->err set. */
static enum resp_status parse_count_line(struct resp_parser *ps, size_t pos, size_t from,
                                         int64_t *v, size_t *next, const struct count_errs *errs)
{
    size_t cr;
    int found = find_count_line(ps, pos, from, &cr);
    if (found == 0)
        return RESP_MORE;
    if (found < 0)
        return parse_bad(ps, errs->too_big);
    if (ps->data[cr + 1] != '\n' || !num_parse_i64(ps->data + pos + 1, cr - pos - 1, v))
        return parse_bad(ps, errs->invalid);
    *next = cr + 2;
    return RESP_OK;
}

/* Reads arguments from `done` on, resuming in the phase the last call
 * stopped in. RESP_OK once all `count` are in, with ps->consumed the end of
 * the request; RESP_MORE with the progress saved in st; or RESP_BAD.
 * Arguments that fit in argv get their slice here. The state is written
 * only when the call stops short, so a whole request costs no stores to it. */
static enum resp_status read_args(struct resp_parser *ps, uint32_t count, size_t pos)
{
    struct resp_state *st = ps->st;
    uint64_t max_bulk = ps->lim->max_bulk < UINT32_MAX ? ps->lim->max_bulk : UINT32_MAX;
    uint64_t blen = st->bulk_len;
    bool in_data = st->phase == PHASE_DATA;
    /* Only the first line of this call may resume a search; a scan left over
     * from an earlier line lies before pos. */
    size_t from = st->scan > pos ? st->scan : pos;
    enum resp_status rs = RESP_OK;
    uint32_t i;
    for (i = st->done; i < count; i++) {
        if (!in_data) {
            int64_t v;
            size_t next;
            if (pos >= ps->len) {
                rs = RESP_MORE;
                break;
            }
            if (ps->data[pos] != '$')
                return parse_bad(ps, err_dollar[(unsigned char)ps->data[pos]]);
            rs = parse_count_line(ps, pos, from, &v, &next, &bulk_errs);
            if (rs != RESP_OK)
                break;
            if (v < 0 || (uint64_t)v > max_bulk)
                return parse_bad(ps, err_bulk_len);
            pos = next;
            blen = (uint64_t)v;
        }
        if (ps->len - pos < blen + 2) {
            ps->need = pos + blen + 2;
            in_data = true;
            rs = RESP_MORE;
            break;
        }
        if (ps->data[pos + blen] != '\r' || ps->data[pos + blen + 1] != '\n')
            return parse_bad(ps, err_bulk_crlf);
        if (i < ps->argv_cap) {
            ps->argv[i].ptr = ps->data + pos;
            ps->argv[i].len = (uint32_t)blen;
        }
        pos += blen + 2;
        from = pos;
        in_data = false;
    }
    if (rs == RESP_OK) {
        ps->consumed = pos;
        return RESP_OK;
    }
    st->count = count;
    st->pos = pos;
    st->bulk_len = blen;
    st->done = i;
    st->phase = in_data ? PHASE_DATA : PHASE_HEAD;
    return rs;
}

/* Points argv[0..n) at their bulks again: those arguments were read by
 * earlier calls, when the bytes may have been elsewhere. Each "$len" line
 * is known to be well formed, so this only walks the headers. */
static void refill_args(struct resp_parser *ps, uint32_t n)
{
    const char *d = ps->data;
    const char *cr = memchr(d, '\r', ps->len);
    size_t pos = (size_t)(cr - d) + 2;
    for (uint32_t i = 0; i < n; i++) {
        cr = memchr(d + pos, '\r', ps->len - pos);
        size_t start = (size_t)(cr - d) + 2;
        int64_t blen = 0;
        num_parse_i64(d + pos + 1, (size_t)(cr - d) - pos - 1, &blen);
        ps->argv[i].ptr = d + start;
        ps->argv[i].len = (uint32_t)blen;
        pos = start + (size_t)blen + 2;
    }
    ps->st->examined += pos;
}

/* The "*N" line, then the arguments from where the last call stopped. */
static enum resp_status multibulk_body(struct resp_parser *ps)
{
    struct resp_state *st = ps->st;
    uint32_t count = st->count;
    size_t pos = st->pos;
    uint32_t refill = st->done; /* arguments whose slices an earlier call made */
    if (st->phase == PHASE_LINE) {
        int64_t v;
        enum resp_status rs = parse_count_line(ps, 0, st->scan, &v, &pos, &mbulk_errs);
        if (rs != RESP_OK)
            return rs;
        if (v > (int64_t)ps->lim->max_args)
            return parse_bad(ps, err_mbulk_len);
        if (v <= 0) { /* "*0" and "*-1": an empty request, as Redis */
            ps->consumed = pos;
            return RESP_OK;
        }
        count = (uint32_t)v;
    }
    if (st->phase == PHASE_WHOLE) {
        ps->consumed = pos;
    } else {
        enum resp_status rs = read_args(ps, count, pos);
        if (rs != RESP_OK)
            return rs;
    }
    ps->argc = count;
    if (count > ps->argv_cap) {
        st->count = count;
        st->done = count;
        st->pos = ps->consumed;
        st->phase = PHASE_WHOLE;
        return RESP_NEED_ARGS;
    }
    if (refill > 0)
        refill_args(ps, refill);
    return RESP_OK;
}

/* Where the next call resumes; what lies before it was walked already. */
static size_t resume_point(const struct resp_state *st)
{
    return st->scan > st->pos ? st->scan : st->pos;
}

/* The "*N" line, then the arguments. The work meter counts bytes walked
 * over (searched, decoded, or skipped as a bulk): from where this call
 * resumed to where the next one will, or to the request's end. */
static enum resp_status parse_multibulk(struct resp_parser *ps)
{
    struct resp_state *st = ps->st;
    size_t begin = resume_point(st);
    enum resp_status rs = multibulk_body(ps);
    if (rs == RESP_OK)
        ps->st->examined += ps->consumed - begin;
    else if (rs != RESP_BAD)
        ps->st->examined += resume_point(st) - begin;
    return rs;
}

/* isspace() in the C locale: what sdssplitargs skips between arguments. */
static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* What ends an unquoted argument (a narrower set than is_blank, as Redis). */
static bool ends_word(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static char unescape_char(char c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'b':
        return '\b';
    case 'a':
        return '\a';
    default:
        return c;
    }
}

/* Copies the quoted section opening at line[*pos] (a '"' or '\'') to *out,
 * unescaping it; *pos ends past the closing quote. False: unbalanced quotes
 * or a closing quote followed by something other than a blank. */
static bool unquote(const char *line, size_t end, size_t *pos, char **out)
{
    char quote = line[*pos];
    size_t i = *pos + 1;
    char *o = *out;
    for (;;) {
        if (i >= end)
            return false;
        char c = line[i];
        if (c == quote) {
            if (i + 1 < end && !is_blank(line[i + 1]))
                return false;
            *pos = i + 1;
            *out = o;
            return true;
        }
        if (c != '\\' || i + 1 >= end) {
            *o++ = c;
            i++;
        } else if (quote == '\'') {
            *o++ = line[i + 1] == '\'' ? '\'' : '\\';
            i += line[i + 1] == '\'' ? 2 : 1;
        } else if (line[i + 1] == 'x' && i + 3 < end && hex_val(line[i + 2]) >= 0 &&
                   hex_val(line[i + 3]) >= 0) {
            *o++ = (char)(hex_val(line[i + 2]) * 16 + hex_val(line[i + 3]));
            i += 4;
        } else {
            *o++ = unescape_char(line[i + 1]);
            i += 2;
        }
    }
}

/* Reads the inline argument starting at line[*pos] (not a blank).
 * An argument is unquoted bytes, optionally ending in one quoted section. */
static enum resp_status inline_arg(struct resp_parser *ps, size_t end, size_t *pos,
                                   size_t *scratch_used, struct resp_arg *arg)
{
    const char *line = ps->data;
    size_t start = *pos;
    size_t i = start;
    while (i < end && !ends_word(line[i]) && line[i] != '"' && line[i] != '\'')
        i++;
    if (i >= end || ends_word(line[i])) {
        arg->ptr = line + start;
        arg->len = (uint32_t)(i - start);
        *pos = i;
        return RESP_OK;
    }
    /* Unescaped text never outgrows the rest of the line, so this one check
     * covers every byte written below. */
    if (ps->scratch_cap - *scratch_used < end - start)
        return parse_bad(ps, err_big_inline);
    char *o = ps->scratch + *scratch_used;
    memcpy(o, line + start, i - start);
    arg->ptr = o;
    o += i - start;
    if (!unquote(line, end, &i, &o))
        return parse_bad(ps, err_quotes);
    arg->len = (uint32_t)(o - arg->ptr);
    *scratch_used += arg->len;
    *pos = i;
    return RESP_OK;
}

/* Finds the inline line's "\n", searching only bytes no earlier call
 * searched. 1: found, *end is its index; 0: need more; -1: too long. */
static int find_inline_end(struct resp_parser *ps, size_t *end)
{
    struct resp_state *st = ps->st;
    if (st->phase == PHASE_WHOLE) {
        *end = st->pos;
        return 1;
    }
    uint64_t max_inline = ps->lim->max_inline < UINT32_MAX ? ps->lim->max_inline : UINT32_MAX;
    size_t window = ps->len < max_inline ? ps->len : (size_t)max_inline;
    const char *nl = memchr(ps->data + st->scan, '\n', window - st->scan);
    if (!nl) {
        ps->st->examined += window - st->scan;
        st->scan = window;
        return ps->len >= max_inline ? -1 : 0;
    }
    *end = (size_t)(nl - ps->data);
    ps->st->examined += *end + 1 - st->scan;
    return 1;
}

static enum resp_status parse_inline(struct resp_parser *ps)
{
    size_t end; /* a "\r" before the "\n" is a blank like any other */
    int found = find_inline_end(ps, &end);
    if (found == 0)
        return RESP_MORE;
    if (found < 0)
        return parse_bad(ps, err_big_inline);
    ps->st->examined += end + 1;

    uint32_t count = 0;
    size_t pos = 0;
    size_t scratch_used = 0;
    for (;;) {
        while (pos < end && is_blank(ps->data[pos]))
            pos++;
        if (pos >= end)
            break;
        struct resp_arg arg;
        enum resp_status st = inline_arg(ps, end, &pos, &scratch_used, &arg);
        if (st != RESP_OK)
            return st;
        if (count < ps->argv_cap)
            ps->argv[count] = arg;
        count++;
    }
    ps->argc = count;
    if (count > ps->argv_cap) {
        ps->st->phase = PHASE_WHOLE;
        ps->st->pos = end;
        return RESP_NEED_ARGS;
    }
    ps->consumed = end + 1;
    return RESP_OK;
}

void resp_state_reset(struct resp_state *st)
{
    uint64_t examined = st->examined;
    memset(st, 0, sizeof *st);
    st->examined = examined;
}

/* ---- peeking ahead (resp_peek_keys) ---- */

/* The decimal after a type byte, up to its CRLF, in [*pp, end): its value
 * with *pp moved past the line, or -1 (anything else, cut short, or more
 * than 9 digits). */
static long long peek_number(const char **pp, const char *end, char type)
{
    const char *p = *pp;
    if (p >= end || *p != type)
        return -1;
    p++;
    long long v = 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9' && digits < 9) {
        v = v * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || end - p < 2 || p[0] != '\r' || p[1] != '\n')
        return -1;
    *pp = p + 2;
    return v;
}

uint32_t resp_peek_keys(const char *data, size_t len, struct resp_arg *keys, uint32_t max)
{
    const char *p = data, *end = data + len;
    uint32_t n = 0;
    for (uint32_t req = 0; req < max; req++) {
        long long argc = peek_number(&p, end, '*');
        if (argc < 1 || argc > RESP_PEEK_ARGS)
            break;
        for (long long i = 0; i < argc; i++) {
            long long l = peek_number(&p, end, '$');
            if (l < 0 || (size_t)(end - p) < (size_t)l + 2)
                return n;
            if (i == 1)
                keys[n++] = (struct resp_arg){.ptr = p, .len = (uint32_t)l};
            p += l + 2;
        }
    }
    return n;
}

enum resp_status resp_parse(const struct resp_limits *lim, struct resp_state *state,
                            const char *data, size_t len, struct resp_arg *argv, uint32_t argv_cap,
                            uint32_t *argc, char *scratch, size_t scratch_cap, size_t *consumed,
                            size_t *need, const char **err)
{
    /* A fresh state stays untouched by a request parsed whole in this call
     * (the state is written only when a call stops short). */
    bool is_fresh = state->phase == PHASE_LINE && state->scan == 0;
    struct resp_parser ps = {
        .lim = lim,
        .st = state,
        .data = data,
        .len = len,
        .argv = argv,
        .argv_cap = argv_cap,
        .scratch = scratch,
        .scratch_cap = scratch_cap,
    };
    enum resp_status st = RESP_MORE;
    if (len > 0)
        st = data[0] == '*' ? parse_multibulk(&ps) : parse_inline(&ps);
    if (st == RESP_BAD || (st == RESP_OK && !is_fresh))
        resp_state_reset(state);
    *argc = st == RESP_OK || st == RESP_NEED_ARGS ? ps.argc : 0;
    *consumed = st == RESP_OK ? ps.consumed : 0;
    *need = st == RESP_MORE ? ps.need : 0;
    *err = st == RESP_BAD ? ps.err : NULL;
    return st;
}

/* ---- writers ---- */

/* Writes the decimal digits of v ending just before end; returns the start. */
static char *fmt_u64(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static char *fmt_i64(char *end, int64_t v)
{
    char *p = fmt_u64(end, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    if (v < 0)
        *--p = '-';
    return p;
}

/* Longest "<type>-<20 digits>\r\n". */
#define HEADER_MAX 32

/* Formats "<type><v>\r\n" at the end of tmp; returns its start. */
static char *fmt_header(char tmp[HEADER_MAX], char type, int64_t v, bool is_unsigned)
{
    char *end = tmp + HEADER_MAX - 2;
    end[0] = '\r';
    end[1] = '\n';
    char *p = is_unsigned ? fmt_u64(end, (uint64_t)v) : fmt_i64(end, v);
    *--p = type;
    return p;
}

static void write_header(struct buf *b, char type, uint64_t n)
{
    char tmp[HEADER_MAX];
    char *p = fmt_header(tmp, type, (int64_t)n, true);
    buf_append(b, p, (size_t)(tmp + HEADER_MAX - p));
}

/* Appends "<type><s>\r\n" with any CR or LF inside s turned into a space,
 * so a message can never break the framing. */
static void write_line(struct buf *b, char type, const char *s)
{
    size_t n = strlen(s);
    if (buf_reserve(b, n + 3) != 0)
        return;
    char *o = b->data + b->len;
    o[0] = type;
    for (size_t i = 0; i < n; i++)
        o[1 + i] = (s[i] == '\r' || s[i] == '\n') ? ' ' : s[i];
    o[n + 1] = '\r';
    o[n + 2] = '\n';
    b->len += n + 3;
}

void resp_write_simple(struct buf *b, const char *s)
{
    write_line(b, '+', s);
}

void resp_write_error(struct buf *b, const char *msg)
{
    write_line(b, '-', msg);
}

void resp_write_ok(struct buf *b)
{
    buf_append(b, "+OK\r\n", 5);
}

void resp_write_int(struct buf *b, int64_t v)
{
    char tmp[HEADER_MAX];
    char *p = fmt_header(tmp, ':', v, false);
    buf_append(b, p, (size_t)(tmp + HEADER_MAX - p));
}

void resp_write_bulk(struct buf *b, const void *p, size_t n)
{
    char tmp[HEADER_MAX];
    char *h = fmt_header(tmp, '$', (int64_t)n, true);
    size_t hlen = (size_t)(tmp + HEADER_MAX - h);
    if (buf_reserve(b, hlen + n + 2) != 0)
        return;
    char *o = b->data + b->len;
    memcpy(o, h, hlen);
    if (n)
        memcpy(o + hlen, p, n);
    o[hlen + n] = '\r';
    o[hlen + n + 1] = '\n';
    b->len += hlen + n + 2;
}

void resp_write_bulk_str(struct buf *b, const char *s)
{
    resp_write_bulk(b, s, strlen(s));
}

void resp_write_bulk_i64(struct buf *b, int64_t v)
{
    char digits[24];
    char *end = digits + sizeof digits;
    char *p = fmt_i64(end, v);
    resp_write_bulk(b, p, (size_t)(end - p));
}

void resp_write_null(struct buf *b, int proto)
{
    if (proto >= 3)
        buf_append(b, "_\r\n", 3);
    else
        buf_append(b, "$-1\r\n", 5);
}

void resp_write_null_array(struct buf *b, int proto)
{
    if (proto >= 3)
        buf_append(b, "_\r\n", 3);
    else
        buf_append(b, "*-1\r\n", 5);
}

void resp_write_array_len(struct buf *b, size_t n)
{
    write_header(b, '*', n);
}

void resp_write_map_len(struct buf *b, int proto, size_t n)
{
    if (proto >= 3)
        write_header(b, '%', n);
    else
        write_header(b, '*', 2 * (uint64_t)n);
}

void resp_write_set_len(struct buf *b, int proto, size_t n)
{
    write_header(b, proto >= 3 ? '~' : '*', n);
}

void resp_write_double(struct buf *b, int proto, double v)
{
    char tmp[40];
    int n;
    if (isnan(v))
        n = snprintf(tmp, sizeof tmp, "nan");
    else if (isinf(v))
        n = snprintf(tmp, sizeof tmp, "%s", v > 0 ? "inf" : "-inf");
    else
        n = snprintf(tmp, sizeof tmp, "%.17g", v);
    if (proto < 3) {
        resp_write_bulk(b, tmp, (size_t)n);
        return;
    }
    buf_append(b, ",", 1);
    buf_append(b, tmp, (size_t)n);
    buf_append(b, "\r\n", 2);
}

void resp_write_verbatim(struct buf *b, int proto, const char *s, size_t n)
{
    if (proto < 3) {
        resp_write_bulk(b, s, n);
        return;
    }
    write_header(b, '=', (uint64_t)n + 4);
    buf_append(b, "txt:", 4);
    buf_append(b, s, n);
    buf_append(b, "\r\n", 2);
}
