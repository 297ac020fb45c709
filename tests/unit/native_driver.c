/* native_driver.c — command-line driver for the native runtime's unit tests
 * (tests/unit/test_native_runtime.py).  It stands in for the generated script
 * (stub utr_script_* / utr_call_probe) and exposes runtime operations as
 * subcommands whose output the tests compare byte for byte.
 *
 * Output of hits goes through the ring; `dump` writes every drained record as
 * its raw bytes (stdout records) or "<ERR>" + bytes (stderr records).
 */
#define _GNU_SOURCE
#include "utrace_rt.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t utr_script_region_size(void) { return 0; }
int utr_script_setup(void *base, uint64_t size, int creator)
{
    (void)base; (void)size; (void)creator;
    return 0;
}
int utr_call_probe(int32_t index) { (void)index; return 0; }

static char *drain_buf;
#define DRAIN_CAP (8u << 20)

static void dump(void)
{
    uint64_t n, off;
    while ((n = utr_drain(drain_buf, DRAIN_CAP)) > 0) {
        for (off = 0; off < n;) {
            const unsigned char *p = (const unsigned char *)drain_buf + off;
            uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24;
            if (p[4] == UTR_ERR)
                fwrite("<ERR>", 1, 5, stdout);
            fwrite(p + 5, 1, len, stdout);
            off += 5 + (uint64_t)len;
        }
    }
}

static void setup(uint64_t extra)
{
    uint64_t size = utr_runtime_region_size() + extra;
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED || utr_region_init(base, size, 1) != 0) {
        fprintf(stderr, "region setup failed\n");
        exit(2);
    }
    utr_set_state(UTR_ST_RUNNING);
    drain_buf = malloc(DRAIN_CAP);
}

#define ALL_STATES 0x1f

/* "i:123" -> int, "s:text" -> string, "x:1f" -> hex int, "a:NAME" -> address */
static char mem_ok[64] = "Hello\n\x01\xff";
static void parse_args(int argc, char **argv, utr_arg *out)
{
    int i;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == 's')
            out[i].s = a + 2;
        else if (a[0] == 'x')
            out[i].i = (int64_t)strtoull(a + 2, NULL, 16);
        else if (a[0] == 'a')
            out[i].i = strcmp(a + 2, "ok") == 0 ? (int64_t)(uintptr_t)mem_ok
                                               : (int64_t)strtoull(a + 2, NULL, 0);
        else if (a[0] == 'n')
            out[i].s = NULL;
        else
            out[i].i = strtoll(a + 2, NULL, 10);
    }
}

static int cmd_printf(int argc, char **argv)
{
    utr_arg args[1024];
    utr_ctx *c;
    parse_args(argc - 1, argv + 1, args);
    c = utr_ctx_enter(0, "begin", ALL_STATES);
    utr_printf(c, argv[0], args);
    utr_ctx_exit(c);
    dump();
    return 0;
}

static int cmd_sprintf(int argc, char **argv)
{
    utr_arg args[1024];
    char buf[MAXSTRINGLEN + 8];
    parse_args(argc - 1, argv + 1, args);
    memset(buf, 'Z', sizeof(buf));
    utr_sprintf(buf, argv[0], args);
    printf("%zu|", strlen(buf));
    fwrite(buf, 1, strlen(buf), stdout);
    printf("|%s", utr_last_fault() ? utr_last_fault() : "-");
    return 0;
}

static int cmd_vformat(int argc, char **argv)
{
    utr_arg args[1024];
    char buf[1024];
    size_t cap = (size_t)atoi(argv[0]), r;
    parse_args(argc - 2, argv + 2, args);
    r = utr_vformat(buf, cap, argv[1], args);
    printf("%zu|%s", r, buf);
    return 0;
}

static void print_stat(const utr_stat_data *d)
{
    printf("count=%lld sum=%lld min=%lld max=%lld avg=%lld variance=%lld\n",
           (long long)d->count, (long long)d->sum, (long long)d->min, (long long)d->max,
           (long long)utr_stat_avg(d), (long long)utr_stat_variance(d));
}

