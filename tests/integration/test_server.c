/* test_server.c: connection and server commands of one node: PING ECHO QUIT
 * SELECT, inline commands, HELLO 2/3 with RESP3 replies, AUTH with
 * requirepass, CLIENT ID/SETNAME/GETNAME/INFO/LIST (TYPE and ID filters,
 * laddr, RESP3 verbatim replies), COMMAND COUNT/INFO/DOCS/GETKEYS, HELP and
 * subcommand errors, INFO with Redis's section and field names (the memory
 * peak, the ops rate, the shards' slow loop turns), ROLE, LASTSAVE and the
 * maxclients limit.
 * The plain node serves most cases (fresh connection and FLUSHALL per case);
 * the AUTH cases start their own node with --requirepass, and the maxclients
 * case one with --maxclients 3. hiredis
 * 0.14 cannot read RESP3, so RESP3 and QUIT are checked on raw sockets with
 * the harness's own reply parser. Counters (hits, misses, clients) are checked
 * as deltas, clients as a condition with a deadline because the server
 * accepts a connection after the client's connect() returns. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PASSWORD "s3cret-pass"

static struct harness_server server;

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
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    redisFree(*state);
    return 0;
}

/* A node of its own for the cases that need other settings. */
static struct harness_server own_server;

static int setup_auth(void **state)
{
    static const char *const args[] = {"--requirepass", PASSWORD, NULL};
    struct harness_opts o = {.args = args};
    return harness_start(&own_server, &o) == 0 ? 0 : -1;
}

static int setup_maxclients(void **state)
{
    static const char *const args[] = {"--maxclients", "3", NULL};
    struct harness_opts o = {.args = args};
    return harness_start(&own_server, &o) == 0 ? 0 : -1;
}

static int setup_slow_turns(void **state)
{
    static const char *const args[] = {"--slow-turn-ms", "1", "--slowlog-log-slower-than", "1000",
                                       NULL};
    struct harness_opts o = {.threads = 1, .args = args};
    return harness_start(&own_server, &o) == 0 ? 0 : -1;
}

static int setup_slowlog_all(void **state)
{
    static const char *const args[] = {"--slowlog-log-slower-than", "0", "--slowlog-max-len", "4",
                                       NULL};
    struct harness_opts o = {.args = args};
    return harness_start(&own_server, &o) == 0 ? 0 : -1;
}

static int setup_own_default(void **state)
{
    return harness_start(&own_server, NULL) == 0 ? 0 : -1;
}

static int teardown_own(void **state)
{
    return harness_stop(&own_server) == 0 ? 0 : -1;
}

/* The value of "name:" in section (NULL: all) of INFO, or NULL; caller frees. */
static char *info_field(redisContext *c, const char *section, const char *name)
{
    redisReply *r = section != NULL ? harness_cmd(c, "INFO %s", section) : harness_cmd(c, "INFO");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    size_t nl = strlen(name);
    char *val = NULL;
    for (const char *p = r->str; p != NULL && *p != '\0';) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        if (len > nl && memcmp(p, name, nl) == 0 && p[nl] == ':') {
            val = strndup(p + nl + 1, len - nl - 1);
            break;
        }
        p = eol != NULL ? eol + 2 : NULL;
    }
    freeReplyObject(r);
    return val;
}

static long long info_int(redisContext *c, const char *section, const char *name)
{
    char *v = info_field(c, section, name);
    if (v == NULL) {
        print_error("INFO %s has no field %s\n", section ? section : "", name);
        fail();
    }
    char *end;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end != '\0') {
        print_error("INFO field %s is not an integer: \"%s\"\n", name, v);
        fail();
    }
    free(v);
    return n;
}

static void test_server_ping_echo(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_STATUS("PONG"), "PING");
    harness_expect(c, HARNESS_BULK("hello"), "PING hello");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'ping' command"), "PING a b");
    harness_expect(c, HARNESS_BULK("hi there"), "ECHO %s", "hi there");
    harness_expect(c, HARNESS_BULK_LEN("a\0b", 3), "ECHO %b", "a\0b", (size_t)3);
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'echo' command"), "ECHO");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'echo' command"), "ECHO a b");
}

static void test_server_select(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SELECT 0");
    harness_expect(c, HARNESS_ERR("ERR DB index is out of range"), "SELECT 1");
    harness_expect(c, HARNESS_ERR("ERR DB index is out of range"), "SELECT -1");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"), "SELECT x");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'select' command"), "SELECT");
    harness_expect(c, HARNESS_OK, "SET k v");
    harness_expect(c, HARNESS_BULK("v"), "GET k");
}

static void test_server_quit_closes_after_reply(void **state)
{
    struct harness_raw *r = harness_raw_open(server.port);
    harness_raw_send_str(r, "SET quitkey v\r\nQUIT\r\nSET quitkey other\r\n");
    harness_raw_expect(r, "+OK\r\n+OK\r\n");
    harness_raw_expect_closed(r);
    harness_raw_close(r);
    harness_expect(*state, HARNESS_BULK("v"), "GET quitkey");
}

static void test_server_inline_commands(void **state)
{
    struct harness_raw *r = harness_raw_open(server.port);
    harness_raw_send_str(r, "PING\r\n\r\nSET ik \"a b\"\r\nGET ik\r\nECHO 'x y'\r\n"
                            "SET ik \"q\\x41\\n\"\r\nGET ik\r\nPING\n");
    harness_raw_expect(r, "+PONG\r\n+OK\r\n$3\r\na b\r\n$3\r\nx y\r\n+OK\r\n$3\r\nqA\n\r\n"
                          "+PONG\r\n");
    harness_raw_close(r);
}

static void test_server_hello_resp3(void **state)
{
    struct harness_raw *r = harness_raw_open(server.port);
    harness_raw_send_str(r, "HELLO 3\r\n");
    struct harness_resp *v = harness_raw_reply(r);
    assert_int_equal(v->type, '%');
    const struct harness_resp *proto = harness_resp_map_get(v, "proto");
    assert_non_null(proto);
    assert_int_equal(proto->type, ':');
    assert_int_equal(proto->num, 3);
    assert_non_null(harness_resp_map_get(v, "server"));
    assert_non_null(harness_resp_map_get(v, "version"));
    const struct harness_resp *id = harness_resp_map_get(v, "id");
    assert_non_null(id);
    assert_int_equal(id->type, ':');
    harness_resp_free(v);
    /* A missing key is RESP3's null; other replies keep their types. */
    harness_raw_send_str(r, "GET nosuchkey\r\nSET k3 v\r\nGET k3\r\nINCR n3\r\nPING\r\n");
    harness_raw_expect(r, "_\r\n+OK\r\n$1\r\nv\r\n:1\r\n+PONG\r\n");
    harness_raw_send_str(r, "HELLO\r\n");
    v = harness_raw_reply(r);
    assert_int_equal(v->type, '%');
    assert_int_equal(harness_resp_map_get(v, "proto")->num, 3);
    harness_resp_free(v);
    harness_raw_send_str(r, "HELLO 4\r\n");
    harness_raw_expect(r, "-NOPROTO unsupported protocol version\r\n");
    /* Back to RESP2: the hello reply is a flat array and nulls are $-1. */
    harness_raw_send_str(r, "HELLO 2\r\n");
    v = harness_raw_reply(r);
    assert_int_equal(v->type, '*');
    proto = harness_resp_map_get(v, "proto");
    assert_non_null(proto);
    assert_int_equal(proto->num, 2);
    harness_resp_free(v);
    harness_raw_send_str(r, "GET nosuchkey\r\n");
    harness_raw_expect(r, "$-1\r\n");
    harness_raw_close(r);
}

