/* region.c — the shared region: header, bump allocator, session counters and
 * the output ring.
 *
 * Ring design (deliberately simple): one byte ring in the region, producers in
 * any thread of any process serialise on a spinlock word in the header
 * (ring_lock) for reservation + copy; the single consumer (utr_drain, the
 * tracer) never takes the lock.  head/tail are free-running byte counters:
 * producers publish head with a release store after copying, the consumer
 * publishes tail with a release store after copying out.  A record that does
 * not fit in the free space is dropped and counted; nothing unread is ever
 * overwritten and no producer ever waits for the consumer.  If the lock cannot
 * be taken within a bounded number of attempts (a producer died holding it),
 * the record is dropped too, so a probe hit never hangs.
 *
 * Record layout in the ring and in utr_drain's output: u32 length (little
 * endian), u8 stream, then `length` data bytes; records are contiguous and
 * wrap around the end of the ring byte by byte.
 */
#include "rt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

char *utr_base;

typedef struct _utr_ring {
    uint64_t head;   /* bytes ever written (producers) */
    uint64_t pad0[7];
    uint64_t tail;   /* bytes ever consumed (consumer) */
    uint64_t pad1[7];
    uint64_t size;   /* data bytes */
    uint64_t pad2[7];
    char data[];
} _utr_ring;

#define _UTR_HDR_SIZE _UTR_ALIGN64(sizeof(utr_region_hdr))
#define _UTR_RING_BYTES _UTR_ALIGN64(sizeof(_utr_ring) + UTR_RING_SIZE)

extern uint64_t _utr_ctx_pool_bytes(void);
extern void _utr_ctx_pool_init(void);

uint64_t utr_runtime_region_size(void)
{
    /* each allocation may lose up to 63 bytes to alignment */
    return _UTR_HDR_SIZE + _UTR_RING_BYTES + 64 + _utr_ctx_pool_bytes() + 64 +
           (uint64_t)UTR_MAX_SITES * UTR_SITE_PPLEN + 64 +
           (uint64_t)UTR_MAX_SITES * sizeof(utr_site_desc) + 64 + 4096 +
           2 * utr_usymtab_bytes() + 64;
}

int utr_region_init(void *base, uint64_t size, int creator)
{
    if (!base || size < _UTR_HDR_SIZE)
        return -1;
    utr_base = (char *)base;
    if (creator) {
        utr_region_hdr *h = UTR_HDR;
        memset(h, 0, sizeof(*h));
        h->size = size;
        h->brk = _UTR_HDR_SIZE;
        h->state = UTR_ST_STARTING;
        h->ring_off = utr_region_alloc(sizeof(_utr_ring) + UTR_RING_SIZE);
        if (!h->ring_off)
            return -1;
        UTR_AT(_utr_ring, h->ring_off)->size = UTR_RING_SIZE;
        _utr_ctx_pool_init();
        if (!h->ctx_pool_off)
            return -1;
        h->sites_off = utr_region_alloc((uint64_t)UTR_MAX_SITES * UTR_SITE_PPLEN);
        if (!h->sites_off)
            return -1;
        h->sitedesc_off = utr_region_alloc((uint64_t)UTR_MAX_SITES * sizeof(utr_site_desc));
        if (!h->sitedesc_off)
            return -1;
        if (utr_usymtab_bytes()) {  /* untouched pages of the memfd cost nothing */
            h->usymtab_off = utr_region_alloc(2 * utr_usymtab_bytes());
            if (!h->usymtab_off)
                return -1;
        }
        __atomic_store_n(&h->magic, UTR_REGION_MAGIC, __ATOMIC_RELEASE);
        return 0;
    }
    if (__atomic_load_n(&UTR_HDR->magic, __ATOMIC_ACQUIRE) != UTR_REGION_MAGIC)
        return -1;
    return 0;
}

