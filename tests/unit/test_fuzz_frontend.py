"""Property tests: passes 1-2 turn any input into a diagnostic or a program, never a traceback."""
from __future__ import annotations

import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from utrace_py.diag import ScriptError
from utrace_py.elaborate import elaborate
from utrace_py.lang.parser import parse_text
from utrace_py.lang.preprocess import PPContext
from utrace_py.tapset_loader import TapsetLibrary, tapset_dirs
from utrace_py.translate.emit import Translator

sys.setrecursionlimit(20000)  # what parse_text sets; done first so hypothesis keeps it

PP = PPContext()
LIB = TapsetLibrary(tapset_dirs([]), PP)

TOKENS = ["probe", "begin", "end", "timer", ".", "ms", "(", ")", "{", "}", "[", "]", ";", ",",
          "global", "function", "if", "else", "for", "foreach", "in", "while", "return", "delete",
          "next", "break", "continue", "try", "catch", "limit", "x", "y", "a", "s", "f", "=", "==",
          "+", "-", "*", "/", "%", "<<<", "<<", ">>", ".", "!", "~", "&&", "||", "?", ":", "++",
          "--", "+=", ".=", "=~", "\"str\"", "\"%d\\n\"", "0", "1", "42", "0x10", "printf",
          "print", "println", "sprintf", "@count", "@sum", "@avg", "@hist_log", "@hist_linear",
          "@variance", "exit", "strlen", "$1", "@1", "$#", "%(", "%?", "%:", "%)", "arch",
          "\"x86_64\"", "@define", "@m", "->", "$var", "&", "|", "^", ":long", ":string", "?", "!",
          "*", "string", "long", "private", "%{", "%}"]


def front_end(text: str, args: list[str] | None = None) -> None:
    try:
        f = parse_text(text, "<fuzz>", args=args or [], pp=PP)
        program = elaborate(f, LIB)
        assert "utr_call_probe" in Translator(program, "<fuzz>").translate()
    except ScriptError as e:
        assert e.render()  # every diagnostic renders to text


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_random_text(text):
    front_end(text)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes(data):
    front_end(data.decode("latin-1"))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40), st.lists(st.text(max_size=5), max_size=2))
def test_random_token_sequences(toks, args):
    front_end(" ".join(toks), args)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_tokens_inside_a_probe(toks):
    # Most of the grammar lives in statements: put the noise where it is reached.
    front_end("global a, s\nfunction f(x) { return x }\nprobe begin { " + " ".join(toks) + " }")


def test_deep_nesting_is_a_diagnostic():
    for text in ("probe begin { x = " + "(" * 5000 + "1" + ")" * 5000 + " }",
                 "probe begin " + "{" * 5000 + "}" * 5000,
                 "probe begin { x = " + "-" * 20000 + "1 }"):
        front_end(text)
