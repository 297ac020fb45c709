/* fol_xtree - a process tree to attach to.  Prints "ready"; at each line "go" on stdin
 * forks a child that calls work() 10 times, reports "child PID PPID 10" and waits; at
 * EOF on stdin the children are told to go on: each calls work() 10 more times, reports
 * "child-end PID 20" and exits; the parent reaps them and prints "bye N" (N children).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) long work(long i)
{
    long r = i * 3 + 1;
    __asm__ volatile("" : : "r"(r) : "memory");
    return r;
}

int main(void)
{
    int go[2], n = 0;
    char line[64];
    if (pipe(go) != 0)
        return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("ready\n");
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "go", 2) != 0)
            continue;
        pid_t pid = fork();
        if (pid < 0)
            return 2;
        if (pid == 0) {
            char c;
            close(go[1]);
            for (int i = 0; i < 10; i++)
                work(i);
            printf("child %d %d 10\n", (int)getpid(), (int)getppid());
            while (read(go[0], &c, 1) > 0)
                ;
            for (int i = 0; i < 10; i++)
                work(i);
            printf("child-end %d 20\n", (int)getpid());
            _exit(0);
        }
        n++;
    }
    close(go[1]);
    while (wait(NULL) > 0)
        ;
    printf("bye %d\n", n);
    return 0;
}
