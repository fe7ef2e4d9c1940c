/* cmd.c: the command table and the routing of requests to shards.
 * cmd_defs[] is every Redis command as data: name, arity (Redis's: negative
 * means "at least"), flags, key positions (for COMMAND), how it routes, and
 * its handler. cmd_init() indexes it by name once; lookups lower-case the name
 * into a small buffer and probe that index, so dispatch is one hash probe,
 * never a strcmp chain.
 *
 * Flags are columns: besides Redis's (write, readonly...), CMD_READS_VALUE
 * (a cold value must be read back first; SET's row decides per request),
 * CMD_BARRIER (shard-wide: waits for reads in flight) and CMD_NOKEY; the
 * memcached commands have a small table of the same columns.
 *
 * Routes:
 *   CONN     runs here, with the connection (PING, HELLO, INFO, CLIENT...);
 *   KEY      one key at argv[1]: runs inline when this shard owns it and
 *            nothing makes it wait (no allocation), else it becomes a
 *            request (req.h) whose one sub-result is run on the owner
 *            (crossing one queue there and back as a struct cmd_msg);
 *   EACH     several keys (MGET, MSET, DEL, EXISTS): one sub-request per key
 *            (step 1 or 2 arguments), run on each key's owner, joined by a
 *            combiner in request order;
 *   ALL      one sub-request per shard (DBSIZE, FLUSHALL, KEYS, RANDOMKEY);
 *   SCAN     the shard named by the cursor's top byte;
 *   MSETNX   atomic on one shard when all keys live there; otherwise two
 *            phases (EXISTS everywhere, then SET everywhere).
 * EACH's and MSETNX's phases of more than CMD_ROWS_PER_TURN rows are
 * copied aside (struct cmd_rest, with struct cmd_rows saying how a row
 * becomes a sub-request) and routed that many rows per loop turn
 * (cmd_route_rest), so one huge command does not hold the shard.
 * In a cluster of more than this node (coord.h) every keyed sub-request of
 * these routes (memcached's too) goes to its key's coordinator instead: a
 * message with CMD_COORD to the shard owning the key here, a FORWARD to a
 * replica, or -MOVED / -UNAVAILABLE; MSETNX always takes two phases, and
 * FLUSHALL also goes to every other member. DBSIZE, KEYS, RANDOMKEY and
 * SCAN give a cluster-aware connection this node's node-local answer and
 * any other the cluster's (keyspace.h): the first three from every member,
 * SCAN from one member at a time. A cluster of one never asks.
 * A request answered later owns its connection's next reply slot; its
 * sub-results are structured (req.h: status, number, payload offset, as
 * the handlers report them through cmd_reply_*), and the combiners below
 * merge those fields without parsing protocol text. It ends at its
 * deadline with a -TIMEOUT reply (memcached: SERVER_ERROR), and is
 * cancelled when its client goes; late results are dropped by id.
 * With appendfsync always a reply that depends on records not durable yet
 * (its own, or the newest of the key it read: cmd_run asks persist_reply_seq)
 * waits for them: a local one in its request (req_hold), one for another
 * shard as a request of this shard holding the message. Errors and
 * connection commands (PING, INFO, CONFIG...) are never held.
 * memcached requests route the same way (cmd_dispatch_mc).
 * Transactions (cmd_multi.h): in MULTI a request that passes the checks
 * (cmd_checked) is queued on its connection instead of routed, and one that
 * fails them aborts the transaction; EXEC and WATCH go to the slot's shard
 * through cmd_send().
 *
 * Threads: cmd_init() on the main thread before shards start; the table is
 * immutable afterwards. Everything else runs on shard threads. */
#include "cmd.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <mimalloc.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd_bitfield.h"
#include "cmd_bits.h"
#include "cmd_cluster.h"
#include "cmd_keys.h"
#include "cmd_lcs.h"
#include "cmd_mc.h"
#include "cmd_multi.h"
#include "cmd_order.h"
#include "cmd_persist.h"
#include "cmd_ring.h"
#include "cmd_server.h"
#include "cmd_stats.h"
#include "cmd_string.h"
#include "conn.h"
#include "coord.h"
#include "idset.h"
#include "keyspace.h"
#include "keyhash.h"
#include "monitor.h"
#include "node.h"
#include "persist.h"
#include "shard.h"
#include "store.h"
#include "tier.h"

#define CMD_INDEX_SIZE 256 /* power of two, > 2x the commands */
#define CMD_NAME_MAX 32
#define CMD_FLUSH_PEERS_MAX 1024 /* FLUSHALL reaches this many other members at most */
#define CMD_ROWS_PER_TURN 1024   /* a split command's rows routed in one loop turn */

