/* lock.c — reader-writer lock in the region (process-shared by construction:
 * a single atomic word, no pthread object).
 *
 * word: 0 free, n > 0 held by n readers, -1 held by a writer.  Like
 * SystemTap's global locks, acquisition is a bounded try: MAXTRYLOCK attempts,
 * sleeping TRYLOCKDELAY microseconds between them; on timeout the caller skips
 * the probe (returns 0).
 */
#include "rt_internal.h"

#include <time.h>

static void _utr_lock_delay(void)
{
#ifdef __KERNEL__
    udelay(TRYLOCKDELAY);  /* a hit cannot sleep in the kernel */
#else
    struct timespec ts = { 0, (long)TRYLOCKDELAY * 1000L };
    nanosleep(&ts, NULL);
#endif
}

static int _utr_try_read(utr_rwlock *l)
{
    int32_t w = __atomic_load_n(&l->word, __ATOMIC_RELAXED);
    while (w >= 0) {
        if (__atomic_compare_exchange_n(&l->word, &w, w + 1, 1,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return 1;
    }
    return 0;
}

static int _utr_try_write(utr_rwlock *l)
{
    int32_t zero = 0;
    return __atomic_load_n(&l->word, __ATOMIC_RELAXED) == 0 &&
           __atomic_compare_exchange_n(&l->word, &zero, -1, 0,
                                       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

int utr_read_lock(utr_rwlock *l)
{
    int i;
    for (i = 0; i < MAXTRYLOCK; i++) {
        if (_utr_try_read(l))
            return 1;
        _utr_lock_delay();
    }
    return 0;
}

int utr_write_lock(utr_rwlock *l)
{
    int i;
    for (i = 0; i < MAXTRYLOCK; i++) {
        if (_utr_try_write(l))
            return 1;
        _utr_lock_delay();
    }
    return 0;
}

void utr_read_unlock(utr_rwlock *l)
{
    __atomic_sub_fetch(&l->word, 1, __ATOMIC_RELEASE);
}

void utr_write_unlock(utr_rwlock *l)
{
    __atomic_store_n(&l->word, 0, __ATOMIC_RELEASE);
}
