/* SDT markers whose arguments cover every operand form gcc emits on x86-64, plus the
 * forms only hand-written probes (STAP_PROBE_ASM) produce.  Built at -O0 and -O2 (PIE
 * and not) together with sdt_sema.c (markers with semaphores) by tests/binfo/test_sdt.py.
 *
 * After each marker the program prints "NAME v1 v2 ..." with the value each argument
 * should read as (the C value converted to int64 the way $argN sees it: sign- or
 * zero-extended by its type, pointers as addresses, floats as their bits), so a
 * tracer stopped at the marker can check what it computes.  argv[1] is a seed that
 * keeps the compiler from folding everything into constants.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sdt.h>

#define NOINLINE __attribute__((noinline, noclone))

void sema_markers(int seed);  /* sdt_sema.c */

int g_int = -77;
long g_table[8] = {11, -22, 33, -44, 55, -66, 77, -88};
short g_shorts[6] = {-1, 2, -3, 4, -5, 6};
__thread int tls_counter = 41;

struct rec {
    int a;
    long b;
    unsigned char c[8];
    short d;
};

void emit(const char *name, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    printf("%s", name);
    for (int i = 0; i < n; i++)
        printf(" %lld", (long long)va_arg(ap, int64_t));
    printf("\n");
    va_end(ap);
}

#define I(x) ((int64_t)(x))
#define P(x) ((int64_t)(uintptr_t)(x))

/* Arguments in registers of every width (at -O2: %edi %rsi %dl %cx %r8d %r9). */
NOINLINE void regs(int a, long b, unsigned char c, short d, unsigned e, long long f)
{
    DTRACE_PROBE6(sdt, regs, a, b, c, d, e, f);
    emit("regs", 6, I(a), I(b), I(c), I(d), I(e), I(f));
}

/* Constants: $imm, including a negative value for an unsigned type. */
NOINLINE void consts(void)
{
    DTRACE_PROBE4(sdt, consts, -5, 0xfffffffbu, (unsigned char)200, (long)-1);
    emit("consts", 4, I(-5), I(0xfffffffbu), I((unsigned char)200), I((long)-1));
}

/* Struct fields through a pointer: disp(%base) and disp(%base,%index). */
NOINLINE void fields(struct rec *r, int i)
{
    STAP_PROBE4(sdt, fields, r->a, r->b, r->c[i], r->d);
    emit("fields", 4, I(r->a), I(r->b), I(r->c[i]), I(r->d));
}

/* Array elements in a loop: disp(%base,%index,scale). */
NOINLINE long elems(const long *p, const short *s, int n)
{
    long sum = 0;
    for (int i = 0; i < n; i++) {
        DTRACE_PROBE3(sdt, elem, p[i], s[i + 1], i);
        emit("elem", 3, I(p[i]), I(s[i + 1]), I(i));
        sum += p[i];
    }
    return sum;
}

/* Globals: sym(%rip) and sym+off(%rip). */
NOINLINE void globals(void)
{
    DTRACE_PROBE2(sdt, globals, g_int, g_table[1]);
    emit("globals", 2, I(g_int), I(g_table[1]));
}

/* 1/2/4/8 bytes, signed and unsigned. */
NOINLINE void widths(int seed)
{
    signed char sc = (signed char)(-100 - seed);
    unsigned char uc = (unsigned char)(250 + seed);
    short ss = (short)(-30000 - seed);
    unsigned short us = (unsigned short)(65000 + seed);
    int si = -2000000000 - seed;
    unsigned ui = 4000000000u + (unsigned)seed;
    long sl = -9000000000000000000L - seed;
    unsigned long ul = 18000000000000000000UL + (unsigned long)seed;
    STAP_PROBE8(sdt, widths, sc, uc, ss, us, si, ui, sl, ul);
    emit("widths", 8, I(sc), I(uc), I(ss), I(us), I(si), I(ui), I(sl), I(ul));
}

/* Locals whose address is taken live in memory: disp(%rbp) / disp(%rsp). */
NOINLINE void locals(int seed)
{
    volatile long vl = 123456789L * seed;
    volatile int vi = -seed;
    volatile unsigned short vs = (unsigned short)(0xfff0 + seed);
    long l = vl;
    int i = vi;
    unsigned short s = vs;
    DTRACE_PROBE3(sdt, locals, vl, vi, vs);
    emit("locals", 3, I(l), I(i), I(s));
}

/* A pointer and an array (passed as its address). */
NOINLINE void pointers(struct rec *r)
{
    DTRACE_PROBE2(sdt, pointers, r, g_table);
    emit("pointers", 2, P(r), P(g_table));
}

