/* map.c — associative arrays in the region, and their iterators.
 *
 * A map is a fixed array of entries (capacity from the spec or MAXMAPENTRIES),
 * a hash table of chains, a doubly-linked list in insertion order and a free
 * list of deleted entries; every link is an entry number (1-based, 0 = none),
 * never a pointer, because the region maps at different addresses in different
 * processes.  Entries never used yet are handed out by a counter, so creating
 * a map does not touch all its memory.
 *
 * Like SystemTap: re-setting an existing key keeps its position; a full map is
 * an error unless it wraps (global a%[N]), then the oldest entry is replaced.
 * Mutations take a per-map spinlock (the translator's global locks order whole
 * handlers; this one only keeps concurrent `a[k] <<< v` under a read lock
 * safe).  Lookups do not lock.
 *
 * Iterators snapshot entry numbers and sort them with a stable merge sort
 * (ties keep insertion order, ascending and descending alike, as SystemTap's
 * _stp_map_sort: it only moves an element ahead of an earlier one when the
 * comparison is strict).
 */
#include "rt_internal.h"

#include <stdlib.h>

/* Generated code takes the global's rwlock around every map operation
 * (write lock for any change), so a map needs no lock of its own; two
 * atomic operations per update were a third of an update's cost.  Build
 * with -DUTR_MAP_SELF_LOCKING for maps used outside that discipline. */
#ifdef UTR_MAP_SELF_LOCKING
#define _MAP_LOCK(m) _utr_spin_lock(&(m)->lock)
#define _MAP_UNLOCK(m) _utr_spin_unlock(&(m)->lock)
#else
#define _MAP_LOCK(m) ((void)(m))
#define _MAP_UNLOCK(m) ((void)(m))
#endif

typedef struct _utr_ent {
    int32_t prev, next;   /* insertion order */
    int32_t hnext;        /* hash chain */
    uint32_t hash;
} _utr_ent;

typedef struct _utr_map {
    int32_t nkeys;
    uint8_t ktype[9];
    uint8_t vtype;
    uint8_t wrap;
    uint8_t pad0;
    int32_t capacity, user_size;
    int32_t nhash;        /* power of two */
    int32_t num;
    int32_t head, tail;   /* oldest, newest */
    int32_t free_head;    /* chain through hnext */
    int32_t next_unused;  /* entries [0, next_unused) have been used */
    int32_t lock;
    uint32_t entry_size;
    uint32_t key_off[9];
    uint32_t val_off;
    _utr_hist hist;
    uint64_t hash_off;    /* from the map header */
    uint64_t ent_off;
    char overflow_msg[64];
} _utr_map;

static const char _utr_overflow_default[] = "Array overflow, check MAXMAPENTRIES";

static void _utr_map_layout(const utr_map_spec *spec, _utr_map *m, const _utr_hist *h)
{
    uint32_t off = sizeof(_utr_ent);
    int i;
    for (i = 0; i < spec->nkeys && i < 9; i++) {
        m->key_off[i] = off;
        off += spec->ktype[i] == UTR_T_STRING ? MAXSTRINGLEN : 8;
        off = (off + 7u) & ~7u;
    }
    m->val_off = off;
    if (spec->vtype == UTR_T_STRING)
        off += MAXSTRINGLEN;
    else if (spec->vtype == UTR_T_STATS)
        off += sizeof(_utr_sd) + 8u * (uint32_t)h->buckets;
    else
        off += 8;
    m->entry_size = (off + 7u) & ~7u;
}

static int _utr_map_params(const utr_map_spec *spec, _utr_map *m, _utr_hist *h)
{
    int32_t cap = spec->capacity > 0 ? spec->capacity : MAXMAPENTRIES, nh = 16;
    memset(h, 0, sizeof(*h));
    if (spec->nkeys < 1 || spec->nkeys > 9)
        return -1;
    if (spec->vtype == UTR_T_STATS &&
        _utr_hist_init(h, spec->hist_type, spec->hist_start, spec->hist_stop,
                       spec->hist_interval, spec->bit_shift) < 0)
        return -1;
    h->welford = spec->want_variance;
    while (nh < 2 * cap && nh < (1 << 30))
        nh <<= 1;
    memset(m, 0, sizeof(*m));
    m->capacity = cap;
    m->nhash = nh;
    _utr_map_layout(spec, m, h);
    m->hash_off = _UTR_ALIGN64(sizeof(_utr_map));
    m->ent_off = m->hash_off + _UTR_ALIGN64(4ull * (uint64_t)nh);
    return 0;
}

