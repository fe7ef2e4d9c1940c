/* test_introspection.c: what monitoring tools and client test suites read
 * about the server, as Redis 7.0 gives it: INFO commandstats and errorstats
 * (calls, rejected and failed calls per command and subcommand, errors by
 * prefix, CONFIG RESETSTAT), INFO replication's offsets, CLIENT LIST's
 * fields (order, qbuf, rbs, rbp, cmd=container|sub), CLIENT KILL in both
 * forms across shards, CLIENT REPLY ON|OFF|SKIP, CONFIG GET with
 * overlapping patterns, COMMAND LIST FILTERBY, COMMAND INFO and DOCS of
 * subcommands (listed under their container, and by their own names) and
 * COMMAND GETKEYSANDFLAGS.
 * Every case holds against redis-server 7.0 too (RINGKV_TEST_TARGET=redis).
 * The node has 2 shards, so keys and connections live on both: a command
 * whose key is on the other shard, and a client killed from the other
 * shard, are covered by using several of each. Each case gets a fresh
 * connection, FLUSHALL and CONFIG RESETSTAT; the NOAUTH case has its own
 * node with --requirepass. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PASSWORD "intro-pass"
#define NKEYS 8 /* enough keys that some live on each shard */

static struct harness_server server;
static struct harness_server auth_server;

static int group_setup(void **state)
{
    return harness_start(&server, NULL) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    return harness_stop(&server) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    redisContext *c = harness_connect(server.port);
    harness_expect(c, HARNESS_OK, "FLUSHALL");
    harness_expect(c, HARNESS_OK, "CONFIG RESETSTAT");
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    redisFree(*state);
    return 0;
}

static int setup_auth(void **state)
{
    static const char *const args[] = {"--requirepass", PASSWORD, NULL};
    struct harness_opts o = {.args = args};
    return harness_start(&auth_server, &o) == 0 ? 0 : -1;
}

static int teardown_auth(void **state)
{
    return harness_stop(&auth_server) == 0 ? 0 : -1;
}

/* INFO <section>'s text; caller frees. */
static char *info_text(redisContext *c, const char *section)
{
    redisReply *r = harness_cmd(c, "INFO %s", section);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    char *text = strdup(r->str);
    freeReplyObject(r);
    return text;
}

/* The value after "<name>:" on a line of text, up to the line's end, or
 * NULL; caller frees. */
static char *line_value(const char *text, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        if (len > nl && memcmp(p, name, nl) == 0 && p[nl] == ':')
            return strndup(p + nl + 1, len - nl - 1);
        p = eol != NULL ? eol + 2 : NULL;
    }
    return NULL;
}

/* One cmdstat_ line, parsed. */
struct cmdstat {
    bool present;
    long long calls, usec, rejected, failed;
    double per_call;
};

static struct cmdstat cmdstat(redisContext *c, const char *command)
{
    char *text = info_text(c, "commandstats");
    char name[64];
    snprintf(name, sizeof(name), "cmdstat_%s", command);
    char *v = line_value(text, name);
    struct cmdstat st = {.present = v != NULL};
    if (v != NULL &&
        sscanf(v, "calls=%lld,usec=%lld,usec_per_call=%lf,rejected_calls=%lld,failed_calls=%lld",
               &st.calls, &st.usec, &st.per_call, &st.rejected, &st.failed) != 5) {
        print_error("INFO commandstats: %s has an unexpected form: \"%s\"\n", name, v);
        fail();
    }
    free(v);
    free(text);
    return st;
}

static void expect_cmdstat(redisContext *c, const char *command, long long calls,
                           long long rejected, long long failed)
{
    struct cmdstat st = cmdstat(c, command);
    if (!st.present || st.calls != calls || st.rejected != rejected || st.failed != failed) {
        print_error("cmdstat_%s: want calls=%lld rejected=%lld failed=%lld, got %s calls=%lld "
                    "rejected=%lld failed=%lld\n",
                    command, calls, rejected, failed, st.present ? "" : "(absent)", st.calls,
                    st.rejected, st.failed);
        fail();
    }
}

/* errorstat_<prefix>'s count; 0 when absent. */
static long long errorstat(redisContext *c, const char *prefix)
{
    char *text = info_text(c, "errorstats");
    char name[64];
    snprintf(name, sizeof(name), "errorstat_%s", prefix);
    char *v = line_value(text, name);
    long long n = 0;
    if (v != NULL && sscanf(v, "count=%lld", &n) != 1) {
        print_error("INFO errorstats: %s has an unexpected form: \"%s\"\n", name, v);
        fail();
    }
    free(v);
    free(text);
    return n;
}

