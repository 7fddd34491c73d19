/*
 * options.c - "key=value" lists and byte sizes (contract in options.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "base/options.h"

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* Copy [b, e) without surrounding spaces into out; 0, or -1 if too long. */
static int copy_trimmed(const char *b, const char *e, char *out, size_t len) {
    while (b < e && is_space(*b)) {
        b++;
    }
    while (e > b && is_space(e[-1])) {
        e--;
    }
    if ((size_t)(e - b) >= len) {
        return -1;
    }
    memcpy(out, b, (size_t)(e - b));
    out[e - b] = '\0';
    return 0;
}

int dv__kv_next(const char **cursor, char *key, size_t key_len, char *val,
                size_t val_len) {
    const char *p = *cursor;
    while (p && (*p == ',' || is_space(*p))) {
        p++;
    }
    if (!p || !*p) {
        return 0;
    }
    const char *end = strchr(p, ',');
    if (!end) {
        end = p + strlen(p);
    }
    const char *eq = memchr(p, '=', (size_t)(end - p));
    const char *kend = eq ? eq : end;
    if (copy_trimmed(p, kend, key, key_len) != 0 || !key[0] ||
        copy_trimmed(eq ? eq + 1 : end, end, val, val_len) != 0) {
        *cursor = p;
        return -1;
    }
    *cursor = end;
    return 1;
}

int dv__parse_size(const char *s, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') {
        return -1;
    }
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    unsigned shift = 0;
    switch (*s) {
    case '\0':
        break;
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    case 't':
    case 'T':
        shift = 40;
        break;
    default:
        return -1;
    }
    if (*s && s[1] != '\0') {
        return -1;
    }
    if (shift && v > (UINT64_MAX >> shift)) {
        return -1;
    }
    *out = v << shift;
    return 0;
}
