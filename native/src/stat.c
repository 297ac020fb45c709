/* stat.c — statistics aggregates: SystemTap's integer Welford accumulation,
 * per-slot scalar aggregates merged like _stp_stat_get, histogram buckets and
 * the exact histogram text layout.
 *
 * Integer quirks kept on purpose (they decide the printed numbers):
 *  - the Welford `delta` is a 32-bit int (values are truncated to 32 bits);
 *  - avg_s/variance_s use truncating division (_stp_div64: /0 = 0, /-1 = -x);
 *  - a scalar read merges the slots with the "total variance" formula using the
 *    exact mean (sum << shift) / count, so samples 1..5 give @variance 12;
 *  - a map entry is one accumulation slot, read like SystemTap's pmap
 *    aggregation of a key present on one CPU only: its Welford avg_s and
 *    variance_s are copied (samples 1..5 give @variance 7).
 */
#define _GNU_SOURCE
#include "rt_internal.h"

#include <sched.h>

int _utr_hist_init(_utr_hist *h, int hist_type, int64_t start, int64_t stop,
                   int64_t interval, int32_t bit_shift)
{
    memset(h, 0, sizeof(*h));
    h->type = hist_type;
    h->bit_shift = bit_shift;
    if (hist_type == UTR_HIST_LOG) {
        h->buckets = UTR_HIST_LOG_BUCKETS;
    } else if (hist_type == UTR_HIST_LINEAR) {
        int64_t b;
        if (interval <= 0 || stop <= start)
            return -1;
        b = (stop - start) / interval + 3;
        if (b < 3 || b > STP_MAX_BUCKETS)
            return -1;
        h->buckets = (int32_t)b;
        h->start = start;
        h->stop = stop;
        h->interval = interval;
    } else {
        h->type = UTR_HIST_NONE;
    }
    return 0;
}

/* _stp_val_to_bucket: bucket 64 is 0, 64 + bit length for positives, mirrored
 * below 64 for negatives. */
static int _utr_log_bucket(int64_t val)
{
    uint64_t v;
    int bits;
    if (val == 0)
        return UTR_HIST_LOG_BUCKET0;
    v = val < 0 ? 0 - (uint64_t)val : (uint64_t)val;
    bits = 64 - __builtin_clzll(v);
    if (val < 0)
        return UTR_HIST_LOG_BUCKETS - (UTR_HIST_LOG_BUCKET0 + bits);
    return UTR_HIST_LOG_BUCKET0 + bits;
}

/* _stp_bucket_to_val */
static int64_t _utr_log_bucket_val(int num)
{
    if (num == UTR_HIST_LOG_BUCKET0)
        return 0;
    if (num < UTR_HIST_LOG_BUCKET0)
        return INT64_MIN >> num;
    return (int64_t)(1ull << (num - UTR_HIST_LOG_BUCKET0 - 1));
}

static int64_t _utr_sd_variance_s(const _utr_sd *sd)
{
    return sd->count < 2 ? 0 : _utr_div64(sd->m2, sd->count - 1);
}

void _utr_sd_add(const _utr_hist *h, _utr_sd *sd, int64_t *hist, int64_t val)
{
    sd->shift = h->bit_shift;
    if (sd->count == 0) {
        sd->count = 1;
        sd->sum = sd->min = sd->max = val;
        sd->avg_s = _utr_shl(val, sd->shift);
        sd->m2 = 0;
    } else {
        int32_t delta;
        int64_t vs = _utr_shl(val, sd->shift);
        sd->count++;
        sd->sum = _utr_add(sd->sum, val);
        if (val > sd->max)
            sd->max = val;
        if (val < sd->min)
            sd->min = val;
        if (h->welford) {
            delta = (int32_t)(uint32_t)(uint64_t)_utr_sub(vs, sd->avg_s);
            sd->avg_s = _utr_add(sd->avg_s, _utr_div64(delta, sd->count));
            sd->m2 = _utr_add(sd->m2, _utr_mul(delta, _utr_sub(vs, sd->avg_s)));
        }
        /* variance_s = m2 / (count - 1) is derived when read (_utr_sd_variance_s):
         * the same value stat-common.c stores, without a division per sample. */
    }

    if (h->type == UTR_HIST_LOG) {
        int n = _utr_log_bucket(val);
        if (n >= h->buckets)
            n = h->buckets - 1;
        hist[n]++;
    } else if (h->type == UTR_HIST_LINEAR) {
        int64_t b = _utr_sub(val, h->start);
        if (b < 0)
            b = 0;
        else
            b = (int64_t)((uint64_t)b / (uint64_t)h->interval) + 1;
        if (b >= h->buckets - 1)
            b = h->buckets - 1;
        hist[b]++;
    }
}

