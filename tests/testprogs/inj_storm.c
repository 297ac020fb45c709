/* Test target: creates and joins short-lived threads as fast as it can until stdin closes. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

static atomic_int stop;
static atomic_long born;

static void *child(void *a)
{
    atomic_fetch_add(&born, 1);
    return a;
}

static void *spawner(void *a)
{
    while (!atomic_load(&stop)) {
        pthread_t t[8];
        for (int i = 0; i < 8; i++)
            pthread_create(&t[i], NULL, child, NULL);
        for (int i = 0; i < 8; i++)
            pthread_join(t[i], NULL);
    }
    return a;
}

int main(void)
{
    pthread_t s[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&s[i], NULL, spawner, NULL);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(s[i], NULL);
    printf("done born=%ld\n", (long)atomic_load(&born));
    return 0;
}
