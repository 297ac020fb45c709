/* kcompat.h — what the runtime's freestanding C files need from libc, from the kernel.
 *
 * native/src's map, stat, format, string, lock and region code is compiled
 * unchanged into the module: the shim/ directory comes first on the include
 * path and maps every libc header those files include to this one. */
#ifndef UTRACE_KCOMPAT_H
#define UTRACE_KCOMPAT_H

#include <linux/types.h>
#include <linux/kernel.h>
#include <linux/limits.h>
#include <linux/string.h>
#include <linux/slab.h>
#include <linux/delay.h>
#include <linux/errno.h>
#include <linux/smp.h>

#ifndef INT64_C
#define INT64_C(x) (x##LL)
#define UINT64_C(x) (x##ULL)
#endif
#ifndef INT64_MAX
#define INT64_MAX S64_MAX
#define INT64_MIN S64_MIN
#define UINT64_MAX U64_MAX
#define INT32_MAX S32_MAX
#define INT32_MIN S32_MIN
#define UINT32_MAX U32_MAX
#endif

/* Probe handlers run with interrupts off: every allocation must be atomic. */
#define malloc(n) kmalloc((n), GFP_ATOMIC)
#define free(p) kfree(p)
#define strtoll(s, e, b) simple_strtoll((s), (e), (b))

/* No regular expressions in the kernel runtime yet: =~ reports an error. */
typedef struct { int unused; } regex_t;

#endif