static void test_introspection_info_sections(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_STATUS("PONG"), "PING");
    /* Redis 7.0 has errorstats in the default INFO, commandstats not. */
    char *text = info_text(c, "default");
    assert_null(strstr(text, "# Commandstats"));
    assert_non_null(strstr(text, "# Errorstats\r\n"));
    free(text);
    redisReply *r = harness_cmd(c, "INFO");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_null(strstr(r->str, "# Commandstats"));
    assert_non_null(strstr(r->str, "# Errorstats\r\n"));
    freeReplyObject(r);
    static const char *const wide[] = {"all", "everything"};
    for (size_t i = 0; i < 2; i++) {
        text = info_text(c, wide[i]);
        assert_non_null(strstr(text, "# Commandstats\r\n"));
        assert_non_null(strstr(text, "# Errorstats\r\n"));
        assert_non_null(strstr(text, "\r\ncmdstat_ping:calls=1,"));
        assert_non_null(strstr(text, "# Keyspace\r\n"));
        free(text);
    }
    text = info_text(c, "commandstats");
    assert_true(strncmp(text, "# Commandstats\r\n", 16) == 0);
    assert_null(strstr(text, "# Server"));
    assert_null(strstr(text, "# Errorstats"));
    free(text);
}

static void test_introspection_commandstats_counts(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET k v");
    harness_expect(c, HARNESS_BULK("v"), "GET k");
    harness_expect(c, HARNESS_BULK("v"), "GET k");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'get' command"), "GET");
    redisReply *r = harness_cmd(c, "NOSUCHCOMMAND a");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'client|id' command"),
                   "CLIENT ID x");
    harness_expect(c, HARNESS_ERR("ERR unknown subcommand 'nosuch'. Try CLIENT HELP."),
                   "CLIENT nosuch");
    r = harness_cmd(c, "CLIENT LIST");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    /* A failure on either shard counts on the command. */
    for (int i = 0; i < NKEYS; i++) {
        harness_expect(c, HARNESS_OK, "SET str:%d abc", i);
        harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"), "INCR str:%d",
                       i);
    }
    harness_expect(c, HARNESS_INT(1), "INCR counter");

    expect_cmdstat(c, "get", 2, 1, 0);
    expect_cmdstat(c, "set", 1 + NKEYS, 0, 0);
    expect_cmdstat(c, "incr", NKEYS + 1, 0, NKEYS);
    expect_cmdstat(c, "client|id", 0, 1, 0);
    expect_cmdstat(c, "client|list", 1, 0, 0);
    assert_false(cmdstat(c, "client").present);
    assert_false(cmdstat(c, "nosuchcommand").present);
    struct cmdstat set = cmdstat(c, "set");
    assert_true(set.usec >= 0 && set.per_call >= 0.0);
    /* get's arity, the unknown command and subcommand, client|id's arity, the INCRs. */
    long long errors = 1 + 1 + 1 + 1 + NKEYS;
    assert_int_equal(errorstat(c, "ERR"), errors);
    assert_int_equal(harness_info_number(c, "stats", "total_error_replies"), errors);

    harness_expect(c, HARNESS_OK, "CONFIG RESETSTAT");
    assert_false(cmdstat(c, "get").present);
    assert_false(cmdstat(c, "incr").present);
    expect_cmdstat(c, "config|resetstat", 1, 0, 0);
    assert_int_equal(errorstat(c, "ERR"), 0);
    assert_int_equal(harness_info_number(c, "stats", "total_error_replies"), 0);
    assert_int_equal(harness_info_number(c, "stats", "keyspace_hits"), 0);
}

/* Refusals before running (NOAUTH) are rejected calls; errors count by
 * their first word. */
static void test_introspection_errorstats_by_prefix(void **state)
{
    redisContext *c = harness_connect(auth_server.port);
    harness_expect(c, HARNESS_ERR("NOAUTH Authentication required."), "GET k");
    harness_expect(c, HARNESS_ERR("NOAUTH Authentication required."), "SET k v");
    harness_expect(c, HARNESS_ERR("NOAUTH Authentication required."), "GET k");
    harness_expect(c, HARNESS_ERR("WRONGPASS invalid username-password pair or user is disabled."),
                   "AUTH wrong");
    harness_expect(c, HARNESS_OK, "AUTH %s", PASSWORD);
    assert_int_equal(errorstat(c, "NOAUTH"), 3);
    assert_int_equal(errorstat(c, "WRONGPASS"), 1);
    assert_int_equal(errorstat(c, "ERR"), 0);
    expect_cmdstat(c, "get", 0, 2, 0);
    expect_cmdstat(c, "set", 0, 1, 0);
    expect_cmdstat(c, "auth", 2, 0, 1);
    redisFree(c);
}

