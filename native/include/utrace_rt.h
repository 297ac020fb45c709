/* utrace_rt.h — the ABI between generated handler code, the C runtime and the tracer.
 *
 * Everything a script shares between processes lives in one region (a memfd
 * mapped by the tracer and, later, by every target).  The region may be mapped
 * at a different address in each process, so every reference stored in it is
 * an offset from the region base, never a pointer.
 *
 * The block between UTR_CDEF_BEGIN and UTR_CDEF_END is read verbatim by cffi
 * (ABI mode), so it holds only plain declarations: no macros, no expressions.
 */
#ifndef UTRACE_RT_H
#define UTRACE_RT_H

#include <stdint.h>
#include <stddef.h>

/* Limits, SystemTap's defaults; every one can be overridden with -D. */
#ifndef MAXSTRINGLEN
#define MAXSTRINGLEN 512
#endif
#ifndef MAXACTION
#define MAXACTION 1000
#endif
#ifndef MAXNESTING
#define MAXNESTING 10
#endif
#ifndef MAXMAPENTRIES
#define MAXMAPENTRIES 2048
#endif
#ifndef MAXERRORS
#define MAXERRORS 0
#endif
#ifndef MAXSKIPPED
#define MAXSKIPPED 100
#endif
#ifndef MAXTRYLOCK
#define MAXTRYLOCK 100
#endif
#ifndef TRYLOCKDELAY
#define TRYLOCKDELAY 10 /* microseconds */
#endif
#ifndef STP_MAX_BUCKETS
#define STP_MAX_BUCKETS 128
#endif
#ifndef HIST_WIDTH
#define HIST_WIDTH 50
#endif
#ifndef HIST_ELISION
#define HIST_ELISION 2
#endif
#ifndef UTR_STAT_SLOTS
#define UTR_STAT_SLOTS 16 /* per-CPU accumulation slots of a scalar aggregate */
#endif
#ifndef UTR_RING_SIZE
#define UTR_RING_SIZE (4u << 20) /* bytes of output ring */
#endif
#ifndef UTR_MAX_SITES
#define UTR_MAX_SITES 16384 /* probe sites whose pp() the tracer records (site 0: none):
                            a function("*").call+.return on libc takes ~6000 */
#endif
#define UTR_SITE_PPLEN 256
#ifndef UTR_USYMTAB_BYTES
#define UTR_USYMTAB_BYTES (4u << 20) /* each half of the published symbol table (usymtab.c) */
#endif
#define UTR_SITE_PROBES 13 /* probes one site runs */
#ifndef UTR_SHADOW_DEPTH
#define UTR_SHADOW_DEPTH 4096 /* pending return probes per thread */
#endif
/* Unwinder entry points a site may be the hook of. */
#define UTR_HOOK_RESTORE 1 /* _Unwind_RaiseException & co: put return addresses back */
#define UTR_HOOK_CATCH 2   /* __cxa_begin_catch: frames below are gone, rehijack the rest */
#define UTR_HOOK_SIGMASK 3 /* sigprocmask/pthread_sigmask: never let SIGTRAP be blocked */
#define UTR_HOOK_SIGACTION 4 /* __libc_sigaction: keep our SIGTRAP handler, chain theirs */
#ifndef UTR_OUTBUF_SIZE
#define UTR_OUTBUF_SIZE 8192 /* per-handler output buffered until the handler ends */
#endif
#ifndef UTR_NCTX
#define UTR_NCTX 256 /* per-thread contexts in the region */
#endif
/* SystemTap's STP_BUFFER_SIZE: one printf produces at most this many bytes and
 * widths/precisions are clamped to it. */
#define UTR_PRINTF_MAX 8192
/* The ring never holds a record with more than this many data bytes; longer
 * writes are split.  utr_drain() always makes progress with cap >= UTR_MAX_RECORD + 5. */
#define UTR_MAX_RECORD 8192
/* %p style: 0 = SystemTap >= 1.3 (%p is %#x, the default), 1 = --compatible < 1.3
 * (0x + 16 zero-padded digits).  Initial value of utr_ptr_compat_12. */
#ifndef UTR_PTR_COMPAT_12
#define UTR_PTR_COMPAT_12 0
#endif

#define UTR_HIST_LOG_BUCKETS 128
#define UTR_HIST_LOG_BUCKET0 64