static void pin_cpu(void)
{
    cpu_set_t set;
    int cpu = sched_getcpu();
    CPU_ZERO(&set);
    CPU_SET(cpu < 0 ? 0 : cpu, &set);
    sched_setaffinity(0, sizeof(set), &set);
}

/* stat KIND(none|log|linear) start stop interval shift v... ; prints stats then histogram */
static int cmd_stat(int argc, char **argv, int as_map)
{
    utr_stat_spec ss;
    utr_map_spec ms;
    utr_stat_data d;
    uint64_t h;
    int i, kind = strcmp(argv[0], "log") == 0 ? UTR_HIST_LOG
                  : strcmp(argv[0], "linear") == 0 ? UTR_HIST_LINEAR : UTR_HIST_NONE;
    utr_arg key[1];
    utr_ctx *c;
    char sbuf[MAXSTRINGLEN];

    pin_cpu();   /* one accumulation slot, like one CPU in SystemTap */
    memset(&ss, 0, sizeof(ss));
    memset(&ms, 0, sizeof(ms));
    ss.hist_type = (uint8_t)kind;
    ss.hist_start = ms.hist_start = atoll(argv[1]);
    ss.hist_stop = ms.hist_stop = atoll(argv[2]);
    ss.hist_interval = ms.hist_interval = atoll(argv[3]);
    ss.bit_shift = ms.bit_shift = atoi(argv[4]);
    /* The driver prints @variance, so the aggregate keeps Welford's running mean. */
    ss.want_variance = ms.want_variance = 1;
    ms.nkeys = 1;
    ms.ktype[0] = UTR_T_LONG;
    ms.vtype = UTR_T_STATS;
    ms.hist_type = (uint8_t)kind;
    key[0].i = 7;
    h = as_map ? utr_map_new(&ms) : utr_stat_new(&ss);
    if (!h) {
        printf("invalid\n");
        return 0;
    }
    for (i = 5; i < argc; i++) {
        if (as_map)
            utr_map_add_stat(h, key, atoll(argv[i]), NULL);
        else
            utr_stat_add(h, atoll(argv[i]));
    }
    if (as_map)
        utr_map_get_stat(h, key, &d);
    else
        utr_stat_get(h, &d);
    print_stat(&d);
    printf("buckets=%d b0=%lld bN=%lld\n", d.buckets, (long long)utr_hist_bucket(&d, 0),
           (long long)utr_hist_bucket(&d, d.buckets));
    if (kind != UTR_HIST_NONE && d.count > 0) {
        fflush(stdout);
        c = utr_ctx_enter(0, "end", ALL_STATES);
        utr_print_hist(c, &d);
        utr_ctx_exit(c);
        dump();
        utr_sprint_hist(sbuf, &d);
        printf("<SPRINT %zu>", strlen(sbuf));
    }
    return 0;
}

/* map KTYPES(e.g. "LS") VTYPE(L|S|T) CAP WRAP USERSIZE op...
 * ops: set:k1,k2=v  add:k=v  del:k  get:k  has:k  count  clear  iter:col:dir:agg:limit */
static int split_key(const char *ktypes, char *text, utr_arg *key)
{
    int n = (int)strlen(ktypes), i;
    char *p = text;
    for (i = 0; i < n; i++) {
        char *comma = strchr(p, ',');
        if (comma) *comma = 0;
        if (ktypes[i] == 'S') key[i].s = p;
        else key[i].i = atoll(p);
        p = comma ? comma + 1 : p + strlen(p);
    }
    return n;
}

static void print_entry(utr_iter *it, const char *kt, char vt)
{
    int k, n = (int)strlen(kt);
    for (k = 0; k < n; k++) {
        if (k) putchar(',');
        if (kt[k] == 'S') printf("%s", utr_iter_key_str(it, k));
        else printf("%lld", (long long)utr_iter_key_long(it, k));
    }
    if (vt == 'S') {
        printf("=%s\n", utr_iter_val_str(it));
    } else if (vt == 'T') {
        utr_stat_data d;
        utr_iter_val_stat(it, &d);
        printf("=%lld/%lld/%lld/%lld\n", (long long)d.count, (long long)d.sum,
               (long long)d.min, (long long)d.max);
    } else {
        printf("=%lld\n", (long long)utr_iter_val_long(it));
    }
}

