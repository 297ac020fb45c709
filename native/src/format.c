/* format.c — printf/sprintf with SystemTap's conversions and quirks.
 *
 * The behaviour follows SystemTap's default "compiled printf" path (format
 * parsed by the translator, each conversion formatted by the runtime's
 * number()/_stp_vsprint_* helpers):
 *  - at most ONE flag character (`-` `+` ` ` `#` `0`) is recognised; a second
 *    one is not a flag (SystemTap's pass 2 rejects such formats, and "%+05d"
 *    means flag '+', width 5);
 *  - one `l` length modifier is accepted and ignored; all numbers are int64;
 *  - `*` width/precision take an int64 argument truncated to int and clamped
 *    to [0, room] (a negative `*` width does NOT left-justify);
 *  - "%.d" (a dot without digits) means "no precision";
 *  - %d/%i/%u/%o/%x/%X: SystemTap's number(): `#` always prefixes (0x0, 00),
 *    a zero flag pads with zeros even when a precision is given, precision 0
 *    still prints "0";
 *  - %p is %#x (SystemTap >= 1.3) unless utr_ptr_compat_12 is set (then the
 *    pre-1.3 form: default width 18, precision width-2 capped at 16 unless `-`);
 *  - %c prints the low byte; with `#`, non-printable bytes, `'` and `\` are
 *    escaped C-style (\n, \t..., else \ooo); %s ignores `#`;
 *  - %s/%m/%M with the `0` flag emit a NUL byte after the field (as SystemTap);
 *  - %m copies `precision` bytes (default 1) from an address of this process,
 *    %M prints them as hex; the read is fault-safe (umem.c).  On a
 *    fault the whole printf/sprintf produces nothing and the error
 *    "read fault [man error::fault] at 0x<addr>" is recorded (utr_last_fault(),
 *    and as the running hit's error);
 *  - %b writes the raw little-endian bytes of the value (width/precision 1, 2,
 *    4 or 8, default 8), padding with NUL bytes.
 * One printf produces at most UTR_PRINTF_MAX (STP_BUFFER_SIZE) bytes; a
 * sprintf result is truncated to MAXSTRINGLEN-1 bytes.  In both cases widths
 * and precisions are clamped to the room left, exactly like SystemTap.
 */
#define _GNU_SOURCE
#include "rt_internal.h"

#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

int utr_ptr_compat_12 = UTR_PTR_COMPAT_12;

enum {
    F_ZEROPAD = 1, F_SIGN = 2, F_PLUS = 4, F_SPACE = 8,
    F_LEFT = 16, F_SPECIAL = 32, F_LARGE = 64
};

typedef struct _utr_out {
    char *buf;        /* NULL: measure only */
    int64_t pos;
    int64_t size;
} _utr_out;

static inline int _room(const _utr_out *o)       /* SystemTap's "str <= end" */
{
    return !o->buf || o->pos < o->size;
}
static inline void _put(_utr_out *o, char ch)
{
    if (o->buf && o->pos < o->size)
        o->buf[o->pos] = ch;
    o->pos++;
}
/* clamp_t(int, v, 0, end - str + 1) */
static inline int _clamp_room(const _utr_out *o, int v)
{
    int64_t hi = o->buf ? o->size - o->pos : UTR_PRINTF_MAX;
    if (v < 0) v = 0;
    if (v > hi) v = (int)(hi < INT_MIN ? INT_MIN : hi);
    return v;
}

/* ---- fault-safe reads ---- */

static _UTR_TLS char _utr_fault_msg[64];

void _utr_set_fault(uint64_t addr)
{
    static const char pre[] = "read fault [man error::fault] at 0x";
    static const char hex[] = "0123456789abcdef";
    char tmp[17];
    int i = 0, n = sizeof(pre) - 1;
    memcpy(_utr_fault_msg, pre, (size_t)n);
    do {
        tmp[i++] = hex[addr & 15];
        addr >>= 4;
    } while (addr);
    while (i > 0)
        _utr_fault_msg[n++] = tmp[--i];
    _utr_fault_msg[n] = 0;
}