#define UTR_LIKELY(x) __builtin_expect(!!(x), 1)
#define UTR_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* UTR_CDEF_BEGIN */
/* Value and key types of maps and function signatures. */
enum utr_type { UTR_T_NONE = 0, UTR_T_LONG = 1, UTR_T_STRING = 2, UTR_T_STATS = 3 };

/* Histogram kinds of an aggregate. */
enum utr_hist { UTR_HIST_NONE = 0, UTR_HIST_LOG = 1, UTR_HIST_LINEAR = 2 };

/* Session states kept in the region header. */
enum utr_state {
    UTR_ST_STARTING = 0, UTR_ST_RUNNING = 1, UTR_ST_STOPPING = 2,
    UTR_ST_ERROR = 3, UTR_ST_DONE = 4
};

/* Streams of an output record. */
enum utr_stream { UTR_OUT = 1, UTR_ERR = 2 };

/* An argument of printf/sprintf or a map key column. */
typedef union utr_arg {
    int64_t i;
    const char *s;
} utr_arg;

/* Describes a map at creation. */
typedef struct utr_map_spec {
    int32_t nkeys;          /* 1..9 */
    uint8_t ktype[9];       /* UTR_T_LONG or UTR_T_STRING per column */
    uint8_t vtype;          /* UTR_T_LONG, UTR_T_STRING or UTR_T_STATS */
    uint8_t wrap;           /* global a%[N]: replace the oldest entry when full */
    uint8_t hist_type;      /* for UTR_T_STATS values */
    int32_t capacity;       /* 0 = MAXMAPENTRIES */
    int32_t user_size;      /* N of global a[N], 0 if none (changes the overflow message) */
    int64_t hist_start, hist_stop, hist_interval;
    int32_t bit_shift;      /* @variance(a, shift) */
    uint8_t want_variance;  /* some @variance reads it: keep Welford's running mean */
} utr_map_spec;

/* Describes a scalar aggregate at creation. */
typedef struct utr_stat_spec {
    uint8_t hist_type;
    int64_t hist_start, hist_stop, hist_interval;
    int32_t bit_shift;
    uint8_t want_variance;  /* some @variance reads it: keep Welford's running mean */
} utr_stat_spec;

/* Aggregated statistics as read by @count..@variance and printed by @hist_*.
 * histogram[] holds `buckets` counts. */
typedef struct utr_stat_data {
    int64_t count, sum, min, max;
    int64_t avg_s, m2, variance_s, variance;
    int32_t shift;
    int32_t hist_type;
    int64_t hist_start, hist_stop, hist_interval;
    int32_t buckets;
    int64_t histogram[130];
} utr_stat_data;

/* Reader-writer lock living in the region (process-shared, futex-backed). */
typedef struct utr_rwlock { int32_t word; int32_t pad; } utr_rwlock;

/* Tracer-facing entry points (the generated script defines the utr_script_* ones). */
uint64_t utr_script_region_size(void);
int utr_script_setup(void *base, uint64_t size, int creator);
int utr_call_probe(int32_t index);
int32_t utr_state(void);
void utr_set_state(int32_t st);
int64_t utr_error_count(void);
int64_t utr_skipped_count(void);
int64_t utr_dropped_count(void);
int32_t utr_exit_requested(void);
/* Copies whole records into buf: each is a u32 length, a u8 stream, then the bytes.
 * Returns the number of bytes written (0 when the ring is empty). */
uint64_t utr_drain(void *buf, uint64_t cap);
/* The data of consecutive records of one stream, without their headers, into buf;
 * *stream says which (0: the ring is empty).  Returns the number of bytes. */
uint64_t utr_drain_stream(void *buf, uint64_t cap, int32_t *stream);
/* Probes the tracer runs on a target's behalf (process.end once the target is
 * gone) describe that target: context functions report this identity while set. */
void utr_set_identity(int64_t pid, int64_t tid, int64_t ppid, int64_t uid, int64_t euid,
                      const char *comm);
void utr_clear_identity(void);
/* The probe point pp() reports for armed site `site` (1..UTR_MAX_SITES-1): the tracer
 * records it before patching; a site's trampoline passes (site << 20 | probe). */
int utr_set_site_pp(int32_t site, const char *pp);
/* What a patched site runs (1..UTR_MAX_SITES-1): its trampoline passes the site
 * number.  add_probe appends a probe to run at the site (at most UTR_SITE_PROBES);
 * set_return makes every hit of an entry site hijack the return address so that
 * the probes of ret_site run when the function returns; set_hook marks the entry
 * of an unwinder function (UTR_HOOK_*): return addresses are put back before it
 * walks the stack. */
