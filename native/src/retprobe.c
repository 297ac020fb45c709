/* retprobe.c — return probes: per-thread shadow stacks of hijacked return addresses. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>

#include "utrace_rt.h"
#include "rt_internal.h"

/* A function entry with return probes swaps the return address on the stack for
 * the return trampoline and remembers the real one here; the trampoline asks for
 * it back.  An entry is known by its stack slot, so that a frame unwound by
 * longjmp or an exception is recognised when an outer frame returns: entries
 * deeper than the returning slot are dead.
 *
 * The stacks live in private anonymous memory, never in the shared region: a
 * fork() child inherits a consistent copy of its thread's stack with the rest of
 * its memory, and a thread's stack is only ever touched by that thread (and its
 * signal handlers, which push and pop above whatever they interrupted). */

#define _UTR_RESTORED 1 /* the real return address is back in the slot (unwinding) */

typedef struct {
    uint64_t slot;      /* stack address of the return address */
    uint64_t orig;      /* what was there */
    int32_t ret_site;
    int32_t flags;
    int64_t vals[UTR_ENTRY_VALS];  /* @entry(expr) values of this call */
    uint64_t func;      /* the function's entry, for print_ubacktrace's "Returning from" */
} _utr_shadow_ent;

#define _UTR_SCRATCH_SLOTS 8

typedef struct {
    uint32_t depth;
    uint32_t cap;
    uint32_t scratch_next;
    uint32_t pad[5];
    int64_t pending[UTR_ENTRY_VALS];  /* @entry values saved by this entry's probes */
    int64_t current[UTR_ENTRY_VALS];  /* those of the call whose return probes run */
    /* per-thread scratch for hooks that rewrite a call's arguments (trap.c); slots
     * rotate so that a signal handler making the same call does not reuse one */
    uint64_t scratch[_UTR_SCRATCH_SLOTS][UTR_SCRATCH_BYTES / 8];
    _utr_shadow_ent e[];
} _utr_shadow;

uint64_t utr_ret_tramp_addr;
_UTR_TLS uint64_t _utr_ret_func;
static _UTR_TLS _utr_shadow *_utr_tls_shadow;
static pthread_key_t _utr_shadow_key;
static int _utr_shadow_key_ok;

static uint64_t _utr_shadow_bytes(void)
{
    return sizeof(_utr_shadow) + (uint64_t)UTR_SHADOW_DEPTH * sizeof(_utr_shadow_ent);
}

/* Set once this thread's shadow stack is gone: it is exiting, past its key destructors,
 * where glibc still calls (probed) functions such as free.  A shadow stack made then
 * has no destructor left to free it: it is unmapped as soon as it is empty again. */
static _UTR_TLS int _utr_shadow_dead;

static void _utr_shadow_free(void *p)
{
    _utr_shadow *s = p;
    if (!s)
        return;
    if (s->depth > 0)
        return;  /* frames below still return through it (pthread_exit inside them) */
    if (s == _utr_tls_shadow)
        _utr_tls_shadow = NULL;  /* it ran in the exiting thread: no dangling pointer */
    _utr_shadow_dead = 1;
    _utr_raw_syscall(SYS_munmap, (long)p, (long)_utr_shadow_bytes(), 0, 0, 0, 0);
}

__attribute__((constructor)) static void _utr_retprobe_ctor(void)
{
    _utr_shadow_key_ok = pthread_key_create(&_utr_shadow_key, _utr_shadow_free) == 0;
}

static _utr_shadow *_utr_shadow_get(void)
{
    _utr_shadow *s = _utr_tls_shadow;
    long p;
    if (UTR_LIKELY(s != NULL))
        return s;
    /* Untouched pages cost nothing: only the depth a thread reaches is backed. */
    p = _utr_raw_syscall(SYS_mmap, 0, (long)_utr_shadow_bytes(), 3 /* RW */, 0x22 /* PRIVATE|ANON */,
                 -1, 0);
    if (p < 0 && p > -4096)
        return NULL;
    s = (_utr_shadow *)p;
    s->cap = UTR_SHADOW_DEPTH;
    if (_utr_shadow_key_ok && !_utr_shadow_dead)
        pthread_setspecific(_utr_shadow_key, s);  /* unmapped when the thread exits */
    _utr_tls_shadow = s;
    return s;
}

