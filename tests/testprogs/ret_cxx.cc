// ret_cxx - C++ exceptions and thread cancellation unwinding through return-probed frames.
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

static volatile long sink;

__attribute__((noinline)) long thrower(long i)
{
    sink += i;
    if (i >= 0)
        throw std::runtime_error("boom");
    return i;
}

struct Guard {
    ~Guard() { sink += 1; }
};

// middle has a cleanup (Guard) but no catch: the unwinder runs a landing pad here.
__attribute__((noinline)) long middle(long i)
{
    Guard g;
    return thrower(i) + 1;
}

__attribute__((noinline)) long leaf(long i)
{
    return i * 7 + 3;
}

__attribute__((noinline)) long catcher(long i)
{
    try {
        return middle(i);
    } catch (const std::exception &) {
        try {
            middle(i);  // a second throw while the first is being handled
        } catch (...) {
        }
        return leaf(i);
    }
}

__attribute__((noinline)) long cancelled(long i)
{
    for (;;) {
        sink += i;
        usleep(1000);  // a cancellation point: forced unwind starts here
    }
}

static void *victim(void *arg)
{
    cancelled((long)arg);
    return nullptr;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "throw";
    long n = argc > 2 ? atol(argv[2]) : 1000, sum = 0;
    if (!std::strcmp(mode, "throw")) {
        for (long i = 0; i < n; i++)
            sum += catcher(i);
    } else if (!std::strcmp(mode, "cancel")) {
        for (long i = 0; i < n; i++) {
            pthread_t t;
            pthread_create(&t, nullptr, victim, (void *)i);
            usleep(2000);
            pthread_cancel(t);
            void *r;
            pthread_join(t, &r);
            sum += r == PTHREAD_CANCELED;
        }
    }
    std::printf("sum %ld\n", sum);
    return 0;
}
