"""optimize_performance: the model rewrites one function; the checks decide if it may stand.

The prompt is plain code (the original function, then a comment and the same
header again) so that base code models continue it with a body. The rewrite is
cut where the function ends, re-parsed alone, and must be a function of the
same name; the safety checks then compare signatures and free names and run
the language's checker.
"""

from __future__ import annotations

import re

from tree_sitter import Node

from engine.errors import RefactorNotApplicableError
from engine.refactor.context import (
    Candidate,
    RefactorContext,
    line_span,
    signature_of,
)
from engine.refactor.edits import line_indent, reindent
from engine.refactor.model_port import TextGenerator
from engine.refactor.schema import TextEdit
from engine.refactor.selection import START_FIELD
from engine.syntax import SyntaxDocument

_SAMPLED_TEMPERATURE = 0.6
_MAX_TOKENS = 1024
_MAX_CUTS = 64


def target_function(ctx: RefactorContext) -> Node:
    """The function containing the selection, or the first function when there is none."""
    spec = ctx.spec
    span = ctx.byte_span()
    if span is not None:
        node: Node | None = ctx.document.tree.root_node.descendant_for_byte_range(*span)
        while node is not None and not spec.is_function(node):
            node = node.parent
        if node is None:
            raise RefactorNotApplicableError(
                "optimize_performance works on a function; the selection is not inside one",
                {"field": START_FIELD},
            )
        return node
    stack = [ctx.document.tree.root_node]
    while stack:
        current = stack.pop()
        if spec.is_function(current):
            return current
        stack.extend(reversed(current.named_children))
    raise RefactorNotApplicableError("The code contains no function to optimize", {"field": "code"})


def plan_optimize(ctx: RefactorContext, generator: TextGenerator | None) -> list[Candidate]:
    """Rewrites proposed by the model (greedy first, then one sampled variant)."""
    function = target_function(ctx)
    if generator is None:
        raise RefactorNotApplicableError(
            "optimize_performance needs a loaded model to propose the rewrite; none is available",
            {"field": "model_id"},
        )
    document = ctx.document
    signature = signature_of(document, function)
    name = signature.name if signature is not None else "function"
    original = document.node_text(function)
    indent = line_indent(ctx.code, document.char_offset(function.start_byte))
    prompt, head = _prompt(ctx, function, original, indent)
    budget = min(_MAX_TOKENS, max(96, len(original) // 2 + 64))
    comment = ctx.spec.comment
    stops = ["\n\n\n", f"\n{comment} Original", f"\n{comment} Faster"]
    temperatures = [0.0] + ([_SAMPLED_TEMPERATURE] if ctx.request.max_alternatives > 0 else [])

    start, end = document.node_range(function)
    seen = {_normalized(original)}
    candidates: list[Candidate] = []
    for temperature in temperatures:
        output = generator.generate(prompt, max_tokens=budget, stop=stops, temperature=temperature)
        rewrite = _complete_function(ctx, function, head, output.text)
        if rewrite is None or _normalized(rewrite) in seen:
            continue
        seen.add(_normalized(rewrite))
        placed = reindent(rewrite, "", indent, newline=ctx.newline)
        candidates.append(
            Candidate(
                edits=(TextEdit(start, end, placed),),
                explanation=(
                    f"Replaced `{name}` ({line_span(function, function)}) with the model's "
                    "faster rewrite, keeping its signature."
                ),
                model_confidence=max(0.0, min(1.0, output.confidence)),
                free_mode="no_new_unresolved",
                signatures=(signature,) if signature is not None else (),
            )
        )
    if not candidates:
        raise RefactorNotApplicableError(
            f"The model did not propose a usable rewrite of `{name}` (no complete function "
            "with the same name, or no change)",
        )
    return candidates


def _prompt(ctx: RefactorContext, function: Node, original: str, indent: str) -> tuple[str, str]:
    """The prompt, and the function head the model's continuation follows."""
    document, spec, newline = ctx.document, ctx.spec, ctx.newline
    flat = reindent(original, indent, "")
    header = reindent(document.header(function), indent, "")
    # End at the newline: the model writes the body's indentation itself.
    opening = "" if spec.name == "python" else " {"
    head = header + opening + newline
    name = function.child_by_field_name("name")
    label = document.node_text(name) if name is not None else "function"
    prompt = (
        f"{spec.comment} Original version of `{label}`:{newline}{flat}{newline}{newline}"
        f"{spec.comment} Faster version of `{label}`, same signature and same results:{newline}"
        f"{head}"
    )
    return prompt, head


def _complete_function(
    ctx: RefactorContext, function: Node, head: str, continuation: str
) -> str | None:
    """The shortest prefix of head + continuation that parses as the whole function."""
    text = head + continuation
    if ctx.spec.name == "python":
        lines = text.split("\n")
        kept = [lines[0]]
        for line in lines[1:]:
            if line.strip() and not line[:1].isspace():
                break  # back at column 0: the function ended
            kept.append(line)
        candidate = "\n".join(kept).rstrip()
        return candidate if _is_same_function(ctx, function, candidate) else None
    cuts = [m.end() for m in re.finditer(r"\}", text) if m.start() >= len(head)][:_MAX_CUTS]
    for cut in cuts:
        candidate = text[:cut]
        if _is_same_function(ctx, function, candidate):
            return candidate
    return None


def _is_same_function(ctx: RefactorContext, function: Node, candidate: str) -> bool:
    wrapped = candidate
    in_class = ctx.spec.name == "java" or function.type == "method_definition"
    if in_class:
        # Methods only parse inside a class body.
        wrapped = "class Wrapper {\n" + candidate + "\n}"
    parsed = SyntaxDocument(wrapped, ctx.document.language)
    root = parsed.tree.root_node
    if root.has_error:
        return False
    nodes = [n for n in root.named_children if n.type not in ctx.spec.comment_kinds]
    if in_class and nodes:
        body = nodes[0].child_by_field_name("body")
        nodes = list(body.named_children) if body is not None else []
    if len(nodes) != 1 or nodes[0].type != function.type:
        return False
    old_name = function.child_by_field_name("name")
    new_name = nodes[0].child_by_field_name("name")
    if old_name is None or new_name is None:
        return False
    if ctx.document.node_text(old_name) != parsed.node_text(new_name):
        return False
    # An emptied body is not an optimisation, whatever a checker may think of it.
    old_body = function.child_by_field_name("body")
    new_body = nodes[0].child_by_field_name("body")
    had_body = old_body is not None and old_body.named_child_count > 0
    has_body = new_body is not None and new_body.named_child_count > 0
    return has_body or not had_body


def _normalized(code: str) -> str:
    return re.sub(r"\s+", " ", code).strip()
