"""The SystemTap-language tapset library, installed as package data (see utrace_py/paths.py)."""
