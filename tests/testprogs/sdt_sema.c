/* Markers with semaphores (part of the sdt_args program).  With _SDT_HAS_SEMAPHORES
 * every note in this file records the address of PROVIDER_NAME_semaphore, an
 * unsigned short in the .probes section, as the `dtrace -h` header would declare it;
 * the program skips the marker (and its argument set-up) unless a tracer has made
 * the semaphore nonzero. */
#define _SDT_HAS_SEMAPHORES 1
#include <stdint.h>
#include <sys/sdt.h>

#define SEMAPHORE(p, n) \
    __extension__ unsigned short p##_##n##_semaphore __attribute__((unused)) \
        __attribute__((section(".probes"))) __attribute__((visibility("hidden")))

SEMAPHORE(sdt, guarded);
SEMAPHORE(sdt, query__start);

void emit(const char *name, int n, ...);

void sema_markers(int seed)
{
    emit("semaphores", 2, (int64_t)sdt_guarded_semaphore, (int64_t)sdt_query__start_semaphore);
    if (__builtin_expect(sdt_guarded_semaphore, 0)) {
        DTRACE_PROBE2(sdt, guarded, seed, seed * 3L);
        emit("guarded", 2, (int64_t)seed, (int64_t)(seed * 3L));
    }
    if (__builtin_expect(sdt_query__start_semaphore, 0)) {
        DTRACE_PROBE1(sdt, query__start, -seed);
        emit("query__start", 1, (int64_t)-seed);
    }
}