int utr_site_add_probe(int32_t site, int32_t probe);
int utr_site_set_return(int32_t site, int32_t ret_site);
int utr_site_set_hook(int32_t site, int32_t hook);
/* Return probes skipped because a thread's shadow stack was full, and frames whose
 * return probe never ran because longjmp or an exception unwound them. */
int64_t utr_ret_overflow_count(void);
int64_t utr_ret_unwound_count(void);
/* Hits of probed functions called from utrace's own code in that thread: no probe ran. */
int64_t utr_reentrant_count(void);
/* target(): the pid given with -x or started with -c. */
void utr_set_target_pid(int64_t pid);
/* Following forks (ctx.c): claim the context slot of thread tid of process pid
 * (its offset in the region, -1 when none is free), and the offset of the
 * thread's 24-byte TLS block {utr_ctx *, region base, int32 tid} from its thread
 * pointer. */
int64_t utr_ctx_claim_for(int32_t tid, int32_t pid);
int64_t utr_tls_offset(void);
/* Set by the tracer before begin probes run: argv of the script (for argv/argc). */
void utr_set_script_args(int32_t argc, const char **argv);
/* The symbol table for in-target usymname() & co (usymtab.c): bytes of one half (0:
 * the script uses none of those functions); begin returns the region offset of the
 * half to write (its first 4 bytes are the runtime's), commit makes it active;
 * wanted is 1 when the script uses the table, | 2 when a lookup missed since. */
uint64_t utr_usymtab_bytes(void);
uint64_t utr_usymtab_begin(void);
void utr_usymtab_commit(void);
int32_t utr_usymtab_wanted(void);
/* UTR_CDEF_END */

/* Registers of the probed thread at a patched site, as the trampoline pushed them
 * (injector/x86_64/trampoline.py REGS_FIELDS, lowest address first).  rip is the
 * site address, rsp the stack pointer at the site.  At a return site rsp points
 * at the slot the function returned from. */
struct utrace_regs {
    uint64_t rip, rsp, r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rdi, rsi, rbp, rbx, rdx, rcx, rax, rflags;
};

/* The registers of the site the running handler was entered through, NULL for
 * probes that run without one (begin, end, timer, process.begin/end). */
const struct utrace_regs *utr_uregs(void);

/* User backtraces (unwind.c): the pcs of the stack of the thread whose registers
 * are r, from .eh_frame CFI, frame 0 first (the probed pc); at most max.  Return
 * addresses hijacked by return probes are reported as the real ones. */
#ifndef MAXBACKTRACE
#define MAXBACKTRACE 20
#endif
int utr_unwind_regs(const struct utrace_regs *r, uint64_t *pcs, int max);
/* Same for the probe running now (0 frames without a site: begin, end, timer). */
int utr_ubacktrace_pcs(uint64_t *pcs, int max);

/* ---- Region header -------------------------------------------------- */

typedef struct utr_region_hdr {
    uint64_t magic;
    uint64_t size;
    uint64_t brk;            /* bump allocator: next free offset */
    uint64_t globals_off;    /* the generated script's struct of globals */
    uint64_t ring_off;       /* output ring */
    int32_t state;           /* enum utr_state */
    int32_t exit_requested;
    int64_t error_count;
    int64_t skipped_count;
    int64_t dropped_count;   /* records lost on a full ring */
    /* ---- fields below are runtime-private (not part of the cffi ABI) ---- */
    int64_t reentrant_count; /* hits of probed functions called from utrace's own code
                                in that thread (errno, memcpy, a handler's malloc):
                                ignored, and not the program's events, so not skipped */
    uint64_t ctx_pool_off;   /* array of UTR_NCTX context slots */
    int32_t ctx_pool_n;
    int32_t ring_lock;       /* spinlock serialising ring producers */
    uint64_t sites_off;      /* UTR_MAX_SITES probe points of armed sites, for pp() */
    uint64_t sitedesc_off;   /* UTR_MAX_SITES struct utr_site_desc */
    int64_t ret_overflow_count;
    int64_t ret_unwound_count;
    uint64_t usymtab_off;    /* two halves of UTR_USYMTAB_BYTES, 0 when not wanted */
    int32_t usym_active;     /* 0 none published, 1 or 2: the half in use */
    int32_t usym_stale;      /* a lookup found no answer: the tracer should republish */
} utr_region_hdr;

