/* debugcache.h — a cache of separate debug files with their DWARF sections inflated.
 * Debian's debug packages (libc6-dbg, *-dbgsym) compress those sections, and libdw
 * inflates every one of them when it opens the file: for libc's, 40 ms and 10 MB on every
 * report that shows a libc frame, most of a small program's report. The first report
 * writes the inflated copy, named by build-id, and later ones map it. A copy unused for
 * 30 days is removed when another is written.
 * Where: --debug-cache=DIR (--debug-cache=no turns the cache off), else
 * $XDG_CACHE_HOME/memtrace/debug, else ~/.cache/memtrace/debug. Any failure (no home,
 * a read-only disk, a full one) leaves the original file in use: the cache only saves
 * time, it never changes what a report says. */
#ifndef MEMTRACE_DEBUGCACHE_H
#define MEMTRACE_DEBUGCACHE_H

#include <stddef.h>

/* option: --debug-cache as given (a directory, "no"), or NULL for the default place. */
/* The inflated copy for this build-id, or -1 when there is none (yet) or no cache;
 * *path then gets its name (malloc'd). */
int debugcache_open(const char *option, const unsigned char *build_id, size_t len, char **path);
/* Writes the inflated copy of the debug file open on fd, if it has compressed DWARF and a
 * build-id, for the next report. fd's offset is left alone. */
void debugcache_store(const char *option, int fd);

#endif
