/* unwind.c — user stack unwinding in the traced thread from .eh_frame CFI. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include "utrace_rt.h"
#include "rt_internal.h"

/* Why our own unwinder (docs/decisions.md, "User backtraces"): libgcc's
 * _Unwind_Backtrace walks the *current* stack, starting inside the handler and
 * the trampoline (which have no CFI), not from the registers saved at the probe
 * hit; libunwind would be a dependency dragged into every traced process.  The
 * unwinder here reads only the CFI the dynamic loader already mapped
 * (_dl_find_object: lock-free and async-signal-safe, the lookup libgcc itself
 * uses), caches the decoded row of each return address, and reads the stack
 * only inside the thread's own stack mapping. */

/* DWARF register numbers of x86_64; 16 is the return address column. */
enum { _RSP = 7, _RBP = 6, _RBX = 3, _RA = 16, _NREG = 17 };
enum { _SAME = 0, _UNDEF, _OFF, _VALOFF, _REG, _EXPR, _VALEXPR };

typedef struct {
    uint8_t how;
    uint8_t reg;
    int64_t off;
    const uint8_t *expr;
} _rule;

typedef struct {
    _rule r[_NREG];
    int cfa_reg;
    int64_t cfa_off;
    const uint8_t *cfa_expr;
} _row;

typedef struct {
    uint64_t v[_NREG];
    uint32_t valid;  /* bit per register: its value is known */
} _regs;

/* ---- reading CFI bytes (in a mapped module: plain loads) ---- */

static uint64_t _uleb(const uint8_t **p, const uint8_t *end)
{
    uint64_t v = 0;
    unsigned shift = 0;
    while (*p < end) {
        uint8_t b = *(*p)++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            break;
    }
    return v;
}

static int64_t _sleb(const uint8_t **p, const uint8_t *end)
{
    int64_t v = 0;
    unsigned shift = 0;
    uint8_t b = 0;
    while (*p < end) {
        b = *(*p)++;
        if (shift < 64)
            v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
        shift += 7;
        if (!(b & 0x80))
            break;
    }
    if (shift < 64 && (b & 0x40))
        v |= -((int64_t)1 << shift);
    return v;
}

/* A DW_EH_PE-encoded pointer; datarel is relative to `data`.  0 on a form we do
 * not read (the caller treats 0 as "no value"). */
static uint64_t _enc_ptr(const uint8_t **p, const uint8_t *end, uint8_t enc, uint64_t data)
{
    const uint8_t *s = *p;
    uint64_t v = 0, base = 0;
    if (enc == 0xff)
        return 0;
    switch (enc & 0x0f) {
    case 0x00: case 0x04: if (end - s < 8) return 0; memcpy(&v, s, 8); s += 8; break;
    case 0x01: v = _uleb(&s, end); break;
    case 0x09: v = (uint64_t)_sleb(&s, end); break;
    case 0x02: { uint16_t x; if (end - s < 2) return 0; memcpy(&x, s, 2); v = x; s += 2; break; }
    case 0x0a: { int16_t x; if (end - s < 2) return 0; memcpy(&x, s, 2); v = (uint64_t)(int64_t)x; s += 2; break; }
    case 0x03: { uint32_t x; if (end - s < 4) return 0; memcpy(&x, s, 4); v = x; s += 4; break; }
    case 0x0b: { int32_t x; if (end - s < 4) return 0; memcpy(&x, s, 4); v = (uint64_t)(int64_t)x; s += 4; break; }
    case 0x0c: if (end - s < 8) return 0; memcpy(&v, s, 8); s += 8; break;
    default: return 0;
    }
    switch (enc & 0x70) {
    case 0x00: break;
    case 0x10: base = (uint64_t)*p; break;
    case 0x30: base = data; break;
    default: return 0;
    }
    *p = s;
    v += base;
    if (enc & 0x80)  /* indirect: through a loaded, relocated pointer */
        v = v ? *(const uint64_t *)v : 0;
    return v;
}

/* ---- the thread's stack: reads never leave a mapping known to be there ---- */

static _UTR_TLS uint64_t _utr_stk[4];  /* two [lo, hi) ranges: the stack, a signal stack */

/* Find the private read-write mapping holding addr in /proc/self/maps (raw system
 * calls, no allocation: this runs in arbitrary threads and signal handlers): 1
 * found, 0 not, -1 when /proc cannot be read (a chroot, a sandbox). */
