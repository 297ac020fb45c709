/* ownlibc.c — the string and memory functions the runtime and compiled scripts call,
 * bound inside the handler object so they never reach the C library's.
 *
 * Handlers run inside the traced program, which a script may probe anywhere in libc
 * (process.library("libc.so.6").function("*")).  A libc memcpy on the trap tier
 * would then raise SIGTRAP from our own code -- a ptrace stop per copy, and death in
 * a thread that blocks signals (pthread_create's new thread does, for a while)
 * (T-14).  Hidden definitions here win at link time over the C library's for every
 * call in this object, including the ones GCC emits for struct copies.
 */
#pragma GCC optimize("no-tree-loop-distribute-patterns") /* or the loops become calls */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define OWN __attribute__((visibility("hidden")))

OWN void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    for (; n >= 8; n -= 8, d += 8, s += 8) {
        uint64_t w;
        __builtin_memcpy(&w, s, 8); /* a single unaligned load: no call */
        __builtin_memcpy(d, &w, 8);
    }
    while (n--)
        *d++ = *s++;
    return dst;
}

OWN void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d == s || n == 0)
        return dst;
    if (d < s || d >= s + n)
        return memcpy(dst, src, n);
    while (n--)
        d[n] = s[n];
    return dst;
}

OWN void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    uint64_t w = 0x0101010101010101ull * (unsigned char)c;
    for (; n >= 8; n -= 8, d += 8)
        __builtin_memcpy(d, &w, 8);
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

OWN int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

OWN void *memchr(const void *p, int c, size_t n)
{
    const unsigned char *s = p;
    for (; n; n--, s++)
        if (*s == (unsigned char)c)
            return (void *)s;
    return NULL;
}

OWN size_t strlen(const char *s)
{
    const char *p = s;
    while (*p)
        p++;
    return (size_t)(p - s);
}

OWN size_t strnlen(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n])
        n++;
    return n;
}

OWN int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

OWN int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b)
            return (unsigned char)*a - (unsigned char)*b;
        if (!*a)
            return 0;
    }
    return 0;
}

OWN char *strchr(const char *s, int c)
{
    for (;; s++) {
        if (*s == (char)c)
            return (char *)s;
        if (!*s)
            return NULL;
    }
}

OWN char *strrchr(const char *s, int c)
{
    const char *last = NULL;
    for (;; s++) {
        if (*s == (char)c)
            last = s;
        if (!*s)
            return (char *)last;
    }
}

OWN char *strstr(const char *h, const char *n)
{
    size_t k = strlen(n);
    if (!k)
        return (char *)h;
    for (; *h; h++)
        if (*h == *n && strncmp(h, n, k) == 0)
            return (char *)h;
    return NULL;
}