uint64_t utr_region_alloc(uint64_t bytes)
{
    utr_region_hdr *h = UTR_HDR;
    uint64_t old = __atomic_load_n(&h->brk, __ATOMIC_RELAXED), start, end;
    do {
        start = _UTR_ALIGN64(old);
        end = start + _UTR_ALIGN64(bytes ? bytes : 1);
        if (end > h->size || end < start)
            return 0;
    } while (!__atomic_compare_exchange_n(&h->brk, &old, end, 1,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    /* The region is a fresh memfd/anonymous mapping: never-used bytes are zero. */
    return start;
}

/* ---- session state and counters ---- */

int32_t utr_state(void) { return __atomic_load_n(&UTR_HDR->state, __ATOMIC_ACQUIRE); }
void utr_set_state(int32_t st) { __atomic_store_n(&UTR_HDR->state, st, __ATOMIC_RELEASE); }
int64_t utr_error_count(void) { return __atomic_load_n(&UTR_HDR->error_count, __ATOMIC_RELAXED); }
int64_t utr_skipped_count(void) { return __atomic_load_n(&UTR_HDR->skipped_count, __ATOMIC_RELAXED); }
int64_t utr_dropped_count(void) { return __atomic_load_n(&UTR_HDR->dropped_count, __ATOMIC_RELAXED); }
int64_t utr_reentrant_count(void) { return __atomic_load_n(&UTR_HDR->reentrant_count, __ATOMIC_RELAXED); }
int32_t utr_exit_requested(void) { return __atomic_load_n(&UTR_HDR->exit_requested, __ATOMIC_ACQUIRE); }

void utr_request_exit(void)
{
    int32_t zero = 0, st = utr_state();
    /* stap's exit() moves the session to STOPPING at once: no new probe hits
     * (but an error state stays). */
    while ((st == UTR_ST_RUNNING || st == UTR_ST_STARTING) &&
           !__atomic_compare_exchange_n(&UTR_HDR->state, &st, UTR_ST_STOPPING, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        ;
    __atomic_compare_exchange_n(&UTR_HDR->exit_requested, &zero, 1, 0,
                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

void utr_request_abort(void)
{
    __atomic_store_n(&UTR_HDR->exit_requested, 2, __ATOMIC_RELEASE);
}

/* ---- ring ---- */

#ifndef __KERNEL__
/* The ring lock word holds the tid of its holder.  Producers are threads of any
 * process of the traced tree; one killed while it holds the lock (SIGKILL mid
 * record) would otherwise stop every later record: a waiter that finds the holder
 * gone takes the lock over.  That is safe because a record becomes visible only
 * when head is published, after its copy: the dead writer's partial bytes lie
 * beyond head and are overwritten. */
static int _utr_ring_trylock(int32_t *w, int32_t me)
{
    int32_t free_ = 0;
    return __atomic_load_n(w, __ATOMIC_RELAXED) == 0 &&
           __atomic_compare_exchange_n(w, &free_, me, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

/* Whether task tid is gone (a zombie counts as gone: it runs no more code). */
static int _utr_task_dead(int32_t tid)
{
    /* Raw syscalls: this runs in a traced thread's first probe hit, before it has a
     * context, where a probed open/read/close would recurse into the claim (T-14). */
    char path[40], buf[512], *p;
    int dead = 0;
    long fd, n;
    if (_utr_raw_syscall(SYS_tkill, tid, 0, 0, 0, 0, 0) == -ESRCH)
        return 1;
    {
        char digits[12];
        int nd = 0, k = 0;
        uint32_t v = (uint32_t)tid;
        do digits[nd++] = (char)('0' + v % 10); while ((v /= 10) && nd < 11);
        memcpy(path, "/proc/", 6);
        k = 6;
        while (nd)
            path[k++] = digits[--nd];
        memcpy(path + k, "/stat", 6);
    }
    fd = _utr_raw_syscall(SYS_open, (long)path, O_RDONLY | O_CLOEXEC, 0, 0, 0, 0);
    if (fd >= 0) {
        n = _utr_raw_syscall(SYS_read, fd, (long)buf, sizeof buf - 1, 0, 0, 0);
        _utr_raw_syscall(SYS_close, fd, 0, 0, 0, 0, 0);
        if (n > 0) {
            buf[n] = 0;
            p = strrchr(buf, ')');
            dead = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
        }
    }
    return dead;
}

static int _utr_ring_lock(int32_t *w)
{
    int32_t me = _utr_self_tid(), cur;
    int i;
    for (i = 0; i < 20000; i++) {
        if (_utr_ring_trylock(w, me))
            return 1;
        if (UTR_UNLIKELY(__atomic_load_n(w, __ATOMIC_RELAXED) == me))
            return 0;  /* a probe in a signal handler that interrupted our own record */
        _utr_cpu_relax();
    }
    for (i = 0; i < 2000; i++) {
        if (_utr_ring_trylock(w, me))
            return 1;
        cur = __atomic_load_n(w, __ATOMIC_RELAXED);
        if (cur != 0 && (i & 63) == 0 && _utr_task_dead(cur) &&
            __atomic_compare_exchange_n(w, &cur, me, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return 1;
        sched_yield();
    }
    return 0;
}
#else
/* In the module every producer runs with interrupts off and never dies holding
 * the lock: a bounded spin, then the record is dropped (and counted). */
static int _utr_ring_lock(int32_t *w)
{
    int i;
    for (i = 0; i < 1000000; i++) {
        if (_utr_spin_trylock(w))
            return 1;
        _utr_cpu_relax();
    }
    return 0;
}
#endif

static void _utr_ring_copy_in(_utr_ring *r, uint64_t pos, const void *src, uint64_t n)
{
    uint64_t off = pos % r->size, first = r->size - off;
    if (first > n) first = n;
    memcpy(r->data + off, src, first);
    if (n > first)
        memcpy(r->data, (const char *)src + first, n - first);
}

static void _utr_ring_copy_out(const _utr_ring *r, uint64_t pos, void *dst, uint64_t n)
{
    uint64_t off = pos % r->size, first = r->size - off;
    if (first > n) first = n;
    memcpy(dst, r->data + off, first);
    if (n > first)
        memcpy((char *)dst + first, r->data, n - first);
}

static void _utr_ring_put(int stream, const char *data, uint32_t n)
{
    utr_region_hdr *h = UTR_HDR;
    _utr_ring *r = UTR_AT(_utr_ring, h->ring_off);
    unsigned char rec[5];
    uint64_t head, tail;

    if (!_utr_ring_lock(&h->ring_lock)) {
        __atomic_add_fetch(&h->dropped_count, 1, __ATOMIC_RELAXED);
        return;
    }
    head = r->head;
    tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    if ((uint64_t)n + 5 > r->size - (head - tail)) {
        _utr_spin_unlock(&h->ring_lock);
        __atomic_add_fetch(&h->dropped_count, 1, __ATOMIC_RELAXED);
        return;
    }
    rec[0] = (unsigned char)n;
    rec[1] = (unsigned char)(n >> 8);
    rec[2] = (unsigned char)(n >> 16);
    rec[3] = (unsigned char)(n >> 24);
    rec[4] = (unsigned char)stream;
    _utr_ring_copy_in(r, head, rec, 5);
    _utr_ring_copy_in(r, head + 5, data, n);
    __atomic_store_n(&r->head, head + 5 + n, __ATOMIC_RELEASE);
    _utr_spin_unlock(&h->ring_lock);
}

void _utr_ring_write(int stream, const char *data, uint32_t n)
{
    if (!utr_base)
        return;
    do {
        uint32_t piece = n > UTR_MAX_RECORD ? UTR_MAX_RECORD : n;
        _utr_ring_put(stream, data, piece);
        data += piece;
        n -= piece;
    } while (n);
}

/* A skipped probe, counted; past MAXSKIPPED the session ends in error, as stap's. */
void utr_count_skipped(void)
{
    static const char msg[] =
        "ERROR: Skipped too many probes, check MAXSKIPPED or try again with stap -t for more details.\n";
    int32_t running = UTR_ST_RUNNING;
    if (__atomic_add_fetch(&UTR_HDR->skipped_count, 1, __ATOMIC_RELAXED) > MAXSKIPPED &&
        __atomic_compare_exchange_n(&UTR_HDR->state, &running, UTR_ST_ERROR, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        _utr_ring_write(UTR_ERR, msg, sizeof(msg) - 1);
}

void utr_emit_err(const char *s, uint32_t n)
{
    _utr_ring_write(UTR_ERR, s, n);
}

/* The data length and stream of the record whose header is at pos. */
static uint32_t _utr_ring_peek(const _utr_ring *r, uint64_t pos, int32_t *stream)
{
    unsigned char rec[5];
    _utr_ring_copy_out(r, pos, rec, 5);
    *stream = rec[4];
    return (uint32_t)rec[0] | (uint32_t)rec[1] << 8 | (uint32_t)rec[2] << 16 |
           (uint32_t)rec[3] << 24;
}

uint64_t utr_drain(void *buf, uint64_t cap)
{
    utr_region_hdr *h = UTR_HDR;
    _utr_ring *r = UTR_AT(_utr_ring, h->ring_off);
    uint64_t tail = r->tail;
    uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    uint64_t out = 0;

    while (head - tail >= 5) {
        int32_t st;
        uint32_t n = _utr_ring_peek(r, tail, &st);
        if (out + 5 + n > cap)
            break;
        _utr_ring_copy_out(r, tail, (char *)buf + out, 5 + (uint64_t)n);
        out += 5 + (uint64_t)n;
        tail += 5 + (uint64_t)n;
    }
    __atomic_store_n(&r->tail, tail, __ATOMIC_RELEASE);
    return out;
}

uint64_t utr_drain_stream(void *buf, uint64_t cap, int32_t *stream)
{
    utr_region_hdr *h = UTR_HDR;
    _utr_ring *r = UTR_AT(_utr_ring, h->ring_off);
    uint64_t tail = r->tail;
    uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    uint64_t out = 0;

    *stream = 0;
    while (head - tail >= 5) {
        int32_t st;
        uint32_t n = _utr_ring_peek(r, tail, &st);
        if (*stream == 0)
            *stream = st;
        else if (st != *stream)
            break;  /* the caller writes this run first: the streams stay in order */
        if (out + n > cap)
            break;
        _utr_ring_copy_out(r, tail + 5, (char *)buf + out, n);
        out += n;
        tail += 5 + (uint64_t)n;
        if (*stream == UTR_ERR)
            break;  /* one error record at a time: the tracer looks at each */
    }
    __atomic_store_n(&r->tail, tail, __ATOMIC_RELEASE);
    return out;
}
