/* test_resp.c: the RESP parser and reply writers (net/resp.c).
 * Every parse runs over an exact-size heap copy of the input, so reading one
 * byte past len is caught under AddressSanitizer. The split tests replay a
 * pipeline fed in chunks of every size from 1 byte up and require the same
 * transcript of requests as parsing it whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pieces.h"

#include "resp.h"

#define ARGV_MAX 64
#define SCRATCH_MAX 4096

static const struct resp_limits limits = {
    .max_args = 1024 * 1024,
    .max_bulk = 512 * 1024 * 1024,
    .max_inline = 64 * 1024,
};

struct parsed {
    enum resp_status st;
    struct resp_arg argv[ARGV_MAX];
    uint32_t argc;
    size_t consumed;
    size_t need;
    const char *err;
    char *copy; /* exact-size copy the slices point into */
    char scratch[SCRATCH_MAX];
};

static void parse_lim(struct parsed *p, const struct resp_limits *lim, const char *data, size_t len,
                      uint32_t argv_cap)
{
    free(p->copy);
    p->copy = malloc(len ? len : 1);
    assert_non_null(p->copy);
    memcpy(p->copy, data, len);
    struct resp_state rs = {0};
    p->st = resp_parse(lim, &rs, p->copy, len, p->argv, argv_cap, &p->argc, p->scratch,
                       sizeof p->scratch, &p->consumed, &p->need, &p->err);
    assert_true(p->consumed <= len);
    if (p->st == RESP_OK) {
        assert_true(p->consumed > 0);
        for (uint32_t i = 0; i < p->argc; i++) {
            const char *a = p->argv[i].ptr;
            bool in_input = a >= p->copy && a + p->argv[i].len <= p->copy + len;
            bool in_scratch = a >= p->scratch && a + p->argv[i].len <= p->scratch + SCRATCH_MAX;
            assert_true(in_input || in_scratch);
        }
    }
}

static struct parsed *parse_n(const char *data, size_t len)
{
    static struct parsed p;
    parse_lim(&p, &limits, data, len, ARGV_MAX);
    return &p;
}

static struct parsed *parse(const char *s)
{
    return parse_n(s, strlen(s));
}

static void assert_arg(const struct parsed *p, uint32_t i, const char *want, size_t want_len)
{
    assert_true(i < p->argc);
    assert_int_equal(p->argv[i].len, want_len);
    assert_memory_equal(p->argv[i].ptr, want, want_len);
}

static void assert_args(const struct parsed *p, uint32_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    assert_int_equal(p->st, RESP_OK);
    assert_int_equal(p->argc, n);
    for (uint32_t i = 0; i < n; i++) {
        const char *s = va_arg(ap, const char *);
        assert_arg(p, i, s, strlen(s));
    }
    va_end(ap);
}

static void assert_bad(const char *input, size_t len, const char *err)
{
    struct parsed *p = parse_n(input, len);
    assert_int_equal(p->st, RESP_BAD);
    assert_non_null(p->err);
    assert_string_equal(p->err, err);
}

static void assert_bad_str(const char *input, const char *err)
{
    assert_bad(input, strlen(input), err);
}

static void assert_more(const char *input, size_t need)
{
    struct parsed *p = parse(input);
    assert_int_equal(p->st, RESP_MORE);
    assert_int_equal(p->need, need);
    assert_int_equal(p->consumed, 0);
}

/* ---- multibulk ---- */

static void test_resp_parses_multibulk(void **state)
{
    const char *in = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
    struct parsed *p = parse(in);
    assert_args(p, 3, "SET", "k", "hello");
    assert_int_equal(p->consumed, strlen(in));
    assert_null(p->err);
    assert_int_equal(p->need, 0);
    /* Multibulk arguments are zero-copy slices of the input. */
    assert_ptr_equal(p->argv[0].ptr, p->copy + 8);
}

static void test_resp_bulk_is_binary_safe(void **state)
{
    static const char in[] = "*2\r\n$4\r\nECHO\r\n$6\r\na\r\n\0b\n\r\n";
    struct parsed *p = parse_n(in, sizeof in - 1);
    assert_int_equal(p->st, RESP_OK);
    assert_int_equal(p->argc, 2);
    assert_arg(p, 1, "a\r\n\0b\n", 6);
    assert_int_equal(p->consumed, sizeof in - 1);
}

