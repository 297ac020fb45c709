/* trap.c — the in-process trap tier: int3 at a site and a SIGTRAP handler in the target. */
#define _GNU_SOURCE /* REG_RIP and the other ucontext register names */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include "utrace_rt.h"
#include "rt_internal.h"

/* Sites where a jump cannot be proven safe (a one-byte SDT nop, a function too
 * short for a jump, a jump target within reach) get an int3.  The kernel turns it
 * into SIGTRAP in the thread that hit it; this handler runs the site's probes with
 * the registers from the signal frame and resumes at an out-of-line copy of the
 * instruction the int3 replaced, which jumps back after it.  A SIGTRAP that is not
 * ours goes to the handler the program had.
 *
 * The table is the process's own memory (a fork child inherits it with the code
 * it describes); the tracer fills it with utr_trap_add before writing the int3. */

#ifndef UTR_MAX_TRAPS
#define UTR_MAX_TRAPS 4096 /* a power of two */
#endif

typedef struct {
    uint64_t addr;  /* the int3 */
    uint64_t ool;   /* where the displaced instruction runs */
    int32_t site;
    int32_t pad;
} _utr_trap;

_Static_assert(sizeof(struct sigaction) <= UTR_SCRATCH_BYTES, "scratch too small");

static _utr_trap _utr_traps[UTR_MAX_TRAPS];
static struct sigaction _utr_prev_trap;
static int _utr_trap_installed;

static uint32_t _utr_trap_hash(uint64_t addr)
{
    return (uint32_t)((addr * 0x9E3779B97F4A7C15ull) >> 40) & (UTR_MAX_TRAPS - 1);
}

int utr_trap_add(uint64_t addr, uint64_t ool, int32_t site)
{
    uint32_t i = _utr_trap_hash(addr), n;
    for (n = 0; n < UTR_MAX_TRAPS; n++, i = (i + 1) & (UTR_MAX_TRAPS - 1)) {
        _utr_trap *t = &_utr_traps[i];
        if (t->addr == 0 || t->addr == addr) {
            t->ool = ool;
            t->site = site;
            __atomic_store_n(&t->addr, addr, __ATOMIC_RELEASE);
            return 0;
        }
    }
    return -1;
}

static const _utr_trap *_utr_trap_find(uint64_t addr)
{
    uint32_t i = _utr_trap_hash(addr), n;
    for (n = 0; n < UTR_MAX_TRAPS; n++, i = (i + 1) & (UTR_MAX_TRAPS - 1)) {
        const _utr_trap *t = &_utr_traps[i];
        uint64_t a = __atomic_load_n(&t->addr, __ATOMIC_ACQUIRE);
        if (a == addr)
            return t;
        if (a == 0)
            return NULL;
    }
    return NULL;
}

