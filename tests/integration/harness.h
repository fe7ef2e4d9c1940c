/* harness.h: one real node for an integration test, and the clients that drive it.
 * Starts ringkv ($RINGKV_BIN) on free loopback ports, or, when the environment
 * says RINGKV_TEST_TARGET=redis, redis-server (plus memcached for the memcached
 * port) so the tests themselves can be checked against the servers whose
 * behaviour ringkv copies. Servers run in a scratch directory with their
 * output captured to a file, are stopped by PID (SIGTERM, then SIGKILL past a
 * deadline), die with the test process (PR_SET_PDEATHSIG) and are stopped at
 * exit; harness_finish() prints their output when a test failed.
 * Clients: hiredis contexts with reply expectations, and raw sockets with
 * deadlines for bytes hiredis cannot send or parse (bad input, RESP3,
 * memcached text).
 * Threads: the server and raw functions, and every function that fails the test,
 *   belong to the cmocka thread. Worker threads may use plain hiredis contexts
 *   of their own and harness_now_ms().
 * Errors: functions named *_at (and the macros over them) fail the running
 *   test at the caller's file and line with a message saying what was sent,
 *   what was wanted and what came back. harness_start() and harness_stop()
 *   return 0 or a negative errno and print why. */
#ifndef RINGKV_TESTS_INTEGRATION_HARNESS_H
#define RINGKV_TESTS_INTEGRATION_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#define HARNESS_TIMEOUT_MS 10000 /* longest wait for any reply or start-up */
#define HARNESS_PATH_MAX 256

/* A started node. Owned by the test; harness_stop() releases it. */
struct harness_server {
    int port;     /* RESP port on 127.0.0.1 */
    int mc_port;  /* memcached text port; 0 when the test did not ask for it */
    pid_t pid;    /* ringkv or redis-server; 0 once stopped */
    pid_t mc_pid; /* memcached under the redis target, else 0 */
    int slot;     /* index in the harness's registry of started servers */
};

struct harness_opts {
    int threads;             /* ringkv --threads; 0 means 2 */
    bool memcache;           /* the test talks memcached text on mc_port */
    const char *const *args; /* extra flags, Redis setting names, NULL-terminated:
                                {"--maxmemory", "1mb", NULL}. Under the redis
                                target ringkv-only flags are dropped. */
    const char *dir;         /* run the node in this directory (the test's: kept
                                at exit), not in a fresh scratch one; so a
                                restart finds what the default data directory
                                holds. NULL: a scratch directory */
};

/* True when RINGKV_TEST_TARGET=redis: the tests run against redis-server and
 * memcached, and ringkv-only behaviour is skipped. */
bool harness_target_is_redis(void);

/* Skips the running test under the redis target (ringkv-only behaviour). */
#define harness_skip_unless_ringkv()                                                               \
    do {                                                                                           \
        if (harness_target_is_redis())                                                             \
            skip();                                                                                \
    } while (0)

/* Starts a node and waits (HARNESS_TIMEOUT_MS, polling every 10 ms) until its
 * ports accept connections; a node that exits before accepting (a port taken
 * meanwhile) is retried on new ports, three attempts in all. 0, or a negative
 * errno after printing why and the server's output. Exits the process with 77 (skip) when ringkv
 * reports at start-up that the kernel refuses io_uring. */
int harness_start(struct harness_server *s, const struct harness_opts *opts);

/* Stops the node: SIGTERM, wait up to HARNESS_TIMEOUT_MS, then SIGKILL.
 * 0 when it was still running and exited cleanly (status 0 or SIGTERM);
 * -ECHILD when it had died before, exited non-zero or on another signal, or
 * needed SIGKILL (printed, with its output). Safe to call twice. */
int harness_stop(struct harness_server *s);

/* Stops the node with SIGTERM where a failing exit is what the test
 * expects: waits up to timeout_ms (then SIGKILL), counts no failure.
 * Returns its exit status, or -ECHILD (died before, killed, no exit). */
int harness_stop_exit(struct harness_server *s, int timeout_ms);
/* Waits up to timeout_ms for the node to exit by itself (SHUTDOWN): its exit
 * status, or -ETIMEDOUT (it is then killed) or -ECHILD (no node, or killed by
 * a signal). */
int harness_wait_exit(struct harness_server *s, int timeout_ms);

/* Crashes the node on purpose: SIGKILL, then reaps it. 0, or -ECHILD (a
 * failure, printed) when it had died before. */
int harness_crash(struct harness_server *s);

/* SIGKILLs every node this program started that still runs: what a failed
 * assertion left behind. Their output stays for harness_finish(). For a
 * teardown, before it removes a data directory under a live node (which
 * would go on serving, burning CPU and logging errors about vanished
 * files while the next tests run). */
void harness_crash_all(void);

/* True when the node's captured output (its log) contains needle. */
bool harness_output_mentions(const struct harness_server *s, const char *needle);

