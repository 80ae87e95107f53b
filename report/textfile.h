/* textfile.h — text input for the reporter's readers: a whole file (a baseline, a valgrind
 * XML file, a suppression file) read into memory, refusing directories and files above a
 * size bound, so that none can be made to read forever; and a growing string buffer. */
#ifndef MEMTRACE_TEXTFILE_H
#define MEMTRACE_TEXTFILE_H

#include <stdbool.h>
#include <stddef.h>

/* The contents of path (NUL-terminated; *len without the NUL), or NULL with the reason in
 * err ("is a directory", "larger than N MiB", strerror). Free it with free(). */
char *textfile_read(const char *path, size_t max_bytes, size_t *len, char *err, size_t errsize);

/* A growing NUL-terminated string, as the readers build their text values. */
struct textbuf {
    char *s;
    size_t n, cap;
};

/* Appends n bytes; false when out of memory (the buffer is left as it was). */
bool textbuf_put(struct textbuf *b, const char *bytes, size_t n);

/* Writes code point cp as UTF-8 into out (4 bytes of room); returns the byte count. */
size_t textbuf_utf8(unsigned long cp, char *out);

#endif