static int cmd_map(int argc, char **argv)
{
    utr_map_spec s;
    const char *kt = argv[0];
    char vt = argv[1][0];
    uint64_t m;
    int i, k;
    memset(&s, 0, sizeof(s));
    s.nkeys = (int32_t)strlen(kt);
    for (k = 0; k < s.nkeys; k++)
        s.ktype[k] = kt[k] == 'S' ? UTR_T_STRING : UTR_T_LONG;
    s.vtype = vt == 'S' ? UTR_T_STRING : vt == 'T' ? UTR_T_STATS : UTR_T_LONG;
    s.capacity = atoi(argv[2]);
    s.wrap = (uint8_t)atoi(argv[3]);
    s.user_size = atoi(argv[4]);
    m = utr_map_new(&s);
    if (!m) {
        printf("invalid\n");
        return 0;
    }
    for (i = 5; i < argc; i++) {
        char *op = argv[i], *arg = strchr(op, ':'), *val;
        utr_arg key[9];
        const char *err = NULL;
        int rc = 0;
        if (arg) *arg++ = 0;
        val = arg ? strchr(arg, '=') : NULL;
        if (val) *val++ = 0;
        if (strcmp(op, "set") == 0) {
            split_key(kt, arg, key);
            rc = vt == 'S' ? utr_map_set_str(m, key, val, &err)
                           : utr_map_set_long(m, key, atoll(val), &err);
        } else if (strcmp(op, "add") == 0) {
            split_key(kt, arg, key);
            rc = utr_map_add_stat(m, key, atoll(val), &err);
        } else if (strcmp(op, "del") == 0) {
            split_key(kt, arg, key);
            utr_map_delete(m, key);
        } else if (strcmp(op, "get") == 0) {
            split_key(kt, arg, key);
            if (vt == 'S') printf("get=%s\n", utr_map_get_str(m, key));
            else if (vt == 'T') {
                utr_stat_data d;
                int found = utr_map_get_stat(m, key, &d);
                printf("get=%d/%lld\n", found, (long long)d.count);
            } else printf("get=%lld\n", (long long)utr_map_get_long(m, key));
        } else if (strcmp(op, "has") == 0) {
            split_key(kt, arg, key);
            printf("has=%d\n", utr_map_exists(m, key));
        } else if (strcmp(op, "count") == 0) {
            printf("count=%lld\n", (long long)utr_map_count(m));
        } else if (strcmp(op, "clear") == 0) {
            utr_map_clear(m);
        } else if (strcmp(op, "iter") == 0) {
            utr_iter it;
            int col = atoi(strtok(arg, ":")), dir = atoi(strtok(NULL, ":"));
            int agg = atoi(strtok(NULL, ":"));
            long long limit = atoll(strtok(NULL, ":"));
            utr_iter_init(&it, m, col, dir, agg, limit);
            printf("[\n");
            while (utr_iter_next(&it))
                print_entry(&it, kt, vt);
            printf("]\n");
            utr_iter_done(&it);
        }
        if (rc)
            printf("error=%s\n", err);
    }
    return 0;
}

/* ---- ring ---- */

/* The ring lock held by a process that is gone (reaped, then a zombie) is taken
 * over by the next writer; one held by a live process makes the record dropped. */