#define UTR_REGION_MAGIC 0x7574726163655231ull /* "utraceR1" */

extern char *utr_base;       /* this process's mapping of the region */
#define UTR_HDR ((utr_region_hdr *)utr_base)
#define UTR_AT(type, off) ((type *)(utr_base + (off)))

/* Initialise (creator) or adopt (non-creator) a region mapped at base. */
int utr_region_init(void *base, uint64_t size, int creator);
/* Bump-allocate zeroed, 64-byte aligned bytes in the region; returns the offset, 0 on exhaustion. */
uint64_t utr_region_alloc(uint64_t bytes);
/* Region bytes needed by the runtime itself (header, ring) besides globals/maps. */
uint64_t utr_runtime_region_size(void);
/* Bytes a map/stat created from this spec will need. */
uint64_t utr_map_size(const utr_map_spec *spec);
uint64_t utr_stat_size(const utr_stat_spec *spec);

/* ---- Per-hit context -------------------------------------------------- */

typedef struct utr_ctx {
    const char *last_error;          /* non-NULL once a runtime error happened */
    const char *last_stmt;           /* "operator '/' at file:1:2", for the ERROR line */
    const char *probe_point;         /* pp() */
    int32_t probe_index;
    int32_t nesting;                 /* function call depth */
    int64_t actionremaining;         /* MAXACTION budget of this hit */
    int32_t busy;                    /* reentrancy guard */
    int32_t aborted;                 /* abort(): stop without end probes */
    char error_buf[MAXSTRINGLEN];    /* message storage for error("...") and formatted errors */
    uint32_t outlen;                 /* bytes buffered in out[] */
    char out[UTR_OUTBUF_SIZE];       /* stdout produced by this hit */
    /* ---- runtime-private ---- */
    char fmtbuf[UTR_PRINTF_MAX + 1]; /* scratch of utr_printf */
    int32_t regparm;                 /* regparm(n) of this hit: 0 = ABI default, else 0x100 | n */
#ifdef __KERNEL__
    unsigned long irqflags;          /* interrupts are off for the whole hit */
    void *kregs;                     /* struct pt_regs of a kprobe/uprobe hit, else NULL */
    int32_t kret;                    /* kregs are a (k/u)retprobe's: return value in ax */
    uint32_t scratch_used;           /* bytes of scratch[] handed out (see utrace_kmod.h) */
    char *scratch;                   /* strings and stats of the handlers' frames */
#endif
} utr_ctx;

/* Begin a probe hit: returns the context, or NULL when the probe must be skipped
 * (reentrancy, session not running); a skip is counted. */
utr_ctx *utr_ctx_enter(int32_t probe_index, const char *pp, int32_t allowed_states);
/* End a probe hit: flushes output, reports and counts an error, applies MAXERRORS. */
void utr_ctx_exit(utr_ctx *c);
/* The context of the running hit in this thread (for tapset functions). */
utr_ctx *utr_ctx_current(void);

/* Record a runtime error once per hit (keeps the first). */
static inline void utr_error(utr_ctx *c, const char *msg, const char *stmt)
{
    if (!c->last_error) { c->last_error = msg; c->last_stmt = stmt; }
}
/* error(msg) from a script: copies the message into the context. */
void utr_error_str(utr_ctx *c, const char *msg, const char *stmt);
/* Count a skipped probe (lock timeout). */
void utr_count_skipped(void);
/* exit(): ask the session to stop after this handler. */
void utr_request_exit(void);
/* warn(msg): "WARNING: msg" on stderr, in order with stdout. */
void utr_warn(utr_ctx *c, const char *msg);
/* Raw stderr record (for messages the tracer prints verbatim). */
void utr_emit_err(const char *s, uint32_t n);

/* abort(): like exit() but end probes must not run (sets exit_requested = 2). */
void utr_request_abort(void);
/* The message of the last fault-safe memory read that failed in this thread
 * (%m/%M of printf/sprintf): "read fault [man error::fault] at 0x...", or NULL.
 * utr_printf/utr_sprintf also record it as the error of the running hit.
 * utr_clear_fault() resets it. */
const char *utr_last_fault(void);
void utr_clear_fault(void);
/* Copy n bytes at addr of this process into dst without ever faulting
 * (umem.c).  Returns the number of bytes read. */
