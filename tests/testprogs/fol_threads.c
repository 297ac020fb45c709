/* fol_threads - starts N threads (argv[1]) that each report their tid and call work()
 * NCALLS times (argv[2]); joins them.  With argv[3] == "wait": the threads start, then
 * "ready" is printed and they block until stdin reaches EOF (for attaching).
 * Output: "thread TID" per thread, "main PID" last.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long ncalls;
static pthread_barrier_t started;
static int waiting;

__attribute__((noinline)) long work(long i)
{
    long r = i * 3 + 1;
    __asm__ volatile("" : : "r"(r) : "memory");
    return r;
}

static void *body(void *arg)
{
    char line[48];
    int n = snprintf(line, sizeof line, "thread %ld\n", (long)syscall(SYS_gettid));
    (void)arg;
    if (write(1, line, (size_t)n) < 0)
        return NULL;
    for (long i = 0; i < ncalls; i++)
        work(i);
    if (waiting) {
        pthread_barrier_wait(&started);
        char c;
        while (read(0, &c, 1) > 0)
            ;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 4;
    ncalls = argc > 2 ? atol(argv[2]) : 10;
    waiting = argc > 3 && !strcmp(argv[3], "wait");
    pthread_t *t = calloc((size_t)n, sizeof *t);
    setvbuf(stdout, NULL, _IONBF, 0);
    if (waiting)
        pthread_barrier_init(&started, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, body, NULL) != 0)
            return 2;
    if (waiting) {
        pthread_barrier_wait(&started);
        printf("ready\n");
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("main %d\n", (int)getpid());
    return 0;
}