/* float/double: the "f" size suffix; the value read is the bits. */
NOINLINE void floats(int seed)
{
    double d = 1.5 * seed;
    float f = -0.25f * seed;
    uint64_t db;
    uint32_t fb;
    DTRACE_PROBE2(sdt, floats, d, f);
    memcpy(&db, &d, 8);
    memcpy(&fb, &f, 4);
    emit("floats", 2, I(db), I(fb));
}

/* A thread-local variable: %fs:tls_counter@tpoff at -O2 (parsed, refused when read). */
NOINLINE void tls(void)
{
    DTRACE_PROBE1(sdt, tls, tls_counter);
    emit("tls", 1, I(tls_counter));
}

NOINLINE void noargs(void)
{
    DTRACE_PROBE(sdt, noargs);
    emit("noargs", 0);
}

/* Forms only hand-written probes produce: high-byte and odd-width registers. */
NOINLINE void forced_regs(void)
{
    __asm__ __volatile__(
        "movabs $0x11223344d5668077, %%rax\n\t"
        "movabs $0x8877665544332211, %%rsi\n\t"
        "movabs $0x0123456789abcdef, %%r8\n\t"
        "movabs $0x00000000000000f0, %%r9\n\t"
        STAP_PROBE_ASM(sdt, forced_regs, -1@%%ah 1@%%ah -1@%%al -2@%%r8w 1@%%sil -1@%%r9b
                       -8@%%eax 4@%%rsi)
        ::: "rax", "rsi", "r8", "r9", "memory");
    emit("forced_regs", 8, I((int8_t)0x80), I(0x80), I((int8_t)0x77), I((int16_t)0xcdef),
         I(0x11), I((int8_t)0xf0), I((int32_t)0xd5668077), I(0x44332211));
}

/* Memory forms: (,%index,scale), sym(,%index,scale), sym+off(%base), an absolute
 * sym+off, $sym+off (an address as immediate), hex immediates, and a numeric
 * disp(%rip), which is relative to the marker's nop: 3(%rip) is the imm64 of the
 * movabs that follows it (nop; 48 b8 imm64). */
NOINLINE void forced_mem(void)
{
    __asm__ __volatile__(
        "lea g_table+16(%%rip), %%rcx\n\t"
        "shr $3, %%rcx\n\t"
        "mov $3, %%edx\n\t"
        "mov $8, %%edi\n\t"
        STAP_PROBE_ASM(sdt, forced_mem, -8@(,%%rcx,8) -8@g_table(,%%rdx,8) -8@g_table+8(%%rdi)
                       -8@g_table+32 8@$g_table+8 -4@$0xfffffff0 2@$0x12345 8@3(%%rip)
                       -4@7(%%rip))
        "movabs $0x1122334455667788, %%rax\n\t"
        ::: "rax", "rcx", "rdx", "rdi", "memory");
    emit("forced_mem", 9, I(g_table[2]), I(g_table[3]), I(g_table[2]), I(g_table[4]),
         P(&g_table[1]), I(-16), I(0x2345), I(0x1122334455667788LL), I(0x11223344));
}

/* Old-style operands without SIZE@: SystemTap reads them as 8 bytes unsigned. */
NOINLINE void oldstyle(const long *p)
{
    __asm__ __volatile__(
        "mov %0, %%rsi\n\t"
        "mov $-7, %%edi\n\t"
        STAP_PROBE_ASM(sdt, oldstyle, %%edi 8(%%rsi) $-3)
        :: "r"(p) : "rsi", "rdi", "memory");
    emit("oldstyle", 3, I(0xfffffff9u), I(p[1]), I(-3));
}

int main(int argc, char **argv)
{
    int seed = argc > 1 ? atoi(argv[1]) : 1;
    struct rec r = {-seed, 1000L * seed, {1, 2, 3, 250, 5, 6, 7, 8}, (short)-seed};
    setvbuf(stdout, NULL, _IOLBF, 0);
    regs(-seed, 100000000000L * seed, (unsigned char)(200 + seed), (short)(-1000 * seed),
         3000000000u + seed, -5000000000LL * seed);
    consts();
    fields(&r, seed % 8);
    elems(g_table, g_shorts, 3);
    globals();
    widths(seed);
    locals(seed);
    pointers(&r);
    floats(seed);
    tls();
    noargs();
    forced_regs();
    forced_mem();
    oldstyle(g_table);
    sema_markers(seed);
    return 0;
}
