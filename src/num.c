/* num.c: numbers from request bytes (see num.h).
 * One parser of Redis's integer syntax serves the protocol (array and bulk
 * lengths) and the commands (INCRBY, EXPIRE, GETRANGE...), so both accept
 * and refuse exactly what Redis does. At most 19 digits are read, which
 * cannot overflow a uint64, before the range of int64 is checked. */
#include "num.h"

bool num_parse_i64(const char *p, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && p[0] == '-') {
        neg = true;
        i = 1;
    }
    /* 19 digits cannot overflow a uint64; 20 are past any int64 anyway. */
    if (n == i || n - i > 19)
        return false;
    if (p[i] == '0') {
        if (neg || n != 1)
            return false;
        *out = 0;
        return true;
    }
    uint64_t v = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned char)p[i] - (unsigned)'0';
        if (d > 9)
            return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v;
    }
    return true;
}