static void test_server_auth_required(void **state)
{
    redisContext *c = harness_connect(own_server.port);
    harness_expect(c, HARNESS_ERR("NOAUTH Authentication required."), "GET k");
    harness_expect(c, HARNESS_ERR("NOAUTH Authentication required."), "SET k v");
    harness_expect(c, HARNESS_ERR("NOAUTH Authentication required."), "PING");
    harness_expect(c, HARNESS_ERR("WRONGPASS invalid username-password pair or user is disabled."),
                   "AUTH wrong");
    harness_expect(c, HARNESS_ERR("NOAUTH Authentication required."), "GET k");
    harness_expect(c, HARNESS_OK, "AUTH %s", PASSWORD);
    harness_expect(c, HARNESS_OK, "SET k v");
    harness_expect(c, HARNESS_BULK("v"), "GET k");
    redisFree(c);

    c = harness_connect(own_server.port);
    harness_expect(c, HARNESS_ERR("WRONGPASS invalid username-password pair or user is disabled."),
                   "AUTH default wrong");
    harness_expect(c, HARNESS_OK, "AUTH default %s", PASSWORD);
    harness_expect(c, HARNESS_BULK("v"), "GET k");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "AUTH a b c");
    redisFree(c);
}

/* RESET gives back the connection as accepted: the transaction dropped,
 * the name gone, replies on, RESP2, and authentication asked again. */
static void test_server_reset(void **state)
{
    redisContext *c = harness_connect(own_server.port);
    harness_expect(c, HARNESS_STATUS("RESET"), "RESET"); /* allowed before AUTH */
    harness_expect(c, HARNESS_OK, "AUTH %s", PASSWORD);
    harness_expect(c, HARNESS_OK, "CLIENT SETNAME before-reset");
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, HARNESS_STATUS("QUEUED"), "SET reset:k v");
    harness_expect(c, HARNESS_STATUS("RESET"), "RESET"); /* runs at once inside MULTI */
    harness_expect(c, HARNESS_ERR("NOAUTH Authentication required."), "GET reset:k");
    harness_expect(c, HARNESS_OK, "AUTH %s", PASSWORD);
    harness_expect(c, HARNESS_NIL, "GET reset:k"); /* the queued SET never ran */
    harness_expect(c, HARNESS_ERR("ERR EXEC without MULTI"), "EXEC");
    harness_expect(c, HARNESS_NIL, "CLIENT GETNAME");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'reset' command"),
                   "RESET now");
    redisFree(c);

    struct harness_raw *r = harness_raw_open(own_server.port);
    harness_raw_send_str(r, "HELLO 3 AUTH default " PASSWORD "\r\n");
    struct harness_resp *v = harness_raw_reply(r);
    assert_int_equal(v->type, '%');
    harness_resp_free(v);
    harness_raw_send_str(r, "CLIENT REPLY OFF\r\nPING\r\nRESET\r\n");
    harness_raw_expect(r, "+RESET\r\n"); /* replies are on again: RESET's own is sent */
    harness_raw_send_str(r, "AUTH " PASSWORD "\r\nGET reset:none\r\n");
    harness_raw_expect(r, "+OK\r\n$-1\r\n"); /* RESP2's null, not RESP3's _ */
    harness_raw_close(r);
}

