/* options.c — the option table's parser. Shared by the runtime (no allocation, no stdio,
 * may run before constructors) and the launcher. */
#include "options.h"

#include <string.h>

const struct option_info option_infos[] = {
#define OPTION_INFO(type, field, name, def, min, max, scope, choices, help) \
    {type, name, def, min, max, scope, choices, help},
    MEMTRACE_OPTION_TABLE(OPTION_INFO)
};
const size_t option_count = sizeof option_infos / sizeof option_infos[0];

void options_init(struct options *opts)
{
    memset(opts, 0, sizeof *opts);
#define OPTION_DEFAULT_OPT_BOOL(field, def) opts->field = (def) != 0;
#define OPTION_DEFAULT_OPT_INT(field, def) opts->field = (def);
#define OPTION_DEFAULT_OPT_CHOICE(field, def) opts->field = (def);
#define OPTION_DEFAULT_OPT_KINDS(field, def) opts->field = (unsigned)(def);
#define OPTION_DEFAULT_OPT_PATH(field, def) (void)(def);
#define OPTION_DEFAULT_OPT_PATHS(field, def) (void)(def);
#define OPTION_DEFAULT_OPT_GUARD(field, def) opts->field = (def);
#define OPTION_DEFAULT_OPT_BYTE(field, def) opts->field = (def);
#define OPTION_DEFAULT(type, field, name, def, ...) OPTION_DEFAULT_##type(field, def)
    MEMTRACE_OPTION_TABLE(OPTION_DEFAULT)
}

/* Writes "what 'value'" into err without snprintf (not safe inside malloc). */
static void set_error(char *err, size_t size, const char *what, const char *value, size_t len)
{
    size_t n = 0;
    if (size == 0)
        return;
    for (const char *s = what; *s && n + 1 < size; s++)
        err[n++] = *s;
    if (value) {
        const char *open = " '";
        for (const char *s = open; *s && n + 1 < size; s++)
            err[n++] = *s;
        for (size_t i = 0; i < len && n + 2 < size; i++)
            err[n++] = value[i];
        if (n + 1 < size)
            err[n++] = '\'';
    }
    err[n] = '\0';
}

static bool word_equals(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

static int parse_long(const char *s, size_t len, long *out)
{
    long v = 0;
    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* 0xNN or decimal. */
static int parse_byte(const char *s, size_t len, long *out)
{
    long v = 0;
    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        if (len > 4)
            return -1;
        for (size_t i = 2; i < len; i++) {
            char c = s[i];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
                    c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
    } else if (parse_long(s, len, &v) != 0) {
        return -1;
    }
    *out = v;
    return 0;
}

/* all | none | auto | sample:N */
static int parse_guard(const char *s, size_t len, long *out)
{
    if (word_equals(s, len, "all"))
        *out = GUARD_ALL;
    else if (word_equals(s, len, "none"))
        *out = GUARD_NONE;
    else if (word_equals(s, len, "auto"))
        *out = GUARD_AUTO;
    else if (len > 7 && memcmp(s, "sample:", 7) == 0 && parse_long(s + 7, len - 7, out) == 0 && *out >= 1)
        return 0;
    else
        return -1;
    return 0;
}

static int parse_bool(const char *s, size_t len, long *out)
{
    if (word_equals(s, len, "yes") || word_equals(s, len, "1") || word_equals(s, len, "true"))
        *out = 1;
    else if (word_equals(s, len, "no") || word_equals(s, len, "0") || word_equals(s, len, "false"))
        *out = 0;
    else
        return -1;
    return 0;
}

/* Index of `s` among the '|'-separated words of `choices`. */
static int parse_choice(const char *choices, const char *s, size_t len, long *out)
{
    long index = 0;
    for (const char *w = choices; *w; index++) {
        const char *end = strchr(w, '|');
        size_t wlen = end ? (size_t)(end - w) : strlen(w);
        if (wlen == len && memcmp(w, s, len) == 0) {
            *out = index;
            return 0;
        }
        if (!end)
            break;
        w = end + 1;
    }
    return -1;
}

/* "a,b", "all" or "none" as bits of the '|'-separated names of the set (choices), the
 * leak kinds' KIND_* bits when it has none. */
static int parse_kinds(const char *s, size_t len, const char *choices, long *out)
{
    const char *names = choices ? choices : "definite|indirect|possible|reachable";
    unsigned bits = 0;
    if (word_equals(s, len, "all")) {
        unsigned count = 1;
        for (const char *c = names; *c; c++)
            count += *c == '|';
        *out = (long)((1u << count) - 1);
        return 0;
    }
    if (word_equals(s, len, "none")) {
        *out = 0;
        return 0;
    }
    while (len > 0) {
        size_t wlen = 0;
        while (wlen < len && s[wlen] != ',')
            wlen++;
        long index;
        if (parse_choice(names, s, wlen, &index) != 0)
            return -1;
        bits |= 1u << index;
        s += wlen;
        len -= wlen;
        if (len > 0) {
            s++;
            len--;
            if (len == 0)
                return -1;
        }
    }
    *out = bits;
    return 0;
}

static const struct option_info *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < option_count; i++)
        if (word_equals(name, len, option_infos[i].name))
            return &option_infos[i];
    return NULL;
}

