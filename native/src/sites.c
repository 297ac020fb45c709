/* sites.c — what a patched probe site runs in the traced thread, and its table. */
#include <errno.h>
#include <string.h>

#include "utrace_rt.h"
#include "rt_internal.h"

__thread const struct utrace_regs *_utr_site_regs __attribute__((tls_model("initial-exec")));
__thread int32_t _utr_in_runtime __attribute__((tls_model("initial-exec")));

long _utr_errno_off;

__attribute__((constructor)) static void _utr_errno_init(void)
{
    char *tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    _utr_errno_off = (long)((char *)&errno - tp);
}

void _utr_count_nested(void)
{
    if (utr_base)
        __atomic_add_fetch(&UTR_HDR->reentrant_count, 1, __ATOMIC_RELAXED);
}

const struct utrace_regs *utr_uregs(void)
{
    return _utr_site_regs;
}

static utr_site_desc *_utr_desc(int32_t site)
{
    if (!utr_base || site <= 0 || site >= UTR_MAX_SITES)
        return NULL;
    return UTR_AT(utr_site_desc, UTR_HDR->sitedesc_off) + site;
}

int utr_set_site_pp(int32_t site, const char *pp)
{
    if (!_utr_desc(site))
        return -1;
    char *slot = UTR_AT(char, UTR_HDR->sites_off) + (size_t)site * UTR_SITE_PPLEN;
    size_t n = strlen(pp);
    if (n >= UTR_SITE_PPLEN)
        n = UTR_SITE_PPLEN - 1;
    memcpy(slot, pp, n);
    slot[n] = 0;
    return 0;
}

/* The tracer fills a site's descriptor before the jump into its trampoline is
 * written, so a hit never sees a half-built one. */
int utr_site_add_probe(int32_t site, int32_t probe)
{
    utr_site_desc *d = _utr_desc(site);
    if (!d || d->nprobes >= UTR_SITE_PROBES)
        return -1;
    d->probes[d->nprobes++] = probe;
    return 0;
}

int utr_site_set_return(int32_t site, int32_t ret_site)
{
    utr_site_desc *d = _utr_desc(site);
    if (!d || !_utr_desc(ret_site))
        return -1;
    d->ret_site = ret_site;
    return 0;
}

int utr_site_set_hook(int32_t site, int32_t hook)
{
    utr_site_desc *d = _utr_desc(site);
    if (!d)
        return -1;
    d->hook = hook;
    return 0;
}

/* Run the probes of `site` with pp() naming it and regs describing the thread. */
void _utr_run_site(int32_t site, struct utrace_regs *regs)
{
    const utr_site_desc *d = _utr_desc(site);
    const struct utrace_regs *outer = _utr_site_regs;  /* a probe hit inside a handler */
    const char *outer_pp = _utr_site_pp;
    int32_t i;
    if (!d || d->nprobes == 0)
        return;
    _utr_site_regs = regs;
    _utr_site_pp = UTR_AT(char, UTR_HDR->sites_off) + (size_t)site * UTR_SITE_PPLEN;
    for (i = 0; i < d->nprobes; i++)
        utr_call_probe(d->probes[i]);
    _utr_site_pp = outer_pp;
    _utr_site_regs = outer;
}

/* The trampoline saved every register it must; errno lives in the thread's TLS,
 * so it is this function's to keep: a probe must not change it. */
void utr_site_hit(uint64_t site, struct utrace_regs *regs)
{
    int saved;
    const utr_site_desc *d;
    if (UTR_UNLIKELY(_utr_in_runtime)) {  /* called from our own code: no probes, no hijack */
        _utr_count_nested();
        return;
    }
    _utr_in_runtime++;
    saved = *_utr_errno_ptr();
    d = _utr_desc((int32_t)site);
    if (d) {
        _utr_run_site((int32_t)site, regs);
        if (UTR_UNLIKELY(d->hook)) {
            if (d->hook <= UTR_HOOK_CATCH)
                _utr_unwind_hook(d->hook, regs);
            else
                _utr_trap_hook(d->hook, regs);
        }
        if (d->ret_site && utr_state() == UTR_ST_RUNNING)
            _utr_hijack(d->ret_site, regs);
    }
    *_utr_errno_ptr() = saved;
    _utr_in_runtime--;
}
