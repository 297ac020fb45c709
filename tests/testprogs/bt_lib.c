/* bt_lib.c — a shared library the backtrace tests call through (built -O2 -fomit-frame-pointer). */
typedef void (*bt_cb)(int);

__attribute__((noinline)) int bt_lib_call(bt_cb cb, int n)
{
    volatile int pad[8];
    pad[0] = n;
    cb(n);
    return pad[0] + 1;
}