size_t utr_read_mem(void *dst, uint64_t addr, size_t n);

/* ---- Fault-safe access to this process's memory (umem.c) -----------------
 * A bad address is a failure, never a signal; async-signal-safe, no malloc,
 * errno untouched.  Page protections are honoured (PROT_NONE cannot be read,
 * read-only memory cannot be written). */

/* Copy n bytes at addr into dst: 0, or -1 if any of them cannot be read. */
int utr_uread(void *dst, uint64_t addr, size_t n);
/* Copy n bytes from src to addr: 0, or -1 if any of them cannot be written
 * (bytes before the failing page may have been written). */
int utr_uwrite(uint64_t addr, const void *src, size_t n);
/* The size-byte (1, 2, 4 or 8) integer at addr, sign- or zero-extended; on a
 * fault (or another size) returns 0 and sets *fault to 1, else *fault = 0. */
int64_t utr_uread_int(uint64_t addr, int size, int is_signed, int *fault);
/* The NUL-terminated string at addr into dst (len bytes with its NUL): reads at
 * most len-1 bytes, a page at a time, stopping at the NUL, so a string ending
 * just before an unmapped page is fine.  Returns its length, or -EFAULT (dst
 * then holds what was read) — SystemTap's _stp_strncpy_from_user. */
int64_t utr_ustrncpy(char *dst, uint64_t addr, int64_t len);
/* Write src (at most len-1 bytes of it) and a NUL at addr: 0, or -1 on a fault. */
int utr_uwrite_str(uint64_t addr, const char *src, int64_t len);

/* ---- Registers and arguments of the probed thread (uregs.c) ---------------- */

/* register(name)/u_register(name) with stap's x86_64 names: 0, -1 when the
 * running probe has no registers (utr_uregs() == NULL), -2 for an unknown name. */
int utr_uregister(const char *name, int sign_extend, int64_t *out);
/* Argument n (1-based) at a function entry, SysV ABI (regparm(n) of the hit
 * honoured): 0; -1 no registers; -2 bad n; -3 its stack slot (*stack_addr)
 * cannot be read.  truncate: the low 32 bits, sign- or zero-extended. */
int utr_uarg(utr_ctx *c, int64_t n, int sign_extend, int truncate, int64_t *out,
             uint64_t *stack_addr);
/* Set argument n to val (size 4: the low 32 bits only, 8: all), in the saved
 * register (restored by the trampoline) or its stack slot: 0, -1, -2, -3 as above. */
int utr_uset_arg(utr_ctx *c, int64_t n, int64_t val, int size, uint64_t *stack_addr);

/* ---- Output ------------------------------------------------------------ */

void utr_print(utr_ctx *c, const char *s);
/* Backtraces as strings (usyms.c): ubacktrace()'s "0x.. 0x.." (MAXSTRINGLEN), the
 * callers from frame 1 (n of them, all when n < 0), the token the tracer turns
 * into symbol text of `kind` (usyms.py), and print_ubacktrace()'s output. */
void utr_ubacktrace_str(char *dst);
void utr_ucallers_str(char *dst, int64_t n);
void utr_usym_token(char *dst, int kind, const char *hexlist, int64_t addr);
void utr_print_ubacktrace(utr_ctx *c, int kind);
/* In-target symbol text from the published table (usymtab.c), the token when it
 * cannot answer: kind 'N' usymname, 'D' usymdata, 'M' umodname of addr; lines of
 * 'S' sprint_ubacktrace or 'Y' sprint_usyms for a hex list.  want: a tapset that
 * uses them asks for the table (from a constructor, before the region exists). */
void utr_usym_text(char *dst, int kind, int64_t addr);
void utr_usym_lines(char *dst, int kind, const char *hexlist);
void utr_usymtab_want(void);
void utr_print_n(utr_ctx *c, const char *s, uint32_t n);
void utr_print_long(utr_ctx *c, int64_t v);       /* print(v): decimal */
/* printf with SystemTap conversions; fmt was checked in pass 2 against args. */
void utr_printf(utr_ctx *c, const char *fmt, const utr_arg *args);
/* sprintf into dst (MAXSTRINGLEN bytes, silently truncated). */
void utr_sprintf(char *dst, const char *fmt, const utr_arg *args);
/* Format into buf of cap bytes; returns the untruncated length. */
size_t utr_vformat(char *buf, size_t cap, const char *fmt, const utr_arg *args);
/* Write the whole per-hit buffer to the ring now (also done by utr_ctx_exit). */
void utr_flush(utr_ctx *c);
/* 0: %p formats as %#x (SystemTap >= 1.3); 1: pre-1.3 style (0x + 16 digits). */
extern int utr_ptr_compat_12;

