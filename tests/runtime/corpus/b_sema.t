# Pass-2 diagnostics in SystemTap's layout (session.cxx build_error_msg): the
# token, the source line and a caret; a chained error follows ("first inferred
# here"), and a token from the same file as the previous one printed loses its
# file name ("at :1:15").  stap suppresses repeats of an error found again by a
# later type-inference iteration and may then report how many it suppressed, so
# type-mismatch cases accept that trailer.

=== assign_string_to_long_local
--- script
probe begin { x = 1; x = "a" }
--- stderr-re
semantic\ error:\ type\ mismatch\ \(string\):\ identifier\ 'x'\ at\ <input>:1:22\
\ \ \ \ \ \ \ \ source:\ probe\ begin\ \{\ x\ =\ 1;\ x\ =\ "a"\ \}\
\ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \^\
\
semantic\ error:\ type\ was\ first\ inferred\ here\ \(long\):\ identifier\ 'x'\ at\ :1:15\
\ \ \ \ \ \ \ \ source:\ probe\ begin\ \{\ x\ =\ 1;\ x\ =\ "a"\ \}\
\ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \^\
\
Pass\ 2:\ analysis\ failed\.\ \ \[man\ error::pass2\]\
(Number of similar error messages suppressed: \d+\.
Rerun with -v to see them\.
)?
--- exit
1

=== assign_long_to_string_global
--- script
global g; probe begin { g = "s"; g = 2 }
--- stderr-re
semantic\ error:\ type\ mismatch\ \(long\):\ identifier\ 'g'\ at\ <input>:1:34\
\ \ \ \ \ \ \ \ source:\ global\ g;\ probe\ begin\ \{\ g\ =\ "s";\ g\ =\ 2\ \}\
\ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \^\
\
semantic\ error:\ type\ was\ first\ inferred\ here\ \(string\):\ identifier\ 'g'\ at\ :1:25\
\ \ \ \ \ \ \ \ source:\ global\ g;\ probe\ begin\ \{\ g\ =\ "s";\ g\ =\ 2\ \}\
\ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \^\
\
Pass\ 2:\ analysis\ failed\.\ \ \[man\ error::pass2\]\
(Number of similar error messages suppressed: \d+\.
Rerun with -v to see them\.
)?
--- exit
1

=== array_value_type_mismatch
--- script
global a; probe begin { a[1] = 1; a[2] = "s" }
--- stderr-re
semantic\ error:\ type\ mismatch\ \(string\):\ identifier\ 'a'\ at\ <input>:1:35\
\ \ \ \ \ \ \ \ source:\ global\ a;\ probe\ begin\ \{\ a\[1\]\ =\ 1;\ a\[2\]\ =\ "s"\ \}\
\ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \^\
\
semantic\ error:\ type\ was\ first\ inferred\ here\ \(long\):\ identifier\ 'a'\ at\ :1:25\
\ \ \ \ \ \ \ \ source:\ global\ a;\ probe\ begin\ \{\ a\[1\]\ =\ 1;\ a\[2\]\ =\ "s"\ \}\
\ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \^\
\
Pass\ 2:\ analysis\ failed\.\ \ \[man\ error::pass2\]\
(Number of similar error messages suppressed: \d+\.
Rerun with -v to see them\.
)?
--- exit
1

=== array_index_type_mismatch
--- script
global a; probe begin { a[1] = 1; a["k"] = 2 }
--- stderr-re
semantic\ error:\ type\ mismatch:\ expected\ long\ but\ found\ string:\ string\ 'k'\ at\ <input>:1:37\
\ \ \ \ \ \ \ \ source:\ global\ a;\ probe\ begin\ \{\ a\[1\]\ =\ 1;\ a\["k"\]\ =\ 2\ \}\
\ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \^\
\
semantic\ error:\ index\ 0\ type\ mismatch\ \(string\):\ string\ 'k'\ at\ :1:37\
\ \ \ \ \ \ \ \ source:\ global\ a;\ probe\ begin\ \{\ a\[1\]\ =\ 1;\ a\["k"\]\ =\ 2\ \}\
\ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \^\
\
semantic\ error:\ type\ of\ index\ 0\ was\ first\ inferred\ here\ \(long\):\ number\ '1'\ at\ :1:27\
\ \ \ \ \ \ \ \ source:\ global\ a;\ probe\ begin\ \{\ a\[1\]\ =\ 1;\ a\["k"\]\ =\ 2\ \}\
\ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \^\
\
Pass\ 2:\ analysis\ failed\.\ \ \[man\ error::pass2\]\
(Number of similar error messages suppressed: \d+\.
Rerun with -v to see them\.
)?
--- exit
1

