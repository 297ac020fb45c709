/* utrace_kmod.h — what the generated module code and the kernel runtime share
 * beyond utrace_rt.h: the probe table, handler scratch memory, probe registers. */
#ifndef UTRACE_KMOD_H
#define UTRACE_KMOD_H

#include "utrace_rt.h"

/* Probe families the module registers (the generated table's `kind`). */
enum utr_kkind {
    UTR_K_BEGIN = 0, UTR_K_END = 1, UTR_K_ERROR = 2, UTR_K_NEVER = 3,
    UTR_K_TIMER = 4, UTR_K_KPROBE = 5, UTR_K_KRETPROBE = 6
};

struct utr_kprobe_desc {
    int32_t index;        /* utr_call_probe(index) */
    int32_t kind;         /* enum utr_kkind */
    int32_t order;        /* begin(N)/end(N)/error(N) */
    int64_t interval_ns;  /* timers */
    int64_t randomize_ns;
    const char *symbol;   /* kernel.function("symbol") */
};

/* Defined by the generated code. */
extern const struct utr_kprobe_desc utr_kprobe_descs[];
extern const int utr_kprobe_ndescs;
extern const char utr_kmod_name[];

#ifndef UTR_KSCRATCH
#define UTR_KSCRATCH (256u << 10) /* per-CPU bytes for the strings and stats of frames */
#endif

/* Strings and stats of a handler's frame live in the CPU's scratch area, not on
 * the kernel's 16 KiB stack (as SystemTap keeps locals in its per-CPU context).
 * When it is exhausted the hit fails with an error and gets a throw-away buffer. */
void *utr_scratch(utr_ctx *c, uint32_t bytes);

/* pt_regs of the running hit (kprobe, kretprobe), NULL for begin/end/timers. */
struct pt_regs;
struct pt_regs *utr_kregs(utr_ctx *c);
/* register("name") of the probed context; returns -1 without registers, -2 bad name. */
int utr_kregister(utr_ctx *c, const char *name, int64_t *out);
/* Argument n (1-based, SysV ABI) at a kprobe; -1 without registers, -2 bad n. */
int utr_karg(utr_ctx *c, int64_t n, int64_t *out);
/* The return value at a kretprobe; -1 elsewhere. */
int utr_kreturn(utr_ctx *c, int64_t *out);

#endif
