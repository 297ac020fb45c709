# Associative arrays: order, sorting, limit, membership, deletion, capacity (helper a).
=== a_array_insertion_order
--- script
global a
probe begin {
  a["zeta"] = 1; a["alpha"] = 2; a["mid"] = 3
  a["alpha"] = 20
  foreach (k in a) printf("%s=%d ", k, a[k])
  println("")
  exit()
}
--- stdout
zeta=1 alpha=20 mid=3 
=== a_array_reinsert_moves_to_end
--- script
global a
probe begin {
  a[3] = 30; a[1] = 10; a[2] = 20
  delete a[3]
  a[3] = 33
  foreach (k in a) printf("%d:%d ", k, a[k])
  println("")
  exit()
}
--- stdout
1:10 2:20 3:33 
=== a_array_foreach_value_var
--- script
global a
probe begin {
  a["x"] = 5; a["y"] = 7
  foreach (v = k in a) printf("%s->%d\n", k, v)
  exit()
}
--- stdout
x->5
y->7
=== a_array_multi_key
--- script
global a
probe begin {
  a[1, "one"] = 100
  a[2, "two"] = 200
  a[1, "uno"] = 101
  foreach ([n, s] in a) printf("%d %s %d\n", n, s, a[n, s])
  foreach (v = [n, s] in a) printf("%d/%s/%d ", n, s, v)
  println("")
  exit()
}
--- stdout
1 one 100
2 two 200
1 uno 101
1/one/100 2/two/200 1/uno/101 
=== a_array_sort_keys
--- script
global a, b
probe begin {
  a["pear"] = 1; a["apple"] = 2; a["fig"] = 3; a["Zoo"] = 4
  foreach (k+ in a) printf("%s ", k)
  println("")
  foreach (k- in a) printf("%s ", k)
  println("")
  b[10] = 1; b[-5] = 1; b[3] = 1; b[100] = 1
  foreach (n+ in b) printf("%d ", n)
  println("")
  foreach (n- in b) printf("%d ", n)
  println("")
  exit()
}
--- stdout
Zoo apple fig pear 
pear fig apple Zoo 
-5 3 10 100 
100 10 3 -5 
=== a_array_sort_values_stable
--- script
global a
probe begin {
  a["c"] = 2; a["a"] = 3; a["b"] = 1; a["d"] = 2; a["e"] = 1
  foreach (k in a+) printf("%s%d ", k, a[k])
  println("")
  foreach (k in a-) printf("%s%d ", k, a[k])
  println("")
  exit()
}
--- stdout
b1 e1 c2 d2 a3 
a3 c2 d2 b1 e1 
=== a_array_sort_value_var
--- script
global a
probe begin {
  a["x"] = 3; a["y"] = 1; a["z"] = 2
  foreach (v+ = k in a) printf("%s%d ", k, v)
  println("")
  foreach (v- = k in a) printf("%s%d ", k, v)
  println("")
  exit()
}
--- stdout
y1 z2 x3 
x3 z2 y1 
=== a_array_sort_string_values
--- script
global a
probe begin {
  a[1] = "pear"; a[2] = "apple"; a[3] = "fig"; a[4] = "apple"
  foreach (k in a+) printf("%d:%s ", k, a[k])
  println("")
  exit()
}
--- stdout
2:apple 4:apple 3:fig 1:pear 
=== a_array_sort_second_key_column
--- script
global a
probe begin {
  a["x", 3] = 1; a["y", 1] = 2; a["z", 2] = 3; a["w", 1] = 4
  foreach ([s, n+] in a) printf("%s%d ", s, n)
  println("")
  foreach ([s-, n] in a) printf("%s%d ", s, n)
  println("")
  exit()
}
--- stdout
y1 w1 z2 x3 
z2 y1 x3 w1 
=== a_array_foreach_limit
--- script
global a
probe begin {
  for (i = 1; i <= 6; i++) a[i] = i * i
  foreach (k in a- limit 2) printf("%d ", k)
  println("")
  n = 3
  foreach (k in a limit n + 1) printf("%d ", k)
  println("")
  foreach (k+ in a limit 0) printf("%d ", k)
  println("end")
  exit()
}
--- stdout
6 5 
1 2 3 4 
end
=== a_array_in_operator
--- script
global a, b
probe begin {
  a["x"] = 0
  b[1, "p"] = 5
  printf("%d %d %d\n", "x" in a, "y" in a, !("y" in a))
  printf("%d %d\n", [1, "p"] in b, [1, "q"] in b)
  k = 2
  printf("%d\n", [k - 1, "p"] in b)
  exit()
}
--- stdout
1 0 1
1 0
1
=== a_array_missing_key_not_created
--- script
global a, b
probe begin {
  a["x"] = 1
  b[2] = "two"
  printf("%d [%s]\n", a["nope"], b[7])
  n = 0
  foreach (k in a) n++
  foreach (j in b) n++
  printf("%d %d %d\n", n, "nope" in a, 7 in b)
  exit()
}
--- stdout
0 []
2 0 0
=== a_array_delete_element_and_all
--- script
global a
probe begin {
  a[1] = 1; a[2] = 2; a[3] = 3
  delete a[2]
  delete a[99]
  foreach (k in a) printf("%d ", k)
  println("")
  delete a
  n = 0
  foreach (k in a) n++
  printf("%d %d\n", n, a[1])
  a[5] = 5
  foreach (k in a) printf("%d\n", k)
  exit()
}
--- stdout
1 3 
0 0
5
=== a_array_wildcard_delete
--- script
global a
probe begin {
  a[1, 1] = 11; a[1, 2] = 12; a[2, 1] = 21; a[2, 2] = 22; a[3, 1] = 31
  printf("%d %d\n", [*, 1] in a, [*, 3] in a)
  delete a[*, 1]
  foreach ([x, y] in a) printf("%d%d ", x, y)
  println("")
  printf("%d %d\n", [*, 1] in a, [2, *] in a)
  delete a[2, *]
  foreach ([x, y] in a) printf("%d%d ", x, y)
  println("")
  exit()
}
--- stdout
1 0
12 22 
0 1
12 
=== a_array_slice_foreach
--- script
global a
probe begin {
  a["u", 1] = 1; a["v", 2] = 2; a["w", 1] = 3
  foreach ([s, n] in a[*, 1]) printf("%s ", s)
  println("")
  foreach ([s, n] in a["v", *]) printf("%s%d ", s, n)
  println("")
  exit()
}
--- stdout
u w 
v2 
=== a_array_size_limit_overflow
--- script
global a[3]
probe begin {
  for (i = 0; i < 4; i++)
    a[i] = i
}
probe end { foreach (k in a) println(k) }
--- stderr
ERROR: Array overflow, check size limit (3) near identifier 'a' at <input>:4:5
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1
=== a_array_size_limit_update_existing_ok
--- script
global a[2]
probe begin {
  a[1] = 1; a[2] = 2
  a[1] = 10; a[2] += 5
  foreach (k in a) printf("%d=%d ", k, a[k])
  println("")
  exit()
}
--- stdout
1=10 2=7 
=== a_array_maxmapentries_overflow
--- opts
-D MAXMAPENTRIES=4
--- script
global arr
probe begin {
  for (i = 0; i < 5; i++) {
    printf("%d ", i)
    arr[i] = i
  }
}
probe end { foreach (k in arr) println(k) }
--- stdout!
0 1 2 3 4 
--- stderr
ERROR: Array overflow, check MAXMAPENTRIES near identifier 'arr' at <input>:5:5
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1
=== a_array_stats_overflow
--- script
global s[2]
probe begin {
  s["a"] <<< 1; s["b"] <<< 2
  s["c"] <<< 3
}
probe end { foreach (k in s) println(k) }
--- stderr
ERROR: Array overflow, check size limit (2) near identifier 's' at <input>:4:3
WARNING: Number of errors: 1, skipped probes: 0
Pass 5: run failed.  [man error::pass5]
--- exit
1
=== a_array_wrapping
--- script
global a%[3]
probe begin {
  for (i = 1; i <= 5; i++) a[i] = i * 10
  foreach (k in a) printf("%d=%d ", k, a[k])
  println("")
  a[4] = 44
  a[6] = 60
  foreach (k in a) printf("%d=%d ", k, a[k])
  println("")
  exit()
}
--- stdout
3=30 4=40 5=50 
4=44 5=50 6=60 
=== a_array_wrapping_maxmapentries
--- opts
-D MAXMAPENTRIES=2
--- script
global w%
probe begin {
  w["a"] = 1; w["b"] = 2; w["c"] = 3
  foreach (k in w) printf("%s ", k)
  println("")
  exit()
}
--- stdout
b c 
=== a_array_string_values_and_concat
--- script
global names
probe begin {
  names[1] = "a"
  names[1] .= "b"
  names[2] = names[1] . "c"
  foreach (k+ in names) println(k, ":", names[k])
  exit()
}
--- stdout
1:ab
2:abc
=== a_array_foreach_empty
--- script
global a
probe begin {
  a[1] = 1
  delete a
  foreach (k in a) println("never")
  println("done")
  exit()
}
--- stdout
done
