/* att_hello - prints a line with its pid and exits with the status given as argv[1]. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    printf("hello from %d\n", (int)getpid());
    fflush(stdout);
    return argc > 1 ? atoi(argv[1]) : 0;
}
