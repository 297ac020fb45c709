/* kctx.c — the kernel runtime's per-CPU hit contexts, scratch memory, probe
 * registers and the context/time/memory functions tapsets call.
 *
 * A hit runs with local interrupts off from utr_ctx_enter to utr_ctx_exit, so
 * a CPU's context is never shared: a probe that fires inside another hit on
 * the same CPU (a kprobe hit from a timer's handler) finds it busy and is
 * skipped, as SystemTap's per-CPU contexts do. */
#include "rt_internal.h"
#include "utrace_kmod.h"

#include <linux/irqflags.h>
#include <linux/ptrace.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/cred.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/percpu.h>
#include <linux/time.h>

static utr_ctx **kctx;      /* one per possible CPU */
static int kctx_n;
DEFINE_PER_CPU(struct pt_regs *, _utr_pending_regs);
DEFINE_PER_CPU(int, _utr_pending_ret);

/* Region space for user-runtime context slots: none, contexts are per CPU here. */
uint64_t _utr_ctx_pool_bytes(void) { return 0; }
void _utr_ctx_pool_init(void) { UTR_HDR->ctx_pool_off = 1; UTR_HDR->ctx_pool_n = 0; }

int _utr_kctx_init(void)
{
    int i;
    kctx_n = num_possible_cpus();
    kctx = kcalloc(kctx_n, sizeof(*kctx), GFP_KERNEL);
    if (!kctx)
        return -ENOMEM;
    for (i = 0; i < kctx_n; i++) {
        kctx[i] = vzalloc(sizeof(utr_ctx) + UTR_KSCRATCH);
        if (!kctx[i])
            return -ENOMEM;
        kctx[i]->scratch = (char *)(kctx[i] + 1);
    }
    return 0;
}

void _utr_kctx_free(void)
{
    int i;
    if (!kctx)
        return;
    for (i = 0; i < kctx_n; i++)
        vfree(kctx[i]);
    kfree(kctx);
    kctx = NULL;
}

/* Hits of kprobes and kretprobes pass their registers through the CPU. */
void _utr_kset_regs(struct pt_regs *regs, int ret)
{
    this_cpu_write(_utr_pending_regs, regs);
    this_cpu_write(_utr_pending_ret, ret);
}

utr_ctx *utr_ctx_enter(int32_t probe_index, const char *pp, int32_t allowed_states)
{
    unsigned long flags;
    int32_t st;
    utr_ctx *c;

    local_irq_save(flags);
    if (unlikely(!utr_base || !kctx))
        goto skip;
    st = utr_state();
    if (st < 0 || st > 30 || !((allowed_states >> st) & 1))
        goto skip;
    c = kctx[smp_processor_id()];
    if (unlikely(c->busy)) {
        __atomic_add_fetch(&UTR_HDR->reentrant_count, 1, __ATOMIC_RELAXED);
        utr_count_skipped();
        goto skip;
    }
    c->busy = 1;
    c->irqflags = flags;
    c->last_error = NULL;
    c->last_stmt = NULL;
    c->probe_point = pp;
    c->probe_index = probe_index;
    c->nesting = 0;
    c->actionremaining = MAXACTION;
    c->aborted = 0;
    c->outlen = 0;
    c->error_buf[0] = 0;
    c->regparm = 0;
    c->kregs = this_cpu_read(_utr_pending_regs);
    c->kret = this_cpu_read(_utr_pending_ret);
    c->scratch_used = 0;
    return c;
skip:
    local_irq_restore(flags);
    return NULL;
}

utr_ctx *utr_ctx_current(void)
{
    utr_ctx *c;
    if (!kctx || !irqs_disabled())
        return NULL;
    c = kctx[smp_processor_id()];
    return c->busy ? c : NULL;
}

void utr_ctx_exit(utr_ctx *c)
{
    unsigned long flags;
    if (!c)
        return;
    utr_flush(c);
    if (c->aborted) {
        c->last_error = NULL;
        c->aborted = 0;
    }
    if (c->last_error)
        _utr_report_error(c);
    c->probe_point = NULL;
    flags = c->irqflags;
    barrier();
    c->busy = 0;
    local_irq_restore(flags);
}

void *utr_scratch(utr_ctx *c, uint32_t bytes)
{
    static char spill[2][MAXSTRINGLEN * 4];
    uint32_t at = (c->scratch_used + 15u) & ~15u;
    if (unlikely(bytes > UTR_KSCRATCH || at > UTR_KSCRATCH - bytes)) {
        utr_error(c, "MAXNESTING exceeded (kernel scratch memory for strings, "
                  "-D UTR_KSCRATCH=BYTES raises it)", NULL);
        return spill[smp_processor_id() & 1];
    }
    c->scratch_used = at + bytes;
    memset(c->scratch + at, 0, bytes < 16 ? bytes : 16);
    return c->scratch + at;
}