static int _utr_maps_lookup(uint64_t addr, uint64_t *lo, uint64_t *hi)
{
    char buf[4096];
    long fd = _utr_raw_syscall(SYS_openat, AT_FDCWD, (long)"/proc/self/maps", O_RDONLY | O_CLOEXEC,
                               0, 0, 0);
    long n, have = 0;
    int found = 0;
    if (fd < 0)
        return -1;
    while (!found && (n = _utr_raw_syscall(SYS_read, fd, (long)(buf + have),
                                           (long)(sizeof buf - 1 - have), 0, 0, 0)) > 0) {
        char *line = buf, *nl;
        have += n;
        buf[have] = 0;
        while ((nl = memchr(line, '\n', (size_t)(buf + have - line))) != NULL) {
            uint64_t a = 0, b = 0;
            char *c = line;
            for (; *c && *c != '-'; c++)
                a = a * 16 + (uint64_t)(*c <= '9' ? *c - '0' : (*c | 0x20) - 'a' + 10);
            for (c++; *c && *c != ' '; c++)
                b = b * 16 + (uint64_t)(*c <= '9' ? *c - '0' : (*c | 0x20) - 'a' + 10);
            if (addr >= a && addr < b && c[1] == 'r' && c[2] == 'w' && c[4] == 'p') {
                *lo = a;
                *hi = b;
                found = 1;
                break;
            }
            line = nl + 1;
        }
        have = buf + have - line;
        memmove(buf, line, (size_t)have);
        if (have >= (long)sizeof buf - 1)
            have = 0;  /* a line longer than the buffer: not a stack's */
    }
    _utr_raw_syscall(SYS_close, fd, 0, 0, 0, 0, 0);
    return found;
}

/* Read 8 bytes of stack at addr; 0 when addr is not in this thread's stack (or
 * signal stack) mapping.  *looked counts the /proc reads of this backtrace: two
 * at most (the probe's own stack the first time, and one other). */
static int _utr_stack_read(uint64_t addr, uint64_t *out, int *looked)
{
    int i, r;
    uint64_t lo, hi;
    if (addr & 7)
        return 0;
    for (i = 0; i < 4; i += 2)
        if (addr >= _utr_stk[i] && addr + 8 <= _utr_stk[i + 1]) {
            *out = *(const uint64_t *)addr;
            return 1;
        }
    if (*looked < 0)  /* no /proc: every read through the fault-safe path (~1 us) */
        return _utr_uread_upto(out, addr, 8) == 8;
    if (*looked >= 2)  /* the probe's stack and one more per backtrace */
        return 0;
    r = _utr_maps_lookup(addr, &lo, &hi);
    if (r < 0) {
        *looked = -1;
        return _utr_uread_upto(out, addr, 8) == 8;
    }
    ++*looked;
    if (r == 0)
        return 0;
    /* The first range is the one the probe's own stack pointer was in. */
    i = _utr_stk[1] == 0 ? 0 : 2;
    _utr_stk[i] = lo;
    _utr_stk[i + 1] = hi;
    *out = *(const uint64_t *)addr;
    return 1;
}

/* ---- CIE/FDE lookup through .eh_frame_hdr ---- */

typedef struct {
    uint64_t pc_begin, pc_end;
    const uint8_t *insns, *insns_end;      /* the FDE's program */
    const uint8_t *cie_insns, *cie_end;    /* the CIE's initial program */
    uint64_t code_align;
    int64_t data_align;
    int ra_reg;
    int signal;                            /* 'S' augmentation */
} _fde;

static int _utr_parse_cie(const uint8_t *cie, _fde *f, uint8_t *fde_enc)
{
    uint32_t len;
    const uint8_t *p = cie, *end;
    const char *aug;
    memcpy(&len, p, 4);
    p += 4;
    if (len == 0xffffffffu)
        return -1;  /* 64-bit DWARF: never emitted in .eh_frame on x86_64 */
    end = p + len;
    p += 4;  /* CIE id */
    if (*p != 1 && *p != 3)
        return -1;
    p++;
    aug = (const char *)p;
    p += strlen(aug) + 1;
    f->code_align = _uleb(&p, end);
    f->data_align = _sleb(&p, end);
    f->ra_reg = (int)_uleb(&p, end);
    *fde_enc = 0;
    f->signal = 0;
    if (aug[0] == 'z') {
        uint64_t alen = _uleb(&p, end);
        const uint8_t *aend = p + alen;
        for (const char *a = aug + 1; *a && p < aend; a++) {
            if (*a == 'R')
                *fde_enc = *p++;
            else if (*a == 'L')
                p++;
            else if (*a == 'P') {
                uint8_t enc = *p++;
                _enc_ptr(&p, aend, enc & 0x7f, 0);
            } else if (*a == 'S')
                f->signal = 1;
        }
        for (const char *a = aug + 1; *a; a++)
            if (*a == 'S')
                f->signal = 1;
        p = aend;
    } else if (aug[0]) {
        return -1;
    }
    f->cie_insns = p;
    f->cie_end = end;
    return 0;
}

