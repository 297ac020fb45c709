/* usymtab.c — the symbol table the tracer publishes in the region, for in-target usymname(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utrace_rt.h"
#include "rt_internal.h"

/* usymname(), usymdata(), umodname(), sprint_ubacktrace() and sprint_usyms()
 * return strings a script may compare or use as map keys, so they are answered
 * in the target when they can be: the tracer (utrace_py/run/usyms.py) writes the
 * function symbols of every module of the traced process, sorted by runtime
 * address, into one half of a double buffer and then makes it the active one.
 * A half being rewritten has an odd sequence count; a reader that sees it
 * change (or finds no table for its own process, or an address outside every
 * module) falls back to the token the tracer expands when printing, and marks
 * the table stale so that the tracer reads the process's maps again. */

typedef struct {
    uint32_t seq;
    int32_t pid;
    uint32_t nsym, nmod;
} _usym_half;

typedef struct {
    uint64_t lo, hi;
    uint32_t name, pad;
} _usym_mod;

typedef struct {
    uint64_t addr;
    uint32_t size, name;
} _usym_ent;

int32_t _utr_usym_wanted;

void utr_usymtab_want(void)
{
    _utr_usym_wanted = 1;
}

uint64_t utr_usymtab_bytes(void)
{
    return _utr_usym_wanted ? (uint64_t)UTR_USYMTAB_BYTES : 0;
}

static _usym_half *_utr_half(int32_t i)
{
    return UTR_AT(_usym_half, UTR_HDR->usymtab_off + (uint64_t)i * UTR_USYMTAB_BYTES);
}

uint64_t utr_usymtab_begin(void)
{
    int32_t next;
    _usym_half *h;
    if (!utr_base || !UTR_HDR->usymtab_off)
        return 0;
    next = __atomic_load_n(&UTR_HDR->usym_active, __ATOMIC_ACQUIRE) == 1 ? 1 : 0;
    h = _utr_half(next);
    __atomic_store_n(&h->seq, h->seq | 1u, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return UTR_HDR->usymtab_off + (uint64_t)next * UTR_USYMTAB_BYTES;
}

void utr_usymtab_commit(void)
{
    int32_t next = __atomic_load_n(&UTR_HDR->usym_active, __ATOMIC_ACQUIRE) == 1 ? 1 : 0;
    _usym_half *h = _utr_half(next);
    __atomic_store_n(&h->seq, (h->seq | 1u) + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&UTR_HDR->usym_active, next + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&UTR_HDR->usym_stale, 0, __ATOMIC_RELEASE);
}

int32_t utr_usymtab_wanted(void)
{
    if (!_utr_usym_wanted || !utr_base || !UTR_HDR->usymtab_off)
        return 0;
    return 1 | (__atomic_load_n(&UTR_HDR->usym_stale, __ATOMIC_ACQUIRE) ? 2 : 0);
}

/* The active half for this process and its sequence count, or NULL. */
static const _usym_half *_utr_usym_table(uint32_t *seq)
{
    int32_t a;
    const _usym_half *h;
    if (!utr_base || !UTR_HDR->usymtab_off || !utr_uregs())
        return NULL;
    a = __atomic_load_n(&UTR_HDR->usym_active, __ATOMIC_ACQUIRE);
    if (a != 1 && a != 2)
        return NULL;
    h = _utr_half(a - 1);
    *seq = __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE);
    if ((*seq & 1) || h->pid != utr_pid())
        return NULL;
    return h;
}

static const _usym_mod *_utr_usym_mod(const _usym_half *h, uint64_t a)
{
    const _usym_mod *m = (const _usym_mod *)(h + 1);
    uint32_t i;
    for (i = 0; i < h->nmod; i++)
        if (a >= m[i].lo && a < m[i].hi)
            return &m[i];
    return NULL;
}

static const _usym_ent *_utr_usym_sym(const _usym_half *h, uint64_t a)
{
    const _usym_ent *e = (const _usym_ent *)((const _usym_mod *)(h + 1) + h->nmod);
    uint32_t lo = 0, hi = h->nsym;
    if (!hi || a < e[0].addr)
        return NULL;
    while (hi - lo > 1) {  /* the last entry starting at or below a */
        uint32_t mid = lo + (hi - lo) / 2;
        if (e[mid].addr <= a)
            lo = mid;
        else
            hi = mid;
    }
    return a < e[lo].addr + (e[lo].size ? e[lo].size : 1) ? &e[lo] : NULL;
}

