/* att_waiter - says "ready", then waits for a line on stdin (or EOF) and says "bye N" with
 * a checksum of work done meanwhile, so a test can see it ran on normally after a session. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char line[64];
    unsigned long sum = 0;
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin))
        line[0] = 0;
    for (unsigned long i = 0; i < 1000000; i++)
        sum += i % 7;
    printf("bye %lu\n", sum);
    return 0;
}