unsigned options_scope(const char *name, size_t name_len)
{
    const struct option_info *info = find_option(name, name_len);
    return info ? info->scope : 0;
}

/* True when the OPT_PATHS option `info` holds OPTION_PATHS_MAX paths already. */
static bool paths_full(const struct options *opts, const struct option_info *info)
{
#define OPTION_FULL_OPT_PATHS(field) return opts->field.count >= OPTION_PATHS_MAX;
#define OPTION_FULL_OPT_BOOL(field)
#define OPTION_FULL_OPT_INT(field)
#define OPTION_FULL_OPT_CHOICE(field)
#define OPTION_FULL_OPT_KINDS(field)
#define OPTION_FULL_OPT_PATH(field)
#define OPTION_FULL_OPT_GUARD(field)
#define OPTION_FULL_OPT_BYTE(field)
#define OPTION_FULL(type, field, option_name, ...) \
    if (strcmp(info->name, option_name) == 0) { OPTION_FULL_##type(field) }
    MEMTRACE_OPTION_TABLE(OPTION_FULL)
    return false;
}

/* Stores a parsed value into the struct field that belongs to `info`. */
static void store(struct options *opts, const struct option_info *info, long v,
                  const char *value, size_t value_len)
{
#define OPTION_STORE_OPT_BOOL(field) opts->field = v != 0;
#define OPTION_STORE_OPT_INT(field) opts->field = (int)v;
#define OPTION_STORE_OPT_CHOICE(field) opts->field = (int)v;
#define OPTION_STORE_OPT_KINDS(field) opts->field = (unsigned)v;
#define OPTION_STORE_OPT_PATHS(field) \
    memcpy(opts->field.path[opts->field.count], value, value_len); \
    opts->field.path[opts->field.count++][value_len] = '\0';
#define OPTION_STORE_OPT_GUARD(field) opts->field = (int)v;
#define OPTION_STORE_OPT_BYTE(field) opts->field = (int)v;
#define OPTION_STORE_OPT_PATH(field) \
    memcpy(opts->field, value, value_len); opts->field[value_len] = '\0';
#define OPTION_STORE(type, field, option_name, ...) \
    if (strcmp(info->name, option_name) == 0) { OPTION_STORE_##type(field) return; }
    MEMTRACE_OPTION_TABLE(OPTION_STORE)
}

int options_set(struct options *opts, const char *name, size_t name_len,
                const char *value, size_t value_len, char *err, size_t err_size)
{
    const struct option_info *info = find_option(name, name_len);
    long v = 0;
    int rc = 0;

    if (!info) {
        set_error(err, err_size, "unknown option", name, name_len);
        return -1;
    }
    switch (info->type) {
    case OPT_BOOL: rc = parse_bool(value, value_len, &v); break;
    case OPT_INT: rc = parse_long(value, value_len, &v); break;
    case OPT_CHOICE: rc = parse_choice(info->choices, value, value_len, &v); break;
    case OPT_KINDS: rc = parse_kinds(value, value_len, info->choices, &v); break;
    case OPT_PATH: rc = (value_len == 0 || value_len >= OPTION_PATH_MAX) ? -1 : 0; break;
    case OPT_PATHS:
        rc = (value_len == 0 || value_len >= OPTION_PATH_MAX || paths_full(opts, info)) ? -1 : 0;
        break;
    case OPT_GUARD: rc = parse_guard(value, value_len, &v); break;
    case OPT_BYTE: rc = parse_byte(value, value_len, &v); break;
    }
    if (rc == 0 && (info->type == OPT_INT || info->type == OPT_BYTE || info->type == OPT_GUARD) &&
        v != GUARD_AUTO && (v < info->min || v > info->max))
        rc = -1;
    if (rc != 0) {
        set_error(err, err_size, "bad value for option", name, name_len);
        return -1;
    }
    store(opts, info, v, value, value_len);
    return 0;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

int options_parse_string(struct options *opts, const char *text, char *err, size_t err_size)
{
    const char *s = text;
    while (*s) {
        while (is_blank(*s))
            s++;
        if (!*s)
            break;
        const char *word = s;
        while (*s && !is_blank(*s))
            s++;
        size_t len = (size_t)(s - word);
        if (len > 2 && word[0] == '-' && word[1] == '-') {
            word += 2;
            len -= 2;
        }
        const char *eq = memchr(word, '=', len);
        if (!eq) {
            set_error(err, err_size, "option needs key=value:", word, len);
            return -1;
        }
        size_t name_len = (size_t)(eq - word);
        if (options_set(opts, word, name_len, eq + 1, len - name_len - 1, err, err_size) != 0)
            return -1;
    }
    return 0;
}