static int _utr_find_fde(uint64_t pc, _fde *f)
{
    struct dl_find_object dlfo;
    const uint8_t *hdr, *p, *table;
    uint64_t count, lo, hi;
    int32_t loc, off;
    if (_dl_find_object((void *)pc, &dlfo) != 0 || !dlfo.dlfo_eh_frame)
        return -1;
    hdr = dlfo.dlfo_eh_frame;
    if (hdr[0] != 1 || hdr[2] != 0x03 || hdr[3] != 0x3b)
        return -1;  /* only the sorted table GNU ld and lld write (udata4 count, datarel sdata4) */
    p = hdr + 4;
    _enc_ptr(&p, p + 8, hdr[1], 0);  /* eh_frame_ptr */
    {
        uint32_t c;
        memcpy(&c, p, 4);
        count = c;
        p += 4;
    }
    table = p;
    lo = 0;
    hi = count;
    if (count == 0)
        return -1;
    while (hi - lo > 1) {
        uint64_t mid = (lo + hi) / 2;
        memcpy(&loc, table + mid * 8, 4);
        if ((uint64_t)hdr + (uint64_t)(int64_t)loc <= pc)
            lo = mid;
        else
            hi = mid;
    }
    memcpy(&loc, table + lo * 8, 4);
    memcpy(&off, table + lo * 8 + 4, 4);
    {
        const uint8_t *fde = hdr + off, *q, *end;
        uint32_t len, cie_ptr;
        uint8_t enc;
        memcpy(&len, fde, 4);
        if (len == 0 || len == 0xffffffffu)
            return -1;
        end = fde + 4 + len;
        memcpy(&cie_ptr, fde + 4, 4);
        if (_utr_parse_cie(fde + 4 - cie_ptr, f, &enc) != 0)
            return -1;
        q = fde + 8;
        f->pc_begin = _enc_ptr(&q, end, enc, 0);
        f->pc_end = f->pc_begin + _enc_ptr(&q, end, enc & 0x0f, 0);
        if (pc < f->pc_begin || pc >= f->pc_end)
            return -1;
        {
            const uint8_t *c = fde + 4 - cie_ptr;
            /* 'z' augmentation: a length, then data we do not need */
            const char *aug = (const char *)(c + 9);
            if (aug[0] == 'z') {
                uint64_t alen = _uleb(&q, end);
                q += alen;
            }
        }
        f->insns = q;
        f->insns_end = end;
    }
    return 0;
}

/* ---- the CFA program ---- */

#define _STATE_DEPTH 8