/* ---- Strings ------------------------------------------------------------ */

/* Copy/append bounded by MAXSTRINGLEN (dst always NUL-terminated). */
void utr_strcpy(char *dst, const char *src);
void utr_strcat(char *dst, const char *src);
/* Decimal text of v into dst. */
void utr_ltoa(char *dst, int64_t v);

/* ---- Locks -------------------------------------------------------------- */

/* Try for MAXTRYLOCK * TRYLOCKDELAY us; return 1 on success, 0 on timeout. */
int utr_read_lock(utr_rwlock *l);
int utr_write_lock(utr_rwlock *l);
void utr_read_unlock(utr_rwlock *l);
void utr_write_unlock(utr_rwlock *l);

/* ---- Maps (associative arrays) --------------------------------------------
 * A map is referred to by its region offset.  Keys are passed as an array of
 * utr_arg, one per column.  Iteration visits entries in insertion order.   */

uint64_t utr_map_new(const utr_map_spec *spec);
/* Lookups never create entries; a missing one reads as 0 or "". */
int64_t utr_map_get_long(uint64_t map, const utr_arg *key);
const char *utr_map_get_str(uint64_t map, const utr_arg *key);
int utr_map_exists(uint64_t map, const utr_arg *key);
/* Stores return 0, or -1 when the map is full (and does not wrap); then the
 * message for the error is in *err ("Array overflow, check MAXMAPENTRIES" or
 * "Array overflow, check size limit (N)"). */
int utr_map_set_long(uint64_t map, const utr_arg *key, int64_t v, const char **err);
int utr_map_set_str(uint64_t map, const utr_arg *key, const char *v, const char **err);
/* a[k] <<< v */
int utr_map_add_stat(uint64_t map, const utr_arg *key, int64_t v, const char **err);
/* Aggregated stats of one entry; returns 0 when the entry is missing (then out->count = 0). */
int utr_map_get_stat(uint64_t map, const utr_arg *key, utr_stat_data *out);
void utr_map_delete(uint64_t map, const utr_arg *key);
void utr_map_clear(uint64_t map);
int64_t utr_map_count(uint64_t map);

/* Iteration: an iterator is a snapshot of entry handles in visiting order.
 * sort_col: 0 = unsorted (insertion order), 1..9 = key column, -1 = value.
 * sort_dir: +1 ascending, -1 descending (stable either way).
 * sort_agg: for maps of stats sorted by value: 0 @count, 1 @sum, 2 @min, 3 @max, 4 @avg.
 * limit: -1 for none.  The iterator lives in the caller's storage. */
typedef struct utr_iter {
    uint64_t map;
    int64_t n;               /* entries in order[] */
    int64_t pos;
    int32_t order_cap;
    int32_t *order;          /* entry indices, malloc'd by utr_iter_init, freed by utr_iter_done */
} utr_iter;
void utr_iter_init(utr_iter *it, uint64_t map, int sort_col, int sort_dir, int sort_agg, int64_t limit);
/* Advance; returns 0 at the end. */
int utr_iter_next(utr_iter *it);
void utr_iter_done(utr_iter *it);
/* Key column k (0-based) and value of the current entry. */
int64_t utr_iter_key_long(utr_iter *it, int k);
const char *utr_iter_key_str(utr_iter *it, int k);
int64_t utr_iter_val_long(utr_iter *it);
const char *utr_iter_val_str(utr_iter *it);
void utr_iter_val_stat(utr_iter *it, utr_stat_data *out);

/* ---- Scalar aggregates ---------------------------------------------------- */

uint64_t utr_stat_new(const utr_stat_spec *spec);
void utr_stat_add(uint64_t stat, int64_t v);
/* Merge all slots exactly as SystemTap's stat.c does. */
void utr_stat_get(uint64_t stat, utr_stat_data *out);
void utr_stat_clear(uint64_t stat);

/* @avg/@min/@max/@variance of an empty aggregate are the error "empty aggregate";
 * the translator checks out->count first.  These compute the extractors: */