=== compare_long_with_string
--- script
probe begin { x = 1; if (x == "a") exit() }
--- stderr-re
semantic\ error:\ type\ mismatch\ \(string\):\ identifier\ 'x'\ at\ <input>:1:26\
\ \ \ \ \ \ \ \ source:\ probe\ begin\ \{\ x\ =\ 1;\ if\ \(x\ ==\ "a"\)\ exit\(\)\ \}\
\ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \^\
\
semantic\ error:\ type\ was\ first\ inferred\ here\ \(long\):\ identifier\ 'x'\ at\ :1:15\
\ \ \ \ \ \ \ \ source:\ probe\ begin\ \{\ x\ =\ 1;\ if\ \(x\ ==\ "a"\)\ exit\(\)\ \}\
\ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \^\
\
Pass\ 2:\ analysis\ failed\.\ \ \[man\ error::pass2\]\
(Number of similar error messages suppressed: \d+\.
Rerun with -v to see them\.
)?
--- exit
1

=== typed_parameter_given_string
--- script
function f(a:long) { return a } probe begin { f("s") }
--- stderr-re
semantic\ error:\ type\ mismatch:\ expected\ long\ but\ found\ string:\ string\ 's'\ at\ <input>:1:49\
\ \ \ \ \ \ \ \ source:\ function\ f\(a:long\)\ \{\ return\ a\ \}\ probe\ begin\ \{\ f\("s"\)\ \}\
\ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \^\
\
semantic\ error:\ type\ mismatch:\ expected\ string\ but\ found\ long:\ string\ 's'\ at\ :1:49\
\ \ \ \ \ \ \ \ source:\ function\ f\(a:long\)\ \{\ return\ a\ \}\ probe\ begin\ \{\ f\("s"\)\ \}\
\ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \^\
\
Pass\ 2:\ analysis\ failed\.\ \ \[man\ error::pass2\]\
(Number of similar error messages suppressed: \d+\.
Rerun with -v to see them\.
)?
--- exit
1

=== printf_d_given_string
--- script
probe begin { printf("%d\n", "s") }
--- stderr-re
semantic\ error:\ type\ mismatch:\ expected\ long\ but\ found\ string:\ string\ 's'\ at\ <input>:1:30\
\ \ \ \ \ \ \ \ source:\ probe\ begin\ \{\ printf\("%d\\n",\ "s"\)\ \}\
\ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \^\
\
Pass\ 2:\ analysis\ failed\.\ \ \[man\ error::pass2\]\
(Number of similar error messages suppressed: \d+\.
Rerun with -v to see them\.
)?
--- exit
1

=== printf_s_given_long
--- script
probe begin { printf("%s\n", 5) }
--- stderr-re
semantic\ error:\ type\ mismatch:\ expected\ string\ but\ found\ long:\ number\ '5'\ at\ <input>:1:30\
\ \ \ \ \ \ \ \ source:\ probe\ begin\ \{\ printf\("%s\\n",\ 5\)\ \}\
\ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \ \^\
\
Pass\ 2:\ analysis\ failed\.\ \ \[man\ error::pass2\]\
(Number of similar error messages suppressed: \d+\.
Rerun with -v to see them\.
)?
--- exit
1

=== printf_too_few_args
--- script
probe begin { printf("%d %d\n", 1) }
--- stderr
semantic error: Wrong number of args to formatted print operator: identifier 'printf' at <input>:1:15
        source: probe begin { printf("%d %d\n", 1) }
                              ^

Pass 2: analysis failed.  [man error::pass2]
--- exit
1

=== printf_too_many_args
--- script
probe begin { printf("%d\n", 1, 2) }
--- stderr
semantic error: Wrong number of args to formatted print operator: identifier 'printf' at <input>:1:15
        source: probe begin { printf("%d\n", 1, 2) }
                              ^

Pass 2: analysis failed.  [man error::pass2]
--- exit
1

=== printf_star_width_counts_as_arg
--- script
probe begin { x = sprintf("%*d", 1) }
--- stderr
semantic error: Wrong number of args to formatted print operator: identifier 'sprintf' at <input>:1:19
        source: probe begin { x = sprintf("%*d", 1) }
                                  ^

Pass 2: analysis failed.  [man error::pass2]
--- exit
1

=== unresolved_function
--- script
probe begin { zzqqxx_nothing(1) }
--- stderr
semantic error: unresolved function zzqqxx_nothing: identifier 'zzqqxx_nothing' at <input>:1:15
        source: probe begin { zzqqxx_nothing(1) }
                              ^

Pass 2: analysis failed.  [man error::pass2]
--- exit
1

