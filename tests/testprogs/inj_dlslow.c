/* inj_dlslow - one thread sits inside dlopen (holding ld.so's load lock) while the
 * library's constructor sleeps; the main thread waits on stdin.  T-30: a remote dlopen
 * from the main thread must not deadlock on that lock. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *opener(void *path)
{
    void *h = dlopen(path, RTLD_NOW);
    printf("opened %s\n", h ? "ok" : dlerror());
    fflush(stdout);
    return h;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    pthread_t t;
    pthread_create(&t, NULL, opener, argv[1]);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    pthread_join(t, NULL);
    printf("done\n");
    return 0;
}
