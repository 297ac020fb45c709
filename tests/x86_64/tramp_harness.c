/* Trampoline harness: patch functions in this process with Python-built jump patches and
 * trampolines whose handler clobbers everything a C function may (T-17), spills with an
 * aligned store (T-19), and probe a red-zone leaf mid-function (T-18).
 *
 * Protocol: prints "handler/tramp/avx/fn/mid" lines and the fixture bytes, reads
 * "<addr> <hexbytes>" write lines until "go", then prints "check <name> ok|FAIL ...".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Fixtures.  fx_add: entry probe after endbr64.  fx_rz: leaf using the red zone, probed at
 * fx_rz_mid (rsp % 16 == 8).  fx_al0: probed after a push (rsp % 16 == 0).  fx_state: entry
 * probe on a function that touches nothing, for the full-state comparison. */
__asm__(
    ".text\n"
    ".globl fx_add\n.type fx_add,@function\nfx_add:\n"
    "endbr64\npush %rbp\nmov %rsp, %rbp\nlea (%rdi,%rsi), %rax\npop %rbp\nret\n"
    ".size fx_add, .-fx_add\n.globl fx_add_end\nfx_add_end:\n"
    ".globl fx_rz\n.type fx_rz,@function\nfx_rz:\n"
    "mov %rdi, -8(%rsp)\nlea 1(%rdi), %rax\nmov %rax, -16(%rsp)\nlea 2(%rdi), %rax\n"
    "mov %rax, -64(%rsp)\nlea 3(%rdi), %rax\nmov %rax, -120(%rsp)\nmov %rsi, -128(%rsp)\n"
    ".globl fx_rz_mid\nfx_rz_mid:\n"
    "mov -8(%rsp), %rax\nimul $3, -16(%rsp), %rcx\nadd %rcx, %rax\nimul $5, -64(%rsp), %rcx\n"
    "add %rcx, %rax\nimul $7, -120(%rsp), %rcx\nadd %rcx, %rax\nxor -128(%rsp), %rax\nret\n"
    ".size fx_rz, .-fx_rz\n.globl fx_rz_end\nfx_rz_end:\n"
    ".globl fx_al0\n.type fx_al0,@function\nfx_al0:\n"
    "push %rbx\n.globl fx_al0_mid\nfx_al0_mid:\nmov %rdi, %rbx\nlea 11(%rbx), %rax\n"
    "pop %rbx\nret\n.size fx_al0, .-fx_al0\n.globl fx_al0_end\nfx_al0_end:\n"
    ".globl fx_state\n.type fx_state,@function\nfx_state:\n"
    "nopl 0(%rax,%rax,1)\nret\n.size fx_state, .-fx_state\n.globl fx_state_end\nfx_state_end:\n"
    /* t17_run(in, out): load every GPR (but rsp), rflags and a full XSAVE image, call
     * fx_state, store them all again. */
    ".globl t17_run\nt17_run:\n"
    "push %rbx\npush %rbp\npush %r12\npush %r13\npush %r14\npush %r15\n"
    "mov %rsi, t17_out(%rip)\n"
    "mov $-1, %eax\nmov $-1, %edx\nxrstor64 192(%rdi)\n"
    "pushq 128(%rdi)\npopfq\n"
    "mov 0(%rdi), %rax\nmov 8(%rdi), %rcx\nmov 16(%rdi), %rdx\nmov 24(%rdi), %rbx\n"
    "mov 40(%rdi), %rbp\nmov 48(%rdi), %rsi\n"
    "mov 64(%rdi), %r8\nmov 72(%rdi), %r9\nmov 80(%rdi), %r10\nmov 88(%rdi), %r11\n"
    "mov 96(%rdi), %r12\nmov 104(%rdi), %r13\nmov 112(%rdi), %r14\nmov 120(%rdi), %r15\n"
    "mov 56(%rdi), %rdi\n"
    "call fx_state\n"
    "mov %rdi, t17_tmp(%rip)\nmov t17_out(%rip), %rdi\n"
    "mov %rax, 0(%rdi)\nmov %rcx, 8(%rdi)\nmov %rdx, 16(%rdi)\nmov %rbx, 24(%rdi)\n"
    "mov %rsp, 32(%rdi)\nmov %rbp, 40(%rdi)\nmov %rsi, 48(%rdi)\n"
    "mov %r8, 64(%rdi)\nmov %r9, 72(%rdi)\nmov %r10, 80(%rdi)\nmov %r11, 88(%rdi)\n"
    "mov %r12, 96(%rdi)\nmov %r13, 104(%rdi)\nmov %r14, 112(%rdi)\nmov %r15, 120(%rdi)\n"
    "pushfq\npopq 128(%rdi)\nmov t17_tmp(%rip), %rax\nmov %rax, 56(%rdi)\n"
    "mov $-1, %eax\nmov $-1, %edx\nxsave64 192(%rdi)\n"
    "cld\npop %r15\npop %r14\npop %r13\npop %r12\npop %rbp\npop %rbx\nret\n"
    ".data\n.p2align 3\nt17_out: .quad 0\nt17_tmp: .quad 0\n.text\n");

