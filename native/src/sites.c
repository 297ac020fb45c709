/* sites.c — the C entry a probe site's trampoline calls in the traced thread. */
#include <errno.h>

#include "utrace_rt.h"

/* The trampoline saved every register and the SIMD state; errno lives in the
 * thread's TLS, so it is this function's to keep: a probe must not change it. */
void utr_site_hit(uint64_t site_id, void *regs)
{
    int saved = errno;
    (void)regs;
    utr_call_probe((int32_t)site_id);
    errno = saved;
}
