# Probe kinds and session life cycle: begin/end priorities, aliases, optional and
# sufficient points, conditions, error probes, exit/abort, MAXERRORS/MAXACTION.

=== begin_end_priorities
--- script
probe begin(2) { println("b2"); exit() } probe begin(-1) { println("bm1") }
probe begin { println("b0") } probe end(1) { println("e1") } probe end { println("e0") }
probe begin { println("b0 second") }
--- stdout
bm1
b0
b0 second
b2
e0
e1
--- exit
0

=== exit_in_begin_skips_later_begins
--- script
probe begin { exit(); println("after exit") } probe begin { println("second begin") } probe end { println("end") }
--- stdout
after exit
end
--- exit
0

=== several_points_one_probe
--- script
probe begin, end { println(pp()) } probe begin(1) { exit() }
--- stdout
begin
end
--- exit
0

=== pp_of_priority_begin
--- script
probe begin(5) { println(pp()); exit() }
--- stdout
begin(5)
--- exit
0

=== pp_of_timer
--- script
probe timer.ms(5) { println(pp()); exit() }
--- stdout
timer.ms(5)
--- exit
0

=== alias_prologue_variable_visible
--- script
probe myalias = begin { x = 41 } probe myalias { println(x + 1); exit() }
--- stdout
42
--- exit
0

=== alias_epilogue_runs_after
--- script
probe epi += begin { println("epilogue"); exit() } probe epi { println("body") }
--- stdout
body
epilogue
--- exit
0

=== alias_used_twice
--- script
probe twice = begin { n = 1 } probe twice { println("a", n) } probe twice { println("b", n) } probe begin(1) { exit() }
--- stdout
a1
b1
--- exit
0

=== optional_point_missing
--- script
probe begin, zzqqxx? { println("ok"); exit() }
--- stdout
ok
--- exit
0

=== optional_only_point_missing
--- script
probe zzqqxx? { println("never") } probe begin { println("ran"); exit() }
--- stdout
ran
--- exit
0

=== sufficient_point_stops
--- script
probe begin!, end { println(pp()) } probe begin(1) { exit() }
--- stdout
begin
--- exit
0

=== probe_condition_false
--- script
global on = 0
probe begin if (on) { println("no") } probe begin { println("yes"); exit() }
--- stdout
yes
--- exit
0

=== probe_condition_true
--- script
global on = 1
probe begin if (on) { println("cond") } probe begin(1) { exit() }
--- stdout
cond
--- exit
0

=== never_probe
--- script
probe never { println("x") } probe begin { println("begin"); exit() }
--- stdout
begin
--- exit
0

=== timer_ms_counting
--- script
global n
probe timer.ms(5) { n++; if (n == 3) exit() } probe end { println(n) }
--- stdout
3
--- exit
0

=== timer_us_counting
--- script
global n
probe timer.us(500) { if (++n == 4) exit() } probe end { println(n) }
--- stdout
4
--- exit
0

=== timer_s
--- script
probe timer.s(1) { println("tick"); exit() }
--- stdout
tick
--- exit
0

=== timer_randomize
--- script
global n
probe timer.ms(5).randomize(2) { if (++n == 2) exit() } probe end { println(n) }
--- stdout
2
--- exit
0

=== time_limit_option
--- script
probe end { println("end ran") }
--- opts
-T 1
--- stdout
end ran
--- exit
0

=== error_runs_error_probe_not_end
--- script
probe begin { error("boom") } probe error { println("in error probe") } probe end { println("end") }
--- stdout
in error probe
--- stderr
ERROR: boom near identifier 'error' at <input>:1:15
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1

=== division_by_zero_stops_session
--- script
probe begin { x = 0; println(1 / x) } probe end { println("end") }
--- stderr
ERROR: division by 0 near operator '/' at <input>:1:32
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1

=== maxerrors_lets_session_continue
--- script
global n
probe timer.ms(2) { n++; if (n <= 2) error(sprintf("e%d", n)); else exit() }
probe end { println("end ", n) }
--- opts
-D MAXERRORS=2
--- stdout
end 3
--- stderr
ERROR: e1 near identifier 'error' at <input>:2:38
ERROR: e2 near identifier 'error' at <input>:2:38
WARNING: Number of errors: 2, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1

=== maxaction_exceeded
--- script
global n
probe begin { for (i = 0; i < 100; i++) n++ } probe end { println("end") }
--- opts
-D MAXACTION=10
--- stderr-re
ERROR: MAXACTION exceeded near [^\n]* at <input>:2:\d+\nWARNING: Number of errors: 1, skipped probes: 0\nPass 5: run failed\.  \[man error::pass5\]\n
--- exit
1

=== maxnesting_exceeded
--- script
function r(n) { return n ? r(n - 1) : 0 }
probe begin { r(100) } probe end { println("end") }
--- opts
-D MAXNESTING=5
--- stderr-re
ERROR: MAXNESTING exceeded near [^\n]*\nWARNING: Number of errors: 1, skipped probes: 0\nPass 5: run failed\.  \[man error::pass5\]\n
--- exit
1

=== abort_still_runs_end
--- script
probe begin { println("before"); abort(); println("not reached") } probe end { println("end") }
--- stdout
before
end
--- exit
0

=== warn_message
--- script
probe begin { warn("careful"); exit() }
--- stderr
WARNING: careful
--- exit
0

=== exit_then_end_output
--- script
probe begin { print("a"); exit(); print("b") } probe end { print("c\n") }
--- stdout
abc
--- exit
0