static void test_introspection_replication(void **state)
{
    redisContext *c = *state;
    char *text = info_text(c, "replication");
    static const struct {
        const char *name, *value;
    } want[] = {{"role", "master"},
                {"connected_slaves", "0"},
                {"master_failover_state", "no-failover"},
                {"master_replid2", "0000000000000000000000000000000000000000"},
                {"master_repl_offset", "0"},
                {"second_repl_offset", "-1"},
                {"repl_backlog_active", "0"},
                {"repl_backlog_first_byte_offset", "0"},
                {"repl_backlog_histlen", "0"}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char *v = line_value(text, want[i].name);
        if (v == NULL || strcmp(v, want[i].value) != 0) {
            print_error("INFO replication: %s is \"%s\", want \"%s\"\n", want[i].name,
                        v != NULL ? v : "(absent)", want[i].value);
            fail();
        }
        free(v);
    }
    char *id = line_value(text, "master_replid");
    assert_non_null(id);
    assert_int_equal(strlen(id), 40);
    assert_int_equal(strspn(id, "0123456789abcdef"), 40);
    free(id);
    free(text);
}

/* The line of a CLIENT LIST / CLIENT INFO reply; checks Redis 7.0's fields
 * come first, in its order. Returns the reply (caller frees). */
static redisReply *client_line(redisContext *c, const char *cmd)
{
    static const char *const fields[] = {
        "id",        "addr",     "laddr",     "fd",   "name", "age",   "idle",
        "flags",     "db",       "sub",       "psub", "ssub", "multi", "qbuf",
        "qbuf-free", "argv-mem", "multi-mem", "rbs",  "rbp",  "obl",   "oll",
        "omem",      "tot-mem",  "events",    "cmd",  "user", "redir", "resp"};
    redisReply *r = harness_cmd(c, cmd);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    const char *p = r->str;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        size_t n = strlen(fields[i]);
        if (strncmp(p, fields[i], n) != 0 || p[n] != '=') {
            print_error("%s: field %zu should be %s in \"%s\"\n", cmd, i, fields[i], r->str);
            fail();
        }
        p = strpbrk(p, " \n");
        assert_non_null(p);
        p++;
    }
    return r;
}

static void test_introspection_client_list_fields(void **state)
{
    redisContext *c = *state;
    /* hiredis sends "*2\r\n$6\r\nCLIENT\r\n$4\r\nLIST\r\n": 26 bytes, being served. */
    redisReply *r = client_line(c, "CLIENT INFO");
    assert_non_null(strstr(r->str, " qbuf=26 "));
    assert_non_null(strstr(r->str, " cmd=client|info "));
    freeReplyObject(r);
    char want[64];
    redisReply *id = harness_cmd(c, "CLIENT ID");
    snprintf(want, sizeof(want), "CLIENT LIST ID %lld", id->integer);
    freeReplyObject(id);
    r = client_line(c, want);
    assert_non_null(strstr(r->str, " cmd=client|list "));
    freeReplyObject(r);
    r = client_line(c, "CLIENT LIST");
    freeReplyObject(r);

    /* Another client's last command, as its line names it. */
    redisContext *other = harness_connect(server.port);
    harness_expect(other, HARNESS_OK, "SET k v");
    id = harness_cmd(other, "CLIENT ID");
    snprintf(want, sizeof(want), "CLIENT LIST ID %lld", id->integer);
    freeReplyObject(id);
    r = client_line(c, want);
    assert_non_null(strstr(r->str, " cmd=client|id "));
    freeReplyObject(r);
    harness_expect(other, HARNESS_OK, "SET k v");
    r = client_line(c, want);
    assert_non_null(strstr(r->str, " cmd=set "));
    freeReplyObject(r);
    redisFree(other);
}

static long long client_id_of(redisContext *c)
{
    return harness_integer(c, "CLIENT ID");
}

/* A connection's peer address as CLIENT INFO reports it; caller frees. */
static char *client_addr_of(redisContext *c)
{
    redisReply *r = harness_cmd(c, "CLIENT INFO");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    const char *a = strstr(r->str, " addr=");
    assert_non_null(a);
    a += 6;
    char *addr = strndup(a, strcspn(a, " "));
    freeReplyObject(r);
    return addr;
}

/* The server closed c: a command on it gets no reply. */
/* CLIENT LIST ID: the lines of the ids asked, in their order (a repeated id
 * twice, an unknown one not at all), whichever shard owns each client. */