static const struct cmd_def cmd_defs[] = {
    /* name, arity, flags, first, last, step, route, step-args, handler, combine, group, summary */
    {"get", 2, CMD_READONLY | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_get, 0,
     "string", "Returns the string value of a key."},
    {"set", -3, CMD_WRITE | CMD_DENYOOM | CMD_GET_OPTION, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_set, 0,
     "string", "Sets the string value of a key, ignoring its type."},
    {"setex", 4, CMD_WRITE | CMD_DENYOOM, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_setex, 0, "string",
     "Sets the value and expiration time of a key."},
    {"psetex", 4, CMD_WRITE | CMD_DENYOOM, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_psetex, 0, "string",
     "Sets both string value and expiration time in milliseconds of a key."},
    {"setnx", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_setnx, 0,
     "string", "Set the string value of a key only when the key doesn't exist."},
    {"getset", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0,
     cmd_getset, 0, "string",
     "Returns the previous string value of a key after setting it to a new value."},
    {"getdel", 2, CMD_WRITE | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_getdel, 0,
     "string", "Returns the string value of a key after deleting the key."},
    {"getex", -2, CMD_WRITE | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_getex, 0,
     "string", "Returns the string value of a key after setting its expiration time."},
    {"mget", -2, CMD_READONLY | CMD_FAST | CMD_READS_VALUE, 1, -1, 1, CMD_ROUTE_EACH, 1, cmd_get,
     CMD_COMBINE_ARRAY, "string", "Atomically returns the string values of one or more keys."},
    {"mset", -3, CMD_WRITE | CMD_DENYOOM, 1, -1, 2, CMD_ROUTE_EACH, 2, cmd_set, CMD_COMBINE_OK,
     "string", "Atomically creates or modifies the string values of one or more keys."},
    {"msetnx", -3, CMD_WRITE | CMD_DENYOOM | CMD_BARRIER, 1, -1, 2, CMD_ROUTE_MSETNX, 2, cmd_exists,
     CMD_COMBINE_MSETNX, "string",
     "Atomically modifies the string values of one or more keys only when all keys don't "
     "exist."},
    {"append", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0,
     cmd_append, 0, "string",
     "Appends a string to the value of a key. Creates the key if it doesn't exist."},
    {"strlen", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_strlen, 0, "string",
     "Returns the length of a string value."},
    {"getrange", 4, CMD_READONLY | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_getrange, 0,
     "string", "Returns a substring of the string stored at a key."},
    {"setrange", 4, CMD_WRITE | CMD_DENYOOM | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0,
     cmd_setrange, 0, "string", "Overwrites a part of a string value with another by an offset."},
    {"substr", 4, CMD_READONLY | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_getrange, 0,
     "string", "Returns a substring from a string value."},
    {"lcs", -3, CMD_READONLY | CMD_READS_VALUE, 1, 2, 1, CMD_ROUTE_KEY, 0, cmd_lcs, 0, "string",
     "Finds the longest common substring."},
    {"setbit", 4, CMD_WRITE | CMD_DENYOOM | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_setbit,
     0, "bitmap", "Sets or clears the bit at offset of the string value. Creates the key if it "
     "doesn't exist."},
    {"getbit", 3, CMD_READONLY | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_getbit,
     0, "bitmap", "Returns a bit value by offset."},
    {"bitcount", -2, CMD_READONLY | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_bitcount, 0,
     "bitmap", "Counts the number of set bits (population counting) in a string."},
    {"bitpos", -3, CMD_READONLY | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_bitpos, 0,
     "bitmap", "Finds the first set (1) or clear (0) bit in a string."},
    {"bitop", -4, CMD_WRITE | CMD_DENYOOM | CMD_READS_VALUE, 2, -1, 1, CMD_ROUTE_KEY, 0,
     cmd_bitop_client, 0, "bitmap",
     "Performs bitwise operations on multiple strings, and stores the result."},
    {"ring.bitop", -4, CMD_WRITE | CMD_DENYOOM | CMD_READS_VALUE, 1, -2, 1, CMD_ROUTE_KEY, 0,
     cmd_bitop, 0, "bitmap",
     "BITOP with the operation last (destkey key [key ...] op): the form BITOP runs as."},
    {"bitfield", -2, CMD_WRITE | CMD_DENYOOM | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0,
     cmd_bitfield, 0, "bitmap", "Performs arbitrary bitfield integer operations on strings."},
    {"bitfield_ro", -2, CMD_READONLY | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0,
     cmd_bitfield_ro, 0, "bitmap",
     "Performs arbitrary read-only bitfield integer operations on strings."},
    {"incr", 2, CMD_WRITE | CMD_DENYOOM | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0,
     cmd_incr, 0, "string", "Increments the integer value of a key by one."},
    {"decr", 2, CMD_WRITE | CMD_DENYOOM | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0,
     cmd_decr, 0, "string", "Decrements the integer value of a key by one."},
    {"incrby", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0,
     cmd_incrby, 0, "string", "Increments the integer value of a key by a number."},
    {"decrby", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0,
     cmd_decrby, 0, "string", "Decrements a number from the integer value of a key."},
    {"incrbyfloat", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY,
     0, cmd_incrbyfloat, 0, "string", "Increment the floating point value of a key by a number."},
    {"del", -2, CMD_WRITE, 1, -1, 1, CMD_ROUTE_EACH, 1, cmd_del, CMD_COMBINE_SUM, "generic",
     "Deletes one or more keys."},
    {"ring.get", -2, CMD_READONLY | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_ring_get, 0,
     "generic", "Returns a key's causal context and every sibling value (ringkv)."},
    {"ring.put", -4, CMD_WRITE | CMD_DENYOOM | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0,
     cmd_ring_put, 0, "generic",
     "Writes a value over the siblings a context covers; an empty context adds one (ringkv)."},
    {"ring.del", -3, CMD_WRITE | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_ring_del, 0,
     "generic", "Writes a tombstone over the siblings a context covers (ringkv)."},
    {"unlink", -2, CMD_WRITE | CMD_FAST, 1, -1, 1, CMD_ROUTE_EACH, 1, cmd_del, CMD_COMBINE_SUM,
     "generic", "Asynchronously deletes one or more keys."},
    {"exists", -2, CMD_READONLY | CMD_FAST, 1, -1, 1, CMD_ROUTE_EACH, 1, cmd_exists,
     CMD_COMBINE_SUM, "generic", "Determines whether one or more keys exist."},
    {"type", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_type, 0, "generic",
     "Determines the type of value stored at a key."},
    {"expire", -3, CMD_WRITE | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_expire, 0,
     "generic", "Sets the expiration time of a key in seconds."},
    {"pexpire", -3, CMD_WRITE | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_pexpire,
     0, "generic", "Sets the expiration time of a key in milliseconds."},
    {"expireat", -3, CMD_WRITE | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0,
     cmd_expireat, 0, "generic", "Sets the expiration time of a key to a Unix timestamp."},
    {"pexpireat", -3, CMD_WRITE | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0,
     cmd_pexpireat, 0, "generic",
     "Sets the expiration time of a key to a Unix milliseconds timestamp."},
    {"ttl", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_ttl, 0, "generic",
     "Returns the expiration time in seconds of a key."},
    {"pttl", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_pttl, 0, "generic",
     "Returns the expiration time in milliseconds of a key."},
    {"persist", 2, CMD_WRITE | CMD_FAST | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_persist,
     0, "generic", "Removes the expiration time of a key."},
    {"rename", 3, CMD_WRITE | CMD_READS_VALUE, 1, 2, 1, CMD_ROUTE_KEY, 0, cmd_rename, 0, "generic",
     "Renames a key and overwrites the destination."},
    {"renamenx", 3, CMD_WRITE | CMD_FAST | CMD_READS_VALUE, 1, 2, 1, CMD_ROUTE_KEY, 0,
     cmd_renamenx, 0, "generic", "Renames a key only when the target key name doesn't exist."},
    {"copy", -3, CMD_WRITE | CMD_DENYOOM | CMD_READS_VALUE, 1, 2, 1, CMD_ROUTE_KEY, 0, cmd_copy, 0,
     "generic", "Copies the value of a key to a new key."},
    {"expiretime", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_expiretime, 0,
     "generic", "Returns the expiration time of a key as a Unix timestamp."},
    {"pexpiretime", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_pexpiretime, 0,
     "generic", "Returns the expiration time of a key as a Unix milliseconds timestamp."},
    {"touch", -2, CMD_READONLY | CMD_FAST, 1, -1, 1, CMD_ROUTE_EACH, 1, cmd_exists,
     CMD_COMBINE_SUM, "generic",
     "Returns the number of existing keys out of those specified after updating the time they "
     "were last accessed."},
    {"scan", -2, CMD_READONLY | CMD_BARRIER | CMD_NOKEY, 0, 0, 0, CMD_ROUTE_SCAN, 0, cmd_scan_shard,
     CMD_COMBINE_SCAN, "generic", "Iterates over the key names in the database."},
    {"keys", 2, CMD_READONLY | CMD_BARRIER | CMD_NOKEY, 0, 0, 0, CMD_ROUTE_ALL, 0, cmd_keys_shard,
     CMD_COMBINE_CONCAT, "generic", "Returns all key names that match a pattern."},
    {"randomkey", 1, CMD_READONLY | CMD_BARRIER | CMD_NOKEY, 0, 0, 0, CMD_ROUTE_ALL, 0,
     cmd_randomkey_shard, CMD_COMBINE_RANDOM, "generic",
     "Returns a random key name from the database."},
    {"dbsize", 1, CMD_READONLY | CMD_FAST | CMD_BARRIER | CMD_NOKEY, 0, 0, 0, CMD_ROUTE_ALL, 0,
     cmd_dbsize_shard, CMD_COMBINE_SUM, "server", "Returns the number of keys in the database."},
    {"ring.local", -2, CMD_READONLY | CMD_NOKEY, 0, 0, 0, CMD_ROUTE_CONN, 0, keyspace_refuse, 0,
     "server", "A keyspace command's node-local form, asked by a peer (ringkv)."},
    {"flushall", -1, CMD_WRITE | CMD_BARRIER | CMD_NOKEY, 0, 0, 0, CMD_ROUTE_ALL, 0,
     cmd_flushall_shard, CMD_COMBINE_OK, "server", "Removes all keys from all databases."},
    {"flushdb", -1, CMD_WRITE | CMD_BARRIER | CMD_NOKEY, 0, 0, 0, CMD_ROUTE_ALL, 0,
     cmd_flushall_shard, CMD_COMBINE_OK, "server", "Remove all keys from the current database."},
    {"multi", 1, CMD_FAST | CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_multi, 0,
     "transactions", "Starts a transaction."},
    {"exec", 1, CMD_NOKEY, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_exec, 0, "transactions",
     "Executes all commands in a transaction."},
    {"discard", 1, CMD_FAST | CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_discard, 0,
     "transactions", "Discards a transaction."},
    {"watch", -2, CMD_FAST | CMD_NODATA, 1, -1, 1, CMD_ROUTE_CONN, 0, cmd_watch, 0, "transactions",
     "Monitors changes to keys to determine the execution of a transaction."},
    {"unwatch", 1, CMD_FAST | CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_unwatch, 0,
     "transactions", "Forgets about watched keys of a transaction."},
    {"ping", -1, CMD_FAST | CMD_NOKEY, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_ping, 0, "connection",
     "Returns the server's liveliness response."},
    {"echo", 2, CMD_FAST | CMD_NOKEY, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_echo, 0, "connection",
     "Returns the given string."},
    {"time", 1, CMD_FAST | CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_time, 0,
     "server", "Returns the server time."},
    {"object", -2, CMD_READONLY, 2, 2, 1, CMD_ROUTE_CONN, 0, cmd_object, 0, "generic",
     "A container for object introspection commands."},
    {"memory", -2, CMD_NOKEY, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_memory, 0, "server",
     "A container for memory diagnostics commands."},
    {"slowlog", -2, CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_slowlog, 0, "server",
     "A container for slow log commands."},
    {"latency", -2, CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_latency, 0, "server",
     "A container for latency diagnostics commands."},
    {"monitor", 1, CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_monitor, 0, "server",
     "Listens for all requests received by the server in real-time."},
    {"ring.keyinfo", 3, CMD_READONLY | CMD_READS_VALUE, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_keyinfo, 0,
     "generic", "OBJECT's and MEMORY USAGE's figure of a key, routed by the key (ringkv)."},
    {"lastsave", 1, CMD_FAST | CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_lastsave,
     0, "server", "Returns the Unix timestamp of the last successful save to disk."},
    {"role", 1, CMD_FAST | CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_role, 0,
     "server", "Returns the replication role."},
    {"save", 1, CMD_NOKEY, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_save, 0, "server",
     "Synchronously saves the database(s) to disk."},
    {"bgsave", -1, CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_bgsave, 0, "server",
     "Asynchronously saves the database(s) to disk."},
    {"bgrewriteaof", 1, CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_bgrewriteaof, 0,
     "server", "Asynchronously rewrites the append-only file to disk."},
    {"reset", 1, CMD_NOAUTH | CMD_FAST | CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0,
     cmd_reset, 0, "connection", "Resets the connection."},
    {"quit", -1, CMD_NOAUTH | CMD_FAST | CMD_NOKEY, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_quit, 0,
     "connection", "Closes the connection."},
    {"shutdown", -1, CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_shutdown, 0, "server",
     "Synchronously saves the database(s) to disk and shuts down the Redis server."},
    {"wait", 3, CMD_NOKEY, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_wait, 0, "generic",
     "Blocks until the asynchronous replication of all preceding write commands sent by the "
     "connection is completed."},
    {"select", 2, CMD_FAST | CMD_NOKEY, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_select, 0, "connection",
     "Changes the selected database."},
    {"hello", -1, CMD_NOAUTH | CMD_FAST | CMD_NOKEY, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_hello, 0,
     "connection", "Handshakes with the Redis server."},
    {"auth", -2, CMD_NOAUTH | CMD_FAST | CMD_NOKEY, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_auth, 0,
     "connection", "Authenticates the connection."},
    {"client", -2, CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_client, 0, "connection",
     "A container for client connection commands."},
    {"command", -1, CMD_NOKEY, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_command, 0, "server",
     "Returns detailed information about all commands."},
    {"info", -1, CMD_NOKEY, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_info, 0, "server",
     "Returns information and statistics about the server."},
    {"config", -2, CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_config, 0, "server",
     "A container for server configuration commands."},
    {"cluster", -2, CMD_NOKEY, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_cluster, 0, "cluster",
     "A container for Redis Cluster commands."},
    {"readonly", 1, CMD_FAST | CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_readonly, 0,
     "cluster", "Enables read-only queries for a connection to a Redis Cluster replica node."},
    {"readwrite", 1, CMD_FAST | CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_readwrite,
     0, "cluster", "Enables read-write queries for a connection to a Redis Cluster replica node."},
    {"asking", 1, CMD_FAST | CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_asking, 0,
     "cluster", "Signals that a cluster client is following an -ASK redirect."},
    {"consistency", -1, CMD_FAST | CMD_NOKEY | CMD_NODATA, 0, 0, 0, CMD_ROUTE_CONN, 0,
     cmd_consistency, 0, "connection",
     "Sets or reads the connection's read and write quorums (ringkv)."},
};
#define CMD_COUNT (sizeof cmd_defs / sizeof cmd_defs[0])
_Static_assert(CMD_COUNT <= CMD_STATS_SUB_BASE, "a command's stats slot is its row");
_Static_assert(offsetof(struct cmd_msg, payload) % _Alignof(struct resp_arg) == 0,
               "a message's argv lives at the start of its payload");

static const struct cmd_def *cmd_index[CMD_INDEX_SIZE];

static uint32_t cmd_name_hash(const char *s, size_t n)
{
    return (uint32_t)keyhash(s, n);
}

void cmd_init(void)
{
    for (size_t i = 0; i < CMD_COUNT; i++) {
        uint32_t h = cmd_name_hash(cmd_defs[i].name, strlen(cmd_defs[i].name));
        while (cmd_index[h & (CMD_INDEX_SIZE - 1)])
            h++;
        cmd_index[h & (CMD_INDEX_SIZE - 1)] = &cmd_defs[i];
    }
}

const struct cmd_def *cmd_table(size_t *count)
{
    *count = CMD_COUNT;
    return cmd_defs;
}

