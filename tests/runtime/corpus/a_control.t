# Functions, locals, globals, control flow, try/catch, auto-display (helper a).
=== a_func_recursion_fib
--- script
function fib(n) { if (n < 2) return n; return fib(n - 1) + fib(n - 2) }
probe begin { printf("%d %d\n", fib(1), fib(10)); exit() }
--- stdout
1 55
=== a_func_recursion_depth_ok
--- script
function depth(n) { if (n <= 0) return 0; return 1 + depth(n - 1) }
probe begin { println(depth(11)); exit() }
--- stdout
11
=== a_func_string_return
--- script
function greet:string (who:string) { return "hello, " . who }
function rep(s, n) {
  r = ""
  for (i = 0; i < n; i++) r .= s
  return r
}
probe begin { println(greet("world")); println(rep("ab", 3)); exit() }
--- stdout
hello, world
ababab
=== a_func_params_by_value
--- script
function bump(x) { x += 100; return x }
probe begin {
  y = 1
  z = bump(y)
  printf("%d %d\n", y, z)
  exit()
}
--- stdout
1 101
=== a_func_no_return_value
--- script
global log_count
function note(msg) { log_count++; printf("[%s]", msg) }
probe begin {
  note("a"); note("b")
  printf(" %d\n", log_count)
  exit()
}
--- stdout
[a][b] 2
=== a_func_return_without_value_in_void
--- script
function maybe(x) {
  if (x) return
  println("x was zero")
}
probe begin { maybe(1); maybe(0); exit() }
--- stdout
x was zero
=== a_func_mixed_types
--- script
function describe:string (n:long) { return sprintf("%s:%d", n % 2 ? "odd" : "even", n) }
function total(a, b, c) { return a + b + c }
probe begin { println(describe(7), " ", describe(total(1, 2, 3))); exit() }
--- stdout
odd:7 even:6
=== a_locals_are_per_probe
--- script
probe begin { x = 5; s = "one"; printf("%d %s\n", x, s) }
probe begin { x = 7; printf("%d\n", x); exit() }
--- stdout
5 one
7
=== a_locals_reset_each_hit
--- script
global hits
function counter() { n++; return n }
probe begin { printf("%d %d\n", counter(), counter()) }
probe timer.ms(10) {
  hits++
  k += 1
  printf("hit %d k %d\n", hits, k)
  if (hits == 2) exit()
}
--- stdout
1 1
hit 1 k 1
hit 2 k 1
=== a_globals_initialisers
--- script
global g = 5, s = "hi", neg = -3, h = 0x10
probe begin {
  printf("%d %s %d %d\n", g, s, neg, h)
  g++
  s .= "!"
  printf("%d %s\n", g, s)
  exit()
}
--- stdout
5 hi -3 16
6 hi!
=== a_globals_shared_between_probes
--- script
global total
probe begin { total = 10 }
probe begin { total *= 3 }
probe end { printf("total=%d\n", total) }
probe begin { exit() }
--- stdout
total=30
=== a_while_loop
--- script
probe begin {
  i = 0; sum = 0
  while (i < 10) { i++; sum += i }
  printf("%d %d\n", i, sum)
  exit()
}
--- stdout
10 55
=== a_for_loop_variants
--- script
probe begin {
  for (i = 0; i < 3; i++) printf("%d", i)
  println("")
  j = 10
  for (; j > 7;) j--
  println(j)
  for (k = 1; k < 100; k *= 3) printf("%d ", k)
  println("")
  exit()
}
--- stdout
012
7
1 3 9 27 81 
=== a_break_continue
--- script
probe begin {
  for (i = 0; i < 10; i++) {
    if (i % 2) continue
    if (i > 6) break
    printf("%d ", i)
  }
  println("")
  n = 0
  while (1) { n++; if (n == 4) break }
  println(n)
  exit()
}
--- stdout
0 2 4 6 
4
=== a_break_continue_foreach_nested
--- script
global a
probe begin {
  a[1] = 1; a[2] = 2; a[3] = 3; a[4] = 4
  foreach (k in a) {
    if (k == 2) continue
    for (j = 0; j < 5; j++) {
      if (j == k) break
      printf("%d", j)
    }
    printf("|%d\n", k)
    if (k == 3) break
  }
  exit()
}
--- stdout
0|1
012|3
=== a_if_else_chain
--- script
function classify:string (n) {
  if (n < 0) return "neg"
  else if (n == 0) return "zero"
  else if (n < 10) return "small"
  else return "big"
}
probe begin {
  println(classify(-4), " ", classify(0), " ", classify(5), " ", classify(50))
  exit()
}
--- stdout
neg zero small big
=== a_next_leaves_handler
--- script
global n
probe begin {
  n = 1
  if (n) next
  println("not reached")
}
probe begin { println("second probe runs"); exit() }
--- stdout
second probe runs
=== a_try_catch_message
--- script
probe begin {
  z = 0
  try {
    println("in try")
    x = 10 / z
    println("not reached")
  } catch (msg) {
    println("caught: ", msg)
  }
  println("after")
  exit()
}
--- stdout
in try
caught: division by 0
after
=== a_try_catch_error_function
--- script
probe begin {
  try { error("custom failure") } catch (m) { printf("[%s]\n", m) }
  try { error("no var") } catch { println("caught without var") }
  exit()
}
--- stdout
[custom failure]
caught without var
=== a_try_catch_nested_rethrow
--- script
probe begin {
  try {
    try {
      error("inner")
    } catch (e) {
      println("inner caught ", e)
      error("outer from " . e)
    }
    println("not reached")
  } catch (e2) {
    println("outer caught ", e2)
  }
  exit()
}
--- stdout
inner caught inner
outer caught outer from inner
=== a_try_catch_from_function
--- script
function risky(d) { return 100 / d }
probe begin {
  try { println(risky(4)); println(risky(0)) } catch (m) { println("caught ", m) }
  exit()
}
--- stdout
25
caught division by 0
=== a_try_catch_in_loop
--- script
probe begin {
  for (i = -1; i <= 1; i++) {
    try { printf("%d ", 6 / i) } catch { printf("E ") }
  }
  println("")
  exit()
}
--- stdout
-6 E 6 
=== a_uncaught_error_function
--- script
probe begin {
  println("start")
  error("fatal thing")
  println("not reached")
}
probe end { println("end not run") }
--- stdout
start
--- stderr
ERROR: fatal thing near identifier 'error' at <input>:3:3
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1
=== a_auto_display_globals
--- script
global count, name, arr, unused_read
probe begin {
  count = 3
  name = "hi"
  arr["b"] = 1; arr["a"] = 2; arr["c"] = 2
  unused_read = 1
  if (unused_read) exit()
}
--- stdout
count=3
name="hi"
arr["a"]=2
arr["c"]=2
arr["b"]=1
=== a_auto_display_multikey_and_stats
--- script
global m, st, empty
probe begin {
  m[1, "x"] = 10; m[2, "y"] = 20
  st <<< 4; st <<< 8
  empty <<< 1
  delete empty
  exit()
}
--- stdout
m[2,"y"]=20
m[1,"x"]=10
st @count=2 @min=4 @max=8 @sum=12 @avg=6
empty @count=0x0
=== a_no_global_var_display
--- opts
--no-global-var-display
--- script
global count
probe begin { count = 3; exit() }
=== a_exit_finishes_handler
--- script
probe begin { exit(); println("still runs") }
probe end { println("end") }
--- stdout
still runs
end
=== a_maxnesting_option
--- opts
-D MAXNESTING=3
--- script
function f(n) { if (n <= 0) return 0; return 1 + f(n - 1) }
probe begin {
  println(f(2))
  try { println(f(3)) } catch (m) { println("caught ", m) }
  exit()
}
--- stdout
2
caught MAXNESTING exceeded
