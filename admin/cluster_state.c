/* cluster_state.c: the cluster state file (see cluster_state.h).
 * One JSON document (jansson), compact, with a trailing newline:
 *   {"format": "ringkv-cluster-state", "version": 1,
 *    "id", "state" ("joining", "up", "leaving", "left"), "state_version",
 *    "incarnation", "left_cluster" (true, only when so: this node left a
 *    cluster and is alone since; absent otherwise),
 *    "ring": {"partitions" (Q), "replicas" (n), "epoch", "hash" (16 hex
 *             digits), "members": [{"id", "weight", "zone"}...] (the ring's
 *             order, by id), "owners": [member index per partition]},
 *    "peers": [{"id", "address", "cluster_address", "admin_address",
 *               "weight", "zone", "state", "state_version"}...]}
 * Writing: cluster_state_write() puts the document under a temporary name,
 * fsyncs it, renames it over the file and fsyncs the directory (as
 * identity.c does for the node id), so a crash leaves the old state or the
 * new one; a temporary file left by a crash is never read and is truncated
 * by the next write. cluster_state_save() writes only when the document
 * differs from the last one written, so that the admin thread may call it
 * after every change. The fsyncs run on the admin thread, as Redis fsyncs
 * nodes.conf on its main thread: changes are rare (joins, leaves, rings,
 * refutations), and gossip waits for them rather than a peer hearing of a
 * state this node could lose.
 * Left members are kept as tombstones (state "left" and its version), so
 * that a restarted node does not take back a member that left while it, or
 * the peer it hears first, was down.
 * Reading trusts nothing: at most CLUSTER_STATE_MAX_BYTES; the format name
 * and version first (a newer version is refused by name, not by a missing
 * field); then every field's type and bounds, no field unknown or
 * repeated, ids of 40 lowercase hex digits, strings within the sizes of
 * member.h and ring.h and free of NUL, owners within the members, no peer
 * twice nor this node among them; the ring is rebuilt with
 * ring_from_owners(), which checks members (ids unique, weights) and
 * computes the preference lists, and must come out with the saved hash.
 * What to do with a refused file (stop start-up) is the caller's. */
#include "cluster_state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <xxhash.h>

#include "identity.h"

#define CLUSTER_STATE_FORMAT "ringkv-cluster-state"

static const char *const state_names[] = {"joining", "up", "leaving", "left"};

void cluster_state_fini(struct cluster_state *s)
{
    free(s->peers);
    s->peers = NULL;
    s->n_peers = 0;
}

int cluster_state_of(const struct member_table *t, struct cluster_state *out)
{
    memset(out, 0, sizeof *out);
    const struct member *self = member_at(t, 0);
    memcpy(out->id, self->info.id, sizeof out->id);
    out->state = self->state;
    out->state_version = self->state_version;
    out->incarnation = self->incarnation;
    out->left_cluster = member_has_left(t);
    if (self->state == MEMBER_LEFT || member_count(t) == 1)
        return 0;
    out->peers = calloc(member_count(t) - 1, sizeof *out->peers);
    if (!out->peers)
        return -ENOMEM;
    for (uint32_t i = 1; i < member_count(t); i++) {
        const struct member *m = member_at(t, i);
        struct cluster_state_peer *p = &out->peers[out->n_peers++];
        p->info = m->info;
        p->info.ring_epoch = 0;
        p->info.ring_hash = 0;
        p->state = m->state;
        p->state_version = m->state_version;
    }
    return 0;
}

/* ---- encoding ---- */

