/* misc.c — clocks, random numbers, script arguments. */
#define _GNU_SOURCE
#include "rt_internal.h"

#include <sys/random.h>
#include <time.h>

int64_t utr_time_ns(int clock)
{
    struct timespec ts;
    if (clock_gettime((clockid_t)clock, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* per-thread xorshift64*, seeded from getrandom (or the clock) */
static _UTR_TLS uint64_t _utr_rng;

static uint64_t _utr_rand64(void)
{
    uint64_t x = _utr_rng;
    if (UTR_UNLIKELY(x == 0)) {
        if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x) || x == 0)
            x = (uint64_t)utr_time_ns(CLOCK_MONOTONIC) * 0x9E3779B97F4A7C15ull | 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    _utr_rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

int64_t utr_randint(int64_t n)
{
    uint64_t un, limit, r;
    if (n <= 1)
        return 0;
    un = (uint64_t)n;
    limit = UINT64_MAX - UINT64_MAX % un;   /* reject the biased tail */
    do {
        r = _utr_rand64();
    } while (r >= limit);
    return (int64_t)(r % un);
}

#ifndef UTR_MAX_SCRIPT_ARGS
#define UTR_MAX_SCRIPT_ARGS 128
#endif
static char _utr_args[UTR_MAX_SCRIPT_ARGS][MAXSTRINGLEN];
static int32_t _utr_nargs;

void utr_set_script_args(int32_t argc, const char **argv)
{
    int32_t i;
    if (argc < 0)
        argc = 0;
    if (argc > UTR_MAX_SCRIPT_ARGS)
        argc = UTR_MAX_SCRIPT_ARGS;
    for (i = 0; i < argc; i++)
        utr_strcpy(_utr_args[i], argv && argv[i] ? argv[i] : "");
    _utr_nargs = argc;
}

int32_t utr_argc(void)
{
    return _utr_nargs;
}

const char *utr_argv(int32_t i)
{
    return (i >= 0 && i < _utr_nargs) ? _utr_args[i] : "";
}