const char *utr_last_fault(void)
{
    return _utr_fault_msg[0] ? _utr_fault_msg : NULL;
}

void utr_clear_fault(void)
{
    _utr_fault_msg[0] = 0;
}

/* ---- conversions ---- */

static void _number(_utr_out *o, uint64_t num, int base, int size, int precision, int type)
{
    const char *digits = (type & F_LARGE) ? "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          : "0123456789abcdefghijklmnopqrstuvwxyz";
    char tmp[66], pad, sign = 0;
    int i = 0;

    if (type & F_LEFT)
        type &= ~F_ZEROPAD;
    pad = (type & F_ZEROPAD) ? '0' : ' ';
    if (type & F_SIGN) {
        if ((int64_t)num < 0) {
            sign = '-';
            num = 0 - num;
            size--;
        } else if (type & F_PLUS) {
            sign = '+';
            size--;
        } else if (type & F_SPACE) {
            sign = ' ';
            size--;
        }
    }
    if (type & F_SPECIAL) {
        if (base == 16)
            size -= 2;
        else if (base == 8)
            size--;
    }
    if (num == 0)
        tmp[i++] = '0';
    while (num != 0) {
        tmp[i++] = digits[num % (unsigned)base];
        num /= (unsigned)base;
    }
    if (i > precision)
        precision = i;
    size -= precision;
    if (!(type & (F_ZEROPAD | F_LEFT)))
        while (size-- > 0)
            _put(o, ' ');
    if (sign)
        _put(o, sign);
    if (type & F_SPECIAL) {
        if (base == 8) {
            _put(o, '0');
        } else if (base == 16) {
            _put(o, '0');
            _put(o, digits[33]);
        }
    }
    if (!(type & F_LEFT))
        while (size-- > 0)
            _put(o, pad);
    while (i < precision--)
        _put(o, '0');
    while (i-- > 0)
        _put(o, tmp[i]);
    while (size-- > 0)
        _put(o, ' ');
}

static char _char_escape(unsigned char c)
{
    switch (c) {
    case '\a': return 'a';
    case '\b': return 'b';
    case '\f': return 'f';
    case '\n': return 'n';
    case '\r': return 'r';
    case '\t': return 't';
    case '\v': return 'v';
    case '\'': return '\'';
    case '\\': return '\\';
    default: return 0;
    }
}

