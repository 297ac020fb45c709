"""The C runtime's sources and ABI header, installed as package data (see utrace_py/paths.py)."""