static json_t *encode_ring(const struct ring *r)
{
    json_t *members = json_array(), *owners = json_array();
    bool ok = members && owners;
    for (uint32_t i = 0; ok && i < r->n_members; i++)
        ok = json_array_append_new(members, json_pack("{s:s, s:I, s:s}", "id", r->members[i].id,
                                                      "weight", (json_int_t)r->members[i].weight,
                                                      "zone", r->members[i].zone)) == 0;
    for (uint32_t p = 0; ok && p < r->q; p++)
        ok = json_array_append_new(owners, json_integer(r->owner[p])) == 0;
    if (!ok) {
        json_decref(members);
        json_decref(owners);
        return NULL;
    }
    char hash[17];
    snprintf(hash, sizeof hash, "%016" PRIx64, r->hash);
    return json_pack("{s:I, s:I, s:I, s:s, s:o, s:o}", "partitions", (json_int_t)r->q,
                     "replicas", (json_int_t)r->n, "epoch", (json_int_t)r->epoch, "hash", hash,
                     "members", members, "owners", owners);
}

static json_t *encode_peer(const struct cluster_state_peer *p)
{
    const struct gossip_info *i = &p->info;
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:I}", "id", i->id, "address",
                     i->client_addr, "cluster_address", i->cluster_addr, "admin_address",
                     i->admin_addr, "weight", (json_int_t)i->weight, "zone", i->zone, "state",
                     state_names[p->state], "state_version", (json_int_t)p->state_version);
}

char *cluster_state_encode(const struct cluster_state *s, const struct ring *ring)
{
    json_t *peers = json_array();
    bool ok = peers != NULL;
    for (uint32_t i = 0; ok && i < s->n_peers; i++)
        ok = json_array_append_new(peers, encode_peer(&s->peers[i])) == 0;
    if (!ok) {
        json_decref(peers);
        return NULL;
    }
    json_t *doc = json_pack("{s:s, s:i, s:s, s:s, s:I, s:I, s:o, s:o}", "format",
                            CLUSTER_STATE_FORMAT, "version", CLUSTER_STATE_VERSION, "id", s->id,
                            "state", state_names[s->state], "state_version",
                            (json_int_t)s->state_version, "incarnation",
                            (json_int_t)s->incarnation, "ring", encode_ring(ring), "peers", peers);
    if (doc && s->left_cluster && json_object_set_new(doc, "left_cluster", json_true()) != 0) {
        json_decref(doc);
        doc = NULL;
    }
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    char *text = body ? malloc(strlen(body) + 2) : NULL;
    if (text)
        sprintf(text, "%s\n", body);
    free(body);
    return text;
}

/* ---- decoding ---- */

