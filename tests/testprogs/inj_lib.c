/* Test library loaded into targets by the injector tests. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void inj_lib_init(void)
{
    const char *path = getenv("INJ_MARKER");
    if (path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            (void)!write(fd, "loaded\n", 7);
            close(fd);
        }
    }
}

int inj_answer(void) { return 42; }

long inj_sum6(long a, long b, long c, long d, long e, long f)
{
    return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f;
}

/* Reads a shared region, answers in place: every byte + 1; returns the old byte sum. */
long inj_touch(unsigned char *p, long n)
{
    long sum = 0;
    for (long i = 0; i < n; i++) {
        sum += p[i];
        p[i] = (unsigned char)(p[i] + 1);
    }
    return sum;
}

void inj_crash(void) { *(volatile int *)8 = 1; }
