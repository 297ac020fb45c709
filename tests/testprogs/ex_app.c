/* ex_app - a small program with known behaviour for the examples/ tests.
 *   ex_app calls N     compute(i, 2i, 7) N times; slow(k) sleeps k ms for k = 1..5
 *   ex_app leak        10 x malloc(100) and 3 x malloc(4096) kept, 1000 x malloc(64) freed
 *   ex_app files       open("/etc/hostname") and open("/nonexistent/ex_app") (fails)
 *   ex_app io          write() 4 x 512 and 2 x 4096 bytes to /dev/null
 *   ex_app locks T N   T threads each take a shared mutex N times
 *   ex_app tree        fork() 3 children that exec /bin/true; waits for them
 * Each mode prints one summary line last, so a test can see the program ran unchanged.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) long compute(long a, long b, long c)
{
    long r = a * b + c;
    __asm__ volatile("" : "+r"(r) : : "memory");
    return r;
}

__attribute__((noinline)) void slow(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long shared, rounds;

static void *locker(void *arg)
{
    void *volatile p = malloc(48);  /* a tcache of its own, freed as the thread exits */
    free(p);
    for (long i = 0; i < rounds; i++) {
        pthread_mutex_lock(&mu);
        shared++;
        for (volatile int k = 0; k < 200; k++)
            ;
        pthread_mutex_unlock(&mu);
    }
    return arg;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "calls";
    if (!strcmp(mode, "calls")) {
        long n = argc > 2 ? atol(argv[2]) : 100, sum = 0;
        for (long i = 0; i < n; i++)
            sum += compute(i, 2 * i, 7);
        for (long k = 1; k <= 5; k++)
            slow(k);
        printf("calls sum %ld\n", sum);
    } else if (!strcmp(mode, "leak")) {
        static void *kept[13];
        for (int i = 0; i < 10; i++)
            kept[i] = malloc(100);
        for (int i = 0; i < 3; i++)
            kept[10 + i] = malloc(4096);
        for (int i = 0; i < 1000; i++) {
            void *volatile p = malloc(64);  /* volatile: gcc drops a plain free(malloc()) */
            free(p);
        }
        printf("leak kept %d\n", kept[12] != NULL ? 13 : 0);
    } else if (!strcmp(mode, "files")) {
        int a = open("/etc/hostname", O_RDONLY);
        int b = open("/nonexistent/ex_app", O_RDONLY);
        printf("files %d %d\n", a >= 0, b);
    } else if (!strcmp(mode, "io")) {
        char buf[4096] = {0};
        int fd = open("/dev/null", O_WRONLY);
        long total = 0;
        for (int i = 0; i < 4; i++)
            total += write(fd, buf, 512);
        for (int i = 0; i < 2; i++)
            total += write(fd, buf, 4096);
        printf("io fd %d wrote %ld\n", fd, total);
    } else if (!strcmp(mode, "locks")) {
        int t = argc > 2 ? atoi(argv[2]) : 4;
        rounds = argc > 3 ? atol(argv[3]) : 1000;
        pthread_t th[64];
        if (t > 64)
            t = 64;
        for (int i = 0; i < t; i++)
            pthread_create(&th[i], NULL, locker, NULL);
        for (int i = 0; i < t; i++)
            pthread_join(th[i], NULL);
        printf("locks total %ld\n", shared);
    } else if (!strcmp(mode, "tree")) {
        fflush(stdout);
        for (int i = 0; i < 3; i++) {
            pid_t p = fork();
            if (p == 0) {
                execl("/bin/true", "true", (char *)NULL);
                _exit(127);
            }
        }
        int st, ok = 0;
        while (wait(&st) > 0)
            ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
        printf("tree children ok %d\n", ok);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
