/* mc.c: the memcached text protocol parser and reply writers (see mc.h).
 * Pure, and resumable like resp.c: the caller's struct mc_state remembers how
 * far the command line was searched for its end and, once a storage command's
 * line is in, the request's total length, so a call with too few bytes costs
 * nothing and no byte is searched twice; the line itself is decoded once when
 * it is whole and once more when its data block is (or when keys outgrow the
 * caller's array): a bounded number of passes, however the bytes arrive.
 * A request is a command line ending in "\n"
 * (a "\r" before it is dropped), plus, for storage commands, a data block of
 * the announced size followed by "\r\n".
 * The line is split on spaces only (tabs belong to tokens, as in memcached);
 * the first MC_TOKENS_MAX tokens are kept and the rest only counted, which is
 * all the arity checks need. get/gets/gat/gats walk the line again for their
 * keys, so any number of keys fits in the one line (bounded by max_line).
 * The command name is looked up in the MC_COMMANDS table, then one decoder
 * per command family checks arity and fields in memcached 1.6's order and
 * with its error texts: a wrong token count is "ERROR", a bad field a
 * "CLIENT_ERROR ..." line. Such errors consume only the line, as memcached
 * does, except the two that happen once the data size is known ("object too
 * large", "bad data chunk"): those consume the data block too, even past len.
 * Numbers are decimal digits with an optional '+' (and '-' where signed);
 * values out of their field's range are rejected rather than truncated.
 * Every decision is made at the byte that settles it, so how the bytes were
 * split into reads never changes the outcome.
 * A connection whose first request starts with the binary protocol's magic
 * (0x80: no text command starts so) gets MC_BINARY once its 24-byte header
 * is in (later, such a byte is a value's, after a refused line): the caller
 * answers a binary "Not supported" (mc_write_binary_refusal) and closes,
 * where waiting for a "\n" would leave a binary client hanging. */
#include "mc.h"

#include <string.h>

/* Tokens kept per line; the longest fixed form is "cas" with 7. */
#define MC_TOKENS_MAX 8

static const char err_error[] = "ERROR\r\n";
static const char err_format[] = "CLIENT_ERROR bad command line format\r\n";
static const char err_delete_usage[] =
    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
static const char err_exptime[] = "CLIENT_ERROR invalid exptime argument\r\n";
static const char err_delta[] = "CLIENT_ERROR invalid numeric delta argument\r\n";
static const char err_too_large[] = MC_ERR_TOO_LARGE "\r\n";
static const char err_chunk[] = "CLIENT_ERROR bad data chunk\r\n";
static const char err_line_long[] = "CLIENT_ERROR line too long\r\n";

static const char *const mc_names[MC_CMD_COUNT] = {
#define MC_NAME(id, name) [MC_##id] = name,
    MC_COMMANDS(MC_NAME)
#undef MC_NAME
};

const char *mc_cmd_name(enum mc_cmd cmd)
{
    return (unsigned)cmd < MC_CMD_COUNT ? mc_names[cmd] : "unknown";
}

struct mc_tok {
    const char *ptr;
    size_t len;
};

/* One call's inputs and results. */
struct mc_parser {
    const struct mc_limits *lim;
    const char *data;
    size_t len;
    size_t line_end; /* index of the line's end, "\r" excluded */
    size_t line_len; /* bytes up to and including "\n" */
    struct mc_tok tok[MC_TOKENS_MAX];
    size_t ntok; /* every token on the line, kept or not */
    struct mc_request *req;
    uint32_t keys_cap;
    size_t consumed;
    size_t need;
    const char *err;
    uint64_t examined; /* bytes decoded, for struct mc_state's meter */
};

/* Finds the token starting at or after *pos; false at the end of the line. */
static bool next_token(const struct mc_parser *ps, size_t *pos, struct mc_tok *t)
{
    size_t i = *pos;
    while (i < ps->line_end && ps->data[i] == ' ')
        i++;
    if (i >= ps->line_end)
        return false;
    size_t start = i;
    const char *sp = memchr(ps->data + i, ' ', ps->line_end - i);
    i = sp ? (size_t)(sp - ps->data) : ps->line_end;
    t->ptr = ps->data + start;
    t->len = i - start;
    *pos = i;
    return true;
}

