/* tapset_support.c — C behind the string, context and time tapsets. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#ifndef __KERNEL__
#include <sys/prctl.h>
#endif
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rt_internal.h"

#ifndef __KERNEL__  /* the module asks the kernel instead (native/kmod/kctx.c) */
/* Identity of the process a tracer-run probe speaks for (see utr_set_identity). */
static struct {
    int set;
    int64_t pid, tid, ppid, uid, euid;
    char comm[64];
} ident;

void utr_set_identity(int64_t pid, int64_t tid, int64_t ppid, int64_t uid, int64_t euid,
                      const char *comm)
{
    ident.pid = pid;
    ident.tid = tid;
    ident.ppid = ppid;
    ident.uid = uid;
    ident.euid = euid;
    snprintf(ident.comm, sizeof ident.comm, "%s", comm ? comm : "");
    ident.set = 1;
}

void utr_clear_identity(void)
{
    ident.set = 0;
}

int64_t utr_gettid(void)
{
    return ident.set ? ident.tid : _utr_raw_syscall(SYS_gettid, 0, 0, 0, 0, 0, 0);
}

int64_t utr_pid(void)
{
    return ident.set ? ident.pid : _utr_raw_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0);
}

int64_t utr_ppid(void)
{
    return ident.set ? ident.ppid : _utr_raw_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0);
}

int64_t utr_uid(void)
{
    return ident.set ? ident.uid : _utr_raw_syscall(SYS_getuid, 0, 0, 0, 0, 0, 0);
}

int64_t utr_euid(void)
{
    return ident.set ? ident.euid : _utr_raw_syscall(SYS_geteuid, 0, 0, 0, 0, 0, 0);
}

int64_t utr_cpu(void)
{
    int c = sched_getcpu();
    return c < 0 ? 0 : c;
}

static int64_t target_pid;

void utr_set_target_pid(int64_t pid)
{
    target_pid = pid;
}

int64_t utr_target_pid(void)
{
    return target_pid;
}

/* The kernel's comm of the current thread, as stap's execname() (current->comm).
 * Handlers in a traced process must not call into libc functions a script may
 * probe (fopen -> open/malloc would re-enter the probe, T-14), hence the raw
 * prctl. */
void utr_execname(char *dst)
{
    char comm[17] = {0};
    if (ident.set) {
        utr_strcpy(dst, ident.comm);
        return;
    }
    if (_utr_raw_syscall(SYS_prctl, PR_GET_NAME, (long)comm, 0, 0, 0, 0) != 0)
        comm[0] = 0;
    utr_strcpy(dst, comm);
}
#endif

void utr_str_replace(char *dst, const char *s, const char *from, const char *to)
{
    size_t flen = strlen(from);
    dst[0] = 0;
    if (flen == 0) {
        utr_strcpy(dst, s);
        return;
    }
    size_t used = 0, cap = MAXSTRINGLEN - 1, tlen = strlen(to);
    const char *p;
    while ((p = strstr(s, from)) != NULL) {
        size_t n = (size_t)(p - s);
        if (n > cap - used) n = cap - used;
        memcpy(dst + used, s, n);
        used += n;
        n = tlen > cap - used ? cap - used : tlen;
        memcpy(dst + used, to, n);
        used += n;
        s = p + flen;
    }
    size_t n = strlen(s);
    if (n > cap - used) n = cap - used;
    memcpy(dst + used, s, n);
    dst[used + n] = 0;
}

/* Escape as stap's text_str: C escapes for the usual controls, octal for the
 * rest; bounded by len (0 = MAXSTRINGLEN); quoted adds "" and marks a cut with "...". */
void utr_text_str(char *dst, const char *in, int64_t len, int64_t quoted)
{
    int64_t out_cap = (len <= 0 || len > MAXSTRINGLEN - 1) ? MAXSTRINGLEN - 1 : len;
    char *o = dst;
    int64_t room = out_cap;
    if (quoted) {
        room = (out_cap < 5 ? 5 : out_cap) - 2;
        *o++ = '"';
    }
    int cut = 0;
    for (; *in; in++) {
        unsigned char ch = (unsigned char)*in;
        char esc[5];
        int n;
        switch (ch) {
        case '\a': n = 2; memcpy(esc, "\\a", 2); break;
        case '\b': n = 2; memcpy(esc, "\\b", 2); break;
        case '\f': n = 2; memcpy(esc, "\\f", 2); break;
        case '\n': n = 2; memcpy(esc, "\\n", 2); break;
        case '\r': n = 2; memcpy(esc, "\\r", 2); break;
        case '\t': n = 2; memcpy(esc, "\\t", 2); break;
        case '\v': n = 2; memcpy(esc, "\\v", 2); break;
        case '"': n = 2; memcpy(esc, "\\\"", 2); break;
        case '\\': n = 2; memcpy(esc, "\\\\", 2); break;
        default:
            if (ch >= 32 && ch < 127) { n = 1; esc[0] = (char)ch; }
            else { n = 4; snprintf(esc, sizeof esc, "\\%03o", ch); }
        }
        if (n > room) { cut = 1; break; }
        memcpy(o, esc, n);
        o += n;
        room -= n;
    }
    if (quoted) {
        *o++ = '"';
        if (cut && o - dst + 3 <= MAXSTRINGLEN - 1) {
            memcpy(o, "...", 3);
            o += 3;
        }
    }
    *o = 0;
}

/* tokenize(): the rest of the string lives per thread between calls. */
static _UTR_TLS char tok_buf[MAXSTRINGLEN];
static _UTR_TLS char *tok_next;

void utr_tokenize(utr_ctx *c, char *dst, const char *input, const char *delim)
{
    (void)c;
    char *tok;
    dst[0] = 0;
    if (input[0]) {
        utr_strcpy(tok_buf, input);
        tok_next = tok_buf;
    }
    do {
        tok = strsep(&tok_next, delim);
    } while (tok && !tok[0]);
    if (tok)
        utr_strcpy(dst, tok);
}

#ifndef __KERNEL__
void utr_ctime(char *dst, int64_t secs)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    time_t t = (time_t)secs;
    /* stap's range: 32-bit signed seconds. */
    if (secs < INT32_MIN || secs > INT32_MAX || !gmtime_r(&t, &tm)) {
        utr_strcpy(dst, "<invalid time>");
        return;
    }
    /* Format into a local buffer large enough for any int fields, then copy
     * (truncating) so that a small -D MAXSTRINGLEN still compiles cleanly. */
    char buf[96];
    snprintf(buf, sizeof buf, "%s %s %2d %02d:%02d:%02d %d", days[tm.tm_wday], months[tm.tm_mon],
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
    utr_strcpy(dst, buf);
}
#endif