static void _utr_run_cfa(const uint8_t *p, const uint8_t *end, const _fde *f, uint64_t target,
                         _row *row, const _row *init, int stop_at_target)
{
    _row saved[_STATE_DEPTH];
    int nsaved = 0;
    uint64_t loc = f->pc_begin;
    while (p < end) {
        uint8_t op = *p++, low = op & 0x3f;
        uint64_t reg, delta = 0;
        int64_t off;
        switch (op & 0xc0) {
        case 0x40: delta = low * f->code_align; goto advance;
        case 0x80:
            off = (int64_t)_uleb(&p, end) * f->data_align;
            if (low < _NREG) { row->r[low].how = _OFF; row->r[low].off = off; }
            continue;
        case 0xc0:
            if (low < _NREG) row->r[low] = init->r[low];
            continue;
        }
        switch (op) {
        case 0x00: break;
        case 0x01: loc = _enc_ptr(&p, end, 0, 0); if (stop_at_target && loc > target) return; break;
        case 0x02: delta = *p++ * f->code_align; goto advance;
        case 0x03: { uint16_t d; memcpy(&d, p, 2); p += 2; delta = d * f->code_align; goto advance; }
        case 0x04: { uint32_t d; memcpy(&d, p, 4); p += 4; delta = d * f->code_align; goto advance; }
        case 0x05: case 0x11:
            reg = _uleb(&p, end);
            off = op == 0x05 ? (int64_t)_uleb(&p, end) * f->data_align : _sleb(&p, end) * f->data_align;
            if (reg < _NREG) { row->r[reg].how = _OFF; row->r[reg].off = off; }
            break;
        case 0x2f:
            reg = _uleb(&p, end);
            off = -(int64_t)_uleb(&p, end) * f->data_align;
            if (reg < _NREG) { row->r[reg].how = _OFF; row->r[reg].off = off; }
            break;
        case 0x14: case 0x15:
            reg = _uleb(&p, end);
            off = op == 0x14 ? (int64_t)_uleb(&p, end) * f->data_align : _sleb(&p, end) * f->data_align;
            if (reg < _NREG) { row->r[reg].how = _VALOFF; row->r[reg].off = off; }
            break;
        case 0x06: reg = _uleb(&p, end); if (reg < _NREG) row->r[reg] = init->r[reg]; break;
        case 0x07: reg = _uleb(&p, end); if (reg < _NREG) row->r[reg].how = _UNDEF; break;
        case 0x08: reg = _uleb(&p, end); if (reg < _NREG) row->r[reg].how = _SAME; break;
        case 0x09: {
            uint64_t r2;
            reg = _uleb(&p, end);
            r2 = _uleb(&p, end);
            if (reg < _NREG) { row->r[reg].how = _REG; row->r[reg].reg = (uint8_t)r2; }
            break;
        }
        case 0x0a: if (nsaved < _STATE_DEPTH) saved[nsaved++] = *row; break;
        case 0x0b:
            if (nsaved > 0)
                *row = saved[--nsaved];  /* the CFA rule too, as GCC's unwinder */
            break;
        case 0x0c:
            row->cfa_reg = (int)_uleb(&p, end);
            row->cfa_off = (int64_t)_uleb(&p, end);
            row->cfa_expr = NULL;
            break;
        case 0x12:
            row->cfa_reg = (int)_uleb(&p, end);
            row->cfa_off = _sleb(&p, end) * f->data_align;
            row->cfa_expr = NULL;
            break;
        case 0x0d: row->cfa_reg = (int)_uleb(&p, end); row->cfa_expr = NULL; break;
        case 0x0e: row->cfa_off = (int64_t)_uleb(&p, end); break;
        case 0x13: row->cfa_off = _sleb(&p, end) * f->data_align; break;
        case 0x0f: row->cfa_expr = p; p += _uleb(&p, end); break;
        case 0x10: case 0x16:
            reg = _uleb(&p, end);
            if (reg < _NREG) { row->r[reg].how = op == 0x10 ? _EXPR : _VALEXPR; row->r[reg].expr = p; }
            p += _uleb(&p, end);
            break;
        case 0x2e: _uleb(&p, end); break;  /* GNU_args_size */
        default: return;  /* unknown: keep what we have */
        }
        continue;
advance:
        loc += delta;
        if (stop_at_target && loc > target)
            return;
    }
}

/* A DWARF expression of the kinds CFI uses (breg, lit, const, arithmetic,
 * deref of the stack); 0 when it cannot be evaluated. */
