/* uregs.c — registers and function arguments of the probed thread, for
 * tapsets/registers.stp (register(), u_register(), int_arg() and friends).
 *
 * The registers are the struct utrace_regs the site's trampoline pushed
 * (utr_uregs(); NULL for begin/end/timer/process.begin probes).  Names and
 * widths are those of SystemTap's tapset/x86_64/registers.stp, whose code
 * reads 8 bytes at the register's pt_regs offset and then truncates or
 * sign-extends to the width of the table the name was found in: so "ax" is
 * the low 16 bits of rax, "flags" the low 16 bits of eflags, "ah" bits 8-15.
 * Arguments follow the SysV x86_64 ABI as stap's _stp_get_arg64_by_number:
 * 1-6 in rdi rsi rdx rcx r8 r9 (fewer with regparm(n)), the rest on the stack
 * above the return address, at rsp + 8 * (n - nregs) at function entry.
 */
#include "rt_internal.h"

enum { _R64 = 0, _R32 = 1, _R16 = 2, _R8 = 3 };

/* Offsets in struct utrace_regs; negative: a register the trampoline does not
 * save, whose value at a user function probe is fixed. */
#define _O(f) ((int)offsetof(struct utrace_regs, f))
#define _ORIG_AX (-1)   /* orig_rax: -1 outside a system call */
#define _CS (-2)        /* __USER_CS of a 64-bit task */
#define _SS (-3)        /* __USER_DS */

static const struct { const char *name; short off; unsigned char width, shift; } _utr_regtab[] = {
    { "r15", _O(r15), _R64, 0 }, { "r14", _O(r14), _R64, 0 }, { "r13", _O(r13), _R64, 0 },
    { "r12", _O(r12), _R64, 0 }, { "rbp", _O(rbp), _R64, 0 }, { "rbx", _O(rbx), _R64, 0 },
    { "r11", _O(r11), _R64, 0 }, { "r10", _O(r10), _R64, 0 }, { "r9", _O(r9), _R64, 0 },
    { "r8", _O(r8), _R64, 0 }, { "rax", _O(rax), _R64, 0 }, { "rcx", _O(rcx), _R64, 0 },
    { "rdx", _O(rdx), _R64, 0 }, { "rsi", _O(rsi), _R64, 0 }, { "rdi", _O(rdi), _R64, 0 },
    { "orig_rax", _ORIG_AX, _R64, 0 }, { "rip", _O(rip), _R64, 0 }, { "xcs", _CS, _R64, 0 },
    { "eflags", _O(rflags), _R64, 0 }, { "rsp", _O(rsp), _R64, 0 }, { "xss", _SS, _R64, 0 },

    { "ebp", _O(rbp), _R32, 0 }, { "ebx", _O(rbx), _R32, 0 }, { "eax", _O(rax), _R32, 0 },
    { "ecx", _O(rcx), _R32, 0 }, { "edx", _O(rdx), _R32, 0 }, { "esi", _O(rsi), _R32, 0 },
    { "edi", _O(rdi), _R32, 0 }, { "orig_eax", _ORIG_AX, _R32, 0 }, { "eip", _O(rip), _R32, 0 },
    { "esp", _O(rsp), _R32, 0 },

    { "bp", _O(rbp), _R16, 0 }, { "bx", _O(rbx), _R16, 0 }, { "ax", _O(rax), _R16, 0 },
    { "cx", _O(rcx), _R16, 0 }, { "dx", _O(rdx), _R16, 0 }, { "si", _O(rsi), _R16, 0 },
    { "di", _O(rdi), _R16, 0 }, { "orig_ax", _ORIG_AX, _R16, 0 }, { "ip", _O(rip), _R16, 0 },
    { "cs", _CS, _R16, 0 }, { "flags", _O(rflags), _R16, 0 }, { "sp", _O(rsp), _R16, 0 },
    { "ss", _SS, _R16, 0 },

    { "al", _O(rax), _R8, 0 }, { "ah", _O(rax), _R8, 8 }, { "bl", _O(rbx), _R8, 0 },
    { "bh", _O(rbx), _R8, 8 }, { "cl", _O(rcx), _R8, 0 }, { "ch", _O(rcx), _R8, 8 },
    { "dl", _O(rdx), _R8, 0 }, { "dh", _O(rdx), _R8, 8 },
};