static void test_server_auth_with_hello(void **state)
{
    struct harness_raw *r = harness_raw_open(own_server.port);
    harness_raw_send_str(r, "HELLO 3\r\n");
    struct harness_resp *v = harness_raw_reply(r);
    assert_int_equal(v->type, '-');
    assert_true(strncmp(v->str, "NOAUTH ", 7) == 0);
    harness_resp_free(v);
    harness_raw_send_str(r, "HELLO 3 AUTH default wrong\r\n");
    harness_raw_expect(r, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    harness_raw_send_str(r, "HELLO 3 AUTH default " PASSWORD "\r\n");
    v = harness_raw_reply(r);
    assert_int_equal(v->type, '%');
    assert_int_equal(harness_resp_map_get(v, "proto")->num, 3);
    harness_resp_free(v);
    harness_raw_send_str(r, "GET nosuchkey\r\n");
    harness_raw_expect(r, "_\r\n");
    harness_raw_close(r);
}

static void test_server_auth_without_password_configured(void **state)
{
    harness_expect(*state,
                   HARNESS_ERR("ERR AUTH <password> called without any password configured for "
                               "the default user. Are you sure your configuration is correct?"),
                   "AUTH foo");
    harness_expect(*state, HARNESS_STATUS("PONG"), "PING");
}

static void test_server_client_id_names(void **state)
{
    redisContext *c = *state;
    redisContext *other = harness_connect(server.port);
    redisReply *r = harness_cmd(c, "CLIENT ID");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long id = r->integer;
    freeReplyObject(r);
    r = harness_cmd(other, "CLIENT ID");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_true(r->integer != id);
    freeReplyObject(r);
    harness_expect(c, HARNESS_NIL, "CLIENT GETNAME");
    harness_expect(c, HARNESS_OK, "CLIENT SETNAME tester-1");
    harness_expect(c, HARNESS_BULK("tester-1"), "CLIENT GETNAME");
    harness_expect(other, HARNESS_NIL, "CLIENT GETNAME");
    harness_expect(c,
                   HARNESS_ERR("ERR Client names cannot contain spaces, newlines or special "
                               "characters."),
                   "CLIENT SETNAME %s", "a b");
    harness_expect(c, HARNESS_BULK("tester-1"), "CLIENT GETNAME");
    harness_expect(c, HARNESS_ERR("ERR unknown subcommand 'foo'. Try CLIENT HELP."), "CLIENT foo");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'client' command"), "CLIENT");

    r = harness_cmd(c, "CLIENT LIST");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "id=%lld ", id);
    const char *line = NULL;
    int lines = 0;
    for (const char *p = r->str; p != NULL && *p != '\0'; lines++) {
        if (strncmp(p, prefix, strlen(prefix)) == 0)
            line = p;
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    assert_true(lines >= 2);
    assert_non_null(line);
    const char *eol = strchr(line, '\n');
    char *mine = strndup(line, eol != NULL ? (size_t)(eol - line) : strlen(line));
    assert_non_null(strstr(mine, " name=tester-1 "));
    assert_non_null(strstr(mine, " addr=127.0.0.1:"));
    free(mine);
    freeReplyObject(r);
    harness_expect(c, HARNESS_OK, "CLIENT SETNAME %b", "", (size_t)0);
    harness_expect(c, HARNESS_NIL, "CLIENT GETNAME");
    redisFree(other);
}

static void test_server_command_count_info(void **state)
{
    redisContext *c = *state;
    redisReply *r = harness_cmd(c, "COMMAND COUNT");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long count = r->integer;
    assert_true(count >= 30);
    freeReplyObject(r);
    r = harness_cmd(c, "COMMAND");
    harness_check(r, HARNESS_ARRAY(count), "COMMAND");
    freeReplyObject(r);

    r = harness_cmd(c, "COMMAND INFO get set mget nosuchcommand");
    harness_check(r, HARNESS_ARRAY(4), "COMMAND INFO");
    const struct {
        const char *name;
        long long arity, first, last, step;
    } want[] = {{"get", 2, 1, 1, 1}, {"set", -3, 1, 1, 1}, {"mget", -2, 1, -1, 1}};
    for (int i = 0; i < 3; i++) {
        const redisReply *e = r->element[i];
        assert_int_equal(e->type, REDIS_REPLY_ARRAY);
        assert_true(e->elements >= 6);
        harness_check(e->element[0], HARNESS_BULK(want[i].name), "command name");
        harness_check(e->element[1], HARNESS_INT(want[i].arity), "arity");
        assert_int_equal(e->element[2]->type, REDIS_REPLY_ARRAY);
        harness_check(e->element[3], HARNESS_INT(want[i].first), "first key");
        harness_check(e->element[4], HARNESS_INT(want[i].last), "last key");
        harness_check(e->element[5], HARNESS_INT(want[i].step), "key step");
    }
    harness_check(r->element[3], HARNESS_NIL, "COMMAND INFO of an unknown command");
    freeReplyObject(r);

    /* A keyed subcommand names its key as Redis 7 does (read-only, at 2):
     * redis-py's RedisCluster routes MEMORY USAGE by it, and failed on
     * step 0 (range() arg 3 must not be zero); a keyless one names none. */
    r = harness_cmd(c, "COMMAND INFO memory|usage object|encoding memory|stats");
    harness_check(r, HARNESS_ARRAY(3), "COMMAND INFO of subcommands");
    for (int i = 0; i < 3; i++) {
        const redisReply *e = r->element[i];
        assert_int_equal(e->type, REDIS_REPLY_ARRAY);
        assert_true(e->elements >= 6);
        long long key = i < 2 ? 2 : 0;
        assert_int_equal(e->element[2]->type, REDIS_REPLY_ARRAY);
        assert_int_equal(e->element[2]->elements, i < 2 ? 1 : 0);
        if (i < 2)
            harness_check(e->element[2]->element[0], HARNESS_STATUS("readonly"), "flag");
        harness_check(e->element[3], HARNESS_INT(key), "first key");
        harness_check(e->element[4], HARNESS_INT(key), "last key");
        harness_check(e->element[5], HARNESS_INT(key ? 1 : 0), "key step");
    }
    freeReplyObject(r);
}

static void test_server_command_docs(void **state)
{
    redisContext *c = *state;
    redisReply *r = harness_cmd(c, "COMMAND DOCS get");
    harness_check(r, HARNESS_ARRAY(2), "COMMAND DOCS get");
    harness_check(r->element[0], HARNESS_BULK("get"), "name");
    const redisReply *doc = r->element[1];
    assert_int_equal(doc->type, REDIS_REPLY_ARRAY);
    assert_true(doc->elements % 2 == 0);
    bool has_summary = false;
    for (size_t i = 0; i + 1 < doc->elements; i += 2) {
        if (doc->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(doc->element[i]->str, "summary") == 0) {
            has_summary =
                doc->element[i + 1]->type == REDIS_REPLY_STRING && doc->element[i + 1]->len > 0;
        }
    }
    assert_true(has_summary);
    freeReplyObject(r);
    /* Every command's docs nest deeper than hiredis 0.14 reads: raw socket. */
    struct harness_raw *raw = harness_raw_open(server.port);
    harness_raw_send_str(raw, "COMMAND DOCS\r\n");
    struct harness_resp *all = harness_raw_reply(raw);
    assert_int_equal(all->type, '*');
    assert_true(all->n >= 2 * 30 && all->n % 2 == 0);
    assert_non_null(harness_resp_map_get(all, "set"));
    assert_non_null(harness_resp_map_get(all, "mget"));
    harness_resp_free(all);
    harness_raw_close(raw);
}

static void test_server_info_sections(void **state)
{
    redisContext *c = *state;
    redisReply *r = harness_cmd(c, "INFO");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    const char *headers[] = {"# Server\r\n", "# Clients\r\n", "# Memory\r\n", "# Stats\r\n",
                             "# Keyspace\r\n"};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
        assert_non_null(strstr(r->str, headers[i]));
    assert_true(r->len >= 2 && memcmp(r->str + r->len - 2, "\r\n", 2) == 0);
    freeReplyObject(r);

    char *version = info_field(c, "server", "redis_version");
    assert_non_null(version);
    assert_true(strlen(version) > 0);
    free(version);
    assert_true(info_int(c, "clients", "connected_clients") >= 1);
    assert_true(info_int(c, "memory", "used_memory") > 0);
    assert_true(info_int(c, "memory", "used_memory_rss") > 0);
    assert_true(info_int(c, "stats", "total_commands_processed") > 0);
    assert_true(info_int(c, "stats", "keyspace_hits") >= 0);
    assert_true(info_int(c, "stats", "keyspace_misses") >= 0);

    /* One section asked, one section given. */
    r = harness_cmd(c, "INFO memory");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(r->str, "# Memory\r\n"));
    assert_null(strstr(r->str, "# Server"));
    assert_null(strstr(r->str, "connected_clients:"));
    freeReplyObject(r);
    r = harness_cmd(c, "info CLIENTS");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(r->str, "connected_clients:"));
    assert_null(strstr(r->str, "used_memory:"));
    freeReplyObject(r);
}

static void test_server_info_keyspace(void **state)
{
    redisContext *c = *state;
    char *db0 = info_field(c, "keyspace", "db0");
    assert_null(db0);
    harness_expect(c, HARNESS_OK, "MSET a 1 b 2 c 3");
    harness_expect(c, HARNESS_OK, "SET d 4 EX 1000");
    db0 = info_field(c, "keyspace", "db0");
    assert_non_null(db0);
    assert_true(strncmp(db0, "keys=4,expires=1,", 17) == 0);
    free(db0);
}

static void test_server_info_hits_misses_commands(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET hit v");
    long long hits = info_int(c, "stats", "keyspace_hits");
    long long misses = info_int(c, "stats", "keyspace_misses");
    long long cmds = info_int(c, "stats", "total_commands_processed");
    for (int i = 0; i < 3; i++)
        harness_expect(c, HARNESS_BULK("v"), "GET hit");
    for (int i = 0; i < 2; i++)
        harness_expect(c, HARNESS_NIL, "GET miss");
    assert_int_equal(info_int(c, "stats", "keyspace_hits"), hits + 3);
    assert_int_equal(info_int(c, "stats", "keyspace_misses"), misses + 2);
    /* The three INFO calls since and the five GETs. */
    assert_true(info_int(c, "stats", "total_commands_processed") >= cmds + 5);
}

static void test_server_subcommand_errors(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_ERR("ERR unknown subcommand 'foo'. Try COMMAND HELP."),
                   "COMMAND foo");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'command|count' command"),
                   "COMMAND COUNT x");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'command|help' command"),
                   "COMMAND HELP x");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'command|getkeys' command"),
                   "COMMAND GETKEYS get");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "COMMAND LIST x");
    harness_expect(c, HARNESS_ERR("ERR unknown subcommand 'foo'. Try CLIENT HELP."), "client foo");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'client|id' command"),
                   "CLIENT ID x");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'client|info' command"),
                   "CLIENT info x");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'client|setname' command"),
                   "CLIENT SETNAME");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'client|help' command"),
                   "CLIENT HELP x");
}

/* An unknown name is a null element of the array, not a null array. */
static void test_server_command_info_unknown_is_null_element(void **state)
{
    struct harness_raw *r = harness_raw_open(server.port);
    harness_raw_send_str(r, "COMMAND INFO nonexist\r\n");
    harness_raw_expect(r, "*1\r\n$-1\r\n");
    harness_raw_send_str(r, "HELLO 3\r\n");
    harness_resp_free(harness_raw_reply(r));
    harness_raw_send_str(r, "COMMAND INFO nonexist\r\n");
    harness_raw_expect(r, "*1\r\n_\r\n");
    harness_raw_close(r);
}