extern char fx_add[], fx_add_end[], fx_rz[], fx_rz_mid[], fx_rz_end[], fx_al0[], fx_al0_mid[],
    fx_al0_end[], fx_state[], fx_state_end[];
long fx_add_f(long, long) __asm__("fx_add");
long fx_rz_f(long, long) __asm__("fx_rz");
long fx_al0_f(long) __asm__("fx_al0");

struct t17 {
    uint64_t g[16], flags, pad[7];
    _Alignas(64) uint8_t xs[4096];
};
void t17_run(struct t17 *in, struct t17 *out);

static volatile uint64_t counts[8], seen_rip[8], seen_rsp[8], seen_rdi[8], misaligned;
static int have_avx;

void handler(uint64_t id, uint64_t *regs)
{
    int saved_errno = errno;   /* the runtime dispatcher's job, per the trampoline contract */
    _Alignas(16) float spill[4];
    char junk[512];

    if (id < 8) {
        counts[id]++;
        seen_rip[id] = regs[0];
        seen_rsp[id] = regs[1];
        seen_rdi[id] = regs[10];
    }
    /* T-19: faults unless the trampoline aligned the stack before the call */
    __asm__ volatile("movaps %%xmm0, %0" : "=m"(spill));
    if (((uintptr_t)__builtin_frame_address(0) & 15) != 0)
        misaligned++;
    memset(junk, 0x5a, sizeof junk);
    memcpy(junk + 1, junk + 100, 300);
    close(-1);                 /* sets errno = EBADF */
    errno = saved_errno;
    /* Clobber every vector register, the x87 stack and control word, MXCSR and DF last so
     * the compiler cannot depend on them afterwards. */
    if (have_avx)
        __asm__ volatile("vpcmpeqd %%ymm0,%%ymm0,%%ymm0\n vpcmpeqd %%ymm1,%%ymm1,%%ymm1\n"
                         "vpcmpeqd %%ymm7,%%ymm7,%%ymm7\n vpcmpeqd %%ymm8,%%ymm8,%%ymm8\n"
                         "vpcmpeqd %%ymm15,%%ymm15,%%ymm15\n vmovdqa %%ymm0,%%ymm9\n"
                         ::: "xmm0", "xmm1", "xmm7", "xmm8", "xmm9", "xmm15");
    __asm__ volatile("pcmpeqd %%xmm2,%%xmm2\n pcmpeqd %%xmm3,%%xmm3\n pcmpeqd %%xmm14,%%xmm14\n"
                     "fldpi\n fldpi\n fldz\n"
                     "movl $0x7fbf, -4(%%rsp)\n ldmxcsr -4(%%rsp)\n"
                     "movw $0x0c7f, -8(%%rsp)\n fldcw -8(%%rsp)\n"
                     "mov $0, %%eax\n add $0, %%eax\n std\n"
                     ::: "xmm2", "xmm3", "xmm14", "eax", "cc", "memory");
}

static void put_fn(const char *name, char *a, char *end)
{
    printf("fn %s %#lx %ld ", name, (unsigned long)a, (long)(end - a));
    for (char *p = a; p < end; p++)
        printf("%02x", (unsigned char)*p);
    printf("\n");
}

static void prep_state(struct t17 *in)
{
    uint64_t x = 0x0123456789abcdefULL;
    memset(in, 0, sizeof *in);
    for (int i = 0; i < 16; i++)
        in->g[i] = (x = x * 6364136223846793005ULL + 1442695040888963407ULL);
    in->flags = 0x2 | 0x1 | 0x4 | 0x40 | 0x80 | 0x800;   /* CF PF ZF SF OF */
    /* Start from a genuine image of the current state, then plant patterns. */
    __asm__ volatile("mov $-1, %%eax\n mov $-1, %%edx\n xsave64 %0" : "=m"(in->xs)
                     :: "eax", "edx", "memory");
    uint8_t *xs = in->xs;
    *(uint16_t *)(xs + 0) = 0x027f;              /* FCW: 53-bit precision */
    xs[4] = 0xff;                               /* abridged FTW: all 8 x87 registers valid */
    *(uint16_t *)(xs + 2) = 0;                  /* FSW: TOP = 0 */
    *(uint32_t *)(xs + 24) = 0x1f80 | 0x6000 | 0x21;   /* MXCSR: round toward zero, flags */
    for (int i = 0; i < 8; i++) {               /* ST0..7: 80-bit normals */
        *(uint64_t *)(xs + 32 + 16 * i) = 0x8000000000000000ULL | (x = x * 3 + 7);
        *(uint16_t *)(xs + 40 + 16 * i) = 0x3fff + i;
    }
    for (int i = 0; i < 256; i++)               /* xmm0..15 */
        xs[160 + i] = (uint8_t)(i * 7 + 3);
    for (int i = 0; i < 256; i++)               /* ymm0..15 upper halves */
        xs[576 + i] = (uint8_t)(i * 13 + 1);
    *(uint64_t *)(xs + 512) |= have_avx ? 7 : 3;
}

static int check(const char *name, int ok, const char *detail)
{
    printf("check %s %s %s\n", name, ok ? "ok" : "FAIL", ok ? "" : detail);
    return ok;
}