/* Runs ringkv (RINGKV_BIN) in the foreground, under a 30 s timeout, with
 * --port port --memcache-port 0 and `flags` (shell words, quoted as needed),
 * its output into `log`; fails the test unless it exits with status 1 after
 * logging `needle` (a start that must be refused). */
void harness_start_refused_at(const char *file, int line, int port, const char *flags,
                              const char *log, const char *needle);
#define harness_start_refused(port, flags, log, needle)                                            \
    harness_start_refused_at(__FILE__, __LINE__, (port), (flags), (log), (needle))

/* Ends a test program: with failures (cmocka's count plus failed starts and
 * stops, which cmocka does not count for group fixtures) prints the output of
 * every server started; removes the scratch files. Returns that total, main's
 * exit status. */
int harness_finish(int failures);

/* Two loopback ports that were free a moment ago (bound, then released), for
 * a test that runs a node without harness_start(). 0, or a negative errno. */
int harness_free_ports(int *a, int *b);

/* A fresh directory /tmp/<prefix>-XXXXXX into dir (cap bytes), for data a
 * test keeps across restarts. 0 or -errno. */
int harness_temp_dir(char *dir, size_t cap, const char *prefix);
/* Removes a directory tree (harness_temp_dir's). 0, or -1 if some of it stays. */
int harness_remove_dir(const char *dir);
/* The name of the oldest (newest: the newest) segment file of shard 0 under
 * a data directory (storage = log) in name[0..cap); "" when it has none. */
void harness_shard0_segment(const char *data_dir, bool newest, char *name, size_t cap);

/* Fills out[0..len) with printable bytes that do not compress, the same
 * for the same seed (a value a test can check after a restart). */
void harness_noise(uint32_t seed, char *out, size_t len);

/* Checks, pipelined, that key:0 .. key:n-1 hold harness_noise(i, len). */
void harness_check_noise_keys_at(const char *file, int line, redisContext *c, int n, size_t len);
#define harness_check_noise_keys(c, n, len)                                                       \
    harness_check_noise_keys_at(__FILE__, __LINE__, (c), (n), (len))

/* Monotonic milliseconds. */
int64_t harness_now_ms(void);

/* Polls cond(arg) every poll_ms until it is true or timeout_ms passed.
 * True when the condition held in time. */
bool harness_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms, int poll_ms);

/* ---- hiredis clients ---- */

/* Connects to 127.0.0.1:port with HARNESS_TIMEOUT_MS on connect and replies.
 * Fails the test on error. Free with redisFree. */
redisContext *harness_connect_at(const char *file, int line, int port);
#define harness_connect(port) harness_connect_at(__FILE__, __LINE__, (port))

/* Runs a command (hiredis format: %s, %b with pointer and size_t length, ...). Fails the test when
 * no reply came (I/O error, timeout). The reply is the caller's: freeReplyObject. */
redisReply *harness_cmd_at(const char *file, int line, redisContext *c, const char *fmt, ...);
#define harness_cmd(c, ...) harness_cmd_at(__FILE__, __LINE__, (c), __VA_ARGS__)

/* Runs a command whose reply must be an integer, and returns it; fails the
 * test otherwise. */
long long harness_integer_at(const char *file, int line, redisContext *c, const char *fmt, ...);
#define harness_integer(c, ...) harness_integer_at(__FILE__, __LINE__, (c), __VA_ARGS__)

/* The number after "name:" in INFO section; fails the test when it is absent. */
double harness_info_number_at(const char *file, int line, redisContext *c, const char *section,
                              const char *name);
#define harness_info_number(c, section, name)                                                     \
    harness_info_number_at(__FILE__, __LINE__, (c), (section), (name))

/* Reads the next pipelined reply; fails the test when none came. */
redisReply *harness_next_reply_at(const char *file, int line, redisContext *c);
#define harness_next_reply(c) harness_next_reply_at(__FILE__, __LINE__, (c))

/* What a reply should be. */
enum harness_want_kind {
    HARNESS_WANT_STATUS,    /* +str */
    HARNESS_WANT_ERROR,     /* -str, exactly */
    HARNESS_WANT_INT,       /* :num */
    HARNESS_WANT_BULK,      /* $len str (binary-safe) */
    HARNESS_WANT_NIL,       /* $-1 or *-1 */
    HARNESS_WANT_ARRAY_LEN, /* *num with any elements */
};

struct harness_want {
    enum harness_want_kind kind;
    const char *str;
    size_t len;
    long long num;
};

#define HARNESS_OK ((struct harness_want){.kind = HARNESS_WANT_STATUS, .str = "OK", .len = 2})
#define HARNESS_NIL ((struct harness_want){.kind = HARNESS_WANT_NIL})
#define HARNESS_STATUS(s)                                                                          \
    ((struct harness_want){.kind = HARNESS_WANT_STATUS, .str = (s), .len = strlen(s)})
#define HARNESS_ERR(s)                                                                             \
    ((struct harness_want){.kind = HARNESS_WANT_ERROR, .str = (s), .len = strlen(s)})
