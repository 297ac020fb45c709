/* ctx.c — per-thread probe contexts, hit entry/exit, errors, warnings, output
 * buffering.
 *
 * The region holds UTR_NCTX context slots.  A thread claims a free slot (CAS on
 * the slot's tid) the first time it runs a handler and finds it again through
 * an initial-exec TLS pointer, so the probe path never allocates.  When every
 * slot is taken, slots of threads that no longer exist (tgkill(pid, tid, 0)
 * fails with ESRCH) are reclaimed.  A fork()ed child forgets the parent's slot
 * through a pthread_atfork child handler; a child of a raw fork/clone syscall
 * (no atfork handlers run) is fixed by the tracer, which follows every fork:
 * it zeroes the child's TLS block (_utr_tls, at utr_tls_offset() from the thread
 * pointer) before the child runs.  A vfork/posix_spawn child shares the TLS of
 * its parent thread, which is blocked until the child execs or exits: it uses
 * that thread's slot, which the tracer claims beforehand for the parent thread
 * (utr_ctx_claim_for), so that the slot is never left registered to the child.
 * The pointers stored in a context (last_error, probe_point...) are only ever
 * used by the owning thread, in its own process.
 */
#define _GNU_SOURCE
#include "rt_internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct _utr_ctx_slot {
    int32_t tid;
    int32_t pid;
    int32_t pad[14];
    utr_ctx ctx;
} _utr_ctx_slot;

#define _UTR_SLOT_SIZE _UTR_ALIGN64(sizeof(_utr_ctx_slot))

/* The thread's context, the region it belongs to and its tid (0: not known yet):
 * one TLS block, so that the tracer can reset it in a forked child with one write
 * (utr_tls_offset() locates it; 24 bytes). */
static _UTR_TLS struct {
    utr_ctx *ctx;
    char *base;
    int32_t tid;
    int32_t pad;
} _utr_tls;
#define _utr_tls_ctx _utr_tls.ctx
#define _utr_tls_base _utr_tls.base

uint64_t _utr_ctx_pool_bytes(void)
{
    return (uint64_t)_UTR_SLOT_SIZE * UTR_NCTX;
}

void _utr_ctx_pool_init(void)
{
    utr_region_hdr *h = UTR_HDR;
    h->ctx_pool_off = utr_region_alloc(_utr_ctx_pool_bytes());
    h->ctx_pool_n = h->ctx_pool_off ? UTR_NCTX : 0;
}

static void _utr_atfork_child(void)
{
    _utr_tls_ctx = NULL;
    _utr_tls_base = NULL;
    _utr_tls.tid = 0;
}

int32_t _utr_self_tid(void)
{
    int32_t t = _utr_tls.tid;
    if (UTR_UNLIKELY(t == 0)) {
        t = (int32_t)_utr_raw_syscall(SYS_gettid, 0, 0, 0, 0, 0, 0);
        _utr_tls.tid = t;
    }
    return t;
}

__attribute__((constructor)) static void _utr_ctx_ctor(void)
{
    pthread_atfork(NULL, NULL, _utr_atfork_child);
}

static _utr_ctx_slot *_utr_slot(int32_t i)
{
    return (_utr_ctx_slot *)(utr_base + UTR_HDR->ctx_pool_off + (uint64_t)i * _UTR_SLOT_SIZE);
}

/* A slot for thread tid of process pid: the one it has already, else a free one,
 * else one of a thread that is gone. */
static _utr_ctx_slot *_utr_slot_claim(int32_t tid, int32_t pid)
{
    utr_region_hdr *h = UTR_HDR;
    int32_t i, n = h->ctx_pool_n;
    int pass;

    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < n; i++) {
            _utr_ctx_slot *s = _utr_slot(i);
            int32_t old = __atomic_load_n(&s->tid, __ATOMIC_ACQUIRE);
            if (old == tid && s->pid == pid)   /* ours already (TLS was reset) */
                return s;
            if (old != 0) {
                if (pass == 0 || old == tid)
                    continue;
                /* second pass: reclaim slots of dead threads */
                if (__atomic_load_n(&s->ctx.busy, __ATOMIC_ACQUIRE))
                    continue;
                if (_utr_raw_syscall(SYS_tgkill, s->pid, old, 0, 0, 0, 0) != -ESRCH)
                    continue;
            }
            if (__atomic_compare_exchange_n(&s->tid, &old, tid, 0,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                s->pid = pid;
                s->ctx.busy = 0;
                return s;
            }
        }
    }
    return NULL;
}

static utr_ctx *_utr_ctx_claim(void)
{
    /* Raw syscalls: a probed getpid or syscall() would re-enter (T-14). */
    _utr_ctx_slot *s = _utr_slot_claim(_utr_self_tid(),
                                       (int32_t)_utr_raw_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0));
    if (!s)
        return NULL;
    _utr_tls_ctx = &s->ctx;
    _utr_tls_base = utr_base;
    return &s->ctx;
}

int64_t utr_ctx_claim_for(int32_t tid, int32_t pid)
{
    _utr_ctx_slot *s;
    if (!utr_base || tid <= 0 || pid <= 0)
        return -1;
    s = _utr_slot_claim(tid, pid);
    return s ? (int64_t)((char *)&s->ctx - utr_base) : -1;
}

int64_t utr_tls_offset(void)
{
    char *tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    return (int64_t)((char *)&_utr_tls - tp);
}

__thread const char *_utr_site_pp __attribute__((tls_model("initial-exec")));

utr_ctx *utr_ctx_enter(int32_t probe_index, const char *pp, int32_t allowed_states)
{
    int32_t st;
    utr_ctx *c;

    if (UTR_UNLIKELY(!utr_base))
        return NULL;
    st = utr_state();
    if (st < 0 || st > 30 || !((allowed_states >> st) & 1))
        return NULL;
    c = _utr_tls_ctx;
    if (UTR_UNLIKELY(!c || _utr_tls_base != utr_base)) {   /* first hit, or a new region */
        c = _utr_ctx_claim();
        if (!c) {
            utr_count_skipped();
            return NULL;
        }
    }
    if (UTR_UNLIKELY(c->busy)) {
        __atomic_add_fetch(&UTR_HDR->reentrant_count, 1, __ATOMIC_RELAXED);
        utr_count_skipped();
        return NULL;
    }
    c->busy = 1;
    _utr_in_runtime++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    c->last_error = NULL;
    c->last_stmt = NULL;
    c->probe_point = _utr_site_pp ? _utr_site_pp : pp;  /* a patched site names itself */
    c->probe_index = probe_index;
    c->nesting = 0;
    c->actionremaining = MAXACTION;
    c->aborted = 0;
    c->outlen = 0;
    c->error_buf[0] = 0;
    c->regparm = 0;
    return c;
}

utr_ctx *utr_ctx_current(void)
{
    utr_ctx *c = _utr_tls_ctx;
    return (c && _utr_tls_base == utr_base && c->busy) ? c : NULL;
}

void utr_ctx_exit(utr_ctx *c)
{
    if (!c)
        return;
    utr_flush(c);
    if (c->aborted) {
        /* abort(): the handler stopped on purpose; not an error. */
        c->last_error = NULL;
        c->aborted = 0;
    }
    if (c->last_error)
        _utr_report_error(c);
    c->probe_point = NULL;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    c->busy = 0;
    _utr_in_runtime--;
}