/* Whether an array reply holds a status line equal to line. */
static bool help_has_line(const redisReply *r, const char *line)
{
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STATUS && strcmp(r->element[i]->str, line) == 0)
            return true;
    return false;
}

/* HELP: status lines, a title first and HELP's own last; the rest lists the
 * subcommands (only those both servers have are checked). */
static void check_help(redisContext *c, const char *container, const char *const *lines, size_t n)
{
    redisReply *r = harness_cmd(c, "%s HELP", container);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_true(r->elements >= 3 + n);
    for (size_t i = 0; i < r->elements; i++)
        assert_int_equal(r->element[i]->type, REDIS_REPLY_STATUS);
    char title[96];
    snprintf(title, sizeof(title),
             "%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", container);
    assert_string_equal(r->element[0]->str, title);
    assert_string_equal(r->element[r->elements - 2]->str, "HELP");
    assert_string_equal(r->element[r->elements - 1]->str, "    Prints this help.");
    for (size_t i = 0; i < n; i++) {
        if (!help_has_line(r, lines[i])) {
            print_error("%s HELP has no line \"%s\"\n", container, lines[i]);
            fail();
        }
    }
    freeReplyObject(r);
}

static void test_server_command_and_client_help(void **state)
{
    static const char *const command_lines[] = {
        "(no subcommand)",
        "    Return details about all Redis commands.",
        "COUNT",
        "    Return the total number of commands in this Redis server.",
        "LIST",
        "INFO [<command-name> ...]",
        "DOCS [<command-name> ...]",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full Redis command.",
    };
    check_help(*state, "COMMAND", command_lines, sizeof(command_lines) / sizeof(command_lines[0]));
    static const char *const client_lines[] = {
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "INFO",
        "LIST [options ...]",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "KILL <ip:port>",
        "KILL <option> <value> [<option> <value> [...]]",
        "    * SKIPME (YES|NO)",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
    };
    check_help(*state, "CLIENT", client_lines, sizeof(client_lines) / sizeof(client_lines[0]));
    static const char *const config_lines[] = {
        "GET <pattern>",
        "SET <directive> <value>",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
    };
    check_help(*state, "CONFIG", config_lines, sizeof(config_lines) / sizeof(config_lines[0]));
}

static void test_server_command_getkeys(void **state)
{
    redisContext *c = *state;
    static const char *const a[] = {"a"}, *const k[] = {"k"}, *const abc[] = {"a", "b", "c"};
    redisReply *r = harness_cmd(c, "COMMAND GETKEYS get a");
    harness_check_bulks(r, a, 1, "GETKEYS get");
    freeReplyObject(r);
    r = harness_cmd(c, "COMMAND GETKEYS SET k v EX 10");
    harness_check_bulks(r, k, 1, "GETKEYS set");
    freeReplyObject(r);
    r = harness_cmd(c, "COMMAND GETKEYS mget a b c");
    harness_check_bulks(r, abc, 3, "GETKEYS mget");
    freeReplyObject(r);
    r = harness_cmd(c, "COMMAND GETKEYS mset a 1 b 2");
    harness_check_bulks(r, abc, 2, "GETKEYS mset");
    freeReplyObject(r);
    /* A variadic command's positions past its last argument are skipped. */
    r = harness_cmd(c, "COMMAND GETKEYS mset a 1 b");
    harness_check_bulks(r, abc, 2, "GETKEYS mset, odd");
    freeReplyObject(r);
    harness_expect(c, HARNESS_ERR("ERR Invalid command specified"), "COMMAND GETKEYS nosuch a");
    harness_expect(c, HARNESS_ERR("ERR The command has no key arguments"),
                   "COMMAND GETKEYS keys *");
    harness_expect(c, HARNESS_ERR("ERR The command has no key arguments"),
                   "COMMAND GETKEYS client list");
    harness_expect(c, HARNESS_ERR("ERR Invalid number of arguments specified for command"),
                   "COMMAND GETKEYS get a b");
    harness_expect(c, HARNESS_ERR("ERR Invalid number of arguments specified for command"),
                   "COMMAND GETKEYS mset a");
    /* A container's keys are its subcommand's, as in Redis 7. */
    r = harness_cmd(c, "COMMAND GETKEYS MEMORY USAGE k SAMPLES 5");
    harness_check_bulks(r, k, 1, "GETKEYS memory usage");
    freeReplyObject(r);
    r = harness_cmd(c, "COMMAND GETKEYS object encoding a");
    harness_check_bulks(r, a, 1, "GETKEYS object encoding");
    freeReplyObject(r);
    harness_expect(c, HARNESS_ERR("ERR The command has no key arguments"),
                   "COMMAND GETKEYS object help");
    harness_expect(c, HARNESS_ERR("ERR The command has no key arguments"),
                   "COMMAND GETKEYS memory stats");
    harness_expect(c, HARNESS_ERR("ERR Invalid command specified"),
                   "COMMAND GETKEYS memory nosuch a");
    harness_expect(c, HARNESS_ERR("ERR Invalid number of arguments specified for command"),
                   "COMMAND GETKEYS memory usage");
    harness_expect(c, HARNESS_ERR("ERR Invalid number of arguments specified for command"),
                   "COMMAND GETKEYS object encoding a b");
}

static long long client_id(redisContext *c)
{
    redisReply *r = harness_cmd(c, "CLIENT ID");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long id = r->integer;
    freeReplyObject(r);
    return id;
}

/* The ids of a CLIENT LIST reply's lines, in order; how many. */
static size_t list_ids(const redisReply *r, long long *ids, size_t cap)
{
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    size_t n = 0;
    for (const char *p = r->str; *p != '\0';) {
        assert_true(strncmp(p, "id=", 3) == 0);
        assert_true(n < cap);
        ids[n++] = strtoll(p + 3, NULL, 10);
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        p = nl + 1;
    }
    return n;
}

static void test_server_client_list_type_and_id(void **state)
{
    redisContext *c = *state;
    /* Enough connections that some live on other shards of the node. */
    enum { N = 6 };
    redisContext *others[N];
    long long ids[N + 1];
    for (int i = 0; i < N; i++) {
        others[i] = harness_connect(server.port);
        ids[i] = client_id(others[i]);
    }
    ids[N] = client_id(c);

    long long got[2 * N];
    redisReply *r = harness_cmd(c, "CLIENT LIST TYPE normal");
    size_t n = list_ids(r, got, 2 * N);
    assert_true(n >= N + 1);
    freeReplyObject(r);
    static const char *const none[] = {"master", "replica", "slave", "pubsub", "PUBSUB"};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        harness_expect(c, HARNESS_BULK(""), "CLIENT LIST TYPE %s", none[i]);

    /* In the order asked, a repeated id twice, an unknown one left out. */
    r = harness_cmd(c, "CLIENT LIST ID %lld %lld %lld 999999999 %lld %lld %lld %lld", ids[5],
                    ids[N], ids[2], ids[0], ids[3], ids[1], ids[5]);
    long long want[] = {ids[5], ids[N], ids[2], ids[0], ids[3], ids[1], ids[5]};
    n = list_ids(r, got, 2 * N);
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
    freeReplyObject(r);
    harness_expect(c, HARNESS_BULK(""), "CLIENT LIST ID 999999999 -1 0");

    harness_expect(c, HARNESS_ERR("ERR Unknown client type 'foo'"), "CLIENT LIST TYPE foo");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "CLIENT LIST TYPE");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "CLIENT LIST TYPE normal x");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "CLIENT LIST ID");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "CLIENT LIST foo");
    harness_expect(c, HARNESS_ERR("ERR Invalid client ID"), "CLIENT LIST ID %lld x", ids[0]);
    harness_expect(c, HARNESS_ERR("ERR Invalid client ID"), "CLIENT LIST ID 99999999999999999999");
    for (int i = 0; i < N; i++)
        redisFree(others[i]);
}

