# Strings: concatenation, comparison, regular expressions, escapes, MAXSTRINGLEN (helper a).
=== a_concat_chain
--- script
probe begin {
  s = "ab" . "cd" . "ef"
  println(s)
  t = s . "-" . sprint(42)
  println(t)
  exit()
}
--- stdout
abcdef
abcdef-42
=== a_concat_assign
--- script
probe begin {
  s = "x"
  s .= "y"
  s .= s
  u = (s .= "!")
  println(s, " ", u)
  exit()
}
--- stdout
xyxy! xyxy!
=== a_concat_binds_tighter_than_comparison
--- script
probe begin {
  printf("%d %d\n", "a" . "b" == "ab", "b" < "a" . "c")
  exit()
}
--- stdout
1 0
=== a_adjacent_literals
--- script
probe begin {
  s = "foo" "bar"   "baz"
  println(s)
  printf("%s-" "%d\n", "x", 5)
  exit()
}
--- stdout
foobarbaz
x-5
=== a_string_comparisons
--- script
probe begin {
  printf("%d %d %d %d\n", "abc" < "abd", "abc" == "abc", "b" > "abc", "" < "a")
  printf("%d %d %d %d\n", "B" < "a", "abc" != "ABC", "ab" >= "abc", "ab" <= "ab")
  exit()
}
--- stdout
1 1 1 1
1 1 0 1
=== a_string_empty_default
--- script
global s
probe begin {
  printf("[%s] %d\n", s, s == "")
  exit()
}
--- stdout
[] 1
=== a_regex_match
--- script
probe begin {
  printf("%d %d %d\n", "hello" =~ "^h.*o$", "hello" =~ "ll", "abc" =~ "^[0-9]+$")
  printf("%d %d %d\n", "foobaz" =~ "(foo|bar)baz", "aab" =~ "a{2}", "ab" =~ "a{2}")
  printf("%d %d\n", "hello" !~ "z", "hello" !~ "e")
  exit()
}
--- stdout
1 1 0
1 1 0
1 0
=== a_regex_in_condition
--- script
probe begin {
  s = "key=value"
  if (s =~ "^[a-z]+=[a-z]+$") println("kv")
  if (s !~ "[0-9]") println("nodigits")
  exit()
}
--- stdout
kv
nodigits
=== a_escape_sequences
--- script
probe begin {
  printf("a\tb\\c\"d\n")
  println("\101\x42\103")
  printf("%d\n", strlen("\a\b\f\v\r\n\t"))
  exit()
}
--- stdout
a	b\c"d
ABC
7
=== a_string_truncated_at_511
--- script
probe begin {
  s = "0123456789"
  for (i = 0; i < 6; i++) s = s . s
  printf("%d %s\n", strlen(s), substr(s, 505, 20))
  exit()
}
--- stdout
511 567890
=== a_string_maxstringlen_option
--- opts
-D MAXSTRINGLEN=16
--- script
probe begin {
  s = "abcdefghijklmnopqrstuvwxyz"
  println(s)
  t = sprintf("%s%s", s, s)
  printf("%d %s\n", strlen(t), t)
  u = "0123456789" . "0123456789"
  println(u)
  exit()
}
--- stdout
abcdefghijklmno
15 abcdefghijklmno
012345678901234
=== a_sprintf_truncated
--- script
probe begin {
  s = sprintf("%600d", 7)
  printf("%d\n", strlen(s))
  exit()
}
--- stdout
511
=== a_string_functions_basic
--- script
probe begin {
  s = "hello world"
  printf("%d %s %d %d\n", strlen(s), substr(s, 6, 5), isinstr(s, "lo w"), stringat(s, 4))
  println(toupper(s), " ", str_replace(s, "o", "0"))
  exit()
}
--- stdout
11 world 1 111
HELLO WORLD hell0 w0rld