uint64_t utr_map_size(const utr_map_spec *spec)
{
    _utr_map m;
    _utr_hist h;
    if (_utr_map_params(spec, &m, &h) < 0)
        return 0;
    return m.ent_off + (uint64_t)m.entry_size * (uint64_t)m.capacity + 64;
}

uint64_t utr_map_new(const utr_map_spec *spec)
{
    _utr_map tmp, *m;
    _utr_hist h;
    uint64_t off;
    int i;
    if (_utr_map_params(spec, &tmp, &h) < 0)
        return 0;
    off = utr_region_alloc(tmp.ent_off + (uint64_t)tmp.entry_size * (uint64_t)tmp.capacity);
    if (!off)
        return 0;
    m = UTR_AT(_utr_map, off);
    *m = tmp;
    m->nkeys = spec->nkeys;
    for (i = 0; i < 9; i++)
        m->ktype[i] = spec->ktype[i];
    m->vtype = spec->vtype;
    m->wrap = spec->wrap;
    m->user_size = spec->user_size;
    m->hist = h;
    if (spec->user_size > 0) {
        char num[24];
        size_t n = sizeof("Array overflow, check size limit (") - 1;
        memcpy(m->overflow_msg, "Array overflow, check size limit (", n);
        utr_ltoa(num, spec->user_size);
        memcpy(m->overflow_msg + n, num, strlen(num));
        n += strlen(num);
        m->overflow_msg[n++] = ')';
        m->overflow_msg[n] = 0;
    } else {
        memcpy(m->overflow_msg, _utr_overflow_default, sizeof(_utr_overflow_default));
    }
    return off;
}

/* ---- entry access ---- */

static inline _utr_map *_M(uint64_t map) { return UTR_AT(_utr_map, map); }
static inline int32_t *_H(_utr_map *m) { return (int32_t *)((char *)m + m->hash_off); }
static inline _utr_ent *_E(_utr_map *m, int32_t n) /* 1-based */
{
    return (_utr_ent *)((char *)m + m->ent_off + (uint64_t)(n - 1) * m->entry_size);
}
static inline char *_K(_utr_map *m, _utr_ent *e, int k) { return (char *)e + m->key_off[k]; }
static inline char *_V(_utr_map *m, _utr_ent *e) { return (char *)e + m->val_off; }

static size_t _keylen(const char *s)
{
    return s ? strnlen(s, MAXSTRINGLEN - 1) : 0;
}

/* A 64-bit finaliser (multiply, xor-shift): integer keys are hashed in a few
 * instructions instead of one FNV round per byte. */
static inline uint64_t _utr_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static inline __attribute__((always_inline)) uint32_t _utr_hash(_utr_map *m, const utr_arg *key)
{
    uint64_t h = 1469598103934665603ull;
    int k;
    if (m->nkeys == 1 && m->ktype[0] != UTR_T_STRING) {
        h = _utr_mix((uint64_t)key[0].i);
        return (uint32_t)(h ^ (h >> 32));
    }
    for (k = 0; k < m->nkeys; k++) {
        if (m->ktype[k] == UTR_T_STRING) {
            const unsigned char *s = (const unsigned char *)(key[k].s ? key[k].s : "");
            size_t i, n = _keylen(key[k].s);
            for (i = 0; i < n; i++)
                h = (h ^ s[i]) * 1099511628211ull;
            h = (h ^ 0xffu) * 1099511628211ull;
        } else {
            h = _utr_mix(h ^ (uint64_t)key[k].i) + 0x9e3779b97f4a7c15ull;
        }
    }
    h = _utr_mix(h);
    return (uint32_t)(h ^ (h >> 32));
}

static inline __attribute__((always_inline)) int _utr_key_eq(_utr_map *m, _utr_ent *e, const utr_arg *key)
{
    int k;
    for (k = 0; k < m->nkeys; k++) {
        if (m->ktype[k] == UTR_T_STRING) {
            if (strncmp(_K(m, e, k), key[k].s ? key[k].s : "", MAXSTRINGLEN - 1) != 0)
                return 0;
        } else {
            int64_t v;
            memcpy(&v, _K(m, e, k), 8);
            if (v != key[k].i)
                return 0;
        }
    }
    return 1;
}

static inline __attribute__((always_inline)) int32_t _utr_find(_utr_map *m, const utr_arg *key, uint32_t hash)
{
    int32_t n = __atomic_load_n(&_H(m)[hash & (uint32_t)(m->nhash - 1)], __ATOMIC_ACQUIRE);
    while (n) {
        _utr_ent *e = _E(m, n);
        if (e->hash == hash && _utr_key_eq(m, e, key))
            return n;
        n = e->hnext;
    }
    return 0;
}

