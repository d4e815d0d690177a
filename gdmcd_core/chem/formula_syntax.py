"""The formula grammar: what `composition.parse_formula` accepts, and nothing else.

One formula per string. Grammar (after stripping the ends)::

    formula    := part (separator [multiplier] part)*
    part       := group+
    group      := Element [amount] | "(" group+ ")" [amount] | "[" group+ "]" [amount]
    amount     := digits ["." digits]          plain decimals: "2", "0.15", "1.85"
    separator  := "·" | "•" | "∙" | "⋅" | "*"  a hydrate / adduct: "CuSO4·5H2O" = CuSO4 + 5 H2O
                | "."  (see below)

Decisions (each refusal is a `FormulaError` quoting the formula, on one line):

* An ASCII "." is a decimal point ("Ba0.5K0.5", "La1.85Sr0.15CuO4", "MgB1.9C0.1"), except:
  - ".<integer>H2O" at the end of the formula (or before another separator) after a nonzero
    amount or an element is a hydrate: "CuSO4.5H2O" = CuSO4 + 5 H2O. Only water is read this
    way: ".<integer><group>" in general cannot be told from a decimal ("Tl2Ba2Ca1.5Cu3O10"),
    so other adducts need an explicit "·" ("CuCl2·2NH3").
  - "." directly before an element or bracket is an adduct separator with multiplier 1
    ("KCl.MgCl2.6H2O").
* Refused as ambiguous: a number with two dots ("Na0.35CoO2.1.3H2O": O2.1 + 3 H2O, or
  O2 + 1.3 H2O? write "Na0.35CoO2·1.3H2O"), and an amount that starts with "." (".5" after an
  element: 0.5, or a multiplier 5 of what follows? write "0.5").
* Whitespace, commas, semicolons and line breaks are refused ("one formula per line/cell"):
  "MgB2 H3S" is two formulas, and even "Mg B2" is refused rather than guessed at.
* Exponent notation ("Fe1e-30O") is refused: amounts must be plain decimals.
* Amounts are > 0 and <= MAX_AMOUNT; an element whose share of the formula is below the
  caller's `min_fraction` (composition.FRACTION_EPS) is refused: it would vanish from every
  fraction vector and formatted formula, silently.
* Unicode subscript digits ("YBa₂Cu₃O₇", as the app prints formulas) read as digits. Charges,
  "x"/"δ" variables and lowercase-initial symbols are refused.
* Brackets nest at most MAX_BRACKET_DEPTH deep (real formulas use two or three levels).
* Error messages quote at most QUOTE_LIMIT characters of the formula (then "…" and its length),
  so a megabyte of input never becomes a megabyte of error message.
"""

from __future__ import annotations

import math
import re

from gdmcd_core.chem.elements import index_of

