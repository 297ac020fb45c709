/* usyms.c — ubacktrace() strings and the symbol tokens the tracer expands while draining. */
#include <stdint.h>
#include <string.h>

#include "utrace_rt.h"
#include "rt_internal.h"

/* Handlers run in the target, which has no symbol tables: functions that return
 * symbol text (usymname, sprint_ubacktrace...) return a token instead,
 *   ESC-GS kind pid ':' hex-addresses ESC-RS
 * and the tracer replaces it by the text when the output is drained
 * (utrace_py/run/usyms.py).  docs/decisions.md says why. */

static char *_utr_hex(char *p, const char *end, uint64_t v)
{
    char tmp[16];
    int n = 0;
    if (end - p < 19)
        return NULL;
    *p++ = '0';
    *p++ = 'x';
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static char *_utr_dec(char *p, const char *end, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)-v : (uint64_t)v;
    if (end - p < 22)
        return NULL;
    if (v < 0)
        *p++ = '-';
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* "0x.. 0x.." of pcs[skip..n) into dst (MAXSTRINGLEN), whole addresses only. */
static void _utr_hexlist(char *dst, const uint64_t *pcs, int n, int skip)
{
    char *p = dst, *end = dst + MAXSTRINGLEN - 1;
    int i;
    for (i = skip; i < n; i++) {
        char *q = p;
        if (i > skip) {
            if (end - q < 1)
                break;
            *q++ = ' ';
        }
        q = _utr_hex(q, end, pcs[i]);
        if (!q)
            break;
        p = q;
    }
    *p = 0;
}

void utr_ubacktrace_str(char *dst)
{
    uint64_t pcs[MAXBACKTRACE];
    _utr_hexlist(dst, pcs, utr_ubacktrace_pcs(pcs, MAXBACKTRACE), 0);
}

void utr_ucallers_str(char *dst, int64_t n)
{
    uint64_t pcs[MAXBACKTRACE + 1];
    int max = n < 0 || n >= MAXBACKTRACE ? MAXBACKTRACE + 1 : (int)n + 1;
    _utr_hexlist(dst, pcs, utr_ubacktrace_pcs(pcs, max), 1);
}

/* A token of `kind` over the addresses in hexlist (or the single addr) for the
 * process running the probe (pid 0 in the tracer's own probes: any target). */
void utr_usym_token(char *dst, int kind, const char *hexlist, int64_t addr)
{
    char *p = dst, *end = dst + MAXSTRINGLEN - 1;
    size_t n;
    *p++ = '\x1d';
    *p++ = (char)kind;
    p = _utr_dec(p, end, utr_uregs() ? utr_pid() : 0);
    *p++ = ':';
    if (hexlist) {
        n = strlen(hexlist);
        if (n > (size_t)(end - p - 1))
            n = (size_t)(end - p - 1);
        memcpy(p, hexlist, n);
        p += n;
    } else {
        p = _utr_hex(p, end, (uint64_t)addr);
    }
    *p++ = '\x1e';
    *p = 0;
}

/* print_ubacktrace() and friends: the token of this probe's backtrace; without
 * a user context (begin, end, timer) stap's "<no user backtrace at PP>". */
void utr_print_ubacktrace(utr_ctx *c, int kind)
{
    char hex[MAXSTRINGLEN], tok[MAXSTRINGLEN];
    if (!utr_uregs()) {
        utr_print(c, "<no user backtrace at ");
        utr_print(c, c->probe_point ? c->probe_point : "");
        utr_print(c, ">\n");
        return;
    }
    if (kind == 'F' && utr_uregs()->rip == 0 && _utr_ret_func) {
        /* a return probe: stap names the function left, then where it returned */
        utr_print(c, "Returning from: ");
        utr_usym_token(tok, kind, NULL, (int64_t)_utr_ret_func);
        utr_print(c, tok);
        utr_print(c, "Returning to  : ");
    }
    utr_ubacktrace_str(hex);
    utr_usym_token(tok, kind, hex, 0);
    utr_print(c, tok);
}