void _utr_sd_clear(const _utr_hist *h, _utr_sd *sd, int64_t *hist)
{
    sd->count = sd->sum = sd->min = sd->max = 0;
    sd->avg_s = sd->variance = sd->variance_s = 0;
    if (h->type != UTR_HIST_NONE)
        memset(hist, 0, sizeof(int64_t) * (size_t)h->buckets);
}

static void _utr_export_hist(const _utr_hist *h, utr_stat_data *out)
{
    out->hist_type = h->type;
    out->hist_start = h->start;
    out->hist_stop = h->stop;
    out->hist_interval = h->interval;
    out->buckets = h->buckets > 130 ? 130 : h->buckets;
}

void _utr_sd_export(const _utr_hist *h, const _utr_sd *sd, const int64_t *hist,
                    utr_stat_data *out)
{
    memset(out, 0, offsetof(utr_stat_data, histogram));
    _utr_export_hist(h, out);
    if (sd->count > 0) {
        out->count = sd->count;
        out->sum = sd->sum;
        out->min = sd->min;
        out->max = sd->max;
        out->shift = sd->shift;
        out->avg_s = sd->avg_s;
        out->m2 = sd->m2;
        out->variance_s = _utr_sd_variance_s(sd);
        out->variance = out->variance_s >> ((2 * sd->shift) & 63);
    }
    if (out->buckets)
        memcpy(out->histogram, hist, sizeof(int64_t) * (size_t)out->buckets);
}

/* ---- scalar aggregates ---- */

typedef struct _utr_stat {
    _utr_hist hist;
    uint64_t slot_size;
    uint64_t pad[3];
    /* UTR_STAT_SLOTS slots follow, each slot_size bytes, 64-byte aligned */
} _utr_stat;

typedef struct _utr_slot {
    int32_t lock;
    int32_t pad;
    _utr_sd sd;
    int64_t hist[];
} _utr_slot;

static uint64_t _utr_slot_size(int buckets)
{
    return _UTR_ALIGN64(sizeof(_utr_slot) + sizeof(int64_t) * (size_t)buckets);
}

uint64_t utr_stat_size(const utr_stat_spec *spec)
{
    _utr_hist h;
    if (_utr_hist_init(&h, spec->hist_type, spec->hist_start, spec->hist_stop,
                       spec->hist_interval, spec->bit_shift) < 0)
        return 0;
    return _UTR_ALIGN64(sizeof(_utr_stat)) + UTR_STAT_SLOTS * _utr_slot_size(h.buckets) + 64;
}

uint64_t utr_stat_new(const utr_stat_spec *spec)
{
    _utr_hist h;
    uint64_t off;
    _utr_stat *s;
    if (_utr_hist_init(&h, spec->hist_type, spec->hist_start, spec->hist_stop,
                       spec->hist_interval, spec->bit_shift) < 0)
        return 0;
    h.welford = spec->want_variance;
    off = utr_region_alloc(_UTR_ALIGN64(sizeof(_utr_stat)) +
                           UTR_STAT_SLOTS * _utr_slot_size(h.buckets));
    if (!off)
        return 0;
    s = UTR_AT(_utr_stat, off);
    s->hist = h;
    s->slot_size = _utr_slot_size(h.buckets);
    return off;
}

static _utr_slot *_utr_stat_slot(_utr_stat *s, int i)
{
    return (_utr_slot *)((char *)s + _UTR_ALIGN64(sizeof(_utr_stat)) + (uint64_t)i * s->slot_size);
}

/* Each thread accumulates into one slot, picked round-robin on its first
 * sample: as cheap as a TLS read, and threads rarely share a slot's lock.
 * (sched_getcpu() per sample cost as much as the Welford update itself.) */
#ifdef __KERNEL__
/* In the module a hit runs with interrupts off on one CPU: the CPU's slot. */
static inline int _utr_my_slot(void)
{
    return (int)(raw_smp_processor_id() % UTR_STAT_SLOTS);
}
#else
static __thread int my_slot __attribute__((tls_model("initial-exec"))) = -1;
static int next_slot;

static inline int _utr_my_slot(void)
{
    if (UTR_UNLIKELY(my_slot < 0))
        my_slot = __atomic_fetch_add(&next_slot, 1, __ATOMIC_RELAXED) % UTR_STAT_SLOTS;
    return my_slot;
}
#endif

void utr_stat_add(uint64_t stat, int64_t v)
{
    _utr_stat *s = UTR_AT(_utr_stat, stat);
    _utr_slot *sl = _utr_stat_slot(s, _utr_my_slot());
    _utr_spin_lock(&sl->lock);
    _utr_sd_add(&s->hist, &sl->sd, sl->hist, v);
    _utr_spin_unlock(&sl->lock);
}

