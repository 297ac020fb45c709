// bt_cxx.cc — C++ frames for the backtrace tests (built -O2 -fomit-frame-pointer).
// geo::leaf is probed; it prints the return addresses glibc's backtrace() sees.
#include <execinfo.h>
#include <cstdio>
#include <cstdlib>

namespace geo {

__attribute__((noinline)) void leaf(int n)
{
    void *pcs[64];
    int k = backtrace(pcs, 64);
    std::printf("own:");
    for (int i = 1; i < k; i++)
        std::printf(" %p", pcs[i]);
    std::printf("\n");
    std::fflush(stdout);
    (void)n;
}

template <typename T> struct Walker {
    volatile T acc = 0;
    __attribute__((noinline)) T step(T n)
    {
        if (n <= 0) {
            leaf(static_cast<int>(n));
            return acc;
        }
        T r = step(n - 1);
        acc = acc + r;
        return acc + 1;
    }
};

}  // namespace geo

int main(int argc, char **argv)
{
    geo::Walker<long> w;
    return static_cast<int>(w.step(argc > 1 ? std::atol(argv[1]) : 3)) & 0;
}
