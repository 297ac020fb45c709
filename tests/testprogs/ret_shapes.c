/* ret_shapes - return-probe fixtures: longjmp, siglongjmp, tail calls, recursion, threads, libc. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static jmp_buf jb;
static sigjmp_buf sjb;
static volatile long sink;

__attribute__((noinline)) void jumper(long i)
{
    sink += i;
    longjmp(jb, 1);
}

/* f (return-probed) -> g -> longjmp to main's setjmp: f never returns. */
__attribute__((noinline)) long f(long i)
{
    jumper(i);
    return i;
}

__attribute__((noinline)) long leaf(long i)
{
    return i * 7 + 3;
}

static void on_usr1(int sig)
{
    (void)sig;
    siglongjmp(sjb, 1);
}

/* s (return-probed) raises a signal whose handler siglongjmps out of it. */
__attribute__((noinline)) long s(long i)
{
    raise(SIGUSR1);
    return i;
}

/* tail_b is reached from tail_a by a jmp at -O2: both exits must be reported. */
__attribute__((noinline)) long tail_b(long i)
{
    sink ^= i;
    return i * 5 + 1;
}

__attribute__((noinline)) long tail_a(long i)
{
    sink += 1;
    return tail_b(i + 2);
}

__attribute__((noinline)) long rec(long d)
{
    if (d == 0)
        return 1;
    long r = rec(d - 1) + 1;
    sink += r;
    return r;
}

/* Four bytes at -O2 (lea eax,[rdi+1]; ret): too short for a jump, the trap tier's. */
__attribute__((noinline)) int tiny(int x)
{
    return x + 1;
}

static volatile long tiny_seen, traps;

static void on_trap(int sig)
{
    (void)sig;
    traps++;
}

static void on_usr1_tiny(int sig)
{
    tiny_seen = tiny(sig);  /* runs with every signal blocked but SIGUSR1's own */
}

/* Sleeps at the bottom of a recursion: a session ending meanwhile leaves hijacked
 * return addresses on every thread's stack. */
__attribute__((noinline)) long rec_sleep(long d)
{
    if (d == 0) {
        usleep(2000);
        return 1;
    }
    long r = rec_sleep(d - 1) + 1;
    sink += r;
    return r;
}

static void *sleeper(void *arg)
{
    long n = (long)arg, acc = 0;
    for (long i = 0; i < n; i++)
        acc += rec_sleep(30);
    return (void *)acc;
}

static void *worker(void *arg)
{
    long n = (long)arg, acc = 0;
    for (long i = 0; i < n; i++)
        acc += rec(i % 20) + leaf(i);
    return (void *)acc;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "longjmp";
    long n = argc > 2 ? atol(argv[2]) : 1000, sum = 0;
    if (!strcmp(mode, "longjmp")) {
        for (long i = 0; i < n; i++) {
            if (setjmp(jb) == 0)
                f(i);
            sum += leaf(i);
        }
    } else if (!strcmp(mode, "siglongjmp")) {
        signal(SIGUSR1, on_usr1);
        for (long i = 0; i < n; i++) {
            if (sigsetjmp(sjb, 1) == 0)
                s(i);
            sum += leaf(i);
        }
    } else if (!strcmp(mode, "tail")) {
        for (long i = 0; i < n; i++)
            sum += tail_a(i);
    } else if (!strcmp(mode, "rec")) {
        sum = rec(n);
    } else if (!strcmp(mode, "libc")) {
        for (long i = 0; i < n; i++)
            sum += (long)strtoul(i % 2 ? "7" : "5", NULL, 10);  /* n calls into libc */
    } else if (!strcmp(mode, "ifunc")) {
        const char *volatile word = mode;  /* volatile: one strlen call per iteration */
        for (long i = 0; i < n; i++)
            sum += (long)strlen(word);   /* libc's strlen is an IFUNC */
    } else if (!strcmp(mode, "tiny")) {
        for (long i = 0; i < n; i++)
            sum += tiny((int)i);
    } else if (!strcmp(mode, "blocktrap")) {
        /* T-16: block every signal, SIGTRAP included, then call the trap-tier function;
         * a thread whose handler masks everything calls it too */
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        pthread_sigmask(SIG_SETMASK, &all, NULL);
        for (long i = 0; i < n; i++)
            sum += tiny((int)i);
        sigprocmask(SIG_UNBLOCK, &all, NULL);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_usr1_tiny;
        sigfillset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
        raise(SIGUSR1);
        sum += tiny_seen;
    } else if (!strcmp(mode, "owntrap")) {
        /* the program's own SIGTRAP handler, installed after the tracer's: it still
         * gets its own traps (raise and a real int3) while tiny's int3 is the tracer's */
        signal(SIGTRAP, on_trap);
        for (long i = 0; i < n; i++) {
            sum += tiny((int)i);
            if (i % 4 == 0)
                raise(SIGTRAP);
        }
        __asm__ volatile("int3");
        sum += traps * 1000;
    } else if (!strcmp(mode, "sleepers")) {
        pthread_t t[4];
        printf("ready\n");
        fflush(stdout);
        for (long k = 0; k < 4; k++)
            pthread_create(&t[k], NULL, sleeper, (void *)n);
        for (long k = 0; k < 4; k++) {
            void *r;
            pthread_join(t[k], &r);
            sum += (long)r;
        }
    } else if (!strcmp(mode, "threads")) {
        pthread_t t[8];
        for (long k = 0; k < 8; k++)
            pthread_create(&t[k], NULL, worker, (void *)n);
        for (long k = 0; k < 8; k++) {
            void *r;
            pthread_join(t[k], &r);
            sum += (long)r;
        }
    }
    printf("sum %ld\n", sum);
    return 0;
}