void utr_stat_get(uint64_t stat, utr_stat_data *out)
{
    _utr_stat *s = UTR_AT(_utr_stat, stat);
    int i, j;
    int64_t s1 = 0, s2 = 0;

    memset(out, 0, offsetof(utr_stat_data, histogram));
    _utr_export_hist(&s->hist, out);
    memset(out->histogram, 0, sizeof(out->histogram));

    for (i = 0; i < UTR_STAT_SLOTS; i++) {
        _utr_slot *sl = _utr_stat_slot(s, i);
        _utr_spin_lock(&sl->lock);
        if (sl->sd.count) {
            out->shift = sl->sd.shift;
            if (out->count == 0) {
                out->min = sl->sd.min;
                out->max = sl->sd.max;
            }
            out->count = _utr_add(out->count, sl->sd.count);
            out->sum = _utr_add(out->sum, sl->sd.sum);
            if (sl->sd.max > out->max)
                out->max = sl->sd.max;
            if (sl->sd.min < out->min)
                out->min = sl->sd.min;
            for (j = 0; j < out->buckets; j++)
                out->histogram[j] += sl->hist[j];
        }
        _utr_spin_unlock(&sl->lock);
    }

    out->avg_s = _utr_div64(_utr_shl(out->sum, out->shift), out->count);

    for (i = 0; i < UTR_STAT_SLOTS; i++) {
        _utr_slot *sl = _utr_stat_slot(s, i);
        _utr_spin_lock(&sl->lock);
        if (sl->sd.count) {
            int64_t d = _utr_sub(sl->sd.avg_s, out->avg_s);
            s1 = _utr_add(s1, _utr_mul(_utr_mul(sl->sd.count, d), d));
            s2 = _utr_add(s2, _utr_mul(sl->sd.count - 1, _utr_sd_variance_s(&sl->sd)));
            out->m2 = _utr_add(out->m2, sl->sd.m2);
        }
        _utr_spin_unlock(&sl->lock);
    }
    out->variance_s = _utr_div64(_utr_add(s1, s2), out->count - 1);
    out->variance = out->variance_s >> ((2 * out->shift) & 63);
}

void utr_stat_clear(uint64_t stat)
{
    _utr_stat *s = UTR_AT(_utr_stat, stat);
    int i;
    for (i = 0; i < UTR_STAT_SLOTS; i++) {
        _utr_slot *sl = _utr_stat_slot(s, i);
        _utr_spin_lock(&sl->lock);
        _utr_sd_clear(&s->hist, &sl->sd, sl->hist);
        _utr_spin_unlock(&sl->lock);
    }
}

int64_t utr_stat_avg(const utr_stat_data *d)
{
    return _utr_div64(d->sum, d->count);
}

int64_t utr_stat_variance(const utr_stat_data *d)
{
    return d->variance;
}

int64_t utr_hist_bucket(const utr_stat_data *d, int64_t i)
{
    if (d->hist_type == UTR_HIST_NONE || i < 0 || i >= d->buckets)
        return -1;
    return d->histogram[i];
}

/* ---- histogram text (_stp_stat_print_histogram_buf) ---- */

typedef struct _utr_tb {
    char *buf;
    size_t len, cap;   /* writes beyond cap are counted, not stored */
    utr_ctx *c;        /* when set, text goes to the hit's output instead */
} _utr_tb;

static void _tb_put(_utr_tb *t, const char *s, size_t n)
{
    if (t->c) {
        utr_print_n(t->c, s, (uint32_t)n);
        return;
    }
    if (t->len < t->cap) {
        size_t k = t->cap - t->len < n ? t->cap - t->len : n;
        memcpy(t->buf + t->len, s, k);
    }
    t->len += n;
}
static void _tb_rep(_utr_tb *t, char ch, int64_t n)
{
    while (n-- > 0)
        _tb_put(t, &ch, 1);
}
static void _tb_str(_utr_tb *t, const char *s) { _tb_put(t, s, strlen(s)); }
static void _tb_long(_utr_tb *t, int64_t v)
{
    char b[24];
    utr_ltoa(b, v);
    _tb_str(t, b);
}
/* printf("%*s", w, s) */
static void _tb_padded(_utr_tb *t, int64_t w, const char *s)
{
    _tb_rep(t, ' ', w - (int64_t)strlen(s));
    _tb_str(t, s);
}