static int cmd_ringsteal(void)
{
    static const char *kinds[] = {"reaped", "zombie", "alive"};
    int32_t *w = &UTR_HDR->ring_lock;
    int k;
    for (k = 0; k < 3; k++) {
        int go[2], kept = 0;
        int64_t dropped = utr_dropped_count();
        siginfo_t si;
        uint64_t n, off;
        pid_t pid;
        if (pipe(go) != 0)
            return 2;
        pid = fork();
        if (pid == 0) {
            char c;
            close(go[1]);
            if (k == 2 && read(go[0], &c, 1) < 0)
                _exit(3);
            _exit(0);
        }
        close(go[0]);
        if (k == 0)
            waitpid(pid, NULL, 0);
        else if (k == 1)
            waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT);  /* exited, not reaped */
        __atomic_store_n(w, (int32_t)pid, __ATOMIC_RELEASE);  /* it "holds" the lock */
        utr_emit_err("x\n", 2);
        n = utr_drain(drain_buf, DRAIN_CAP);
        for (off = 0; off < n; kept++)
            off += 5 + ((uint64_t)(unsigned char)drain_buf[off] |
                        (uint64_t)(unsigned char)drain_buf[off + 1] << 8);
        printf("%s kept=%d dropped=%lld unlocked=%d\n", kinds[k], kept,
               (long long)(utr_dropped_count() - dropped), __atomic_load_n(w, __ATOMIC_ACQUIRE) == 0);
        __atomic_store_n(w, 0, __ATOMIC_RELEASE);
        close(go[1]);
        if (k != 0)
            waitpid(pid, NULL, 0);
    }
    return 0;
}

