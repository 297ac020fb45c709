/* bt_prog.c — backtrace targets: deep recursion, a shared library, a signal handler.
 *
 * Built -O2 -fomit-frame-pointer.  `bt_leaf` is the probed function; it prints
 * the return addresses glibc's backtrace() sees from inside it, so a test can
 * compare the probe's ubacktrace() with them, frame by frame.
 * Usage: bt_prog recurse N | lib | signal | altstack | loop N DEPTH | threads N DEPTH */
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*bt_cb)(int);
int bt_lib_call(bt_cb cb, int n);

static int print_own;

__attribute__((noinline)) void bt_leaf(int n)
{
    void *pcs[64];
    int i, k;
    if (!print_own)
        return;
    k = backtrace(pcs, 64);
    printf("own:");
    for (i = 1; i < k; i++)  /* frame 0 is inside bt_leaf itself */
        printf(" %p", pcs[i]);
    printf("\n");
    fflush(stdout);
    (void)n;
}

__attribute__((noinline)) int bt_recurse(int n)
{
    volatile int r;
    if (n == 0) {
        bt_leaf(n);
        return 0;
    }
    r = bt_recurse(n - 1);
    return r + 1;
}

static volatile int handled;

static void on_usr1(int sig)
{
    bt_leaf(sig);
    handled++;  /* not a tail call: the handler's frame stays on the stack */
}

__attribute__((noinline)) void bt_raise(void)
{
    raise(SIGUSR1);
    __asm__ volatile("" ::: "memory");
}

static int loop_n, loop_depth;

static void *loop_thread(void *arg)
{
    int i;
    for (i = 0; i < loop_n; i++)
        bt_recurse(loop_depth);
    return arg;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "recurse";
    int n = argc > 2 ? atoi(argv[2]) : 30;
    print_own = 1;
    if (strcmp(mode, "recurse") == 0) {
        bt_recurse(n);
    } else if (strcmp(mode, "lib") == 0) {
        bt_lib_call(bt_leaf, 7);
    } else if (strcmp(mode, "signal") == 0) {
        signal(SIGUSR1, on_usr1);
        bt_raise();
    } else if (strcmp(mode, "altstack") == 0) {  /* the handler runs on its own stack */
        static char alt[64 * 1024];
        stack_t ss = { .ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0 };
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sa.sa_flags = SA_ONSTACK;
        sigaltstack(&ss, NULL);
        sigaction(SIGUSR1, &sa, NULL);
        bt_raise();
    } else if (strcmp(mode, "threads") == 0) {  /* 4 threads, N hits each at depth DEPTH */
        pthread_t t[4];
        int i;
        print_own = 0;
        loop_n = n;
        loop_depth = argc > 3 ? atoi(argv[3]) : 8;
        for (i = 0; i < 4; i++)
            pthread_create(&t[i], NULL, loop_thread, NULL);
        for (i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
    } else if (strcmp(mode, "loop") == 0) {  /* for benchmarks: N hits at depth DEPTH */
        int depth = argc > 3 ? atoi(argv[3]) : 20, i;
        print_own = 0;
        for (i = 0; i < n; i++)
            bt_recurse(depth);
    }
    return 0;
}