#define HARNESS_INT(n) ((struct harness_want){.kind = HARNESS_WANT_INT, .num = (n)})
#define HARNESS_BULK(s)                                                                            \
    ((struct harness_want){.kind = HARNESS_WANT_BULK, .str = (s), .len = strlen(s)})
#define HARNESS_BULK_LEN(p, n)                                                                     \
    ((struct harness_want){.kind = HARNESS_WANT_BULK, .str = (p), .len = (n)})
#define HARNESS_ARRAY(n) ((struct harness_want){.kind = HARNESS_WANT_ARRAY_LEN, .num = (n)})

/* True when r is what want says; else writes why (want and got) into why. */
bool harness_reply_matches(const redisReply *r, struct harness_want want, char *why, size_t cap);

/* Checks a reply already read; `what` names it in the failure message. */
void harness_check_at(const char *file, int line, const redisReply *r, struct harness_want want,
                      const char *what);
#define harness_check(r, want, what) harness_check_at(__FILE__, __LINE__, (r), (want), (what))

/* Runs a command and checks its reply. */
void harness_expect_at(const char *file, int line, redisContext *c, struct harness_want want,
                       const char *fmt, ...);
#define harness_expect(c, want, ...) harness_expect_at(__FILE__, __LINE__, (c), (want), __VA_ARGS__)

/* Checks that an array reply holds exactly these bulk strings, in order
 * (NULL in want[] stands for a nil element). */
void harness_check_bulks_at(const char *file, int line, const redisReply *r,
                            const char *const *want, size_t n, const char *what);
#define harness_check_bulks(r, want, n, what)                                                      \
    harness_check_bulks_at(__FILE__, __LINE__, (r), (want), (n), (what))

/* ---- raw sockets ---- */

/* A raw connection with its own receive buffer. */
struct harness_raw {
    int fd;
    char *buf;
    size_t len;
    size_t cap;
    bool eof; /* the peer closed (or reset) the connection */
};

/* One parsed RESP2/RESP3 reply from a raw socket. type is the RESP type byte
 * ('+', '-', ':', '$', '*', '%', '~', '_', ',', '#', '(', '=', '|', '>').
 * str/len hold simple, error, bulk, verbatim, double and big-number text;
 * num holds integers and the declared length of '$' and aggregates (-1 for
 * RESP2 nulls); aggregates hold n children (maps: key, value, key, value). */
struct harness_resp {
    char type;
    char *str;
    size_t len;
    long long num;
    size_t n;
    struct harness_resp **elem;
};

/* Connects a raw TCP socket; fails the test on error. */
struct harness_raw *harness_raw_open_at(const char *file, int line, int port);
#define harness_raw_open(port) harness_raw_open_at(__FILE__, __LINE__, (port))
void harness_raw_close(struct harness_raw *r);

/* Sends all n bytes; fails the test on error. A peer that already closed
 * (EPIPE, ECONNRESET) is not an error: the next read sees it. */
void harness_raw_send_at(const char *file, int line, struct harness_raw *r, const void *p,
                         size_t n);
#define harness_raw_send(r, p, n) harness_raw_send_at(__FILE__, __LINE__, (r), (p), (n))
#define harness_raw_send_str(r, s) harness_raw_send_at(__FILE__, __LINE__, (r), (s), strlen(s))

/* Reads until at least n bytes are buffered, the peer closes, or timeout_ms
 * passes. Returns the number buffered (may be < n). */
size_t harness_raw_fill(struct harness_raw *r, size_t n, int timeout_ms);

/* Expects exactly these next n bytes (within HARNESS_TIMEOUT_MS) and consumes them. */
void harness_raw_expect_at(const char *file, int line, struct harness_raw *r, const char *want,
                           size_t n);
#define harness_raw_expect(r, s) harness_raw_expect_at(__FILE__, __LINE__, (r), (s), strlen(s))

/* Next line without its CRLF; NULL on close or timeout. Caller frees. */
char *harness_raw_line(struct harness_raw *r, int timeout_ms);

/* Next RESP reply, parsed; fails the test on close, timeout or a malformed
 * reply. Free with harness_resp_free. */
struct harness_resp *harness_raw_reply_at(const char *file, int line, struct harness_raw *r);
#define harness_raw_reply(r) harness_raw_reply_at(__FILE__, __LINE__, (r))
void harness_resp_free(struct harness_resp *v);

/* In a map (or flat key/value array) reply, the value under key; NULL if absent. */
const struct harness_resp *harness_resp_map_get(const struct harness_resp *m, const char *key);

/* Expects the peer to close the connection within HARNESS_TIMEOUT_MS with no
 * further bytes; fails the test otherwise. */
void harness_raw_expect_closed_at(const char *file, int line, struct harness_raw *r);
#define harness_raw_expect_closed(r) harness_raw_expect_closed_at(__FILE__, __LINE__, (r))

/* Writes a printable form of n bytes (escapes, truncated) into out. */
void harness_escape(const char *p, size_t n, char *out, size_t cap);

#endif