int main(void)
{
    char line[65536];
    __builtin_cpu_init();
    have_avx = __builtin_cpu_supports("avx");
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* trampoline memory within +-2 GiB of the fixtures, never MAP_FIXED over anything */
    uintptr_t text = (uintptr_t)fx_add & ~0xfffffUL;
    void *tramp = MAP_FAILED;
    for (int k = 1; k < 512 && tramp == MAP_FAILED; k++) {
        void *want = (void *)(text - 0x100000UL * k);
        tramp = mmap(want, 65536, PROT_READ | PROT_WRITE | PROT_EXEC,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (tramp != MAP_FAILED && tramp != want) {
            munmap(tramp, 65536);
            tramp = MAP_FAILED;
        }
    }
    if (tramp == MAP_FAILED) {
        perror("tramp mmap");
        return 2;
    }
    printf("handler %#lx\ntramp %#lx\navx %d\n", (unsigned long)handler, (unsigned long)tramp,
           have_avx);
    put_fn("fx_add", fx_add, fx_add_end);
    put_fn("fx_rz", fx_rz, fx_rz_end);
    put_fn("fx_al0", fx_al0, fx_al0_end);
    put_fn("fx_state", fx_state, fx_state_end);
    printf("mid fx_rz %#lx\nmid fx_al0 %#lx\nready\n", (unsigned long)fx_rz_mid,
           (unsigned long)fx_al0_mid);

    /* Baselines before patching. */
    static struct t17 in, base, after;
    prep_state(&in);
    t17_run(&in, &base);
    long rz_base[64], al_base[64];
    for (int i = 0; i < 64; i++) {
        rz_base[i] = fx_rz_f(i * 1000003L, ~(long)i);
        al_base[i] = fx_al0_f(i);
    }

    while (fgets(line, sizeof line, stdin)) {
        unsigned long addr;
        char hex[65536];
        if (!strncmp(line, "go", 2))
            break;
        if (sscanf(line, "%lx %65535s", &addr, hex) != 2)
            return 3;
        uintptr_t pg = addr & ~0xfffUL;
        size_t n = strlen(hex) / 2;
        mprotect((void *)pg, (addr + n - pg + 4095) & ~0xfffUL, PROT_READ | PROT_WRITE |
                 PROT_EXEC);
        for (size_t i = 0; i < n; i++) {
            unsigned v;
            sscanf(hex + 2 * i, "%2x", &v);
            ((volatile uint8_t *)addr)[i] = (uint8_t)v;
        }
    }

    int fails = 0;
    char msg[256];
    long sum = 0, want = 0;
    errno = 77;
    for (long i = 0; i < 1000; i++) {
        sum += fx_add_f(i, 3 * i);
        want += 4 * i;
    }
    snprintf(msg, sizeof msg, "sum %ld want %ld count %lu rdi %lu errno %d", sum, want,
             (unsigned long)counts[1], (unsigned long)seen_rdi[1], errno);
    fails += !check("fx_add", sum == want && counts[1] == 1000 && seen_rdi[1] == 999 &&
                    errno == 77 && seen_rip[1] == (uintptr_t)fx_add + 4, msg);
    int rz_ok = 1, al_ok = 1;
    for (int i = 0; i < 64; i++) {
        rz_ok &= fx_rz_f(i * 1000003L, ~(long)i) == rz_base[i];
        al_ok &= fx_al0_f(i) == al_base[i];
    }
    snprintf(msg, sizeof msg, "count %lu", (unsigned long)counts[2]);
    fails += !check("t18_redzone", rz_ok && counts[2] == 64 &&
                    seen_rip[2] == (uintptr_t)fx_rz_mid, msg);
    snprintf(msg, sizeof msg, "count %lu rsp %#lx", (unsigned long)counts[3],
             (unsigned long)seen_rsp[3]);
    fails += !check("t19_align0", al_ok && counts[3] == 64 && (seen_rsp[3] & 15) == 0 &&
                    (seen_rsp[2] & 15) == 8, msg);
    fails += !check("t19_handler_aligned", misaligned == 0, "");

    t17_run(&in, &after);
    int gpr_ok = !memcmp(base.g, after.g, sizeof base.g) && base.flags == after.flags;
    snprintf(msg, sizeof msg, "count %lu", (unsigned long)counts[4]);
    fails += !check("t17_gprs_flags", gpr_ok && counts[4] == 1, msg);
    /* x87 control/status/tags, FOP/FIP/FDP, MXCSR, ST0-7, XMM0-15, then the YMM uppers */
    int first = -1;
    for (int i = 0; i < 416 && first < 0; i++)
        if (base.xs[i] != after.xs[i] && !(i >= 28 && i < 32))   /* 28..31: MXCSR_MASK */
            first = i;
    for (int i = 576; have_avx && i < 832 && first < 0; i++)
        if (base.xs[i] != after.xs[i])
            first = i;
    snprintf(msg, sizeof msg, "first differing xsave byte %d", first);
    fails += !check("t17_fp_simd", first < 0, msg);
    printf("done %d\n", fails);
    return fails ? 1 : 0;
}
