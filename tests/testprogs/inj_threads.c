/* Test target for the injector: N threads (main included), busy or idle, until stdin closes. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile int value = 7;            /* read and written by the tests */
static atomic_int stop;
static atomic_long work;
static int busy;
static volatile sig_atomic_t usr1_count;

static void on_usr1(int sig)
{
    (void)sig;
    usr1_count++;
}

static void *worker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        if (busy) {
            for (int i = 0; i < 10000; i++)
                atomic_fetch_add_explicit(&work, 1, memory_order_relaxed);
            sched_yield();
        } else {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1;
    busy = argc > 2 && strcmp(argv[2], "busy") == 0;
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_RESTART};
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t *t = calloc(n, sizeof *t);
    for (int i = 1; i < n; i++)
        if (pthread_create(&t[i], NULL, worker, NULL) != 0)
            return 2;
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    atomic_store(&stop, 1);
    for (int i = 1; i < n; i++)
        pthread_join(t[i], NULL);
    printf("done value=%d usr1=%d\n", value, (int)usr1_count);
    return 0;
}
