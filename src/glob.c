/* glob.c: Redis-style glob matching (see glob.h).
 * The matcher walks pattern and string together. Every token other than '*'
 * consumes exactly one byte of the string, so one backtracking point is
 * enough: the position just after the most recent '*' and the string offset
 * it was tried at. On a mismatch the star absorbs one more byte and matching
 * resumes from there; an earlier star never needs to be revisited, because
 * whatever it could absorb the later star can absorb too. That bounds the
 * work at pattern length times string length.
 * Bracket classes follow Redis's reading exactly, quirks included: a ']'
 * right after '[' (or '[^') closes an empty class, "x-y" is a range whenever
 * two more bytes follow the 'x' (even if the second is ']'), and a class the
 * pattern never closes runs to the end of the pattern. */
#include "glob.h"

/* Matches one class "[...]" starting just after its '['. Returns the pattern
 * offset just past the class and sets *hit to whether byte c is in it. */
static size_t class_match(const unsigned char *p, size_t plen, size_t i, unsigned char c, bool *hit)
{
    bool negate = i < plen && p[i] == '^';
    bool in = false;
    if (negate)
        i++;
    while (i < plen && p[i] != ']') {
        if (p[i] == '\\' && i + 1 < plen) {
            i++;
            in |= p[i] == c;
        } else if (i + 2 < plen && p[i + 1] == '-') {
            unsigned char lo = p[i], hi = p[i + 2];
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
            in |= c >= lo && c <= hi;
            i += 2;
        } else {
            in |= p[i] == c;
        }
        i++;
    }
    if (i < plen)
        i++; /* the closing ']' */
    *hit = in != negate;
    return i;
}

/* Matches the single-byte token at p[i] against c. Returns the offset after
 * the token, or 0 when it does not match (a token never ends at offset 0). */
static size_t token_match(const unsigned char *p, size_t plen, size_t i, unsigned char c)
{
    bool hit;
    switch (p[i]) {
    case '?':
        return i + 1;
    case '[':
        i = class_match(p, plen, i + 1, c, &hit);
        return hit ? i : 0;
    case '\\':
        if (i + 1 < plen)
            i++;
        return p[i] == c ? i + 1 : 0;
    default:
        return p[i] == c ? i + 1 : 0;
    }
}

bool glob_match(const char *pat, size_t plen, const char *str, size_t slen)
{
    const unsigned char *p = (const unsigned char *)pat;
    const unsigned char *s = (const unsigned char *)str;
    size_t pi = 0, si = 0;
    size_t star_p = 0, star_s = 0;
    bool have_star = false;

    while (si < slen) {
        if (pi < plen && p[pi] == '*') {
            while (pi < plen && p[pi] == '*')
                pi++;
            if (pi == plen)
                return true;
            have_star = true;
            star_p = pi;
            star_s = si;
            continue;
        }
        size_t next = pi < plen ? token_match(p, plen, pi, s[si]) : 0;
        if (next != 0) {
            pi = next;
            si++;
            continue;
        }
        if (!have_star)
            return false;
        pi = star_p;
        si = ++star_s;
    }
    while (pi < plen && p[pi] == '*')
        pi++;
    return pi == plen;
}
