/* output.c — a hit's buffered output, its ERROR and WARNING lines: shared by the
 * user runtime and the kernel module (native/kmod), which differ only in where a
 * hit's context lives. */
#include "rt_internal.h"

/* "<prefix><msg>" plus a newline unless msg already ends with one, as one record. */
void _utr_emit_line(const char *prefix, const char *msg, const char *near)
{
    char buf[16 + 2 * MAXSTRINGLEN];
    size_t n = strlen(prefix), room;
    memcpy(buf, prefix, n);
    /* SystemTap formats "msg near stmt" into a MAXSTRINGLEN buffer */
    room = MAXSTRINGLEN - 1;
    {
        size_t m = strlen(msg);
        if (m > room) m = room;
        memcpy(buf + n, msg, m);
        n += m;
        room -= m;
        if (near) {
            static const char sep[] = " near ";
            size_t k = sizeof(sep) - 1;
            if (k > room) k = room;
            memcpy(buf + n, sep, k);
            n += k;
            room -= k;
            m = strlen(near);
            if (m > room) m = room;
            memcpy(buf + n, near, m);
            n += m;
        }
    }
    if (n == 0 || buf[n - 1] != '\n')
        buf[n++] = '\n';
    _utr_ring_write(UTR_ERR, buf, (uint32_t)n);
}

/* The ERROR line of a failed hit; past MAXERRORS the session moves to ERROR. */
void _utr_report_error(utr_ctx *c)
{
    utr_region_hdr *h = UTR_HDR;
    int64_t n;
    _utr_emit_line("ERROR: ", c->last_error, c->last_stmt);
    n = __atomic_add_fetch(&h->error_count, 1, __ATOMIC_ACQ_REL);
    if (n > MAXERRORS) {
        int32_t st = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE);
        while (st != UTR_ST_DONE && st != UTR_ST_ERROR &&
               !__atomic_compare_exchange_n(&h->state, &st, UTR_ST_ERROR, 0,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            ;
    }
}

void utr_error_str(utr_ctx *c, const char *msg, const char *stmt)
{
    size_t n;
    if (c->last_error)
        return;
    n = strlen(msg);
    if (n > MAXSTRINGLEN - 1)
        n = MAXSTRINGLEN - 1;
    memmove(c->error_buf, msg, n);
    c->error_buf[n] = 0;
    c->last_error = c->error_buf;
    c->last_stmt = stmt;
}

void utr_warn(utr_ctx *c, const char *msg)
{
    if (c)
        utr_flush(c);
    _utr_emit_line("WARNING: ", msg, NULL);
}

/* ---- output buffering ---- */

void utr_flush(utr_ctx *c)
{
    if (c->outlen) {
        _utr_ring_write(UTR_OUT, c->out, c->outlen);
        c->outlen = 0;
    }
}

void utr_print_n(utr_ctx *c, const char *s, uint32_t n)
{
    while (n) {
        uint32_t room = UTR_OUTBUF_SIZE - c->outlen, k;
        if (room == 0) {
            utr_flush(c);
            room = UTR_OUTBUF_SIZE;
        }
        k = n < room ? n : room;
        memcpy(c->out + c->outlen, s, k);
        c->outlen += k;
        s += k;
        n -= k;
    }
}

void utr_print(utr_ctx *c, const char *s)
{
    utr_print_n(c, s, (uint32_t)strlen(s));
}

void utr_print_long(utr_ctx *c, int64_t v)
{
    char buf[24];
    utr_ltoa(buf, v);
    utr_print(c, buf);
}