static void test_resp_parses_empty_bulk(void **state)
{
    struct parsed *p = parse("*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
    assert_args(p, 2, "GET", "");
}

static void test_resp_empty_multibulk_is_consumed(void **state)
{
    struct parsed *p = parse("*0\r\n*1\r\n$4\r\nPING\r\n");
    assert_int_equal(p->st, RESP_OK);
    assert_int_equal(p->argc, 0);
    assert_int_equal(p->consumed, 4);
    p = parse("*-1\r\nPING\r\n");
    assert_int_equal(p->st, RESP_OK);
    assert_int_equal(p->argc, 0);
    assert_int_equal(p->consumed, 5);
    p = parse("*-9223372036854775808\r\n");
    assert_int_equal(p->st, RESP_OK);
    assert_int_equal(p->argc, 0);
}

static void test_resp_pipeline_consumes_one_at_a_time(void **state)
{
    const char *in = "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\nPING\r\n";
    size_t len = strlen(in);
    struct parsed *p = parse(in);
    assert_args(p, 1, "PING");
    assert_int_equal(p->consumed, 14);
    p = parse_n(in + 14, len - 14);
    assert_args(p, 2, "GET", "x");
    assert_int_equal(p->consumed, 20);
    p = parse_n(in + 34, len - 34);
    assert_args(p, 1, "PING");
    assert_int_equal(p->consumed, 6);
}

static void test_resp_more_on_partial_headers(void **state)
{
    assert_more("", 0);
    assert_more("*", 0);
    assert_more("*2", 0);
    assert_more("*2\r", 0);
    assert_more("*2\r\n", 0);
    assert_more("*2\r\n$", 0);
    assert_more("*2\r\n$3\r", 0);
    assert_more("*2\r\n$3\r\nGET\r\n", 0);
    assert_more("*-1", 0);
}

static void test_resp_more_sets_need_inside_bulk(void **state)
{
    /* header 4 + "$10\r\n" 5 = 9; the bulk ends at 9 + 10 + 2 = 21 */
    assert_more("*1\r\n$10\r\n", 21);
    assert_more("*1\r\n$10\r\n0123", 21);
    assert_more("*1\r\n$10\r\n0123456789", 21);
    assert_more("*1\r\n$10\r\n0123456789\r", 21);
    struct parsed *p = parse("*1\r\n$10\r\n0123456789\r\n");
    assert_args(p, 1, "0123456789");
    /* A later bulk's need is past the earlier ones. */
    assert_more("*2\r\n$1\r\na\r\n$5\r\nab", 4 + 7 + 4 + 7);
}

static void test_resp_need_args_after_whole_request(void **state)
{
    const char *in = "*5\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n";
    static struct parsed p;
    /* Incomplete: MORE, not NEED_ARGS, however big the announced count. */
    parse_lim(&p, &limits, in, strlen(in) - 3, 2);
    assert_int_equal(p.st, RESP_MORE);
    parse_lim(&p, &limits, "*1000000\r\n", 10, 2);
    assert_int_equal(p.st, RESP_MORE);
    parse_lim(&p, &limits, in, strlen(in), 2);
    assert_int_equal(p.st, RESP_NEED_ARGS);
    assert_int_equal(p.argc, 5);
    assert_int_equal(p.consumed, 0);
    parse_lim(&p, &limits, in, strlen(in), 5);
    assert_args(&p, 5, "a", "b", "c", "d", "e");
    free(p.copy);
    p.copy = NULL;
}

static void test_resp_need_args_inline(void **state)
{
    static struct parsed p;
    parse_lim(&p, &limits, "a b \"c d\" e\r\n", 13, 2);
    assert_int_equal(p.st, RESP_NEED_ARGS);
    assert_int_equal(p.argc, 4);
    parse_lim(&p, &limits, "a b \"c d\" e\r\n", 13, 4);
    assert_args(&p, 4, "a", "b", "c d", "e");
    parse_lim(&p, &limits, "x\r\n", 3, 0);
    assert_int_equal(p.st, RESP_NEED_ARGS);
    assert_int_equal(p.argc, 1);
    free(p.copy);
    p.copy = NULL;
}

static void test_resp_max_args_boundary(void **state)
{
    struct resp_limits lim = limits;
    lim.max_args = 2;
    static struct parsed p;
    const char *two = "*2\r\n$1\r\na\r\n$1\r\nb\r\n";
    parse_lim(&p, &lim, two, strlen(two), ARGV_MAX);
    assert_args(&p, 2, "a", "b");
    parse_lim(&p, &lim, "*3\r\n", 4, ARGV_MAX);
    assert_int_equal(p.st, RESP_BAD);
    assert_string_equal(p.err, "ERR Protocol error: invalid multibulk length");
    free(p.copy);
    p.copy = NULL;
}

static void test_resp_max_bulk_boundary(void **state)
{
    struct resp_limits lim = limits;
    lim.max_bulk = 3;
    static struct parsed p;
    const char *ok = "*1\r\n$3\r\nabc\r\n";
    parse_lim(&p, &lim, ok, strlen(ok), ARGV_MAX);
    assert_args(&p, 1, "abc");
    parse_lim(&p, &lim, "*1\r\n$4\r\n", 8, ARGV_MAX);
    assert_int_equal(p.st, RESP_BAD);
    assert_string_equal(p.err, "ERR Protocol error: invalid bulk length");
    free(p.copy);
    p.copy = NULL;
}

static void test_resp_rejects_bad_multibulk_length(void **state)
{
    const char *err = "ERR Protocol error: invalid multibulk length";
    assert_bad_str("*1x\r\n", err);
    assert_bad_str("*01\r\n", err);
    assert_bad_str("*-0\r\n", err);
    assert_bad_str("*+1\r\n", err);
    assert_bad_str("*\r\n", err);
    assert_bad_str("*-\r\n", err);
    assert_bad_str("* 1\r\n", err);
    assert_bad_str("*1 \r\n", err);
    assert_bad_str("*1048577\r\n", err);
    assert_bad_str("*99999999999999999999\r\n", err);
    assert_bad_str("*-9223372036854775809\r\n", err);
    assert_bad_str("*-18446744073709551616\r\n", err);
    assert_bad_str("*9223372036854775807\r\n", err);
    assert_bad_str("*1\rX", err); /* CR not followed by LF */
}

static void test_resp_rejects_bad_bulk_length(void **state)
{
    const char *err = "ERR Protocol error: invalid bulk length";
    assert_bad_str("*1\r\n$+3\r\nabc\r\n", err);
    assert_bad_str("*1\r\n$-1\r\n", err);
    assert_bad_str("*1\r\n$-0\r\n", err);
    assert_bad_str("*1\r\n$03\r\nabc\r\n", err);
    assert_bad_str("*1\r\n$3x\r\nabc\r\n", err);
    assert_bad_str("*1\r\n$\r\n", err);
    assert_bad_str("*1\r\n$536870913\r\n", err);
    assert_bad_str("*1\r\n$9223372036854775808\r\n", err);
    assert_bad_str("*1\r\n$18446744073709551617\r\n", err);
    assert_bad_str("*1\r\n$3\rabc", err);
}

static void test_resp_rejects_missing_dollar(void **state)
{
    assert_bad_str("*1\r\nx3\r\n", "ERR Protocol error: expected '$', got 'x'");
    assert_bad_str("*2\r\n$1\r\na\r\n:1\r\n", "ERR Protocol error: expected '$', got ':'");
    /* Decided on the first byte, before the line is complete. */
    assert_bad_str("*1\r\n*", "ERR Protocol error: expected '$', got '*'");
    assert_bad_str("*1\r\n\r\n", "ERR Protocol error: expected '$', got ' '");
    assert_bad("*1\r\n\0", 5, "ERR Protocol error: expected '$', got ' '");
    assert_bad("*1\r\n\xff", 5, "ERR Protocol error: expected '$', got '\xff'");
}

static void test_resp_errors_need_no_scratch(void **state)
{
    struct resp_arg argv[4];
    uint32_t argc;
    size_t consumed, need;
    const char *err;
    const char *in = "*1\r\nx";
    struct resp_state rs = {0};
    enum resp_status st =
        resp_parse(&limits, &rs, in, strlen(in), argv, 4, &argc, NULL, 0, &consumed, &need, &err);
    assert_int_equal(st, RESP_BAD);
    assert_string_equal(err, "ERR Protocol error: expected '$', got 'x'");
}

static void test_resp_rejects_bulk_without_crlf(void **state)
{
    const char *err = "ERR Protocol error: bulk data not followed by CRLF";
    assert_bad_str("*1\r\n$4\r\nPINGxx", err);
    assert_bad_str("*1\r\n$4\r\nPING\rx", err);
    assert_bad_str("*1\r\n$4\r\nPING\n\r", err);
}

static char *filled(size_t n, char c)
{
    char *s = malloc(n);
    assert_non_null(s);
    memset(s, c, n);
    return s;
}

static void test_resp_rejects_too_long_count_lines(void **state)
{
    size_t n = 64 * 1024;
    char *s = filled(n + 8, '1');
    s[0] = '*';
    /* One byte short of the limit without CR: still waiting. */
    struct parsed *p = parse_n(s, n - 1);
    assert_int_equal(p->st, RESP_MORE);
    assert_bad(s, n, "ERR Protocol error: too big mbulk count string");
    memcpy(s, "*1\r\n$", 5);
    assert_bad(s, n + 4, "ERR Protocol error: too big bulk count string");
    free(s);
}

static void test_resp_rejects_too_long_inline(void **state)
{
    struct resp_limits lim = limits;
    lim.max_inline = 16;
    static struct parsed p;
    char line[32];
    memset(line, 'a', sizeof line);
    line[15] = '\n';
    parse_lim(&p, &lim, line, 16, ARGV_MAX);
    assert_int_equal(p.st, RESP_OK);
    assert_int_equal(p.consumed, 16);
    line[15] = 'a';
    parse_lim(&p, &lim, line, 15, ARGV_MAX);
    assert_int_equal(p.st, RESP_MORE);
    parse_lim(&p, &lim, line, 16, ARGV_MAX);
    assert_int_equal(p.st, RESP_BAD);
    assert_string_equal(p.err, "ERR Protocol error: too big inline request");
    line[16] = '\n'; /* the newline comes too late */
    parse_lim(&p, &lim, line, 17, ARGV_MAX);
    assert_int_equal(p.st, RESP_BAD);
    free(p.copy);
    p.copy = NULL;
}

/* ---- inline ---- */

static void test_resp_parses_inline(void **state)
{
    struct parsed *p = parse("SET  k\tvalue\r\n");
    assert_args(p, 3, "SET", "k", "value");
    assert_int_equal(p->consumed, 14);
    /* Unquoted arguments are slices of the input. */
    assert_ptr_equal(p->argv[1].ptr, p->copy + 5);
    p = parse("PING\n");
    assert_args(p, 1, "PING");
    assert_int_equal(p->consumed, 5);
    p = parse("\x0b  echo x \r\n");
    assert_args(p, 2, "echo", "x");
    p = parse("echo a\x0b"
              "b\r\n");
    assert_args(p, 2, "echo",
                "a\x0b"
                "b");
    p = parse("echo x\ry\r\n");
    assert_args(p, 3, "echo", "x", "y");
}

static void test_resp_inline_empty_lines(void **state)
{
    struct parsed *p = parse("\r\nPING\r\n");
    assert_int_equal(p->st, RESP_OK);
    assert_int_equal(p->argc, 0);
    assert_int_equal(p->consumed, 2);
    p = parse("\n");
    assert_int_equal(p->st, RESP_OK);
    assert_int_equal(p->argc, 0);
    assert_int_equal(p->consumed, 1);
    p = parse(" \t \r\n");
    assert_int_equal(p->st, RESP_OK);
    assert_int_equal(p->argc, 0);
    assert_int_equal(p->consumed, 5);
}

static void test_resp_inline_more_without_newline(void **state)
{
    assert_more("PING", 0);
    assert_more("PING\r", 0);
    assert_more("echo \"unterminated", 0);
}

static void test_resp_inline_double_quotes(void **state)
{
    struct parsed *p = parse("echo \"a b\" \"\\n\\r\\t\\b\\a\\\\\\\"\\q\"\r\n");
    assert_args(p, 3, "echo", "a b", "\n\r\t\b\a\\\"q");
    p = parse("echo \"\\x41\\x4a\\x4g\\xZZ\\x4\"\r\n");
    assert_args(p, 2, "echo", "AJx4gxZZx4");
    p = parse("echo \"\\x00\"\r\n");
    assert_int_equal(p->st, RESP_OK);
    assert_arg(p, 1, "\0", 1);
    p = parse("echo \"\" x\r\n");
    assert_args(p, 3, "echo", "", "x");
    p = parse("echo \"x\"\x0b\r\n");
    assert_args(p, 2, "echo", "x");
    /* Quoted arguments are unescaped into scratch. */
    p = parse("echo \"x\"\r\n");
    assert_ptr_equal(p->argv[1].ptr, p->scratch);
}

static void test_resp_inline_single_quotes(void **state)
{
    struct parsed *p = parse("echo 'a\\'b' 'c\\d\\n'\r\n");
    assert_args(p, 3, "echo", "a'b", "c\\d\\n");
    p = parse("echo '' 'x y'\n");
    assert_args(p, 3, "echo", "", "x y");
    p = parse("echo 'a\"b'\n");
    assert_args(p, 2, "echo", "a\"b");
}

static void test_resp_inline_quote_inside_word(void **state)
{
    struct parsed *p = parse("echo ab\"c d\" e\r\n");
    assert_args(p, 3, "echo", "abc d", "e");
    p = parse("echo ab'c d'\r\n");
    assert_args(p, 2, "echo", "abc d");
}

static void test_resp_inline_nul_is_ordinary(void **state)
{
    static const char in[] = "echo a\0b\r\n";
    struct parsed *p = parse_n(in, sizeof in - 1);
    assert_int_equal(p->st, RESP_OK);
    assert_int_equal(p->argc, 2);
    assert_arg(p, 1, "a\0b", 3);
}

static void test_resp_rejects_unbalanced_quotes(void **state)
{
    const char *err = "ERR Protocol error: unbalanced quotes in request";
    assert_bad_str("echo \"abc\r\n", err);
    assert_bad_str("echo 'abc\r\n", err);
    assert_bad_str("echo \"a\"b\r\n", err);
    assert_bad_str("echo 'a'b\r\n", err);
    assert_bad_str("echo \"abc\\\r\n", err);
    assert_bad_str("echo 'a\\'\r\n", err);
    assert_bad_str("\"\n", err);
}

static void test_resp_inline_scratch_too_small(void **state)
{
    struct resp_arg argv[4];
    uint32_t argc;
    size_t consumed, need;
    const char *err;
    char scratch[4];
    const char *in = "echo \"abcdef\"\r\n";
    struct resp_state rs = {0};
    enum resp_status st = resp_parse(&limits, &rs, in, strlen(in), argv, 4, &argc, scratch,
                                     sizeof scratch, &consumed, &need, &err);
    assert_int_equal(st, RESP_BAD);
    assert_string_equal(err, "ERR Protocol error: too big inline request");
}

/* ---- splits: the same requests whatever the read sizes ---- */

/* Appends a one-line record of one parse outcome to t (bytes escaped). */
static void record(struct buf *t, enum resp_status st, const struct resp_arg *argv, uint32_t argc,
                   size_t consumed, const char *err)
{
    buf_printf(t, "st=%d argc=%u consumed=%zu", (int)st, argc, consumed);
    if (st == RESP_BAD)
        buf_printf(t, " err=%s", err);
    for (uint32_t i = 0; st == RESP_OK && i < argc; i++) {
        buf_append_str(t, " [");
        for (uint32_t j = 0; j < argv[i].len; j++) {
            unsigned char c = (unsigned char)argv[i].ptr[j];
            if (c < 0x20 || c >= 0x7f)
                buf_printf(t, "\\x%02x", c);
            else
                buf_append(t, &c, 1);
        }
        buf_append_str(t, "]");
    }
    buf_append_str(t, "\n");
}

/* Feeds in[0..len) `step` bytes at a time (0: all at once), parsing every
 * whole request after each read, like a connection would. argv starts with
 * room for 2 and grows on RESP_NEED_ARGS. Checks *need as it goes. */
static void transcript(const char *in, size_t len, size_t step, struct buf *t)
{
    size_t avail = 0, start = 0, need = 0;
    uint32_t cap = 2;
    struct resp_arg *argv = malloc(cap * sizeof *argv);
    char scratch[SCRATCH_MAX];
    struct resp_state rs = {0};
    assert_non_null(argv);
    for (;;) {
        size_t n = avail - start;
        char *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, in + start, n);
        uint32_t argc;
        size_t consumed, this_need;
        const char *err;
        enum resp_status st = resp_parse(&limits, &rs, copy, n, argv, cap, &argc, scratch,
                                         sizeof scratch, &consumed, &this_need, &err);
        if (st == RESP_NEED_ARGS) {
            cap = argc;
            argv = realloc(argv, cap * sizeof *argv);
            assert_non_null(argv);
        } else if (st == RESP_OK) {
            assert_true(consumed >= need); /* *need never overshoots */
            need = 0;
            record(t, st, argv, argc, consumed, err);
            start += consumed;
        } else if (st == RESP_MORE && avail < len) {
            assert_true(this_need == 0 || this_need > n);
            need = this_need;
            avail = step && avail + step < len ? avail + step : len;
        } else {
            record(t, st, argv, argc, consumed, err);
            free(copy);
            break;
        }
        free(copy);
    }
    free(argv);
}

