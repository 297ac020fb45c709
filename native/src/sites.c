/* sites.c — the C entry a probe site's trampoline calls in the traced thread. */
#include <errno.h>
#include <string.h>

#include "utrace_rt.h"
#include "rt_internal.h"

int utr_set_site_pp(int32_t site, const char *pp)
{
    if (!utr_base || site <= 0 || site >= UTR_MAX_SITES)
        return -1;
    char *slot = UTR_AT(char, UTR_HDR->sites_off) + (size_t)site * UTR_SITE_PPLEN;
    size_t n = strlen(pp);
    if (n >= UTR_SITE_PPLEN)
        n = UTR_SITE_PPLEN - 1;
    memcpy(slot, pp, n);
    slot[n] = 0;
    return 0;
}

/* The trampoline saved every register it must; errno lives in the thread's TLS,
 * so it is this function's to keep: a probe must not change it.  The site id is
 * (site << 20 | probe): the probe to run, and the site whose pp() it reports. */
void utr_site_hit(uint64_t site_id, void *regs)
{
    int saved = errno;
    uint64_t site = site_id >> 20;
    (void)regs;
    if (site > 0 && site < UTR_MAX_SITES && utr_base)
        _utr_site_pp = UTR_AT(char, UTR_HDR->sites_off) + site * UTR_SITE_PPLEN;
    utr_call_probe((int32_t)(site_id & 0xfffff));
    _utr_site_pp = NULL;
    errno = saved;
}
