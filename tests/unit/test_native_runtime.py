"""Unit tests of the native C runtime (native/src/*.c).

A small C driver (native_driver.c) is compiled together with the runtime with
-Wall -Wextra -Werror, then run with one subcommand per scenario.  Expected
outputs come from glibc's printf where SystemTap behaves like C, from small
independent Python re-implementations of SystemTap's algorithms (number(),
the histogram layout, the integer Welford variance) and from hand-checked
strings where SystemTap differs from C.
"""
import ctypes
import itertools
import os
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NATIVE = ROOT / "native"
DRIVER = Path(__file__).resolve().parent / "native_driver.c"
CFLAGS = ["-std=gnu11", "-O2", "-fPIC", "-Wall", "-Wextra", "-Werror"]

M64 = (1 << 64) - 1
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1



# --------------------------------------------------------------------------
# build and run


@pytest.fixture(scope="module")
def drv(tmp_path_factory):
    out = tmp_path_factory.mktemp("native") / "driver"
    srcs = sorted(str(p) for p in (NATIVE / "src").glob("*.c"))
    cmd = ["gcc", *CFLAGS, "-I", str(NATIVE / "include"), "-o", str(out), str(DRIVER), *srcs,
           "-lpthread"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stderr == "", res.stderr          # no warnings at all

    def run(*args, check=True):
        r = subprocess.run([str(out), *[str(a) for a in args]], capture_output=True, timeout=120)
        if check:
            assert r.returncode == 0, r.stderr
        return r.stdout
    return run


def test_each_source_compiles_alone_without_warnings(tmp_path):
    for src in sorted((NATIVE / "src").glob("*.c")):
        r = subprocess.run(["gcc", *CFLAGS, "-I", str(NATIVE / "include"), "-c", str(src),
                            "-o", str(tmp_path / (src.stem + ".o"))], capture_output=True, text=True)
        assert r.returncode == 0 and r.stderr == "", (src, r.stderr)


def iarg(v):
    return "i:%d" % v


# --------------------------------------------------------------------------
# reference models (independent re-implementations of SystemTap's algorithms)

ZEROPAD, SIGN, PLUS, SPACE, LEFT, SPECIAL, LARGE = 1, 2, 4, 8, 16, 32, 64


def ref_number(num, base, size, precision, flags):
    """SystemTap runtime/vsprintf.c number(), as a model."""
    num &= M64
    digits = "0123456789ABCDEF" if flags & LARGE else "0123456789abcdef"
    if flags & LEFT:
        flags &= ~ZEROPAD
    pad = "0" if flags & ZEROPAD else " "
    sign = ""
    if flags & SIGN:
        if num >> 63:
            sign, num, size = "-", (-num) & M64, size - 1
        elif flags & PLUS:
            sign, size = "+", size - 1
        elif flags & SPACE:
            sign, size = " ", size - 1
    if flags & SPECIAL:
        size -= 2 if base == 16 else 1 if base == 8 else 0
    tmp = ""
    while True:
        tmp = digits[num % base] + tmp
        num //= base
        if not num:
            break
    precision = max(precision, len(tmp))
    size -= precision
    out = ""
    if not flags & (ZEROPAD | LEFT):
        out += " " * max(size, 0)
        size = min(size, 0)
    out += sign
    if flags & SPECIAL:
        if base == 8:
            out += "0"
        elif base == 16:
            out += "0X" if flags & LARGE else "0x"
    if not flags & LEFT:
        out += pad * max(size, 0)
        size = min(size, 0)
    out += "0" * (precision - len(tmp)) + tmp
    out += " " * max(size, 0)
    return out


def ref_conv(flagch, width, prec, conv, value):
    flags = {"": 0, "-": LEFT, "+": PLUS, " ": SPACE, "#": SPECIAL, "0": ZEROPAD}[flagch]
    base = {"d": 10, "i": 10, "u": 10, "o": 8, "x": 16, "X": 16, "p": 16}[conv]
    if conv in "di":
        flags |= SIGN
    if conv == "X":
        flags |= LARGE
    if conv == "p":
        flags |= SPECIAL
    return ref_number(value, base, -1 if width == "" else int(width),
                      -1 if prec == "" else int(prec[1:]), flags)


def div64(x, y):
    if y == 0:
        return 0
    if y == -1:
        return wrap(-x)
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y >= 0) else -q