static int refuse(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Copies s (len bytes, from "s%") into dst[cap] when it fits and holds no NUL. */
static bool copy_str(char *dst, size_t cap, const char *s, size_t len)
{
    if (len >= cap || strlen(s) != len)
        return false;
    memcpy(dst, s, len + 1);
    return true;
}

static bool decode_state(const char *name, enum member_state *out)
{
    for (int s = MEMBER_JOINING; s <= MEMBER_LEFT; s++)
        if (strcmp(name, state_names[s]) == 0) {
            *out = (enum member_state)s;
            return true;
        }
    return false;
}

static bool decode_hash(const char *hex, uint64_t *out)
{
    if (strlen(hex) != 16)
        return false;
    uint64_t h = 0;
    for (int i = 0; i < 16; i++) {
        char c = hex[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        h = h << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    *out = h;
    return true;
}

/* One ring member, the k-th. */
static int decode_member(json_t *j, size_t k, struct ring_member *m, char *why, size_t cap)
{
    const char *id, *zone;
    size_t id_len, zone_len;
    json_int_t weight;
    json_error_t err;
    if (json_unpack_ex(j, &err, JSON_STRICT, "{s:s%, s:I, s:s%}", "id", &id, &id_len, "weight",
                       &weight, "zone", &zone, &zone_len) != 0)
        return refuse(why, cap, "ring member %zu: %s", k, err.text);
    if (!identity_valid(id, id_len) || !copy_str(m->id, sizeof m->id, id, id_len))
        return refuse(why, cap, "ring member %zu: the id is not 40 lowercase hex digits", k);
    if (weight < 1 || weight > UINT32_MAX)
        return refuse(why, cap, "ring member %zu: weight %lld is not 1 to %u", k,
                      (long long)weight, UINT32_MAX);
    m->weight = (uint32_t)weight;
    if (!copy_str(m->zone, sizeof m->zone, zone, zone_len))
        return refuse(why, cap, "ring member %zu: the zone is longer than %d bytes or holds a "
                      "NUL", k, RING_ZONE_MAX);
    return 0;
}

/* owner_ids[p] = the id of owners[p]'s member. */
static int decode_owners(json_t *owners, const struct ring_member *members, size_t n_members,
                         const char **owner_ids, char *why, size_t cap)
{
    size_t p;
    json_t *v;
    json_array_foreach(owners, p, v) {
        json_int_t k = json_is_integer(v) ? json_integer_value(v) : -1;
        if (k < 0 || (size_t)k >= n_members)
            return refuse(why, cap, "ring: the owner of partition %zu is not a member index "
                          "below %zu", p, n_members);
        owner_ids[p] = members[k].id;
    }
    return 0;
}

/* The ring's fields once unpacked: rebuilt from its owners, checked against its hash. */
static int decode_ring_body(json_int_t q, json_int_t n, json_int_t epoch, uint64_t hash,
                            json_t *members, json_t *owners, struct ring **out, char *why,
                            size_t cap)
{
    size_t n_members = json_array_size(members);
    struct ring_member *rm = calloc(n_members, sizeof *rm);
    const char **owner_ids = calloc((size_t)q, sizeof *owner_ids);
    int rc = -ENOMEM;
    if (!rm || !owner_ids)
        goto done;
    size_t k;
    json_t *v;
    json_array_foreach(members, k, v)
        if ((rc = decode_member(v, k, &rm[k], why, cap)) != 0)
            goto done;
    if ((rc = decode_owners(owners, rm, n_members, owner_ids, why, cap)) != 0)
        goto done;
    rc = ring_from_owners(rm, (uint32_t)n_members, (uint32_t)q, (uint32_t)n, owner_ids,
                          (uint64_t)epoch, out);
    if (rc == -EINVAL)
        refuse(why, cap, "ring: its members cannot form a ring (an id twice?)");
    if (rc == 0 && (*out)->hash != hash) {
        rc = refuse(why, cap, "ring: its owners hash to %016" PRIx64 ", not to the saved %016" PRIx64,
                    (*out)->hash, hash);
        ring_destroy(*out);
        *out = NULL;
    }
done:
    free(rm);
    free(owner_ids);
    return rc;
}

static int decode_ring(json_t *j, struct ring **out, char *why, size_t cap)
{
    json_int_t q, n, epoch;
    const char *hash_hex;
    json_t *members, *owners;
    json_error_t err;
    uint64_t hash;
    if (json_unpack_ex(j, &err, JSON_STRICT, "{s:I, s:I, s:I, s:s, s:o, s:o}", "partitions", &q,
                       "replicas", &n, "epoch", &epoch, "hash", &hash_hex, "members", &members,
                       "owners", &owners) != 0)
        return refuse(why, cap, "ring: %s", err.text);
    if (q < 1 || q > RING_Q_MAX || (q & (q - 1)))
        return refuse(why, cap, "ring: partitions %lld is not a power of two from 1 to %u",
                      (long long)q, RING_Q_MAX);
    size_t n_members = json_array_size(members);
    if (!json_is_array(members) || n_members == 0 || n_members > RING_MEMBERS_MAX)
        return refuse(why, cap, "ring: members must be an array of 1 to %u", RING_MEMBERS_MAX);
    if (n < 1 || (size_t)n > n_members)
        return refuse(why, cap, "ring: replicas %lld is not 1 to its %zu members", (long long)n,
                      n_members);
    if (epoch < 1)
        return refuse(why, cap, "ring: epoch %lld is below 1", (long long)epoch);
    if (!decode_hash(hash_hex, &hash))
        return refuse(why, cap, "ring: the hash is not 16 lowercase hex digits");
    if (!json_is_array(owners) || json_array_size(owners) != (size_t)q)
        return refuse(why, cap, "ring: owners must list one member index per partition (%lld)",
                      (long long)q);
    return decode_ring_body(q, n, epoch, hash, members, owners, out, why, cap);
}

/* One peer, the k-th. */
static int decode_peer(json_t *j, size_t k, struct cluster_state_peer *p, char *why, size_t cap)
{
    const char *id, *addr, *cluster, *admin, *zone, *state;
    size_t id_len, addr_len, cluster_len, admin_len, zone_len;
    json_int_t weight, version;
    json_error_t err;
    if (json_unpack_ex(j, &err, JSON_STRICT, "{s:s%, s:s%, s:s%, s:s%, s:I, s:s%, s:s, s:I}",
                       "id", &id, &id_len, "address", &addr, &addr_len, "cluster_address",
                       &cluster, &cluster_len, "admin_address", &admin, &admin_len, "weight",
                       &weight, "zone", &zone, &zone_len, "state", &state, "state_version",
                       &version) != 0)
        return refuse(why, cap, "peer %zu: %s", k, err.text);
    struct gossip_info *i = &p->info;
    if (!identity_valid(id, id_len) || !copy_str(i->id, sizeof i->id, id, id_len))
        return refuse(why, cap, "peer %zu: the id is not 40 lowercase hex digits", k);
    if (!copy_str(i->client_addr, sizeof i->client_addr, addr, addr_len) ||
        !copy_str(i->cluster_addr, sizeof i->cluster_addr, cluster, cluster_len) ||
        !copy_str(i->admin_addr, sizeof i->admin_addr, admin, admin_len) || !cluster_len)
        return refuse(why, cap, "peer %zu: an address is empty, longer than %d bytes or holds "
                      "a NUL", k, GOSSIP_ADDR_MAX);
    if (weight < 1 || weight > UINT32_MAX)
        return refuse(why, cap, "peer %zu: weight %lld is not 1 to %u", k, (long long)weight,
                      UINT32_MAX);
    i->weight = (uint32_t)weight;
    if (!copy_str(i->zone, sizeof i->zone, zone, zone_len))
        return refuse(why, cap, "peer %zu: the zone is longer than %d bytes or holds a NUL", k,
                      GOSSIP_ZONE_MAX);
    if (!decode_state(state, &p->state))
        return refuse(why, cap, "peer %zu: state \"%s\" is not joining, up, leaving or left", k,
                      state);
    if (version < 0)
        return refuse(why, cap, "peer %zu: state_version is negative", k);
    p->state_version = (uint64_t)version;
    return 0;
}

static int cmp_peer_id(const void *x, const void *y)
{
    return strcmp(((const struct cluster_state_peer *)x)->info.id,
                  ((const struct cluster_state_peer *)y)->info.id);
}

/* The peers (sorted by id here), none twice and none with this node's id. */
static int decode_peers(json_t *peers, struct cluster_state *out, char *why, size_t cap)
{
    size_t count = json_array_size(peers);
    if (!json_is_array(peers) || count >= MEMBER_MAX)
        return refuse(why, cap, "peers must be an array of fewer than %u", MEMBER_MAX);
    if (count == 0)
        return 0;
    out->peers = calloc(count, sizeof *out->peers);
    if (!out->peers)
        return -ENOMEM;
    size_t k;
    json_t *v;
    json_array_foreach(peers, k, v) {
        int rc = decode_peer(v, k, &out->peers[k], why, cap);
        if (rc != 0)
            return rc;
        if (strcmp(out->peers[k].info.id, out->id) == 0)
            return refuse(why, cap, "peer %zu is this node", k);
    }
    out->n_peers = (uint32_t)count;
    qsort(out->peers, count, sizeof *out->peers, cmp_peer_id);
    for (k = 1; k < count; k++)
        if (strcmp(out->peers[k - 1].info.id, out->peers[k].info.id) == 0)
            return refuse(why, cap, "peer %s is listed twice", out->peers[k].info.id);
    return 0;
}

/* The document's own fields, after its format and version were checked. */
static int decode_doc(json_t *doc, struct cluster_state *out, struct ring **ring, char *why,
                      size_t cap)
{
    const char *format, *id, *state;
    size_t id_len;
    json_int_t version, state_version, incarnation;
    json_t *jring, *jpeers;
    json_error_t err;
    int left = 0;
    if (json_unpack_ex(doc, &err, JSON_STRICT, "{s:s, s:I, s:s%, s:s, s:I, s:I, s?b, s:o, s:o}",
                       "format", &format, "version", &version, "id", &id, &id_len, "state",
                       &state, "state_version", &state_version, "incarnation", &incarnation,
                       "left_cluster", &left, "ring", &jring, "peers", &jpeers) != 0)
        return refuse(why, cap, "%s", err.text);
    if (!identity_valid(id, id_len))
        return refuse(why, cap, "the node id is not 40 lowercase hex digits");
    memcpy(out->id, id, IDENTITY_LEN + 1);
    if (!decode_state(state, &out->state))
        return refuse(why, cap, "state \"%s\" is not joining, up, leaving or left", state);
    if (state_version < 0 || incarnation < 0)
        return refuse(why, cap, "state_version or incarnation is negative");
    out->state_version = (uint64_t)state_version;
    out->incarnation = (uint64_t)incarnation;
    out->left_cluster = left != 0;
    int rc = decode_peers(jpeers, out, why, cap);
    return rc ? rc : decode_ring(jring, ring, why, cap);
}

int cluster_state_decode(const char *text, size_t len, struct cluster_state *out,
                         struct ring **ring, char *why, size_t why_cap)
{
    memset(out, 0, sizeof *out);
    *ring = NULL;
    json_error_t err;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!doc)
        return refuse(why, why_cap, "not JSON (line %d, column %d: %s)", err.line, err.column,
                      err.text);
    const char *format = NULL;
    json_int_t version = 0;
    int rc;
    if (json_unpack_ex(doc, &err, 0, "{s:s, s:I}", "format", &format, "version", &version) != 0 ||
        strcmp(format, CLUSTER_STATE_FORMAT) != 0)
        rc = refuse(why, why_cap, "not a ringkv cluster state (no \"format\": \"%s\" with a "
                    "\"version\")", CLUSTER_STATE_FORMAT);
    else if (version != CLUSTER_STATE_VERSION)
        rc = refuse(why, why_cap, "format version %lld; this ringkv reads version %d",
                    (long long)version, CLUSTER_STATE_VERSION);
    else
        rc = decode_doc(doc, out, ring, why, why_cap);
    json_decref(doc);
    if (rc != 0) {
        cluster_state_fini(out);
        ring_destroy(*ring);
        *ring = NULL;
        if (rc == -ENOMEM)
            snprintf(why, why_cap, "out of memory");
    }
    return rc;
}

/* ---- the file ---- */

static int path_of(char *out, size_t cap, const char *dir, const char *suffix)
{
    if ((size_t)snprintf(out, cap, "%s/%s%s", dir, CLUSTER_STATE_FILE, suffix) >= cap)
        return -ENAMETOOLONG;
    return 0;
}

/* Writes all of text to a new file at path, fsynced. */
static int write_synced(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text), done = 0;
    int rc = 0;
    while (rc == 0 && done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w > 0)
            done += (size_t)w;
        else if (w < 0 && errno != EINTR)
            rc = -errno;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

int cluster_state_write(const char *dir, const char *text)
{
    char path[4096], tmp[4096];
    int rc = path_of(path, sizeof path, dir, "");
    if (rc == 0)
        rc = path_of(tmp, sizeof tmp, dir, ".tmp");
    if (rc != 0)
        return rc;
    if ((rc = write_synced(tmp, text)) == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    rc = fsync(dfd) == 0 ? 0 : -errno;
    close(dfd);
    return rc;
}

/* Reads the whole file at path (at most CLUSTER_STATE_MAX_BYTES) into *out (free). */
static int read_file(const char *path, char **out, size_t *len, char *why, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        snprintf(why, cap, "cannot open it: %s", strerror(-rc));
        return rc;
    }
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int rc = fstat(fd, &st) == 0 ? 0 : -errno;
    if (rc != 0)
        snprintf(why, cap, "cannot stat it: %s", strerror(-rc));
    else if (!S_ISREG(st.st_mode))
        rc = refuse(why, cap, "not a regular file");
    else if ((uint64_t)st.st_size > CLUSTER_STATE_MAX_BYTES)
        rc = refuse(why, cap, "%lld bytes, more than the %u a state may have",
                    (long long)st.st_size, CLUSTER_STATE_MAX_BYTES);
    else if (!(buf = malloc((size_t)st.st_size + 1))) {
        rc = -ENOMEM;
        snprintf(why, cap, "out of memory");
    }
    while (rc == 0 && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r == 0)
            break; /* shorter than it was a moment ago: decoding says what is missing */
        if (r > 0)
            got += (size_t)r;
        else if (errno != EINTR) {
            rc = -errno;
            snprintf(why, cap, "cannot read it: %s", strerror(-rc));
        }
    }
    close(fd);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = got;
    return 0;
}

int cluster_state_load(const char *dir, struct cluster_state *out, struct ring **ring, char *why,
                       size_t why_cap)
{
    memset(out, 0, sizeof *out);
    *ring = NULL;
    char path[4096], *text = NULL;
    size_t len = 0;
    int rc = path_of(path, sizeof path, dir, "");
    if (rc != 0) {
        snprintf(why, why_cap, "the path is too long");
        return rc;
    }
    if ((rc = read_file(path, &text, &len, why, why_cap)) != 0)
        return rc;
    rc = cluster_state_decode(text, len, out, ring, why, why_cap);
    free(text);
    return rc;
}

int cluster_state_save(struct cluster_state_file *f, const struct member_table *t,
                       const struct ring *ring)
{
    if (!f->dir)
        return 0;
    struct cluster_state s;
    char *text = NULL;
    int rc = cluster_state_of(t, &s);
    if (rc == 0 && !(text = cluster_state_encode(&s, ring)))
        rc = -ENOMEM;
    cluster_state_fini(&s);
    uint64_t hash = text ? XXH3_64bits(text, strlen(text)) : 0;
    if (rc == 0 && hash == f->saved_hash && f->last_error == 0) {
        free(text);
        return 0;
    }
    if (rc == 0)
        rc = cluster_state_write(f->dir, text);
    free(text);
    f->last_error = rc;
    if (rc != 0)
        return rc;
    f->saved_hash = hash;
    return 1;
}

int cluster_state_check(const struct cluster_state *s, const struct ring *ring, const char *id,
                        uint32_t q, char *why, size_t why_cap)
{
    if (strcmp(s->id, id) != 0)
        return refuse(why, why_cap, "it is node %s's, and this node is %s", s->id, id);
    if (s->state != MEMBER_LEFT && s->n_peers && ring->q != q)
        return refuse(why, why_cap, "its cluster's ring has %u partitions and the partitions "
                      "setting is %u: a cluster keeps the Q it was made with (set partitions "
                      "%u)", ring->q, q, ring->q);
    return 0;
}

int cluster_state_restore(struct member_table *t, const struct cluster_state *s, uint64_t now_ms)
{
    bool left = s->state == MEMBER_LEFT;
    int rc = left ? member_restore_self(t, MEMBER_UP, s->state_version + 1, s->incarnation)
                  : member_restore_self(t, s->state, s->state_version, s->incarnation);
    if (rc == 0 && (left || s->left_cluster))
        member_restore_left(t);
    if (left)
        return rc;
    for (uint32_t i = 0; rc == 0 && i < s->n_peers; i++) {
        const struct cluster_state_peer *p = &s->peers[i];
        rc = member_restore_peer(t, &p->info, p->state, p->state_version, now_ms);
    }
    return rc;
}
