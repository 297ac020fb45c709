# Bad command lines (options are stap's; the runner always passes -e SCRIPT).

=== bad_define
--- script
probe begin { exit() }
--- opts
-D 1BAD=2
--- stderr-re
.*-D.*\n.*
--- exit
1

=== bad_pass_number
--- script
probe begin { exit() }
--- opts
-p9
--- stderr
Invalid pass number (should be 1-5).
--- exit
1

=== bad_timeout
--- script
probe begin { exit() }
--- opts
-T xyz
--- stderr
Invalid timeout interval.
--- exit
1

=== unknown_option
--- script
probe begin { exit() }
--- opts
--no-such-option
--- stderr-re
(?s).*unrecognized option.*no-such-option.*
--- exit
1

=== time_limit_fractional
--- script
probe end { println("stopped") }
--- opts
-T 0.5
--- stdout
stopped
--- exit
0
