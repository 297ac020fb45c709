/* fol_exec - calls work() N times (argv[1]), reports, then execs the rest of its
 * arguments; "self" execs this program again with N-1 until N is 0.
 * Output: "exec PID N" before each exec, "last PID" at the end of a self chain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) long work(long i)
{
    long r = i * 3 + 1;
    __asm__ volatile("" : : "r"(r) : "memory");
    return r;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    for (long i = 0; i < n; i++)
        work(i);
    if (argc < 3 || (!strcmp(argv[2], "self") && n == 0)) {
        printf("last %d\n", (int)getpid());
        return 0;
    }
    printf("exec %d %ld\n", (int)getpid(), n);
    fflush(stdout);
    if (!strcmp(argv[2], "self")) {
        char m[24];
        snprintf(m, sizeof m, "%ld", n - 1);
        char *args[] = {argv[0], m, "self", NULL};
        execv("/proc/self/exe", args);
    } else {
        execv(argv[2], argv + 2);
    }
    perror("execv");
    return 2;
}
