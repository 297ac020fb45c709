"""`python -m utrace_py` runs the command line."""
from .cli import main

raise SystemExit(main())
