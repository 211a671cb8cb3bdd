/* tok_utf8_repair.c - text that may not be UTF-8 made valid for JSON and terminals (decoded
 * byte-fallback pieces can end inside a character). */
#include "libquant/lq_tokenizer.h"

#include <string.h>

/* Length of a valid UTF-8 sequence at s (n bytes left), 0 if invalid: no overlongs, no
 * surrogates, nothing above U+10FFFF (what jansson accepts). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0x7Fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

size_t lq_utf8_repair(const char *in, size_t len, char *out, bool *lossy) {
    size_t o = 0;
    bool bad = false;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq((const unsigned char *)in + i, len - i);
        if (k == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
            bad = true;
        } else {
            memcpy(out + o, in + i, k);
            o += k;
            i += k;
        }
    }
    if (lossy) *lossy = bad;
    return o;
}
