"""Which unwinder (issue 7): ours (native/src/unwind.c) against libgcc's, 20 frames deep.

Both walk the same -O2 -fomit-frame-pointer stack from inside a leaf 20 calls
deep, 20 frames each, in one program: glibc's backtrace() (libgcc's
_Unwind_Backtrace over .eh_frame, what linking libgcc_s into the handler
library would give) and utr_unwind_regs() from the registers getcontext()
saw at the same leaf, with the runtime's few external symbols stubbed.
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = r"""
#define _GNU_SOURCE
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include "utrace_rt.h"
uint64_t utr_ret_tramp_addr;
uint64_t _utr_ret_orig(uint64_t slot) { (void)slot; return 0; }
const struct utrace_regs *utr_uregs(void) { return NULL; }
#include <sys/uio.h>
#include <unistd.h>
size_t _utr_uread_upto(void *dst, uint64_t addr, size_t n) {
    struct iovec l = { dst, n }, r = { (void *)addr, n };
    ssize_t k = process_vm_readv(getpid(), &l, 1, &r, 1, 0);
    return k < 0 ? 0 : (size_t)k;
}
static long n;
static double t_gcc, t_ours;
static int k_gcc, k_ours, same;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
                          return t.tv_sec * 1e9 + t.tv_nsec; }
__attribute__((noinline)) void leaf(void) {
    void *a[20]; uint64_t b[20]; ucontext_t uc; struct utrace_regs r; double t0; long i;
    getcontext(&uc);
    greg_t *g = uc.uc_mcontext.gregs;
    memset(&r, 0, sizeof r);
    r.rip = g[REG_RIP]; r.rsp = g[REG_RSP]; r.rbp = g[REG_RBP]; r.rbx = g[REG_RBX];
    r.r12 = g[REG_R12]; r.r13 = g[REG_R13]; r.r14 = g[REG_R14]; r.r15 = g[REG_R15];
    t0 = now(); for (i = 0; i < n; i++) k_gcc = backtrace(a, 20); t_gcc = (now() - t0) / n;
    t0 = now(); for (i = 0; i < n; i++) k_ours = utr_unwind_regs(&r, b, 20); t_ours = (now() - t0) / n;
    same = 1;
    for (i = 1; i < k_gcc && i < k_ours; i++) same &= (uint64_t)a[i] == b[i];
}
__attribute__((noinline)) long down(long d) { volatile long r; if (!d) { leaf(); return 0; }
                                              r = down(d - 1); return r + 1; }
int main(int argc, char **argv) {
    n = atol(argv[1]);
    down(24);
    printf("%.1f %.1f %d %d %d\n", t_gcc, t_ours, k_gcc, k_ours, same);
    return 0;
}
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "h.c"
        src.write_text(HARNESS)
        runs = {}
        for cache in (1, 0):
            exe = Path(tmp) / f"h{cache}"
            subprocess.run(["cc", "-O2", "-fomit-frame-pointer", f"-DUTR_UNWIND_CACHE={cache}",
                            "-I", str(ROOT / "native/include"), "-I", str(ROOT / "native/src"),
                            "-o", str(exe), str(src), str(ROOT / "native/src/unwind.c")],
                           check=True)
            runs[cache] = [subprocess.run([str(exe), "200000"], capture_output=True, text=True,
                                          check=True).stdout.split() for _ in range(3)]
        gcc = min(float(r[0]) for r in runs[1] + runs[0])
        ours = min(float(r[1]) for r in runs[1])
        nocache = min(float(r[1]) for r in runs[0])
        print("| unwinder, 20 frames of an -O2 -fomit-frame-pointer stack | ns per backtrace | ratio |")
        print("|---|---|---|")
        print(f"| libgcc `_Unwind_Backtrace` (glibc `backtrace()`) | {gcc:.0f} | 1.00 |")
        print(f"| utrace `utr_unwind_regs`, CFI decoded at every frame | {nocache:.0f} "
              f"| {nocache / gcc:.2f} |")
        print(f"| utrace `utr_unwind_regs` (row cache) | {ours:.0f} | {ours / gcc:.2f} |")
        r = runs[1][0]
        print(f"(frames: libgcc {r[2]}, ours {r[3]}; same return addresses: "
              f"{'yes' if r[4] == '1' and runs[0][0][4] == '1' else 'NO'})")


if __name__ == "__main__":
    main()
