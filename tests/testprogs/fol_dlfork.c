/* fol_dlfork - forks NCHILD children (argv[2]); each child and then the parent dlopen
 * the plugin argv[1], call plugin_fn 10 times, dlclose it, and report
 * "dl PID SUM" (one write).  Children are forked before any dlopen: each process
 * loads the library on its own, at an address of its own.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void round_trip(const char *path)
{
    long sum = 0;
    void *h = dlopen(path, RTLD_NOW);
    if (!h) {
        fprintf(stderr, "%s\n", dlerror());
        exit(1);
    }
    long (*f)(long) = (long (*)(long))dlsym(h, "plugin_fn");
    for (long i = 0; i < 10; i++)
        sum += f(i);
    dlclose(h);
    printf("dl %d %ld\n", (int)getpid(), sum);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int n = argc > 2 ? atoi(argv[2]) : 3;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int c = 0; c < n; c++) {
        pid_t pid = fork();
        if (pid == 0) {
            usleep(20000 * (c + 1));
            round_trip(argv[1]);
            _exit(0);
        }
    }
    round_trip(argv[1]);
    while (wait(NULL) > 0)
        ;
    round_trip(argv[1]);
    return 0;
}