static void _char(_utr_out *o, unsigned char c, int width, int flags)
{
    int size = 1;
    char esc = 0;
    if ((flags & F_SPECIAL) && (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\')) {
        esc = _char_escape(c);
        size = esc ? 2 : 4;
    }
    if (!(flags & F_LEFT))
        while (width-- > size)
            _put(o, ' ');
    if (size == 1) {
        _put(o, (char)c);
    } else {
        _put(o, '\\');
        if (esc) {
            _put(o, esc);
        } else {
            _put(o, (char)('0' + ((c >> 6) & 3)));
            _put(o, (char)('0' + ((c >> 3) & 7)));
            _put(o, (char)('0' + (c & 7)));
        }
    }
    while (width-- > size)
        _put(o, ' ');
}

/* %s (ptr), %m / %M (addr).  Returns -1 on a read fault. */
static int _memory(_utr_out *o, const char *ptr, uint64_t addr, int width, int precision,
                   char format, int flags, uint64_t *fault_addr)
{
    int64_t len;
    if (format == 's') {
        size_t lim = precision < 0 ? UTR_PRINTF_MAX
                                   : (precision > UTR_PRINTF_MAX ? UTR_PRINTF_MAX : (size_t)precision);
        if ((uintptr_t)ptr < 4096)
            ptr = "<NULL>";
        len = (int64_t)strnlen(ptr, lim);
    } else if (precision > 0) {
        len = precision;
    } else {
        len = 1;
    }

    if (!(flags & F_LEFT)) {
        int64_t actlen = format == 'M' ? len * 2 : len;
        while (actlen < width-- && _room(o))
            _put(o, ' ');
    }

    if (format == 's') {
        int64_t i;
        if (!o->buf) {
            o->pos += len;
        } else {
            for (i = 0; i < len && _room(o); ++i)
                _put(o, ptr[i]);
        }
    } else if (!o->buf) {
        o->pos += format == 'M' ? len * 2 : len;
    } else {
        static const char hexd[] = "0123456789abcdef";
        unsigned char chunk[256];
        int64_t done = 0;
        while (done < len) {
            size_t want = (size_t)(len - done) < sizeof(chunk) ? (size_t)(len - done) : sizeof(chunk);
            size_t got;
            size_t k;
            if (format == 'M' ? !(o->pos < o->size - 1) : !_room(o))
                break;
            got = utr_read_mem(chunk, addr + (uint64_t)done, want);
            if (got < want) {
                *fault_addr = addr + (uint64_t)done + got;
                return -1;
            }
            for (k = 0; k < got; k++) {
                if (format == 'M') {
                    if (!(o->pos < o->size - 1))   /* SystemTap's "str < end" */
                        break;
                    _put(o, hexd[chunk[k] >> 4]);
                    _put(o, hexd[chunk[k] & 15]);
                } else {
                    if (!_room(o))
                        break;
                    _put(o, (char)chunk[k]);
                }
            }
            done += (int64_t)got;
        }
    }
    if (format == 'M')
        len *= 2;
    while (len < width-- && _room(o))
        _put(o, ' ');
    if ((flags & F_ZEROPAD) && _room(o))
        _put(o, '\0');
    return 0;
}

static int _check_binary_precision(int p)
{
    return (p == -1 || p == 1 || p == 2 || p == 4 || p == 8) ? p : -1;
}

static void _binary(_utr_out *o, int64_t num, int width, int precision, int flags)
{
    precision = _check_binary_precision(precision);
    if (width == -1) {
        if (precision == -1) {
            width = 8;
            precision = 8;
        } else {
            width = precision;
        }
    } else if (precision == -1) {
        precision = _check_binary_precision(width);
        if (precision == -1)
            precision = 8;
    }
    if (!(flags & F_LEFT))
        while (precision < width-- && _room(o))
            _put(o, '\0');
    if (!o->buf || o->pos + precision <= o->size) {
        uint64_t u = (uint64_t)num;
        int k;
        for (k = 0; k < precision; k++)
            _put(o, (char)(unsigned char)(u >> (8 * k)));
    }
    while (precision >= 0 && width >= 0 && precision < width-- && _room(o))
        _put(o, '\0');
}

static int _parse_int(const char **pf)
{
    const char *f = *pf;
    int64_t v = 0;
    while (*f >= '0' && *f <= '9') {
        if (v < INT_MAX)
            v = v * 10 + (*f - '0');
        f++;
    }
    *pf = f;
    return v > INT_MAX ? INT_MAX : (int)v;
}

int64_t _utr_format(char *buf, int64_t size, const char *fmt, const utr_arg *args,
                    uint64_t *fault_addr)
{
    _utr_out o = { buf, 0, size };
    const char *f = fmt;
    const utr_arg *a = args;

    while (*f) {
        int flags = 0, width = -1, precision = -1;
        char conv;

        if (*f != '%') {
            _put(&o, *f++);
            continue;
        }
        if (f[1] == '\0' || f[1] == '%') {       /* "%%", or a lone trailing '%' */
            _put(&o, '%');
            f += f[1] ? 2 : 1;
            continue;
        }
        f++;
        switch (*f) {                           /* exactly one optional flag */
        case '0': flags |= F_ZEROPAD; f++; break;
        case '+': flags |= F_PLUS; f++; break;
        case '-': flags |= F_LEFT; f++; break;
        case ' ': flags |= F_SPACE; f++; break;
        case '#': flags |= F_SPECIAL; f++; break;
        default: break;
        }
        if (*f == '*') {
            width = _clamp_room(&o, (int)(a++)->i);
            f++;
        } else if (*f >= '0' && *f <= '9') {
            width = _clamp_room(&o, _parse_int(&f));
        }
        if (*f == '.') {
            f++;
            if (*f == '*') {
                precision = _clamp_room(&o, (int)(a++)->i);
                f++;
            } else if (*f >= '0' && *f <= '9') {
                precision = _clamp_room(&o, _parse_int(&f));
            }
        }
        if (*f == 'l')
            f++;
        conv = *f;
        if (!conv)
            break;
        f++;
        switch (conv) {
        case 'd':
        case 'i':
            flags |= F_SIGN;
            __attribute__((__fallthrough__));
        case 'u':
            _number(&o, (uint64_t)(a++)->i, 10, width, precision, flags);
            break;
        case 'o':
            _number(&o, (uint64_t)(a++)->i, 8, width, precision, flags);
            break;
        case 'X':
            flags |= F_LARGE;
            __attribute__((__fallthrough__));
        case 'x':
            _number(&o, (uint64_t)(a++)->i, 16, width, precision, flags);
            break;
        case 'p':
            flags |= F_SPECIAL;
            if (utr_ptr_compat_12) {
                if (width == -1)
                    width = 2 + 2 * (int)sizeof(void *);
                precision = width - 2;
                if (!(flags & F_LEFT) && precision > 2 * (int)sizeof(void *))
                    precision = 2 * (int)sizeof(void *);
            }
            _number(&o, (uint64_t)(a++)->i, 16, width, precision, flags);
            break;
        case 'c':
            _char(&o, (unsigned char)(a++)->i, width, flags);
            break;
        case 's':
            _memory(&o, (a++)->s, 0, width, precision, 's', flags, fault_addr);
            break;
        case 'm':
        case 'M':
            if (_memory(&o, NULL, (uint64_t)(a++)->i, width, precision, conv, flags,
                        fault_addr) < 0)
                return -1;
            break;
        case 'b':
            _binary(&o, (a++)->i, width, precision, flags);
            break;
        default:                                 /* not a conversion: print it */
            _put(&o, '%');
            _put(&o, conv);
            break;
        }
    }
    return o.pos;
}

size_t utr_vformat(char *buf, size_t cap, const char *fmt, const utr_arg *args)
{
    uint64_t fault = 0;
    int64_t r;
    if (cap == 0)
        return (size_t)_utr_format(NULL, 0, fmt, args, &fault);
    r = _utr_format(buf, (int64_t)cap, fmt, args, &fault);
    if (r < 0) {
        buf[0] = 0;
        _utr_set_fault(fault);
        return 0;
    }
    if ((uint64_t)r <= cap - 1) {
        buf[r] = 0;
        return (size_t)r;
    }
    buf[cap - 1] = 0;
    return (size_t)_utr_format(NULL, 0, fmt, args, &fault);
}

static void _utr_fault_to_ctx(utr_ctx *c)
{
    const char *m = utr_last_fault();
    if (c && m && !c->last_error) {
        size_t n = strlen(m);
        memcpy(c->error_buf, m, n + 1);
        c->last_error = c->error_buf;
    }
}

void utr_sprintf(char *dst, const char *fmt, const utr_arg *args)
{
    uint64_t fault = 0;
    int64_t r = _utr_format(dst, MAXSTRINGLEN, fmt, args, &fault);
    if (r < 0) {
        dst[0] = 0;
        _utr_set_fault(fault);
        _utr_fault_to_ctx(utr_ctx_current());
        return;
    }
    dst[r < MAXSTRINGLEN ? r : MAXSTRINGLEN - 1] = 0;
}

void utr_printf(utr_ctx *c, const char *fmt, const utr_arg *args)
{
    uint64_t fault = 0;
    int64_t r = _utr_format(c->fmtbuf, UTR_PRINTF_MAX, fmt, args, &fault);
    if (r < 0) {
        _utr_set_fault(fault);
        _utr_fault_to_ctx(c);
        return;
    }
    utr_print_n(c, c->fmtbuf, (uint32_t)(r < UTR_PRINTF_MAX ? r : UTR_PRINTF_MAX));
}
