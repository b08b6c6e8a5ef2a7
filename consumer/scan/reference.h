/*
 * reference: whether a string is an image reference by the distribution
 * grammar (the one docker and containerd parse), name[:tag][@digest]:
 *
 *   name       [domain "/"] path-component ("/" path-component)*
 *   domain     host [":" port]; host: domain-component ("." ...)* or
 *              "[" IPv6 "]"; domain-component [A-Za-z0-9] or
 *              [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]; port [0-9]+
 *   path-comp  [a-z0-9]+ (separator [a-z0-9]+)*, separator "." | "_" |
 *              "__" | "-"+
 *   tag        [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest     algorithm ":" hex; algorithm [A-Za-z][A-Za-z0-9]* joined
 *              by [+._-]; hex [0-9a-fA-F]{32,}
 *
 * and the name at most 255 bytes. The exec backend refuses a {ref} that
 * is not one before it reaches a tool's argv (scan/backend_exec.c).
 */
#ifndef SBOMD_SCAN_REFERENCE_H
#define SBOMD_SCAN_REFERENCE_H

#include <stdbool.h>

#define REFERENCE_NAME_MAX 255

bool reference_valid(const char *s);

#endif
