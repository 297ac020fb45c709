/* str.c — bounded string helpers (MAXSTRINGLEN includes the NUL). */
#include "rt_internal.h"

void utr_strcpy(char *dst, const char *src)
{
    size_t n = strnlen(src, MAXSTRINGLEN - 1);
    memmove(dst, src, n);
    dst[n] = 0;
}

void utr_strcat(char *dst, const char *src)
{
    size_t d = strnlen(dst, MAXSTRINGLEN - 1);
    size_t n = strnlen(src, MAXSTRINGLEN - 1 - d);
    memmove(dst + d, src, n);
    dst[d + n] = 0;
}

void utr_ltoa(char *dst, int64_t v)
{
    char tmp[24];
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    int i = 0, j = 0;
    do {
        tmp[i++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        dst[j++] = '-';
    while (i > 0)
        dst[j++] = tmp[--i];
    dst[j] = 0;
}
