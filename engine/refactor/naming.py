"""Names for new variables and functions: validation, conventions, fallbacks, model proposals.

A proposed name is usable when it is an identifier of the language, not a
keyword or a predeclared name, and not already used where it would collide.
The model's proposal is tried first; the deterministic fallback comes from the
shape of the code being named, so that the same input always yields the same name.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from tree_sitter import Node

from engine.errors import EngineError, RequestCancelledError
from engine.refactor.languages import LanguageSpec
from engine.refactor.model_port import TextGenerator
from engine.syntax import SyntaxDocument

_log = logging.getLogger(__name__)

Style = Literal["snake", "camel", "pascal", "upper"]

_NAME_TOKENS = 12
_NAME_STOPS = ("\n", "=", ":", ";", "(", ",", "{")
# Words a base model may repeat from the prompt before the actual name.
_LEADING_WORDS = frozenset(
    {"let", "mut", "const", "var", "val", "final", "static", "private", "public", "def", "fn"}
    | {"func", "function", "auto"}
)


@dataclass(frozen=True)
class ModelName:
    """A name proposed by the model, with the confidence of that completion."""

    name: str
    confidence: float


def split_words(name: str) -> list[str]:
    """Split ``snake_case``, ``camelCase``, ``PascalCase`` and ``UPPER_CASE`` into words."""
    words: list[str] = []
    for part in re.split(r"[_$\s]+", name):
        current = ""
        for index, char in enumerate(part):
            following = part[index + 1] if index + 1 < len(part) else ""
            boundary = current and (
                (char.isupper() and current[-1].islower())
                or (char.isupper() and current[-1].isupper() and following.islower())
                or (char.isdigit() != current[-1].isdigit() and not char.isdigit())
            )
            if boundary:
                words.append(current)
                current = ""
            current += char
        if current:
            words.append(current)
    return [w.lower() for w in words if w]


def style_of(name: str) -> Style:
    """The naming style an existing identifier uses."""
    letters = [c for c in name if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and (len(letters) > 1 or "_" in name):
        return "upper"
    if name[:1].isupper():
        return "pascal"
    if "_" not in name.strip("_") and any(c.isupper() for c in name):
        return "camel"
    return "snake"


def apply_style(words: list[str], style: Style) -> str:
    """Join words in a naming style."""
    if not words:
        return ""
    if style == "snake":
        return "_".join(words)
    if style == "upper":
        return "_".join(w.upper() for w in words)
    capitalized = [w[:1].upper() + w[1:] for w in words]
    if style == "pascal":
        return "".join(capitalized)
    return words[0] + "".join(capitalized[1:])


def conventional(name: str, spec: LanguageSpec, style: Style | None = None) -> str:
    """Respell ``name`` in ``style`` (default: the language's local-variable case)."""
    return apply_style(split_words(name), style or spec.case)


def is_identifier(name: str, spec: LanguageSpec) -> bool:
    """Whether ``name`` is a syntactically valid identifier of the language."""
    if not name:
        return False
    plain = name
    for extra in spec.identifier_extra:
        plain = plain.replace(extra, "_")
    return plain.isidentifier()


def name_problem(name: str, spec: LanguageSpec) -> str | None:
    """Why ``name`` cannot be used as a new name, or ``None`` when it can."""
    if not is_identifier(name, spec):
        return f"'{name}' is not a valid {spec.name} identifier"
    normal = unicodedata.normalize("NFKC", name)
    if normal != name:
        # Python reads an identifier in this form (a fullwidth `ｘ` is `x`), so
        # the new name could be one already in use; elsewhere it is a look-alike.
        return (
            f"{name!a} changes under Unicode NFKC normalisation (to {normal!a}), "
            f"as Python reads identifiers; use {normal!a}"
        )
    if name in spec.keywords:
        return f"'{name}' is a {spec.name} keyword"
    if name in spec.avoid:
        return f"'{name}' would shadow a predeclared {spec.name} name"
    if name == "_" or name.strip("_") == "":
        return f"'{name}' is a placeholder, not a name"
    return None


def unique_name(base: str, taken: Collection[str], spec: LanguageSpec) -> str:
    """``base``, or ``base`` with the smallest numeric suffix that is free and valid."""
    if name_problem(base, spec) is None and base not in taken:
        return base
    joiner = "_" if spec.case == "snake" else ""
    for suffix in range(2, 1000):
        candidate = f"{base}{joiner}{suffix}"
        if name_problem(candidate, spec) is None and candidate not in taken:
            return candidate
    raise ValueError(f"no free name derived from {base}")


def first_identifier(text: str, spec: LanguageSpec) -> str | None:
    """The first identifier in a model's output, skipping declaration keywords."""
    extra = re.escape(spec.identifier_extra)
    pattern = re.compile(rf"[^\W\d]|[{extra}]" if extra else r"[^\W\d]")
    token_re = re.compile(rf"(?:{pattern.pattern})[\w{extra}]*")
    for count, match in enumerate(token_re.finditer(text)):
        word = match.group(0)
        if word in _LEADING_WORDS and count < 3:
            continue
        return word
    return None


def ask_model(
    generator: TextGenerator | None,
    prompt: str,
    spec: LanguageSpec,
    style: Style,
) -> ModelName | None:
    """Ask the model to continue ``prompt`` with a name; ``None`` if it cannot.

    Inference failures fall back to the deterministic name instead of failing
    the refactoring; a cancelled request still stops it.
    """
    if generator is None:
        return None
    try:
        output = generator.generate(prompt, max_tokens=_NAME_TOKENS, stop=_NAME_STOPS)
    except RequestCancelledError:
        raise
    except EngineError as error:
        _log.info("name proposal failed, using the fallback name: %s", error.message)
        return None
    raw = first_identifier(output.text, spec)
    if raw is None:
        return None
    name = apply_style(split_words(raw), style)
    if not name or name_problem(name, spec) is not None:
        return None
    weakness = weak_name_problem(name, known_words(prompt))
    if weakness is not None:
        _log.info("model's name %r not used (%s); using the fallback name", name, weakness)
        return None
    return ModelName(name, max(0.0, min(1.0, output.confidence)))


# ------------------------------------------------------------ weak names

# Names that say nothing about the value: placeholders, pronouns, and words a
# base model continues prose with (``this``) rather than naming anything.
_MEANINGLESS = frozenset(
    {"this", "that", "these", "those", "self", "cls", "it", "its", "me", "my", "our", "the"}
    | {"tmp", "temp", "foo", "bar", "baz", "qux", "quux", "var", "val", "obj", "thing", "stuff"}
    | {"aux", "dummy", "blah", "xxx", "todo", "fixme", "new", "old", "some", "any", "none"}
    | {"null", "nil", "undefined", "true", "false", "and", "or", "not", "is", "of", "to"}
    | {"in", "for", "with", "from", "here", "there", "now", "then", "do", "done", "ok"}
    | {"store", "variable", "name", "short", "descriptive", "extract", "extracted"}
)

# Words of good names that need not appear in the code (the model's own
# vocabulary for what a value is): used with the code's own words to tell a
# name from gibberish a small model may produce.
_VOCABULARY_TEXT = """
    total sum count size length width height depth area volume surface perimeter radius
    diameter distance speed rate ratio percent percentage average mean median mode min max
    minimum maximum lower upper low high first last next previous prev current initial final
    start end begin finish offset index position pos key value values item items entry entries
    element elements list array map dict table set queue stack tree node nodes graph edge path
    file name names text string message line lines word words char chars token tokens byte bytes
    number num amount price cost tax fee discount subtotal net gross balance payment interest
    product quotient difference remainder power square cube root half double triple sign
    result results output input data info details config options settings params args state
    status flag enabled disabled valid invalid ready empty full visible active selected default
    is has can should needs allowed found missing matches match filtered sorted mapped grouped
    unique reversed joined parts pieces chunk chunks batch page pages row rows column columns
    cell cells point points coordinate vector matrix scale factor weight weights score
    scores limit threshold timeout delay duration time timestamp date day days month year hour
    minute second seconds elapsed age user users account customer order orders request response
    client server url host port address id ids uid label title description summary
    error errors warning reason code kind type types category level depth callback
    handler listener function method action event events task tasks job jobs worker context
    scope buffer cache pool connection session payload body header headers query
    filter mapping lookup registry parsed raw clean normalized formatted encoded decoded
    serialized json html xml csv directory folder extension suffix prefix pattern regex
    greater larger bigger smaller lesser shorter longer wider narrower earlier later newer older
    combined merged discounted taxed rounded clamped bounded scaled shifted masked
    toggled negated condition predicate check test expected actual target source destination
    origin copy clone snapshot image pixel pixels color colour red green blue alpha frame frames
    sample samples signal noise step steps iteration iterations attempt attempts retry retries
    compute calculate get fetch load read make build parse format convert apply update render
"""
_VOCABULARY = frozenset(_VOCABULARY_TEXT.split())

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def known_words(text: str) -> frozenset[str]:
    """The words of every identifier in ``text`` (e.g. a prompt with the code), lowercased."""
    words: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        words.update(split_words(match.group(0)))
    return frozenset(words)


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s", "ed", "ing", "er", "est", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def weak_name_problem(name: str, known: Collection[str] = ()) -> str | None:
    """Why ``name`` says too little to name a new variable or function, or ``None``.

    Weak: placeholders and pronouns (``this``, ``tmp``), numbered names
    (``x1``), one or two letters, and words that are neither in the code
    (``known``, lowercased) nor common naming vocabulary (a small model's
    gibberish). The deterministic fallback, derived from the code, is used instead.
    """
    words = split_words(name)
    bare = name.strip("_$")
    if not words or len(bare) < 3:
        return "too short to say what it holds"
    if bare.lower() in _MEANINGLESS or all(word in _MEANINGLESS for word in words):
        return "a placeholder, not a name"
    if bare[-1].isdigit():
        return "a numbered name"
    known_stems = {_stem(word) for word in known} | {_stem(word) for word in _VOCABULARY}
    unknown = [
        w for w in words if w not in known and w not in _MEANINGLESS and _stem(w) not in known_stems
    ]
    if unknown:
        return f"{', '.join(unknown)} is not a word of the code or of common names"
    return None


def identifier_texts(document: SyntaxDocument, node: Node | None = None) -> set[str]:
    """Every identifier-like token under ``node`` (default: the whole document)."""
    return {document.node_text(n) for n in document.identifier_nodes(node)}


# ------------------------------------------------------------------ fallbacks

_CALL_NAMES = MappingProxyType(
    {
        "len": "length",
        "length": "length",
        "size": "size",
        "count": "count",
        "max": "max_value",
        "min": "min_value",
        "sum": "total",
        "abs": "absolute",
        "sqrt": "root",
        "str": "text",
        "to_string": "text",
        "tostring": "text",
        "format": "message",
        "sprintf": "message",
        "int": "number",
        "parseint": "number",
        "atoi": "number",
        "sorted": "sorted_items",
        "filter": "filtered",
        "map": "mapped",
        "collect": "collected",
        "join": "joined",
        "split": "parts",
        "keys": "keys",
        "values": "values",
        "items": "entries",
        "open": "file",
        "clone": "copy",
    }
)
_VERB_PREFIXES = ("get", "compute", "calculate", "calc", "fetch", "load", "read", "make", "build")
_OPERATOR_NAMES = MappingProxyType(
    {
        "+": "total",
        "-": "difference",
        "*": "product",
        "/": "quotient",
        "//": "quotient",
        "%": "remainder",
        "**": "power",
        "<<": "shifted",
        ">>": "shifted",
        "&": "masked",
        "|": "combined",
        "^": "toggled",
        ">": "is_greater",
        ">=": "is_at_least",
        "<": "is_less",
        "<=": "is_at_most",
        "==": "is_equal",
        "===": "is_equal",
        "!=": "is_different",
        "!==": "is_different",
        "&&": "condition",
        "||": "condition",
        "and": "condition",
        "or": "condition",
        "??": "value_or_default",
        "in": "is_member",
        "is": "is_same",
    }
)


def fallback_variable_name(document: SyntaxDocument, node: Node) -> str:
    """A descriptive name derived from an expression's shape (``max_value``, ``total``...).

    Returns snake_case words; callers respell it in the language's case. A
    shape that only gives a placeholder or a numbered name (a member called
    ``x1``) gives ``value`` instead.
    """
    name = _shape_name(document, node, depth=0) or "extracted"
    if name != "extracted" and weak_name_problem(name, split_words(name)) is not None:
        return "value"
    return name


def _shape_name(document: SyntaxDocument, node: Node, depth: int) -> str | None:
    if depth > 4:
        return None
    kind = node.type
    named = node.named_children
    if kind in ("parenthesized_expression", "await_expression", "await", "try_expression"):
        return _shape_name(document, named[0], depth + 1) if named else None
    choice = _min_max_choice(document, node)
    if choice is not None:
        return choice
    if kind in ("if_expression", "conditional_expression", "ternary_expression"):
        return "result"
    if kind in ("call_expression", "call", "method_invocation", "macro_invocation"):
        return _call_name(document, node)
    if kind in ("new_expression", "object_creation_expression", "struct_expression"):
        target = (
            node.child_by_field_name("constructor")
            or node.child_by_field_name("type")
            or node.child_by_field_name("name")
        )
        return _last_word(document, target) if target is not None else "instance"
    if kind == "composite_literal":
        target = node.child_by_field_name("type")
        return _last_word(document, target) if target is not None else "value"
    if kind in ("field_expression", "attribute", "member_expression", "selector_expression"):
        member = (
            node.child_by_field_name("field")
            or node.child_by_field_name("attribute")
            or node.child_by_field_name("property")
        )
        return _words(document.node_text(member)) if member is not None else None
    if kind == "field_access":
        member = node.child_by_field_name("field")
        return _words(document.node_text(member)) if member is not None else None
    if kind in ("index_expression", "subscript", "subscript_expression", "array_access"):
        base = node.child_by_field_name("value") or node.child_by_field_name("array")
        base = base or node.child_by_field_name("object") or node.child_by_field_name("operand")
        if base is None and named:
            base = named[0]
        return _singular(_words(document.node_text(base))) if base is not None else "element"
    if kind in ("binary_expression", "binary_operator", "boolean_operator", "comparison_operator"):
        operator = node.child_by_field_name("operator") or _operator_child(node)
        symbol = document.node_text(operator) if operator is not None else ""
        if symbol == "+" and any(_is_string(c) for c in named):
            return "text"
        return _OPERATOR_NAMES.get(symbol, "result")
    if kind in ("unary_expression", "not_operator", "unary_operator"):
        text = document.node_text(node).lstrip()
        return "condition" if text.startswith(("!", "not")) else "negated"
    if _is_string(node):
        return "text"
    if kind in ("integer_literal", "float_literal", "integer", "float", "number", "int_literal"):
        return "value"
    if kind.startswith(("decimal_", "hex_", "octal_", "binary_")):
        return "value"
    if kind in ("true", "false", "boolean_literal"):
        return "flag"
    if kind in ("array_expression", "list", "array", "tuple", "tuple_expression", "set"):
        return "items"
    if kind in ("dictionary", "object"):
        return "mapping"
    if kind in ("closure_expression", "lambda", "arrow_function", "lambda_expression"):
        return "callback"
    if "comprehension" in kind or kind == "generator_expression":
        return "items"
    return None


def _is_string(node: Node) -> bool:
    return "string" in node.type or node.type in ("template_string", "text_block")


def _operator_child(node: Node) -> Node | None:
    for child in node.children:
        if not child.is_named:
            return child
    return None


def _words(text: str) -> str | None:
    words = split_words(text)
    return "_".join(words) if words else None


def _last_word(document: SyntaxDocument, node: Node) -> str | None:
    """``std::collections::HashMap<K, V>`` -> ``hash_map``: the last path segment."""
    path = document.node_text(node).split("<", 1)[0]
    segments = [s for s in re.split(r"::|\.|\s|&|\*", path) if s and s[0].isalpha()]
    return _words(segments[-1]) if segments else None


def _singular(name: str | None) -> str:
    if not name:
        return "element"
    if name.endswith("ies") and len(name) > 4:
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss") and len(name) > 2:
        return name[:-1]
    return f"{name}_item"


def _call_name(document: SyntaxDocument, node: Node) -> str:
    callee = (
        node.child_by_field_name("function")
        or node.child_by_field_name("macro")
        or node.child_by_field_name("name")
    )
    if callee is None:
        return "result"
    for field in ("field", "attribute", "property", "name"):
        member = callee.child_by_field_name(field)
        if member is not None:
            callee = member
            break
    words = split_words(document.node_text(callee).split("::")[-1])
    if not words:
        return "result"
    joined = "".join(words)
    if joined in _CALL_NAMES:
        return _CALL_NAMES[joined]
    if words[0] in _VERB_PREFIXES and len(words) > 1:
        return "_".join(words[1:])
    if words[0] in ("is", "has", "can", "should"):
        return "_".join(words)
    return "_".join([*words, "result"])


def _min_max_choice(document: SyntaxDocument, node: Node) -> str | None:
    """``if a > b { a } else { b }`` and its cousins: ``max_value`` / ``min_value``."""
    kind = node.type
    named = node.named_children
    if kind == "if_expression":
        condition = node.child_by_field_name("condition")
        chosen = node.child_by_field_name("consequence")
        alternative = node.child_by_field_name("alternative")
        branches = alternative.named_children if alternative is not None else []
        other = branches[0] if branches else None
    elif kind == "conditional_expression" and len(named) == 3:
        chosen, condition, other = named
    elif kind == "ternary_expression":
        condition = node.child_by_field_name("condition")
        chosen = node.child_by_field_name("consequence")
        other = node.child_by_field_name("alternative")
    else:
        return None
    if condition is None or chosen is None or other is None:
        return None
    while condition.type == "parenthesized_expression" and condition.named_children:
        condition = condition.named_children[0]
    operands = condition.named_children
    operator = condition.child_by_field_name("operator") or _operator_child(condition)
    if len(operands) != 2 or operator is None:
        return None
    symbol = document.node_text(operator)
    left, right = (_bare(document, n) for n in operands)
    picked, rejected = _bare(document, chosen), _bare(document, other)
    if {picked, rejected} != {left, right}:
        return None
    greater = symbol in (">", ">=")
    if symbol not in (">", ">=", "<", "<="):
        return None
    picks_left = picked == left
    return "max_value" if greater == picks_left else "min_value"


def _bare(document: SyntaxDocument, node: Node) -> str:
    """Text of a node without braces or parentheses (``{ x }`` and ``(x)`` are ``x``)."""
    return document.node_text(node).strip().strip("{}()").strip()
