/* regex.c — `=~` and `!~`: POSIX extended regular expressions, compiled once per process. */
#define _GNU_SOURCE
#include <regex.h>
#include <stdatomic.h>
#include <string.h>

#include "utrace_rt.h"

/* A site's compiled pattern; the region never holds it (regex_t has pointers),
 * so every process compiles its own copy on first use. */
int utr_regex_match(utr_regex_site *site, const char *pattern, const char *subject)
{
    int st = atomic_load_explicit(&site->state, memory_order_acquire);
    if (UTR_UNLIKELY(st != 2)) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&site->state, &expected, 1)) {
            site->ok = regcomp(&site->rx, pattern, REG_EXTENDED) == 0;
            atomic_store_explicit(&site->state, 2, memory_order_release);
        } else {
            while (atomic_load_explicit(&site->state, memory_order_acquire) != 2)
                ;
        }
    }
    if (!site->ok)
        return -1;
    return regexec(&site->rx, subject, 0, NULL, 0) == 0;
}
