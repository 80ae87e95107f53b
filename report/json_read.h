/* json_read.h — a small JSON reader for memtrace's own reports (--baseline, memtrace
 * compare): RFC 8259 values into a tree. Bounded: nesting depth, input size; anything
 * malformed is an error with its line, never a crash.
 *
 * Strings come back as C strings (a \u0000 escape is an error). render_json writes a byte
 * that is not UTF-8 as \u00XX; this reader turns \u0080..\u00ff back into that raw byte,
 * so names read back compare equal to the symbolizer's. Other escapes become UTF-8. */
#ifndef MEMTRACE_JSON_READ_H
#define MEMTRACE_JSON_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64
#define JSON_MAX_BYTES (1u << 30)

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY,
                 JSON_OBJECT };

struct json {
    enum json_type type;
    double number;              /* JSON_NUMBER */
    bool is_uint;               /* a non-negative integer that fits uint64 */
    uint64_t uint;
    char *string;               /* JSON_STRING */
    struct json *items;         /* JSON_ARRAY and JSON_OBJECT: the values, in order */
    char **keys;                /* JSON_OBJECT: the keys, parallel to items */
    size_t n;
};

/* Parses LEN bytes of TEXT (one value, blanks around it allowed). NULL when malformed or
 * out of memory, with ERR set to "line N: what is wrong". */
struct json *json_parse(const char *text, size_t len, char *err, size_t errsize);

/* Reads and parses PATH. NULL with ERR set (why the file cannot be read, or the parse error). */
struct json *json_read_file(const char *path, char *err, size_t errsize);

void json_free(struct json *value);

/* The value of KEY in OBJ (the last one when repeated), or NULL (also when OBJ is no object). */
const struct json *json_get(const struct json *obj, const char *key);
/* The string value of KEY in OBJ, or NULL when absent or not a string. */
const char *json_get_str(const struct json *obj, const char *key);
/* The unsigned integer value of KEY in OBJ, or DFLT. */
uint64_t json_get_uint(const struct json *obj, const char *key, uint64_t dflt);

#endif