static int _needed_space(int64_t v)
{
    int space = 0;
    uint64_t tmp;
    if (v == 0)
        return 1;
    if (v < 0) {
        space++;
        v = (int64_t)(0 - (uint64_t)v);
    }
    tmp = (uint64_t)v;
    while (tmp) {
        tmp /= 10;
        space++;
    }
    return space;
}

static void _utr_hist_text(_utr_tb *t, const utr_stat_data *d)
{
    int i, nb = d->buckets, low = -1, high = 0, over = 0, under = 0;
    int val_space, cnt_space, eliding = 0;
    int64_t valmax = 0, scale;
    const int64_t *hg = d->histogram;

    if ((d->hist_type != UTR_HIST_LOG && d->hist_type != UTR_HIST_LINEAR) || nb <= 0)
        return;

    for (i = 0; i < nb; i++) {
        if (hg[i] > 0 && low == -1)
            low = i;
        if (hg[i] > 0)
            high = i;
        if (hg[i] > valmax)
            valmax = hg[i];
    }
    if (low == -1)      /* no sample at all: callers report "empty aggregate" first */
        low = 0;

    for (i = 0; i < 2; i++) {
        if (d->hist_type == UTR_HIST_LOG) {
            if (low != UTR_HIST_LOG_BUCKET0 && low > 0)
                low--;
        } else if (low > 0) {
            low--;
        }
        if (high < nb - 1)
            high++;
    }
    if (d->hist_type == UTR_HIST_LINEAR) {
        if (low == 0 && hg[0] == 0)
            low++;
        if (high == nb - 1 && hg[high] == 0)
            high--;
        if (low == 0)
            under = 1;
        if (high == nb - 1)
            over = 1;
    }

    if (valmax <= HIST_WIDTH)
        scale = 1;
    else
        scale = valmax / HIST_WIDTH + (valmax % HIST_WIDTH ? 1 : 0);

    cnt_space = _needed_space(valmax);
    if (d->hist_type == UTR_HIST_LINEAR) {
        int a = _needed_space(d->hist_start) + under;
        int b = _needed_space(_utr_add(d->hist_start, _utr_mul(d->hist_interval, high))) + over;
        val_space = a > b ? a : b;
    } else {
        int a = _needed_space(_utr_log_bucket_val(high));
        int b = _needed_space(_utr_log_bucket_val(low));
        val_space = a > b ? a : b;
    }
    if (val_space < 5)
        val_space = 5;

    _tb_padded(t, val_space, "value");
    _tb_str(t, " |");
    _tb_rep(t, '-', HIST_WIDTH);
    _tb_str(t, " count\n");

    for (i = low; i <= high; i++) {
        const char *prefix = "";
        int64_t val, v;

        if ((long)HIST_ELISION >= 0) {
            int k, elide = 1;
            int max_elide = HIST_ELISION < nb ? HIST_ELISION : nb;
            int minb = low, maxb = high;
            if (i - max_elide > minb)
                minb = i - max_elide;
            if (i + max_elide < maxb)
                maxb = i + max_elide;
            for (k = minb; k <= maxb; k++)
                if (hg[k] != 0)
                    elide = 0;
            if (elide) {
                eliding = 1;
                continue;
            }
            if (eliding) {
                _tb_rep(t, ' ', val_space);
                _tb_str(t, " ~\n");
                eliding = 0;
            }
        }

        if (d->hist_type == UTR_HIST_LINEAR) {
            if (i == 0) {
                val = d->hist_start;
                prefix = "<";
            } else if (i == nb - 1) {
                val = _utr_add(d->hist_start, _utr_mul(i - 2, d->hist_interval));
                prefix = ">";
            } else {
                val = _utr_add(d->hist_start, _utr_mul(i - 1, d->hist_interval));
            }
        } else {
            val = _utr_log_bucket_val(i);
        }
        _tb_padded(t, val_space - _needed_space(val), prefix);
        _tb_long(t, val);
        _tb_str(t, " |");
        v = (int64_t)((uint64_t)hg[i] / (uint64_t)scale);
        _tb_rep(t, '@', v);
        {
            char num[24];
            utr_ltoa(num, hg[i]);
            _tb_padded(t, (int)(HIST_WIDTH - v + 1 + cnt_space), num);
        }
        _tb_str(t, "\n");
    }
    _tb_str(t, "\n");
}

void utr_print_hist(utr_ctx *c, const utr_stat_data *d)
{
    _utr_tb t = { NULL, 0, 0, c };
    _utr_hist_text(&t, d);
}

void utr_sprint_hist(char *dst, const utr_stat_data *d)
{
    _utr_tb t = { dst, 0, MAXSTRINGLEN - 1, NULL };
    _utr_hist_text(&t, d);
    dst[t.len < t.cap ? t.len : t.cap] = 0;
}