int utr_uregister(const char *name, int sign_extend, int64_t *out)
{
    const struct utrace_regs *r = utr_uregs();
    size_t i;
    uint64_t v;
    if (!r)
        return -1;
    for (i = 0; i < sizeof _utr_regtab / sizeof _utr_regtab[0]; i++)
        if (strcmp(_utr_regtab[i].name, name) == 0)
            break;
    if (i == sizeof _utr_regtab / sizeof _utr_regtab[0])
        return -2;
    switch (_utr_regtab[i].off) {
    case _ORIG_AX: v = (uint64_t)-1; break;
    case _CS: v = 0x33; break;
    case _SS: v = 0x2b; break;
    default: memcpy(&v, (const char *)r + _utr_regtab[i].off, sizeof v); break;
    }
    v >>= _utr_regtab[i].shift;
    switch (_utr_regtab[i].width) {
    case _R32: *out = sign_extend ? (int64_t)(int32_t)(uint32_t)v : (int64_t)(v & 0xffffffffu); break;
    case _R16: *out = sign_extend ? (int64_t)(int16_t)(uint16_t)v : (int64_t)(v & 0xffffu); break;
    case _R8: *out = sign_extend ? (int64_t)(int8_t)(uint8_t)v : (int64_t)(v & 0xffu); break;
    default: *out = (int64_t)v; break;
    }
    return 0;
}

int utr_uarg(utr_ctx *c, int64_t n, int sign_extend, int truncate, int64_t *out,
             uint64_t *stack_addr)
{
    const struct utrace_regs *r = utr_uregs();
    int nregs = (c && c->regparm) ? (c->regparm & 0xff) : 6;
    uint64_t v;
    *out = 0;
    if (!r)
        return -1;
    if (n < 1)
        return -2;
    if (n > nregs) {
        /* stack[0] is the return address */
        uint64_t a = r->rsp + 8 * (uint64_t)(n - nregs);
        uint64_t page_end = (r->rsp | 4095u) + 1;
        *stack_addr = a;
        if (a >= r->rsp && a + 8 <= page_end && a + 8 > a)
            memcpy(&v, (const void *)(uintptr_t)a, 8);   /* the return address's own page */
        else if (utr_uread(&v, a, 8) != 0)
            return -3;
    } else {
        switch (n) {
        case 1: v = r->rdi; break;
        case 2: v = r->rsi; break;
        case 3: v = r->rdx; break;
        case 4: v = r->rcx; break;
        case 5: v = r->r8; break;
        default: v = r->r9; break;
        }
    }
    if (truncate)
        *out = sign_extend ? (int64_t)(int32_t)(uint32_t)v : (int64_t)(v & 0xffffffffu);
    else
        *out = (int64_t)v;
    return 0;
}

int utr_uset_arg(utr_ctx *c, int64_t n, int64_t val, int size, uint64_t *stack_addr)
{
    struct utrace_regs *r = (struct utrace_regs *)utr_uregs();  /* the trampoline pops it back */
    int nregs = (c && c->regparm) ? (c->regparm & 0xff) : 6;
    uint64_t *slot;
    if (!r)
        return -1;
    if (n < 1)
        return -2;
    if (n > nregs) {
        uint64_t a = r->rsp + 8 * (uint64_t)(n - nregs);
        *stack_addr = a;
        return utr_uwrite(a, &val, size == 4 ? 4 : 8) == 0 ? 0 : -3;   /* little-endian */
    }
    switch (n) {
    case 1: slot = &r->rdi; break;
    case 2: slot = &r->rsi; break;
    case 3: slot = &r->rdx; break;
    case 4: slot = &r->rcx; break;
    case 5: slot = &r->r8; break;
    default: slot = &r->r9; break;
    }
    if (size == 4)   /* set_kernel_int on the saved register: its low 32 bits */
        *slot = (*slot & ~(uint64_t)0xffffffffu) | (uint32_t)val;
    else
        *slot = (uint64_t)val;
    return 0;
}