static int cmd_ring(void)
{
    static char big[UTR_MAX_RECORD];
    int i, kept = 0, bad = 0;
    uint64_t n, off, total = 0;
    unsigned seed = 1;
    memset(big, 'r', sizeof(big));
    for (i = 0; i < 1000; i++)
        utr_emit_err(big, sizeof(big));
    printf("dropped=%lld\n", (long long)utr_dropped_count());
    n = utr_drain(drain_buf, DRAIN_CAP);
    for (off = 0; off < n; kept++) {
        const unsigned char *p = (const unsigned char *)drain_buf + off;
        uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                       (uint32_t)p[3] << 24;
        if (len != sizeof(big) || p[4] != UTR_ERR || p[5] != 'r' || p[4 + len] != 'r')
            bad++;
        off += 5 + (uint64_t)len;
    }
    printf("kept=%d bad=%d empty=%llu\n", kept, bad,
           (unsigned long long)utr_drain(drain_buf, DRAIN_CAP));
    /* many write/drain rounds crossing the wrap point; check every byte */
    for (i = 0; i < 3000; i++) {
        uint32_t len = (uint32_t)(rand_r(&seed) % 5000), j;
        char buf[5000];
        for (j = 0; j < len; j++)
            buf[j] = (char)(i + j);
        utr_emit_err(buf, len);
        if (i % 7 == 6 || i == 2999) {
            while ((n = utr_drain(drain_buf, 20000)) > 0) {
                for (off = 0; off < n;) {
                    const unsigned char *p = (const unsigned char *)drain_buf + off;
                    uint32_t l = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
                                 (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
                    total += l;
                    off += 5 + (uint64_t)l;
                }
            }
        }
    }
    seed = 1;
    {
        uint64_t expect = 0;
        for (i = 0; i < 3000; i++)
            expect += (uint32_t)(rand_r(&seed) % 5000);
        printf("roundtrip=%d dropped=%lld\n", total == expect, (long long)utr_dropped_count());
    }
    /* integrity across the wrap point: one record, checked byte for byte */
    {
        char buf[3000];
        int j, ok = 1;
        for (i = 0; i < 5000; i++) {
            for (j = 0; j < 3000; j++)
                buf[j] = (char)(i * 31 + j);
            utr_emit_err(buf, 3000);
            n = utr_drain(drain_buf, DRAIN_CAP);
            if (n != 3005)
                ok = 0;
            else
                for (j = 0; j < 3000; j++)
                    if (drain_buf[5 + j] != (char)(i * 31 + j))
                        ok = 0;
        }
        printf("wrapcheck=%d\n", ok);
    }
    return 0;
}

/* ---- threads ---- */

static uint64_t g_stat;
#define NTHREADS 4
#define NADDS 100000

static void *thread_main(void *arg)
{
    int t = (int)(intptr_t)arg, i;
    utr_ctx *c;
    for (i = 1; i <= NADDS; i++)
        utr_stat_add(g_stat, i);
    for (i = 0; i < 200; i++) {
        char line[32];
        c = utr_ctx_enter(0, "t", ALL_STATES);
        if (!c)
            continue;
        snprintf(line, sizeof(line), "T%d:%d\n", t, i);
        utr_print(c, line);
        utr_ctx_exit(c);
    }
    return NULL;
}

static int cmd_threads(void)
{
    utr_stat_spec s;
    utr_stat_data d;
    pthread_t th[NTHREADS];
    int i;
    memset(&s, 0, sizeof(s));
    s.hist_type = UTR_HIST_LOG;
    g_stat = utr_stat_new(&s);
    for (i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, thread_main, (void *)(intptr_t)i);
    for (i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    utr_stat_get(g_stat, &d);
    printf("count=%lld sum=%lld min=%lld max=%lld b65=%lld b81=%lld\n", (long long)d.count,
           (long long)d.sum, (long long)d.min, (long long)d.max,
           (long long)d.histogram[65], (long long)d.histogram[81]);
    fflush(stdout);
    dump();
    return 0;
}

/* ---- locks ---- */

static double now_ms(void)
{
    return (double)utr_time_ns(CLOCK_MONOTONIC) / 1e6;
}

static int cmd_lock(void)
{
    uint64_t off = utr_region_alloc(sizeof(utr_rwlock));
    utr_rwlock *l = UTR_AT(utr_rwlock, off);
    double t0, t1;
    int r;
    printf("r1=%d ", utr_read_lock(l));
    printf("r2=%d ", utr_read_lock(l));
    t0 = now_ms();
    r = utr_write_lock(l);
    t1 = now_ms();
    printf("w_while_read=%d waited=%d ", r, t1 - t0 >= MAXTRYLOCK * TRYLOCKDELAY / 1000.0);
    utr_read_unlock(l);
    utr_read_unlock(l);
    printf("w=%d ", utr_write_lock(l));
    t0 = now_ms();
    r = utr_read_lock(l);
    t1 = now_ms();
    printf("r_while_write=%d waited=%d ", r, t1 - t0 >= MAXTRYLOCK * TRYLOCKDELAY / 1000.0);
    printf("w2=%d ", utr_write_lock(l));
    utr_write_unlock(l);
    r = utr_read_lock(l);
    printf("r3=%d word=%d\n", r, l->word);
    return 0;
}

/* ---- contexts and errors ---- */

static int cmd_ctx(void)
{
    utr_ctx *c, *c2;
    char big[MAXSTRINGLEN * 2];
    int i;

    c = utr_ctx_enter(3, "begin", ALL_STATES);
    printf("enter=%d max=%lld idx=%d pp=%s cur=%d\n", c != NULL, (long long)c->actionremaining,
           c->probe_index, c->probe_point, utr_ctx_current() == c);
    c2 = utr_ctx_enter(4, "nested", ALL_STATES);
    printf("reentrant=%d skipped=%lld reent=%lld\n", c2 == NULL, (long long)utr_skipped_count(),
           (long long)utr_reentrant_count());
    utr_print(c, "out1\n");
    utr_warn(c, "careful");
    utr_print(c, "out2\n");
    utr_error(c, "division by 0", "operator '/' at t.stp:1:2");
    utr_error(c, "second", "ignored");
    utr_ctx_exit(c);
    dump();
    printf("errors=%lld state=%d cur=%d\n", (long long)utr_error_count(), utr_state(),
           utr_ctx_current() != NULL);

    /* not allowed in state ERROR: refused, not counted */
    c = utr_ctx_enter(0, "x", 1 << UTR_ST_RUNNING);
    printf("refused=%d skipped=%lld\n", c == NULL, (long long)utr_skipped_count());

    /* error(msg) copies and truncates; no statement */
    c = utr_ctx_enter(0, "x", ALL_STATES);
    memset(big, 'e', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    utr_error_str(c, big, NULL);
    printf("errlen=%zu\n", strlen(c->error_buf));
    utr_ctx_exit(c);
    dump();
    printf("\nerrors=%lld\n", (long long)utr_error_count());

    /* a hit printing more than the per-hit buffer: several records, nothing lost */
    c = utr_ctx_enter(0, "x", ALL_STATES);
    for (i = 0; i < 3000; i++) {
        char line[16];
        snprintf(line, sizeof(line), "%05d|", i);
        utr_print(c, line);
    }
    utr_print_long(c, INT64_MIN);
    utr_ctx_exit(c);
    {
        uint64_t n = utr_drain(drain_buf, DRAIN_CAP), off = 0;
        int recs = 0;
        size_t total = 0;
        while (off < n) {
            const unsigned char *p = (const unsigned char *)drain_buf + off;
            uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24;
            total += len;
            recs++;
            off += 5 + (uint64_t)len;
        }
        printf("records=%d total=%zu\n", recs, total);
    }
    utr_request_exit();
    printf("exit=%d ", utr_exit_requested());
    utr_request_abort();
    printf("abort=%d\n", utr_exit_requested());
    return 0;
}

static int cmd_str(void)
{
    char a[MAXSTRINGLEN], src[1000], n[32];
    memset(src, 'x', sizeof(src) - 1);
    src[sizeof(src) - 1] = 0;
    utr_strcpy(a, src);
    printf("cpy=%zu ", strlen(a));
    utr_strcpy(a, "abc");
    utr_strcat(a, "def");
    printf("cat=%s ", a);
    utr_strcat(a, src);
    printf("catlen=%zu ", strlen(a));
    utr_ltoa(n, INT64_MIN);
    printf("min=%s ", n);
    utr_ltoa(n, 0);
    printf("zero=%s ", n);
    utr_ltoa(n, -42);
    printf("neg=%s\n", n);
    return 0;
}

static int cmd_misc(void)
{
    const char *av[] = { "one", "two" };
    int i, ok = 1, seen[10] = { 0 };
    for (i = 0; i < 10000; i++) {
        int64_t r = utr_randint(10);
        if (r < 0 || r > 9) ok = 0;
        else seen[r]++;
    }
    for (i = 0; i < 10; i++)
        if (seen[i] < 800) ok = 0;
    utr_set_script_args(2, av);
    printf("rand=%d argc=%d argv1=%s argv5=[%s] time=%d\n", ok, utr_argc(), utr_argv(1),
           utr_argv(5), utr_time_ns(CLOCK_REALTIME) > 1600000000LL * 1000000000LL);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd;
    if (argc < 2)
        return 2;
    cmd = argv[1];
    setup(256u << 20);
    if (strcmp(cmd, "printf") == 0) return cmd_printf(argc - 2, argv + 2);
    if (strcmp(cmd, "printf12") == 0) {
        utr_ptr_compat_12 = 1;
        return cmd_printf(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "sprintf") == 0) return cmd_sprintf(argc - 2, argv + 2);
    if (strcmp(cmd, "vformat") == 0) return cmd_vformat(argc - 2, argv + 2);
    if (strcmp(cmd, "stat") == 0) return cmd_stat(argc - 2, argv + 2, 0);
    if (strcmp(cmd, "mapstat") == 0) return cmd_stat(argc - 2, argv + 2, 1);
    if (strcmp(cmd, "map") == 0) return cmd_map(argc - 2, argv + 2);
    if (strcmp(cmd, "ring") == 0) return cmd_ring();
    if (strcmp(cmd, "ringsteal") == 0) return cmd_ringsteal();
    if (strcmp(cmd, "threads") == 0) return cmd_threads();
    if (strcmp(cmd, "lock") == 0) return cmd_lock();
    if (strcmp(cmd, "ctx") == 0) return cmd_ctx();
    if (strcmp(cmd, "str") == 0) return cmd_str();
    if (strcmp(cmd, "misc") == 0) return cmd_misc();
    return 2;
}