/* Unlink entry n from its hash chain and the order list (map locked). */
static void _utr_unlink(_utr_map *m, int32_t n)
{
    _utr_ent *e = _E(m, n);
    int32_t *pp = &_H(m)[e->hash & (uint32_t)(m->nhash - 1)];
    while (*pp && *pp != n)
        pp = &_E(m, *pp)->hnext;
    if (*pp == n)
        *pp = e->hnext;
    if (e->prev)
        _E(m, e->prev)->next = e->next;
    else
        m->head = e->next;
    if (e->next)
        _E(m, e->next)->prev = e->prev;
    else
        m->tail = e->prev;
    e->prev = e->next = e->hnext = 0;
}

/* Find or create the entry of key (map locked).  0 when full. */
static int32_t _utr_get_or_create(_utr_map *m, const utr_arg *key, int *created)
{
    uint32_t hash = _utr_hash(m, key);
    int32_t n = _utr_find(m, key, hash), *bucket;
    _utr_ent *e;
    int k;

    *created = 0;
    if (n)
        return n;
    if (m->num >= m->capacity) {
        if (!m->wrap || !m->head)
            return 0;
        n = m->head;               /* replace the oldest entry */
        _utr_unlink(m, n);
        m->num--;
    } else if (m->free_head) {
        n = m->free_head;
        m->free_head = _E(m, n)->hnext;
    } else if (m->next_unused < m->capacity) {
        n = ++m->next_unused;
    } else {
        return 0;
    }
    e = _E(m, n);
    e->hash = hash;
    for (k = 0; k < m->nkeys; k++) {
        char *dst = _K(m, e, k);
        if (m->ktype[k] == UTR_T_STRING) {
            size_t len = _keylen(key[k].s);
            if (len)
                memcpy(dst, key[k].s, len);
            dst[len] = 0;
        } else {
            memcpy(dst, &key[k].i, 8);
        }
    }
    if (m->vtype == UTR_T_STRING) {
        _V(m, e)[0] = 0;
    } else if (m->vtype == UTR_T_STATS) {
        memset(_V(m, e), 0, sizeof(_utr_sd) + 8u * (size_t)m->hist.buckets);
    } else {
        memset(_V(m, e), 0, 8);
    }
    /* append to the order list, then publish in the hash chain */
    e->next = 0;
    e->prev = m->tail;
    if (m->tail)
        _E(m, m->tail)->next = n;
    else
        m->head = n;
    m->tail = n;
    bucket = &_H(m)[hash & (uint32_t)(m->nhash - 1)];
    e->hnext = *bucket;
    __atomic_store_n(bucket, n, __ATOMIC_RELEASE);
    m->num++;
    *created = 1;
    return n;
}

/* ---- public operations ---- */

/* The commonest map, one integer key: the lookup without the general
 * per-column loops (hash, compare) or the offset tables. */
static inline __attribute__((always_inline)) int32_t _utr_find_long1(_utr_map *m, int64_t k)
{
    uint64_t h = _utr_mix((uint64_t)k);
    uint32_t hash = (uint32_t)(h ^ (h >> 32));
    int32_t n = __atomic_load_n(&_H(m)[hash & (uint32_t)(m->nhash - 1)], __ATOMIC_ACQUIRE);
    const char *base = (const char *)m + m->ent_off;
    uint32_t size = m->entry_size, koff = m->key_off[0];
    while (n) {
        const _utr_ent *e = (const _utr_ent *)(base + (uint64_t)(n - 1) * size);
        int64_t v;
        memcpy(&v, (const char *)e + koff, 8);
        if (v == k)
            return n;
        n = e->hnext;
    }
    return 0;
}

static inline int _utr_long1(const _utr_map *m)
{
    return m->nkeys == 1 && m->ktype[0] != UTR_T_STRING;
}

int64_t utr_map_get_long(uint64_t map, const utr_arg *key)
{
    _utr_map *m = _M(map);
    int32_t n = _utr_long1(m) ? _utr_find_long1(m, key[0].i) : _utr_find(m, key, _utr_hash(m, key));
    int64_t v = 0;
    if (n)
        memcpy(&v, _V(m, _E(m, n)), 8);
    return v;
}

const char *utr_map_get_str(uint64_t map, const utr_arg *key)
{
    _utr_map *m = _M(map);
    int32_t n = _utr_find(m, key, _utr_hash(m, key));
    return n ? _V(m, _E(m, n)) : "";
}