static void test_introspection_client_list_ids_in_order(void **state)
{
    redisContext *c = *state;
    enum { N = 6 };
    redisContext *others[N];
    long long ids[N];
    for (int i = 0; i < N; i++) {
        others[i] = harness_connect(server.port);
        ids[i] = client_id_of(others[i]);
    }
    long long asked[] = {ids[5], 999999999, ids[0], ids[3], ids[0], ids[2]};
    long long want[] = {ids[5], ids[0], ids[3], ids[0], ids[2]};
    char cmd[256];
    int n = snprintf(cmd, sizeof cmd, "CLIENT LIST ID");
    for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " %lld", asked[i]);
    redisReply *r = harness_cmd(c, cmd);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    const char *p = r->str;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char id[32];
        snprintf(id, sizeof id, "id=%lld ", want[i]);
        assert_true(strncmp(p, id, strlen(id)) == 0);
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    assert_int_equal(*p, '\0');
    freeReplyObject(r);
    for (int i = 0; i < N; i++)
        redisFree(others[i]);
}

static bool is_killed(redisContext *c)
{
    redisReply *r = redisCommand(c, "PING");
    if (r != NULL) {
        freeReplyObject(r);
        return false;
    }
    return true;
}

static void test_introspection_client_kill(void **state)
{
    redisContext *c = *state;
    enum { N = 6 }; /* connections land on both shards */
    redisContext *others[N];
    long long ids[N];
    for (int i = 0; i < N; i++) {
        others[i] = harness_connect(server.port);
        ids[i] = client_id_of(others[i]);
    }
    /* By id, wherever the connection lives. */
    for (int i = 0; i < 3; i++) {
        harness_expect(c, HARNESS_INT(1), "CLIENT KILL ID %lld", ids[i]);
        assert_true(is_killed(others[i]));
        harness_expect(c, HARNESS_INT(0), "CLIENT KILL ID %lld", ids[i]);
    }
    /* The old form, by address. */
    char *addr = client_addr_of(others[3]);
    harness_expect(c, HARNESS_OK, "CLIENT KILL %s", addr);
    assert_true(is_killed(others[3]));
    harness_expect(c, HARNESS_ERR("ERR No such client"), "CLIENT KILL %s", addr);
    /* Filters that match nobody, then ADDR with SKIPME. */
    harness_expect(c, HARNESS_INT(0), "CLIENT KILL TYPE pubsub");
    harness_expect(c, HARNESS_INT(0), "CLIENT KILL ADDR 10.9.9.9:1 TYPE normal");
    harness_expect(c, HARNESS_INT(0), "CLIENT KILL ID %lld LADDR 127.0.0.1:1", ids[4]);
    char *mine = client_addr_of(c);
    harness_expect(c, HARNESS_INT(0), "CLIENT KILL ADDR %s", mine);
    free(mine);
    free(addr);
    /* Everyone else: the two left (and clients of earlier cases still closing). */
    redisReply *r = harness_cmd(c, "CLIENT KILL TYPE normal USER default");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_true(r->integer >= 2);
    freeReplyObject(r);
    assert_true(is_killed(others[4]));
    assert_true(is_killed(others[5]));
    harness_expect(c, HARNESS_STATUS("PONG"), "PING");
    for (int i = 0; i < N; i++)
        redisFree(others[i]);
}

/* SKIPME no: the caller gets its reply, then the connection closes. */
static void test_introspection_client_kill_self(void **state)
{
    redisContext *c = *state;
    struct harness_raw *r = harness_raw_open(server.port);
    harness_raw_send_str(r, "CLIENT ID\r\n");
    char *line = harness_raw_line(r, HARNESS_TIMEOUT_MS);
    assert_non_null(line);
    long long id = strtoll(line + 1, NULL, 10);
    free(line);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "CLIENT KILL ID %lld\r\n", id);
    harness_raw_send_str(r, cmd);
    harness_raw_expect(r, ":0\r\n"); /* SKIPME yes by default */
    snprintf(cmd, sizeof(cmd), "CLIENT KILL ID %lld SKIPME no\r\nPING\r\n", id);
    harness_raw_send_str(r, cmd);
    harness_raw_expect(r, ":1\r\n");
    harness_raw_expect_closed(r);
    harness_raw_close(r);
    harness_expect(c, HARNESS_STATUS("PONG"), "PING");
}

static void test_introspection_client_kill_errors(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'client|kill' command"),
                   "CLIENT KILL");
    harness_expect(c, HARNESS_ERR("ERR No such client"), "CLIENT KILL 10.9.9.9:1");
    harness_expect(c, HARNESS_ERR("ERR client-id should be greater than 0"), "CLIENT KILL ID 0");
    harness_expect(c, HARNESS_ERR("ERR client-id should be greater than 0"), "CLIENT KILL ID abc");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "CLIENT KILL foo bar");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "CLIENT KILL ID 5 ADDR");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "CLIENT KILL SKIPME maybe");
    harness_expect(c, HARNESS_ERR("ERR Unknown client type 'foo'"), "CLIENT KILL TYPE foo");
    harness_expect(c, HARNESS_ERR("ERR No such user 'nobody'"), "CLIENT KILL USER nobody");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'client|reply' command"),
                   "CLIENT REPLY");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "CLIENT REPLY maybe");
    harness_expect(c, HARNESS_OK, "CLIENT REPLY ON");
}