static void check_split_invariance(const char *in, size_t len)
{
    struct buf whole, split;
    buf_init(&whole);
    buf_init(&split);
    transcript(in, len, 0, &whole);
    for (size_t step = 1; step <= len; step++) {
        buf_clear(&split);
        transcript(in, len, step, &split);
        assert_int_equal(split.len, whole.len);
        assert_memory_equal(split.data, whole.data, whole.len);
    }
    buf_fini(&whole);
    buf_fini(&split);
}

static const char pipeline[] = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\nab\r\ncd\r\nef\r\n"
                               "PING\r\n"
                               "*0\r\n"
                               "\r\n"
                               "set 'a b' \"c\\x41\\n\" plain\n"
                               "*5\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$0\r\n\r\n$1\r\ne\r\n"
                               "*-1\r\n"
                               "*2\r\n$4\r\nECHO\r\n$5\r\n\0\0\0\0\0\r\n";

static void test_resp_splits_give_same_requests(void **state)
{
    size_t len = sizeof pipeline - 1;
    struct buf t;
    buf_init(&t);
    transcript(pipeline, len, 0, &t);
    /* 8 requests and the final MORE. */
    size_t lines = 0;
    for (size_t i = 0; i < t.len; i++)
        lines += t.data[i] == '\n';
    assert_int_equal(lines, 9);
    buf_fini(&t);
    check_split_invariance(pipeline, len);
}