void *_utr_thread_scratch(void)
{
    _utr_shadow *s = _utr_shadow_get();
    if (!s)
        return NULL;
    return s->scratch[s->scratch_next++ % _UTR_SCRATCH_SLOTS];
}

void utr_entry_save(int32_t k, int64_t v)
{
    _utr_shadow *s = _utr_shadow_get();
    if (s && k >= 0 && k < UTR_ENTRY_VALS)
        s->pending[k] = v;
}

int64_t utr_entry_load(int32_t k)
{
    _utr_shadow *s = _utr_tls_shadow;
    return (s && k >= 0 && k < UTR_ENTRY_VALS) ? s->current[k] : 0;
}

static void _utr_count(int64_t *counter)
{
    if (utr_base)
        __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

int64_t utr_ret_overflow_count(void)
{
    return __atomic_load_n(&UTR_HDR->ret_overflow_count, __ATOMIC_RELAXED);
}

int64_t utr_ret_unwound_count(void)
{
    return __atomic_load_n(&UTR_HDR->ret_unwound_count, __ATOMIC_RELAXED);
}

/* Drop the top entries whose frames are gone: their slots lie below `sp`, the
 * stack pointer of a frame that is running (the stack grows down). */
static void _utr_drop_dead(_utr_shadow *s, uint64_t sp)
{
    while (s->depth > 0 && s->e[s->depth - 1].slot < sp) {
        s->depth--;
        _utr_count(&UTR_HDR->ret_unwound_count);
    }
}

/* A longjmp leaves entries whose frames are gone on top, with slots at or below
 * the new entry's.  Such a slot no longer holding the trampoline proves its frame
 * dead: the slot has been reused.  (One still holding it is a tail call's chain:
 * both exits must run.)  Only slots just below the current stack pointer are
 * read, which this thread's stack has mapped; an entry of another stack (a
 * signal stack, a coroutine) is left alone. */
#define _UTR_JUMPED_WINDOW (64u << 10)

static void _utr_drop_jumped(_utr_shadow *s, uint64_t sp, uint64_t tramp)
{
    while (s->depth > 0) {
        const _utr_shadow_ent *e = &s->e[s->depth - 1];
        if (e->slot > sp || sp - e->slot >= _UTR_JUMPED_WINDOW ||
            *(const uint64_t *)e->slot == tramp)
            return;
        s->depth--;
        _utr_count(&UTR_HDR->ret_unwound_count);
    }
}

void _utr_hijack(int32_t ret_site, struct utrace_regs *regs)
{
    uint64_t tramp = utr_ret_tramp_addr, *slot = (uint64_t *)regs->rsp;
    _utr_shadow *s;
    _utr_shadow_ent *e;
    uint32_t d;
    if (!tramp)
        return;
    s = _utr_shadow_get();
    if (s)
        _utr_drop_jumped(s, regs->rsp, tramp);
    if (s && s->depth == s->cap)
        _utr_drop_dead(s, regs->rsp);
    if (!s || s->depth == s->cap) {
        _utr_count(&UTR_HDR->ret_overflow_count);
        return;
    }
    /* Reserve the entry before filling it: a signal handler arriving in between
     * pushes and pops above it. */
    d = s->depth;
    __atomic_store_n(&s->depth, d + 1, __ATOMIC_RELAXED);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    e = &s->e[d];
    e->slot = regs->rsp;
    e->orig = *slot;   /* the trampoline itself after a tail call: both exits run */
    e->ret_site = ret_site;
    e->flags = 0;
    e->func = regs->rip;
    memcpy(e->vals, s->pending, sizeof(e->vals));
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    *slot = tramp;
}

/* Take entry i out.  Entries above it were pushed by frames that never came back
 * through the trampoline: longjmp'd or unwound past — they lie below cur on this
 * stack.  One above cur belongs to another stack (a coroutine): keep it. */
static void _utr_remove(_utr_shadow *s, uint32_t i, uint64_t cur)
{
    uint32_t j, k = i;
    for (j = i + 1; j < s->depth; j++) {
        if (s->e[j].slot < cur)
            _utr_count(&UTR_HDR->ret_unwound_count);
        else
            s->e[k++] = s->e[j];
    }
    s->depth = k;
}

static void _utr_lost(uint64_t slot)
{
    static const char msg[] = "utrace: a return probe lost its return address; aborting\n";
    (void)slot;
    _utr_raw_syscall(SYS_write, 2, (long)msg, sizeof(msg) - 1, 0, 0, 0);
    __builtin_trap();
}

void utr_return_hit(uint64_t unused, struct utrace_regs *regs)
{
    int saved, nested = _utr_in_runtime;
    _utr_shadow *s = _utr_tls_shadow;
    uint64_t cur = regs->rsp;
    int32_t i, ret_site;
    uint64_t func, outer = _utr_ret_func;
    (void)unused;
    _utr_in_runtime++;
    saved = *_utr_errno_ptr();
    if (!s)
        _utr_lost(cur);
    for (i = (int32_t)s->depth - 1; i >= 0; i--)
        if (s->e[i].slot == cur)
            break;
    if (i < 0)
        _utr_lost(cur);
    *(uint64_t *)cur = s->e[i].orig;
    ret_site = s->e[i].ret_site;
    func = s->e[i].func;
    memcpy(s->current, s->e[i].vals, sizeof(s->current));
    _utr_remove(s, (uint32_t)i, cur);
    /* The return trampoline reports the function's address as the site's rip. */
    regs->rip = 0;
    _utr_ret_func = func;
    if (utr_base && utr_state() == UTR_ST_RUNNING) {
        if (nested)  /* the real address is back; the probe itself would nest */
            _utr_count_nested();
        else
            _utr_run_site(ret_site, regs);
    }
    _utr_ret_func = outer;
    if (UTR_UNLIKELY(_utr_shadow_dead) && s->depth == 0) {  /* see _utr_shadow_free */
        _utr_tls_shadow = NULL;
        _utr_raw_syscall(SYS_munmap, (long)s, (long)_utr_shadow_bytes(), 0, 0, 0, 0);
    }
    *_utr_errno_ptr() = saved;
    _utr_in_runtime--;
}

/* The unwinder finds a frame's caller through its return address: one that points
 * at the trampoline has no unwind information and would end the search
 * (std::terminate).  Before an exception or a forced unwind walks the stack, the
 * real addresses go back; when a handler catches, the frames below the catching
 * one are gone and the others are hijacked again. */
#define _UTR_SAME_STACK (256ull << 20)

void _utr_unwind_hook(int32_t hook, struct utrace_regs *regs)
{
    _utr_shadow *s = _utr_tls_shadow;
    uint64_t tramp = utr_ret_tramp_addr, sp = regs->rsp;
    int32_t i;
    if (!s || !tramp)
        return;
    if (hook == UTR_HOOK_RESTORE) {
        _utr_drop_dead(s, sp);
        for (i = (int32_t)s->depth - 1; i >= 0; i--) {
            _utr_shadow_ent *e = &s->e[i];
            uint64_t *slot = (uint64_t *)e->slot;
            if ((e->flags & _UTR_RESTORED) || e->slot - sp > _UTR_SAME_STACK)
                continue;
            if (*slot == tramp) {
                *slot = e->orig;
                e->flags |= _UTR_RESTORED;
            }
        }
    } else if (hook == UTR_HOOK_CATCH) {
        /* sp is the catching frame's call into __cxa_begin_catch: every frame
         * that was below the catcher had its return slot at or below sp. */
        _utr_drop_dead(s, sp + 1);
        for (i = 0; i < (int32_t)s->depth; i++) {
            _utr_shadow_ent *e = &s->e[i];
            uint64_t *slot = (uint64_t *)e->slot;
            if (!(e->flags & _UTR_RESTORED) || e->slot - sp > _UTR_SAME_STACK)
                continue;
            if (*slot == e->orig) {
                *slot = tramp;
                e->flags &= ~_UTR_RESTORED;
            }
        }
    }
}

/* The real return address of the hijacked frame whose return address lives at
 * `slot` (the unwinder meets the trampoline there), 0 when none is known.  A
 * tail call's chain holds the trampoline in the newer entry: keep looking. */
uint64_t _utr_ret_orig(uint64_t slot)
{
    const _utr_shadow *s = _utr_tls_shadow;
    int32_t i;
    if (!s)
        return 0;
    for (i = (int32_t)s->depth - 1; i >= 0; i--)
        if (s->e[i].slot == slot && s->e[i].orig != utr_ret_tramp_addr)
            return s->e[i].orig;
    return 0;
}