/* laddr is the server's end of the connection. */
static void test_server_client_laddr(void **state)
{
    redisContext *c = *state;
    char want[48];
    snprintf(want, sizeof(want), " laddr=127.0.0.1:%d ", server.port);
    redisReply *r = harness_cmd(c, "CLIENT INFO");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(r->str, want));
    assert_true(r->len > 0 && r->str[r->len - 1] == '\n');
    freeReplyObject(r);
    r = harness_cmd(c, "CLIENT LIST ID %lld", client_id(c));
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(r->str, want));
    freeReplyObject(r);
}

/* Under RESP3 CLIENT INFO and CLIENT LIST are verbatim strings (txt). */
static void test_server_client_info_list_resp3(void **state)
{
    struct harness_raw *r = harness_raw_open(server.port);
    harness_raw_send_str(r, "HELLO 3\r\n");
    harness_resp_free(harness_raw_reply(r));
    harness_raw_send_str(r, "CLIENT INFO\r\n");
    struct harness_resp *v = harness_raw_reply(r);
    assert_int_equal(v->type, '=');
    assert_true(v->len > 4 && strncmp(v->str, "txt:id=", 7) == 0);
    assert_non_null(strstr(v->str, " resp=3"));
    assert_true(v->str[v->len - 1] == '\n');
    harness_resp_free(v);
    harness_raw_send_str(r, "CLIENT LIST\r\n");
    v = harness_raw_reply(r);
    assert_int_equal(v->type, '=');
    assert_true(v->len > 4 && strncmp(v->str, "txt:id=", 7) == 0);
    harness_resp_free(v);
    harness_raw_send_str(r, "CLIENT LIST TYPE pubsub\r\nCLIENT LIST ID 999999999\r\n");
    harness_raw_expect(r, "=4\r\ntxt:\r\n=4\r\ntxt:\r\n");
    harness_raw_close(r);
}

/* used_memory_peak is the largest used_memory, and stays after a drop. */
static void test_server_info_memory_peak(void **state)
{
    redisContext *c = *state;
    assert_true(info_int(c, "memory", "used_memory_peak") >= info_int(c, "memory", "used_memory"));
    enum { BIG = 1 << 20 };
    char *big = malloc(BIG);
    assert_non_null(big);
    memset(big, 'x', BIG);
    harness_expect(c, HARNESS_OK, "SET big %b", big, (size_t)BIG);
    free(big);
    long long used = info_int(c, "memory", "used_memory");
    assert_true(info_int(c, "memory", "used_memory_peak") >= used);
    harness_expect(c, HARNESS_INT(1), "DEL big");
    assert_true(info_int(c, "memory", "used_memory") < used);
    assert_true(info_int(c, "memory", "used_memory_peak") >= used);
}

/* instantaneous_ops_per_sec: a rate, not zero once the node has been busy.
 * It is sampled (at most every 100 ms, by INFO): on a loaded machine a few
 * hundred ms of PINGs may hold too few to show as a whole op per second, so
 * the test goes on pinging until the rate shows, within the deadline. */
static bool ops_rate_shows(void *arg)
{
    redisContext *c = arg;
    int64_t start = harness_now_ms();
    while (harness_now_ms() - start < 200)
        harness_expect(c, HARNESS_STATUS("PONG"), "PING");
    return info_int(c, "stats", "instantaneous_ops_per_sec") > 0;
}

static void test_server_info_ops_per_sec(void **state)
{
    redisContext *c = *state;
    assert_true(info_int(c, "stats", "instantaneous_ops_per_sec") >= 0);
    assert_true(harness_wait_until(ops_rate_shows, c, HARNESS_TIMEOUT_MS, 1));
}

struct clients_cond {
    redisContext *c;
    long long want;
};

static bool clients_are(void *arg)
{
    struct clients_cond *cc = arg;
    return info_int(cc->c, "clients", "connected_clients") == cc->want;
}

static void test_server_info_connected_clients(void **state)
{
    redisContext *c = *state;
    /* Earlier cases' connections may still be closing on the server side. */
    struct clients_cond alone = {c, 1};
    assert_true(harness_wait_until(clients_are, &alone, HARNESS_TIMEOUT_MS, 10));
    redisContext *extra[3];
    for (int i = 0; i < 3; i++) {
        extra[i] = harness_connect(server.port);
        harness_expect(extra[i], HARNESS_STATUS("PONG"), "PING");
    }
    struct clients_cond four = {c, 4};
    assert_true(harness_wait_until(clients_are, &four, HARNESS_TIMEOUT_MS, 10));
    for (int i = 0; i < 3; i++)
        redisFree(extra[i]);
    assert_true(harness_wait_until(clients_are, &alone, HARNESS_TIMEOUT_MS, 10));
}

/* A new connection is served (the node has seen an earlier one close). */
static bool new_client_served(void *arg)
{
    struct harness_raw *r = harness_raw_open(own_server.port);
    harness_raw_send_str(r, "PING\r\n");
    harness_raw_fill(r, 7, HARNESS_TIMEOUT_MS);
    bool ok = r->len >= 7 && memcmp(r->buf, "+PONG\r\n", 7) == 0;
    harness_raw_close(r);
    return ok;
}

/* The limit counts every connection the node holds, the harness's readiness
 * probe too (one connection, closed at once: harness_wait_ready()) from the
 * moment its shard accepts it until that shard has seen it close, which a
 * loaded machine may delay past the test's next connects. */
static bool probe_gone(void *arg)
{
    redisContext *c = arg;
    return info_int(c, "stats", "total_connections_received") >= 2 &&
           info_int(c, "clients", "connected_clients") == 1;
}

/* The unix second now (CLOCK_REALTIME: time() may lag it by a tick). */
static long long unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec;
}

/* ROLE as a master without replicas (every node takes writes), and
 * LASTSAVE: a past second, which comes to cover a write once the data log
 * has synced it (storage = log, appendfsync everysec: within about a
 * second). */
static void test_server_role_and_lastsave(void **state)
{
    redisContext *c = *state;
    redisReply *r = redisCommand(c, "ROLE");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    harness_check(r->element[0], HARNESS_BULK("master"), "ROLE's role");
    assert_int_equal(r->element[1]->type, REDIS_REPLY_INTEGER);
    harness_check(r->element[2], HARNESS_ARRAY(0), "ROLE's replicas");
    freeReplyObject(r);
    long long first = harness_integer(c, "LASTSAVE");
    if (first <= 0 || first > unix_now())
        fail_msg("LASTSAVE %lld is not a past unix time (now %lld)", first, unix_now());
    harness_skip_unless_ringkv(); /* redis-server saves on its own schedule */
    while (unix_now() <= first) /* a save of what follows is a later second */
        usleep(20000);
    harness_expect(c, HARNESS_OK, "SET lastsave:key v");
    long long written = unix_now(), deadline = written + 10, now = first;
    while ((now = harness_integer(c, "LASTSAVE")) < written && unix_now() < deadline)
        usleep(50000);
    if (now < written || now > unix_now())
        fail_msg("LASTSAVE %lld (now %lld) does not cover a write of second %lld: no "
                 "fdatasync seen",
                 now, unix_now(), written);
}

#define SLOW_TURN_KEYS 200000