struct pt_regs *utr_kregs(utr_ctx *c)
{
    return c ? (struct pt_regs *)c->kregs : NULL;
}

int utr_kregister(utr_ctx *c, const char *name, int64_t *out)
{
    static const struct { const char *n; int off; } regs[] = {
#define R(x) { #x, offsetof(struct pt_regs, x) }
        R(ax), R(bx), R(cx), R(dx), R(si), R(di), R(bp), R(sp), R(ip), R(r8), R(r9),
        R(r10), R(r11), R(r12), R(r13), R(r14), R(r15), R(flags), R(orig_ax),
#undef R
        { "rax", offsetof(struct pt_regs, ax) }, { "rbx", offsetof(struct pt_regs, bx) },
        { "rcx", offsetof(struct pt_regs, cx) }, { "rdx", offsetof(struct pt_regs, dx) },
        { "rsi", offsetof(struct pt_regs, si) }, { "rdi", offsetof(struct pt_regs, di) },
        { "rbp", offsetof(struct pt_regs, bp) }, { "rsp", offsetof(struct pt_regs, sp) },
        { "rip", offsetof(struct pt_regs, ip) },
    };
    struct pt_regs *r = utr_kregs(c);
    size_t i;
    if (!r)
        return -1;
    for (i = 0; i < ARRAY_SIZE(regs); i++)
        if (strcmp(regs[i].n, name) == 0) {
            *out = *(int64_t *)((char *)r + regs[i].off);
            return 0;
        }
    return -2;
}

int utr_karg(utr_ctx *c, int64_t n, int64_t *out)
{
    struct pt_regs *r = utr_kregs(c);
    if (!r)
        return -1;
    switch (n) {
    case 1: *out = (int64_t)r->di; return 0;
    case 2: *out = (int64_t)r->si; return 0;
    case 3: *out = (int64_t)r->dx; return 0;
    case 4: *out = (int64_t)r->cx; return 0;
    case 5: *out = (int64_t)r->r8; return 0;
    case 6: *out = (int64_t)r->r9; return 0;
    default: return -2;
    }
}

int utr_kreturn(utr_ctx *c, int64_t *out)
{
    struct pt_regs *r = utr_kregs(c);
    if (!r || !c->kret)
        return -1;
    *out = (int64_t)regs_return_value(r);
    return 0;
}

/* ---- context functions: the current task ---- */

int64_t utr_gettid(void) { return task_pid_nr(current); }
int64_t utr_pid(void) { return task_tgid_nr(current); }
int64_t utr_ppid(void)
{
    int64_t p;
    rcu_read_lock();
    p = task_tgid_nr(rcu_dereference(current->real_parent));
    rcu_read_unlock();
    return p;
}
int64_t utr_uid(void) { return from_kuid_munged(current_user_ns(), current_uid()); }
int64_t utr_euid(void) { return from_kuid_munged(current_user_ns(), current_euid()); }
int64_t utr_cpu(void) { return raw_smp_processor_id(); }

static int64_t target_pid;
void utr_set_target_pid(int64_t pid) { target_pid = pid; }
int64_t utr_target_pid(void) { return target_pid; }

void utr_execname(char *dst)
{
    __get_task_comm(dst, MAXSTRINGLEN, current);
}

void utr_set_identity(int64_t pid, int64_t tid, int64_t ppid, int64_t uid, int64_t euid,
                      const char *comm)
{
    (void)pid; (void)tid; (void)ppid; (void)uid; (void)euid; (void)comm;
}
void utr_clear_identity(void) { }

/* ---- time, random numbers, arguments ---- */

int64_t utr_time_ns(int clock)
{
    return clock == 1 ? (int64_t)ktime_get_ns() : (int64_t)ktime_get_real_ns();
}

int64_t utr_randint(int64_t n)
{
    return n <= 1 ? 0 : (int64_t)(get_random_u64() % (uint64_t)n);
}

