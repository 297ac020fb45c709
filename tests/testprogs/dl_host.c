/* dl_host - dlopen/dlclose a plugin three times (argv[1]), calling plugin_fn argv[2]
 * times each; with a fourth argument it prints "ready" first and pauses between rounds
 * (for -x sessions that end while it runs). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 2 ? atol(argv[2]) : 10, sum = 0;
    int rounds = argc > 3 ? atoi(argv[3]) : 3;
    if (argc > 3) {
        printf("ready\n");
        fflush(stdout);
    }
    for (int round = 0; round < rounds; round++) {
        void *h = dlopen(argv[1], RTLD_NOW);
        if (!h) {
            fprintf(stderr, "%s\n", dlerror());
            return 1;
        }
        long (*f)(long) = (long (*)(long))dlsym(h, "plugin_fn");
        for (long i = 0; i < n; i++)
            sum += f(i);
        dlclose(h);
        if (argc > 3)
            usleep(100000);
    }
    printf("sum %ld\n", sum);
    return 0;
}
