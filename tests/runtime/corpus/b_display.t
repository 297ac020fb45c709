# Globals written but never read are printed when the session ends
# (translate.cxx add_global_var_display), unless --no-global-var-display.

=== display_scalars
--- script
global x, s
probe begin { x = 5; s = "str"; exit() }
--- stdout
x=5
s="str"
--- exit
0

=== display_array_sorted_by_value
--- script
global a
probe begin { a["k",1] = 5; a["j",2] = 7; a["z",0] = 6; exit() }
--- stdout
a["j",2]=7
a["z",0]=6
a["k",1]=5
--- exit
0

=== display_stats
--- script
global st
probe begin { st <<< 3; st <<< 5; st <<< 10; exit() }
--- stdout
st @count=3 @min=3 @max=10 @sum=18 @avg=6
--- exit
0

=== display_empty_stats
--- script
global st
probe begin { if (0) st <<< 1; exit() }
--- stdout
st @count=0x0
--- exit
0

=== display_stat_array
--- script
global t
probe begin { t["a"] <<< 1; t["a"] <<< 3; t["b"] <<< 10; exit() }
--- stdout
t["a"] @count=2 @min=1 @max=3 @sum=4 @avg=2
t["b"] @count=1 @min=10 @max=10 @sum=10 @avg=10
--- exit
0

=== read_globals_not_displayed
--- script
global x, y
probe begin { x = 1; y = x; exit() }
--- stdout
y=1
--- exit
0

=== no_global_var_display
--- script
global x, a
probe begin { x = 5; a[1] = 2; exit() }
--- opts
--no-global-var-display
--- exit
0

=== display_after_end_output
--- script
global x
probe begin { x = 2; exit() } probe end { println("end") }
--- stdout
end
x=2
--- exit
0

=== display_empty_array_prints_nothing
--- script
global a
probe begin { if (0) a[1] = 1; exit() }
--- exit
0

=== display_negative_and_string_key
--- script
global a
probe begin { a["x"] = -3; exit() }
--- stdout
a["x"]=-3
--- exit
0