void utr_ctime(char *dst, int64_t secs)
{
    static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;
    if (secs < INT32_MIN || secs > INT32_MAX) {
        utr_strcpy(dst, "<invalid time>");
        return;
    }
    time64_to_tm(secs, 0, &tm);
    snprintf(dst, MAXSTRINGLEN, "%s %s %2d %02d:%02d:%02d %ld", days[tm.tm_wday],
             months[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             tm.tm_year + 1900);
}

static char _utr_args[16][MAXSTRINGLEN];
static int32_t _utr_nargs;
void utr_set_script_args(int32_t argc, const char **argv)
{
    int32_t i;
    _utr_nargs = argc < 0 ? 0 : argc > 16 ? 16 : argc;
    for (i = 0; i < _utr_nargs; i++)
        utr_strcpy(_utr_args[i], argv[i] ? argv[i] : "");
}
int32_t utr_argc(void) { return _utr_nargs; }
const char *utr_argv(int32_t i) { return (i >= 0 && i < _utr_nargs) ? _utr_args[i] : ""; }

/* ---- memory of the current task (user) and of the kernel ---- */

size_t utr_read_mem(void *dst, uint64_t addr, size_t n)
{
    return _utr_uread_upto(dst, addr, n);
}

static int _utr_read_chunk(void *dst, uint64_t addr, size_t k)
{
    long r;
    if (addr < TASK_SIZE_MAX) {
        pagefault_disable();  /* a hit cannot sleep to fault a page in */
        r = __copy_from_user_inatomic(dst, (const void __user *)(uintptr_t)addr, k);
        pagefault_enable();
        return r ? -1 : 0;
    }
    return copy_from_kernel_nofault(dst, (const void *)(uintptr_t)addr, k) ? -1 : 0;
}

/* Readable bytes at addr, up to n: user addresses of the current task, or kernel ones. */
size_t _utr_uread_upto(void *dst, uint64_t addr, size_t n)
{
    size_t done = 0;
    while (done < n) {
        size_t k = n - done > 256 ? 256 : n - done;
        if (_utr_read_chunk((char *)dst + done, addr + done, k)) {
            while (k-- && !_utr_read_chunk((char *)dst + done, addr + done, 1))
                done++;  /* find the first byte that cannot be read */
            return done;
        }
        done += k;
    }
    return done;
}

int utr_uread(void *dst, uint64_t addr, size_t n)
{
    return _utr_uread_upto(dst, addr, n) == n ? 0 : -1;
}

int64_t utr_uread_int(uint64_t addr, int size, int is_signed, int *fault)
{
    union { int8_t b; int16_t h; int32_t w; int64_t q; } v = { 0 };
    *fault = 0;
    if ((size != 1 && size != 2 && size != 4 && size != 8) || utr_uread(&v, addr, (size_t)size)) {
        *fault = 1;
        return 0;
    }
    switch (size) {
    case 1: return is_signed ? v.b : (uint8_t)v.b;
    case 2: return is_signed ? v.h : (uint16_t)v.h;
    case 4: return is_signed ? v.w : (uint32_t)v.w;
    default: return v.q;
    }
}

int64_t utr_ustrncpy(char *dst, uint64_t addr, int64_t len)
{
    int64_t i;
    if (len <= 0)
        return 0;
    for (i = 0; i < len - 1; i++) {
        char ch;
        if (utr_uread(&ch, addr + (uint64_t)i, 1)) {
            dst[i] = 0;
            return -EFAULT;
        }
        dst[i] = ch;
        if (!ch)
            return i;
    }
    dst[i] = 0;
    return i;
}

int utr_uwrite(uint64_t addr, const void *src, size_t n)
{
    (void)addr; (void)src; (void)n;
    return -1;  /* guru-mode writes are the user runtime's */
}

int utr_uwrite_str(uint64_t addr, const char *src, int64_t len)
{
    (void)addr; (void)src; (void)len;
    return -1;
}

const struct utrace_regs *utr_uregs(void) { return NULL; }

int utr_uregister(const char *name, int sign_extend, int64_t *out)
{
    (void)sign_extend;  /* every name kregister knows is a full 64-bit register */
    return utr_kregister(utr_ctx_current(), name, out);
}

int utr_uarg(utr_ctx *c, int64_t n, int sign_extend, int truncate, int64_t *out,
             uint64_t *stack_addr)
{
    int r = utr_karg(c, n, out);
    *stack_addr = 0;
    if (r == 0 && truncate)
        *out = sign_extend ? (int64_t)(int32_t)*out : (int64_t)(uint32_t)*out;
    return r;
}

int utr_uset_arg(utr_ctx *c, int64_t n, int64_t val, int size, uint64_t *stack_addr)
{
    (void)c; (void)n; (void)val; (void)size; (void)stack_addr;
    return -1;
}

void utr_entry_save(int32_t k, int64_t v) { (void)k; (void)v; }
int64_t utr_entry_load(int32_t k) { (void)k; return 0; }

int utr_regex_match(utr_regex_site *site, const char *pattern, const char *subject)
{
    (void)site; (void)pattern; (void)subject;
    return -1;  /* reported as an invalid expression: not in the kernel runtime yet */
}

/* User symbol tables are published by the user runtime's tracer (usymtab.c); a module
 * has none, so region.c reserves no room for one. */
uint64_t utr_usymtab_bytes(void)
{
    return 0;
}
