"""injector: ptrace and binary rewriting of a live process; knows nothing of the script language."""