static void test_introspection_client_reply(void **state)
{
    struct harness_raw *r = harness_raw_open(server.port);
    /* OFF: nothing (errors included) until ON; SKIP: the next request only,
     * whether its reply is made here or on the other shard (MGET). */
    harness_raw_send_str(r, "SET a 1\r\nCLIENT REPLY OFF\r\nPING\r\nSET b 2\r\nNOSUCH\r\n"
                            "CLIENT REPLY SKIP\r\nMGET a b c d\r\nCLIENT REPLY ON\r\nPING\r\n"
                            "CLIENT REPLY SKIP\r\nMGET a b c d e f\r\nECHO x\r\n"
                            "CLIENT REPLY SKIP\r\nPING\r\nMGET a b\r\n");
    harness_raw_expect(r, "+OK\r\n+OK\r\n+PONG\r\n$1\r\nx\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    harness_raw_close(r);
}

/* Connection commands that ask every shard (CLIENT LIST, CLIENT KILL,
 * CONFIG RESETSTAT) reached while an earlier reply is still pending (a
 * cross-shard MGET): OFF and SKIP silence their replies too. */
static void test_introspection_client_reply_behind_a_pending_request(void **state)
{
    struct harness_raw *r = harness_raw_open(server.port);
    harness_raw_send_str(r, "MGET a b c d e f g h\r\nCLIENT REPLY OFF\r\nCONFIG RESETSTAT\r\n"
                            "CLIENT LIST\r\nCLIENT KILL ID 999999\r\nCLIENT REPLY ON\r\n"
                            "PING\r\nMGET a b c d e f g h\r\nCLIENT REPLY SKIP\r\n"
                            "CLIENT KILL ID 999999\r\nMGET a b c d e f g h\r\nCLIENT REPLY SKIP\r\n"
                            "CLIENT LIST\r\nPING x\r\n");
    const char *nils = "*8\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n";
    char want[256];
    snprintf(want, sizeof want, "%s+OK\r\n+PONG\r\n%s%s$1\r\nx\r\n", nils, nils, nils);
    harness_raw_expect(r, want);
    harness_raw_close(r);
}

/* Issue 10 review: CONFIG GET gave any client the cluster-secret. It reads
 * "(hidden)" now, by name and by pattern; the secret is nowhere in CONFIG
 * GET * or INFO. */
static void test_introspection_config_get_hides_cluster_secret(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    static const char secret[] = "d5a1c0ffee-cluster-secret";
    static const char *const args[] = {"--cluster-secret", secret, NULL};
    struct harness_opts o = {.args = args};
    struct harness_server s;
    assert_int_equal(harness_start(&s, &o), 0);
    redisContext *c = harness_connect(s.port);
    redisReply *r = harness_cmd(c, "CONFIG GET cluster-secret");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    assert_string_equal(r->element[1]->str, "(hidden)");
    freeReplyObject(r);
    r = harness_cmd(c, "CONFIG GET *");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    bool listed = false;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        assert_null(strstr(r->element[i + 1]->str, secret));
        listed |= strcmp(r->element[i]->str, "cluster-secret") == 0;
    }
    assert_true(listed);
    freeReplyObject(r);
    char *info = info_text(c, "everything");
    assert_null(strstr(info, secret));
    free(info);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

/* WAIT on a node alone: no other replica holds anything, 0 (Redis without
 * replicas says 0 once the timeout passes; ringkv at once). */
static void test_introspection_wait_alone(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET waited value");
    harness_expect(c, HARNESS_INT(0), "WAIT 0 0");
    harness_expect(c, HARNESS_INT(0), "WAIT 1 20");
    harness_expect(c, HARNESS_ERR("ERR timeout is negative"), "WAIT 0 -1");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"), "WAIT x 0");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'wait' command"), "WAIT 1");
}

/* A setting matched by several patterns is listed once. */
static void test_introspection_config_get_each_once(void **state)
{
    redisContext *c = *state;
    redisReply *r = harness_cmd(c, "CONFIG GET maxmemory maxmem* MAXMEMORY *memory");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_true(r->elements % 2 == 0 && r->elements >= 4);
    size_t maxmemory = 0;
    for (size_t i = 0; i < r->elements; i += 2) {
        assert_int_equal(r->element[i]->type, REDIS_REPLY_STRING);
        for (size_t j = i + 2; j < r->elements; j += 2)
            if (strcmp(r->element[i]->str, r->element[j]->str) == 0) {
                print_error("CONFIG GET lists %s twice\n", r->element[i]->str);
                fail();
            }
        maxmemory += strcmp(r->element[i]->str, "maxmemory") == 0;
    }
    assert_int_equal(maxmemory, 1);
    freeReplyObject(r);
    harness_expect(c, HARNESS_ERR("ERR unknown subcommand 'nosuch'. Try CONFIG HELP."),
                   "CONFIG nosuch");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'config|get' command"),
                   "CONFIG GET");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'config|resetstat' command"),
                   "CONFIG RESETSTAT x");
}