static void test_resp_splits_give_same_errors(void **state)
{
    static const char *const bad[] = {
        "PING\r\n*1\r\n$4\r\nPINGxx*1\r\n", "*1\r\n$3\r\nGET\r\n*2\r\nx",
        "GET a\r\necho \"x\r\nPING\r\n",    "*1\r\n$-5\r\n",
        "*2\r\n$1\r\na\r\n$1x\r\nb\r\n",    "*1x\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_split_invariance(bad[i], strlen(bad[i]));
}

static void test_resp_every_prefix_is_more_or_whole(void **state)
{
    const char *req = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
    size_t len = strlen(req);
    for (size_t cut = 0; cut < len; cut++) {
        struct parsed *p = parse_n(req, cut);
        assert_int_equal(p->st, RESP_MORE);
    }
    assert_args(parse_n(req, len), 3, "SET", "k", "hello");
}

/* ---- resumption: each byte is looked at a bounded number of times ---- */

/* A request of n arguments "k<i>" (a multibulk, or an inline line). */
static void big_request(struct buf *b, uint32_t n, bool is_inline)
{
    if (!is_inline)
        resp_write_array_len(b, n);
    for (uint32_t i = 0; i < n; i++) {
        char arg[16];
        int len = snprintf(arg, sizeof arg, "k%u", i);
        if (is_inline)
            buf_printf(b, "%s%s", i ? " " : "", arg);
        else
            resp_write_bulk(b, arg, (size_t)len);
    }
    if (is_inline)
        buf_append_str(b, "\r\n");
    assert_false(b->failed);
}

/* Feeds in[0..len) in pieces of 1..16 bytes into a buffer that moves as it
 * grows (as a connection's does), parsing after each piece; with
 * `is_resumed` the state is kept across calls, otherwise each call starts
 * afresh (what conn.c did before). Checks the request parses whole and
 * returns the bytes the parser examined. */
static uint64_t feed_in_pieces(const struct resp_limits *lim, const char *in, size_t len,
                               uint32_t nargs, bool is_resumed)
{
    struct resp_state rs = {0};
    uint64_t examined = 0;
    uint32_t cap = 16;
    struct resp_arg *argv = malloc(cap * sizeof *argv);
    char *scratch = malloc(lim->max_inline);
    struct pieces feed = {.in = in, .len = len, .rng = 42};
    assert_true(argv && scratch);
    for (;;) {
        assert_true(pieces_next(&feed));
        const char *data = feed.data;
        size_t avail = feed.avail;
        uint32_t argc;
        size_t consumed, need;
        const char *err;
        if (!is_resumed)
            resp_state_reset(&rs);
        enum resp_status st = resp_parse(lim, &rs, data, avail, argv, cap, &argc, scratch,
                                         lim->max_inline, &consumed, &need, &err);
        if (st == RESP_NEED_ARGS) {
            cap = argc;
            argv = realloc(argv, cap * sizeof *argv);
            assert_non_null(argv);
            st = resp_parse(lim, &rs, data, avail, argv, cap, &argc, scratch, lim->max_inline,
                            &consumed, &need, &err);
        }
        if (st == RESP_MORE) {
            assert_true(avail < len);
            continue;
        }
        assert_int_equal(st, RESP_OK);
        assert_int_equal(consumed, len);
        assert_int_equal(argc, nargs);
        char want[16];
        for (uint32_t i = 0; i < nargs; i += nargs / 7 + 1) {
            int n = snprintf(want, sizeof want, "k%u", i);
            assert_int_equal(argv[i].len, n);
            assert_memory_equal(argv[i].ptr, want, (size_t)n);
        }
        examined = rs.examined;
        print_message("%u arguments, %zu bytes in pieces of 1..16: %llu examined (%s)\n", nargs,
                      len, (unsigned long long)examined, is_resumed ? "resumed" : "afresh");
        break;
    }
    free(feed.data);
    free(scratch);
    free(argv);
    return examined;
}

static void test_resp_resumed_parse_is_linear(void **state)
{
    struct buf b;
    buf_init(&b);
    big_request(&b, 100000, false);
    uint64_t examined = feed_in_pieces(&limits, b.data, b.len, 100000, true);
    /* Each byte is walked once, and the request once more at the end to
     * point the arguments into the moved buffer (refill_args). */
    assert_true(examined <= 3 * (uint64_t)b.len);
    buf_fini(&b);
}

static void test_resp_resumed_inline_is_linear(void **state)
{
    struct buf b;
    buf_init(&b);
    big_request(&b, 6000, true); /* about 35 KB, within max_inline */
    uint64_t examined = feed_in_pieces(&limits, b.data, b.len, 6000, true);
    /* The line is searched once, then split once, and again after
     * RESP_NEED_ARGS. */
    assert_true(examined <= 4 * (uint64_t)b.len);
    buf_fini(&b);
}

/* The meter sees rework: parsing each time from the start, as conn.c did
 * before requests were resumed, examines bytes quadratic in the request. */
static void test_resp_fresh_parses_are_quadratic(void **state)
{
    struct buf b;
    buf_init(&b);
    big_request(&b, 4000, false);
    uint64_t examined = feed_in_pieces(&limits, b.data, b.len, 4000, false);
    assert_true(examined > 100 * (uint64_t)b.len);
    buf_fini(&b);
}

/* ---- writers ---- */

#define assert_written(b, lit)                                                                     \
    do {                                                                                           \
        assert_int_equal((b)->len, sizeof(lit) - 1);                                               \
        assert_memory_equal((b)->data, lit, sizeof(lit) - 1);                                      \
        buf_clear(b);                                                                              \
    } while (0)

static void test_resp_writes_simple_types(void **state)
{
    struct buf b;
    buf_init(&b);
    resp_write_simple(&b, "PONG");
    assert_written(&b, "+PONG\r\n");
    resp_write_ok(&b);
    assert_written(&b, "+OK\r\n");
    resp_write_error(&b, "ERR unknown command");
    assert_written(&b, "-ERR unknown command\r\n");
    resp_write_error(&b, "ERR bad\r\ninjected");
    assert_written(&b, "-ERR bad  injected\r\n");
    resp_write_simple(&b, "a\nb");
    assert_written(&b, "+a b\r\n");
    assert_false(b.failed);
    buf_fini(&b);
}

static void test_resp_writes_integers(void **state)
{
    struct buf b;
    buf_init(&b);
    resp_write_int(&b, 0);
    assert_written(&b, ":0\r\n");
    resp_write_int(&b, -1);
    assert_written(&b, ":-1\r\n");
    resp_write_int(&b, 1234567890);
    assert_written(&b, ":1234567890\r\n");
    resp_write_int(&b, INT64_MAX);
    assert_written(&b, ":9223372036854775807\r\n");
    resp_write_int(&b, INT64_MIN);
    assert_written(&b, ":-9223372036854775808\r\n");
    resp_write_bulk_i64(&b, -42);
    assert_written(&b, "$3\r\n-42\r\n");
    resp_write_bulk_i64(&b, INT64_MIN);
    assert_written(&b, "$20\r\n-9223372036854775808\r\n");
    buf_fini(&b);
}

static void test_resp_writes_bulks(void **state)
{
    struct buf b;
    buf_init(&b);
    resp_write_bulk(&b, "hello", 5);
    assert_written(&b, "$5\r\nhello\r\n");
    resp_write_bulk(&b, "", 0);
    assert_written(&b, "$0\r\n\r\n");
    resp_write_bulk(&b, "a\0\r\n", 4);
    assert_written(&b, "$4\r\na\0\r\n\r\n");
    resp_write_bulk_str(&b, "xyz");
    assert_written(&b, "$3\r\nxyz\r\n");
    char big[1000];
    memset(big, 'v', sizeof big);
    resp_write_bulk(&b, big, sizeof big);
    assert_int_equal(b.len, 7 + 1000 + 2);
    assert_memory_equal(b.data, "$1000\r\n", 7);
    assert_memory_equal(b.data + 7, big, sizeof big);
    assert_memory_equal(b.data + 1007, "\r\n", 2);
    buf_fini(&b);
}

static void test_resp_writes_nulls_and_aggregates(void **state)
{
    struct buf b;
    buf_init(&b);
    resp_write_null(&b, 2);
    assert_written(&b, "$-1\r\n");
    resp_write_null(&b, 3);
    assert_written(&b, "_\r\n");
    resp_write_null_array(&b, 2);
    assert_written(&b, "*-1\r\n");
    resp_write_null_array(&b, 3);
    assert_written(&b, "_\r\n");
    resp_write_array_len(&b, 0);
    assert_written(&b, "*0\r\n");
    resp_write_array_len(&b, 12);
    assert_written(&b, "*12\r\n");
    resp_write_map_len(&b, 2, 3);
    assert_written(&b, "*6\r\n");
    resp_write_map_len(&b, 3, 3);
    assert_written(&b, "%3\r\n");
    resp_write_set_len(&b, 2, 4);
    assert_written(&b, "*4\r\n");
    resp_write_set_len(&b, 3, 4);
    assert_written(&b, "~4\r\n");
    buf_fini(&b);
}

static void test_resp_writes_doubles(void **state)
{
    struct buf b;
    buf_init(&b);
    resp_write_double(&b, 3, 1.5);
    assert_written(&b, ",1.5\r\n");
    resp_write_double(&b, 2, 1.5);
    assert_written(&b, "$3\r\n1.5\r\n");
    resp_write_double(&b, 3, 0.1);
    assert_written(&b, ",0.10000000000000001\r\n");
    resp_write_double(&b, 3, -3);
    assert_written(&b, ",-3\r\n");
    resp_write_double(&b, 3, 1e300);
    assert_written(&b, ",1.0000000000000001e+300\r\n");
    resp_write_double(&b, 3, 1.0 / 0.0);
    assert_written(&b, ",inf\r\n");
    resp_write_double(&b, 3, -1.0 / 0.0);
    assert_written(&b, ",-inf\r\n");
    resp_write_double(&b, 3, 0.0 / 0.0);
    assert_written(&b, ",nan\r\n");
    resp_write_double(&b, 2, 1.0 / 0.0);
    assert_written(&b, "$3\r\ninf\r\n");
    resp_write_double(&b, 2, -1.0 / 0.0);
    assert_written(&b, "$4\r\n-inf\r\n");
    resp_write_double(&b, 2, -(0.0 / 0.0));
    assert_written(&b, "$3\r\nnan\r\n");
    buf_fini(&b);
}

static void test_resp_writes_verbatim(void **state)
{
    struct buf b;
    buf_init(&b);
    resp_write_verbatim(&b, 3, "hello", 5);
    assert_written(&b, "=9\r\ntxt:hello\r\n");
    resp_write_verbatim(&b, 2, "hello", 5);
    assert_written(&b, "$5\r\nhello\r\n");
    resp_write_verbatim(&b, 3, "", 0);
    assert_written(&b, "=4\r\ntxt:\r\n");
    buf_fini(&b);
}

static void test_resp_writers_append(void **state)
{
    struct buf b;
    buf_init(&b);
    resp_write_array_len(&b, 2);
    resp_write_bulk_str(&b, "a");
    resp_write_int(&b, 7);
    assert_written(&b, "*2\r\n$1\r\na\r\n:7\r\n");
    buf_fini(&b);
}

/* resp_peek_keys over an exact-size heap copy (ASan sees any read past it). */
static uint32_t peek(const char *text, struct resp_arg *keys, uint32_t max, char **copy)
{
    size_t len = strlen(text);
    *copy = test_malloc(len ? len : 1);
    memcpy(*copy, text, len);
    return resp_peek_keys(*copy, len, keys, max);
}

static void expect_key(const struct resp_arg *k, const char *want)
{
    assert_int_equal(k->len, strlen(want));
    assert_memory_equal(k->ptr, want, k->len);
}

/* The keys of pipelined requests, ahead of parsing them: whole requests and
 * one cut short in its key's bulk still count; the look stops at max, at a
 * request with no key's room left, and at anything that is not a plain
 * multibulk, and reads nothing past the input. */
static void test_resp_peek_keys_of_pipelined_requests(void **state)
{
    struct resp_arg keys[4];
    char *copy;
    assert_int_equal(peek("*2\r\n$3\r\nGET\r\n$1\r\na\r\n*3\r\n$3\r\nSET\r\n$2\r\nbb\r\n"
                          "$1\r\nv\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$3\r\nccc\r\n",
                          keys, 4, &copy),
                     3);
    expect_key(&keys[0], "a");
    expect_key(&keys[1], "bb");
    expect_key(&keys[2], "ccc");
    test_free(copy);
    /* max */
    assert_int_equal(peek("*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n", keys,
                          1, &copy),
                     1);
    test_free(copy);
    /* cut short: in the key's bulk, in its length line, in a later argument */
    const char *const cut[] = {"*2\r\n$3\r\nGET\r\n$5\r\nabc", "*2\r\n$3\r\nGET\r\n$1",
                               "*2\r\n$3\r\nGET\r\n$1\r\na", "*", "*2\r", ""};
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
        assert_int_equal(peek(cut[i], keys, 4, &copy), 0);
        test_free(copy);
    }
    assert_int_equal(peek("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nab", keys, 4, &copy), 1);
    expect_key(&keys[0], "k");
    test_free(copy);
    /* not for the peek: inline, negative or huge lengths, too many args, no digits */
    const char *const odd[] = {"GET a\r\n", "*-1\r\n", "*2\r\n$-1\r\n", "*0\r\n",
                               "*2\r\n$9999999999\r\nGET\r\n", "*65\r\n$1\r\na\r\n$1\r\nb\r\n",
                               "*2\r\n$\r\n", "*2\r\n$3x\r\nGET\r\n", "*2\n$3\r\nGET\r\n"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        assert_int_equal(peek(odd[i], keys, 4, &copy), 0);
        test_free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resp_parses_multibulk),
        cmocka_unit_test(test_resp_peek_keys_of_pipelined_requests),
        cmocka_unit_test(test_resp_bulk_is_binary_safe),
        cmocka_unit_test(test_resp_parses_empty_bulk),
        cmocka_unit_test(test_resp_empty_multibulk_is_consumed),
        cmocka_unit_test(test_resp_pipeline_consumes_one_at_a_time),
        cmocka_unit_test(test_resp_more_on_partial_headers),
        cmocka_unit_test(test_resp_more_sets_need_inside_bulk),
        cmocka_unit_test(test_resp_need_args_after_whole_request),
        cmocka_unit_test(test_resp_need_args_inline),
        cmocka_unit_test(test_resp_max_args_boundary),
        cmocka_unit_test(test_resp_max_bulk_boundary),
        cmocka_unit_test(test_resp_rejects_bad_multibulk_length),
        cmocka_unit_test(test_resp_rejects_bad_bulk_length),
        cmocka_unit_test(test_resp_rejects_missing_dollar),
        cmocka_unit_test(test_resp_errors_need_no_scratch),
        cmocka_unit_test(test_resp_rejects_bulk_without_crlf),
        cmocka_unit_test(test_resp_rejects_too_long_count_lines),
        cmocka_unit_test(test_resp_rejects_too_long_inline),
        cmocka_unit_test(test_resp_parses_inline),
        cmocka_unit_test(test_resp_inline_empty_lines),
        cmocka_unit_test(test_resp_inline_more_without_newline),
        cmocka_unit_test(test_resp_inline_double_quotes),
        cmocka_unit_test(test_resp_inline_single_quotes),
        cmocka_unit_test(test_resp_inline_quote_inside_word),
        cmocka_unit_test(test_resp_inline_nul_is_ordinary),
        cmocka_unit_test(test_resp_rejects_unbalanced_quotes),
        cmocka_unit_test(test_resp_inline_scratch_too_small),
        cmocka_unit_test(test_resp_splits_give_same_requests),
        cmocka_unit_test(test_resp_splits_give_same_errors),
        cmocka_unit_test(test_resp_every_prefix_is_more_or_whole),
        cmocka_unit_test(test_resp_resumed_parse_is_linear),
        cmocka_unit_test(test_resp_resumed_inline_is_linear),
        cmocka_unit_test(test_resp_fresh_parses_are_quadratic),
        cmocka_unit_test(test_resp_writes_simple_types),
        cmocka_unit_test(test_resp_writes_integers),
        cmocka_unit_test(test_resp_writes_bulks),
        cmocka_unit_test(test_resp_writes_nulls_and_aggregates),
        cmocka_unit_test(test_resp_writes_doubles),
        cmocka_unit_test(test_resp_writes_verbatim),
        cmocka_unit_test(test_resp_writers_append),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