/* INFO's loop-turn figures: a KEYS over 200,000 keys of the node's one
 * shard is one turn of well over slow-turn-ms (1 ms here), counted in
 * ringkv_slow_turns and ringkv_longest_turn_us; a turn of ten times that
 * is logged; CONFIG RESETSTAT starts both again. */
static void test_server_slow_turns_counted(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    redisContext *c = harness_connect(own_server.port);
    for (int from = 0; from < SLOW_TURN_KEYS; from += 1000) {
        for (int i = from; i < from + 1000; i++)
            redisAppendCommand(c, "SET turn:%d v", i);
        for (int i = from; i < from + 1000; i++) {
            redisReply *set = harness_next_reply(c);
            harness_check(set, HARNESS_OK, "SET");
            freeReplyObject(set);
        }
    }
    double slow_before = harness_info_number(c, "stats", "ringkv_slow_turns");
    redisReply *r = redisCommand(c, "KEYS turn:*");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, SLOW_TURN_KEYS);
    freeReplyObject(r);
    double slow = harness_info_number(c, "stats", "ringkv_slow_turns");
    double longest = harness_info_number(c, "stats", "ringkv_longest_turn_us");
    if (slow < slow_before + 1 || longest < 1000)
        fail_msg("a KEYS over %d keys: %.0f slow turns (%.0f before), the longest %.0f us",
                 SLOW_TURN_KEYS, slow, slow_before, longest);
    /* every turn of 10 ms or more is logged but for the rate limit, so the
     * first one was */
    if (longest >= 10000 && !harness_output_mentions(&own_server, "a loop turn took"))
        fail_msg("a turn of %.0f us was not logged", longest);
    /* SLOWLOG (slowlog-log-slower-than 1000 here) kept the KEYS */
    r = harness_cmd(c, "SLOWLOG GET -1");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    bool kept = false;
    for (size_t i = 0; i < r->elements && !kept; i++) {
        const redisReply *e = r->element[i];
        assert_int_equal(e->elements, 6);
        const redisReply *args = e->element[3];
        kept = args->elements == 2 && strcmp(args->element[0]->str, "KEYS") == 0 &&
               strcmp(args->element[1]->str, "turn:*") == 0;
        if (kept && e->element[2]->integer < 1000)
            fail_msg("SLOWLOG kept the KEYS at %lld us, under the 1000 it needs",
                     e->element[2]->integer);
    }
    freeReplyObject(r);
    if (!kept)
        fail_msg("SLOWLOG did not keep a KEYS over %d keys", SLOW_TURN_KEYS);
    harness_expect(c, HARNESS_OK, "CONFIG RESETSTAT");
    double longest_after = harness_info_number(c, "stats", "ringkv_longest_turn_us");
    double slow_after = harness_info_number(c, "stats", "ringkv_slow_turns");
    if (longest_after >= longest || slow_after > 5) /* the reset's turn and a few after */
        fail_msg("after CONFIG RESETSTAT: the longest turn %.0f us (%.0f before), %.0f slow",
                 longest_after, longest, slow_after);
    redisFree(c);
}

/* SLOWLOG with every command kept (slowlog-log-slower-than 0) and room for
 * 4: GET gives the newest first with Redis's six fields, an argument over
 * 128 bytes cut with how many more, a command of more than 32 arguments
 * cut at 32 with how many more, the client's address and name; LEN stops at
 * slowlog-max-len; RESET empties it (the RESET itself is then kept, as
 * Redis does); Redis's errors. Holds against redis-server too. */
static void test_server_slowlog(void **state)
{
    (void)state;
    redisContext *c = harness_connect(own_server.port);
    harness_expect(c, HARNESS_STATUS("OK"), "CLIENT SETNAME slowname");
    harness_expect(c, HARNESS_OK, "SLOWLOG RESET");
    harness_expect(c, HARNESS_OK, "SET slow:k v");
    harness_expect(c, HARNESS_BULK("v"), "GET slow:k");
    char big[301];
    memset(big, 'a', 300);
    big[300] = '\0';
    harness_expect(c, HARNESS_BULK(big), "ECHO %s", big);
    /* COMMAND GETKEYS MSET k0 v0 ... k19 v19: 43 arguments in one run */
    const char *argv[43];
    size_t lens[43];
    char words[40][8];
    argv[0] = "COMMAND";
    argv[1] = "GETKEYS";
    argv[2] = "MSET";
    for (int i = 0; i < 40; i++) {
        snprintf(words[i], sizeof words[i], "%c%d", i % 2 ? 'v' : 'k', i / 2);
        argv[3 + i] = words[i];
    }
    for (int i = 0; i < 43; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = redisCommandArgv(c, 43, argv, lens);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 20);
    freeReplyObject(r);
    long long now = (long long)time(NULL);

    r = harness_cmd(c, "SLOWLOG GET -1");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 4);
    const char *names[4] = {"COMMAND", "ECHO", "GET", "SET"};
    for (size_t i = 0; i < 4; i++) {
        const redisReply *e = r->element[i];
        assert_int_equal(e->type, REDIS_REPLY_ARRAY);
        assert_int_equal(e->elements, 6);
        assert_int_equal(e->element[0]->type, REDIS_REPLY_INTEGER);
        if (i > 0)
            assert_true(e->element[0]->integer < r->element[i - 1]->element[0]->integer);
        assert_true(e->element[1]->integer >= now - 60 && e->element[1]->integer <= now + 1);
        assert_true(e->element[2]->integer >= 0);
        assert_int_equal(e->element[3]->type, REDIS_REPLY_ARRAY);
        assert_string_equal(e->element[3]->element[0]->str, names[i]);
        assert_int_equal(e->element[4]->type, REDIS_REPLY_STRING);
        assert_int_equal(e->element[5]->type, REDIS_REPLY_STRING);
    }
    const redisReply *cmd = r->element[0]->element[3];
    assert_int_equal(cmd->elements, 32);
    assert_string_equal(cmd->element[30]->str, "v13");
    assert_string_equal(cmd->element[31]->str, "... (12 more arguments)");
    const redisReply *echo = r->element[1];
    assert_int_equal(echo->element[3]->elements, 2);
    char cut[200];
    snprintf(cut, sizeof cut, "%.128s... (172 more bytes)", big);
    assert_string_equal(echo->element[3]->element[1]->str, cut);
    assert_non_null(strstr(echo->element[4]->str, "127.0.0.1:"));
    assert_string_equal(echo->element[5]->str, "slowname");
    assert_string_equal(r->element[2]->element[3]->element[1]->str, "slow:k");
    freeReplyObject(r);

    harness_expect(c, HARNESS_INT(4), "SLOWLOG LEN"); /* five by now: at most 4 */
    harness_expect(c, HARNESS_ARRAY(2), "SLOWLOG GET 2");
    harness_expect(c, HARNESS_ARRAY(0), "SLOWLOG GET 0");
    harness_expect(c, HARNESS_OK, "SLOWLOG RESET");
    harness_expect(c, HARNESS_INT(1), "SLOWLOG LEN"); /* the RESET */
    r = harness_cmd(c, "SLOWLOG GET");
    assert_int_equal(r->elements, 2); /* the RESET, the LEN */
    assert_string_equal(r->element[1]->element[3]->element[1]->str, "RESET");
    freeReplyObject(r);
    harness_expect(c, HARNESS_ERR("ERR count should be greater than or equal to -1"),
                   "SLOWLOG GET -2");
    harness_expect(c, HARNESS_ERR("ERR count should be greater than or equal to -1"),
                   "SLOWLOG GET many");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'slowlog|len' command"),
                   "SLOWLOG LEN 1");
    harness_expect(c, HARNESS_ERR("ERR unknown subcommand or wrong number of arguments for "
                                  "'get'. Try SLOWLOG HELP."),
                   "SLOWLOG get 1 2");
    /* AUTH's arguments are never shown */
    freeReplyObject(harness_cmd(c, "AUTH someone secret-word"));
    r = harness_cmd(c, "SLOWLOG GET 1");
    assert_int_equal(r->elements, 1);
    static const char *const auth[] = {"AUTH", "(redacted)", "(redacted)"};
    harness_check_bulks(r->element[0]->element[3], auth, 3, "AUTH's entry");
    freeReplyObject(r);
    redisFree(c);
}

