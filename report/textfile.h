/* textfile.h — reads a whole input file (a baseline, a valgrind XML file, a suppression
 * file) into memory, refusing directories and files above a size bound, so that every
 * reader of the reporter parses from one buffer and none can be made to read forever. */
#ifndef MEMTRACE_TEXTFILE_H
#define MEMTRACE_TEXTFILE_H

#include <stddef.h>

/* The contents of path (NUL-terminated; *len without the NUL), or NULL with the reason in
 * err ("is a directory", "larger than N MiB", strerror). Free it with free(). */
char *textfile_read(const char *path, size_t max_bytes, size_t *len, char *err, size_t errsize);

#endif
