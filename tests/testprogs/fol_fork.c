/* fol_fork - makes child processes in several ways; parent and children call work().
 *
 * usage: fol_fork MODE NCHILD NCALLS
 *   fork      fork()
 *   rawfork   syscall(SYS_fork): no pthread_atfork handlers run in the child
 *   clone     raw clone with exit signal 0 (ptrace reports it as a clone, not a fork)
 *   vfork     vfork(); the child calls work() itself, then _exit()
 *   spawn     posix_spawn of this program as "child NCALLS" (CLONE_VM|CLONE_VFORK)
 *   storm     fork() every 10 ms
 *   killed    fork() children that start a thread and call work() in a loop; each is
 *             SIGKILLed at once or after 500 us (the parent reports "killed PID CHILD")
 *   child     (what spawn runs) call work() NCALLS times and report
 * The parent calls work() NCALLS times before the first child and NCALLS times after
 * the last; each child calls it NCALLS times.  Every process reports itself with one
 * write():  "parent PID CALLS" (last line) and "child PID PPID CALLS".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

__attribute__((noinline)) long work(long i)
{
    long r = i * 3 + 1;
    for (int k = 0; k < 8; k++)
        r ^= r >> 3;
    __asm__ volatile("" : : "r"(r) : "memory");
    return r;
}

static void calls(long n)
{
    for (long i = 0; i < n; i++)
        work(i);
}

/* No stdio: safe in a vfork child and after a raw fork. */
static char *num(char *p, long v)
{
    char tmp[24];
    int n = 0;
    if (v < 0) { *p++ = '-'; v = -v; }
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

static void report(const char *what, long calls_done)
{
    char buf[96], *p = buf;
    memcpy(p, what, strlen(what));
    p += strlen(what);
    *p++ = ' ';
    p = num(p, (long)syscall(SYS_getpid));
    if (what[0] == 'c') {
        *p++ = ' ';
        p = num(p, (long)syscall(SYS_getppid));
    }
    *p++ = ' ';
    p = num(p, calls_done);
    *p++ = '\n';
    if (write(1, buf, (size_t)(p - buf)) < 0)
        _exit(3);
}

static void *spin(void *arg)
{
    for (;;)
        work((long)arg);
    return NULL;
}

static void child_body(long ncalls)
{
    calls(ncalls);
    report("child", ncalls);
    _exit(0);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "fork";
    long nchild = argc > 2 ? atol(argv[2]) : 3, ncalls = argc > 3 ? atol(argv[3]) : 10;
    if (!strcmp(mode, "child")) {
        calls(nchild);  /* "child NCALLS" */
        report("child", nchild);
        return 0;
    }
    calls(ncalls);
    for (long c = 0; c < nchild; c++) {
        pid_t pid;
        if (!strcmp(mode, "fork") || !strcmp(mode, "storm")) {
            pid = fork();
        } else if (!strcmp(mode, "killed")) {
            pid = fork();
            if (pid == 0) {
                pthread_t t;
                pthread_create(&t, NULL, spin, NULL);
                spin(NULL);
            }
            if (c % 2)
                usleep(500);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            report("killed", pid);
            continue;
        } else if (!strcmp(mode, "rawfork")) {
            pid = (pid_t)syscall(SYS_fork);
        } else if (!strcmp(mode, "clone")) {
            pid = (pid_t)syscall(SYS_clone, 0L, 0L, 0L, 0L, 0L);
        } else if (!strcmp(mode, "vfork")) {
            pid = vfork();
            if (pid == 0) {
                calls(ncalls);
                report("child", ncalls);
                _exit(0);
            }
        } else if (!strcmp(mode, "spawn")) {
            char n[24];
            snprintf(n, sizeof n, "%ld", ncalls);
            char *args[] = {argv[0], "child", n, NULL};
            if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ) != 0)
                return 2;
        } else {
            fprintf(stderr, "unknown mode %s\n", mode);
            return 2;
        }
        if (pid < 0)
            return 2;
        if (pid == 0)
            child_body(ncalls);
        if (!strcmp(mode, "storm")) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
                ;
        }
    }
    calls(ncalls);
    while (waitpid(-1, NULL, __WALL) > 0)
        ;
    report("parent", 2 * ncalls);
    return 0;
}