static int _utr_eval(const uint8_t *p, const _regs *rs, uint64_t push, uint64_t *out, int *looked)
{
    uint64_t st[16];
    int sp = 0;
    uint64_t len = _uleb(&p, p + 16);
    const uint8_t *end = p + len;
    if (push != (uint64_t)-1)
        st[sp++] = push;
    while (p < end) {
        uint8_t op = *p++;
        if (sp >= 15)
            return 0;
        if (op >= 0x30 && op <= 0x4f) { st[sp++] = op - 0x30u; continue; }        /* lit */
        if (op >= 0x70 && op <= 0x8f) {                                          /* breg */
            int r = op - 0x70;
            int64_t o = _sleb(&p, end);
            if (r >= _NREG || !(rs->valid & (1u << r)))
                return 0;
            st[sp++] = rs->v[r] + (uint64_t)o;
            continue;
        }
        switch (op) {
        case 0x08: st[sp++] = *p++; break;
        case 0x09: st[sp++] = (uint64_t)(int64_t)(int8_t)*p++; break;
        case 0x0a: { uint16_t v; memcpy(&v, p, 2); p += 2; st[sp++] = v; break; }
        case 0x0b: { int16_t v; memcpy(&v, p, 2); p += 2; st[sp++] = (uint64_t)(int64_t)v; break; }
        case 0x0c: { uint32_t v; memcpy(&v, p, 4); p += 4; st[sp++] = v; break; }
        case 0x0d: { int32_t v; memcpy(&v, p, 4); p += 4; st[sp++] = (uint64_t)(int64_t)v; break; }
        case 0x10: st[sp++] = _uleb(&p, end); break;
        case 0x11: st[sp++] = (uint64_t)_sleb(&p, end); break;
        case 0x06:
            if (sp < 1 || !_utr_stack_read(st[sp - 1], &st[sp - 1], looked))
                return 0;
            break;
        case 0x23: if (sp < 1) return 0; st[sp - 1] += _uleb(&p, end); break;  /* plus_uconst */
        default: {
            uint64_t b, a;
            if (sp < 2)
                return 0;
            b = st[--sp];
            a = st[sp - 1];
            switch (op) {
            case 0x1a: a &= b; break;
            case 0x1c: a -= b; break;
            case 0x1e: a *= b; break;
            case 0x21: a |= b; break;
            case 0x22: a += b; break;
            case 0x24: a = b < 64 ? a << b : 0; break;
            case 0x25: a = b < 64 ? a >> b : 0; break;
            case 0x27: a ^= b; break;
            case 0x29: a = a == b; break;
            case 0x2a: a = (int64_t)a >= (int64_t)b; break;
            case 0x2b: a = (int64_t)a > (int64_t)b; break;
            case 0x2c: a = (int64_t)a <= (int64_t)b; break;
            case 0x2d: a = (int64_t)a < (int64_t)b; break;
            case 0x2e: a = a != b; break;
            default: return 0;
            }
            st[sp - 1] = a;
        }
        }
    }
    if (sp < 1)
        return 0;
    *out = st[sp - 1];
    return 1;
}

/* ---- the row cache: decoded rules per lookup pc, shared by the threads ---- */

#ifndef UTR_UNWIND_CACHE
#define UTR_UNWIND_CACHE 1 /* 0: decode the CFI at every frame (bench/bench_unwinders.py) */
#endif
#define _CACHE_SIZE 4096
typedef struct {
    uint32_t seq;       /* odd while being written */
    int8_t cfa_reg;
    uint8_t signal;
    uint8_t how[7];     /* rbx rbp r12 r13 r14 r15 ra: _SAME, _UNDEF or _OFF */
    uint64_t pc;
    int32_t cfa_off;
    int32_t off[7];
} _cached;

static _cached _utr_row_cache[_CACHE_SIZE];
static const uint8_t _utr_cached_regs[7] = { _RBX, _RBP, 12, 13, 14, 15, _RA };

static int _utr_cache_get(uint64_t pc, _cached *out)
{
    const _cached *c = &_utr_row_cache[(pc ^ (pc >> 12)) % _CACHE_SIZE];
    uint32_t s = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
    if ((s & 1) || s == 0)
        return 0;
    memcpy(out, c, sizeof *out);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return __atomic_load_n(&c->seq, __ATOMIC_RELAXED) == s && out->pc == pc;
}

