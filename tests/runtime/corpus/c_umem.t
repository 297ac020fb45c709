# User memory, registers and arguments where there is no probed thread: begin
# and end probes run in the tracer, with no registers (stap's messages), and
# "user space" is the tracer's own memory.

=== begin_register_is_an_error
--- script
probe begin { print(register("rax")) }
--- stderr-re
ERROR: cannot access CPU registers in this context near identifier '_stp_register' at \S+/registers\.stp:\d+:\d+
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  \[man error::pass5\]\n
--- stdout!
--- exit
1

=== begin_int_arg_is_an_error
--- script
probe begin { print(int_arg(1)) }
--- stderr-re
ERROR: cannot access function args in this context near identifier '_stp_arg2' at \S+/registers\.stp:\d+:\d+
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  \[man error::pass5\]\n
--- stdout!
--- exit
1

=== begin_arg_messages
--- script
probe begin {
  try { pointer_arg(7) } catch (e) { println(e) }
  try { u_register("eax") } catch (e) { println(e) }
  try { ulonglong_arg(2) } catch (e) { println(e) }
  try { regparm(-1) } catch (e) { println(e) }
  printf("%d %d %d\n", registers_valid(), user_mode(), uaddr())
  exit()
}
--- stdout
cannot access function args in this context
cannot access CPU registers in this context
cannot access function args in this context
For x86_64, regparm value must be in the range 0-6.
0 0 0
--- exit
0

=== end_user_string_null
--- script
probe begin { exit() }
probe end { print(user_string(0)) }
--- stderr-re
ERROR: user string copy fault -14 at 0x0 \[man error::fault\] near identifier 'user_string_n' at \S+/uconversions\.stp:\d+:\d+
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  \[man error::pass5\]\n
--- stdout!
--- exit
1

=== user_memory_defaults
--- script
probe begin {
  println(user_string(0, "dflt"), " ", user_string2(1, "d2"), " ", user_string_n2(8, 3, "d3"))
  println(user_string_quoted(16), " ", user_string_n_quoted(24, 5), " [", user_string_nofault(0), "]")
  println(user_long(1), " ", user_int(1), " ", user_short(1), " ", user_char(1), " ", user_ulong(1))
  println(user_int8(0), user_uint8(0), user_int16(0), user_uint16(0), user_int32(0),
          user_uint32(0), user_int64(0), user_uint64(0), user_ushort(0))
  try { user_ushort_error(4096) } catch (e) { println(e) }
  try { user_string_utf32(8) } catch (e) { println(e) }
  println(user_string_utf16(8, "u16"), " ", user_string_quoted_utf32(32))
  exit()
}
--- stdout
dflt d2 d3
0x10 0x18 []
0 0 0 0 0
000000000
read fault [man error::fault] at 0x1000
user string copy fault at 0x8 [man error::fault]
u16 0x20
--- exit
0

=== user_warn_forms
--- script
probe begin {
  printf("[%s] [%s] %d\n", user_string_warn(0), user_string_n_warn(16, 4, "w"), user_int_warn(8))
  exit()
}
--- stdout
[] [w] 0
--- stderr
WARNING: user string copy fault -14 at 0x0 [man error::fault]
WARNING: user string copy fault -14 at 0x10 [man error::fault]
WARNING: user int copy fault 0x8 [man error::fault]
--- exit
0

=== set_user_long_needs_guru
--- script
probe begin { set_user_long(0, 1) }
--- stderr
semantic error: function may not be used unless -g is specified: identifier 'set_user_long' at <input>:1:15
        source: probe begin { set_user_long(0, 1) }
                              ^

Pass 2: analysis failed.  [man error::pass2]
--- exit
1

=== set_user_string_fault_with_guru
--- script
probe begin { set_user_string(8, "x") }
--- opts
-g
--- stderr
ERROR: user string copy fault at 0x8 [man error::fault] near identifier 'set_user_string' at <input>:1:15
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1

=== overloads_by_arity
--- script
function f(a) { return a * 10 }
function f(a, b) { return a + b }
probe begin { printf("%d %d\n", f(4), f(4, 5)); exit() }
--- stdout
40 9
--- exit
0

=== overload_arity_mismatch
--- script
function f(a) { return a }
function f(a, b) { return a + b }
probe begin { print(f(1, 2, 3)) }
--- stderr
semantic error: arity mismatch found (function 'f' takes 1 args): identifier 'f' at <input>:3:21
        source: probe begin { print(f(1, 2, 3)) }
                                    ^

Pass 2: analysis failed.  [man error::pass2]
--- exit
1

=== user_string_arg_calls_run_at_caller_depth
--- script
function g(s) { return s . "!" }
probe begin { println(g(g(g(g(g(g(g(g(g(g(g(g("x"))))))))))))); exit() }
--- stdout
x!!!!!!!!!!!!
--- exit
0
