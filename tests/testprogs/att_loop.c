/* att_loop - says "ready", calls work() in a loop until stdin closes, then prints the
 * call count and a checksum; the checksum must not depend on whether work() was probed. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) long work(long i)
{
    long r = i * 3 + 1;
    for (int k = 0; k < 8; k++)
        r ^= r >> 3;
    return r;
}

int main(void)
{
    long calls = 0, sum = 0;
    char c;
    fcntl(0, F_SETFL, O_NONBLOCK);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (;;) {
        for (int i = 0; i < 1000; i++, calls++)
            sum += work(calls) & 0xff;
        if (read(0, &c, 1) == 0)
            break;
        usleep(1000);
    }
    printf("done %ld %ld\n", calls, sum);
    return 0;
}