int utr_map_exists(uint64_t map, const utr_arg *key)
{
    _utr_map *m = _M(map);
    return _utr_find(m, key, _utr_hash(m, key)) != 0;
}

int utr_map_set_long(uint64_t map, const utr_arg *key, int64_t v, const char **err)
{
    _utr_map *m = _M(map);
    int created;
    int32_t n;
    _MAP_LOCK(m);
    n = _utr_long1(m) ? _utr_find_long1(m, key[0].i) : 0;
    if (!n)
        n = _utr_get_or_create(m, key, &created);
    if (n)
        memcpy(_V(m, _E(m, n)), &v, 8);
    _MAP_UNLOCK(m);
    if (!n) {
        if (err) *err = m->overflow_msg;
        return -1;
    }
    return 0;
}

int utr_map_set_str(uint64_t map, const utr_arg *key, const char *v, const char **err)
{
    _utr_map *m = _M(map);
    int created;
    int32_t n;
    _MAP_LOCK(m);
    n = _utr_get_or_create(m, key, &created);
    if (n)
        utr_strcpy(_V(m, _E(m, n)), v ? v : "");
    _MAP_UNLOCK(m);
    if (!n) {
        if (err) *err = m->overflow_msg;
        return -1;
    }
    return 0;
}

int utr_map_add_stat(uint64_t map, const utr_arg *key, int64_t v, const char **err)
{
    _utr_map *m = _M(map);
    int created;
    int32_t n;
    _MAP_LOCK(m);
    n = _utr_get_or_create(m, key, &created);
    if (n) {
        _utr_sd *sd = (_utr_sd *)_V(m, _E(m, n));
        _utr_sd_add(&m->hist, sd, (int64_t *)(sd + 1), v);
    }
    _MAP_UNLOCK(m);
    if (!n) {
        if (err) *err = m->overflow_msg;
        return -1;
    }
    return 0;
}

static void _utr_entry_stat(_utr_map *m, int32_t n, utr_stat_data *out)
{
    _utr_sd *sd = (_utr_sd *)_V(m, _E(m, n));
    _utr_sd_export(&m->hist, sd, (const int64_t *)(sd + 1), out);
}

int utr_map_get_stat(uint64_t map, const utr_arg *key, utr_stat_data *out)
{
    _utr_map *m = _M(map);
    int32_t n = _utr_find(m, key, _utr_hash(m, key));
    if (!n) {
        _utr_sd zero;
        static const int64_t nohist[130];
        memset(&zero, 0, sizeof(zero));
        _utr_sd_export(&m->hist, &zero, nohist, out);
        return 0;
    }
    _MAP_LOCK(m);
    _utr_entry_stat(m, n, out);
    _MAP_UNLOCK(m);
    return 1;
}

void utr_map_delete(uint64_t map, const utr_arg *key)
{
    _utr_map *m = _M(map);
    int32_t n;
    _MAP_LOCK(m);
    n = _utr_find(m, key, _utr_hash(m, key));
    if (n) {
        _utr_unlink(m, n);
        _E(m, n)->hnext = m->free_head;
        m->free_head = n;
        m->num--;
    }
    _MAP_UNLOCK(m);
}

void utr_map_clear(uint64_t map)
{
    _utr_map *m = _M(map);
    _MAP_LOCK(m);
    memset(_H(m), 0, 4u * (size_t)m->nhash);
    m->head = m->tail = m->free_head = 0;
    m->next_unused = 0;
    m->num = 0;
    _MAP_UNLOCK(m);
}

int64_t utr_map_count(uint64_t map)
{
    return __atomic_load_n(&_M(map)->num, __ATOMIC_RELAXED);
}

/* ---- iteration ---- */

typedef struct _utr_sortkey {
    int64_t v;
    const char *s;
} _utr_sortkey;

/* 1 when element a must come after element b (strictly). */
static inline int _utr_after(const _utr_sortkey *a, const _utr_sortkey *b, int is_str, int dir)
{
    int64_t x, y;
    if (is_str) {
        x = strcmp(a->s, b->s);
        y = 0;
    } else {
        x = a->v;
        y = b->v;
    }
    return dir >= 0 ? x > y : x < y;
}

