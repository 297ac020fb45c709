/* kmain.c — the module around a translated script: its region, its control and
 * output files in /proc, and the registration of its probes.
 *
 * /proc/NAME.ctl: write "start" (begin probes, then timers and kprobes) or
 * "stop" (unregister, then end or error probes); read the session's state and
 * counters as one line.  /proc/NAME.out: read drains the output ring in the
 * record format of utr_drain (u32 length, u8 stream, bytes).  The tracer (pass
 * 5, utrace_py/run/kmod.py) polls both.  Closing the control file without
 * "stop" (a killed tracer) unregisters every probe, so an orphaned module stays
 * quiet until it is removed. */
#include "rt_internal.h"
#include "utrace_kmod.h"

#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/hrtimer.h>
#include <linux/kprobes.h>
#include <linux/mutex.h>
#include <linux/random.h>
#include <linux/sort.h>

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("utrace script");

int _utr_kctx_init(void);
void _utr_kctx_free(void);
void _utr_kset_regs(struct pt_regs *regs, int ret);

struct utr_kp {
    const struct utr_kprobe_desc *d;
    struct hrtimer timer;
    struct kprobe kp;
    struct kretprobe krp;
    int armed;
};

static void *region;
static struct utr_kp *kps;
static DEFINE_MUTEX(ctl_lock);
static int started, stopped;
static char *drain_buf;
#define DRAIN_CAP (64u << 10)
static char ctl_name[80], out_name[80];
static struct proc_dir_entry *ctl_entry, *out_entry;

/* ---- probe families ---- */

static enum hrtimer_restart timer_fire(struct hrtimer *t)
{
    struct utr_kp *k = container_of(t, struct utr_kp, timer);
    int64_t ns = k->d->interval_ns;
    if (utr_state() != UTR_ST_RUNNING)
        return HRTIMER_NORESTART;
    _utr_kset_regs(NULL, 0);
    utr_call_probe(k->d->index);
    if (k->d->randomize_ns)
        ns += (int64_t)(get_random_u64() % (uint64_t)(2 * k->d->randomize_ns + 1)) -
              k->d->randomize_ns;
    hrtimer_forward_now(t, ns_to_ktime(ns > 1000 ? ns : 1000));
    return HRTIMER_RESTART;
}

static int kprobe_fire(struct kprobe *p, struct pt_regs *regs)
{
    struct utr_kp *k = container_of(p, struct utr_kp, kp);
    _utr_kset_regs(regs, 0);
    utr_call_probe(k->d->index);
    _utr_kset_regs(NULL, 0);
    return 0;
}

static int kretprobe_fire(struct kretprobe_instance *ri, struct pt_regs *regs)
{
    struct utr_kp *k = container_of(get_kretprobe(ri), struct utr_kp, krp);
    _utr_kset_regs(regs, 1);
    utr_call_probe(k->d->index);
    _utr_kset_regs(NULL, 0);
    return 0;
}

static void report(const char *fmt, const char *what, int err)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, fmt, what, err);
    _utr_ring_write(UTR_ERR, buf, (uint32_t)min_t(int, n, sizeof buf - 1));
}