const struct cmd_def *cmd_lookup(const char *name, size_t len)
{
    char lower[CMD_NAME_MAX];
    if (len == 0 || len >= CMD_NAME_MAX)
        return NULL;
    for (size_t i = 0; i < len; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    for (uint32_t h = cmd_name_hash(lower, len);; h++) {
        const struct cmd_def *d = cmd_index[h & (CMD_INDEX_SIZE - 1)];
        if (!d)
            return NULL;
        if (strlen(d->name) == len && memcmp(d->name, lower, len) == 0)
            return d;
    }
}

/* The row's columns as they apply to this request: with CMD_GET_OPTION,
 * CMD_READS_VALUE when a GET option follows the value (SET); CMD_RMW for
 * writes that read first (CMD_READS_VALUE, SET NX/XX and SETNX, which read
 * whether the key exists), but RING.PUT and RING.DEL, whose context says
 * what they supersede. */
uint32_t cmd_flags_for(const struct cmd_def *d, const struct resp_arg *argv, uint32_t argc)
{
    uint32_t flags = d->flags;
    bool is_conditional = false;
    for (uint32_t i = 3; (flags & CMD_GET_OPTION) && i < argc; i++) {
        if (argv[i].len == 3 && strncasecmp(argv[i].ptr, "get", 3) == 0)
            flags |= CMD_READS_VALUE;
        is_conditional |= argv[i].len == 2 && (strncasecmp(argv[i].ptr, "nx", 2) == 0 ||
                                               strncasecmp(argv[i].ptr, "xx", 2) == 0);
    }
    is_conditional |= d->handler == cmd_setnx;
    bool is_ring = d->handler == cmd_ring_put || d->handler == cmd_ring_del;
    if ((flags & CMD_WRITE) && !is_ring && ((flags & CMD_READS_VALUE) || is_conditional))
        flags |= CMD_RMW;
    return flags;
}

/* Runs a handler on this shard: its reply goes into out, what it is into
 * res. The one place every handler's reply status is known, and where a
 * slow run is kept for SLOWLOG (its client: the connection being
 * dispatched, when the run is part of that). */
static void cmd_run(struct shard *sh, struct conn *c, cmd_handler *h, int proto,
                    struct resp_arg *argv, uint32_t argc, uint64_t hash,
                    const struct mc_request *mc, struct buf *out, struct req_result *res)
{
    struct cmd_ctx ctx = {.store = sh->store, .node = sh->node, .out = out, .conn = c,
                          .shard_id = sh->id, .proto = proto, .argc = argc, .argv = argv,
                          .hash = hash, .mc = mc, .res = res};
    struct cmd_stats_shard *stats = cmd_stats_of(sh->node, sh->id);
    uint64_t t0 = cmd_stats_start(stats);
    uint64_t before = persist_last_seq(sh->persist);
    res->hold_seq = 0; /* a handler may name a sequence of its own (SAVE) */
    h(&ctx);
    uint64_t seq = persist_reply_seq(sh->persist, before, ctx.hash, res->status == REQ_ERR);
    if (seq > res->hold_seq)
        res->hold_seq = seq;
    uint64_t ticks = cmd_stats_ran(stats, t0);
    if (__builtin_expect(slowlog_is_slow(&sh->slowlog, ticks), 0) && t0)
        slowlog_add(&sh->slowlog, argv, argc, ticks, c ? c : stats->conn);
}

/* Runs another handler for one key inside a handler, on the same shard. */
static void cmd_run_inside(const struct cmd_ctx *c, cmd_handler *h, struct resp_arg *argv,
                           uint32_t argc, struct buf *out, struct req_result *res)
{
    struct cmd_ctx sub = *c;
    sub.argv = argv;
    sub.argc = argc;
    sub.hash = keyhash(argv[1].ptr, argv[1].len);
    sub.out = out;
    sub.res = res;
    h(&sub);
}

/* An error reply in the connection's protocol: RESP "-<err>", memcached
 * "SERVER_ERROR <why>". */
static void cmd_write_error(struct buf *out, bool is_mc, const char *err, const char *why)
{
    if (!is_mc) {
        resp_write_error(out, err);
        return;
    }
    buf_append_str(out, "SERVER_ERROR ");
    buf_append_str(out, why);
    buf_append_str(out, "\r\n");
}

static void cmd_write_oom(struct buf *out, bool is_mc)
{
    cmd_write_error(out, is_mc, "OOM out of memory", "out of memory");
}

/* What a client gets when its request is not answered by request-timeout
 * (a write among it may or may not have been applied; it was not
 * acknowledged). */
static void cmd_write_timeout(struct buf *out, bool is_mc, int64_t timeout_ms)
{
    char msg[128];
    snprintf(msg, sizeof msg, "TIMEOUT no reply within request-timeout (%lld ms)",
             (long long)timeout_ms);
    cmd_write_error(out, is_mc, msg, "request timed out (request-timeout)");
}

/* ---- requests of this shard's connections (req.h) ---- */

static bool cmd_conn_done(struct req_table *t, struct req *r, enum req_end how);

/* Charges work to c's input budget until r ends (cmd_conn_done refunds). */
static void cmd_charge(struct conn *c, struct req *r, uint64_t work)
{
    r->charged += work;
    conn_charge(c, work);
}

/* A request of connection c with nsub sub-results, combined by `combine`
 * into the connection's next reply slot. NULL on out of memory (an error
 * reply has been written). */
static struct req *cmd_req_new(struct shard *sh, struct conn *c, uint32_t nsub,
                               enum cmd_combine combine)
{
    struct req *r = req_new(&sh->reqs, nsub, nsub, cmd_conn_done, shard_deadline(sh));
    struct conn_slot *slot = r ? conn_slot_reserve(c, r->id) : NULL;
    if (!slot) {
        if (r)
            req_cancel(&sh->reqs, r->id);
        cmd_write_oom(conn_reply_buf(c), c->kind == CONN_MC);
        return NULL;
    }
    r->kind = combine;
    r->owner = shard_conn_handle(c);
    r->owner_ptr = slot;
    cmd_charge(c, r, nsub); /* a huge MGET pauses its client's input */
    return r;
}

bool cmd_req_is_conn_last(const struct req *r)
{
    if (r->done != cmd_conn_done || r->nsub != 1)
        return false;
    const struct conn_slot *slot = r->owner_ptr;
    return slot && !slot->next;
}

/* Copies a request into a message for another shard. NULL on out of memory. */
static struct cmd_msg *cmd_msg_make(struct shard *sh, uint64_t req_id, uint32_t sub,
                                    uint32_t target, cmd_handler *h, uint32_t flags, int proto,
                                    struct resp_arg *argv, uint32_t argc, uint64_t hash,
                                    const struct mc_request *mc)
{
    size_t bytes = argc * sizeof(struct resp_arg);
    for (uint32_t i = 0; i < argc; i++)
        bytes += argv[i].len;
    uint32_t mc_key_len = mc && mc->nkeys ? mc->keys[0].len : 0;
    if (mc)
        bytes += mc_key_len + mc->data_len;
    struct cmd_msg *m = mi_malloc(sizeof *m + bytes);
    if (!m)
        return NULL;
    m->next = NULL;
    m->handler = h;
    m->req = req_id;
    m->sub = sub;
    m->origin = sh->id;
    m->target = target;
    m->flags = flags;
    m->proto = proto;
    m->r = 0;
    m->w = 0;
    m->slot1 = 0;
    m->deadline_ms = 0;
    m->hash = hash;
    m->argc = argc;
    m->argv = (struct resp_arg *)m->payload;
    char *data = m->payload + argc * sizeof(struct resp_arg);
    for (uint32_t i = 0; i < argc; i++) {
        memcpy(data, argv[i].ptr, argv[i].len);
        m->argv[i].ptr = data;
        m->argv[i].len = argv[i].len;
        data += argv[i].len;
    }
    m->is_mc = mc != NULL;
    m->stat_slot = cmd_stats_msg_slot(cmd_stats_of(sh->node, sh->id));
    if (mc) {
        m->mc = *mc;
        if (mc_key_len)
            memcpy(data, mc->keys[0].ptr, mc_key_len);
        m->mc_key.ptr = data;
        m->mc_key.len = mc_key_len;
        data += mc_key_len;
        m->mc.keys = &m->mc_key;
        m->mc.nkeys = mc->nkeys ? 1 : 0;
        if (mc->data_len)
            memcpy(data, mc->data, mc->data_len);
        m->mc.data = data;
        m->mc.stats_arg = NULL;
    }
    memset(&m->res, 0, sizeof m->res);
    return m;
}

struct cmd_msg *cmd_msg_for(struct shard *sh, uint64_t req_id, uint32_t sub, uint32_t target,
                            cmd_handler *h, uint32_t flags, int proto, struct resp_arg *argv,
                            uint32_t argc, uint64_t hash)
{
    return cmd_msg_make(sh, req_id, sub, target, h, flags, proto, argv, argc, hash, NULL);
}

struct cmd_msg *cmd_msg_for_mc(struct shard *sh, uint64_t req_id, uint32_t sub, uint32_t target,
                               const struct mc_request *mc, uint32_t flags, uint64_t hash)
{
    return cmd_msg_make(sh, req_id, sub, target, cmd_mc_def(mc->cmd)->handler,
                        cmd_mc_flags(mc) | flags, 2, NULL, 0, hash, mc);
}

void cmd_msg_free(struct cmd_msg *m)
{
    buf_fini(&m->res.body);
    mi_free(m);
}

/* Values beyond RAM: whether a request on this shard may run now, or must
 * wait for a value read back from disk (tier.h). Pins its key meanwhile. */
static bool cmd_may_run_here(struct shard *sh, uint32_t flags, struct resp_arg *argv,
                             uint32_t argc, uint64_t hash, const struct mc_request *mc)
{
    if (!sh->tier)
        return true;
    const char *key = "";
    uint32_t klen = 0;
    if (mc && mc->nkeys) {
        key = mc->keys[0].ptr;
        klen = mc->keys[0].len;
    } else if (!mc && argc > 1) {
        key = argv[1].ptr;
        klen = argv[1].len;
    }
    return tier_may_run(sh, flags, hash, key, klen);
}

static void cmd_unpin(struct shard *sh)
{
    if (sh->tier)
        store_pin(sh->store, NULL);
}

/* In a cluster: sub-result `sub` of r goes to its key's coordinator
 * (coord.h): this node's shard owning the key, a peer (forwarded), or an
 * error (-MOVED for a cluster-aware client, -UNAVAILABLE). */
static void cmd_route_coord(struct shard *sh, struct conn *c, struct req *r, uint32_t sub,
                            uint32_t target, cmd_handler *h, uint32_t flags,
                            struct resp_arg *argv, uint32_t argc, uint64_t hash,
                            const struct mc_request *mc, uint32_t slot1)
{
    struct coord_route rt;
    struct resp_arg key = mc ? (struct resp_arg){mc->keys[0].ptr, mc->keys[0].len} : argv[1];
    uint32_t slot = slot1 ? slot1 - 1 : keyhash_slot(key.ptr, key.len);
    coord_route_slot(sh, c, key.ptr, key.len, hash, slot, flags, &rt);
    if (rt.kind == COORD_MOVED && h == cmd_multi_exec_shard)
        rt.kind = COORD_FORWARD; /* the queue was this connection's: a MOVED would lose it */
    if (rt.kind == COORD_HERE || rt.kind == COORD_FORWARD)
        cmd_order_note_route(c, r->id, rt.slot, flags, rt.kind); /* before r can end */
    struct req_result *res = &r->subs[sub];
    struct cmd_msg *m;
    bool is_elsewhere = rt.kind == COORD_FORWARD || rt.kind == COORD_MOVED;
    if (mc && is_elsewhere) { /* memcached text in a FORWARD (r->aux: a single key's noreply) */
        coord_forward_mc(sh, r->id, sub, c->consistency_r, c->consistency_w, mc,
                         r->kind == CMD_COMBINE_ONE && r->aux, &rt);
        return;
    }
    switch (rt.kind) {
    case COORD_LOCAL:
    case COORD_HERE:
        m = cmd_msg_make(sh, r->id, sub, target, h, flags | CMD_COORD, c->resp_version, argv,
                         argc, hash, mc);
        if (!m)
            break;
        m->r = c->consistency_r;
        m->w = c->consistency_w;
        m->slot1 = rt.slot + 1;
        m->deadline_ms = r->deadline_ms;
        if (target == sh->id) {
            cmd_msg_execute(sh, m);
        } else {
            SHARD_STAT_ADD(sh, cross_shard_requests, 1);
            shard_send(sh, target, m);
        }
        return;
    case COORD_FORWARD:
        coord_forward(sh, r->id, sub, c->resp_version, c->consistency_r, c->consistency_w, argv,
                      argc, &rt);
        return;
    case COORD_MOVED:
    case COORD_DOWN:
        res->status = REQ_ERR;
        cmd_write_error(&res->body, mc != NULL, rt.error, rt.error);
        req_sub_done(&sh->reqs, r);
        return;
    }
    res->status = REQ_ERR;
    cmd_write_oom(&res->body, mc != NULL);
    req_sub_done(&sh->reqs, r);
}

/* Runs sub-result `sub` of r on the shard owning `hash` (or on shard
 * `target` for shard-wide handlers): inline when that is this shard,
 * unless it must wait for a value on disk; else one message there. In a
 * cluster a keyed one goes to its coordinator instead. slot1: the key's
 * slot + 1 when the caller computed it, else 0. */
static void cmd_route_sub_slot(struct shard *sh, struct conn *c, struct req *r, uint32_t sub,
                               uint32_t target, cmd_handler *h, uint32_t flags,
                               struct resp_arg *argv, uint32_t argc, uint64_t hash,
                               const struct mc_request *mc, uint32_t slot1)
{
    if ((mc ? mc->nkeys > 0 : argc > 1) && !(flags & CMD_NOKEY) && coord_is_cluster(sh)) {
        cmd_route_coord(sh, c, r, sub, target, h, flags, argv, argc, hash, mc, slot1);
        return;
    }
    bool here = target == sh->id;
    struct req_result *res = &r->subs[sub];
    if (here && cmd_may_run_here(sh, flags, argv, argc, hash, mc)) {
        cmd_run(sh, NULL, h, c->resp_version, argv, argc, hash, mc, &res->body, res);
        cmd_unpin(sh);
        req_hold(r, flags & CMD_NODATA ? 0 : res->hold_seq);
        req_sub_done(&sh->reqs, r);
        return;
    }
    struct cmd_msg *m =
        cmd_msg_make(sh, r->id, sub, target, h, flags, c->resp_version, argv, argc, hash, mc);
    if (!m) {
        res->status = REQ_ERR;
        cmd_write_oom(&res->body, mc != NULL);
        req_sub_done(&sh->reqs, r);
        return;
    }
    m->deadline_ms = r->deadline_ms; /* for cmd_msg_adopt, should the target coordinate it */
    if (here) { /* comes back through cmd_msg_reply() once its value is read */
        tier_wait(sh, m);
        return;
    }
    SHARD_STAT_ADD(sh, cross_shard_requests, 1);
    shard_send(sh, target, m);
}

static void cmd_route_sub(struct shard *sh, struct conn *c, struct req *r, uint32_t sub,
                          uint32_t target, cmd_handler *h, uint32_t flags, struct resp_arg *argv,
                          uint32_t argc, uint64_t hash, const struct mc_request *mc)
{
    cmd_route_sub_slot(sh, c, r, sub, target, h, flags, argv, argc, hash, mc, 0);
}

/* A single-key request: inline on the owner when nothing makes it wait
 * (the fast path: no allocation), else a request of one sub-result. */
static void cmd_route_key(struct shard *sh, struct conn *c, cmd_handler *h, uint32_t flags,
                          struct resp_arg *argv, uint32_t argc, uint64_t hash,
                          const struct mc_request *mc)
{
    const char *key = mc ? mc->keys[0].ptr : argv[1].ptr;
    uint32_t slot = keyhash_slot(key, mc ? mc->keys[0].len : argv[1].len); /* once: see slot1 */
    uint32_t owner = sh->node->partition_shard[node_partition_of_slot(sh->node, slot, hash)];
    if (owner == sh->id && !persist_holds_replies(sh->persist) && !coord_is_cluster(sh) &&
        cmd_may_run_here(sh, flags, argv, argc, hash, mc)) {
        struct req_result res;
        res.status = REQ_NONE;
        cmd_run(sh, NULL, h, c->resp_version, argv, argc, hash, mc, conn_reply_buf(c), &res);
        cmd_unpin(sh);
        return;
    }
    struct req *r = cmd_req_new(sh, c, 1, CMD_COMBINE_ONE);
    if (!r)
        return;
    r->aux = mc && mc->noreply; /* a timeout stays silent too */
    cmd_route_sub_slot(sh, c, r, 0, owner, h, flags, argv, argc, hash, mc, slot + 1);
    req_arm(&sh->reqs, r);
}

/* How the rows of a split command become sub-requests: each runs h with
 * `flags`, given the command's name (or `name` instead) and the first
 * `width` of the row's `step` arguments. MSET's rows are its pairs as they
 * are; MSETNX's first phase asks EXISTS of each pair's key, its second
 * sends each pair as a SET. */
struct cmd_rows {
    cmd_handler *h;
    uint32_t flags, step, width;
    const char *name; /* NULL: argv[0] */
};

static struct cmd_rows cmd_rows_of(const struct cmd_def *d)
{
    return (struct cmd_rows){d->handler, d->flags, d->split_step, d->split_step, NULL};
}

static const struct cmd_rows cmd_msetnx_exists = {cmd_exists, 0, 2, 1, NULL};
static const struct cmd_rows cmd_msetnx_set = {cmd_set, CMD_WRITE, 2, 2, "SET"};

/* Routes rows [first, first + n) of a split command: row k is argv[1 + k *
 * step ..], sub-result `sub0 + k - first`. */
static void cmd_route_rows(struct shard *sh, struct conn *c, struct req *r,
                           const struct cmd_rows *how, const struct resp_arg *argv,
                           uint32_t first, uint32_t n, uint32_t sub0)
{
    struct resp_arg name = how->name ? (struct resp_arg){how->name, (uint32_t)strlen(how->name)}
                                     : argv[0];
    for (uint32_t k = 0; k < n; k++) {
        const struct resp_arg *row = &argv[1 + (size_t)(first + k) * how->step];
        struct resp_arg one[3] = {name, row[0], how->width == 2 ? row[1] : name};
        uint64_t hash = keyhash(row[0].ptr, row[0].len);
        cmd_route_sub(sh, c, r, sub0 + k, node_shard_of(sh->node, row[0].ptr, row[0].len, hash),
                      how->h, how->flags, one, 1 + how->width, hash,
                      NULL); /* a split row has no per-request columns */
    }
}

/* A split command too large for one loop turn (cmd_route_each, MSETNX's
 * phases): a copy of its arguments (the client's input buffer moves on),
 * how its rows are routed, the request it answers, by id, its connection,
 * by handle, and the next row to route. */
struct cmd_rest {
    struct cmd_rest *next;
    const struct cmd_def *d; /* its command (INFO commandstats) */
    struct cmd_rows how;
    bool arm;                /* arm the request with the last row (MSETNX's second
                                phase is armed by the request table) */
    uint64_t req_id, conn;
    uint32_t rows, next_row;
    struct resp_arg argv[]; /* the name, then the rows; their bytes follow */
};

/* An entry for argc arguments with room for `bytes` of theirs, or NULL
 * (out of memory). */
static struct cmd_rest *cmd_rest_alloc(const struct cmd_def *d, const struct cmd_rows *how,
                                       uint32_t argc, size_t bytes)
{
    struct cmd_rest *x = mi_malloc(sizeof *x + (size_t)argc * sizeof x->argv[0] + bytes + 1);
    if (x)
        *x = (struct cmd_rest){.d = d, .how = *how, .rows = (argc - 1) / how->step};
    return x;
}

/* A copy of argv (a split command of argc arguments), or NULL (out of
 * memory). */
static struct cmd_rest *cmd_rest_new(const struct cmd_def *d, const struct cmd_rows *how,
                                     const struct resp_arg *argv, uint32_t argc)
{
    size_t bytes = 0;
    for (uint32_t i = 0; i < argc; i++)
        bytes += argv[i].len;
    struct cmd_rest *x = cmd_rest_alloc(d, how, argc, bytes);
    if (!x)
        return NULL;
    char *at = (char *)&x->argv[argc];
    for (uint32_t i = 0; i < argc; i++) {
        memcpy(at, argv[i].ptr, argv[i].len);
        x->argv[i] = (struct resp_arg){at, argv[i].len};
        at += argv[i].len;
    }
    return x;
}

/* One argument of those a request keeps in its extra (length, bytes);
 * returns where the next one starts. */
static const char *cmd_extra_arg(const char *s, struct resp_arg *a)
{
    uint32_t len;
    memcpy(&len, s, sizeof len);
    *a = (struct resp_arg){s + sizeof len, len};
    return s + sizeof len + len;
}

/* An entry whose arguments are those request r keeps in its extra (argc of
 * them; MSETNX's), not copied: r->extra lives and stays as it is as long
 * as r does, and an entry is only routed once req_find() found r. NULL
 * (out of memory). */
static struct cmd_rest *cmd_rest_of_extra(const struct cmd_def *d, const struct cmd_rows *how,
                                          const struct req *r, uint32_t argc)
{
    struct cmd_rest *x = cmd_rest_alloc(d, how, argc, 0);
    const char *s = r->extra.data;
    for (uint32_t i = 0; x && i < argc; i++)
        s = cmd_extra_arg(s, &x->argv[i]);
    return x;
}

/* Routes the next n rows of x (n at most the rows left; its request r, its
 * connection c), the time of what runs here counted as its command's (INFO
 * commandstats); arms r once the last row went, if asked to. Whether x is
 * done. */
static bool cmd_rest_route(struct shard *sh, struct cmd_rest *x, struct req *r, struct conn *c,
                           uint32_t n, bool arm)
{
    struct cmd_stats_shard *stats = cmd_stats_of(sh->node, sh->id);
    int32_t was = cmd_stats_enter(stats, (int32_t)(x->d - cmd_defs));
    cmd_route_rows(sh, c, r, &x->how, x->argv, x->next_row, n, x->next_row);
    cmd_stats_leave(stats, was);
    x->next_row += n;
    if (x->next_row < x->rows)
        return false;
    if (arm)
        req_arm(&sh->reqs, r);
    return true;
}

/* Puts x at the end of the shard's queue. */
static void cmd_rest_push(struct shard *sh, struct cmd_rest *x)
{
    x->next = NULL;
    if (sh->rest_tail)
        sh->rest_tail->next = x;
    else
        sh->rest = x;
    sh->rest_tail = x;
}

/* Queues x (NULL: none could be made), the rows of request r of
 * connection c, for cmd_route_rest(); whether it did (else the caller
 * routes the rows all at once). */
static bool cmd_rest_queue(struct shard *sh, struct conn *c, struct req *r, struct cmd_rest *x,
                           bool arm)
{
    if (!x)
        return false;
    x->arm = arm;
    x->req_id = r->id;
    x->conn = shard_conn_handle(c);
    cmd_rest_push(sh, x);
    return true;
}

/* Whether a split command of argc arguments, `step` a row, has more rows
 * than one turn routes. */
static bool cmd_rows_exceed_turn(uint32_t argc, uint32_t step)
{
    return (argc - 1) / step > CMD_ROWS_PER_TURN;
}

/* Splits argv[1..] into groups of `step` arguments, one sub-request each.
 * One of more than CMD_ROWS_PER_TURN rows is copied and queued instead, and
 * cmd_route_rest() routes the queued rows CMD_ROWS_PER_TURN a loop turn
 * (a 300000-key MSET took a cluster node's loop 1.5 s, every other client
 * and peer of the shard waiting); the request is armed with its last row.
 * Its client's next command is read only once it has ended (it is charged
 * CONN_MAX_WORK), so that command sees all of it. */
static void cmd_route_each(struct shard *sh, struct conn *c, const struct cmd_def *d,
                           struct resp_arg *argv, uint32_t argc)
{
    uint32_t rows = (argc - 1) / d->split_step;
    struct req *r = cmd_req_new(sh, c, rows, d->combine);
    if (!r)
        return;
    struct cmd_rows how = cmd_rows_of(d);
    if (!cmd_rows_exceed_turn(argc, how.step) ||
        !cmd_rest_queue(sh, c, r, cmd_rest_new(d, &how, argv, argc), true)) {
        cmd_route_rows(sh, c, r, &how, argv, 0, rows, 0);
        req_arm(&sh->reqs, r);
        return;
    }
    cmd_charge(c, r, CONN_MAX_WORK);
}

/* Takes the queue's head off the queue. */
static struct cmd_rest *cmd_rest_pop(struct shard *sh)
{
    struct cmd_rest *x = sh->rest;
    sh->rest = x->next;
    if (!sh->rest)
        sh->rest_tail = NULL;
    return x;
}

void cmd_route_rest(struct shard *sh)
{
    uint32_t budget = CMD_ROWS_PER_TURN;
    while (sh->rest && budget > 0) {
        struct cmd_rest *x = cmd_rest_pop(sh);
        /* a request that ended (its deadline passed, or it was cancelled)
         * takes none of its other rows */
        struct req *r = req_find(&sh->reqs, x->req_id);
        struct conn *c = r ? shard_conn_of(sh, x->conn) : NULL;
        uint32_t n = x->rows - x->next_row < budget ? x->rows - x->next_row : budget;
        if (c && !cmd_rest_route(sh, x, r, c, n, x->arm)) {
            cmd_rest_push(sh, x); /* the budget is spent: the others first, round robin */
            return;
        }
        budget -= c ? n : 0;
        mi_free(x);
    }
}

void cmd_rest_conn_gone(struct shard *sh, struct conn *c)
{
    uint64_t handle = shard_conn_handle(c);
    struct cmd_rest *x = sh->rest, *next;
    sh->rest = sh->rest_tail = NULL;
    for (; x; x = next) {
        next = x->next;
        if (x->conn != handle) {
            cmd_rest_push(sh, x); /* another client's: kept, in its place */
            continue;
        }
        /* a write is applied whole, as it was when every row went at once
         * (and as Redis does), though nobody reads its reply: its request
         * is cancelled with the connection (unarmed), or, MSETNX's second
         * phase (armed by the request table), may end inside this call,
         * its reply written to a connection that is closing */
        struct req *r = req_find(&sh->reqs, x->req_id);
        if (r && (x->how.flags & CMD_WRITE))
            cmd_rest_route(sh, x, r, c, x->rows - x->next_row, false);
        mi_free(x);
    }
}

void cmd_rest_fini(struct shard *sh)
{
    while (sh->rest)
        mi_free(cmd_rest_pop(sh));
}

void cmd_send(struct cmd_ctx *ctx, uint32_t target, cmd_handler *h, uint32_t flags,
              struct resp_arg *argv, uint32_t argc, uint64_t hash, enum cmd_combine combine)
{
    struct conn *c = ctx->conn;
    struct shard *sh = c->env->owner;
    struct req *r = cmd_req_new(sh, c, 1, combine);
    if (!r)
        return;
    cmd_charge(c, r, CONN_MAX_WORK); /* the client's next command must see its effects */
    cmd_route_sub(sh, c, r, 0, target, h, flags, argv, argc, hash, NULL);
    req_arm(&sh->reqs, r);
}

void cmd_broadcast(struct cmd_ctx *ctx, cmd_handler *h, enum cmd_combine combine)
{
    cmd_broadcast_with(ctx, h, combine, NULL, 0);
}

void cmd_broadcast_with(struct cmd_ctx *ctx, cmd_handler *h, enum cmd_combine combine,
                        const void *extra, size_t n)
{
    struct conn *c = ctx->conn;
    struct shard *sh = c->env->owner;
    uint32_t nshards = sh->node->nshards;
    struct req *r = cmd_req_new(sh, c, nshards, combine);
    if (!r)
        return;
    buf_append(&r->extra, extra, n);
    const struct cmd_def *d = cmd_lookup(ctx->argv[0].ptr, ctx->argv[0].len);
    uint32_t flags = CMD_BARRIER | CMD_NOKEY | (d ? d->flags & CMD_NODATA : 0);
    for (uint32_t s = 0; s < nshards; s++)
        cmd_route_sub(sh, c, r, s, s, h, flags, ctx->argv, ctx->argc, 0, NULL);
    req_arm(&sh->reqs, r);
}

/* FLUSHALL in a cluster: every shard here and, forwarded, every member not
 * down (which runs it on its shards and sends it no further). DBSIZE, KEYS
 * and RANDOMKEY for a client that is not cluster-aware (keyspace.h) the
 * same way: every shard here gives its node-local form, every other member
 * its own as `RING.LOCAL <command>`, and the combiner sums, concatenates or
 * picks. */
static void cmd_route_all_members(struct shard *sh, struct conn *c, const struct cmd_def *d,
                                  struct resp_arg *argv, uint32_t argc)
{
    struct resp_arg local[KEYSPACE_ARGS_MAX + 1] = {{"RING.LOCAL", 10}};
    if (!(d->flags & CMD_WRITE)) {
        if (argc > KEYSPACE_ARGS_MAX) {
            resp_write_error(conn_reply_buf(c), "ERR too many arguments in a cluster");
            return;
        }
        memcpy(local + 1, argv, argc * sizeof *argv);
    }
    const struct resp_arg *peer_argv = d->flags & CMD_WRITE ? argv : local;
    uint32_t peer_argc = d->flags & CMD_WRITE ? argc : argc + 1;
    uint32_t peers[CMD_FLUSH_PEERS_MAX];
    uint32_t npeers = coord_peers(sh, peers, CMD_FLUSH_PEERS_MAX);
    uint32_t nshards = sh->node->nshards;
    struct req *r = cmd_req_new(sh, c, nshards + npeers, d->combine);
    if (!r)
        return;
    /* every slot, here and elsewhere: FLUSHALL is a late write, DBSIZE a read */
    cmd_order_note(c, r->id, CMD_ORDER_ANY, d->flags & CMD_WRITE ? CMD_ORDER_LATE : CMD_ORDER_READ);
    for (uint32_t s = 0; s < nshards; s++)
        cmd_route_sub(sh, c, r, s, s, d->handler, d->flags | CMD_BARRIER | CMD_NOKEY, argv, argc,
                      0, NULL);
    for (uint32_t i = 0; i < npeers; i++) {
        struct coord_route to = {
            .kind = COORD_FORWARD, .to = peers[i], .partition = COORD_NO_PARTITION};
        coord_forward(sh, r->id, nshards + i, c->resp_version, 0, 0, peer_argv, peer_argc, &to);
    }
    req_arm(&sh->reqs, r);
}

/* The first shard from `from` on that holds keys (nshards if none). A shard
 * that is empty now holds no key that is present throughout a SCAN, so
 * skipping it keeps SCAN's guarantee. Reads other shards' counts (relaxed
 * atomic loads, store.h). */
static uint32_t cmd_scan_next_shard(const struct node *n, uint32_t from)
{
    while (from < n->nshards && store_count(n->shards[from]->store) == 0)
        from++;
    return from;
}

static void cmd_scan_start(const struct node *n, uint64_t cursor, uint32_t *shard, uint64_t *pos);

bool cmd_scan_cursor(const struct node *n, const struct resp_arg *a, uint64_t *cursor,
                     uint32_t *shard, uint64_t *pos)
{
    char text[24];
    if (a->len == 0 || a->len >= sizeof text)
        return false;
    memcpy(text, a->ptr, a->len);
    text[a->len] = '\0';
    char *end;
    errno = 0;
    *cursor = strtoull(text, &end, 10);
    if (errno || *end || text[0] == '-')
        return false;
    cmd_scan_start(n, *cursor, shard, pos);
    return true;
}

/* Where node-wide cursor `cursor` resumes: see cmd_scan_cursor(). */
static void cmd_scan_start(const struct node *n, uint64_t cursor, uint32_t *shard, uint64_t *pos)
{
    *shard = (uint32_t)(cursor >> 56);
    *pos = (cursor & ((1ULL << 56) - 1)) << 8;
    if (*shard >= n->nshards) {
        *shard = 0;
        *pos = 0;
    }
    if (*pos == 0)
        *shard = cmd_scan_next_shard(n, *shard);
    if (*shard >= n->nshards) /* no shard from there holds keys: the last one (empty too) */
        *shard = n->nshards - 1; /* ends the scan, and still checks the options */
}

/* SCAN on this node: the cursor's top byte names the shard, the rest is
 * that shard's table cursor shifted right by 8 (table cursors are
 * multiples of 256). r->aux: the shard, plus keyspace.h's member rank
 * (KEYSPACE_AUX_*) when the cursor is cluster-wide. */
static void cmd_route_scan_here(struct shard *sh, struct conn *c, const struct cmd_def *d,
                                struct resp_arg *argv, uint32_t argc, uint32_t shard,
                                uint64_t pos, int64_t aux)
{
    char pos_text[24];
    int n = snprintf(pos_text, sizeof pos_text, "%" PRIu64, pos);
    struct req *r = cmd_req_new(sh, c, 1, CMD_COMBINE_SCAN);
    if (!r)
        return;
    r->aux = aux | shard;
    struct resp_arg saved = argv[1];
    argv[1].ptr = pos_text;
    argv[1].len = (uint32_t)n;
    cmd_route_sub(sh, c, r, 0, shard, d->handler, d->flags, argv, argc, 0, NULL);
    argv[1] = saved;
    req_arm(&sh->reqs, r);
}

/* SCAN for a client that is not cluster-aware in a cluster: the cursor
 * names a member (keyspace.h) and that member's node-wide cursor; this
 * node's part runs here, another member's is forwarded as RING.LOCAL SCAN. */
static void cmd_route_scan_cluster(struct shard *sh, struct conn *c, const struct cmd_def *d,
                                   struct resp_arg *argv, uint32_t argc, uint64_t cursor)
{
    struct keyspace_scan at;
    if (!keyspace_scan_at(sh, cursor, &at)) {
        resp_write_array_len(conn_reply_buf(c), 2); /* no member is left: the scan is over */
        resp_write_bulk(conn_reply_buf(c), "0", 1);
        resp_write_array_len(conn_reply_buf(c), 0);
        return;
    }
    if (at.is_self) {
        uint32_t shard;
        uint64_t pos;
        cmd_scan_start(sh->node, at.node, &shard, &pos);
        cmd_route_scan_here(sh, c, d, argv, argc, shard, pos, at.aux);
        return;
    }
    struct resp_arg fwd[KEYSPACE_ARGS_MAX + 1];
    char text[24];
    if (argc > KEYSPACE_ARGS_MAX) {
        resp_write_error(conn_reply_buf(c), "ERR too many arguments in a cluster");
        return;
    }
    uint32_t n = keyspace_scan_args(&at, argv, argc, fwd, text, sizeof text);
    struct req *r = cmd_req_new(sh, c, 1, CMD_COMBINE_SCAN);
    if (!r)
        return;
    r->aux = at.aux | KEYSPACE_AUX_REMOTE;
    struct coord_route to = {
        .kind = COORD_FORWARD, .to = at.member, .partition = COORD_NO_PARTITION};
    coord_forward(sh, r->id, 0, c->resp_version, 0, 0, fwd, n, &to);
    req_arm(&sh->reqs, r);
}

static void cmd_route_scan(struct shard *sh, struct conn *c, const struct cmd_def *d,
                           struct resp_arg *argv, uint32_t argc)
{
    uint64_t cursor, pos;
    uint32_t shard;
    if (!cmd_scan_cursor(sh->node, &argv[1], &cursor, &shard, &pos)) {
        resp_write_error(conn_reply_buf(c), "ERR invalid cursor");
        return;
    }
    if (coord_is_cluster(sh) && !c->cluster_aware)
        cmd_route_scan_cluster(sh, c, d, argv, argc, cursor);
    else
        cmd_route_scan_here(sh, c, d, argv, argc, shard, pos, 0);
}

/* MSETNX: atomic where every key lives on one shard; else two phases:
 * EXISTS on every key, then (none existing) SET on every key. */
static void cmd_route_msetnx(struct shard *sh, struct conn *c, const struct cmd_def *d,
                             struct resp_arg *argv, uint32_t argc)
{
    if (argc % 2 == 0) {
        resp_write_error(conn_reply_buf(c), "ERR wrong number of arguments for 'msetnx' command");
        return;
    }
    uint64_t first_hash = keyhash(argv[1].ptr, argv[1].len);
    uint32_t first = node_shard_of(sh->node, argv[1].ptr, argv[1].len, first_hash);
    bool one_shard = !coord_is_cluster(sh); /* in a cluster each key is coordinated;
                                                otherwise always so for one {hash tag} */
    for (uint32_t i = 3; i < argc && one_shard; i += 2)
        one_shard = node_shard_of(sh->node, argv[i].ptr, argv[i].len,
                                  keyhash(argv[i].ptr, argv[i].len)) == first;
    if (one_shard) {
        cmd_route_key(sh, c, cmd_msetnx_shard, d->flags, argv, argc, first_hash, NULL);
        return;
    }
    struct req *r = cmd_req_new(sh, c, (argc - 1) / 2, CMD_COMBINE_MSETNX);
    if (!r)
        return;
    cmd_charge(c, r, CONN_MAX_WORK); /* the client's next command must see the keys set */
    /* Keep the arguments for the second phase. */
    for (uint32_t i = 0; i < argc; i++) {
        uint32_t len = argv[i].len;
        buf_append(&r->extra, &len, sizeof len);
        buf_append(&r->extra, argv[i].ptr, len);
    }
    /* the first phase: EXISTS of every key, a turn's budget of rows at a
     * time when they are more (then armed with the last row); without its
     * arguments kept (no memory) it is answered -OOM once it is over */
    if (!r->extra.failed && cmd_rows_exceed_turn(argc, 2) &&
        cmd_rest_queue(sh, c, r, cmd_rest_of_extra(d, &cmd_msetnx_exists, r, argc), true))
        return;
    cmd_route_rows(sh, c, r, &cmd_msetnx_exists, argv, 0, (argc - 1) / 2, 0);
    req_arm(&sh->reqs, r);
}

bool cmd_args_ok(const struct node *n, const struct cmd_def *d, const struct resp_arg *argv,
                 uint32_t argc, char *err, size_t len)
{
    if ((d->arity > 0 && argc != (uint32_t)d->arity) ||
        (d->arity < 0 && argc < (uint32_t)-d->arity) ||
        (d->route == CMD_ROUTE_EACH && (argc - 1) % d->split_step != 0)) {
        snprintf(err, len, "ERR wrong number of arguments for '%s' command", d->name);
        return false;
    }
    if (d->first_key <= 0)
        return true;
    int64_t max = n->cfg->max_key_size;
    int last = d->last_key < 0 ? (int)argc + d->last_key : d->last_key;
    for (int i = d->first_key; i <= last && i < (int)argc; i += d->key_step) {
        if (argv[i].len > max) {
            snprintf(err, len, "ERR key too large (see max-key-size)");
            return false;
        }
    }
    /* a keyed command of several keys (RENAME, COPY) runs on one shard and,
     * in a cluster, one replica set: Redis Cluster's rule, a node alone too */
    if (d->route == CMD_ROUTE_KEY && last > d->first_key) {
        uint32_t slot = keyhash_slot(argv[d->first_key].ptr, argv[d->first_key].len);
        for (int i = d->first_key + d->key_step; i <= last && i < (int)argc; i += d->key_step) {
            if (keyhash_slot(argv[i].ptr, argv[i].len) != slot) {
                snprintf(err, len, "%s", CMD_ERR_CROSSSLOT);
                return false;
            }
        }
    }
    return true;
}

static void cmd_unknown(struct conn *c, struct resp_arg *argv, uint32_t argc)
{
    struct buf *out = conn_reply_buf(c);
    char msg[512];
    int n = snprintf(msg, sizeof msg, "ERR unknown command '%.*s', with args beginning with: ",
                     argv[0].len > 128 ? 128 : (int)argv[0].len, argv[0].ptr);
    for (uint32_t i = 1; i < argc && n < (int)sizeof msg - 140; i++)
        n += snprintf(msg + n, sizeof msg - (size_t)n, "'%.*s' ",
                      argv[i].len > 128 ? 128 : (int)argv[i].len, argv[i].ptr);
    for (char *p = msg; *p; p++) /* an error line must stay one line */
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    resp_write_error(out, msg);
}

/* MISCONF (persist.h): true, with the refusal written as c's reply, when a
 * request that changes data must not run because the log cannot persist. */
static bool cmd_refused(struct shard *sh, struct conn *c, const struct mc_request *mc)
{
    c->is_writer |= !mc || persist_mc_writes(mc); /* back-pressure pauses it (persist.h) */
    struct buf refusal; /* written only when refusing */
    buf_init(&refusal);
    if (mc ? !persist_refuse_mc(sh->node, mc, &refusal) : !persist_refuse_resp(sh->node, &refusal))
        return false;
    buf_append(conn_reply_buf(c), refusal.data, refusal.len);
    buf_fini(&refusal);
    return true;
}

/* A node that left its cluster of several serves no key (node.h
 * left_cluster): a client whose slot map still names it (a Redis Cluster
 * client learns of a leave only from an error) would write where the
 * cluster never reads. -CLUSTERDOWN makes such a client ask for the map
 * again; CLUSTER SLOTS and SHARDS here answer an empty map. */
#define CMD_MC_ERR_LEFT "SERVER_ERROR this node has left its cluster and serves no key\r\n"

bool cmd_node_left(const struct node *n)
{
    return __atomic_load_n(&n->left_cluster, __ATOMIC_RELAXED) != 0;
}

bool cmd_serves_no_key(const struct shard *sh)
{
    return sh->left_cluster;
}

/* Whether d reads or writes keys: keyed or keyspace-wide (EXEC checks its
 * transaction's keys itself: cmd_multi.c). */
static bool cmd_touches_keys(const struct cmd_def *d)
{
    return d->first_key > 0 || d->route != CMD_ROUTE_CONN;
}

/* The checks every request passes before it runs (or is queued in MULTI):
 * false when it is refused, the refusal written as its reply. */
static bool cmd_checked(struct shard *sh, struct conn *c, const struct cmd_def *d,
                        struct resp_arg *argv, uint32_t argc)
{
    if (!d) {
        cmd_unknown(c, argv, argc);
        return false;
    }
    if (!c->authenticated && !(d->flags & CMD_NOAUTH)) {
        resp_write_error(conn_reply_buf(c), "NOAUTH Authentication required.");
        return false;
    }
    c->last_cmd = d->name; /* as Redis: even when the arguments are refused */
    char err[96];
    if (!cmd_args_ok(sh->node, d, argv, argc, err, sizeof err)) {
        resp_write_error(conn_reply_buf(c), err);
        return false;
    }
    if (__builtin_expect(cmd_serves_no_key(sh), 0) && cmd_touches_keys(d)) {
        resp_write_error(conn_reply_buf(c), CMD_ERR_LEFT);
        return false;
    }
    if (!(d->flags & CMD_WRITE))
        return true;
    /* MISCONF: the data log cannot persist. In a cluster a keyed write
     * still goes: to another replica (coord_route_slot). */
    if ((d->route == CMD_ROUTE_KEY || d->route == CMD_ROUTE_EACH) && coord_is_cluster(sh)) {
        c->is_writer = true; /* back-pressure pauses it (persist.h) */
        return true;
    }
    return !cmd_refused(sh, c, NULL);
}

static void cmd_dispatch_def(struct shard *sh, struct conn *c, const struct cmd_def *d,
                             struct resp_arg *argv, uint32_t argc)
{
    if (!cmd_checked(sh, c, d, argv, argc)) {
        cmd_multi_flag(c); /* in MULTI, EXEC will abort */
        return;
    }
    if (cmd_multi_queued(sh, c, d, argv, argc))
        return; /* in MULTI: queued, or refused */
    cmd_stats_admit(cmd_stats_of(sh->node, sh->id));
    switch (d->route) {
    case CMD_ROUTE_CONN: {
        struct req_result res = {.status = REQ_NONE};
        cmd_run(sh, c, d->handler, c->resp_version, argv, argc, 0, NULL, conn_reply_buf(c), &res);
        return;
    }
    case CMD_ROUTE_KEY:
        cmd_route_key(sh, c, d->handler, cmd_flags_for(d, argv, argc), argv, argc,
                      keyhash(argv[1].ptr, argv[1].len), NULL);
        return;
    case CMD_ROUTE_EACH:
        cmd_route_each(sh, c, d, argv, argc);
        return;
    case CMD_ROUTE_ALL: {
        if (coord_is_cluster(sh) && ((d->flags & CMD_WRITE) || !c->cluster_aware)) {
            cmd_route_all_members(sh, c, d, argv, argc);
            return;
        }
        struct cmd_ctx ctx = {.conn = c, .argv = argv, .argc = argc, .out = NULL};
        cmd_broadcast(&ctx, d->handler, d->combine);
        return;
    }
    case CMD_ROUTE_SCAN:
        cmd_route_scan(sh, c, d, argv, argc);
        return;
    case CMD_ROUTE_MSETNX:
        cmd_route_msetnx(sh, c, d, argv, argc);
        return;
    }
}

void cmd_prefetch_keys(void *owner, const struct resp_arg *keys, uint32_t n)
{
    struct shard *sh = owner;
    struct table_probe probes[32];
    uint32_t mine = 0;
    for (uint32_t i = 0; i < n && mine < sizeof probes / sizeof probes[0]; i++) {
        uint64_t hash = keyhash(keys[i].ptr, keys[i].len);
        if (sh->node->nshards > 1 &&
            node_shard_of(sh->node, keys[i].ptr, keys[i].len, hash) != sh->id)
            continue; /* another shard's key: not in this table, a wasted prefetch */
        probes[mine++] = (struct table_probe){keys[i].ptr, keys[i].len, hash};
    }
    store_prefetch(sh->store, probes, mine);
}

/* While any client monitors: a request of a known command but an admin
 * one is shown, as received; a monitoring client's own is shown after it
 * ran (its reply first, as Redis: *feed_after), and one on the keyspace
 * gets Redis's refusal instead (false: answered here). */
static bool cmd_monitor_check(struct shard *sh, struct conn *c, const struct cmd_def *d,
                              const struct resp_arg *argv, uint32_t argc, bool *feed_after)
{
    bool shown = !cmd_server_is_admin(d, argv, argc);
    if (!c->is_monitor) {
        if (shown)
            monitor_feed(sh, c, argv, argc);
        return true;
    }
    if (d->route != CMD_ROUTE_CONN) {
        resp_write_error(conn_reply_buf(c), "ERR Replica can't interact with the keyspace");
        conn_mark_dirty(c);
        return false;
    }
    *feed_after = shown;
    return true;
}

/* BITOP op destkey key [key ...] as RING.BITOP destkey key [key ...] op
 * (cmd_bits.h), in place: its row. Too few arguments stay as they are
 * (row d), for BITOP's arity error. */
static const struct cmd_def *cmd_bitop_keys_first(const struct cmd_def *d, struct resp_arg *argv,
                                                  uint32_t argc)
{
    if (argc < 4)
        return d;
    struct resp_arg op = argv[1];
    memmove(&argv[1], &argv[2], (argc - 2) * sizeof *argv);
    argv[argc - 1] = op;
    argv[0] = (struct resp_arg){"RING.BITOP", 10};
    return cmd_lookup(argv[0].ptr, argv[0].len);
}

void cmd_dispatch_resp(struct conn *c, struct resp_arg *argv, uint32_t argc)
{
    struct shard *sh = c->env->owner;
    const struct cmd_def *d = cmd_lookup(argv[0].ptr, argv[0].len);
    if (__builtin_expect(cmd_order_any(c), 0) && cmd_order_holds_resp(c, d, argv, argc))
        return; /* read again once the request it waits for has ended (cmd_order.h) */
    SHARD_STAT_ADD(sh, total_commands_processed, 1);
    bool feed_after = false;
    if (__builtin_expect(monitor_any(&sh->node->monitors), 0) && d &&
        !cmd_monitor_check(sh, c, d, argv, argc, &feed_after))
        return;
    struct cmd_stats_shard *stats = cmd_stats_of(sh->node, sh->id);
    cmd_stats_begin(stats, c, d ? (int32_t)(d - cmd_defs) : -1);
    const struct cmd_def *sent = d; /* the row the client named (BITOP runs as RING.BITOP) */
    if (__builtin_expect(d && (d->handler == cmd_object || d->handler == cmd_memory ||
                               d->handler == cmd_bitop_client),
                         0)) {
        if (d->handler == cmd_bitop_client) {
            d = cmd_bitop_keys_first(d, argv, argc);
        } else {
            int32_t slot = cmd_server_keyed_subcommand(argv, &argc); /* by its key, as a read */
            if (slot >= 0) {
                d = cmd_lookup(argv[0].ptr, argv[0].len);
                cmd_stats_subcommand(stats, slot);
            }
        }
    }
    cmd_dispatch_def(sh, c, d, argv, argc);
    if (__builtin_expect(sent && sent->handler == cmd_bitop_client, 0))
        c->last_cmd = sent->name; /* CLIENT LIST names what the client sent */
    cmd_stats_end(stats, c);
    if (__builtin_expect(feed_after, 0) && !c->closing)
        monitor_feed(sh, c, argv, argc);
}

/* MSETNX when every key lives on this shard: atomic, as in Redis. */
void cmd_msetnx_shard(struct cmd_ctx *c)
{
    struct buf scratch;
    buf_init(&scratch);
    struct req_result res;
    struct resp_arg exists[2] = {{"EXISTS", 6}, {0}};
    for (uint32_t i = 1; i < c->argc; i += 2) {
        exists[1] = c->argv[i];
        buf_clear(&scratch);
        res.status = REQ_NONE;
        cmd_run_inside(c, cmd_exists, exists, 2, &scratch, &res);
        if (res.status == REQ_INT && res.num > 0) {
            buf_fini(&scratch);
            cmd_reply_int(c, 0);
            return;
        }
    }
    for (uint32_t i = 1; i < c->argc; i += 2) {
        struct resp_arg set[3] = {{"SET", 3}, c->argv[i], c->argv[i + 1]};
        buf_clear(&scratch);
        res.status = REQ_NONE;
        cmd_run_inside(c, cmd_set, set, 3, &scratch, &res);
        if (res.status == REQ_ERR) {
            buf_append(c->out, scratch.data, scratch.len);
            c->res->status = REQ_ERR;
            buf_fini(&scratch);
            return;
        }
    }
    buf_fini(&scratch);
    cmd_reply_int(c, 1);
}

/* ---- memcached ---- */

static const struct cmd_mc_def cmd_mc_defs[MC_CMD_COUNT] = {
    [MC_GET] = {cmd_mc_get, CMD_READONLY | CMD_READS_VALUE},
    [MC_GETS] = {cmd_mc_gets, CMD_READONLY | CMD_READS_VALUE},
    [MC_GAT] = {cmd_mc_gat, CMD_WRITE | CMD_READS_VALUE},
    [MC_GATS] = {cmd_mc_gats, CMD_WRITE | CMD_READS_VALUE},
    [MC_SET] = {cmd_mc_set, CMD_WRITE},
    [MC_ADD] = {cmd_mc_add, CMD_WRITE},
    [MC_REPLACE] = {cmd_mc_replace, CMD_WRITE},
    [MC_APPEND] = {cmd_mc_append, CMD_WRITE | CMD_READS_VALUE},
    [MC_PREPEND] = {cmd_mc_prepend, CMD_WRITE | CMD_READS_VALUE},
    [MC_CAS] = {cmd_mc_cas, CMD_WRITE},
    [MC_DELETE] = {cmd_mc_delete, CMD_WRITE},
    [MC_TOUCH] = {cmd_mc_touch, CMD_WRITE | CMD_READS_VALUE},
    [MC_INCR] = {cmd_mc_incr, CMD_WRITE | CMD_READS_VALUE},
    [MC_DECR] = {cmd_mc_decr, CMD_WRITE | CMD_READS_VALUE},
    [MC_FLUSH_ALL] = {cmd_mc_flush_all_shard, CMD_WRITE | CMD_BARRIER | CMD_NOKEY},
    [MC_STATS] = {cmd_mc_conn, CMD_NOKEY},
    [MC_VERSION] = {cmd_mc_conn, CMD_NOKEY},
    [MC_VERBOSITY] = {cmd_mc_conn, CMD_NOKEY},
    [MC_QUIT] = {cmd_mc_conn, CMD_NOKEY},
    [MC_MN] = {cmd_mc_conn, CMD_NOKEY},
};

const struct cmd_mc_def *cmd_mc_def(int cmd)
{
    return cmd >= 0 && cmd < MC_CMD_COUNT ? &cmd_mc_defs[cmd] : NULL;
}

uint32_t cmd_mc_flags(const struct mc_request *req)
{
    const struct cmd_mc_def *d = &cmd_mc_defs[req->cmd];
    /* Writes that read first (incr, append, cas, add...): read-modify-write
     * in a cluster (coord.h). */
    bool is_rmw = (d->flags & CMD_WRITE) &&
                  ((d->flags & CMD_READS_VALUE) || req->cmd == MC_ADD || req->cmd == MC_REPLACE ||
                   req->cmd == MC_CAS);
    /* gets answers the coordinator's own cas unique, and cas goes to the
     * first live replica: a gets goes there too (CMD_FIRST_LIVE) */
    return d->flags | (is_rmw ? CMD_RMW : 0) | (req->cmd == MC_GETS ? CMD_FIRST_LIVE : 0);
}

/* "stats reset", with any words after it: memcached 1.6 answers them all
 * RESET ("stats reset noreply" too: stats has no noreply). */
static bool cmd_mc_is_stats_reset(const struct mc_request *req)
{
    const char *a = req->stats_arg;
    uint32_t n = req->stats_arg_len;
    return req->cmd == MC_STATS && a && n >= 5 && memcmp(a, "reset", 5) == 0 &&
           (n == 5 || a[5] == ' ');
}

/* Runs h on every shard (flags: CMD_BARRIER | CMD_NOKEY at least) with req;
 * the combined reply (the request's aux: noreply) takes c's next slot. */
static void cmd_mc_broadcast(struct conn *c, struct mc_request *req, cmd_handler *h,
                             uint32_t flags, enum cmd_combine combine)
{
    struct shard *sh = c->env->owner;
    struct req *r = cmd_req_new(sh, c, sh->node->nshards, combine);
    if (!r)
        return;
    r->aux = req->noreply;
    for (uint32_t s = 0; s < sh->node->nshards; s++)
        cmd_route_sub(sh, c, r, s, s, h, flags, NULL, 0, 0, req);
    req_arm(&sh->reqs, r);
}

/* A set whose value is over the item limit (net/mc.h too_large): its key's
 * old value goes, as memcached unlinks it (a reader must not get it after a
 * set that failed): a silent delete, then the error. */
static void cmd_mc_too_large(struct shard *sh, struct conn *c, const struct mc_request *req)
{
    struct mc_key key = req->keys[0];
    struct mc_request del = {.cmd = MC_DELETE, .keys = &key, .nkeys = 1, .noreply = true};
    cmd_route_key(sh, c, cmd_mc_defs[MC_DELETE].handler, cmd_mc_flags(&del), NULL, 0,
                  keyhash(key.ptr, key.len), &del);
    if (!req->noreply)
        mc_write_line(conn_reply_buf(c), MC_ERR_TOO_LARGE);
}

void cmd_dispatch_mc(struct conn *c, struct mc_request *req)
{
    struct shard *sh = c->env->owner;
    if (__builtin_expect(cmd_order_any(c), 0) && cmd_order_holds_mc(c, req))
        return; /* read again once the request it waits for has ended (cmd_order.h) */
    SHARD_STAT_ADD(sh, total_commands_processed, 1);
    c->last_cmd = mc_cmd_name(req->cmd);
    if (__builtin_expect(cmd_serves_no_key(sh), 0) &&
        ((req->nkeys > 0 && !(cmd_mc_defs[req->cmd].flags & CMD_NOKEY)) ||
         req->cmd == MC_FLUSH_ALL)) {
        if (!req->noreply)
            buf_append_str(conn_reply_buf(c), CMD_MC_ERR_LEFT);
        return;
    }
    if (req->nkeys > 0 && !(cmd_mc_defs[req->cmd].flags & CMD_NOKEY) && coord_is_cluster(sh))
        c->is_writer |= persist_mc_writes(req); /* a keyed write goes on: see cmd_checked */
    else if (cmd_refused(sh, c, req))
        return; /* the data log cannot persist */
    const struct cmd_mc_def *d = &cmd_mc_defs[req->cmd];
    if (__builtin_expect(req->too_large, 0)) {
        cmd_mc_too_large(sh, c, req);
        return;
    }
    struct req *r;
    switch (req->cmd) {
    case MC_GET:
    case MC_GETS:
    case MC_GAT:
    case MC_GATS:
        if (!(r = cmd_req_new(sh, c, req->nkeys, CMD_COMBINE_MC_END)))
            return;
        for (uint32_t i = 0; i < req->nkeys; i++) {
            struct mc_request one = *req;
            one.keys = &req->keys[i];
            one.nkeys = 1;
            uint64_t hash = keyhash(one.keys[0].ptr, one.keys[0].len);
            cmd_route_sub(sh, c, r, i,
                          node_shard_of(sh->node, one.keys[0].ptr, one.keys[0].len, hash),
                          d->handler, cmd_mc_flags(&one), NULL, 0, hash, &one);
        }
        req_arm(&sh->reqs, r);
        return;
    case MC_FLUSH_ALL:
        cmd_mc_broadcast(c, req, d->handler, d->flags, CMD_COMBINE_MC_OK);
        return;
    case MC_STATS:
        if (cmd_mc_is_stats_reset(req)) { /* CONFIG RESETSTAT's reset on every shard */
            cmd_mc_broadcast(c, req, cmd_server_resetstat_shard, CMD_BARRIER | CMD_NOKEY,
                             CMD_COMBINE_MC_RESET);
            return;
        }
        /* fall through */
    case MC_VERSION:
    case MC_VERBOSITY:
    case MC_QUIT:
    case MC_MN: {
        struct req_result res = {.status = REQ_NONE};
        cmd_run(sh, c, d->handler, 2, NULL, 0, 0, req, conn_reply_buf(c), &res);
        return;
    }
    default:
        cmd_route_key(sh, c, d->handler, cmd_mc_flags(req), NULL, 0,
                      keyhash(req->keys[0].ptr, req->keys[0].len), req);
        return;
    }
}

void cmd_read_back(const struct cmd_ctx *c, const struct resp_arg *key, uint64_t hash)
{
    struct shard *sh = c->node->shards[c->shard_id];
    (void)coord_load_value(sh, key->ptr, key->len, hash, NULL, NULL, shard_deadline(sh));
}

/* ---- messages ---- */

void cmd_msg_run(struct shard *sh, struct cmd_msg *m)
{
    buf_clear(&m->res.body);
    m->res.status = REQ_NONE;
    struct cmd_stats_shard *stats = cmd_stats_of(sh->node, sh->id);
    int32_t was = cmd_stats_enter(stats, m->stat_slot);
    cmd_run(sh, NULL, m->handler, m->proto, m->argv, m->argc, m->hash, m->is_mc ? &m->mc : NULL,
            &m->res.body, &m->res);
    if (m->flags & CMD_NODATA)
        m->res.hold_seq = 0;
    cmd_stats_leave(stats, was);
}

void cmd_msg_fail(struct cmd_msg *m, const char *why)
{
    char err[160];
    snprintf(err, sizeof err, "ERR %s", why);
    buf_clear(&m->res.body);
    m->res.status = REQ_ERR;
    cmd_write_error(&m->res.body, m->is_mc, err, why);
}

void cmd_msg_error(struct cmd_msg *m, const char *err)
{
    buf_clear(&m->res.body);
    m->res.status = REQ_ERR;
    cmd_write_error(&m->res.body, m->is_mc, err, err);
}

void cmd_msg_timeout(struct cmd_msg *m, int64_t timeout_ms)
{
    buf_clear(&m->res.body);
    m->res.status = REQ_ERR;
    cmd_write_timeout(&m->res.body, m->is_mc, timeout_ms);
}

/* A keyed message from a shard whose view was still a cluster of one when
 * this shard's already coordinates (views change once per loop turn of each
 * shard): coordinated here when this node may, else the client retries. */
static bool cmd_msg_adopt(struct shard *sh, struct cmd_msg *m)
{
    if ((m->flags & (CMD_COORD | CMD_NOKEY)) || !coord_is_cluster(sh) ||
        (m->is_mc ? m->mc.nkeys == 0 : m->argc < 2))
        return false;
    const struct resp_arg key = cmd_msg_key(m);
    struct coord_route rt;
    coord_route(sh, NULL, key.ptr, key.len, m->hash, m->flags, &rt);
    if (rt.kind != COORD_LOCAL && rt.kind != COORD_HERE) {
        cmd_msg_error(m, COORD_VIEW_CHANGING);
        cmd_msg_reply(sh, m);
        return true;
    }
    m->flags |= CMD_COORD;
    m->r = m->w = 0; /* deadline_ms: the client request's, which the sender set */
    coord_execute(sh, m);
    return true;
}

void cmd_msg_execute(struct shard *sh, struct cmd_msg *m)
{
    if ((m->flags & CMD_COORD) && coord_is_cluster(sh)) {
        coord_execute(sh, m);
        return;
    }
    if (cmd_msg_adopt(sh, m))
        return;
    if (cmd_may_run_here(sh, m->flags, m->argv, m->argc, m->hash, m->is_mc ? &m->mc : NULL)) {
        cmd_msg_run(sh, m);
        cmd_unpin(sh);
        cmd_msg_reply(sh, m);
        return;
    }
    tier_wait(sh, m);
}

/* A reply held on this shard until the records it may depend on are
 * durable: sent back then, or as a timeout error at its deadline. */
static bool cmd_msg_hold_done(struct req_table *t, struct req *r, enum req_end how)
{
    struct shard *sh = t->ctx;
    struct cmd_msg *m = r->owner_ptr;
    if (how == REQ_END_DROP) {
        cmd_msg_free(m);
        return true;
    }
    if (how == REQ_END_TIMEOUT)
        cmd_msg_timeout(m, sh->request_timeout_ms);
    shard_send(sh, m->origin, m);
    return true;
}

void cmd_msg_reply(struct shard *sh, struct cmd_msg *m)
{
    if (m->origin == sh->id) { /* its request is here: it holds for durability itself */
        cmd_msg_complete(sh, m);
        return;
    }
    uint64_t seq = m->res.hold_seq;
    struct req *r = seq ? req_new(&sh->reqs, 0, 0, cmd_msg_hold_done, shard_deadline(sh)) : NULL;
    if (!r) {
        if (seq) /* cannot wait for durability: do not acknowledge it */
            cmd_msg_fail(m, "out of memory");
        shard_send(sh, m->origin, m);
        return;
    }
    r->owner_ptr = m;
    req_hold(r, seq);
    req_arm(&sh->reqs, r);
}

void cmd_msg_complete(struct shard *sh, struct cmd_msg *m)
{
    if (__builtin_expect(m->handler == monitor_deliver, 0)) {
        monitor_returned(sh, m);
        cmd_msg_free(m);
        return;
    }
    struct req *r = req_find(&sh->reqs, m->req);
    if (!r || m->sub >= r->nsub) { /* its request has ended (deadline, client gone) */
        cmd_msg_free(m);
        return;
    }
    struct req_result *sub = &r->subs[m->sub];
    buf_fini(&sub->body);
    *sub = m->res; /* the body's memory moves to the request */
    bool ran_here = m->target == sh->id;
    mi_free(m);
    if (ran_here)
        req_hold(r, sub->hold_seq);
    req_sub_done(&sh->reqs, r);
}

/* ---- combiners ---- */

static const struct req_result *cmd_first_error(const struct req *r)
{
    for (uint32_t i = 0; i < r->nsub; i++)
        if (r->subs[i].status == REQ_ERR)
            return &r->subs[i];
    return NULL;
}

static void cmd_append_body(struct buf *out, const struct req_result *res)
{
    buf_append(out, res->body.data, res->body.len);
    out->failed |= res->body.failed;
}

/* The payload of a sub-result: after its header; a bulk string's also
 * before its closing CRLF. */
static void cmd_payload(const struct req_result *res, const char **p, size_t *n)
{
    size_t end = res->body.len;
    if (res->status == REQ_BULK && end >= res->skip + 2)
        end -= 2;
    *p = res->body.data ? res->body.data + res->skip : "";
    *n = end > res->skip ? end - res->skip : 0;
}

static uint64_t cmd_rng_state = 0x9e3779b97f4a7c15ULL;
static _Thread_local uint64_t cmd_rng = 0;

static uint64_t cmd_random(void)
{
    if (!cmd_rng)
        cmd_rng = cmd_rng_state ^ (uint64_t)(uintptr_t)&cmd_rng;
    cmd_rng ^= cmd_rng << 13;
    cmd_rng ^= cmd_rng >> 7;
    cmd_rng ^= cmd_rng << 17;
    return cmd_rng;
}

/* SCAN: the shard's reply carries its next table cursor (num) and the key
 * array as payload; the cursor is made node-wide, and cluster-wide when
 * r->aux says so (keyspace.h); a member's forwarded reply brings its
 * node-wide cursor in its text. */
static void cmd_combine_scan(struct shard *sh, const struct req *r, struct buf *out)
{
    const struct req_result *res = &r->subs[0];
    if (res->status != REQ_ARRAY) {
        cmd_append_body(out, res);
        return;
    }
    uint64_t cursor;
    const char *p;
    size_t len;
    if (r->aux & KEYSPACE_AUX_REMOTE) {
        if (!keyspace_scan_reply(res, &cursor, &p, &len)) {
            resp_write_error(out, "ERR a member's SCAN reply could not be read");
            return;
        }
    } else {
        uint64_t next = (uint64_t)res->num;
        uint64_t shard = (uint64_t)r->aux & KEYSPACE_AUX_SHARD;
        if (next != 0) {
            cursor = (shard << 56) | (next >> 8);
        } else {
            uint64_t following = cmd_scan_next_shard(sh->node, (uint32_t)shard + 1);
            cursor = following < sh->node->nshards ? following << 56 : 0;
        }
        cmd_payload(res, &p, &len);
    }
    if (r->aux & ~KEYSPACE_AUX_SHARD)
        cursor = keyspace_scan_next(sh, r->aux, cursor);
    char text[24];
    int n = snprintf(text, sizeof text, "%" PRIu64, cursor);
    resp_write_array_len(out, 2);
    resp_write_bulk(out, text, (size_t)n);
    buf_append(out, p, len);
}

/* CLIENT LIST: every shard's lines as one string, or with ids (r->extra)
 * the lines of those ids in that order, as Redis gives them: the shards'
 * records (idset.h) indexed by id, each id asked found in O(log lines). */
static void cmd_combine_lines(const struct conn *c, const struct req *r, struct buf *out)
{
    struct buf all;
    buf_init(&all);
    const char *s;
    size_t n, total = 0;
    for (uint32_t i = 0; i < r->nsub; i++) {
        cmd_payload(&r->subs[i], &s, &n);
        if (r->extra.len == 0)
            buf_append(&all, s, n);
        total += n;
    }
    struct idset_line *lines = NULL;
    uint32_t nlines = 0, cap = (uint32_t)(total / IDSET_RECORD_HEAD);
    if (r->extra.len > 0 && cap > 0 && !(lines = mi_malloc(cap * sizeof *lines))) {
        buf_fini(&all);
        cmd_write_oom(out, false);
        return;
    }
    for (uint32_t i = 0; lines && i < r->nsub; i++) {
        cmd_payload(&r->subs[i], &s, &n);
        if (r->subs[i].status == REQ_BULK)
            nlines += idset_index(s, n, lines + nlines, cap - nlines);
    }
    idset_lines_sort(lines, nlines);
    for (size_t k = 0; nlines && k + sizeof(int64_t) <= r->extra.len; k += sizeof(int64_t)) {
        int64_t id;
        memcpy(&id, r->extra.data + k, sizeof id);
        const struct idset_line *l = idset_lines_find(lines, nlines, id);
        if (l)
            buf_append(&all, l->p, l->n);
    }
    mi_free(lines);
    resp_write_verbatim(out, c->resp_version, all.data ? all.data : "", all.len);
    out->failed |= all.failed;
    buf_fini(&all);
}

/* Second phase of a cross-shard MSETNX: set every key (r re-armed, so armed
 * by the request table), a turn's budget of rows at a time when they are
 * more (the queue reads them in r->extra). */
static void cmd_msetnx_phase2(struct shard *sh, struct conn *c, struct req *r)
{
    req_rearm(r, r->nsub);
    uint32_t argc = 1 + 2 * r->nsub;
    if (cmd_rows_exceed_turn(argc, 2) &&
        cmd_rest_queue(sh, c, r,
                       cmd_rest_of_extra(cmd_lookup("msetnx", 6), &cmd_msetnx_set, r, argc),
                       false))
        return;
    struct resp_arg one[3]; /* row by row, as they are kept */
    const char *s = cmd_extra_arg(r->extra.data, &one[0]);
    for (uint32_t sub = 0; sub < r->nsub; sub++) {
        s = cmd_extra_arg(cmd_extra_arg(s, &one[1]), &one[2]);
        cmd_route_rows(sh, c, r, &cmd_msetnx_set, one, 0, 1, sub);
    }
}

void cmd_combine_keyspace(struct shard *sh, const struct req *r, int proto, struct buf *out)
{
    const struct req_result *err = cmd_first_error(r);
    int64_t total = 0;
    switch ((enum cmd_combine)r->kind) {
    case CMD_COMBINE_SUM:
        if (err) {
            cmd_append_body(out, err);
            return;
        }
        for (uint32_t i = 0; i < r->nsub; i++)
            total += r->subs[i].num;
        resp_write_int(out, total);
        return;
    case CMD_COMBINE_CONCAT:
        if (err) {
            cmd_append_body(out, err);
            return;
        }
        for (uint32_t i = 0; i < r->nsub; i++)
            total += r->subs[i].num;
        resp_write_array_len(out, (size_t)total);
        for (uint32_t i = 0; i < r->nsub; i++) {
            const char *p;
            size_t n;
            cmd_payload(&r->subs[i], &p, &n);
            buf_append(out, p, n);
        }
        return;
    case CMD_COMBINE_RANDOM: {
        uint32_t live = 0, pick;
        for (uint32_t i = 0; i < r->nsub; i++)
            live += r->subs[i].status == REQ_BULK;
        if (live == 0) {
            resp_write_null(out, proto);
            return;
        }
        pick = (uint32_t)(cmd_random() % live);
        for (uint32_t i = 0; i < r->nsub; i++)
            if (r->subs[i].status == REQ_BULK && pick-- == 0)
                cmd_append_body(out, &r->subs[i]);
        return;
    }
    case CMD_COMBINE_SCAN:
        cmd_combine_scan(sh, r, out);
        return;
    default:
        resp_write_error(out, "ERR not a keyspace command");
        return;
    }
}

/* Writes the combined reply of a complete request into out. False when it
 * started another phase instead (MSETNX). */
static bool cmd_combine(struct shard *sh, struct conn *c, struct req *r, struct buf *out)
{
    const struct req_result *err = cmd_first_error(r);
    int64_t total = 0;
    switch ((enum cmd_combine)r->kind) {
    case CMD_COMBINE_ONE:
        if (out->len == 0) { /* take the bytes rather than copy them */
            struct buf t = *out;
            *out = r->subs[0].body;
            r->subs[0].body = t;
        } else {
            cmd_append_body(out, &r->subs[0]);
        }
        return true;
    case CMD_COMBINE_ARRAY:
        resp_write_array_len(out, r->nsub);
        for (uint32_t i = 0; i < r->nsub; i++)
            cmd_append_body(out, &r->subs[i]);
        return true;
    case CMD_COMBINE_OK:
        if (err)
            cmd_append_body(out, err);
        else
            resp_write_ok(out);
        return true;
    case CMD_COMBINE_SUM:
    case CMD_COMBINE_CONCAT:
    case CMD_COMBINE_RANDOM:
    case CMD_COMBINE_SCAN:
        cmd_combine_keyspace(sh, r, c->resp_version, out);
        return true;
    case CMD_COMBINE_MSETNX:
        if (r->extra.failed) { /* its arguments could not be kept for the writes */
            cmd_write_oom(out, false);
            return true;
        }
        if (err) {
            cmd_append_body(out, err);
            return true;
        }
        for (uint32_t i = 0; i < r->nsub; i++)
            total += r->subs[i].num;
        if (total > 0) {
            resp_write_int(out, 0);
            return true;
        }
        r->kind = CMD_COMBINE_MSETNX_DONE;
        cmd_msetnx_phase2(sh, c, r);
        return false;
    case CMD_COMBINE_MSETNX_DONE:
        if (err)
            cmd_append_body(out, err);
        else
            resp_write_int(out, 1);
        return true;
    case CMD_COMBINE_BULK:
        cmd_combine_lines(c, r, out);
        return true;
    case CMD_COMBINE_KILLED:
        for (uint32_t i = 0; i < r->nsub; i++)
            total += r->subs[i].num;
        if (err)
            cmd_append_body(out, err);
        else if (total)
            resp_write_ok(out);
        else
            resp_write_error(out, "ERR No such client");
        return true;
    case CMD_COMBINE_MC_END:
        for (uint32_t i = 0; i < r->nsub; i++)
            cmd_append_body(out, &r->subs[i]);
        buf_append_str(out, "END\r\n");
        return true;
    case CMD_COMBINE_MC_OK:
        if (!r->aux)
            buf_append_str(out, "OK\r\n");
        return true;
    case CMD_COMBINE_MC_RESET:
        buf_append_str(out, "RESET\r\n");
        return true;
    case CMD_COMBINE_WATCH:
        cmd_multi_watched(c, &r->subs[0], out);
        return true;
    case CMD_COMBINE_SAME:
        cmd_append_body(out, err ? err : &r->subs[0]);
        return true;
    }
    return true;
}

/* The done callback of a connection's request: combine its sub-results (or
 * say it timed out) into its reply slot, which then goes out in order. */
static bool cmd_conn_done(struct req_table *t, struct req *r, enum req_end how)
{
    struct shard *sh = t->ctx;
    struct conn *c = how == REQ_END_DROP ? NULL : shard_conn_of(sh, r->owner);
    if (!c) /* cancelled: the connection and its slot are going */
        return true;
    struct conn_slot *slot = r->owner_ptr;
    bool is_noreply = c->kind == CONN_MC && r->aux &&
                      (r->kind == CMD_COMBINE_ONE || r->kind == CMD_COMBINE_MC_OK);
    struct cmd_stats_shard *stats = cmd_stats_of(sh->node, sh->id);
    size_t at = slot->body.len;
    int32_t was = cmd_stats_combine_begin(stats, slot);
    bool is_over = true;
    if (how == REQ_END_TIMEOUT) {
        if (!is_noreply) /* memcached's noreply: not even an error */
            cmd_write_timeout(&slot->body, c->kind == CONN_MC, sh->request_timeout_ms);
    } else {
        is_over = cmd_combine(sh, c, r, &slot->body);
    }
    /* Counts the reply, or drops it (CLIENT REPLY), once it is written. */
    cmd_stats_combine_end(stats, c, slot, &slot->body, at, was);
    if (is_over)
        conn_slot_ready(c, slot);
    if (is_over && r->charged)
        conn_refund(c, r->charged);
    if (is_over && c->order)
        cmd_order_end(c, r->id);
    return is_over;
}