/* Whether an array reply holds the bulk string s. */
static bool has_name(const redisReply *r, const char *s)
{
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, s) == 0)
            return true;
    return false;
}

static void expect_listed(redisContext *c, const char *filter, const char *const *in, size_t nin,
                          const char *const *out, size_t nout)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "COMMAND LIST FILTERBY %s", filter); /* spaces split words */
    redisReply *r = harness_cmd(c, cmd);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < nin; i++)
        if (!has_name(r, in[i])) {
            print_error("COMMAND LIST FILTERBY %s lacks %s\n", filter, in[i]);
            fail();
        }
    for (size_t i = 0; i < nout; i++)
        if (has_name(r, out[i])) {
            print_error("COMMAND LIST FILTERBY %s has %s\n", filter, out[i]);
            fail();
        }
    freeReplyObject(r);
}

static void test_introspection_command_list_filterby(void **state)
{
    redisContext *c = *state;
    redisReply *all = harness_cmd(c, "COMMAND LIST");
    assert_int_equal(all->type, REDIS_REPLY_ARRAY);
    assert_true(has_name(all, "get") && has_name(all, "client") && has_name(all, "client|list"));
    freeReplyObject(all);
    static const char *const strings[] = {"get", "set", "incrbyfloat", "mget", "strlen"};
    static const char *const keyspace[] = {"del", "exists", "ttl", "scan", "dbsize"};
    static const char *const servers[] = {"ping", "client|list", "config|get", "info"};
    expect_listed(c, "ACLCAT string", strings, 5, keyspace, 5);
    expect_listed(c, "aclcat STRING", strings, 5, servers, 4);
    expect_listed(c, "ACLCAT keyspace", keyspace, 5, strings, 5);
    static const char *const reads[] = {"get", "exists", "keys", "dbsize"};
    static const char *const writes[] = {"set", "del", "flushall", "expire"};
    expect_listed(c, "ACLCAT read", reads, 4, writes, 4);
    expect_listed(c, "ACLCAT write", writes, 4, reads, 4);
    static const char *const conn[] = {"ping", "hello", "client|id", "command|list"};
    expect_listed(c, "ACLCAT connection", conn, 4, strings, 5);
    static const char *const dangerous[] = {"keys", "flushall", "client|kill", "config|set"};
    expect_listed(c, "ACLCAT dangerous", dangerous, 4, strings, 5);
    static const char *const bitmaps[] = {"setbit", "getbit", "bitcount", "bitpos"};
    expect_listed(c, "ACLCAT bitmap", bitmaps, 4, strings, 5);
    expect_listed(c, "ACLCAT string", strings, 5, bitmaps, 4);
    static const char *const clients[] = {"client|list", "client|kill", "client|reply"};
    static const char *const not_clients[] = {"client", "command|list", "get"};
    expect_listed(c, "PATTERN client|*", clients, 3, not_clients, 3);
    static const char *const ge[] = {"get", "getset", "getdel"};
    static const char *const not_ge[] = {"set", "mget"};
    expect_listed(c, "PATTERN GE*", ge, 3, not_ge, 2);
    harness_expect(c, HARNESS_ARRAY(0), "COMMAND LIST FILTERBY ACLCAT nosuchcategory");
    harness_expect(c, HARNESS_ARRAY(0), "COMMAND LIST FILTERBY MODULE nosuchmodule");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "COMMAND LIST FILTERBY nosuch x");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "COMMAND LIST FILTERBY ACLCAT");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "COMMAND LIST x y z");
}

/* Whether an array of status or bulk strings is exactly want (in order). */
static bool strings_are(const redisReply *r, const char *const *want, size_t n)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(r->element[i]->str, want[i]) != 0)
            return false;
    return true;
}

/* The value under key in a map reply (a flat array under RESP2), or NULL.
 * COMMAND DOCS is read raw: Redis nests its arguments deeper than hiredis
 * parses. */
static const struct harness_resp *map_get(const struct harness_resp *m, const char *key)
{
    for (size_t i = 0; m && i + 1 < m->n; i += 2)
        if (m->elem[i]->str && strcmp(m->elem[i]->str, key) == 0)
            return m->elem[i + 1];
    return NULL;
}