static void _utr_on_trap(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    const _utr_trap *t = si->si_code == SI_KERNEL ? _utr_trap_find((uint64_t)g[REG_RIP] - 1)
                                                  : NULL;
    if (t) {
        struct utrace_regs r = {
            .rip = t->addr, .rsp = (uint64_t)g[REG_RSP],
            .r15 = (uint64_t)g[REG_R15], .r14 = (uint64_t)g[REG_R14],
            .r13 = (uint64_t)g[REG_R13], .r12 = (uint64_t)g[REG_R12],
            .r11 = (uint64_t)g[REG_R11], .r10 = (uint64_t)g[REG_R10],
            .r9 = (uint64_t)g[REG_R9], .r8 = (uint64_t)g[REG_R8],
            .rdi = (uint64_t)g[REG_RDI], .rsi = (uint64_t)g[REG_RSI],
            .rbp = (uint64_t)g[REG_RBP], .rbx = (uint64_t)g[REG_RBX],
            .rdx = (uint64_t)g[REG_RDX], .rcx = (uint64_t)g[REG_RCX],
            .rax = (uint64_t)g[REG_RAX], .rflags = (uint64_t)g[REG_EFL],
        };
        utr_site_hit((uint64_t)t->site, &r);
        /* What a handler changed (set_*_arg in guru mode, a hook's rewritten
         * argument) goes back to the thread, as the jump tier's pops do. */
        g[REG_R15] = (greg_t)r.r15; g[REG_R14] = (greg_t)r.r14;
        g[REG_R13] = (greg_t)r.r13; g[REG_R12] = (greg_t)r.r12;
        g[REG_R11] = (greg_t)r.r11; g[REG_R10] = (greg_t)r.r10;
        g[REG_R9] = (greg_t)r.r9; g[REG_R8] = (greg_t)r.r8;
        g[REG_RDI] = (greg_t)r.rdi; g[REG_RSI] = (greg_t)r.rsi;
        g[REG_RBP] = (greg_t)r.rbp; g[REG_RBX] = (greg_t)r.rbx;
        g[REG_RDX] = (greg_t)r.rdx; g[REG_RCX] = (greg_t)r.rcx;
        g[REG_RAX] = (greg_t)r.rax;
        g[REG_RIP] = (greg_t)t->ool;
        return;
    }
    /* Not ours: what the program asked for. */
    if (_utr_prev_trap.sa_flags & SA_SIGINFO) {
        if (_utr_prev_trap.sa_sigaction)
            _utr_prev_trap.sa_sigaction(sig, si, ucv);
        return;
    }
    if (_utr_prev_trap.sa_handler == SIG_IGN)
        return;
    if (_utr_prev_trap.sa_handler != SIG_DFL) {
        _utr_prev_trap.sa_handler(sig);
        return;
    }
    /* The default action (a core dump): put it back and let the trap happen again
     * or the signal be delivered again. */
    signal(SIGTRAP, SIG_DFL);
    if (si->si_code != SI_KERNEL)
        raise(SIGTRAP);
    else
        g[REG_RIP] -= 1;  /* re-execute the program's own int3 under SIG_DFL */
}

int utr_trap_install(void)
{
    struct sigaction sa;
    if (_utr_trap_installed)
        return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = _utr_on_trap;
    /* NODEFER: a trap site hit inside a probe handler must not find SIGTRAP
     * blocked (the kernel would kill the process); the context guard stops the
     * recursion.  RESTART: an interrupted system call goes on. */
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTRAP, &sa, &_utr_prev_trap) != 0)
        return -1;
    _utr_trap_installed = 1;
    return 0;
}

/* T-16: the kernel kills a thread that hits an int3 while SIGTRAP is blocked or
 * ignored.  While int3 sites are armed, a call that would block SIGTRAP runs with
 * a copy of its mask without it (the program's own memory is never written), and
 * a program installing its own SIGTRAP action gets it chained behind ours. */
void _utr_trap_hook(int32_t hook, struct utrace_regs *r)
{
    if (hook == UTR_HOOK_SIGMASK) {
        sigset_t *copy;
        if (r->rsi == 0 || (r->rdi != SIG_BLOCK && r->rdi != SIG_SETMASK))
            return;
        copy = _utr_thread_scratch();
        if (!copy || utr_uread(copy, r->rsi, sizeof(*copy)) != 0 || !sigismember(copy, SIGTRAP))
            return;  /* a bad pointer: the call itself reports EFAULT */
        sigdelset(copy, SIGTRAP);
        r->rsi = (uint64_t)copy;
    } else if (hook == UTR_HOOK_SIGACTION) {
        struct sigaction *copy;
        if (r->rsi == 0 || !_utr_trap_installed)
            return;
        copy = _utr_thread_scratch();
        if (!copy || utr_uread(copy, r->rsi, sizeof(*copy)) != 0)
            return;
        if ((int)r->rdi == SIGTRAP) {
            _utr_prev_trap = *copy;  /* theirs runs for the traps that are not ours */
            r->rsi = 0;              /* and ours stays installed */
        } else if (sigismember(&copy->sa_mask, SIGTRAP)) {
            sigdelset(&copy->sa_mask, SIGTRAP);  /* their handler runs with SIGTRAP open */
            r->rsi = (uint64_t)copy;
        }
    }
}
