/* fuzz_peer.c: libFuzzer target for peer_hs_decode(), the parser of the
 * cluster-secret handshake messages (HELLO, CHALLENGE, PROOF, ACCEPT,
 * RESET) that peer.c reads from datagrams and from the head of a
 * connection. The input is a stream of messages. Each is decoded until
 * GOSSIP_MORE or GOSSIP_BAD, checking the contract: OK consumes the header
 * and exactly its kind's body, every pointer it returns lies inside that
 * message and the kind's parts are there (the others NULL); MORE and BAD
 * consume nothing; every shorter prefix of an OK message, on an exact-size
 * heap copy (so AddressSanitizer sees any read past it), is MORE. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "peer.h"

static bool inside(const uint8_t *p, size_t len, const uint8_t *msg, size_t msg_len)
{
    return p >= msg && p + len <= msg + msg_len;
}

static void check_message(const uint8_t *msg, size_t used, const struct peer_hs_msg *m)
{
    CHECK(used >= 4 && msg[0] == PEER_HS_MAGIC && msg[1] == m->kind);
    CHECK(used == 4 + ((size_t)msg[2] | (size_t)msg[3] << 8));
    bool nonces = m->kind != PEER_RESET;
    bool proof = m->kind == PEER_PROOF || m->kind == PEER_ACCEPT;
    CHECK(nonces == (m->nonce_a != NULL));
    CHECK((nonces && m->kind != PEER_HELLO) == (m->nonce_b != NULL));
    CHECK(proof == (m->proof != NULL));
    CHECK((m->kind == PEER_RESET) == (m->tag != NULL));
    if (m->nonce_a)
        CHECK(inside(m->nonce_a, PEER_NONCE_LEN, msg, used));
    if (m->nonce_b)
        CHECK(inside(m->nonce_b, PEER_NONCE_LEN, msg, used));
    if (m->proof)
        CHECK(inside(m->proof, PEER_PROOF_LEN, msg, used));
    if (m->tag)
        CHECK(inside(m->tag, PEER_TAG_LEN, msg, used));
}

static void check_prefixes(const uint8_t *msg, size_t len)
{
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        CHECK(copy);
        memcpy(copy, msg, n);
        struct peer_hs_msg m;
        size_t used = 1;
        CHECK(peer_hs_decode(copy, n, &m, &used) == GOSSIP_MORE && used == 0);
        free(copy);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    for (unsigned k = 0; k < 16; k++) {
        struct peer_hs_msg m;
        size_t used = 1;
        enum gossip_status st = peer_hs_decode(data + off, size - off, &m, &used);
        if (st != GOSSIP_OK) {
            CHECK(used == 0);
            return 0;
        }
        CHECK(used <= size - off);
        check_message(data + off, used, &m);
        check_prefixes(data + off, used);
        off += used;
    }
    return 0;
}
