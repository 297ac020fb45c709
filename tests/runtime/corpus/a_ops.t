# Integer literals, arithmetic, operators and their precedence (helper a).
=== a_int_literal_bases
--- script
probe begin { printf("%d %d %d %d %d\n", 42, 0x2a, 0X2A, 052, 0); exit() }
--- stdout
42 42 42 42 0
=== a_int_literal_limits
--- script
probe begin {
  printf("%d\n", 9223372036854775807)
  printf("%d\n", -9223372036854775808)
  printf("%d\n", 0x7fffffffffffffff)
  printf("%d\n", 0x8000000000000000)
  printf("%d\n", 0xffffffffffffffff)
  printf("%d\n", 18446744073709551615)
  printf("%d\n", 01777777777777777777777)
  exit()
}
--- stdout
9223372036854775807
-9223372036854775808
9223372036854775807
-9223372036854775808
-1
-1
-1
=== a_wrap_add_sub
--- script
probe begin {
  x = 9223372036854775807
  y = x + 1
  printf("%d %d\n", y, y - 1)
  z = -x - 2
  printf("%d\n", z)
  exit()
}
--- stdout
-9223372036854775808 9223372036854775807
9223372036854775807
=== a_wrap_mul_neg
--- script
probe begin {
  big = 0x100000000
  m = -9223372036854775808
  printf("%d %d %d\n", big * big, big * 3, -m)
  printf("%d\n", 3037000500 * 3037000500)
  exit()
}
--- stdout
0 12884901888 -9223372036854775808
-9223372036709301616
=== a_div_mod_truncate
--- script
probe begin {
  printf("%d %d %d %d\n", 7 / 2, -7 / 2, 7 / -2, -7 / -2)
  printf("%d %d %d %d\n", 7 % 3, -7 % 3, 7 % -3, -7 % -3)
  exit()
}
--- stdout
3 -3 -3 3
1 -1 1 -1
=== a_div_min_by_minus_one
--- script
probe begin {
  m = -9223372036854775808
  d = -1
  printf("%d %d\n", m / d, m % d)
  exit()
}
--- stdout
-9223372036854775808 0
=== a_div_by_zero_error
--- script
probe begin {
  x = 0
  printf("%d\n", 10 / x)
}
probe end { println("not reached") }
--- stderr
ERROR: division by 0 near operator '/' at <input>:3:21
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1
=== a_mod_by_zero_error
--- script
probe begin { z = 0; y = 5 % z; println(y) }
--- stderr
ERROR: division by 0 near operator '%' at <input>:1:28
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1
=== a_shift_basic
--- script
probe begin {
  printf("%d %d %d\n", 1 << 4, 256 >> 4, -16 >> 2)
  printf("%d %d\n", 1 << 62, 1 << 63)
  exit()
}
--- stdout
16 16 -4
4611686018427387904 -9223372036854775808
=== a_shift_count_masked
--- script
probe begin {
  n = 64
  printf("%d %d %d\n", 1 << n, 1 << (n + 1), 256 >> (n + 4))
  m = -1
  printf("%d %d\n", 1 << m, 4 >> m)
  exit()
}
--- stdout
1 2 16
-9223372036854775808 0
=== a_shift_logical_right
--- script
probe begin {
  printf("%d %d %d\n", -1 >>> 60, -16 >>> 2, -1 >>> 0)
  printf("%d %d\n", -1 >> 60, 64 >>> 3)
  printf("%d\n", -9223372036854775808 >>> 63)
  exit()
}
--- stdout
15 4611686018427387900 -1
-1 8
1
=== a_bitwise_ops
--- script
probe begin {
  printf("%d %d %d %d %d %d\n", 12 & 10, 12 | 10, 12 ^ 10, ~0, ~5, ~-1)
  exit()
}
--- stdout
8 14 6 -1 -6 0
=== a_prec_mul_add
--- script
probe begin {
  printf("%d %d %d %d %d %d\n", 2 + 3 * 4, (2 + 3) * 4, 10 - 4 - 3, 100 / 10 / 5, 2 * 7 % 4, 20 - 6 / 2)
  exit()
}
--- stdout
14 20 3 2 2 17
=== a_prec_shift_below_add
--- script
probe begin {
  printf("%d %d %d\n", 1 << 2 + 1, 64 >> 1 + 1, 1 + 1 << 3)
  exit()
}
--- stdout
8 16 16
=== a_prec_comparisons_one_level
--- script
probe begin {
  printf("%d %d %d\n", 3 > 2 > 1, 5 > 3 == 2 > 1, 1 < 2 == 1)
  printf("%d %d\n", 2 == 2 != 0, 1 != 2 < 3)
  exit()
}
--- stdout
0 0 1
1 1
=== a_prec_shift_above_comparison
--- script
probe begin {
  printf("%d %d\n", 1 << 2 > 3, 8 >> 1 == 4)
  exit()
}
--- stdout
1 1
=== a_prec_bitwise_levels
--- script
probe begin {
  printf("%d %d %d\n", 6 & 3 == 3, 1 | 2 ^ 3 & 5, 4 | 1 == 1)
  printf("%d %d\n", 12 ^ 10 & 6, 8 | 4 ^ 4)
  exit()
}
--- stdout
0 3 5
14 8
=== a_prec_unary
--- script
probe begin {
  printf("%d %d %d %d\n", !0 + 1, !5 == 0, !(5 == 0), !!7)
  printf("%d %d %d\n", - -3, -2 * -3, ~1 + 1)
  exit()
}
--- stdout
2 1 1 1
3 6 -1
=== a_logical_ops
--- script
probe begin {
  printf("%d %d %d %d\n", 0 || 2, 3 && 4, 0 && 1, 0 || 0)
  printf("%d %d\n", 1 || 0 && 0, 0 && 0 || 1)
  exit()
}
--- stdout
1 1 0 0
1 1
=== a_logical_short_circuit
--- script
function side(v) { printf("side(%d) ", v); return v }
probe begin {
  z = 0
  a = 0 && 10 / z
  b = 1 || 10 / z
  c = side(0) && side(1)
  d = side(1) || side(2)
  e = side(1) && side(2)
  printf("\n%d %d %d %d %d\n", a, b, c, d, e)
  exit()
}
--- stdout
side(0) side(1) side(1) side(2) 
0 1 0 1 1
=== a_ternary_basic
--- script
probe begin {
  x = 5
  println(x > 3 ? "big" : "small")
  println(x > 9 ? "big" : "small")
  printf("%d\n", x ? 10 : 20)
  exit()
}
--- stdout
big
small
10
=== a_ternary_right_assoc_and_precedence
--- script
probe begin {
  printf("%d %d\n", 0 ? 1 : 0 ? 2 : 3, 1 ? 1 : 0 ? 2 : 3)
  printf("%d %d\n", 1 || 0 ? 10 : 20, 0 && 1 ? 10 : 20)
  y = 0 ? 4 : 5
  printf("%d\n", y + 1)
  exit()
}
--- stdout
3 1
10 20
6
=== a_ternary_evaluates_one_branch
--- script
probe begin {
  z = 0
  printf("%d\n", z ? 1 / z : 7)
  exit()
}
--- stdout
7
=== a_incdec_pre_post
--- script
probe begin {
  x = 5
  printf("%d %d %d %d\n", x++, x, ++x, x)
  printf("%d %d %d %d\n", x--, x, --x, x)
  exit()
}
--- stdout
5 6 7 7
7 6 5 5
=== a_incdec_array_element
--- script
global a
probe begin {
  a["k"]++
  a["k"]++
  ++a["j"]
  printf("%d %d %d\n", a["k"], a["j"]--, a["j"])
  exit()
}
--- stdout
2 1 0
=== a_compound_assignment
--- script
probe begin {
  x = 10
  x += 5; printf("%d ", x)
  x -= 3; printf("%d ", x)
  x *= 2; printf("%d ", x)
  x /= 5; printf("%d ", x)
  x %= 3; printf("%d ", x)
  x <<= 4; printf("%d ", x)
  x >>= 2; printf("%d ", x)
  x |= 3; printf("%d ", x)
  x &= 5; printf("%d ", x)
  x ^= 1; printf("%d\n", x)
  exit()
}
--- stdout
15 12 24 4 1 16 4 7 5 4
=== a_assignment_is_expression_right_assoc
--- script
probe begin {
  a = b = c = 7
  printf("%d %d %d\n", a, b, c)
  d = (a += 3) * 2
  printf("%d %d\n", a, d)
  exit()
}
--- stdout
7 7 7
10 20
=== a_compound_division_by_zero
--- script
probe begin {
  x = 10
  y = 0
  x /= y
}
--- stderr
ERROR: division by 0 near operator '/=' at <input>:4:5
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1