static bool slowlog_keeps(void *arg)
{
    redisContext *c = arg;
    harness_expect(c, HARNESS_STATUS("PONG"), "PING");
    return harness_integer(c, "SLOWLOG LEN") > 0;
}

static bool config_get_is(redisContext *c, const char *name, const char *want)
{
    redisReply *r = harness_cmd(c, "CONFIG GET %s", name);
    bool is = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
              strcmp(r->element[1]->str, want) == 0;
    freeReplyObject(r);
    return is;
}

/* CONFIG SET on the settings that change while the node runs: each takes
 * effect (the SLOWLOG keeps the very next command; a third client is
 * refused at once after maxclients 2; an idle client is closed after
 * timeout 1), CONFIG GET reads the new value, several change in one
 * command, and a command with one bad setting changes none. ringkv only:
 * settings fixed at start-up and Redis's persistence settings. */
static void test_server_config_set(void **state)
{
    (void)state;
    redisContext *c = harness_connect(own_server.port);
    harness_expect(c, HARNESS_OK, "CONFIG SET slowlog-log-slower-than 0 slowlog-max-len 3");
    assert_true(config_get_is(c, "slowlog-log-slower-than", "0"));
    assert_true(config_get_is(c, "slowlog-max-len", "3"));
    assert_true(slowlog_keeps(c)); /* at once, whichever shard serves the PING */
    for (int i = 0; i < 5; i++)
        harness_expect(c, HARNESS_STATUS("PONG"), "PING");
    redisReply *r = harness_cmd(c, "SLOWLOG GET -1");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_true(r->elements >= 1 && r->elements <= 3);
    freeReplyObject(r);

    /* one bad setting: none changes */
    redisReply *bad = harness_cmd(c, "CONFIG SET timeout 7 maxclients many");
    assert_int_equal(bad->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(bad->str, "'maxclients'"));
    freeReplyObject(bad);
    assert_true(config_get_is(c, "timeout", "0"));
    bad = harness_cmd(c, "CONFIG SET timeout 1 timeout 2");
    assert_int_equal(bad->type, REDIS_REPLY_ERROR);
    freeReplyObject(bad);
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'config|set' command"),
                   "CONFIG SET timeout");
    harness_expect(c, HARNESS_ERR("ERR Unknown option or number of arguments for CONFIG SET - "
                                  "'no-such-setting'"),
                   "CONFIG SET no-such-setting 1");

    /* maxclients, at the next accept */
    assert_true(harness_wait_until(probe_gone, c, HARNESS_TIMEOUT_MS, 10));
    harness_expect(c, HARNESS_OK, "CONFIG SET maxclients 2");
    assert_true(config_get_is(c, "maxclients", "2"));
    struct harness_raw *second = harness_raw_open(own_server.port);
    harness_raw_send_str(second, "PING\r\n");
    harness_raw_expect(second, "+PONG\r\n");
    struct harness_raw *third = harness_raw_open(own_server.port);
    harness_raw_expect(third, "-ERR max number of clients reached\r\n");
    harness_raw_expect_closed(third);
    harness_raw_close(third);
    harness_raw_close(second);
    harness_expect(c, HARNESS_OK, "CONFIG SET maxclients 10000");

    /* timeout: an idle client is closed */
    harness_expect(c, HARNESS_OK, "CONFIG SET timeout 1");
    struct harness_raw *idle = harness_raw_open(own_server.port);
    harness_raw_send_str(idle, "PING\r\n");
    harness_raw_expect(idle, "+PONG\r\n");
    harness_raw_expect_closed(idle); /* within HARNESS_TIMEOUT_MS */
    harness_raw_close(idle);
    redisFree(c);
    c = harness_connect(own_server.port); /* the first one idled too */
    harness_expect(c, HARNESS_OK, "CONFIG SET timeout 0");
    harness_expect(c, HARNESS_OK, "CONFIG SET loglevel warning");
    assert_true(config_get_is(c, "loglevel", "warning"));

    if (!harness_target_is_redis()) {
        harness_expect(c, HARNESS_ERR("ERR CONFIG SET failed (possibly related to argument "
                                      "'port') - can't set immutable config"),
                       "CONFIG SET port 1");
        harness_expect(c, HARNESS_OK, "CONFIG SET save %s", "");
        bad = harness_cmd(c, "CONFIG SET save %s", "900 1");
        assert_int_equal(bad->type, REDIS_REPLY_ERROR);
        freeReplyObject(bad);
        harness_expect(c, HARNESS_OK, "CONFIG SET appendonly yes"); /* storage = log */
        bad = harness_cmd(c, "CONFIG SET appendonly no");
        assert_int_equal(bad->type, REDIS_REPLY_ERROR);
        freeReplyObject(bad);
        harness_expect(c, HARNESS_OK, "CONFIG SET request-timeout 7000 slow-turn-ms 20");
        assert_true(config_get_is(c, "request-timeout", "7000"));
        assert_true(config_get_is(c, "slow-turn-ms", "20"));
    }
    redisFree(c);
}

/* A MONITOR line: "<unix seconds>.<6 digits> [0 127.0.0.1:<port>] <args>". */
static void expect_monitor_line(redisContext *m, const char *args)
{
    redisReply *r = harness_next_reply(m);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    const char *p = r->str;
    size_t secs = strspn(p, "0123456789");
    bool ok = secs >= 10 && p[secs] == '.' && strspn(p + secs + 1, "0123456789") == 6;
    const char *addr = ok ? p + secs + 8 : "";
    ok = ok && strncmp(addr, "[0 127.0.0.1:", 13) == 0;
    const char *end = ok ? strstr(addr, "] ") : NULL;
    if (!end || strcmp(end + 2, args) != 0)
        fail_msg("MONITOR line \"%s\", want one showing %s", r->str, args);
    freeReplyObject(r);
}

/* MONITOR on a node of two shards, the monitoring client and the other on
 * different shards (CLIENT ID's remainder names the shard): every request
 * of the other, in its order, as Redis writes it (C escapes, AUTH's
 * arguments redacted, admin commands such as CONFIG not shown); the
 * monitoring client's own PING is answered, then shown, and its keyspace
 * command refused as Redis refuses it (not run); once it has gone, the
 * others are served as before. Holds against redis-server too. */
