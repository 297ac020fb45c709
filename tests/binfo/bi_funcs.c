/* binfo fixture: globals, a static, an alias, an IFUNC, PLT calls; prints its own addresses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) int bi_add(int a, int b) { return a + b; }
int bi_add_alias(int a, int b) __attribute__((alias("bi_add")));
int bi_add_weak(int a, int b) __attribute__((weak, alias("bi_add")));

static __attribute__((noinline)) int bi_static(int x) { return x * 3 + 1; }

static int bi_impl_generic(int x) { return x + 1; }
static int bi_impl_fast(int x) { return x + 2; }
volatile int bi_want_fast = 1;
/* The resolver runs before relocations are done: it may only read memory. */
static int (*bi_resolve_pick(void))(int) { return bi_want_fast ? bi_impl_fast : bi_impl_generic; }
int bi_pick(int x) __attribute__((ifunc("bi_resolve_pick")));

__attribute__((noinline)) int bi_loop(int n)
{
    int s = 0;
    for (int i = 0; i < n; i++)
        s += bi_add(i, bi_static(i)) + bi_pick(i);
    return s;
}

int main(int argc, char **argv)
{
    char *p = malloc(64);
    strcpy(p, argv[0]);
    printf("bi_add %p\nbi_static %p\nbi_loop %p\nmain %p\n", (void *)bi_add, (void *)bi_static,
           (void *)bi_loop, (void *)main);
    printf("sum %d len %d\n", bi_loop(argc + 3), (int)strlen(p));
    puts("ready");
    fflush(stdout);
    free(p);
    if (argc > 1) { /* wait for the test to read /proc/PID/maps, until stdin closes */
        char buf[16];
        while (fgets(buf, sizeof buf, stdin))
            ;
    }
    return 0;
}
