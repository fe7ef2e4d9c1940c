/* secret.c: comparison of a secret with a guess in constant time (see
 * secret.h), for AUTH and HELLO ... AUTH.
 * A plain memcmp stops at the first differing byte, and a length check
 * first stops at once for a wrong length, so the reply time would tell a
 * client how much of its guess is right. Here the loop always runs over the
 * secret's whole length, comparing it with the guess repeated as often as
 * needed (a guess of another length is wrong anyway: the lengths' difference
 * is folded into the same accumulator), and nothing in the loop branches on
 * the bytes. The time is therefore constant by construction: it depends on
 * the secret's length only. */
#include "secret.h"

#include <stdint.h>

bool secret_equal(const char *secret, size_t secret_len, const char *guess, size_t guess_len)
{
    /* volatile: the compiler may not turn the accumulation into an early
     * exit once it is non-zero. */
    volatile uint64_t diff = (uint64_t)(secret_len ^ guess_len);
    for (size_t i = 0; i < secret_len; i++) {
        unsigned char g = guess_len ? (unsigned char)guess[i % guess_len] : 0;
        diff |= (unsigned char)secret[i] ^ g;
    }
    return diff == 0;
}