static void _utr_merge_sort(int32_t *idx, int32_t *tmp, int64_t n, const _utr_sortkey *keys,
                            int is_str, int dir)
{
    int64_t width, i;
    int32_t *src = idx, *dst = tmp;
    for (width = 1; width < n; width *= 2) {
        for (i = 0; i < n; i += 2 * width) {
            int64_t lo = i, mid = i + width < n ? i + width : n;
            int64_t hi = i + 2 * width < n ? i + 2 * width : n;
            int64_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi) {
                if (_utr_after(&keys[src[a]], &keys[src[b]], is_str, dir))
                    dst[k++] = src[b++];
                else
                    dst[k++] = src[a++];
            }
            while (a < mid)
                dst[k++] = src[a++];
            while (b < hi)
                dst[k++] = src[b++];
        }
        {
            int32_t *t = src;
            src = dst;
            dst = t;
        }
    }
    if (src != idx)
        memcpy(idx, src, sizeof(int32_t) * (size_t)n);
}

void utr_iter_init(utr_iter *it, uint64_t map, int sort_col, int sort_dir, int sort_agg, int64_t limit)
{
    _utr_map *m = _M(map);
    int32_t n, cnt = 0;
    int32_t *ents;

    memset(it, 0, sizeof(*it));
    it->map = map;
    it->pos = -1;
    if (m->num <= 0)
        return;
    ents = (int32_t *)malloc(sizeof(int32_t) * (size_t)m->num);
    if (!ents)
        return;
    for (n = m->head; n && cnt < m->num; n = _E(m, n)->next)
        ents[cnt++] = n;
    it->order = ents;
    it->order_cap = m->num;
    it->n = cnt;

    if (sort_col != 0 && cnt > 1) {
        _utr_sortkey *keys = (_utr_sortkey *)malloc(sizeof(_utr_sortkey) * (size_t)cnt);
        int32_t *pos = (int32_t *)malloc(sizeof(int32_t) * (size_t)cnt * 2);
        int is_str = 0, i;
        if (keys && pos) {
            for (i = 0; i < cnt; i++) {
                _utr_ent *e = _E(m, ents[i]);
                keys[i].s = NULL;
                keys[i].v = 0;
                if (sort_col > 0 && sort_col <= m->nkeys) {
                    if (m->ktype[sort_col - 1] == UTR_T_STRING) {
                        is_str = 1;
                        keys[i].s = _K(m, e, sort_col - 1);
                    } else {
                        memcpy(&keys[i].v, _K(m, e, sort_col - 1), 8);
                    }
                } else if (m->vtype == UTR_T_STRING) {
                    is_str = 1;
                    keys[i].s = _V(m, e);
                } else if (m->vtype == UTR_T_STATS) {
                    const _utr_sd *sd = (const _utr_sd *)_V(m, e);
                    switch (sort_agg) {
                    case 1: keys[i].v = sd->sum; break;
                    case 2: keys[i].v = sd->min; break;
                    case 3: keys[i].v = sd->max; break;
                    case 4: keys[i].v = _utr_div64(sd->sum, sd->count); break;
                    default: keys[i].v = sd->count; break;
                    }
                } else {
                    memcpy(&keys[i].v, _V(m, e), 8);
                }
                pos[i] = i;
            }
            _utr_merge_sort(pos, pos + cnt, cnt, keys, is_str, sort_dir);
            for (i = 0; i < cnt; i++)
                pos[cnt + i] = ents[pos[i]];
            memcpy(ents, pos + cnt, sizeof(int32_t) * (size_t)cnt);
        }
        free(keys);
        free(pos);
    }
    if (limit >= 0 && limit < it->n)
        it->n = limit;
}

int utr_iter_next(utr_iter *it)
{
    if (it->pos + 1 >= it->n) {
        it->pos = it->n;
        return 0;
    }
    it->pos++;
    return 1;
}

void utr_iter_done(utr_iter *it)
{
    free(it->order);
    it->order = NULL;
    it->n = 0;
    it->order_cap = 0;
}

static _utr_ent *_utr_iter_ent(utr_iter *it)
{
    return _E(_M(it->map), it->order[it->pos]);
}

int64_t utr_iter_key_long(utr_iter *it, int k)
{
    int64_t v;
    memcpy(&v, _K(_M(it->map), _utr_iter_ent(it), k), 8);
    return v;
}

const char *utr_iter_key_str(utr_iter *it, int k)
{
    return _K(_M(it->map), _utr_iter_ent(it), k);
}

int64_t utr_iter_val_long(utr_iter *it)
{
    int64_t v;
    memcpy(&v, _V(_M(it->map), _utr_iter_ent(it)), 8);
    return v;
}

const char *utr_iter_val_str(utr_iter *it)
{
    return _V(_M(it->map), _utr_iter_ent(it));
}

void utr_iter_val_stat(utr_iter *it, utr_stat_data *out)
{
    _utr_map *m = _M(it->map);
    _MAP_LOCK(m);
    _utr_entry_stat(m, it->order[it->pos], out);
    _MAP_UNLOCK(m);
}
