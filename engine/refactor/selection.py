"""Validating selections and finding what they mean: an expression, statements, a name."""

from __future__ import annotations

from tree_sitter import Node

from engine.errors import InvalidRequestError, RefactorNotApplicableError
from engine.refactor.context import with_article
from engine.refactor.languages import LanguageSpec, statement_children
from engine.syntax import SyntaxDocument

START_FIELD = "context.selection_start"
END_FIELD = "context.selection_end"


def normalize_selection(code: str, start: int | None, end: int | None) -> tuple[int, int] | None:
    """Validate offsets and clamp them to the code; ``None`` means no selection.

    Negative offsets and an end before its start are the caller's error; an
    offset past the end is clamped (as the spec's own examples need). One
    missing bound makes the selection a cursor at the other.
    """
    if start is None and end is None:
        return None
    if start is not None and start < 0:
        raise InvalidRequestError(START_FIELD, "selection_start must not be negative", value=start)
    if end is not None and end < 0:
        raise InvalidRequestError(END_FIELD, "selection_end must not be negative", value=end)
    if start is not None and end is not None and end < start:
        raise InvalidRequestError(
            END_FIELD,
            "selection_end must not be before selection_start",
            selection_start=start,
            selection_end=end,
        )
    first = start if start is not None else end
    last = end if end is not None else start
    if first is None or last is None:
        return None
    return min(first, len(code)), min(last, len(code))


def trim(code: str, start: int, end: int) -> tuple[int, int]:
    """Shrink a selection to exclude surrounding whitespace."""
    while start < end and code[start].isspace():
        start += 1
    while end > start and code[end - 1].isspace():
        end -= 1
    return start, end


def exact_nodes(document: SyntaxDocument, start_byte: int, end_byte: int) -> list[Node]:
    """Named nodes whose range is exactly the byte range, innermost first."""
    node = document.tree.root_node.named_descendant_for_byte_range(start_byte, end_byte)
    chain: list[Node] = []
    while node is not None and node.start_byte == start_byte and node.end_byte == end_byte:
        chain.append(node)
        node = node.parent
    return chain


def expression_in(spec: LanguageSpec, chain: list[Node]) -> Node | None:
    """The expression among nodes sharing one range (``expression_statement`` unwrapped)."""
    for node in chain:
        if node.type in spec.expression_kinds or node.type in spec.not_extractable:
            return node
    return None


def describe_kind(node: Node) -> str:
    """A readable name for a node kind: ``let_declaration`` -> ``let declaration``."""
    return node.type.replace("_", " ")


def require_expression(document: SyntaxDocument, spec: LanguageSpec, start: int, end: int) -> Node:
    """The expression a non-empty selection covers exactly, or a clear refusal."""
    start_byte, end_byte = document.byte_offset(start), document.byte_offset(end)
    chain = exact_nodes(document, start_byte, end_byte)
    expression = expression_in(spec, chain)
    if expression is not None:
        return expression
    if chain:
        raise RefactorNotApplicableError(
            f"The selection is {with_article(describe_kind(chain[-1]))}, not an expression; "
            "select a complete expression such as a call, an operation or a literal",
            {"field": START_FIELD, "node_kind": chain[-1].type},
        )
    covering = document.tree.root_node.named_descendant_for_byte_range(start_byte, end_byte)
    kind = describe_kind(covering) if covering is not None else "code"
    raise RefactorNotApplicableError(
        f"The selection does not cover a complete expression (it cuts through "
        f"{with_article(kind)}); "
        "extend or shrink it to whole syntax nodes",
        {"field": START_FIELD},
    )


def statements_for(
    document: SyntaxDocument, spec: LanguageSpec, start: int, end: int
) -> tuple[Node, list[Node]] | None:
    """The container and the run of whole statements a selection covers, if it does."""
    start_byte, end_byte = document.byte_offset(start), document.byte_offset(end)
    node: Node | None = document.tree.root_node.descendant_for_byte_range(start_byte, end_byte)
    while node is not None:
        if node.type in spec.statement_containers:
            statements = statement_children(node)
            first = next((i for i, s in enumerate(statements) if s.start_byte == start_byte), None)
            last = next((i for i, s in enumerate(statements) if s.end_byte == end_byte), None)
            if first is not None and last is not None and first <= last:
                return node, statements[first : last + 1]
        node = node.parent
    return None


def identifier_at(document: SyntaxDocument, start: int, end: int) -> Node:
    """The identifier a cursor or selection designates, or a clear refusal."""
    start, end = trim(document.text, start, end)
    node: Node | None
    if start == end:
        node = document.node_at(start)
    else:
        start_byte, end_byte = document.byte_offset(start), document.byte_offset(end)
        node = document.tree.root_node.named_descendant_for_byte_range(start_byte, end_byte)
        if node is None or (node.start_byte, node.end_byte) != (start_byte, end_byte):
            raise RefactorNotApplicableError(
                "Select a single identifier (or put the cursor on one) to rename",
                {"field": START_FIELD},
            )
    if node.child_count != 0 or "identifier" not in node.type:
        raise RefactorNotApplicableError(
            f"The selection is {with_article(describe_kind(node))}, not a name; "
            "put the cursor on an identifier",
            {"field": START_FIELD, "node_kind": node.type},
        )
    return node
