/* Test target: threads blocked in read(pipe), nanosleep, a futex (cond wait), epoll_wait,
 * clock_nanosleep(ABSTIME) and accept while a tracer attaches; each reports EINTR or success. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int rpipe[2], epipe[2], lsock, port;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int signalled;
static long sleep_ms;
static char results[6][96];

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *t_read(void *a)
{
    char c;
    ssize_t r = read(rpipe[0], &c, 1);
    snprintf(results[0], 96, "read %s", r == 1 ? "ok" : strerror(errno));
    return a;
}

static void *t_sleep(void *a)
{
    struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
    double t0 = now_ms();
    int r = nanosleep(&ts, NULL);
    snprintf(results[1], 96, "nanosleep %s elapsed_ms=%.1f", r == 0 ? "ok" : strerror(errno),
             now_ms() - t0);
    return a;
}

static void *t_cond(void *a)
{
    pthread_mutex_lock(&mu);
    int r = 0;
    while (!signalled && r == 0)
        r = pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    snprintf(results[2], 96, "futex %s", r == 0 ? "ok" : strerror(r));
    return a;
}

static void *t_epoll(void *a)
{
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, epipe[0], &ev);
    int r = epoll_wait(ep, &out, 1, 5000);
    snprintf(results[3], 96, "epoll %s", r == 1 ? "ok" : r == 0 ? "timeout" : strerror(errno));
    return a;
}

static void *t_absleep(void *a)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    double t0 = now_ms();
    dl.tv_sec += sleep_ms / 1000;
    dl.tv_nsec += (sleep_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) { dl.tv_sec++; dl.tv_nsec -= 1000000000L; }
    int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL);
    snprintf(results[4], 96, "clock_nanosleep %s elapsed_ms=%.1f", r == 0 ? "ok" : strerror(r),
             now_ms() - t0);
    return a;
}

static void *t_accept(void *a)
{
    int c = accept(lsock, NULL, NULL);
    snprintf(results[5], 96, "accept %s", c >= 0 ? "ok" : strerror(errno));
    return a;
}

int main(int argc, char **argv)
{
    sleep_ms = argc > 1 ? atol(argv[1]) : 2000;
    long release_ms = argc > 2 ? atol(argv[2]) : 1500;
    pipe(rpipe);
    pipe(epipe);
    lsock = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (bind(lsock, (struct sockaddr *)&sa, sizeof sa) || listen(lsock, 1) ||
        getsockname(lsock, (struct sockaddr *)&sa, &sl))
        return 5;
    void *(*fns[])(void *) = {t_read, t_sleep, t_cond, t_epoll, t_absleep, t_accept};
    pthread_t t[6];
    for (int i = 0; i < 6; i++)
        pthread_create(&t[i], NULL, fns[i], NULL);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    struct timespec rel = {release_ms / 1000, (release_ms % 1000) * 1000000L};
    double t0 = now_ms();
    int r = nanosleep(&rel, NULL);  /* the main thread blocks too */
    printf("main nanosleep %s elapsed_ms=%.1f\n", r == 0 ? "ok" : strerror(errno), now_ms() - t0);
    (void)!write(rpipe[1], "x", 1);
    (void)!write(epipe[1], "x", 1);
    pthread_mutex_lock(&mu);
    signalled = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&sa, sizeof sa))
        return 6;
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        printf("%s\n", results[i]);
    }
    return 0;
}
