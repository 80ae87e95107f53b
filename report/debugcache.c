/* debugcache.c — inflated copies of compressed debug files (see debugcache.h). */
#include "debugcache.h"

#include <dirent.h>
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUILD_ID_HEX_MAX 129
#define DAY_SECONDS 86400
/* A copy no report used for this long goes when the next one is written (each libc
 * update leaves one behind). */
#define UNUSED_DAYS_MAX 30

static bool cache_dir(const char *option, char *out, size_t cap)
{
    const char *env;
    int n = -1;
    if (option) {
        if (*option && strcmp(option, "no") != 0)
            n = snprintf(out, cap, "%s", option);
    } else if ((env = getenv("XDG_CACHE_HOME")) && *env == '/') {
        n = snprintf(out, cap, "%s/memtrace/debug", env);
    } else if ((env = getenv("HOME")) && *env == '/') {
        n = snprintf(out, cap, "%s/.cache/memtrace/debug", env);
    }
    return n > 0 && (size_t)n < cap;
}

static bool make_dirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        bool made = mkdir(path, 0755) == 0 || errno == EEXIST;
        *p = '/';
        if (!made)
            return false;
    }
    return mkdir(path, 0755) == 0 || errno == EEXIST;
}

static bool hex_of(const unsigned char *id, size_t len, char *hex)
{
    if (len == 0 || len * 2 >= BUILD_ID_HEX_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    return true;
}

/* ELF's build-id in hex; false when it has none. */
static bool build_id_hex(Elf *elf, char *hex)
{
    const void *id;
    ssize_t len = dwelf_elf_gnu_build_id(elf, &id);
    return len > 0 && hex_of(id, (size_t)len, hex);
}

static bool has_compressed_dwarf(Elf *elf)
{
    size_t names;
    if (elf_getshdrstrndx(elf, &names) != 0)
        return false;
    for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn)) != NULL;) {
        GElf_Shdr shdr;
        const char *name;
        if (gelf_getshdr(scn, &shdr) && (shdr.sh_flags & SHF_COMPRESSED) &&
            (name = elf_strptr(elf, names, shdr.sh_name)) && strncmp(name, ".debug_", 7) == 0)
            return true;
    }
    return false;
}

/* A copy written earlier, checked to be the one wanted (a file of another name or a
 * broken one is left alone, not used). */
static int open_cached(const char *path, const char *hex)
{
    char have[BUILD_ID_HEX_MAX];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    bool same = elf && build_id_hex(elf, have) && strcmp(have, hex) == 0 && !has_compressed_dwarf(elf);
    elf_end(elf);
    if (!same) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool copy_file(int from, int to)
{
    char buf[1 << 16];
    off_t at = 0;
    ssize_t n;
    while ((n = pread(from, buf, sizeof buf, at)) > 0) {
        for (ssize_t done = 0, w; done < n; done += w)
            if ((w = write(to, buf + done, (size_t)(n - done))) <= 0)
                return false;
        at += n;
    }
    return n == 0;
}

/* Writes the inflated copy of the file on fd as path, through a temporary name so that a
 * reader never sees half a file (two reports writing at once each rename a whole copy).
 * The temporary file must be new: nothing planted at its name is followed or truncated. */
static bool write_inflated(int fd, const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof tmp)
        return false;
    int out = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (out < 0)
        return false;
    Elf *elf = copy_file(fd, out) ? elf_begin(out, ELF_C_RDWR, NULL) : NULL;
    bool ok = elf != NULL;
    for (Elf_Scn *scn = NULL; ok && (scn = elf_nextscn(elf, scn)) != NULL;) {
        GElf_Shdr shdr;
        ok = gelf_getshdr(scn, &shdr) && (!(shdr.sh_flags & SHF_COMPRESSED) || elf_compress(scn, 0, 0) >= 0);
    }
    ok = ok && elf_update(elf, ELF_C_WRITE) >= 0;
    elf_end(elf);
    ok = close(out) == 0 && ok && rename(tmp, path) == 0;
    if (!ok)
        unlink(tmp);
    return ok;
}

/* A copy in use has its time set, at most once a day, so that pruning spares it. */
static void mark_used(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && time(NULL) - st.st_mtime > DAY_SECONDS)
        futimens(fd, NULL);
}

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n > k && strcmp(name + n - k, suffix) == 0;
}

/* Removes copies unused for UNUSED_DAYS_MAX days, and temporary files a report that died
 * while writing left (a day old). */
static void prune(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    time_t now = time(NULL);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        time_t age = now - st.st_mtime;
        if ((has_suffix(e->d_name, ".debug") && age > UNUSED_DAYS_MAX * DAY_SECONDS) ||
            (has_suffix(e->d_name, ".tmp") && age > DAY_SECONDS))
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

int debugcache_open(const char *option, const unsigned char *build_id, size_t len, char **path)
{
    char dir[PATH_MAX], hex[BUILD_ID_HEX_MAX], name[PATH_MAX];
    elf_version(EV_CURRENT);
    if (!hex_of(build_id, len, hex) || !cache_dir(option, dir, sizeof dir) ||
        snprintf(name, sizeof name, "%s/%s.debug", dir, hex) >= (int)sizeof name)
        return -1;
    int fd = open_cached(name, hex);
    if (fd >= 0 && !(*path = strdup(name))) {
        close(fd);
        return -1;
    }
    if (fd >= 0)
        mark_used(fd);
    return fd;
}

void debugcache_store(const char *option, int fd)
{
    char dir[PATH_MAX], hex[BUILD_ID_HEX_MAX], name[PATH_MAX];
    elf_version(EV_CURRENT);
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    bool worth = elf && build_id_hex(elf, hex) && has_compressed_dwarf(elf);
    elf_end(elf);
    if (worth && cache_dir(option, dir, sizeof dir) &&
        snprintf(name, sizeof name, "%s/%s.debug", dir, hex) < (int)sizeof name && make_dirs(dir) &&
        write_inflated(fd, name))
        prune(dir);
}
