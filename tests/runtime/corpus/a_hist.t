# Histograms: @hist_linear and @hist_log layouts, byte for byte (helper a).
# Expected layouts follow runtime/stat-common.c (checked against systemtap.maps/*.exp).
=== a_hist_linear_small
--- script
global x
probe begin {
  x <<< 0; x <<< 1; x <<< 1; x <<< 2; x <<< 3; x <<< 3
  x <<< 3; x <<< 4; x <<< 5; x <<< 7; x <<< 9
  print(@hist_linear(x, 0, 10, 2))
  exit()
}
--- stdout
value |-------------------------------------------------- count
    0 |@@@                                                3
    2 |@@@@                                               4
    4 |@@                                                 2
    6 |@                                                  1
    8 |@                                                  1
   10 |                                                   0

=== a_hist_linear_scaled
--- script
global x
probe begin {
  for (i = 0; i < 120; i++) x <<< 10
  for (i = 0; i < 30; i++) x <<< 30
  for (i = 0; i < 7; i++) x <<< 45
  print(@hist_linear(x, 0, 100, 10))
  exit()
}
--- stdout
value |-------------------------------------------------- count
    0 |                                                     0
   10 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@           120
   20 |                                                     0
   30 |@@@@@@@@@@                                          30
   40 |@@                                                   7
   50 |                                                     0
   60 |                                                     0

=== a_hist_linear_elision
--- script
global x
probe begin {
  x <<< 5; x <<< 5; x <<< 95; x <<< 400
  print(@hist_linear(x, 0, 500, 10))
  exit()
}
--- stdout
value |-------------------------------------------------- count
    0 |@@                                                 2
   10 |                                                   0
   20 |                                                   0
      ~
   70 |                                                   0
   80 |                                                   0
   90 |@                                                  1
  100 |                                                   0
  110 |                                                   0
      ~
  380 |                                                   0
  390 |                                                   0
  400 |@                                                  1
  410 |                                                   0
  420 |                                                   0

=== a_hist_linear_under_over
--- script
global x
probe begin {
  x <<< -50; x <<< -1; x <<< 3; x <<< 12; x <<< 12
  x <<< 99; x <<< 1000; x <<< 1000
  print(@hist_linear(x, 0, 20, 5))
  exit()
}
--- stdout
value |-------------------------------------------------- count
   <0 |@@                                                 2
    0 |@                                                  1
    5 |                                                   0
   10 |@@                                                 2
   15 |                                                   0
   20 |                                                   0
  >20 |@@@                                                3

=== a_hist_linear_negative_range
--- script
global x
probe begin {
  x <<< -35; x <<< -30; x <<< -12; x <<< -5; x <<< 0; x <<< 4
  print(@hist_linear(x, -40, 10, 10))
  exit()
}
--- stdout
value |-------------------------------------------------- count
  -40 |@                                                  1
  -30 |@                                                  1
  -20 |@                                                  1
  -10 |@                                                  1
    0 |@@                                                 2
   10 |                                                   0

=== a_hist_log_basic
--- script
global x
probe begin {
  x <<< 1; x <<< 2; x <<< 3; x <<< 4; x <<< 8; x <<< 100
  print(@hist_log(x))
  exit()
}
--- stdout
value |-------------------------------------------------- count
    0 |                                                   0
    1 |@                                                  1
    2 |@@                                                 2
    4 |@                                                  1
    8 |@                                                  1
   16 |                                                   0
   32 |                                                   0
   64 |@                                                  1
  128 |                                                   0
  256 |                                                   0

=== a_hist_log_negative_zero
--- script
global x
probe begin {
  x <<< -100; x <<< -3; x <<< -1; x <<< 0; x <<< 0; x <<< 0
  x <<< 2; x <<< 70000
  print(@hist_log(x))
  exit()
}
--- stdout
 value |-------------------------------------------------- count
  -256 |                                                   0
  -128 |                                                   0
   -64 |@                                                  1
   -32 |                                                   0
   -16 |                                                   0
    -8 |                                                   0
    -4 |                                                   0
    -2 |@                                                  1
    -1 |@                                                  1
     0 |@@@                                                3
     1 |                                                   0
     2 |@                                                  1
     4 |                                                   0
     8 |                                                   0
       ~
 16384 |                                                   0
 32768 |                                                   0
 65536 |@                                                  1
