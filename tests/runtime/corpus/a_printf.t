# printf conversions, flags, width and precision; print* and sprint* (helper a).
=== a_printf_signed_unsigned
--- script
probe begin {
  printf("%d %i %d\n", 42, -42, -9223372036854775808)
  printf("%u %u\n", 42, -1)
  exit()
}
--- stdout
42 -42 -9223372036854775808
42 18446744073709551615
=== a_printf_octal_hex
--- script
probe begin {
  printf("%o %x %X %x\n", 8, 255, 255, 3054)
  printf("%x %o\n", -1, -1)
  exit()
}
--- stdout
10 ff FF bee
ffffffffffffffff 1777777777777777777777
=== a_printf_width
--- script
probe begin {
  printf("[%5d][%-5d][%2d][%8x][%-6o]\n", 42, 42, 12345, 255, 8)
  exit()
}
--- stdout
[   42][42   ][12345][      ff][10    ]
=== a_printf_zero_flag
--- script
probe begin {
  printf("[%05d][%05d][%08x][%03d]\n", 42, -42, 255, 12345)
  exit()
}
--- stdout
[00042][-0042][000000ff][12345]
=== a_printf_plus_space_flags
--- script
probe begin {
  printf("[%+d][%+d][% d][% d][%+5d][% 5d]\n", 42, -42, 42, -42, 7, 7)
  printf("[%+u][% x]\n", 5, 255)
  exit()
}
--- stdout
[+42][-42][ 42][-42][   +7][    7]
[5][ff]
=== a_printf_alternate_flag
--- script
probe begin {
  printf("[%#o][%#x][%#X][%#x][%#o]\n", 1, 2, 3, 0, 0)
  printf("[%#8x][%#o][%#X]\n", 255, 8, 48879)
  exit()
}
--- stdout
[01][0x2][0X3][0x0][00]
[    0xff][010][0XBEEF]
=== a_printf_one_flag_only
--- script
probe begin {
  printf("[%+05d][%-05d][%#08x]\n", 42, 42, 255)
  exit()
}
--- stdout
[  +42][42   ][    0xff]
=== a_printf_integer_precision
--- script
probe begin {
  printf("[%.5d][%8.5d][%-8.3d][%.3x][%.2d]\n", 42, 42, 7, 10, 12345)
  printf("[%.4d][%+.3d]\n", -5, 5)
  exit()
}
--- stdout
[00042][   00042][007     ][00a][12345]
[-0005][+005]
=== a_printf_string_width_precision
--- script
probe begin {
  s = "abcdef"
  printf("[%s][%10s][%-10s][%.3s][%5.2s][%-5.2s][%3s]\n", s, s, s, s, s, s, s)
  printf("[%s][%4s]\n", "", "")
  exit()
}
--- stdout
[abcdef][    abcdef][abcdef    ][abc][   ab][ab   ][abcdef]
[][    ]
=== a_printf_hash_s_is_plain_s
--- script
probe begin {
  printf("[%#s][%#6s]\n", "ab", "ab")
  exit()
}
--- stdout
[ab][    ab]
=== a_printf_char
--- script
probe begin {
  printf("%c%c%c%c\n", 115, 116, 97, 112)
  printf("[%3c][%-3c][%c]\n", 65, 66, 0x141)
  exit()
}
--- stdout
stap
[  A][B  ][A]
=== a_printf_char_escaped
--- script
probe begin {
  printf("[%#c][%#c][%#c][%#c][%#c][%#c]\n", 10, 9, 39, 92, 1, 65)
  exit()
}
--- stdout
[\n][\t][\'][\\][\001][A]
=== a_printf_pointer
--- script
probe begin {
  printf("%p %p %p\n", 0, 1, 0x12345678abcdef00)
  printf("[%20p][%-20p]\n", 255, 255)
  printf("[%.8p][%12.8p]\n", 1, 255)
  exit()
}
--- stdout
0x0 0x1 0x12345678abcdef00
[                0xff][0xff                ]
[0x00000001][  0x000000ff]
=== a_printf_percent
--- script
probe begin {
  printf("100%%\n")
  printf("%d%%%s\n", 5, "x")
  exit()
}
--- stdout
100%
5%x
=== a_printf_dynamic_width_precision
--- script
probe begin {
  printf("[%*d][%.*s][%*.*d]\n", 6, 42, 2, "abcdef", 8, 4, 42)
  w = 5
  printf("[%-*s][%*s]\n", w, "ab", w, "cd")
  exit()
}
--- stdout
[    42][ab][    0042]
[ab   ][   cd]
=== a_printf_binary
--- script
probe begin {
  printf("%1b", 0x41)
  printf("%2b", 0x4342)
  printf("%4b", 0x47464544)
  printf("%b", 0x4f4e4d4c4b4a4948)
  printf("\n")
  exit()
}
--- stdout
ABCDEFGHIJKLMNO
=== a_printf_memory_dump_too_large
--- script
probe begin { printf("%.5000m", 0) }
--- stderr
ERROR: 5000 is too many bytes for a memory dump near identifier 'printf' at <input>:1:15
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1
=== a_printf_memory_dynamic_too_large
--- script
probe begin {
  n = 9000
  printf("%.*M", n, 0)
}
--- stderr
ERROR: 9000 is too many bytes for a memory dump near identifier 'n' at <input>:3:18
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1
=== a_print_println
--- script
probe begin {
  print(1)
  print("a", 2, "b")
  println()
  println(-5)
  println("x", 7, "y")
  exit()
}
--- stdout
1a2b
-5
x7y
=== a_printd_printdln
--- script
probe begin {
  printd(", ", 1, "a", 2)
  printd("|", "x", "y")
  printdln("-", 3, 4, "z")
  printdln("::", "only", 5)
  exit()
}
--- stdout
1, a, 2x|y3-4-z
only::5
=== a_printd_needs_two_values
# stap's parser wants two values after the delimiter: it takes the ')' as a
# separator, parses the next statement as the second value, then wants ', )'.
--- script
probe begin {
  printd(", ", 1, "a", 2)
  printd("|", "x")
  printdln("-", 3, 4, "z")
  printdln("::", "only")
  exit()
}
--- stderr
parse error: expected one of ', )'
        saw: identifier 'printdln' at <input>:5:3
     source:   printdln("::", "only")
               ^

1 parse error.
Pass 1: parse failed.  [man error::pass1]
--- exit
1
=== a_sprint_family
--- script
probe begin {
  a = sprint(12, "ab", -3)
  b = sprintln("q", 1)
  c = sprintd("/", 1, "two", 3)
  d = sprintdln(",", "x", "y")
  printf("[%s][%s][%s][%s]\n", a, b, c, d)
  exit()
}
--- stdout
[12ab-3][q1
][1/two/3][x,y
]
=== a_sprintf_basic
--- script
probe begin {
  s = sprintf("%s=%d (%#x)", "n", 26, 26)
  println(s)
  printf("%d\n", strlen(sprintf("%10s", "")))
  exit()
}
--- stdout
n=26 (0x1a)
10
=== a_printf_no_trailing_newline
--- script
probe begin { printf("no newline"); exit() }
--- stdout!
no newline
=== a_printf_many_args
--- script
probe begin {
  printf("%d%d%d%d%d%d%d%d%d%d %s%s%s\n", 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, "a", "b", "c")
  exit()
}
--- stdout
1234567890 abc
