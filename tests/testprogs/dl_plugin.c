/* dl_plugin - the library dl_host loads and unloads. */
__attribute__((noinline)) long plugin_fn(long x)
{
    return x * 2 + 1;
}
