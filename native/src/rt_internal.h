/* rt_internal.h — helpers shared by the runtime's C files (not an ABI). */
#ifndef UTRACE_RT_INTERNAL_H
#define UTRACE_RT_INTERNAL_H

#include "utrace_rt.h"

#include <stdint.h>
#include <string.h>

#ifdef __KERNEL__
#define _UTR_TLS /* per-CPU contexts with interrupts off: nothing is thread-local */
#else
#define _UTR_TLS __thread __attribute__((tls_model("initial-exec")))
#endif
#define _UTR_ALIGN64(x) (((uint64_t)(x) + 63u) & ~(uint64_t)63u)

static inline void _utr_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
#endif
}

/* A spinlock word in the region (0 free, 1 held).  Process-shared by nature. */
static inline int _utr_spin_trylock(int32_t *w)
{
    return __atomic_load_n(w, __ATOMIC_RELAXED) == 0 &&
           __atomic_exchange_n(w, 1, __ATOMIC_ACQUIRE) == 0;
}
static inline void _utr_spin_lock(int32_t *w)
{
    while (!_utr_spin_trylock(w))
        _utr_cpu_relax();
}
static inline void _utr_spin_unlock(int32_t *w)
{
    __atomic_store_n(w, 0, __ATOMIC_RELEASE);
}

#ifndef __KERNEL__
/* A system call without the C library's wrapper (which may be the very function
 * probed, and sets errno): returns the result or -errno. */
#if defined(__x86_64__)
static inline long _utr_raw_syscall(long nr, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#else
#include <errno.h>
#include <unistd.h>
static inline long _utr_raw_syscall(long nr, long a, long b, long c, long d, long e, long f)
{
    int saved = errno;
    long r = syscall(nr, a, b, c, d, e, f);
    if (r == -1)
        r = -errno;
    errno = saved;
    return r;
}
#endif

#endif

/* Wrapping int64 arithmetic without undefined behaviour. */
static inline int64_t _utr_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static inline int64_t _utr_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static inline int64_t _utr_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
static inline int64_t _utr_shl(int64_t a, int s) { return (int64_t)((uint64_t)a << (s & 63)); }
/* SystemTap's _stp_div64 without the error pointer: x/0 = 0, x/-1 = -x. */
static inline int64_t _utr_div64(int64_t x, int64_t y)
{
    if (y == 0) return 0;
    if (y == -1) return (int64_t)(0 - (uint64_t)x);
    return x / y;
}

/* ---- per-entry statistics (stat.c) ---- */

/* SystemTap's stat_data minus the histogram, which follows it in memory. */
typedef struct _utr_sd {
    int64_t count, sum, min, max;
    int64_t avg_s, m2, variance_s, variance;
    int32_t shift;
    int32_t pad;
} _utr_sd;

/* Histogram parameters shared by all slots/entries of one aggregate. */
typedef struct _utr_hist {
    int32_t type;       /* enum utr_hist */
    int32_t buckets;    /* 0 for UTR_HIST_NONE */
    int32_t bit_shift;
    int32_t welford;    /* run Welford's update: only globals read by @variance need it, as in stap */
    int64_t start, stop, interval;
} _utr_hist;

/* Returns 0 and fills h, or -1 when the linear parameters are invalid. */
int _utr_hist_init(_utr_hist *h, int hist_type, int64_t start, int64_t stop,
                   int64_t interval, int32_t bit_shift);
/* __stp_stat_add with every statistical operator enabled. */
void _utr_sd_add(const _utr_hist *h, _utr_sd *sd, int64_t *hist, int64_t val);
void _utr_sd_clear(const _utr_hist *h, _utr_sd *sd, int64_t *hist);
/* A map entry's view: SystemTap's pmap aggregation of a single per-CPU entry. */
void _utr_sd_export(const _utr_hist *h, const _utr_sd *sd, const int64_t *hist,
                    utr_stat_data *out);

/* ---- output (ctx.c / region.c) ---- */

/* Append one record to the ring (split into UTR_MAX_RECORD pieces); never blocks
 * for long: a record that does not fit, or a lock that cannot be taken, is
 * counted in dropped_count. */
void _utr_ring_write(int stream, const char *data, uint32_t n);

/* "<prefix><msg>[ near <near>]\n" as one stderr record, and a failed hit's ERROR
 * line with the MAXERRORS rule (output.c). */
void _utr_emit_line(const char *prefix, const char *msg, const char *near);
void _utr_report_error(utr_ctx *c);

/* ---- formatting (format.c) ---- */

/* Engine: stap semantics for a buffer of `size` bytes (end = buf + size - 1).
 * With buf == NULL it only measures (widths clamped to UTR_PRINTF_MAX) and size
 * is ignored.  Returns the logical end position (may exceed size), or -1 when a
 * %m/%M read faulted (then *fault_addr holds the address). */
int64_t _utr_format(char *buf, int64_t size, const char *fmt, const utr_arg *args,
                    uint64_t *fault_addr);
void _utr_set_fault(uint64_t addr);

/* ---- fault-safe memory (umem.c) ---- */

/* Bytes readable at addr, up to n, copied to dst: a short count means the byte
 * after them cannot be read. */
size_t _utr_uread_upto(void *dst, uint64_t addr, size_t n);

#ifndef __KERNEL__
/* pp() of the site a trampoline entered through, for utr_ctx_enter (sites.c). */
extern __thread const char *_utr_site_pp __attribute__((tls_model("initial-exec")));
/* UTR_SCRATCH_BYTES of this thread's private memory, for rewriting a hooked call's
 * argument (retprobe.c); NULL when it cannot be had. */
#define UTR_SCRATCH_BYTES 160
void *_utr_thread_scratch(void);
/* The real return address behind a return-probe hijack whose slot is `slot`
 * (retprobe.c; 0 when unknown), for the unwinder (unwind.c). */
uint64_t _utr_ret_orig(uint64_t slot);
/* The entry address of the function whose return probes are running (retprobe.c). */
extern __thread uint64_t _utr_ret_func __attribute__((tls_model("initial-exec")));
/* The trap tier's hooks on the C library's signal-mask calls (trap.c). */
void _utr_trap_hook(int32_t hook, struct utrace_regs *regs);

/* Run the probes of a site with pp() and registers describing it (sites.c). */
void _utr_run_site(int32_t site, struct utrace_regs *regs);
/* Registers of that site (sites.c); NULL outside a site's handler. */
extern __thread const struct utrace_regs *_utr_site_regs __attribute__((tls_model("initial-exec")));

/* Depth of utrace code running in this thread (a site's dispatch, a handler).  A
 * probed function called from inside it -- errno's __errno_location, memcpy, malloc
 * under a handler -- must not run probes again: that recursed without end under
 * process.library("libc.so.6").function("*") (T-14).  initial-exec TLS: reading it
 * calls nothing. */
extern __thread int32_t _utr_in_runtime __attribute__((tls_model("initial-exec")));
/* The calling thread's errno, without calling __errno_location (which a script may
 * probe): libc's errno is initial-exec TLS, at one offset from every thread's
 * pointer, measured once (sites.c). */
extern long _utr_errno_off;
static inline int *_utr_errno_ptr(void)
{
    char *tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    return (int *)(tp + _utr_errno_off);
}
/* Count a hit ignored for that reason (sites.c). */
void _utr_count_nested(void);

/* This thread's tid, cached in TLS (reset in forked children with the context; ctx.c). */
int32_t _utr_self_tid(void);

#endif

#endif /* UTRACE_RT_INTERNAL_H */
