/* xml_read.h — a small XML reader for valgrind's --xml=yes output (protocol 4), for
 * `memtrace compare`: elements, their character data (entities and CDATA decoded) and
 * children. Attributes, comments, processing instructions and the DOCTYPE are read and
 * dropped. Bounded (depth, input size); anything malformed is an error with its line. */
#ifndef MEMTRACE_XML_READ_H
#define MEMTRACE_XML_READ_H

#include <stddef.h>

#define XML_MAX_DEPTH 256
#define XML_MAX_BYTES (1u << 30)

struct xml_node {
    char *name;
    char *text;                 /* the character data directly inside, concatenated */
    struct xml_node *children;
    size_t n;
};

/* The root element of LEN bytes of TEXT; NULL with ERR set to "line N: what is wrong". */
struct xml_node *xml_parse(const char *text, size_t len, char *err, size_t errsize);
/* Reads and parses PATH; NULL with ERR set. */
struct xml_node *xml_read_file(const char *path, char *err, size_t errsize);
void xml_free(struct xml_node *root);

/* The first child element of NODE named NAME, or NULL. */
const struct xml_node *xml_child(const struct xml_node *node, const char *name);
/* Its text, blanks around it trimmed in place at parse time; NULL when there is no such child. */
const char *xml_child_text(const struct xml_node *node, const char *name);

#endif
