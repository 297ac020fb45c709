"""The script's syntax tree, with SystemTap's own node names and a token on every node."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..diag import Token

LONG = "long"
STRING = "string"
STATS = "stats"


@dataclass(eq=False)
class Node:
    tok: Token


# ---- expressions ---------------------------------------------------------

@dataclass(eq=False)
class Expression(Node):
    type: Optional[str] = field(default=None, init=False)


@dataclass(eq=False)
class Literal(Expression):
    value: object = None  # int or str


@dataclass(eq=False)
class Symbol(Expression):
    name: str = ""
    # Set by pass 2: a VarDecl (local, global or parameter).
    referent: object = field(default=None, init=False)


@dataclass(eq=False)
class TargetSymbol(Expression):
    """$var, $var->f[3], $$parms, @cast(...), @var(...), &$var."""
    name: str = ""
    components: list = field(default_factory=list)  # (kind, value, tok): ('.', 'f'), ('[', expr)
    addressof: bool = False
    pretty: int = 0  # 1 for $var$, 2 for $var$$
    cast_operand: Optional[Expression] = None
    cast_type: Optional[str] = None
    cast_module: Optional[str] = None
    kind: str = "var"  # var | cast | atvar
    referent: object = field(default=None, init=False)  # "return": $return of a .return probe


@dataclass(eq=False)
class Unary(Expression):
    op: str = ""
    operand: Expression = None


@dataclass(eq=False)
class Binary(Expression):
    op: str = ""
    left: Expression = None
    right: Expression = None


@dataclass(eq=False)
class Logical(Expression):
    op: str = ""  # && or ||
    left: Expression = None
    right: Expression = None


@dataclass(eq=False)
class Comparison(Expression):
    op: str = ""
    left: Expression = None
    right: Expression = None


@dataclass(eq=False)
class Concatenation(Expression):
    left: Expression = None
    right: Expression = None


@dataclass(eq=False)
class RegexMatch(Expression):
    op: str = ""  # =~ or !~
    left: Expression = None
    regex: str = ""


@dataclass(eq=False)
class Ternary(Expression):
    cond: Expression = None
    truevalue: Expression = None
    falsevalue: Expression = None


@dataclass(eq=False)
class Assignment(Expression):
    op: str = ""
    left: Expression = None
    right: Expression = None


@dataclass(eq=False)
class PreCrement(Expression):
    op: str = ""
    operand: Expression = None


@dataclass(eq=False)
class PostCrement(Expression):
    op: str = ""
    operand: Expression = None


@dataclass(eq=False)
class HistOp(Expression):
    """@hist_log(stat) / @hist_linear(stat, start, stop, interval)."""
    htype: str = ""  # log | linear
    stat: Expression = None
    params: list = field(default_factory=list)


@dataclass(eq=False)
class ArrayIndex(Expression):
    base: object = None  # Symbol or HistOp
    indexes: list = field(default_factory=list)  # Expression or None (wildcard)


@dataclass(eq=False)
class ArrayIn(Expression):
    operand: ArrayIndex = None


@dataclass(eq=False)
class FunctionCall(Expression):
    name: str = ""
    args: list = field(default_factory=list)
    referent: object = field(default=None, init=False)


@dataclass(eq=False)
class PrintFormat(Expression):
    """print/println/printf/printd/printdln and their sprint forms."""
    name: str = ""
    format: Optional[str] = None  # printf's literal format
    delimiter: Optional[str] = None  # printd's literal delimiter
    args: list = field(default_factory=list)
    hist: Optional[HistOp] = None  # print(@hist_log(x))
    # Filled by pass 2: the format's conversions.
    components: list = field(default_factory=list, init=False)

    @property
    def to_string(self) -> bool:
        return self.name.startswith("sprint")

    @property
    def newline(self) -> bool:
        return self.name.endswith("ln")


@dataclass(eq=False)
class StatOp(Expression):
    """@count(s) @sum @min @max @avg @variance(s[, shift])."""
    ctype: str = ""
    stat: Expression = None
    params: list = field(default_factory=list)


@dataclass(eq=False)
class DefinedOp(Expression):
    operand: Expression = None


@dataclass(eq=False)
class EntryOp(Expression):
    operand: Expression = None


@dataclass(eq=False)
class EmbeddedExpr(Expression):
    code: str = ""


# ---- statements ----------------------------------------------------------

@dataclass(eq=False)
class Statement(Node):
    pass


@dataclass(eq=False)
class Block(Statement):
    statements: list = field(default_factory=list)


@dataclass(eq=False)
class TryBlock(Statement):
    try_block: Block = None
    catch_var: Optional[Symbol] = None
    catch_block: Block = None


@dataclass(eq=False)
class EmbeddedCode(Statement):
    code: str = ""


@dataclass(eq=False)
class NullStatement(Statement):
    pass


@dataclass(eq=False)
class ExprStatement(Statement):
    value: Expression = None


@dataclass(eq=False)
class IfStatement(Statement):
    cond: Expression = None
    thenblock: Statement = None
    elseblock: Optional[Statement] = None


@dataclass(eq=False)
class ForLoop(Statement):
    init: Optional[Expression] = None
    cond: Optional[Expression] = None
    incr: Optional[Expression] = None
    block: Statement = None


@dataclass(eq=False)
class WhileLoop(Statement):
    cond: Expression = None
    block: Statement = None


@dataclass(eq=False)
class ForeachLoop(Statement):
    indexes: list = field(default_factory=list)  # Symbols
    value: Optional[Symbol] = None
    base: object = None  # Symbol or HistOp
    array_slice: list = field(default_factory=list)
    sort_direction: int = 0
    sort_column: int = 0  # 0 = value, 1.. = index column
    sort_aggr: Optional[str] = None  # @count etc
    limit: Optional[Expression] = None
    block: Statement = None


@dataclass(eq=False)
class ReturnStatement(Statement):
    value: Optional[Expression] = None


@dataclass(eq=False)
class DeleteStatement(Statement):
    value: Expression = None


@dataclass(eq=False)
class BreakStatement(Statement):
    pass


@dataclass(eq=False)
class ContinueStatement(Statement):
    pass


@dataclass(eq=False)
class NextStatement(Statement):
    pass


# ---- declarations --------------------------------------------------------

@dataclass(eq=False)
class VarDecl(Node):
    name: str = ""
    type: Optional[str] = None
    init: Optional[Literal] = None
    arity: int = -1  # -1 unknown, 0 scalar, N array keys
    index_types: list = field(default_factory=list)
    index_toks: list = field(default_factory=list)
    maxsize: int = 0  # global a[N]
    wrap: bool = False  # global a%[N] or a%
    is_global: bool = False
    synthetic: bool = False
    tapset: bool = False
    private: bool = False
    # the token where the type was first inferred, for "type was first inferred here"
    type_tok: Optional[Token] = field(default=None, init=False)
    # aggregate options gathered from @hist_*/@variance uses (globals of type stats)
    hist: Optional[tuple] = field(default=None, init=False)
    bit_shift: Optional[int] = field(default=None, init=False)
    wants_variance: Optional[bool] = field(default=None, init=False)


@dataclass(eq=False)
class FunctionDecl(Node):
    name: str = ""
    params: list = field(default_factory=list)  # VarDecl
    type: Optional[str] = None
    body: Statement = None  # Block or EmbeddedCode
    locals: list = field(default_factory=list)
    tapset: bool = False
    private: bool = False
    synthetic: bool = False
    pure: bool = False  # embedded C marked /* pure */
    type_tok: Optional[Token] = field(default=None, init=False)


@dataclass(eq=False)
class Component(Node):
    functor: str = ""
    arg: Optional[Literal] = None  # number or string literal


@dataclass(eq=False)
class ProbePoint(Node):
    components: list = field(default_factory=list)
    optional: bool = False
    sufficient: bool = False
    condition: Optional[Expression] = None

    def text(self) -> str:
        from .printer import probe_point_text
        return probe_point_text(self)


@dataclass(eq=False)
class Probe(Node):
    locations: list = field(default_factory=list)
    body: Block = None
    locals: list = field(default_factory=list)
    tapset: bool = False
    private: bool = False
    synthetic: bool = False


@dataclass(eq=False)
class ProbeAlias(Probe):
    alias_names: list = field(default_factory=list)  # ProbePoints being defined
    epilogue: bool = False  # "+=": the alias body runs after the user's


@dataclass(eq=False)
class StapFile(Node):
    name: str = ""
    probes: list = field(default_factory=list)
    aliases: list = field(default_factory=list)
    functions: list = field(default_factory=list)
    globals: list = field(default_factory=list)
    embeds: list = field(default_factory=list)  # EmbeddedCode at file scope
    tapset: bool = False