int64_t utr_stat_avg(const utr_stat_data *d);      /* integer division, as stap */
int64_t utr_stat_variance(const utr_stat_data *d);

/* print(@hist_log(s)) / print(@hist_linear(s, ...)): exact SystemTap layout. */
void utr_print_hist(utr_ctx *c, const utr_stat_data *d);
/* @hist_log(s)[i] style bucket read; -1 if out of range. */
int64_t utr_hist_bucket(const utr_stat_data *d, int64_t i);
/* sprint(@hist_*(s)): the same text, truncated to MAXSTRINGLEN-1 bytes. */
void utr_sprint_hist(char *dst, const utr_stat_data *d);

/* ---- Time and misc for tapsets ------------------------------------------- */

int64_t utr_time_ns(int clock);          /* clock_gettime(clock) in ns */
int64_t utr_randint(int64_t n);          /* 0..n-1 */
/* Script arguments stored by utr_set_script_args (process-local copies). */
int32_t utr_argc(void);
const char *utr_argv(int32_t i);          /* "" when out of range */

/* ---- Arithmetic with SystemTap's error rules ------------------------------ */

static inline int64_t utr_div(utr_ctx *c, int64_t x, int64_t y, const char *stmt)
{
    if (UTR_UNLIKELY(y == 0)) { utr_error(c, "division by 0", stmt); return 0; }
    if (UTR_UNLIKELY(y == -1)) return (int64_t)(0 - (uint64_t)x);
    return x / y;
}
static inline int64_t utr_mod(utr_ctx *c, int64_t x, int64_t y, const char *stmt)
{
    if (UTR_UNLIKELY(y == 0)) { utr_error(c, "division by 0", stmt); return 0; }
    if (UTR_UNLIKELY(y == 1 || y == -1)) return 0;
    return x % y;
}

/* ---- Tapset support (tapset_support.c) --------------------------------------- */

int64_t utr_gettid(void);
int64_t utr_pid(void);
int64_t utr_ppid(void);
int64_t utr_uid(void);
int64_t utr_euid(void);
int64_t utr_cpu(void);
int64_t utr_target_pid(void);
void utr_execname(char *dst);
void utr_str_replace(char *dst, const char *s, const char *from, const char *to);
void utr_text_str(char *dst, const char *in, int64_t len, int64_t quoted);
void utr_tokenize(utr_ctx *c, char *dst, const char *input, const char *delim);
void utr_ctime(char *dst, int64_t secs);

/* ---- Probe sites (sites.c) ------------------------------------------------------ */

typedef struct utr_site_desc {
    int32_t nprobes;
    int32_t ret_site;   /* nonzero: hijack the return address for this return site */
    int32_t hook;       /* UTR_HOOK_* */
    int32_t probes[UTR_SITE_PROBES];
} utr_site_desc;

/* Called by a site's entry trampoline in the traced thread. */
void utr_site_hit(uint64_t site, struct utrace_regs *regs);
/* Called by the return trampoline with rsp pointing at the slot the function
 * returned from; writes the real return address there. */
void utr_return_hit(uint64_t unused, struct utrace_regs *regs);
/* Where hijacked return addresses point (the tracer writes it when it places the
 * return trampoline in this process). */
extern uint64_t utr_ret_tramp_addr;
/* The trap tier (trap.c): install the SIGTRAP handler (once per process), then
 * record each int3 site before writing it: ool is its out-of-line copy. */
int utr_trap_install(void);
int utr_trap_add(uint64_t addr, uint64_t ool, int32_t site);
/* @entry(expr) (retprobe.c): saved by a function's entry probes into the call's
 * shadow entry, read by its return probes. */
#define UTR_ENTRY_VALS 8
void utr_entry_save(int32_t k, int64_t v);
int64_t utr_entry_load(int32_t k);
/* Return probes (retprobe.c). */
void _utr_hijack(int32_t ret_site, struct utrace_regs *regs);
void _utr_unwind_hook(int32_t hook, struct utrace_regs *regs);

/* ---- Regular expressions (regex.c) ----------------------------------------- */

#include <regex.h>
typedef struct utr_regex_site {
    _Atomic int state;   /* 0 new, 1 compiling, 2 ready */
    int ok;
    regex_t rx;
} utr_regex_site;
/* 1 on match, 0 on no match, -1 when the pattern does not compile. */
int utr_regex_match(utr_regex_site *site, const char *pattern, const char *subject);

#endif /* UTRACE_RT_H */
