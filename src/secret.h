/* secret.h: comparing a secret (a password) with a client's guess.
 * Threads: a pure function, any thread.
 * Errors: none; the answer is the result. */
#ifndef RINGKV_SRC_SECRET_H
#define RINGKV_SRC_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/* True when guess[0..guess_len) equals secret[0..secret_len). Takes the same
 * time wherever the first difference is and whatever the guess's length:
 * it always reads secret_len bytes of each, so timing tells a client nothing
 * about the secret but its length. */
bool secret_equal(const char *secret, size_t secret_len, const char *guess, size_t guess_len);

#endif
