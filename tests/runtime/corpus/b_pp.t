# Preprocessor conditionals, @define macros and command-line argument pasting
# ($N as tokens, @N as a string literal, $#/@# the count).  The host is x86_64.

=== arch_conditional
--- script
probe begin { print(%( arch == "x86_64" %? "x86" %: "other" %)); exit() }
--- stdout!
x86
--- exit
0

=== arch_glob
--- script
probe begin { print(%( arch == "x86_*" %? "glob" %: "no" %)); exit() }
--- stdout!
glob
--- exit
0

=== arch_not_equal
--- script
probe begin { print(%( arch != "s390" %? "not s390" %: "s390" %)); exit() }
--- stdout!
not s390
--- exit
0

=== kernel_v_compare
--- script
probe begin { print(%( kernel_v >= "2.6.0" %? "new" %: "old" %)); exit() }
--- stdout!
new
--- exit
0

=== kernel_v_compare_false
--- script
probe begin { print(%( kernel_v < "2.6" %? "old" %: "new" %)); exit() }
--- stdout!
new
--- exit
0

=== systemtap_v_compare
--- script
probe begin { print(%( systemtap_v >= "1.0" %? "modern" %: "ancient" %)); exit() }
--- stdout!
modern
--- exit
0

=== runtime_not_bpf
--- script
probe begin { print(%( runtime != "bpf" %? "not bpf" %: "bpf" %)); exit() }
--- stdout!
not bpf
--- exit
0

=== guru_mode_off
--- script
probe begin { print(%( guru_mode == 0 %? "plain" %: "guru" %)); exit() }
--- stdout!
plain
--- exit
0

=== guru_mode_on
--- script
probe begin { print(%( guru_mode == 1 %? "guru" %: "plain" %)); exit() }
--- opts
-g
--- stdout!
guru
--- exit
0

=== numeric_conditional
--- script
probe begin { print(%( 3 > 2 %? "gt" %: "le" %)); exit() }
--- stdout!
gt
--- exit
0

=== string_conditional
--- script
probe begin { print(%( "abc" < "abd" %? "less" %: "more" %)); exit() }
--- stdout!
less
--- exit
0

=== nested_conditionals
--- script
probe begin { print(%( 1 == 1 %? %( 2 == 3 %? "a" %: "b" %) %: "c" %)); exit() }
--- stdout!
b
--- exit
0

=== and_conditional
--- script
probe begin { print(%( 1 == 1 && 2 == 3 %? "t" %: "f" %)); exit() }
--- stdout!
f
--- exit
0

=== or_conditional
--- script
probe begin { print(%( 1 == 2 || 2 == 2 %? "t" %: "f" %)); exit() }
--- stdout!
t
--- exit
0

=== and_binds_tighter_than_or
--- script
probe begin { print(%( 1 == 2 && 1 == 1 || 3 == 3 %? "t" %: "f" %)); exit() }
--- stdout!
t
--- exit
0

=== conditional_without_else
--- script
probe begin { print("x" %( 1 == 2 %? . "a" %)); exit() }
--- stdout!
x
--- exit
0

=== skipped_branch_not_parsed
--- script
probe begin { print(%( 1 == 1 %? "kept" %: this is ) not ( valid %)); exit() }
--- stdout!
kept
--- exit
0

=== dollar_count
# $# and @# do not count as using the arguments (stap's lexer marks only $N/@N).
--- script
probe begin { printf("%d %s\n", $#, @#); exit() }
--- args
a b c
--- stdout
3 3
--- stderr
WARNING: unused command line option $1/@1
WARNING: unused command line option $2/@2
WARNING: unused command line option $3/@3
--- exit
0

=== dollar_count_zero
--- script
probe begin { printf("%d\n", $#); exit() }
--- stdout
0
--- exit
0

=== dollar_arg_pasted_as_tokens
--- script
probe begin { print($1 + 1); exit() }
--- args
'2*3'
--- stdout!
7
--- exit
0

=== dollar_arg_several_tokens
--- script
probe begin { printf("%d %d\n", $1); exit() }
--- args
'1, 2'
--- stdout
1 2
--- exit
0

=== dollar_arg_string_literal
--- script
probe begin { print($1); exit() }
--- args
'"quoted"'
--- stdout!
quoted
--- exit
0

=== at_arg_is_string
--- script
probe begin { print(@1 . "!"); exit() }
--- args
'hi there'
--- stdout!
hi there!
--- exit
0

=== at_arg_number_is_string
--- script
probe begin { print(@1 . "x"); exit() }
--- args
5
--- stdout!
5x
--- exit
0

=== at_arg_keeps_quotes
--- script
probe begin { print(@1); exit() }
--- args
'"q"'
--- stdout!
"q"
--- exit
0

=== define_without_params
--- script
@define N %( 10 %)
probe begin { print(@N * 2); exit() }
--- stdout!
20
--- exit
0

=== define_with_params
--- script
@define add(a,b) %( (@a + @b) %)
probe begin { print(@add(1, 2) * 3); exit() }
--- stdout!
9
--- exit
0

=== define_expanded_before_conditional
--- script
@define cond %( 1 == 1 %)
probe begin { print(%( @cond %? "y" %: "n" %)); exit() }
--- stdout!
y
--- exit
0

=== define_inside_conditional_branch
--- script
%( 1 == 1 %? @define V %( "then" %) %: @define V %( "else" %) %)
probe begin { print(@V); exit() }
--- stdout!
then
--- exit
0

=== conditional_selects_probe
--- script
%( arch == "nosuch" %? probe begin { print("wrong") } %: probe begin { print("right") } %)
probe begin { exit() }
--- stdout!
right
--- exit
0