static void tokenize(struct mc_parser *ps)
{
    ps->examined += ps->line_len;
    size_t pos = 0;
    struct mc_tok t;
    while (next_token(ps, &pos, &t)) {
        if (ps->ntok < MC_TOKENS_MAX)
            ps->tok[ps->ntok] = t;
        ps->ntok++;
    }
}

static bool tok_is(const struct mc_tok *t, const char *s)
{
    size_t n = strlen(s);
    return t->len == n && memcmp(t->ptr, s, n) == 0;
}

/* Digits with an optional leading '+'; false on anything else or overflow. */
static bool parse_u64(const struct mc_tok *t, uint64_t *out)
{
    const char *p = t->ptr;
    size_t n = t->len;
    if (n > 0 && p[0] == '+') {
        p++;
        n--;
    }
    if (n == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)p[i] - (unsigned)'0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool parse_u32(const struct mc_tok *t, uint32_t *out)
{
    uint64_t v;
    if (!parse_u64(t, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_i64(const struct mc_tok *t, int64_t *out)
{
    struct mc_tok digits = *t;
    bool neg = t->len > 0 && t->ptr[0] == '-';
    uint64_t v;
    if (neg) {
        digits.ptr++;
        digits.len--;
        if (digits.len > 0 && digits.ptr[0] == '+')
            return false;
    }
    if (!parse_u64(&digits, &v) || v > (uint64_t)INT64_MAX + (neg ? 1 : 0))
        return false;
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return true;
}

/* memcached's key rule: at most MC_MAX_KEY_LEN bytes, no control characters
 * (spaces cannot occur: they split tokens). */
static bool key_ok(const struct mc_tok *t)
{
    if (t->len == 0 || t->len > MC_MAX_KEY_LEN)
        return false;
    for (size_t i = 0; i < t->len; i++) {
        unsigned char c = (unsigned char)t->ptr[i];
        if (c < 0x21 || c == 0x7f)
            return false;
    }
    return true;
}

static enum mc_status fail(struct mc_parser *ps, const char *err)
{
    ps->err = err;
    ps->consumed = ps->line_len;
    return MC_ERROR;
}

static enum mc_status done(struct mc_parser *ps)
{
    ps->consumed = ps->line_len;
    return MC_OK;
}

/* Sets req->noreply when the last token is "noreply" (memcached's rule:
 * whatever else sits in that optional slot is ignored). */
static bool noreply_maybe(struct mc_parser *ps)
{
    size_t last = ps->ntok - 1;
    if (last < MC_TOKENS_MAX && tok_is(&ps->tok[last], "noreply"))
        ps->req->noreply = true;
    return ps->req->noreply;
}

/* Stores the single key of a keyed command, or asks for room for it. */
static enum mc_status one_key(struct mc_parser *ps)
{
    if (!key_ok(&ps->tok[1]))
        return fail(ps, err_format);
    ps->req->nkeys = 1;
    if (ps->keys_cap < 1)
        return MC_NEED_KEYS;
    ps->req->keys[0].ptr = ps->tok[1].ptr;
    ps->req->keys[0].len = (uint32_t)ps->tok[1].len;
    return MC_OK;
}

/* get/gets <key>*, gat/gats <exptime> <key>*. */
static enum mc_status decode_get(struct mc_parser *ps)
{
    struct mc_request *req = ps->req;
    bool touches = req->cmd == MC_GAT || req->cmd == MC_GATS;
    if (ps->ntok < 2)
        return fail(ps, err_error);
    if (touches && !parse_i64(&ps->tok[1], &req->exptime))
        return fail(ps, err_exptime);
    /* Walk the whole line: keys beyond the kept tokens count too. */
    size_t pos = (size_t)(ps->tok[touches ? 1 : 0].ptr - ps->data);
    pos += ps->tok[touches ? 1 : 0].len;
    ps->examined += ps->line_end - pos;
    uint32_t n = 0;
    struct mc_tok t;
    while (next_token(ps, &pos, &t)) {
        if (!key_ok(&t))
            return fail(ps, err_format);
        if (n < ps->keys_cap) {
            req->keys[n].ptr = t.ptr;
            req->keys[n].len = (uint32_t)t.len;
        }
        n++;
    }
    req->nkeys = n;
    if (n > ps->keys_cap)
        return MC_NEED_KEYS;
    return done(ps);
}

/* set/add/replace/append/prepend <key> <flags> <exptime> <bytes> [noreply],
 * cas <key> <flags> <exptime> <bytes> <cas unique> [noreply], then the data. */
static enum mc_status decode_storage(struct mc_parser *ps)
{
    struct mc_request *req = ps->req;
    bool is_cas = req->cmd == MC_CAS;
    size_t want = is_cas ? 6 : 5;
    int64_t bytes;
    if (ps->ntok != want && ps->ntok != want + 1)
        return fail(ps, err_error);
    noreply_maybe(ps);
    if (ps->tok[1].len > MC_MAX_KEY_LEN)
        return fail(ps, err_format);
    if (!parse_u32(&ps->tok[2], &req->flags) || !parse_i64(&ps->tok[3], &req->exptime) ||
        !parse_i64(&ps->tok[4], &bytes))
        return fail(ps, err_format);
    if (is_cas && !parse_u64(&ps->tok[5], &req->cas))
        return fail(ps, err_format);
    if (bytes < 0 || bytes > INT32_MAX - 2 || !key_ok(&ps->tok[1]))
        return fail(ps, err_format);

    size_t total = ps->line_len + (size_t)bytes + 2;
    if ((uint64_t)bytes > ps->lim->max_value) {
        ps->err = err_too_large;
        ps->consumed = total; /* the caller swallows the data block */
        /* memcached drops a failed set's old value (a reader must not get it
         * after the set): the caller deletes keys[0] */
        if (req->cmd == MC_SET && one_key(ps) == MC_OK)
            req->too_large = true;
        return MC_ERROR;
    }
    if (ps->len < total) {
        ps->need = total;
        return MC_MORE;
    }
    const char *blk = ps->data + ps->line_len;
    ps->examined += 2;
    if (blk[bytes] != '\r' || blk[bytes + 1] != '\n') {
        ps->err = err_chunk;
        ps->consumed = total;
        return MC_ERROR;
    }
    enum mc_status st = one_key(ps);
    if (st != MC_OK)
        return st;
    req->data = blk;
    req->data_len = (uint32_t)bytes;
    ps->consumed = total;
    return MC_OK;
}

/* delete <key> [0] [noreply] */
static enum mc_status decode_delete(struct mc_parser *ps)
{
    if (ps->ntok < 2 || ps->ntok > 4)
        return fail(ps, err_error);
    if (ps->ntok > 2) {
        bool hold_is_zero = tok_is(&ps->tok[2], "0");
        bool noreply = noreply_maybe(ps);
        bool valid = (ps->ntok == 3 && (hold_is_zero || noreply)) ||
                     (ps->ntok == 4 && hold_is_zero && noreply);
        if (!valid)
            return fail(ps, err_delete_usage);
    }
    enum mc_status st = one_key(ps);
    return st == MC_OK ? done(ps) : st;
}

/* touch <key> <exptime> [noreply], incr/decr <key> <value> [noreply] */
static enum mc_status decode_keyed_number(struct mc_parser *ps)
{
    struct mc_request *req = ps->req;
    if (ps->ntok != 3 && ps->ntok != 4)
        return fail(ps, err_error);
    noreply_maybe(ps);
    if (ps->tok[1].len > MC_MAX_KEY_LEN)
        return fail(ps, err_format);
    if (req->cmd == MC_TOUCH) {
        if (!parse_i64(&ps->tok[2], &req->exptime))
            return fail(ps, err_exptime);
    } else if (!parse_u64(&ps->tok[2], &req->delta)) {
        return fail(ps, err_delta);
    }
    enum mc_status st = one_key(ps);
    return st == MC_OK ? done(ps) : st;
}

/* flush_all [delay] [noreply] */
static enum mc_status decode_flush_all(struct mc_parser *ps)
{
    if (ps->ntok > 3)
        return fail(ps, err_error);
    bool noreply = ps->ntok > 1 && noreply_maybe(ps);
    if (ps->ntok != (noreply ? 2u : 1u) && !parse_i64(&ps->tok[1], &ps->req->number))
        return fail(ps, err_exptime);
    return done(ps);
}

/* verbosity <level> [noreply] */
static enum mc_status decode_verbosity(struct mc_parser *ps)
{
    uint32_t level;
    if (ps->ntok != 2 && ps->ntok != 3)
        return fail(ps, err_error);
    noreply_maybe(ps);
    if (!parse_u32(&ps->tok[1], &level))
        return fail(ps, err_format);
    ps->req->number = level;
    return done(ps);
}

/* stats [args...]: everything after "stats", trimmed, is the argument. */
static enum mc_status decode_stats(struct mc_parser *ps)
{
    if (ps->ntok > 1) {
        size_t start = (size_t)(ps->tok[1].ptr - ps->data);
        size_t end = ps->line_end;
        while (ps->data[end - 1] == ' ')
            end--;
        ps->req->stats_arg = ps->tok[1].ptr;
        ps->req->stats_arg_len = (uint32_t)(end - start);
    }
    return done(ps);
}

static bool lookup_cmd(const struct mc_tok *t, enum mc_cmd *cmd)
{
    for (unsigned i = 0; i < MC_CMD_COUNT; i++) {
        if (tok_is(t, mc_names[i])) {
            *cmd = (enum mc_cmd)i;
            return true;
        }
    }
    return false;
}

static enum mc_status decode(struct mc_parser *ps)
{
    tokenize(ps);
    if (ps->ntok == 0 || !lookup_cmd(&ps->tok[0], &ps->req->cmd))
        return fail(ps, err_error);
    switch (ps->req->cmd) {
    case MC_GET:
    case MC_GETS:
    case MC_GAT:
    case MC_GATS:
        return decode_get(ps);
    case MC_SET:
    case MC_ADD:
    case MC_REPLACE:
    case MC_APPEND:
    case MC_PREPEND:
    case MC_CAS:
        return decode_storage(ps);
    case MC_DELETE:
        return decode_delete(ps);
    case MC_TOUCH:
    case MC_INCR:
    case MC_DECR:
        return decode_keyed_number(ps);
    case MC_FLUSH_ALL:
        return decode_flush_all(ps);
    case MC_VERBOSITY:
        return decode_verbosity(ps);
    case MC_STATS:
        return decode_stats(ps);
    case MC_VERSION:
    case MC_QUIT:
    case MC_MN:
    case MC_CMD_COUNT:
        break;
    }
    return done(ps); /* version, quit and mn ignore extra tokens, as memcached */
}

void mc_state_reset(struct mc_state *st)
{
    uint64_t examined = st->examined;
    bool spoke_text = st->spoke_text;
    memset(st, 0, sizeof *st);
    st->examined = examined;
    st->spoke_text = spoke_text;
}

/* Finds the command line's "\n", searching only bytes no earlier call searched.
 * 1: found, *nl is its index; 0: need more; -1: longer than the limit. */
static int find_line(const struct mc_limits *lim, struct mc_state *st, const char *data, size_t len,
                     size_t *nl)
{
    size_t window = len < lim->max_line ? len : lim->max_line;
    const char *p = memchr(data + st->scan, '\n', window - st->scan);
    if (!p) {
        st->examined += window - st->scan;
        st->scan = window;
        return len < lim->max_line ? 0 : -1;
    }
    *nl = (size_t)(p - data);
    st->examined += *nl + 1 - st->scan;
    st->scan = *nl; /* found at once by the next call */
    return 1;
}

enum mc_status mc_parse(const struct mc_limits *lim, struct mc_state *state, const char *data,
                        size_t len, struct mc_request *req, struct mc_key *keys, uint32_t keys_cap,
                        size_t *consumed, size_t *need, const char **err)
{
    memset(req, 0, sizeof *req);
    req->keys = keys;
    *consumed = 0;
    *need = 0;
    *err = NULL;
    if (state->need > len) {
        *need = state->need;
        return MC_MORE;
    }
    if (!state->spoke_text && len > 0 && (uint8_t)data[0] == MC_BINARY_MAGIC) {
        if (len < MC_BINARY_HEADER_LEN)
            return MC_MORE;
        mc_state_reset(state);
        *consumed = MC_BINARY_HEADER_LEN;
        return MC_BINARY;
    }
    size_t nl;
    int found = find_line(lim, state, data, len, &nl);
    if (found == 0)
        return MC_MORE;
    if (found < 0) {
        mc_state_reset(state);
        *err = err_line_long;
        return MC_BAD;
    }
    struct mc_parser ps = {
        .lim = lim,
        .data = data,
        .len = len,
        .req = req,
        .keys_cap = keys_cap,
    };
    ps.line_len = nl + 1;
    ps.line_end = nl;
    if (ps.line_end > 0 && data[ps.line_end - 1] == '\r')
        ps.line_end--;

    enum mc_status st = decode(&ps);
    state->examined += ps.examined;
    switch (st) {
    case MC_OK:
    case MC_ERROR:
        *consumed = ps.consumed;
        mc_state_reset(state);
        state->spoke_text = true;
        break;
    case MC_MORE:
        *need = ps.need;
        state->need = ps.need;
        break;
    case MC_NEED_KEYS:
        break;
    case MC_BAD:
    case MC_BINARY: /* returned before decoding: here for the switch's sake */
        mc_state_reset(state);
        break;
    }
    *err = ps.err;
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

void mc_write_binary_refusal(struct buf *b, const void *header)
{
    static const char msg[] = "binary protocol not supported: use the text protocol";
    const uint8_t *req = header;
    uint8_t res[MC_BINARY_HEADER_LEN] = {
        0x81,                      /* response magic */
        req[1],                    /* the request's opcode */
        [6] = 0x00, [7] = 0x83,    /* status: not supported */
        [11] = sizeof msg - 1,     /* total body length (big-endian, < 256) */
        [12] = req[12], req[13], req[14], req[15], /* opaque, echoed */
    };
    buf_append(b, res, sizeof res);
    buf_append(b, msg, sizeof msg - 1);
}

void mc_write_value(struct buf *b, const void *key, size_t klen, uint32_t flags, const void *val,
                    size_t vlen, const uint64_t *cas)
{
    /* " <flags> <bytes> <cas>\r\n": three numbers of at most 20 digits. */
    char tail[72];
    char *end = tail + sizeof tail;
    char *p = end - 2;
    p[0] = '\r';
    p[1] = '\n';
    if (cas) {
        p = fmt_u64(p, *cas);
        *--p = ' ';
    }
    p = fmt_u64(p, vlen);
    *--p = ' ';
    p = fmt_u64(p, flags);
    *--p = ' ';
    size_t tlen = (size_t)(end - p);
    if (buf_reserve(b, 6 + klen + tlen + vlen + 2) != 0)
        return;
    char *o = b->data + b->len;
    memcpy(o, "VALUE ", 6);
    memcpy(o + 6, key, klen);
    memcpy(o + 6 + klen, p, tlen);
    if (vlen)
        memcpy(o + 6 + klen + tlen, val, vlen);
    memcpy(o + 6 + klen + tlen + vlen, "\r\n", 2);
    b->len += 6 + klen + tlen + vlen + 2;
}

void mc_write_line(struct buf *b, const char *line)
{
    size_t n = strlen(line);
    if (buf_reserve(b, n + 2) != 0)
        return;
    memcpy(b->data + b->len, line, n);
    memcpy(b->data + b->len + n, "\r\n", 2);
    b->len += n + 2;
}
