/* textfile.c — whole-file reads with a bound (see textfile.h). */
#include "textfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *textfile_read(const char *path, size_t max_bytes, size_t *len, char *err, size_t errsize)
{
    struct stat st;
    FILE *f = fopen(path, "r");
    if (!f || fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        snprintf(err, errsize, "%s", f && S_ISDIR(st.st_mode) ? "is a directory" : strerror(errno));
        if (f)
            fclose(f);
        return NULL;
    }
    size_t cap = 1 << 16, have = 0;
    char *text = malloc(cap + 1);
    while (text) {
        have += fread(text + have, 1, cap - have, f);
        if (have < cap || ferror(f) || have > max_bytes)
            break;
        char *bigger = realloc(text, cap * 2 + 1);
        if (!bigger) {
            free(text);
            text = NULL;
            break;
        }
        text = bigger;
        cap *= 2;
    }
    const char *why = !text ? strerror(ENOMEM) : ferror(f) ? strerror(EIO) : NULL;
    char too_big[48];
    if (!why && have > max_bytes) {
        snprintf(too_big, sizeof too_big, "larger than %zu MiB", max_bytes >> 20);
        why = too_big;
    }
    fclose(f);
    if (why) {
        snprintf(err, errsize, "%s", why);
        free(text);
        return NULL;
    }
    text[have] = '\0';
    *len = have;
    return text;
}

bool textbuf_put(struct textbuf *b, const char *bytes, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s)
            return false;
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, bytes, n);
    b->n += n;
    b->s[b->n] = '\0';
    return true;
}

size_t textbuf_utf8(unsigned long cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