/* COMMAND DOCS name, sent raw: the map of its one entry (name, then doc). */
static struct harness_resp *docs_of(struct harness_raw *raw, const char *name, size_t len)
{
    char cmd[96];
    snprintf(cmd, sizeof cmd, "COMMAND DOCS %.*s\r\n", (int)len, name);
    harness_raw_send_str(raw, cmd);
    struct harness_resp *docs = harness_raw_reply(raw);
    assert_int_equal(docs->n, 2);
    assert_int_equal(docs->elem[0]->len, len);
    assert_memory_equal(docs->elem[0]->str, name, len);
    return docs;
}

/* COMMAND INFO entry of name within a container's subcommands, or NULL. */
static const redisReply *sub_info(const redisReply *container, const char *name)
{
    const redisReply *subs = container->element[9];
    for (size_t i = 0; i < subs->elements; i++)
        if (strcmp(subs->element[i]->element[0]->str, name) == 0)
            return subs->element[i];
    return NULL;
}

/* Every subcommand COMMAND LIST names ("client|list") is in its container's
 * COMMAND INFO (element 9) and COMMAND DOCS ("subcommands"), as Redis 7
 * lists them, and COMMAND INFO / DOCS take its full name as well, with the
 * same arity and ACL categories. */
static void test_introspection_command_info_lists_subcommands(void **state)
{
    redisContext *c = *state;
    struct harness_raw *raw = harness_raw_open(server.port);
    redisReply *all = harness_cmd(c, "COMMAND LIST");
    assert_int_equal(all->type, REDIS_REPLY_ARRAY);
    int subs = 0;
    for (size_t i = 0; i < all->elements; i++) {
        const char *name = all->element[i]->str;
        const char *bar = strchr(name, '|');
        if (!bar)
            continue;
        subs++;
        redisReply *info = harness_cmd(c, "COMMAND INFO %b", name, (size_t)(bar - name));
        const redisReply *in = sub_info(info->element[0], name);
        if (!in) {
            print_error("COMMAND INFO %.*s does not list %s\n", (int)(bar - name), name, name);
            fail();
        }
        redisReply *own = harness_cmd(c, "COMMAND INFO %s", name);
        assert_int_equal(own->element[0]->type, REDIS_REPLY_ARRAY);
        assert_string_equal(own->element[0]->element[0]->str, name);
        assert_int_equal(own->element[0]->element[1]->integer, in->element[1]->integer);
        assert_int_equal(own->element[0]->element[6]->elements, in->element[6]->elements);
        assert_true(in->element[6]->elements > 0); /* its ACL categories */
        freeReplyObject(own);
        freeReplyObject(info);
        struct harness_resp *docs = docs_of(raw, name, (size_t)(bar - name));
        const struct harness_resp *doc = map_get(map_get(docs->elem[1], "subcommands"), name);
        const struct harness_resp *summary = map_get(doc, "summary");
        if (!summary || !summary->str || !summary->str[0]) {
            print_error("COMMAND DOCS %.*s has no summary of %s\n", (int)(bar - name), name, name);
            fail();
        }
        harness_resp_free(docs);
        harness_resp_free(docs_of(raw, name, strlen(name)));
    }
    freeReplyObject(all);
    assert_true(subs >= 20); /* CLIENT, COMMAND, CONFIG, CLUSTER */

    /* What Redis 7.0 says of CLIENT LIST and of a plain command. */
    redisReply *r = harness_cmd(c, "COMMAND INFO client|list get nosuch|sub");
    assert_int_equal(r->elements, 3);
    const redisReply *list = r->element[0];
    harness_check(list->element[1], HARNESS_INT(-2), "client|list arity");
    bool admin = false; /* among its flags (Redis adds noscript, loading, stale) */
    for (size_t i = 0; i < list->element[2]->elements; i++)
        admin |= strcmp(list->element[2]->element[i]->str, "admin") == 0;
    assert_true(admin);
    static const char *const list_cats[] = {"@admin", "@slow", "@dangerous", "@connection"};
    assert_true(strings_are(list->element[6], list_cats, 4));
    static const char *const get_cats[] = {"@read", "@string", "@fast"};
    assert_true(strings_are(r->element[1]->element[6], get_cats, 3));
    assert_int_equal(r->element[2]->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    struct harness_resp *docs = docs_of(raw, "client|list", strlen("client|list"));
    assert_string_equal(map_get(docs->elem[1], "summary")->str,
                        "Get the list of client connections");
    assert_string_equal(map_get(docs->elem[1], "group")->str, "connection");
    assert_string_equal(map_get(docs->elem[1], "since")->str, "2.4.0");
    harness_resp_free(docs);
    harness_raw_close(raw);
}

/* One [key, flags] element of GETKEYSANDFLAGS, flags in Redis's order. */
static void check_key_flags(const redisReply *e, const char *key, const char *const *flags,
                            size_t n)
{
    assert_int_equal(e->type, REDIS_REPLY_ARRAY);
    assert_int_equal(e->elements, 2);
    harness_check(e->element[0], HARNESS_BULK(key), "key");
    const redisReply *f = e->element[1];
    assert_int_equal(f->type, REDIS_REPLY_ARRAY);
    assert_int_equal(f->elements, n);
    for (size_t i = 0; i < n; i++)
        harness_check(f->element[i], HARNESS_STATUS(flags[i]), "key flag");
}

static void test_introspection_command_getkeysandflags(void **state)
{
    redisContext *c = *state;
    static const struct {
        const char *cmd;
        const char *flags[3];
        size_t n;
    } one[] = {
        {"GET a", {"RO", "access"}, 2},
        {"SET a b", {"OW", "update"}, 2},
        {"SETNX a b", {"OW", "insert"}, 2},
        {"INCR a", {"RW", "access", "update"}, 3},
        {"GETDEL a", {"RW", "access", "delete"}, 3},
        {"APPEND a b", {"RW", "insert"}, 2},
        {"STRLEN a", {"RO"}, 1},
        {"EXPIRE a 10", {"RW", "update"}, 2},
        {"TTL a", {"RO", "access"}, 2},
    };
    for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
        char cmd[96];
        snprintf(cmd, sizeof(cmd), "COMMAND GETKEYSANDFLAGS %s", one[i].cmd);
        redisReply *r = harness_cmd(c, cmd);
        harness_check(r, HARNESS_ARRAY(1), one[i].cmd);
        check_key_flags(r->element[0], "a", one[i].flags, one[i].n);
        freeReplyObject(r);
    }
    static const char *const rm[] = {"RM", "delete"}, *const ow[] = {"OW", "update"};
    redisReply *r = harness_cmd(c, "COMMAND GETKEYSANDFLAGS DEL a b");
    harness_check(r, HARNESS_ARRAY(2), "DEL a b");
    check_key_flags(r->element[0], "a", rm, 2);
    check_key_flags(r->element[1], "b", rm, 2);
    freeReplyObject(r);
    r = harness_cmd(c, "COMMAND GETKEYSANDFLAGS MSET a 1 b");
    harness_check(r, HARNESS_ARRAY(2), "MSET a 1 b");
    check_key_flags(r->element[1], "b", ow, 2);
    freeReplyObject(r);
    harness_expect(c,
                   HARNESS_ERR("ERR wrong number of arguments for 'command|getkeysandflags' "
                               "command"),
                   "COMMAND GETKEYSANDFLAGS get");
    harness_expect(c, HARNESS_ERR("ERR Invalid command specified"),
                   "COMMAND GETKEYSANDFLAGS nosuch a");
    harness_expect(c, HARNESS_ERR("ERR The command has no key arguments"),
                   "COMMAND GETKEYSANDFLAGS keys a");
    harness_expect(c, HARNESS_ERR("ERR Invalid number of arguments specified for command"),
                   "COMMAND GETKEYSANDFLAGS get a b");
    /* Under RESP3 the flags are a set. */
    struct harness_raw *raw = harness_raw_open(server.port);
    harness_raw_send_str(raw, "HELLO 3\r\n");
    harness_resp_free(harness_raw_reply(raw));
    harness_raw_send_str(raw, "COMMAND GETKEYSANDFLAGS SET a b\r\n");
    harness_raw_expect(raw, "*1\r\n*2\r\n$1\r\na\r\n~2\r\n+OW\r\n+update\r\n");
    harness_raw_close(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_introspection_info_sections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_introspection_commandstats_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_introspection_errorstats_by_prefix, setup_auth,
                                        teardown_auth),
        cmocka_unit_test_setup_teardown(test_introspection_replication, setup, teardown),
        cmocka_unit_test_setup_teardown(test_introspection_client_list_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_introspection_client_list_ids_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_introspection_client_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_introspection_client_kill_self, setup, teardown),
        cmocka_unit_test_setup_teardown(test_introspection_client_kill_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_introspection_client_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_introspection_client_reply_behind_a_pending_request,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_introspection_config_get_each_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_introspection_wait_alone, setup, teardown),
        cmocka_unit_test(test_introspection_config_get_hides_cluster_secret),
        cmocka_unit_test_setup_teardown(test_introspection_command_list_filterby, setup, teardown),
        cmocka_unit_test_setup_teardown(test_introspection_command_info_lists_subcommands, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_introspection_command_getkeysandflags, setup,
                                        teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