static int arm_all(void)
{
    int i, rc;
    for (i = 0; i < utr_kprobe_ndescs; i++) {
        struct utr_kp *k = &kps[i];
        switch (k->d->kind) {
        case UTR_K_TIMER:
            hrtimer_init(&k->timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
            k->timer.function = timer_fire;
            hrtimer_start(&k->timer, ns_to_ktime(k->d->interval_ns), HRTIMER_MODE_REL);
            k->armed = 1;
            break;
        case UTR_K_KPROBE:
            k->kp.symbol_name = k->d->symbol;
            k->kp.pre_handler = kprobe_fire;
            rc = register_kprobe(&k->kp);
            if (rc) {
                report("ERROR: cannot probe kernel function '%s' (register_kprobe: %d)\n",
                       k->d->symbol, rc);
                return rc;
            }
            k->armed = 1;
            break;
        case UTR_K_KRETPROBE:
            k->krp.kp.symbol_name = k->d->symbol;
            k->krp.handler = kretprobe_fire;
            k->krp.maxactive = 64;
            rc = register_kretprobe(&k->krp);
            if (rc) {
                report("ERROR: cannot probe the return of kernel function '%s' "
                       "(register_kretprobe: %d)\n", k->d->symbol, rc);
                return rc;
            }
            k->armed = 1;
            break;
        }
    }
    return 0;
}

static void disarm_all(void)
{
    int i;
    for (i = 0; i < utr_kprobe_ndescs; i++) {
        struct utr_kp *k = &kps[i];
        if (!k->armed)
            continue;
        if (k->d->kind == UTR_K_TIMER)
            hrtimer_cancel(&k->timer);
        else if (k->d->kind == UTR_K_KPROBE)
            unregister_kprobe(&k->kp);
        else if (k->d->kind == UTR_K_KRETPROBE)
            unregister_kretprobe(&k->krp);
        k->armed = 0;
    }
}

static int by_order(const void *a, const void *b)
{
    const struct utr_kprobe_desc *x = *(const struct utr_kprobe_desc * const *)a;
    const struct utr_kprobe_desc *y = *(const struct utr_kprobe_desc * const *)b;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Runs every probe of one kind in begin(N)/end(N) order, as the user runtime's tracer. */
static void run_kind(int kind, int32_t state)
{
    const struct utr_kprobe_desc **v;
    int i, n = 0;
    v = kcalloc(utr_kprobe_ndescs + 1, sizeof(*v), GFP_KERNEL);
    if (!v)
        return;
    for (i = 0; i < utr_kprobe_ndescs; i++)
        if (utr_kprobe_descs[i].kind == kind)
            v[n++] = &utr_kprobe_descs[i];
    sort(v, n, sizeof(*v), by_order, NULL);
    for (i = 0; i < n; i++) {
        utr_set_state(state);
        _utr_kset_regs(NULL, 0);
        utr_call_probe(v[i]->index);
        if (kind == UTR_K_BEGIN && (utr_state() == UTR_ST_ERROR || utr_exit_requested()))
            break;
        if (kind == UTR_K_END && utr_state() == UTR_ST_ERROR)
            utr_set_state(UTR_ST_STOPPING);
    }
    kfree(v);
}

static void session_start(void)
{
    started = 1;
    run_kind(UTR_K_BEGIN, UTR_ST_STARTING);
    if (utr_state() == UTR_ST_ERROR || utr_exit_requested())
        return;
    utr_set_state(UTR_ST_RUNNING);
    if (arm_all()) {
        disarm_all();
        utr_set_state(UTR_ST_ERROR);
    }
}

static void session_stop(void)
{
    if (!started || stopped)
        return;
    stopped = 1;
    if (utr_state() != UTR_ST_ERROR)
        utr_set_state(UTR_ST_STOPPING);
    disarm_all();
    if (utr_exit_requested() == 2) {
        /* abort(): no end probes */
    } else if (utr_state() == UTR_ST_ERROR) {
        run_kind(UTR_K_ERROR, UTR_ST_ERROR);
    } else {
        run_kind(UTR_K_END, UTR_ST_STOPPING);
    }
    utr_set_state(UTR_ST_DONE);
}

/* ---- /proc files ---- */

static ssize_t ctl_write(struct file *f, const char __user *ubuf, size_t n, loff_t *pos)
{
    char cmd[16] = "";
    if (copy_from_user(cmd, ubuf, min(n, sizeof cmd - 1)))
        return -EFAULT;
    mutex_lock(&ctl_lock);
    if (strncmp(cmd, "start", 5) == 0 && !started)
        session_start();
    else if (strncmp(cmd, "stop", 4) == 0)
        session_stop();
    mutex_unlock(&ctl_lock);
    return n;
}

static ssize_t ctl_read(struct file *f, char __user *ubuf, size_t n, loff_t *pos)
{
    char buf[160];
    int len = snprintf(buf, sizeof buf, "%d %d %lld %lld %lld %lld\n", utr_state(),
                       utr_exit_requested(), utr_error_count(), utr_skipped_count(),
                       utr_dropped_count(), utr_reentrant_count());
    return simple_read_from_buffer(ubuf, n, pos, buf, len);
}

static int ctl_release(struct inode *i, struct file *f)
{
    mutex_lock(&ctl_lock);
    if (started && !stopped) {
        /* the tracer went away without stopping: no more hits, no end probes */
        stopped = 1;
        utr_set_state(UTR_ST_STOPPING);
        disarm_all();
        utr_set_state(UTR_ST_DONE);
    }
    mutex_unlock(&ctl_lock);
    return 0;
}

static ssize_t out_read(struct file *f, char __user *ubuf, size_t n, loff_t *pos)
{
    uint64_t got;
    ssize_t rc;
    mutex_lock(&ctl_lock);
    got = utr_drain(drain_buf, min_t(size_t, n, DRAIN_CAP));
    rc = copy_to_user(ubuf, drain_buf, got) ? -EFAULT : (ssize_t)got;
    mutex_unlock(&ctl_lock);
    return rc;
}

static const struct proc_ops ctl_ops = {
    .proc_write = ctl_write, .proc_read = ctl_read, .proc_release = ctl_release,
    .proc_lseek = noop_llseek,
};
static const struct proc_ops out_ops = { .proc_read = out_read, .proc_lseek = noop_llseek };

static void cleanup(void)
{
    if (ctl_entry)
        proc_remove(ctl_entry);
    if (out_entry)
        proc_remove(out_entry);
    disarm_all();
    kfree(kps);
    kfree(drain_buf);
    _utr_kctx_free();
    utr_base = NULL;
    vfree(region);
}

static int __init utr_init(void)
{
    uint64_t size = (utr_script_region_size() + 4095) & ~4095ull;
    int i, rc = -ENOMEM;
    region = vzalloc(size);
    kps = kcalloc(utr_kprobe_ndescs + 1, sizeof(*kps), GFP_KERNEL);
    drain_buf = kmalloc(DRAIN_CAP, GFP_KERNEL);
    if (!region || !kps || !drain_buf || _utr_kctx_init())
        goto fail;
    for (i = 0; i < utr_kprobe_ndescs; i++)
        kps[i].d = &utr_kprobe_descs[i];
    if (utr_script_setup(region, size, 1))
        goto fail;
    snprintf(ctl_name, sizeof ctl_name, "%s.ctl", utr_kmod_name);
    snprintf(out_name, sizeof out_name, "%s.out", utr_kmod_name);
    ctl_entry = proc_create(ctl_name, 0600, NULL, &ctl_ops);
    out_entry = proc_create(out_name, 0400, NULL, &out_ops);
    if (!ctl_entry || !out_entry)
        goto fail;
    return 0;
fail:
    cleanup();
    return rc;
}

static void __exit utr_exit(void)
{
    cleanup();
}

module_init(utr_init);
module_exit(utr_exit);
