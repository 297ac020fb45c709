# Pass-1 diagnostics, laid out as SystemTap's session.cxx build_error_msg prints
# them: "saw:" for an unexpected token, "at:" when the error names its token or
# the lexer produced junk; string tokens print without their quotes.

=== binary_op_missing_operand
--- script
probe begin { x = 1 +; }
--- stderr
parse error: expected literal string or number
        saw: operator ';' at <input>:1:22
     source: probe begin { x = 1 +; }
                                  ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== block_unclosed_at_eof
--- script
probe begin { x = 1
--- stderr
parse error: expected statement
        saw: <input> EOF

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== if_missing_rparen
--- script
probe begin { if (1 { } }
--- stderr
parse error: expected ')'
        saw: operator '{' at <input>:1:21
     source: probe begin { if (1 { } }
                                 ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== while_missing_rparen
--- script
probe begin { while (1 { } }
--- stderr
parse error: expected ')'
        saw: operator '{' at <input>:1:24
     source: probe begin { while (1 { } }
                                    ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== paren_expr_unclosed
--- script
probe begin { x = (1 + 2 }
--- stderr
parse error: expected ')'
        saw: operator '}' at <input>:1:26
     source: probe begin { x = (1 + 2 }
                                      ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== for_missing_first_semicolon
--- script
probe begin { for (i = 0 i < 3; i++) {} }
--- stderr
parse error: expected ';'
        saw: identifier 'i' at <input>:1:26
     source: probe begin { for (i = 0 i < 3; i++) {} }
                                      ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== for_missing_second_semicolon
--- script
probe begin { for (i = 0; i < 3 i++) {} }
--- stderr
parse error: expected ';'
        saw: identifier 'i' at <input>:1:33
     source: probe begin { for (i = 0; i < 3 i++) {} }
                                             ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== print_missing_rparen
--- script
probe begin { print(1 }
--- stderr
parse error: expected one of ', )'
        saw: operator '}' at <input>:1:23
     source: probe begin { print(1 }
                                   ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== print_adjacent_strings_then_number
--- script
probe begin { print("a" "b" 3 }
--- stderr
parse error: expected one of ', )'
        saw: number '3' at <input>:1:29
     source: probe begin { print("a" "b" 3 }
                                         ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== call_missing_rparen
--- script
function f(x) { return x } probe begin { f(1 }
--- stderr
parse error: expected one of ') ,'
        saw: operator '}' at <input>:1:46
     source: function f(x) { return x } probe begin { f(1 }
                                                          ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== index_missing_rbracket
--- script
global a; probe begin { a[1 2] = 3 }
--- stderr
parse error: expected one of '] ,'
        saw: number '2' at <input>:1:29
     source: global a; probe begin { a[1 2] = 3 }
                                         ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== string_unclosed
--- script
probe begin { x = "abc }
--- stderr
parse error: Could not find matching closing quote
         at: junk '"abc }' at <input>:1:19
     source: probe begin { x = "abc }
                               ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== string_does_not_span_lines
--- script
probe begin {
  x = "ab
cd"; exit() }
--- stderr
parse error: Could not find matching closing quote
         at: junk '"ab' at <input>:2:7
     source:   x = "ab
                   ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== string_token_printed_without_quotes
--- script
probe begin { x = 1 "a" + }
--- stderr
parse error: expected literal string or number
        saw: operator '}' at <input>:1:27
     source: probe begin { x = 1 "a" + }
                                       ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== unknown_character_is_junk
--- script
probe begin { x = 1 ` }
--- stderr
parse error: expected statement
        saw: junk '\x60' at <input>:1:21
     source: probe begin { x = 1 ` }
                                 ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== dollar_arg_missing
--- script
probe begin { print($1) }
--- stderr
parse error: command line argument out of range [1-0]
         at: junk '$1' at <input>:1:21
     source: probe begin { print($1) }
                                 ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== at_arg_out_of_range
--- script
probe begin { print(@2) }
--- args
one
--- stderr
parse error: command line argument out of range [1-1]
         at: junk '@2' at <input>:1:21
     source: probe begin { print(@2) }
                                 ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== dollar_zero_out_of_range
--- script
probe begin { print($0) }
--- args
a b
--- stderr
parse error: command line argument out of range [1-2]
         at: junk '$0' at <input>:1:21
     source: probe begin { print($0) }
                                 ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== embedded_c_needs_guru
--- script
%{ int x; %}
probe begin { }
--- stderr
parse error: embedded code in unprivileged script; need stap -g
        saw: embedded-code at <input>:1:1
     source: %{ int x; %}
             ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== embedded_expression_needs_guru
--- script
probe begin { x = %{ 1 %} }
--- stderr
parse error: embedded expression code in unprivileged script; need stap -g
        saw: embedded-code at <input>:1:19
     source: probe begin { x = %{ 1 %} }
                               ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== embedded_c_unclosed
--- script
%{ int x;
probe begin { }
--- stderr
parse error: Could not find matching '%}' to close embedded function block
         at: junk '%{ int x;?probe begin { ' at <input>:1:1
     source: %{ int x;
             ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== array_size_zero
--- script
global a[0]
--- stderr
parse error: array size out of range
        saw: number '0' at <input>:1:10
     source: global a[0]
                      ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== array_size_too_big
--- script
global a[2147483648]
--- stderr
parse error: array size out of range
        saw: number '2147483648' at <input>:1:10
     source: global a[2147483648]
                      ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== array_size_not_number
--- script
global a[x]
--- stderr
parse error: expected number
        saw: identifier 'x' at <input>:1:10
     source: global a[x]
                      ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== duplicate_global
--- script
global x; global x
--- stderr
parse error: duplicate global name
        saw: identifier 'x' at <input>:1:18
     source: global x; global x
                              ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== global_needs_identifier
--- script
global 5
--- stderr
parse error: expected identifier
        saw: number '5' at <input>:1:8
     source: global 5
                    ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== duplicate_parameter
--- script
function f(a, a) { } probe begin { exit() }
--- stderr
parse error: duplicate parameter names
        saw: identifier 'a' at <input>:1:15
     source: function f(a, a) { } probe begin { exit() }
                           ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== return_outside_function
--- script
probe begin { return 1 }
--- stderr
parse error: found 'return' not in function context
        saw: keyword at <input>:1:15
     source: probe begin { return 1 }
                           ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== number_out_of_range
--- script
probe begin { x = 99999999999999999999 }
--- stderr
parse error: number invalid or out of range
        saw: number '99999999999999999999' at <input>:1:19
     source: probe begin { x = 99999999999999999999 }
                               ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== number_with_letters
--- script
probe begin { x = 12abc }
--- stderr
parse error: number invalid or out of range
        saw: number '12abc' at <input>:1:19
     source: probe begin { x = 12abc }
                               ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== foreach_two_sort_directives
--- script
probe begin { foreach (k+ in a-) {} }
--- stderr
parse error: multiple sort directives
        saw: operator '-' at <input>:1:31
     source: probe begin { foreach (k+ in a-) {} }
                                           ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== foreach_two_key_sorts
--- script
probe begin { foreach ([a+,b-] in x) {} }
--- stderr
parse error: multiple sort directives
        saw: operator '-' at <input>:1:29
     source: probe begin { foreach ([a+,b-] in x) {} }
                                         ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== foreach_value_and_array_sort
--- script
probe begin { foreach (v+ = [a] in x-) {} }
--- stderr
parse error: multiple sort directives
        saw: operator '-' at <input>:1:37
     source: probe begin { foreach (v+ = [a] in x-) {} }
                                                 ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== foreach_limit_without_value
--- script
probe begin { foreach (k in a limit) {} }
--- stderr
parse error: expected literal string or number
        saw: operator ')' at <input>:1:36
     source: probe begin { foreach (k in a limit) {} }
                                                ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== foreach_missing_in
--- script
probe begin { foreach (k a) {} }
--- stderr
parse error: expected 'in'
        saw: identifier 'a' at <input>:1:26
     source: probe begin { foreach (k a) {} }
                                      ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== foreach_bad_key_list
--- script
probe begin { foreach ([a b] in x) {} }
--- stderr
parse error: expected ',' or ']'
        saw: identifier 'b' at <input>:1:27
     source: probe begin { foreach ([a b] in x) {} }
                                       ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== probe_point_bad_component
--- script
probe begin.{ }
--- stderr
parse error: expected identifier or '*' or '{'
        saw: operator '}' at <input>:1:15
     source: probe begin.{ }
                           ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== alias_name_optional
--- script
probe foo? = begin { }
--- stderr
parse error: probe point alias name cannot be optional nor sufficient
         at: identifier 'foo' at <input>:1:7
     source: probe foo? = begin { }
                   ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== probe_points_need_comma
--- script
probe begin end { }
--- stderr
parse error: expected one of ', { } = +='
        saw: identifier 'end' at <input>:1:13
     source: probe begin end { }
                         ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== probe_point_optional_twice
--- script
probe begin?? { }
--- stderr
parse error: expected one of ', { } = +='
        saw: operator '?' at <input>:1:13
     source: probe begin?? { }
                         ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== probe_condition_unclosed
--- script
probe begin if (1 { }
--- stderr
parse error: expected ')'
        saw: operator '{' at <input>:1:19
     source: probe begin if (1 { }
                               ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== toplevel_junk_identifier
--- script
probe begin { x = 1 } junk
--- stderr
parse error: expected 'probe', 'global', 'private', 'function', or '%{'
        saw: identifier 'junk' at <input>:1:23
     source: probe begin { x = 1 } junk
                                   ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== pp_then_without_if
--- script
probe begin { %? }
--- stderr
parse error: incomplete conditional - missing '%('
         at: operator '%?' at <input>:1:15
     source: probe begin { %? }
                           ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== pp_close_without_if
--- script
probe begin { } %)
--- stderr
parse error: incomplete conditional - missing '%('
         at: operator '%)' at <input>:1:17
     source: probe begin { } %)
                             ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== pp_unterminated
--- script
%( arch == "x86_64" %? probe begin { }
--- stderr
parse error: incomplete conditional at end of file
         at: operator '%(' at <input>:1:1
     source: %( arch == "x86_64" %? probe begin { }
             ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== pp_number_vs_string
--- script
%( 1 == "a" probe begin { }
--- stderr
parse error: expected number literal as right value
         at: string 'a' at <input>:1:9
     source: %( 1 == "a" probe begin { }
                     ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== pp_kernel_v_needs_string
--- script
%( kernel_v >= 3 probe begin { }
--- stderr
parse error: expected string literal
         at: number '3' at <input>:1:16
     source: %( kernel_v >= 3 probe begin { }
                            ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1

=== two_errors_recovered
--- script
probe begin { x = 1; } probe end { y = (2 }
probe end { z = 3 + }
--- stderr
parse error: expected ')'
        saw: operator '}' at <input>:1:43
     source: probe begin { x = 1; } probe end { y = (2 }
                                                       ^

parse error: expected literal string or number
        saw: operator '}' at <input>:2:21
     source: probe end { z = 3 + }
                                 ^

2 parse errors.
Pass 1: parse failed.  [man error::pass1]
--- exit
1
