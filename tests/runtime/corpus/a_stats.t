# Statistics aggregates: @count @sum @min @max @avg @variance, arrays of stats (helper a).
=== a_stat_basic_ops
--- script
global x
probe begin {
  for (i = 1; i <= 5; i++) x <<< i
  printf("%d %d %d %d %d\n", @count(x), @sum(x), @min(x), @max(x), @avg(x))
  exit()
}
--- stdout
5 15 1 5 3
=== a_stat_variance_scalar
--- script
global x
probe begin {
  x <<< 1; x <<< 2; x <<< 3; x <<< 4; x <<< 5
  printf("%d\n", @variance(x))
  exit()
}
--- stdout
12
=== a_stat_variance_shift
--- script
global x
probe begin {
  for (i = 1; i <= 5; i++) x <<< i
  printf("%d\n", @variance(x, 1))
  exit()
}
--- stdout
2
=== a_stat_variance_array_entry
--- script
global s
probe begin {
  for (i = 1; i <= 5; i++) s["k"] <<< i
  printf("%d\n", @variance(s["k"]))
  exit()
}
--- stdout
7
=== a_stat_variance_single_sample
--- script
global x, y
probe begin {
  x <<< 42
  y <<< 10; y <<< 10; y <<< 10
  printf("%d %d\n", @variance(x), @variance(y))
  exit()
}
--- stdout
0 0
=== a_stat_avg_truncates
--- script
global a, b, c
probe begin {
  a <<< 1; a <<< 2
  b <<< -1; b <<< -2
  c <<< 7; c <<< 0; c <<< 0
  printf("%d %d %d\n", @avg(a), @avg(b), @avg(c))
  exit()
}
--- stdout
1 -1 2
=== a_stat_negative_values
--- script
global x
probe begin {
  x <<< -5; x <<< 3; x <<< -10; x <<< 0
  printf("%d %d %d %d %d\n", @count(x), @sum(x), @min(x), @max(x), @avg(x))
  exit()
}
--- stdout
4 -12 -10 3 -3
=== a_stat_empty_count_sum
--- script
global x
probe begin {
  printf("%d %d\n", @count(x), @sum(x))
  exit()
}
probe end { x <<< 1 }
--- stdout
0 0
=== a_stat_empty_min_error
--- script
global x
probe begin {
  printf("%d\n", @count(x))
  printf("%d\n", @min(x))
}
probe end { x <<< 1 }
--- stdout
0
--- stderr
ERROR: empty aggregate near operator '@min' at <input>:4:18
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1
=== a_stat_empty_avg_caught
--- script
global x
probe begin {
  try { println(@avg(x)) } catch (msg) { println("caught: ", msg) }
  try { println(@max(x)) } catch (msg) { println("caught: ", msg) }
  try { println(@variance(x)) } catch (msg) { println("caught: ", msg) }
  x <<< 4
  println(@avg(x))
  exit()
}
--- stdout
caught: empty aggregate
caught: empty aggregate
caught: empty aggregate
4
=== a_stat_delete_resets
--- script
global x
probe begin {
  x <<< 10; x <<< 20
  delete x
  printf("%d %d\n", @count(x), @sum(x))
  x <<< 7
  printf("%d %d %d\n", @count(x), @min(x), @max(x))
  exit()
}
--- stdout
0 0
1 7 7
=== a_stat_array_basic
--- script
global s
probe begin {
  s["a"] <<< 1; s["b"] <<< 10; s["a"] <<< 3; s["b"] <<< 20; s["b"] <<< 30
  foreach (k in s)
    printf("%s %d %d %d %d %d\n", k, @count(s[k]), @sum(s[k]), @min(s[k]), @max(s[k]), @avg(s[k]))
  exit()
}
--- stdout
a 2 4 1 3 2
b 3 60 10 30 20
=== a_stat_array_missing_key
--- script
global s
probe begin {
  s[1] <<< 5
  printf("%d %d %d\n", @count(s[2]), @sum(s[2]), 2 in s)
  exit()
}
--- stdout
0 0 0
=== a_stat_array_missing_key_min_error
--- script
global s
probe begin {
  s[1] <<< 5
  println(@max(s[2]))
}
--- stderr
ERROR: empty aggregate near operator '@max' at <input>:4:11
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1
=== a_stat_array_sort_default_count
--- script
global s
probe begin {
  s["x"] <<< 100
  s["y"] <<< 1; s["y"] <<< 1; s["y"] <<< 1
  s["z"] <<< 5; s["z"] <<< 5
  s["w"] <<< 50; s["w"] <<< 60
  foreach (k in s-) printf("%s ", k)
  println("")
  foreach (k in s+) printf("%s ", k)
  println("")
  exit()
}
--- stdout
y z w x 
x z w y 
=== a_stat_array_sort_by_aggregate
--- script
global s
probe begin {
  s["x"] <<< 100
  s["y"] <<< 1; s["y"] <<< 1; s["y"] <<< 1
  s["z"] <<< 5; s["z"] <<< 7
  foreach (k in s @sum -) printf("%s ", k)
  println("")
  foreach (k in s @max +) printf("%s ", k)
  println("")
  foreach (k in s @min -) printf("%s ", k)
  println("")
  foreach (k in s @avg - limit 1) printf("%s ", k)
  println("")
  exit()
}
--- stdout
x z y 
y z x 
x z y 
x 
=== a_stat_array_multi_key
--- script
global s
probe begin {
  s[1, "r"] <<< 2; s[1, "w"] <<< 4; s[1, "r"] <<< 6
  foreach ([p, op] in s) printf("%d %s %d %d\n", p, op, @count(s[p, op]), @sum(s[p, op]))
  exit()
}
--- stdout
1 r 2 8
1 w 1 4
=== a_stat_large_values
--- script
global x
probe begin {
  x <<< 9223372036854775807
  x <<< 1
  printf("%d %d %d\n", @sum(x), @max(x), @min(x))
  exit()
}
--- stdout
-9223372036854775808 9223372036854775807 1
=== a_stat_global_display
--- script
global st
probe begin { st <<< 3; st <<< 5; st <<< 10; exit() }
--- stdout
st @count=3 @min=3 @max=10 @sum=18 @avg=6