static void _utr_cache_put(uint64_t pc, const _row *row, int signal)
{
    _cached *c = &_utr_row_cache[(pc ^ (pc >> 12)) % _CACHE_SIZE];
    uint32_t s = __atomic_load_n(&c->seq, __ATOMIC_RELAXED);
    int i;
    if ((s & 1) || row->cfa_expr || (row->cfa_reg != _RSP && row->cfa_reg != _RBP) ||
        row->cfa_off != (int32_t)row->cfa_off)
        return;
    for (i = 0; i < 7; i++) {
        const _rule *r = &row->r[_utr_cached_regs[i]];
        if (r->how > _OFF || r->off != (int32_t)r->off)
            return;
    }
    if (!__atomic_compare_exchange_n(&c->seq, &s, s + 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return;  /* another thread is writing it */
    c->pc = pc;
    c->cfa_reg = (int8_t)row->cfa_reg;
    c->cfa_off = (int32_t)row->cfa_off;
    c->signal = (uint8_t)signal;
    for (i = 0; i < 7; i++) {
        c->how[i] = row->r[_utr_cached_regs[i]].how;
        c->off[i] = (int32_t)row->r[_utr_cached_regs[i]].off;
    }
    __atomic_store_n(&c->seq, s + 2, __ATOMIC_RELEASE);
}

/* ---- stepping one frame ---- */

/* glibc's __restore_rt: mov $__NR_rt_sigreturn, %rax; syscall. */
static const uint8_t _utr_sigreturn[9] = { 0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05 };

/* The interrupted context of a signal frame: rsp points at the ucontext. */
static int _utr_step_signal(_regs *rs, int *looked)
{
    static const int8_t gmap[_NREG] = {
        REG_RAX, REG_RDX, REG_RCX, REG_RBX, REG_RSI, REG_RDI, REG_RBP, REG_RSP,
        REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15, REG_RIP };
    uint64_t base = rs->v[_RSP] + offsetof(ucontext_t, uc_mcontext.gregs);
    _regs n;
    int r;
    n.valid = 0;
    for (r = 0; r < _NREG; r++) {
        if (!_utr_stack_read(base + 8 * (uint64_t)gmap[r], &n.v[r], looked))
            return 0;
        n.valid |= 1u << r;
    }
    *rs = n;
    return 1;
}

static uint64_t _utr_rule_value(const _rule *r, int reg, uint64_t cfa, const _regs *rs,
                                int *ok, int *looked)
{
    uint64_t v = 0;
    *ok = 1;
    switch (r->how) {
    case _SAME:
        *ok = (rs->valid >> reg) & 1;
        return rs->v[reg];
    case _OFF:
        *ok = _utr_stack_read(cfa + (uint64_t)r->off, &v, looked);
        return v;
    case _VALOFF:
        return cfa + (uint64_t)r->off;
    case _REG:
        *ok = r->reg < _NREG && ((rs->valid >> r->reg) & 1);
        return *ok ? rs->v[r->reg] : 0;
    case _EXPR:
        *ok = _utr_eval(r->expr, rs, cfa, &v, looked) && _utr_stack_read(v, &v, looked);
        return v;
    case _VALEXPR:
        *ok = _utr_eval(r->expr, rs, cfa, &v, looked);
        return v;
    default:
        *ok = 0;
        return 0;
    }
}

/* Step from the frame whose pc is rs->v[_RA] to its caller.  exact: pc is where
 * the thread stopped (frame 0, or a frame a signal interrupted), not a return
 * address, so it is looked up as is rather than as pc - 1.  Returns 1 and
 * updates rs (and *exact, *ra_slot) or 0 at the end of the stack. */
static int _utr_step(_regs *rs, int *exact, uint64_t *ra_slot, int *looked)
{
    uint64_t pc = rs->v[_RA], lookup = *exact ? pc : pc - 1, cfa;
    _cached c;
    _regs n;
    int i, ok;
    if (UTR_UNWIND_CACHE && _utr_cache_get(lookup, &c)) {
        int creg = c.cfa_reg;
        if (!((rs->valid >> creg) & 1))
            return 0;
        cfa = rs->v[creg] + (uint64_t)(int64_t)c.cfa_off;
        n = *rs;
        for (i = 0; i < 7; i++) {
            int reg = _utr_cached_regs[i];
            if (c.how[i] == _OFF) {
                if (!_utr_stack_read(cfa + (uint64_t)(int64_t)c.off[i], &n.v[reg], looked)) {
                    if (reg == _RA)
                        return 0;
                    n.valid &= ~(1u << reg);
                }
            } else if (c.how[i] == _UNDEF) {
                if (reg == _RA)
                    return 0;
                n.valid &= ~(1u << reg);
            }
        }
        *ra_slot = c.how[6] == _OFF ? cfa + (uint64_t)(int64_t)c.off[6] : 0;
        n.v[_RSP] = cfa;
        n.valid |= 1u << _RSP;
        *exact = 0;
        if (c.signal)
            *exact = 1;
        *rs = n;
        return 1;
    }
    {
        _fde f;
        _row init, row;
        int found = _utr_find_fde(lookup, &f) == 0;
        /* glibc's __restore_rt has an FDE marked 'S'; without one, look at the code
         * anyway (a fault-safe read: pc may be anything).  Either way the frame is
         * the kernel's signal frame, read from its ucontext. */
        if (!found || f.signal) {
            uint8_t code[sizeof _utr_sigreturn];
            if (_utr_uread_upto(code, pc, sizeof code) == sizeof code &&
                memcmp(code, _utr_sigreturn, sizeof code) == 0) {
                if (!_utr_step_signal(rs, looked))
                    return 0;
                *exact = 1;
                *ra_slot = 0;
                return 1;
            }
        }
        if (!found)
            return 0;
        memset(&init, 0, sizeof init);
        init.cfa_reg = _RSP;
        _utr_run_cfa(f.cie_insns, f.cie_end, &f, 0, &init, &init, 0);
        row = init;
        _utr_run_cfa(f.insns, f.insns_end, &f, lookup, &row, &init, 1);
        if (f.ra_reg != _RA)
            return 0;
        _utr_cache_put(lookup, &row, f.signal);
        if (row.cfa_expr) {
            if (!_utr_eval(row.cfa_expr, rs, (uint64_t)-1, &cfa, looked))
                return 0;
        } else {
            if (row.cfa_reg < 0 || row.cfa_reg >= _NREG || !((rs->valid >> row.cfa_reg) & 1))
                return 0;
            cfa = rs->v[row.cfa_reg] + (uint64_t)row.cfa_off;
        }
        n.valid = 0;
        for (i = 0; i < _NREG; i++) {
            uint64_t v = _utr_rule_value(&row.r[i], i, cfa, rs, &ok, looked);
            if (row.r[i].how == _UNDEF || !ok) {
                if (i == _RA)
                    return 0;
                continue;
            }
            n.v[i] = v;
            n.valid |= 1u << i;
        }
        *ra_slot = row.r[_RA].how == _OFF ? cfa + (uint64_t)row.r[_RA].off : 0;
        n.v[_RSP] = cfa;
        n.valid |= 1u << _RSP;
        *exact = f.signal;
        *rs = n;
        return 1;
    }
}

int utr_unwind_regs(const struct utrace_regs *r, uint64_t *pcs, int max)
{
    _regs rs;
    int n = 0, exact = 1, looked = 0;
    uint64_t tramp = utr_ret_tramp_addr, slot = 0;
    if (!r || max <= 0)
        return 0;
    rs.v[0] = r->rax; rs.v[1] = r->rdx; rs.v[2] = r->rcx; rs.v[3] = r->rbx;
    rs.v[4] = r->rsi; rs.v[5] = r->rdi; rs.v[6] = r->rbp; rs.v[7] = r->rsp;
    rs.v[8] = r->r8; rs.v[9] = r->r9; rs.v[10] = r->r10; rs.v[11] = r->r11;
    rs.v[12] = r->r12; rs.v[13] = r->r13; rs.v[14] = r->r14; rs.v[15] = r->r15;
    rs.v[_RA] = r->rip;
    rs.valid = (1u << _NREG) - 1;
    if (_utr_stk[1] == 0 || r->rsp < _utr_stk[0] || r->rsp >= _utr_stk[1])
        _utr_stk[1] = 0;  /* a new thread or another stack: look its mapping up again */
    /* The second range (a stack a signal frame led to) may be gone since: never kept. */
    _utr_stk[2] = _utr_stk[3] = 0;
    if (r->rip == 0) {
        /* A return probe: the function has returned to the real address, now back
         * in the slot rsp points at. */
        if (!_utr_stack_read(r->rsp, &rs.v[_RA], &looked))
            return 0;
        rs.v[_RSP] = r->rsp + 8;
        exact = 0;
    }
    for (;;) {
        uint64_t pc = rs.v[_RA], sp = rs.v[_RSP];
        int was_exact = exact;
        if (tramp && pc == tramp && slot)
            rs.v[_RA] = pc = _utr_ret_orig(slot);  /* a hijacked return address */
        if (pc == 0)
            break;
        pcs[n++] = pc;
        if (n >= max || !_utr_step(&rs, &exact, &slot, &looked))
            break;
        if (!was_exact && !exact && rs.v[_RSP] <= sp)
            break;  /* outside signal frames the stack grows up as we go out */
    }
    return n;
}

int utr_ubacktrace_pcs(uint64_t *pcs, int max)
{
    return utr_unwind_regs(utr_uregs(), pcs, max);
}