=== unresolved_function_similar
--- script
function my_counter_fn() { return 1 } probe begin { my_counter_fm() }
--- stderr
semantic error: unresolved function my_counter_fm (similar: my_counter_fn): identifier 'my_counter_fm' at <input>:1:53
        source: function my_counter_fn() { return 1 } probe begin { my_counter_fm() }
                                                                    ^

Pass 2: analysis failed.  [man error::pass2]
--- exit
1

=== array_needs_global
--- script
probe begin { a[1] = 2 }
--- stderr
semantic error: unresolved arity-1 global array a, missing global declaration?: identifier 'a' at <input>:1:15
        source: probe begin { a[1] = 2 }
                              ^

Pass 2: analysis failed.  [man error::pass2]
--- exit
1

=== stat_local
--- script
probe begin { s <<< 1 }
--- stderr
semantic error: stat locals not supported, missing global declaration? : identifier 's' at <input>:1:15
        source: probe begin { s <<< 1 }
                              ^

Pass 2: analysis failed.  [man error::pass2]
--- exit
1

=== stat_read_as_value
--- script
global s; probe begin { s <<< 1; x = s; exit() }
--- stderr-re
semantic error: [^\n]*: identifier 's' at (<input>)?:1:38\n.*Pass 2: analysis failed\.  \[man error::pass2\]\n.*
--- exit
1

=== foreach_modifies_its_array
--- script
global a; probe begin { a[1] = 1; foreach (k in a) { a[k] = 2 } }
--- stderr
semantic error: variable 'a' modified during 'foreach' iteration: identifier 'a' at <input>:1:54
        source: global a; probe begin { a[1] = 1; foreach (k in a) { a[k] = 2 } }
                                                                     ^

Pass 2: analysis failed.  [man error::pass2]
--- exit
1

=== foreach_deletes_from_its_array
--- script
global a; probe begin { a[1] = 1; foreach (k in a) { delete a[k] } }
--- stderr
semantic error: variable 'a' modified during 'foreach' iteration: identifier 'a' at <input>:1:61
        source: global a; probe begin { a[1] = 1; foreach (k in a) { delete a[k] } }
                                                                            ^

Pass 2: analysis failed.  [man error::pass2]
--- exit
1

=== unknown_probe_point
--- script
probe zzqqxx { }
--- stderr
semantic error: while resolving probe point: identifier 'zzqqxx' at <input>:1:7
        source: probe zzqqxx { }
                      ^

semantic error: probe point mismatch: identifier 'zzqqxx' at :1:7
        source: probe zzqqxx { }
                      ^

Pass 2: analysis failed.  [man error::pass2]
--- exit
1

=== unknown_probe_point_suffix
--- script
probe begin.zzqqxx { }
--- stderr
semantic error: while resolving probe point: identifier 'begin' at <input>:1:7
        source: probe begin.zzqqxx { }
                      ^

semantic error: probe point mismatch: identifier 'zzqqxx' at :1:13
        source: probe begin.zzqqxx { }
                            ^

Pass 2: analysis failed.  [man error::pass2]
--- exit
1

=== unknown_timer_unit
--- script
probe timer.zzqqxx(5) { }
--- stderr
semantic error: while resolving probe point: identifier 'timer' at <input>:1:7
        source: probe timer.zzqqxx(5) { }
                      ^

semantic error: probe point mismatch: identifier 'zzqqxx' at :1:13
        source: probe timer.zzqqxx(5) { }
                            ^

Pass 2: analysis failed.  [man error::pass2]
--- exit
1

=== break_outside_loop
--- script
probe begin { break }
--- stderr
semantic error: cannot 'break' outside loop: keyword at <input>:1:15
        source: probe begin { break }
                              ^

Pass 3: translation failed.  [man error::pass3]
--- exit
1

=== continue_outside_loop
--- script
probe begin { continue }
--- stderr
semantic error: cannot 'continue' outside loop: keyword at <input>:1:15
        source: probe begin { continue }
                              ^

Pass 3: translation failed.  [man error::pass3]
--- exit
1

=== no_probes_after_preprocessing
--- script
%( 1 == 0 %? probe begin { } %)
--- stderr
Input file '<input>' is empty after preprocessing.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== only_a_comment
--- script
# nothing here
--- stderr
Input file '<input>' is empty.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== only_functions_no_probes
--- script
function f() { return 1 }
--- stderr
semantic error: no probes found

Pass 2: analysis failed.  [man error::pass2]
--- exit
1

=== unused_argument_warning
--- script
probe begin { print(1); exit() }
--- args
extra
--- stdout!
1
--- stderr
WARNING: unused command line option $1/@1
--- exit
0