# Largest amount of one element accepted: catches "Fe1000000"-style typos and lost decimal points.
# Not 1e4: the shared COD file holds a real formula sum 'Al12827.6Cu1244.05Ta9063' (largest amount
# in the shared data), which the data loader must still read.
MAX_AMOUNT = 1e5
# Deepest bracket nesting accepted: real formulas use two or three levels ("[Cu(NH3)4](NO3)2"); the
# parser recurses once per level, so this bound keeps "((((…Fe…))))" a FormulaError, not a RecursionError.
MAX_BRACKET_DEPTH = 16
# Characters of a formula (or of any piece of one) quoted in an error message.
QUOTE_LIMIT = 80
# Explicit hydrate/adduct separators: middle dot, bullet, bullet operator, dot operator, asterisk.
EXPLICIT_SEPARATORS = frozenset("·•∙⋅*")
_SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
_OPEN_CLOSE = {"(": ")", "[": "]"}
_DIGITS = re.compile(r"\d+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# ".5H2O" at the end or before another separator: the only hydrate written with an ASCII dot.
_WATER_AFTER_DOT = re.compile(r"\.(\d+)H2O(?=$|[·•∙⋅*.])")
_EXPONENT = re.compile(r"\d[eE][+-]?\d")
_NEGATIVE = re.compile(r"[A-Za-z)\]]\s*-\s*\d")
_SPLIT = re.compile(r"[\s,;]+")
_EXAMPLES = "e.g. 'YBa2Cu3O7', 'Ba0.6K0.4Fe2As2' or 'CuSO4·5H2O'"


class FormulaError(ValueError):
    """A formula that cannot be used: does not parse, unknown element, or a bad amount."""


def quoted(text: object, limit: int = QUOTE_LIMIT) -> str:
    """`repr` of `text` for an error message, cut to its first `limit` characters (then "…" and the length).

    >>> quoted("MgB2")
    "'MgB2'"
    >>> quoted("Fe" * 100, limit=4)
    "'FeFe'… (200 characters)"
    """
    if not isinstance(text, str) or len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


def _clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` cut to `limit` characters, with "…" when cut (for pieces of a formula quoted unquoted)."""
    return text if len(text) <= limit else f"{text[:limit]}…"


def parse_amounts(formula: object, min_fraction: float = 0.0, max_amount: float = MAX_AMOUNT) -> dict[str, float]:
    """Parse one formula into {symbol: amount} (amounts > 0, in order of first appearance).

    Repeated elements are summed; brackets and hydrate multipliers multiply their contents.
    Raises FormulaError (one line, quoting the formula) for anything outside the grammar in the
    module docstring, for amounts above `max_amount`, and for elements whose fraction of the
    formula is below `min_fraction`.

    >>> parse_amounts("CuSO4·5H2O")
    {'Cu': 1.0, 'S': 1.0, 'O': 9.0, 'H': 10.0}
    """
    if not isinstance(formula, str) or not formula.strip():
        raise FormulaError(f"empty formula {quoted(formula)}: write elements with amounts, e.g. 'MgB2'")
    text = formula.strip().translate(_SUBSCRIPTS)
    _check_text(formula, text)
    amounts = _Parser(formula, text).parse()
    total = sum(amounts.values())
    for sym, amt in amounts.items():
        if not math.isfinite(amt) or amt > max_amount:
            raise FormulaError(
                f"formula {quoted(formula)}: amount of {sym} is {amt:g}, above the limit {max_amount:g}; "
                "write amounts per formula unit (e.g. 'Nb3Sn')"
            )
    for sym, amt in amounts.items():
        if amt / total < min_fraction:
            raise FormulaError(
                f"formula {quoted(formula)}: {sym} is only {amt / total:.3g} of the atoms, below {min_fraction:g} "
                f"(treated as absent everywhere); leave {sym} out or raise its amount"
            )
    return amounts


def _check_text(formula: str, text: str) -> None:
    """Whole-string refusals with a better message than a syntax error would give."""
    if _SPLIT.search(text):
        pieces = [p for p in _SPLIT.split(text) if p]
        what = f"{len(pieces)} parts {_clip(repr(pieces))}" if len(pieces) > 1 else "a separator"
        raise FormulaError(
            f"formula {quoted(formula)} holds {what}: write one formula per line/cell, "
            "with no spaces, commas or line breaks inside it (e.g. 'MgB2')"
        )
    if _EXPONENT.search(text):
        raise FormulaError(
            f"formula {quoted(formula)} uses exponent notation; amounts must be plain decimals such as 0.001 (no 'e')"
        )
    if _NEGATIVE.search(text):
        raise FormulaError(f"formula {quoted(formula)} has a negative amount; amounts must be > 0")


class _Parser:
    """Recursive descent over `text`; `pos` is the index of the next character."""

    def __init__(self, formula: str, text: str) -> None:
        self.formula, self.text, self.pos = formula, text, 0

    # -- errors ----------------------------------------------------------------------------------

    def fail(self, what: str) -> FormulaError:
        return FormulaError(f"formula {quoted(self.formula)} does not parse: {what}; write {_EXAMPLES}")

    def ambiguous(self, what: str, fix: str) -> FormulaError:
        return FormulaError(f"formula {quoted(self.formula)} is ambiguous: {what}; {fix}")

    def digits_at(self, i: int) -> str:
        """The run of digits starting at index i ('' if none)."""
        m = _DIGITS.match(self.text, i)
        return m.group() if m else ""

    def peek(self, k: int = 0) -> str:
        i = self.pos + k
        return self.text[i] if i < len(self.text) else ""

    # -- grammar ---------------------------------------------------------------------------------

    def parse(self) -> dict[str, float]:
        if self.peek().isdigit() or self.peek() == ".":
            raise self.fail("it starts with a number (a multiplier goes after a separator, as in 'CuSO4·5H2O')")
        total: dict[str, float] = {}
        multiplier = 1.0
        while True:
            _add(total, self.groups(depth=0), multiplier)
            if self.pos >= len(self.text):
                return total
            multiplier = self.separator()

    def separator(self) -> float:
        """Consume a separator (and its multiplier) between two parts; return the multiplier."""
        c = self.peek()
        if c in EXPLICIT_SEPARATORS:
            self.pos += 1
            m = _NUMBER.match(self.text, self.pos)
            if m is None:
                return 1.0
            self.pos = m.end()
            return self.amount_value(m.group())
        # c == "." (groups() stops only at the end, a separator or a dot)
        water = _WATER_AFTER_DOT.match(self.text, self.pos)
        if water is not None:
            self.pos += 1 + len(water.group(1))
            return self.amount_value(water.group(1))
        nxt = self.peek(1)
        if nxt.isupper() or nxt in _OPEN_CLOSE:
            self.pos += 1
            return 1.0
        if nxt.isdigit():
            digits = self.digits_at(self.pos + 1)
            raise self.ambiguous(
                f"'.{_clip(digits)}' after a symbol or bracket could be a decimal or a hydrate multiplier",
                "write the leading 0 of a decimal (e.g. 'Fe0.5Se') or '·' for a hydrate (e.g. 'CuSO4·5H2O')",
            )
        raise self.fail(f"stray '.' at position {self.pos + 1}")

    def groups(self, depth: int) -> dict[str, float]:
        """Groups up to the end, a closing bracket (depth > 0) or a separator (depth 0)."""
        out: dict[str, float] = {}
        while self.pos < len(self.text):
            c = self.peek()
            if c.isupper():
                _add(out, *self.element())
            elif c in _OPEN_CLOSE:
                _add(out, *self.bracket(depth))
            elif self.ends_group(c, depth):
                break
        if not out:
            raise self.fail(f"an empty part or bracket before position {self.pos + 1}")
        return out

    def element(self) -> tuple[dict[str, float], float]:
        """An element symbol at the cursor and its amount."""
        c = self.peek()
        sym = c + (self.peek(1) if self.peek(1).islower() else "")
        try:
            index_of(sym)
        except ValueError:
            raise FormulaError(f"formula {quoted(self.formula)}: unknown element {sym!r}") from None
        self.pos += len(sym)
        return {sym: 1.0}, self.amount()

    def bracket(self, depth: int) -> tuple[dict[str, float], float]:
        """A bracketed group at the cursor and its multiplier."""
        c = self.peek()
        start = self.pos
        if depth >= MAX_BRACKET_DEPTH:
            raise self.fail(f"brackets nested deeper than {MAX_BRACKET_DEPTH} levels at position {start + 1}")
        self.pos += 1
        inner = self.groups(depth + 1)
        if self.peek() != _OPEN_CLOSE[c]:
            raise self.fail(f"'{c}' at position {start + 1} is not closed by '{_OPEN_CLOSE[c]}'")
        self.pos += 1
        return inner, self.amount()

    def ends_group(self, c: str, depth: int) -> bool:
        """True at a character that closes the current group; raises on one that cannot stand here."""
        if c in ")]":
            if depth == 0:
                raise self.fail(f"unmatched '{c}' at position {self.pos + 1}")
            return True
        if c in EXPLICIT_SEPARATORS or c == ".":
            if depth > 0:
                raise self.fail(f"separator '{c}' inside brackets at position {self.pos + 1}")
            return True
        if c.isdigit():
            raise self.fail(f"number at position {self.pos + 1} follows no element")
        if c.islower():
            raise self.fail(f"lowercase '{c}' at position {self.pos + 1} (element symbols start with a capital)")
        raise self.fail(f"unexpected character {c!r} at position {self.pos + 1}")

    def amount(self) -> float:
        """The optional amount after a symbol or bracket (1 when absent)."""
        m = _DIGITS.match(self.text, self.pos)
        if m is None:
            return 1.0
        self.pos = m.end()
        digits = m.group()
        if self.peek() != "." or not self.peek(1).isdigit():
            return self.amount_value(digits)
        # "<int>.<digits>": a decimal, unless it is "<nonzero int>.<n>H2O" at the end (a hydrate)
        if digits.strip("0") and _WATER_AFTER_DOT.match(self.text, self.pos):
            return self.amount_value(digits)
        frac = self.digits_at(self.pos + 1)
        self.pos += 1 + len(frac)
        number = f"{digits}.{frac}"
        if self.peek() == "." and self.peek(1).isdigit():
            more = self.digits_at(self.pos + 1)
            raise self.ambiguous(
                f"'{_clip(f'{number}.{more}')}' has two dots",
                "write hydrates with '·' (e.g. 'Na0.35CoO2·1.3H2O')",
            )
        return self.amount_value(number)

    def amount_value(self, number: str) -> float:
        value = float(number)
        if value <= 0:
            raise FormulaError(
                f"formula {quoted(self.formula)} has a zero amount ({_clip(number)}); amounts must be > 0"
            )
        return value


def _add(total: dict[str, float], part: dict[str, float], multiplier: float) -> None:
    for sym, amt in part.items():
        total[sym] = total.get(sym, 0.0) + amt * multiplier
