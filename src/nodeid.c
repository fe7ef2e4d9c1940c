/* nodeid.c: a node id between its hex and byte forms (see nodeid.h). Only
 * lowercase digits are taken, so that one id has one spelling. */
#include "nodeid.h"

static int nodeid_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool nodeid_from_hex(const char *hex, uint8_t out[NODEID_BYTES])
{
    for (unsigned i = 0; i < NODEID_BYTES; i++) {
        int hi = nodeid_digit(hex[2 * i]);
        int lo = hi < 0 ? -1 : nodeid_digit(hex[2 * i + 1]);
        if (lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return hex[NODEID_HEX] == '\0';
}

void nodeid_to_hex(const uint8_t id[NODEID_BYTES], char out[NODEID_HEX + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < NODEID_BYTES; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[NODEID_HEX] = '\0';
}