def wrap(x):
    return ((x + (1 << 63)) & M64) - (1 << 63)


def int32(x):
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def welford(values, shift):
    """One accumulation slot of stat-common.c (__stp_stat_add)."""
    sd = dict(count=0, sum=0, min=0, max=0, avg_s=0, m2=0, variance_s=0)
    for v in values:
        vs = wrap(v << shift)
        if sd["count"] == 0:
            sd.update(count=1, sum=v, min=v, max=v, avg_s=vs, m2=0)
            continue
        sd["count"] += 1
        sd["sum"] = wrap(sd["sum"] + v)
        sd["max"] = max(sd["max"], v)
        sd["min"] = min(sd["min"], v)
        delta = int32(vs - sd["avg_s"])
        sd["avg_s"] = wrap(sd["avg_s"] + div64(delta, sd["count"]))
        sd["m2"] = wrap(sd["m2"] + delta * (vs - sd["avg_s"]))
        sd["variance_s"] = div64(sd["m2"], sd["count"] - 1)
    return sd


def scalar_variance(values, shift):
    """stat.c _stp_stat_get with a single populated slot."""
    sd = welford(values, shift)
    avg = div64(wrap(sd["sum"] << shift), sd["count"])
    s1 = sd["count"] * (sd["avg_s"] - avg) ** 2 if sd["count"] else 0
    s2 = (sd["count"] - 1) * sd["variance_s"] if sd["count"] else 0
    return div64(wrap(s1 + s2), sd["count"] - 1) >> (2 * shift)


def map_variance(values, shift):
    """map.c _new_map_copy_stat of a key present on one CPU: copied."""
    return welford(values, shift)["variance_s"] >> (2 * shift)


def log_bucket(v):
    if v == 0:
        return 64
    n = 64 + abs(v).bit_length() if v != INT64_MIN else 128
    return n if v > 0 else 128 - n


def log_bucket_val(n):
    if n == 64:
        return 0
    if n < 64:
        return INT64_MIN >> n
    return 1 << (n - 65)