static size_t _utr_cat(char *dst, size_t at, const char *s)
{
    size_t n = strlen(s);
    if (at >= MAXSTRINGLEN - 1)
        return at;
    if (n > MAXSTRINGLEN - 1 - at)
        n = MAXSTRINGLEN - 1 - at;
    memcpy(dst + at, s, n);
    dst[at + n] = 0;
    return at + n;
}

/* One address in the format of `kind` appended at dst+at; -1 when the table
 * cannot answer (the address is in no module it lists). */
static long _utr_usym_fmt(const _usym_half *h, char *dst, size_t at, int kind, uint64_t a, int ret)
{
    const char *base = (const char *)h;
    const _usym_mod *m = _utr_usym_mod(h, ret ? a - 1 : a);
    const _usym_ent *e;
    char num[64];
    if (!m)
        return -1;
    if (kind == 'M')
        return (long)_utr_cat(dst, at, base + m->name);
    e = _utr_usym_sym(h, ret ? a - 1 : a);
    if (kind == 'N') {
        if (e)
            return (long)_utr_cat(dst, at, base + e->name);
        snprintf(num, sizeof num, "0x%llx", (unsigned long long)a);
        return (long)_utr_cat(dst, at, num);
    }
    if (!e) {
        snprintf(num, sizeof num, kind == 'S' ? "0x%llx\n" : "0x%llx", (unsigned long long)a);
        return (long)_utr_cat(dst, at, num);
    }
    at = _utr_cat(dst, at, base + e->name);
    snprintf(num, sizeof num, kind == 'S' ? "+0x%llx" : "+0x%llx/0x%llx",
             (unsigned long long)(a - e->addr), (unsigned long long)e->size);
    at = _utr_cat(dst, at, num);
    if (kind == 'S') {
        const char *slash = strrchr(base + m->name, '/');
        at = _utr_cat(dst, at, " [");
        at = _utr_cat(dst, at, slash ? slash + 1 : base + m->name);
        return (long)_utr_cat(dst, at, "]\n");
    }
    at = _utr_cat(dst, at, " [");
    at = _utr_cat(dst, at, base + m->name);
    return (long)_utr_cat(dst, at, "]");
}

static void _utr_usym_fallback(char *dst, int kind, const char *hexlist, int64_t addr)
{
    if (utr_base && UTR_HDR->usymtab_off && utr_uregs())
        __atomic_store_n(&UTR_HDR->usym_stale, 1, __ATOMIC_RELEASE);
    utr_usym_token(dst, kind, hexlist, addr);
}

void utr_usym_text(char *dst, int kind, int64_t addr)
{
    uint32_t seq;
    const _usym_half *h = _utr_usym_table(&seq);
    dst[0] = 0;
    if (h && _utr_usym_fmt(h, dst, 0, kind, (uint64_t)addr, 0) >= 0 &&
        __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE) == seq)
        return;
    _utr_usym_fallback(dst, kind, NULL, addr);
}

/* sprint_ubacktrace ('S': "sym+0xoff [module]" lines) and sprint_usyms ('Y':
 * " ADDR : usymdata" lines) of the addresses in hexlist; addresses after the
 * first are return addresses, looked up one byte back. */
void utr_usym_lines(char *dst, int kind, const char *hexlist)
{
    uint32_t seq;
    const _usym_half *h = _utr_usym_table(&seq);
    const char *p = hexlist;
    size_t at = 0;
    int i = 0;
    dst[0] = 0;
    while (h && *p) {
        const char *w = p;
        char *end;
        uint64_t a;
        long r;
        while (*w == ' ')
            w++;
        if (!*w)
            break;
        a = strtoull(w, &end, 16);
        if (end == w)
            break;
        if (kind == 'Y') {
            at = _utr_cat(dst, at, " ");
            dst[at] = 0;
            if (at + (size_t)(end - w) < MAXSTRINGLEN - 1) {
                memcpy(dst + at, w, (size_t)(end - w));
                at += (size_t)(end - w);
                dst[at] = 0;
            }
            at = _utr_cat(dst, at, " : ");
            r = _utr_usym_fmt(h, dst, at, 'D', a, i > 0);
            if (r >= 0)
                r = (long)_utr_cat(dst, (size_t)r, "\n");
        } else {
            r = _utr_usym_fmt(h, dst, at, 'S', a, i > 0);
        }
        if (r < 0) {
            h = NULL;
            break;
        }
        at = (size_t)r;
        p = end;
        i++;
    }
    if (h && __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE) == seq) {
        if (kind == 'S' && at > 0 && dst[at - 1] == '\n')
            dst[at - 1] = 0;  /* stap copies all but the last newline */
        return;
    }
    _utr_usym_fallback(dst, kind, hexlist, 0);
}