static void test_server_monitor(void **state)
{
    (void)state;
    redisContext *m = harness_connect(own_server.port);
    long long mid = harness_integer(m, "CLIENT ID");
    redisContext *c = NULL;
    for (int i = 0; i < 64 && !c; i++) {
        c = harness_connect(own_server.port);
        long long cid = harness_integer(c, "CLIENT ID");
        if (!harness_target_is_redis() && (cid - 1) % 2 == (mid - 1) % 2) {
            redisFree(c); /* the same shard: another */
            c = NULL;
        }
    }
    assert_non_null(c);
    harness_expect(m, HARNESS_OK, "MONITOR");
    const char value[] = "a\"b\n\x01";
    harness_expect(c, HARNESS_OK, "SET %s %b", "mon:k", value, sizeof value - 1);
    harness_expect(c, HARNESS_BULK_LEN(value, sizeof value - 1), "GET mon:k");
    freeReplyObject(harness_cmd(c, "AUTH someone secret-word"));
    freeReplyObject(harness_cmd(c, "CONFIG GET maxclients"));
    harness_expect(c, HARNESS_INT(0), "EXISTS mon:never mon:none");
    expect_monitor_line(m, "\"SET\" \"mon:k\" \"a\\\"b\\n\\x01\"");
    expect_monitor_line(m, "\"GET\" \"mon:k\"");
    expect_monitor_line(m, "\"AUTH\" \"(redacted)\" \"(redacted)\"");
    expect_monitor_line(m, "\"EXISTS\" \"mon:never\" \"mon:none\"");

    assert_int_equal(redisAppendCommand(m, "SET mon:from-monitor x"), REDIS_OK);
    assert_int_equal(redisAppendCommand(m, "PING"), REDIS_OK);
    redisReply *r = harness_next_reply(m);
    harness_check(r, HARNESS_ERR("ERR Replica can't interact with the keyspace"),
                  "a monitoring client's SET");
    freeReplyObject(r);
    r = harness_next_reply(m);
    harness_check(r, HARNESS_STATUS("PONG"), "a monitoring client's PING");
    freeReplyObject(r);
    expect_monitor_line(m, "\"PING\"");
    harness_expect(c, HARNESS_NIL, "GET mon:from-monitor");
    expect_monitor_line(m, "\"GET\" \"mon:from-monitor\"");
    redisFree(m);
    for (int i = 0; i < 100; i++)
        harness_expect(c, HARNESS_OK, "SET mon:after %d", i);
    redisFree(c);
}

static void test_server_maxclients(void **state)
{
    redisContext *first = harness_connect(own_server.port);
    assert_true(harness_wait_until(probe_gone, first, HARNESS_TIMEOUT_MS, 10));
    struct harness_raw *conns[2];
    for (int i = 0; i < 2; i++) {
        conns[i] = harness_raw_open(own_server.port);
        harness_raw_send_str(conns[i], "PING\r\n");
        harness_raw_expect(conns[i], "+PONG\r\n");
    }
    struct harness_raw *extra = harness_raw_open(own_server.port);
    harness_raw_expect(extra, "-ERR max number of clients reached\r\n");
    harness_raw_expect_closed(extra);
    harness_raw_close(extra);
    harness_raw_send_str(conns[0], "PING\r\n");
    harness_raw_expect(conns[0], "+PONG\r\n");
    redisFree(first);
    assert_true(harness_wait_until(new_client_served, NULL, HARNESS_TIMEOUT_MS, 10));
    harness_raw_close(conns[0]);
    harness_raw_close(conns[1]);
}

/* LATENCY as Redis answers it with its latency monitor off (its default:
 * ringkv keeps no event series), and MEMORY STATS and DOCTOR: the figures
 * under Redis's names, in proportion to the data. Holds against
 * redis-server. */
static long long stats_field(const redisReply *r, const char *name)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0) {
            assert_int_equal(r->element[i + 1]->type, REDIS_REPLY_INTEGER);
            return r->element[i + 1]->integer;
        }
    fail_msg("MEMORY STATS has no %s", name);
    return -1;
}

static void test_server_latency_and_memory_stats(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_ARRAY(0), "LATENCY LATEST");
    harness_expect(c, HARNESS_ARRAY(0), "LATENCY HISTORY command");
    harness_expect(c, HARNESS_INT(0), "LATENCY RESET");
    harness_expect(c, HARNESS_INT(0), "LATENCY RESET command fork");
    harness_expect(c, HARNESS_ERR("ERR No samples available for event 'command'"),
                   "LATENCY GRAPH command");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'latency|latest' command"),
                   "LATENCY LATEST x");
    harness_expect(c, HARNESS_ERR("ERR unknown subcommand 'nope'. Try LATENCY HELP."),
                   "LATENCY nope");
    redisReply *r = harness_cmd(c, "LATENCY DOCTOR");
    assert_true(r->type == REDIS_REPLY_STRING && r->len > 0);
    freeReplyObject(r);
    r = harness_cmd(c, "LATENCY HELP");
    assert_true(r->type == REDIS_REPLY_ARRAY && r->elements > 5);
    freeReplyObject(r);
    r = harness_cmd(c, "LATENCY HISTOGRAM set");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY); /* a map: RESP2's flat array */
    assert_int_equal(r->elements % 2, 0);
    if (!harness_target_is_redis()) /* Redis 7 tracks every command's by default */
        assert_int_equal(r->elements, 0);
    freeReplyObject(r);

    enum { KEYS = 200 };
    for (int i = 0; i < KEYS; i++)
        harness_expect(c, HARNESS_OK, "SET memstats:%d %0256d", i, i);
    r = harness_cmd(c, "MEMORY STATS");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements % 2, 0);
    long long used = stats_field(r, "total.allocated"), keys = stats_field(r, "keys.count");
    assert_true(keys >= KEYS);
    assert_true(used >= KEYS * 256);
    assert_true(stats_field(r, "peak.allocated") >= used);
    assert_true(stats_field(r, "dataset.bytes") >= KEYS * 256);
    assert_true(stats_field(r, "dataset.bytes") <= used);
    assert_true(stats_field(r, "keys.bytes-per-key") >= 256);
    freeReplyObject(r);
    /* INFO's used_memory_dataset is MEMORY STATS' dataset.bytes: below used_memory */
    long long dataset = info_int(c, "memory", "used_memory_dataset");
    assert_true(dataset >= KEYS * 256 && dataset < info_int(c, "memory", "used_memory"));
    r = harness_cmd(c, "MEMORY DOCTOR");
    assert_true(r->type == REDIS_REPLY_STRING && r->len > 0);
    freeReplyObject(r);
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'memory|stats' command"),
                   "MEMORY STATS x");
    for (int i = 0; i < KEYS; i++)
        harness_expect(c, HARNESS_INT(1), "DEL memstats:%d", i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_server_ping_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_select, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_quit_closes_after_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_inline_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_hello_resp3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_auth_required, setup_auth, teardown_own),
        cmocka_unit_test_setup_teardown(test_server_auth_with_hello, setup_auth, teardown_own),
        cmocka_unit_test_setup_teardown(test_server_reset, setup_auth, teardown_own),
        cmocka_unit_test_setup_teardown(test_server_maxclients, setup_maxclients, teardown_own),
        cmocka_unit_test_setup_teardown(test_server_role_and_lastsave, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_slow_turns_counted, setup_slow_turns,
                                        teardown_own),
        cmocka_unit_test_setup_teardown(test_server_slowlog, setup_slowlog_all, teardown_own),
        cmocka_unit_test_setup_teardown(test_server_config_set, setup_own_default, teardown_own),
        cmocka_unit_test_setup_teardown(test_server_monitor, setup_own_default, teardown_own),
        cmocka_unit_test_setup_teardown(test_server_auth_without_password_configured, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_server_client_id_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_command_count_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_command_docs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_info_sections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_info_keyspace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_info_hits_misses_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_info_connected_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_subcommand_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_command_info_unknown_is_null_element, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_server_command_and_client_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_command_getkeys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_client_list_type_and_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_client_laddr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_client_info_list_resp3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_info_memory_peak, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_latency_and_memory_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_info_ops_per_sec, setup, teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
