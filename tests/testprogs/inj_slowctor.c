/* inj_slowctor - a library whose constructor announces itself and then sleeps 3 s, so
 * the thread running dlopen holds ld.so's load lock meanwhile (inj_dlslow.c). */
#include <stdio.h>
#include <time.h>

__attribute__((constructor)) static void slow(void)
{
    printf("ready in constructor\n");
    fflush(stdout);
    struct timespec ts = {3, 0};
    while (nanosleep(&ts, &ts) != 0)
        ;
}
