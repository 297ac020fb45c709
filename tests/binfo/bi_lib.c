/* binfo fixture library: exported functions, an alias, an IFUNC, a hidden static. */
#include <string.h>

__attribute__((noinline)) int bil_one(int x) { return x + 1; }
int bil_one_alias(int x) __attribute__((alias("bil_one")));
__attribute__((noinline)) int bil_two(int x) { return bil_one(x) * 2; }
static __attribute__((noinline)) int bil_hidden(int x) { return x - 1; }
int bil_three(int x) { return bil_hidden(x) + (int)strlen("abc"); }

static int bil_impl(int x) { return x * 7; }
static int (*bil_resolve(void))(int) { return bil_impl; }
int bil_ifn(int x) __attribute__((ifunc("bil_resolve")));
