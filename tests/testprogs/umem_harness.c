/* umem_harness — exercises native/src/umem.c on its own (tests/attach/test_umem.py).
 * `umem_harness check` prints one "name ok|FAIL detail" line per case;
 * `umem_harness bench` prints ns per call of the fault-safe reads. */
#define _GNU_SOURCE
#include "utrace_rt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The runtime pieces umem.c does not need but the header declares are not linked. */

static int failures;

static void check(const char *name, int ok, const char *detail)
{
    printf("%s %s%s%s\n", name, ok ? "ok" : "FAIL", ok ? "" : " ", ok ? "" : detail);
    if (!ok)
        failures++;
}

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Two pages, the second one unmapped: returns the start of the mapped one. */
static char *page_before_hole(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED)
        abort();
    munmap(p + pg, (size_t)pg);
    return p;
}

static volatile long shared_value = 1;

static int do_check(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    char buf[600];
    int fault = -1;
    int64_t v;

    /* integers of every size, signed and not */
    {
        static const unsigned char bytes[8] = { 0xfe, 0xff, 0xff, 0x80, 0x01, 0x02, 0x03, 0x84 };
        uint64_t a = (uint64_t)(uintptr_t)bytes;
        check("int8", utr_uread_int(a, 1, 1, &fault) == -2 && fault == 0, "");
        check("uint8", utr_uread_int(a, 1, 0, &fault) == 0xfe && fault == 0, "");
        check("int16", utr_uread_int(a, 2, 1, &fault) == -2, "");
        check("uint16", utr_uread_int(a, 2, 0, &fault) == 0xfffe, "");
        check("int32", utr_uread_int(a, 4, 1, &fault) == (int32_t)0x80fffffe, "");
        check("uint32", utr_uread_int(a, 4, 0, &fault) == 0x80fffffeLL, "");
        check("int64", (uint64_t)utr_uread_int(a, 8, 1, &fault) == 0x8403020180fffffeULL, "");
        v = utr_uread_int(a, 3, 1, &fault);
        check("bad_size", v == 0 && fault == 1, "");
    }
    /* bad addresses fail, errno is left alone */
    errno = 1234;
    v = utr_uread_int(0, 8, 1, &fault);
    check("null", v == 0 && fault == 1, "");
    check("errno_kept", errno == 1234, "");
    check("addr_1", utr_uread(buf, 1, 8) == -1, "");
    check("kernel_addr", utr_uread(buf, 0xffffffff81000000ull, 8) == -1, "");
    check("wraps", utr_uread(buf, 0xfffffffffffffffcull, 8) == -1, "");
    check("noncanonical", utr_uread(buf, 0x0000800000000000ull, 8) == -1, "");
    check("zero_bytes", utr_uread(buf, 0, 0) == 0, "");

    /* protections are the mapping's own */
    {
        char *p = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        long x = 77;
        strcpy(p, "guarded");
        mprotect(p, (size_t)pg, PROT_NONE);
        check("prot_none_read", utr_uread(buf, (uint64_t)(uintptr_t)p, 4) == -1, "");
        mprotect(p, (size_t)pg, PROT_READ);
        check("readonly_read", utr_uread(buf, (uint64_t)(uintptr_t)p, 8) == 0 &&
              memcmp(buf, "guarded", 8) == 0, "");
        check("readonly_write", utr_uwrite((uint64_t)(uintptr_t)p, "x", 1) == -1 && p[0] == 'g', "");
        mprotect(p, (size_t)pg, PROT_READ | PROT_WRITE);
        check("write", utr_uwrite((uint64_t)(uintptr_t)p, &x, sizeof x) == 0 &&
              *(long *)p == 77, "");
        check("write_str", utr_uwrite_str((uint64_t)(uintptr_t)p, "hello", 512) == 0 &&
              strcmp(p, "hello") == 0, "");
        check("write_str_bounded", utr_uwrite_str((uint64_t)(uintptr_t)p, "abcdef", 4) == 0 &&
              memcmp(p, "abc\0", 4) == 0, "");
        check("write_null", utr_uwrite(0, &x, sizeof x) == -1, "");
        munmap(p, (size_t)pg);
    }

    /* strings against an unmapped page */
    {
        char *p = page_before_hole();
        char *end = p + pg;
        int64_t r;
        memcpy(end - 5, "edge", 5);                      /* NUL is the page's last byte */
        r = utr_ustrncpy(buf, (uint64_t)(uintptr_t)(end - 5), 512);
        check("string_ends_at_page_end", r == 4 && strcmp(buf, "edge") == 0, buf);
        memcpy(end - 4, "abcd", 4);                      /* no NUL before the hole */
        r = utr_ustrncpy(buf, (uint64_t)(uintptr_t)(end - 4), 512);
        check("string_runs_into_hole", r == -EFAULT, "");
        r = utr_ustrncpy(buf, (uint64_t)(uintptr_t)(end - 4), 5);   /* at most 4 bytes read */
        check("bounded_string_stops_before_hole", r == 4 && strcmp(buf, "abcd") == 0, buf);
        r = utr_ustrncpy(buf, (uint64_t)(uintptr_t)(end - 4), 3);
        check("bounded_string_truncates", r == 2 && strcmp(buf, "ab") == 0, buf);
        check("read_upto_hole", utr_read_mem(buf, (uint64_t)(uintptr_t)(end - 4), 16) == 4, "");
        check("read_across_hole", utr_uread(buf, (uint64_t)(uintptr_t)(end - 4), 8) == -1, "");
        memset(p, 'x', (size_t)pg);
        p[100] = 0;
        r = utr_ustrncpy(buf, (uint64_t)(uintptr_t)p, 600);
        check("long_string", r == 100, "");
        r = utr_ustrncpy(buf, (uint64_t)(uintptr_t)(p + pg - 300), 600);
        check("string_crossing_into_hole", r == -EFAULT, "");
        r = utr_ustrncpy(buf, 0, 512);
        check("string_null", r == -EFAULT, "");
        check("string_len0", utr_ustrncpy(buf, (uint64_t)(uintptr_t)p, 0) == -EINVAL, "");
    }

    /* a string that crosses a page boundary into a mapped page */
    {
        char *p = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        memcpy(p + pg - 3, "crossing", 9);
        check("string_crossing_pages", utr_ustrncpy(buf, (uint64_t)(uintptr_t)(p + pg - 3), 512) == 8 &&
              strcmp(buf, "crossing") == 0, buf);
        munmap(p, 2 * (size_t)pg);
    }

    /* a forked child reads its own memory, not its parent's */
    {
        long got = 0;
        pid_t child;
        utr_uread(&got, (uint64_t)(uintptr_t)&shared_value, sizeof got);   /* pid cached */
        child = fork();
        if (child == 0) {
            shared_value = 2;
            got = 0;
            if (utr_uread(&got, (uint64_t)(uintptr_t)&shared_value, sizeof got) != 0)
                _exit(3);
            _exit(got == 2 ? 0 : 4);
        }
        int st = 0;
        waitpid(child, &st, 0);
        check("fork_child_reads_itself", WIFEXITED(st) && WEXITSTATUS(st) == 0, "");
        check("parent_unchanged", utr_uread(&got, (uint64_t)(uintptr_t)&shared_value,
                                            sizeof got) == 0 && got == 1, "");
    }
    return failures ? 1 : 0;
}

static int do_bench(void)
{
    static char str[64] = "a string of twenty-nine bytes";
    static long val = 5;
    char buf[512];
    int fault, i, n = 200000;
    double best_int = 1e18, best_str = 1e18, best_bad = 1e18, t;
    volatile int64_t sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        t = now_ns();
        for (i = 0; i < n; i++)
            sink += utr_uread_int((uint64_t)(uintptr_t)&val, 8, 1, &fault);
        t = (now_ns() - t) / n;
        if (t < best_int) best_int = t;
        t = now_ns();
        for (i = 0; i < n; i++)
            sink += utr_ustrncpy(buf, (uint64_t)(uintptr_t)str, 511);
        t = (now_ns() - t) / n;
        if (t < best_str) best_str = t;
        t = now_ns();
        for (i = 0; i < n; i++)
            sink += utr_uread_int(8, 8, 1, &fault);
        t = (now_ns() - t) / n;
        if (t < best_bad) best_bad = t;
    }
    printf("uread_int %.0f ns\nustrncpy %.0f ns\nfault %.0f ns\n", best_int, best_str, best_bad);
    return sink == 42;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "bench") == 0)
        return do_bench();
    return do_check();
}
