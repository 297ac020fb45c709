/* att_args - functions whose arguments probes read (tests/attach/test_umem.py).
 *
 * take() has 8 arguments, so the 7th and 8th are on the stack; it is called
 * N times (argv[1], default 3) and main prints, for each call, what it passed
 * in the format the test's script prints it.  edge() gets a string whose NUL
 * is the last byte before an unreadable page; nonul() 4 bytes with no NUL before
 * that page; poke() a pointer to a long main prints afterwards (a -g script
 * may change it).  Exit status 7, so a test can see the program's own.
 * `att_args loop` says "ready", calls take() every millisecond until stdin
 * closes, then prints "done <calls>" (for -x sessions). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct rec {
    int id;
    short kind;
    long val;
    char name[16];
};

__attribute__((noipa)) long take(const char *s, int n, long l, short sh, struct rec *r,
                                 unsigned char u8, long a7, int a8)
{
    return (long)strlen(s) + n + l + sh + r->id + u8 + a7 + a8;
}

__attribute__((noipa)) int edge(const char *s) { return s[0]; }
__attribute__((noipa)) int nonul(const char *s) { return s[0]; }
__attribute__((noipa)) void poke(long *p) { (void)p; }
/* "h\u00e9llo \u20ac\U0001d11e" in UTF-32 and UTF-16 (a surrogate pair), then a lone
 * surrogate in each. */
__attribute__((noipa)) int wide(const unsigned *u32, const unsigned short *u16,
                                const unsigned *bad32, const unsigned short *bad16)
{
    return (int)(u32[0] + u16[0] + bad32[0] + bad16[0]);
}

static int loop(void)
{
    long calls = 0, sum = 0;
    struct rec r = { 1, 2, 3, "loop" };
    char c;
    fcntl(0, F_SETFL, O_NONBLOCK);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (;;) {
        sum += take("loop", 1, 2, 3, &r, 4, 5, 6);
        calls++;
        if (read(0, &c, 1) == 0)
            break;
        usleep(1000);
    }
    printf("done %ld %ld\n", calls, sum / calls);
    return 7;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "loop") == 0)
        return loop();
    int n = argc > 1 ? atoi(argv[1]) : 3;
    long sum = 0, value = 42;
    long pg = sysconf(_SC_PAGESIZE);
    char *page = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return 1;
    /* The page after `page` can never be read: PROT_NONE rather than unmapped, so
     * no later mapping (the tracer's, the handler's) can land there. */
    mprotect(page + pg, (size_t)pg, PROT_NONE);

    for (int i = 0; i < n; i++) {
        char s[32];
        struct rec r = { 1000 + i, (short)-i, 7L * i, "" };
        snprintf(s, sizeof s, "str-%d", i);
        snprintf(r.name, sizeof r.name, "rec%d", i);
        int ni = -5 * i - 1;
        long li = -1234567890123L * (i + 1);
        short shi = (short)(-300 - i);
        long a7 = 7000000000L + i;
        int a8 = -8 - i;
        printf("take s=%s n=%d l=%ld sh=%d id=%d kind=%d name=%s u8=%d a7=%ld a8=%d p=%ld\n",
               s, ni, li, shi, r.id, r.kind, r.name, 200 + i, a7, a8, (long)s);
        sum += take(s, ni, li, shi, &r, (unsigned char)(200 + i), a7, a8);
    }
    memcpy(page + pg - 5, "edge", 5);         /* its NUL is the page's last byte */
    sum += edge(page + pg - 5);
    memcpy(page + pg - 4, "abcd", 4);         /* no NUL before the hole */
    sum += nonul(page + pg - 4);
    {
        static const unsigned u32[] = { 'h', 0xe9, 'l', 'l', 'o', ' ', 0x20ac, 0x1d11e, 0 };
        static const unsigned short u16[] = { 'h', 0xe9, 'l', 'l', 'o', ' ', 0x20ac,
                                              0xd834, 0xdd1e, 0 };
        static const unsigned bad32[] = { 'a', 0xd800, 0 };
        static const unsigned short bad16[] = { 'b', 0xdc00, 'c', 0 };
        sum += wide(u32, u16, bad32, bad16);
    }
    poke(&value);
    printf("value %ld\n", value);
    printf("sum %ld\n", sum);
    return 7;
}
