/* Test target: the main thread churns malloc/free, a second thread blocks in read(stdin). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_int stop;

static void *reader(void *a)
{
    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    atomic_store(&stop, 1);
    return a;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    void *volatile keep[64] = {0};
    unsigned i = 0;
    while (!atomic_load(&stop)) {
        free(keep[i % 64]);
        keep[i % 64] = malloc(16 + (i * 37) % 4000);
        i++;
    }
    pthread_join(t, NULL);
    printf("done\n");
    return 0;
}
