/* att_calls - calls work() N times (argv[1]) and prints the sum, for entry-probe counts. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) long work(long i)
{
    long r = i * 3 + 1;
    for (int k = 0; k < 8; k++)
        r ^= r >> 3;
    return r;
}

__attribute__((noinline)) long other(long i)
{
    return work(i) + 1;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000, sum = 0;
    for (long i = 0; i < n; i++)
        sum += (i % 10 == 0) ? other(i) : work(i);
    printf("sum %ld\n", sum);
    return 0;
}
