/* loop_ref.c - the foundation benchmark's reference: the script's 1M-update loop written in C. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A map of 1000 long keys to longs, open addressing, and count/sum/min/max/variance
 * accumulation: what `a[i % 1000] = i; s <<< i` asks for, without a runtime. */
#define SLOTS 2048
static int64_t keys[SLOTS];
static int64_t vals[SLOTS];
static unsigned char used[SLOTS];

static void put(int64_t k, int64_t v)
{
    uint64_t h = (uint64_t)k * 0x9E3779B97F4A7C15ull;
    unsigned i = (unsigned)(h >> 53) & (SLOTS - 1);
    while (used[i] && keys[i] != k)
        i = (i + 1) & (SLOTS - 1);
    used[i] = 1;
    keys[i] = k;
    vals[i] = v;
}

int main(int argc, char **argv)
{
    int64_t n = argc > 1 ? atoll(argv[1]) : 1000000;
    int64_t count = 0, sum = 0, min = 0, max = 0, avg = 0, m2 = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int64_t i = 0; i < n; i++) {
        put(i % 1000, i);
        if (count++ == 0) { min = max = avg = i; sum = i; continue; }
        sum += i;
        if (i < min) min = i;
        if (i > max) max = i;
        int64_t d = i - avg;
        avg += d / count;
        m2 += d * (i - avg);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    printf("%lld %lld %lld\n", (long long)ns, (long long)count, (long long)(sum + m2 + vals[3]));
    return 0;
}