def ref_hist(values, kind, start=0, stop=0, interval=0):
    """_stp_stat_print_histogram_buf, as a model."""
    if kind == "log":
        nb = 128
        h = [0] * nb
        for v in values:
            h[min(log_bucket(v), nb - 1)] += 1
    else:
        nb = (stop - start) // interval + 3
        h = [0] * nb
        for v in values:
            b = 0 if v - start < 0 else (v - start) // interval + 1
            h[min(b, nb - 1)] += 1
    nz = [i for i, c in enumerate(h) if c > 0]
    low, high, vmax = nz[0], nz[-1], max(h)
    for _ in range(2):
        if kind == "log":
            if low != 64 and low > 0:
                low -= 1
        elif low > 0:
            low -= 1
        if high < nb - 1:
            high += 1
    under = over = 0
    if kind == "linear":
        if low == 0 and h[0] == 0:
            low += 1
        if high == nb - 1 and h[high] == 0:
            high -= 1
        under, over = int(low == 0), int(high == nb - 1)
    scale = 1 if vmax <= 50 else -(-vmax // 50)
    space = lambda v: len(str(v))
    cnt_space = space(vmax)
    if kind == "linear":
        val_space = max(space(start) + under, space(start + interval * high) + over)
    else:
        val_space = max(space(log_bucket_val(high)), space(log_bucket_val(low)))
    val_space = max(val_space, 5)
    out = "value".rjust(val_space) + " |" + "-" * 50 + " count\n"
    eliding = False
    for i in range(low, high + 1):
        lo, hi = max(low, i - 2), min(high, i + 2)
        if all(h[k] == 0 for k in range(lo, hi + 1)):
            eliding = True
            continue
        if eliding:
            out += " " * val_space + " ~\n"
            eliding = False
        prefix = ""
        if kind == "linear":
            if i == 0:
                val, prefix = start, "<"
            elif i == nb - 1:
                val, prefix = start + (i - 2) * interval, ">"
            else:
                val = start + (i - 1) * interval
        else:
            val = log_bucket_val(i)
        bar = h[i] // scale
        out += prefix.rjust(val_space - space(val)) + str(val) + " |" + "@" * bar
        out += str(h[i]).rjust(50 - bar + 1 + cnt_space) + "\n"
    return out + "\n"


# --------------------------------------------------------------------------
# printf


def libc_fmt(fmt, *vals):
    libc = ctypes.CDLL(None)
    buf = ctypes.create_string_buffer(256)
    args = [ctypes.c_longlong(v) if isinstance(v, int) else ctypes.c_char_p(v.encode()) for v in vals]
    libc.snprintf(buf, 256, fmt.encode(), *args)
    return buf.value.decode()


def test_printf_matches_glibc_where_stap_equals_c(drv):
    cases = [("%d", 42), ("%5d", 42), ("%-5d|", 42), ("%05d", -42), ("%+d", 5), ("% d", 5),
             ("%x", 255), ("%X", 255), ("%o", 8), ("%5.3d", 7), ("%-8x|", 48879),
             ("%d", INT64_MIN), ("%d", INT64_MAX), ("%+d", -3), ("%#x", 2), ("%#X", 3),
             ("%#o", 1), ("%.4x", 10), ("%10.4d", -12)]
    for fmt, v in cases:
        cfmt = fmt.replace("d", "lld").replace("x", "llx").replace("X", "llX").replace("o", "llo")
        assert drv("printf", fmt, iarg(v)).decode() == libc_fmt(cfmt, v), fmt
    assert drv("printf", "%u", iarg(-1)) == b"18446744073709551615"
    for fmt, s in [("%s", "hello"), ("%10s|", "hi"), ("%-10s|", "hi"), ("%.2s", "hello"),
                   ("%8.3s|", "abcdef"), ("%%|%s%%", "x")]:
        assert drv("printf", fmt, "s:" + s).decode() == libc_fmt(fmt, s), fmt
    assert drv("printf", "%c%c%3c|%-3c|", iarg(115), iarg(116), iarg(65), iarg(66)) == b"st  A|B  |"
    # %c prints the low byte of the int
    assert drv("printf", "%c", iarg(0x141)) == b"A"


@pytest.mark.parametrize("conv", "diuoxXp")
def test_printf_numbers_follow_stap_number(drv, conv):
    values = [0, 1, -1, 42, -42, 255, INT64_MIN, INT64_MAX]
    for flag in ["", "-", "+", " ", "#", "0"]:
        specs = [(w, p) for w in ["", "1", "8", "25"] for p in ["", ".0", ".3", ".20"]]
        fmt = "".join("%" + flag + w + p + conv + "|" for w, p in specs for _ in values)
        args = [iarg(v) for _ in specs for v in values]
        expect = "".join(ref_conv(flag, w, p, conv, v) + "|" for w, p in specs for v in values)
        assert drv("printf", fmt, *args).decode() == expect, (flag, conv)


def test_printf_stap_specific_numbers(drv):
    # hand-checked against number(): SPECIAL always prefixes, precision 0 still prints "0",
    # the zero flag pads with zeros even with a precision
    assert drv("printf", "%#x|%#o|%#X", iarg(0), iarg(0), iarg(0)) == b"0x0|00|0X0"
    assert drv("printf", "%#o|%#x|%#X", iarg(1), iarg(2), iarg(3)) == b"01|0x2|0X3"
    assert drv("printf", "%.0d|%.d|", iarg(0), iarg(0)) == b"0|0|"
    assert drv("printf", "%08.3d", iarg(5)) == b"00000005"
    # (SystemTap's pass 2 rejects a second flag, so "%#08x" is flag '#', width 8)
    assert drv("printf", "%#8x|%#08x|%-#x", iarg(255), iarg(255)) == b"    0xff|    0xff|%#x"
    # only one flag: "%+05d" is flag '+' with width 05
    assert drv("printf", "%+05d", iarg(7)) == b"   +7"
    assert drv("printf", "%-08d|", iarg(7)) == b"7       |"
    # '*' width/precision: int64 args, negative clamped to 0 (no left-justify)
    assert drv("printf", "%*d|%*d|%.*d|%.*d", iarg(6), iarg(42), iarg(-6), iarg(42),
               iarg(5), iarg(42), iarg(-1), iarg(0)) == b"    42|42|00042|0"
    assert drv("printf", "%*.*s|", iarg(6), iarg(2), "s:abcdef") == b"    ab|"
    assert drv("printf", "%ld|%li", iarg(-5), iarg(6)) == b"-5|6"
    assert drv("printf", "100%%") == b"100%"
    assert drv("printf", "x%") == b"x%"


def test_printf_pointer(drv):
    # SystemTap >= 1.3: %p is %#x (default) ...
    assert drv("printf", "%p|%p|%20p|%-20p|", iarg(0), iarg(0x1234), iarg(1), iarg(0x12)) == \
        b"0x0|0x1234|" + b" " * 17 + b"0x1|0x12" + b" " * 16 + b"|"
    assert drv("printf", "%.8p", iarg(1)) == b"0x00000001"
    # ... the pre-1.3 form (0x + 16 zero-padded digits, %-20p zero-pads to 18 digits)
    assert drv("printf12", "%p|%p", iarg(0x1234), iarg(-1)) == \
        b"0x0000000000001234|0xffffffffffffffff"
    assert drv("printf12", "%-20p|%20p|", iarg(0x12), iarg(1)) == \
        b"0x" + b"0" * 16 + b"12|  0x" + b"0" * 15 + b"1|"
    assert drv("printf12", "%8p|", iarg(1)) == b"0x000001|"


def test_printf_strings_and_chars(drv):
    assert drv("printf", "%s|", "n:") == b"<NULL>|"
    # '#' escapes %c, not %s
    assert drv("printf", "%#c%#c%#c%#c%#c%#c", iarg(10), iarg(1), iarg(255), iarg(39), iarg(92),
               iarg(65)) == b"\\n\\001\\377\\'\\\\A"
    assert drv("printf", "%#5c|%-5c|%#c", iarg(9), iarg(9), iarg(0x7f)) == b"   \\t|\t    |\\177"
    assert drv("printf", "%#s", "s:a\tb") == b"a\tb"
    # the zero flag of %s appends a NUL byte (SystemTap quirk)
    assert drv("printf", "%05s|", "s:ab") == b"   ab\x00|"
    assert drv("printf", "%c|", iarg(0)) == b"\x00|"


def test_printf_binary(drv):
    v = 0x0102030405060708
    assert drv("printf", "%b", iarg(v)) == struct.pack("<q", v)
    assert drv("printf", "%1b%2b%4b", iarg(0x42), iarg(0x4142), iarg(0x41424344)) == \
        b"\x42" + struct.pack("<h", 0x4142) + struct.pack("<i", 0x41424344)
    assert drv("printf", "%-12.4b|", iarg(-1)) == b"\xff" * 4 + b"\x00" * 8 + b"|"
    assert drv("printf", "%12.2b|", iarg(1)) == b"\x00" * 10 + b"\x01\x00|"
    assert drv("printf", "%5b", iarg(1)) == struct.pack("<q", 1)      # invalid size: 8


def test_printf_memory(drv):
    assert drv("printf", "%.5m|%m|%.3M|%M|%8.2M|%-6.2M|", "a:ok", "a:ok", "a:ok", "a:ok", "a:ok",
               "a:ok") == b"Hello|H|48656c|48|    4865|4865  |"
    assert drv("printf", "%.8M", "a:ok") == b"48656c6c6f0a01ff"
    # a bad address formats nothing and records the fault
    out = drv("sprintf", "x%.4my", "a:0x10").decode()
    assert out == "0||read fault [man error::fault] at 0x10"
    # printf: nothing printed, the hit ends with the fault as its error
    assert drv("printf", "before%.2mafter", "a:0x10") == \
        b"<ERR>ERROR: read fault [man error::fault] at 0x10\n"


def test_sprintf_truncation_and_clamping(drv):
    a, b = "a" * 300, "b" * 300
    out = drv("sprintf", "%s%s", "s:" + a, "s:" + b).decode()
    assert out == "511|" + a + "b" * 211 + "|-"
    # widths are clamped to the room left (512), so the digits show up
    assert drv("sprintf", "%600d", iarg(12345)).decode() == "511|" + " " * 507 + "1234|-"
    assert drv("sprintf", "%-600d", iarg(12345)).decode() == "511|12345" + " " * 506 + "|-"
    assert drv("sprintf", "%d:%s", iarg(-7), "s:x").decode() == "4|-7:x|-"
    # utr_vformat reports the untruncated length
    assert drv("vformat", 16, "%s!", "s:" + "q" * 40).decode() == "41|" + "q" * 15
    assert drv("vformat", 64, "[%5d]", iarg(3)).decode() == "7|[    3]"


def test_printf_is_capped_at_stp_buffer_size(drv):
    out = drv("printf", "%s" * 20, *["s:" + "z" * 500] * 20)
    assert out == b"z" * 8192


# --------------------------------------------------------------------------
# statistics


def parse_stats(line):
    return dict(kv.split("=") for kv in line.split())


def stat_lines(drv, kind, start, stop, interval, shift, values, cmd="stat"):
    out = drv(cmd, kind, start, stop, interval, shift, *values).decode()
    first, second, rest = out.split("\n", 2)
    return parse_stats(first), parse_stats(second), rest


def test_variance_exact_values(drv):
    # Hand computation, one slot, shift 0: the Welford avg_s stays 1 (integer
    # increments 1/2, 2/3, 3/4, 4/5 are 0), M2 = 1+4+9+16 = 30, variance_s =
    # 30/4 = 7; the merge uses the exact mean 3: S1 = 5*(1-3)^2 = 20,
    # S2 = 4*7 = 28, (20+28)/4 = 12.
    s, _, _ = stat_lines(drv, "none", 0, 0, 0, 0, [1, 2, 3, 4, 5])
    assert s == {"count": "5", "sum": "15", "min": "1", "max": "5", "avg": "3", "variance": "12"}
    # shift 1: values 2..10, avg_s 2,3,4,5,6, M2 = 2+6+12+20 = 40, variance_s = 10,
    # S1 = 0 -> 40/4 = 10, >> 2 = 2
    s, _, _ = stat_lines(drv, "none", 0, 0, 0, 1, [1, 2, 3, 4, 5])
    assert s["variance"] == "2"
    assert stat_lines(drv, "none", 0, 0, 0, 0, [9])[0]["variance"] == "0"
    assert stat_lines(drv, "none", 0, 0, 0, 0, [0, 0, 0])[0]["variance"] == "0"
    # map entries are read like one CPU's pmap entry: Welford values copied
    s, _, _ = stat_lines(drv, "none", 0, 0, 0, 0, [1, 2, 3, 4, 5], cmd="mapstat")
    assert s["variance"] == "7" and s["avg"] == "3"
    assert stat_lines(drv, "none", 0, 0, 0, 1, [1, 2, 3, 4, 5], cmd="mapstat")[0]["variance"] == "2"


@pytest.mark.parametrize("values,shift", [
    ([3, 7, 7, 19, 100, -4, 0, 55], 0),
    ([3, 7, 7, 19, 100, -4, 0, 55], 3),
    (list(range(0, 3000, 7)), 0),
    ([5000000000, -5000000000, 1, 2], 0),     # delta does not fit in 32 bits
    ([-10, -20, -30, 40], 2),
])
def test_variance_matches_model(drv, values, shift):
    s, _, _ = stat_lines(drv, "none", 0, 0, 0, shift, values)
    assert int(s["variance"]) == scalar_variance(values, shift)
    assert int(s["avg"]) == div64(sum(values), len(values))
    assert int(s["count"]) == len(values) and int(s["sum"]) == sum(values)
    m, _, _ = stat_lines(drv, "none", 0, 0, 0, shift, values, cmd="mapstat")
    assert int(m["variance"]) == map_variance(values, shift)


HIST_CASES = [
    ("log", 0, 0, 0, [1, 2, 3, 4, 5, 100, -3]),
    ("log", 0, 0, 0, [0]),
    ("log", 0, 0, 0, [-2, -4096]),                         # negatives, elision
    ("log", 0, 0, 0, [1 << 40, 7, 7, 7]),
    ("log", 0, 0, 0, [INT64_MIN, INT64_MAX, 0]),
    ("log", 0, 0, 0, [1] * 120 + [2] * 7),                 # scale 3
    ("linear", 0, 100, 10, [5, 15, 15, 95, 105, 120, -1]),  # <0 and >100 rows
    ("linear", 0, 100, 10, [50]),
    ("linear", 0, 1500, 50, [444, 999]),
    ("linear", -100, 100, 10, [-10]),
    ("linear", 250, 1000, 50, [k * m for k in range(100) for m in (1, 2, 3, 7, 12, 15)]),
    ("linear", -1000, 0, 100, [-5000, -300, -300, 0, 3]),
]


@pytest.mark.parametrize("kind,start,stop,interval,values", HIST_CASES)
def test_histogram_layout(drv, kind, start, stop, interval, values):
    _, b, text = stat_lines(drv, kind, start, stop, interval, 0, values)
    hist, sprint = text.split("<SPRINT ")
    expect = ref_hist(values, kind, start, stop, interval)
    assert hist == expect
    assert int(sprint.rstrip(">")) == min(len(expect), 511)
    _, _, mtext = stat_lines(drv, kind, start, stop, interval, 0, values, cmd="mapstat")
    assert mtext.split("<SPRINT ")[0] == expect


def test_histogram_details(drv):
    _, b, text = stat_lines(drv, "linear", 0, 100, 10, 0, [5, 15, 15, 95, 105, 120, -1])
    assert b == {"buckets": "13", "b0": "1", "bN": "-1"}
    lines = text.split("<SPRINT")[0].split("\n")[:-1]
    assert lines[0] == "value |" + "-" * 50 + " count"
    assert lines[1] == "   <0 |@" + " " * 50 + "1"       # count column: max 2 -> 1 digit
    assert "      ~" in lines
    assert lines[-2] == " >100 |@" + " " * 50 + "1" and lines[-1] == ""
    # scale = ceil(120/50) = 3: 120 -> 40 '@', 7 -> 2 '@'
    _, _, text = stat_lines(drv, "log", 0, 0, 0, 0, [1] * 120 + [2] * 7)
    assert "    1 |" + "@" * 40 + " " * 11 + "120" in text.splitlines()
    assert "    2 |@@" + " " * 49 + "  7" in text.splitlines()
    # invalid linear parameters are refused
    assert drv("stat", "linear", 0, 1000, 1, 0, 5) == b"invalid\n"   # 1003 buckets
    assert drv("stat", "linear", 0, 100, 0, 0, 5) == b"invalid\n"


# --------------------------------------------------------------------------
# maps


def map_run(drv, ktypes, vtype, *ops, cap=0, wrap=0, size=0):
    return drv("map", ktypes, vtype, cap, wrap, size, *ops).decode()


def test_map_insertion_order_delete_reinsert(drv):
    out = map_run(drv, "L", "L", "set:3=30", "set:1=10", "set:2=20", "set:3=33", "del:1",
                  "set:1=11", "get:9", "has:9", "count", "iter:0:1:0:-1")
    assert out == "get=0\nhas=0\ncount=3\n[\n3=33\n2=20\n1=11\n]\n"


def test_map_sort_stable_ties(drv):
    ops = ["set:a=2", "set:b=1", "set:c=2", "set:d=1", "set:e=3", "set:f=2"]
    asc = map_run(drv, "S", "L", *ops, "iter:-1:1:0:-1")
    desc = map_run(drv, "S", "L", *ops, "iter:-1:-1:0:-1")
    assert asc == "[\nb=1\nd=1\na=2\nc=2\nf=2\ne=3\n]\n"
    assert desc == "[\ne=3\na=2\nc=2\nf=2\nb=1\nd=1\n]\n"
    assert map_run(drv, "S", "L", *ops, "iter:-1:-1:0:3") == "[\ne=3\na=2\nc=2\n]\n"
    assert map_run(drv, "S", "L", *ops, "iter:1:-1:0:2") == "[\nf=2\ne=3\n]\n"
    assert map_run(drv, "S", "L", *ops, "iter:0:1:0:0") == "[\n]\n"


def test_map_sort_by_key_columns_and_strings(drv):
    ops = ["set:2,b=1", "set:1,b=2", "set:2,a=3", "set:1,c=4", "set:1,b=5"]
    assert map_run(drv, "LS", "L", *ops, "iter:1:1:0:-1") == \
        "[\n1,b=5\n1,c=4\n2,b=1\n2,a=3\n]\n"
    assert map_run(drv, "LS", "L", *ops, "iter:2:-1:0:-1") == \
        "[\n1,c=4\n2,b=1\n1,b=5\n2,a=3\n]\n"
    assert map_run(drv, "L", "S", "set:1=pear", "set:2=apple", "set:3=fig", "set:4=apple",
                   "iter:-1:1:0:-1") == "[\n2=apple\n4=apple\n3=fig\n1=pear\n]\n"
    # negative numbers sort as signed
    assert map_run(drv, "L", "L", "set:1=-5", "set:2=3", "set:3=-9", "iter:-1:1:0:-1") == \
        "[\n3=-9\n1=-5\n2=3\n]\n"


def test_map_wrap_and_overflow(drv):
    out = map_run(drv, "L", "L", "set:1=1", "set:2=2", "set:3=3", "set:4=4", "set:2=22",
                  "set:5=5", "count", "iter:0:1:0:-1", cap=3, wrap=1)
    # 1 is replaced by 4; re-setting 2 keeps its (oldest) position, so 5 replaces 2
    assert out == "count=3\n[\n3=3\n4=4\n5=5\n]\n"
    out = map_run(drv, "L", "L", "set:1=1", "set:2=2", "set:3=3", "set:1=9", "count", cap=2)
    assert out == "error=Array overflow, check MAXMAPENTRIES\ncount=2\n"
    out = map_run(drv, "L", "L", "set:1=1", "set:2=2", "set:3=3", cap=2, size=2)
    assert out == "error=Array overflow, check size limit (2)\n"
    ops = ["set:%d=%d" % (i, i) for i in range(2049)]
    assert map_run(drv, "L", "L", *ops, "count") == \
        "error=Array overflow, check MAXMAPENTRIES\ncount=2048\n"
    # deleted slots are reused, clear empties
    ops = ["set:%d=1" % i for i in range(2048)] + ["del:7", "set:9999=2", "get:9999", "count",
                                                   "clear", "count", "set:1=5", "iter:0:1:0:-1"]
    assert map_run(drv, "L", "L", *ops) == "get=2\ncount=2048\ncount=0\n[\n1=5\n]\n"


def test_map_strings(drv):
    long = "k" * 600
    out = map_run(drv, "S", "S", "set:%s=%s" % (long, "v" * 700), "get:%s" % ("k" * 511),
                  "count")
    assert out == "get=%s\ncount=1\n" % ("v" * 511)
    out = map_run(drv, "SL", "L", "set:a,1=1", "set:a,2=2", "set:b,1=3", "get:a,2", "get:b,2",
                  "count")
    assert out == "get=2\nget=0\ncount=3\n"


def test_map_stats(drv):
    ops = ["add:1=10", "add:2=1", "add:2=1", "add:3=100", "add:1=30", "add:2=4", "get:9",
           "count"]
    out = map_run(drv, "L", "T", *ops, "iter:-1:-1:0:-1", "iter:-1:-1:1:-1", "iter:-1:1:4:-1")
    assert out == ("get=0/0\ncount=3\n"
                   "[\n2=3/6/1/4\n1=2/40/10/30\n3=1/100/100/100\n]\n"
                   "[\n3=1/100/100/100\n1=2/40/10/30\n2=3/6/1/4\n]\n"
                   "[\n2=3/6/1/4\n1=2/40/10/30\n3=1/100/100/100\n]\n")


# --------------------------------------------------------------------------
# ring, contexts, threads, locks, strings


def test_ring_lock_of_a_dead_writer_is_taken_over(drv):
    # A writer killed holding the ring lock (a followed child SIGKILLed mid record)
    # must not stop every later record; a live holder is waited for, then dropped.
    assert drv("ringsteal").decode().splitlines() == [
        "reaped kept=1 dropped=0 unlocked=1",
        "zombie kept=1 dropped=0 unlocked=1",
        "alive kept=0 dropped=1 unlocked=0",
    ]


def test_ring_drops_when_full(drv):
    lines = drv("ring").decode().splitlines()
    fit = (4 << 20) // (8192 + 5)
    assert lines[0] == "dropped=%d" % (1000 - fit)
    assert lines[1] == "kept=%d bad=0 empty=0" % fit
    assert lines[2] == "roundtrip=1 dropped=%d" % (1000 - fit)
    assert lines[3] == "wrapcheck=1"


def test_contexts_errors_and_output(drv):
    out = drv("ctx").decode()
    lines = out.split("\n")
    assert lines[0] == "enter=1 max=1000 idx=3 pp=begin cur=1"
    assert lines[1] == "reentrant=1 skipped=1 reent=1"
    # stdout of the hit is flushed before the warning; the error ends the hit
    assert lines[2] == "out1"
    assert lines[3] == "<ERR>WARNING: careful"
    assert lines[4] == "out2"
    assert lines[5] == "<ERR>ERROR: division by 0 near operator '/' at t.stp:1:2"
    assert lines[6] == "errors=1 state=%d cur=0" % 3        # MAXERRORS=0 -> UTR_ST_ERROR
    assert lines[7] == "refused=1 skipped=1"
    assert lines[8] == "errlen=511"
    assert lines[9] == "<ERR>ERROR: " + "e" * 511
    assert lines[11] == "errors=2"
    # 3000*6 bytes + 20 of INT64_MIN in 8192-byte records
    assert lines[12] == "records=3 total=%d" % (3000 * 6 + 20)
    assert lines[13] == "exit=1 abort=2"


def test_threads_stat_adds_and_ordered_output(drv):
    out = drv("threads").decode().splitlines()
    n = 100000
    assert out[0] == "count=%d sum=%d min=1 max=%d b65=4 b81=%d" % (
        4 * n, 4 * n * (n + 1) // 2, n, 4 * (n - 65536 + 1))
    per = {}
    for line in out[1:]:
        t, i = line[1:].split(":")
        per.setdefault(t, []).append(int(i))
    assert sorted(per) == ["0", "1", "2", "3"]
    assert all(v == list(range(200)) for v in per.values())


def test_rwlock_timeouts(drv):
    assert drv("lock").decode() == ("r1=1 r2=1 w_while_read=0 waited=1 w=1 r_while_write=0 "
                                    "waited=1 w2=0 r3=1 word=1\n")


def test_strings(drv):
    assert drv("str").decode() == ("cpy=511 cat=abcdef catlen=511 min=-9223372036854775808 "
                                   "zero=0 neg=-42\n")


def test_misc(drv):
    assert drv("misc").decode() == "rand=1 argc=2 argv1=two argv5=[] time=1\n"


def test_reference_models_sanity():
    # guard the models themselves against silly mistakes
    assert ref_conv("#", "", "", "x", 0) == "0x0"
    assert ref_conv("0", "5", "", "d", -42) == "-0042"
    assert scalar_variance([1, 2, 3, 4, 5], 0) == 12
    assert map_variance([1, 2, 3, 4, 5], 0) == 7
    assert [log_bucket(v) for v in (0, 1, 2, 3, 4, -1, -2, INT64_MIN)] == [64, 65, 66, 66, 67, 63,
                                                                          62, 0]
    assert list(itertools.islice((log_bucket_val(i) for i in (64, 65, 66, 63, 0)), 5)) == \
        [0, 1, 2, -1, INT64_MIN]
    assert os.path.exists(DRIVER)