131072 |                                                   0
262144 |                                                   0

=== a_hist_log_scaled
--- script
global x
probe begin {
  for (i = 0; i < 200; i++) x <<< 1024
  for (i = 0; i < 20; i++) x <<< 3
  print(@hist_log(x))
  exit()
}
--- stdout
value |-------------------------------------------------- count
    0 |                                                     0
    1 |                                                     0
    2 |@@@@@                                               20
    4 |                                                     0
    8 |                                                     0
      ~
  256 |                                                     0
  512 |                                                     0
 1024 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 200
 2048 |                                                     0
 4096 |                                                     0

=== a_hist_log_max_value
--- script
global x
probe begin {
  x <<< 9223372036854775807
  x <<< -9223372036854775808
  print(@hist_log(x))
  exit()
}
--- stdout
               value |-------------------------------------------------- count
-9223372036854775808 |@                                                  1
-4611686018427387904 |                                                   0
-2305843009213693952 |                                                   0
                     ~
 1152921504606846976 |                                                   0
 2305843009213693952 |                                                   0
 4611686018427387904 |@                                                  1

=== a_hist_array_entries
--- script
global s
probe begin {
  s["a"] <<< 1; s["a"] <<< 6
  s["b"] <<< 15
  foreach (k+ in s) {
    println(k)
    print(@hist_linear(s[k], 0, 20, 5))
  }
  exit()
}
--- stdout
a
value |-------------------------------------------------- count
    0 |@                                                  1
    5 |@                                                  1
   10 |                                                   0
   15 |                                                   0

b
value |-------------------------------------------------- count
    5 |                                                   0
   10 |                                                   0
   15 |@                                                  1
   20 |                                                   0

=== a_hist_elision_option
--- opts
-D HIST_ELISION=0
--- script
global x
probe begin {
  x <<< 0; x <<< 90
  print(@hist_linear(x, 0, 100, 10))
  exit()
}
--- stdout
value |-------------------------------------------------- count
    0 |@                                                  1
      ~
   90 |@                                                  1

=== a_hist_no_elision_option
--- opts
-D HIST_ELISION=-1
--- script
global x
probe begin {
  x <<< 0; x <<< 90
  print(@hist_linear(x, 0, 100, 10))
  exit()
}
--- stdout
value |-------------------------------------------------- count
    0 |@                                                  1
   10 |                                                   0
   20 |                                                   0
   30 |                                                   0
   40 |                                                   0
   50 |                                                   0
   60 |                                                   0
   70 |                                                   0
   80 |                                                   0
   90 |@                                                  1
  100 |                                                   0

=== a_hist_log_bucket_index
--- script
global x
probe begin {
  x <<< 5; x <<< 6; x <<< 7; x <<< 100; x <<< -3
  foreach (b in @hist_log(x))
    if (@hist_log(x)[b])
      printf("bucket %d: %d\n", b, @hist_log(x)[b])
  exit()
}
--- stdout
bucket 62: 1
bucket 67: 3
bucket 71: 1
=== a_hist_linear_bucket_index
--- script
global x
probe begin {
  x <<< -4; x <<< 0; x <<< 3; x <<< 3; x <<< 25
  foreach (b in @hist_linear(x, 0, 20, 5))
    printf("%d:%d ", b, @hist_linear(x, 0, 20, 5)[b])
  println("")
  exit()
}
--- stdout
0:1 1:3 2:0 3:0 4:0 5:0 6:1 
=== a_hist_bucket_direct_index
--- script
global x
probe begin {
  x <<< 3; x <<< 3; x <<< 12; x <<< -1
  printf("%d %d %d\n", @hist_linear(x, 0, 20, 5)[0], @hist_linear(x, 0, 20, 5)[1], @hist_linear(x, 0, 20, 5)[3])
  exit()
}
--- stdout
1 2 1
=== a_hist_empty_error
--- script
global x
probe begin {
  println("before")
  print(@hist_log(x))
}
probe end { x <<< 1 }
--- stdout
before
--- stderr
ERROR: empty aggregate near identifier 'print' at <input>:4:3
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1
=== a_hist_empty_linear_error_caught
--- script
global x
probe begin {
  try { print(@hist_linear(x, 0, 10, 1)) } catch (m) { println("caught ", m) }
  exit()
}
probe end { x <<< 1 }
--- stdout
caught empty aggregate
