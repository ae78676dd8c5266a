"""extract_variable: an expression becomes a local binding declared before its statement.

The expression moves out of its statement, so it must be evaluated exactly
once and unconditionally there: expressions in loop conditions, on one side of
a branch or a short-circuit operator, or inside a closure are refused, as are
expressions that are assigned to or borrowed mutably.
"""

from __future__ import annotations

from tree_sitter import Node

from engine.errors import RefactorNotApplicableError
from engine.refactor.context import (
    Candidate,
    RefactorContext,
    enclosing_functions,
    line_span,
    one_line,
    signature_of,
    top_level_item,
)
from engine.refactor.edits import line_indent, line_start, starts_line
from engine.refactor.languages import statement_children
from engine.refactor.model_port import TextGenerator
from engine.refactor.naming import (
    ask_model,
    conventional,
    fallback_variable_name,
    identifier_texts,
    unique_name,
)
from engine.refactor.schema import TextEdit
from engine.refactor.scopes import ScopeAnalysis, field_name
from engine.refactor.selection import START_FIELD, require_expression, trim
from engine.refactor.type_inference import TypeOracle

_TARGET_PARENTS = frozenset(
    {"short_var_declaration", "for_statement", "for_in_statement", "for_in_clause", "range_clause"}
)
_MEMBER_KINDS = frozenset(
    {"field_expression", "member_expression", "attribute", "selector_expression", "field_access"}
)
_JAVA_NEEDS_TARGET_TYPE = frozenset({"lambda_expression", "method_reference", "array_initializer"})
# Rust macros whose format string is their first argument (write!/writeln!: second).
_RUST_FORMAT_MACROS = frozenset(
    {"print", "println", "eprint", "eprintln", "format", "panic", "format_args"}
)
_RUST_WRITE_MACROS = frozenset({"write", "writeln"})


def _rust_macro_argument(expression: Node) -> Node | None:
    """The macro invocation whose token tree directly holds ``expression``, if any."""
    parent = expression.parent
    if parent is None or parent.type != "token_tree":
        return None
    macro = parent.parent
    return macro if macro is not None and macro.type == "macro_invocation" else None


def _is_rust_format_string(ctx: RefactorContext, expression: Node) -> bool:
    """A plain string literal in the format-string position of ``println!`` and its kin.

    A macro takes tokens, so a variable cannot stand where the format string
    must be a literal; ``"{}", name`` can, and prints the same text when the
    literal has no braces of its own.
    """
    if ctx.spec.name != "rust" or expression.type != "string_literal":
        return False
    macro = _rust_macro_argument(expression)
    token_tree = expression.parent
    if macro is None or token_tree is None:
        return False
    name_node = macro.child_by_field_name("macro")
    name = ctx.document.node_text(name_node).split("::")[-1] if name_node is not None else ""
    tokens = [c for c in token_tree.children if c.type not in ("(", ")", "[", "]", "{", "}")]
    position = 2 if name in _RUST_WRITE_MACROS else 0 if name in _RUST_FORMAT_MACROS else -1
    literal = ctx.document.node_text(expression)
    return (
        position >= 0
        and len(tokens) > position
        and tokens[position].id == expression.id
        and "{" not in literal
        and "}" not in literal
    )


def plan_extract_variable(ctx: RefactorContext, generator: TextGenerator | None) -> list[Candidate]:
    """Candidates (model name first, then the fallback name) for extracting an expression."""
    expression = find_expression(ctx)
    anchor, container = hoist_anchor(ctx, expression)
    document = ctx.document
    analysis = ctx.analysis([top_level_item(expression)])
    _check_dependencies(ctx, expression, anchor, analysis)
    type_text = _declared_type(ctx, expression, analysis)

    taken = identifier_texts(document)
    fallback = unique_name(
        conventional(fallback_variable_name(document, expression), ctx.spec), taken, ctx.spec
    )
    names: list[tuple[str, float | None]] = []
    proposal = ask_model(generator, _prompt(ctx, expression, anchor), ctx.spec, ctx.spec.case)
    if proposal is not None and proposal.name not in taken and proposal.name != fallback:
        names.append((proposal.name, proposal.confidence))
    names.append((fallback, None))

    functions = enclosing_functions(ctx.spec, expression)
    signatures = tuple(s for s in (signature_of(document, f) for f in functions) if s)
    return [
        Candidate(
            edits=tuple(_edits(ctx, expression, anchor, container, name, type_text=type_text)),
            explanation=_explain(ctx, expression, anchor, name, confidence is not None),
            model_confidence=confidence,
            signatures=signatures,
        )
        for name, confidence in names
    ]


def find_expression(ctx: RefactorContext) -> Node:
    """The expression to extract: the selection, else the best one at the cursor or in the code."""
    if ctx.selection is not None:
        start, end = trim(ctx.code, *ctx.selection)
        if start < end:
            expression = require_expression(ctx.document, ctx.spec, start, end)
            problem = extraction_problem(ctx, expression)
            if problem is not None:
                raise RefactorNotApplicableError(problem, {"field": START_FIELD})
            return expression
        return _best_at_cursor(ctx, start)
    return _best_in_code(ctx)


def extraction_problem(ctx: RefactorContext, expression: Node) -> str | None:
    """Why ``expression`` cannot become a variable, or ``None`` if it can."""
    spec = ctx.spec
    text = one_line(ctx.document.node_text(expression), 40)
    if expression.type in spec.not_extractable:
        return f"`{text}` ({expression.type.replace('_', ' ')}) cannot be extracted into a variable"
    if expression.type not in spec.expression_kinds:
        return f"`{text}` is not an expression"
    if expression.type in ("identifier", "scoped_identifier"):
        return f"`{text}` is already a single name; there is nothing to extract"
    if _is_whole_statement(ctx, expression):
        return f"`{text}` is a whole statement, not a value inside one"
    problem = _position_problem(ctx, expression)
    if problem is not None:
        return f"`{text}` cannot be extracted: {problem}"
    try:
        hoist_anchor(ctx, expression)
    except RefactorNotApplicableError as error:
        return error.message
    return None


def _best_at_cursor(ctx: RefactorContext, offset: int) -> Node:
    node: Node | None = ctx.document.node_at(offset)
    first_problem: str | None = None
    while node is not None:
        if node.type in ctx.spec.expression_kinds:
            problem = extraction_problem(ctx, node)
            if problem is None:
                return node
            first_problem = first_problem or problem
        if ctx.spec.is_function_like(node) or node.type in ctx.spec.statement_containers:
            break
        node = node.parent
    raise RefactorNotApplicableError(
        first_problem or "There is no expression at the cursor to extract",
        {"field": START_FIELD},
    )


def _best_in_code(ctx: RefactorContext) -> Node:
    """Without a selection: the largest compound expression that can be extracted."""
    best: Node | None = None
    best_key = (-1, -1, 0)
    stack = [ctx.document.tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.named_children)
        if node.type not in ctx.spec.expression_kinds or node.type == "identifier":
            continue
        key = (int(node.named_child_count > 0), node.end_byte - node.start_byte, -node.start_byte)
        if key <= best_key:
            continue
        if extraction_problem(ctx, node) is None:
            best, best_key = node, key
    if best is None:
        raise RefactorNotApplicableError(
            "No expression in the code can be extracted into a variable; "
            "select the expression to extract",
            {"field": START_FIELD},
        )
    return best


def _is_whole_statement(ctx: RefactorContext, expression: Node) -> bool:
    parent = expression.parent
    if parent is None or parent.type not in ctx.spec.expression_statements:
        return False
    if ctx.spec.name == "rust" and not ctx.document.node_text(parent).rstrip().endswith(";"):
        # A block's last expression without `;` is the block's value, not a statement.
        block = parent.parent
        if block is not None:
            kinds = ctx.spec.comment_kinds
            statements = [c for c in block.named_children if c.type not in kinds]
            if statements and statements[-1].id == parent.id:
                return False
    return True


def _position_problem(ctx: RefactorContext, expression: Node) -> str | None:
    parent = expression.parent
    if parent is None:
        return "it is not inside a statement"
    field = field_name(expression)
    if field == "function" and expression.type in _MEMBER_KINDS:
        return "it names a method, which cannot be separated from its call"
    if parent.type in ("update_expression", "inc_statement", "dec_statement"):
        return "it is incremented or decremented in place"
    if parent.type == "reference_expression" and any(
        c.type == "mutable_specifier" for c in parent.children
    ):
        return "it is borrowed mutably; a copy would not be updated"
    if parent.type == "unary_expression" and ctx.document.node_text(parent).startswith("&"):
        return "its address is taken; a copy would have a different address"
    if parent.type in ("decorator", "delete_statement"):
        return f"it is part of a {parent.type.replace('_', ' ')}"
    if _rust_macro_argument(expression) is not None and not _is_rust_format_string(ctx, expression):
        return "it is a token of a macro's arguments, not a value"
    child: Node = expression
    node: Node | None = parent
    while node is not None and node.type not in ctx.spec.statement_containers:
        target_parent = "assignment" in node.type or node.type in _TARGET_PARENTS
        if target_parent and field_name(child) in ("left", "name"):
            return "it is assigned to"
        child, node = node, node.parent
    return None


def hoist_anchor(ctx: RefactorContext, expression: Node) -> tuple[Node, Node]:
    """The statement the binding goes before, and the statement list holding it."""
    child: Node = expression
    node: Node | None = expression.parent
    text = one_line(ctx.document.node_text(expression), 40)
    while node is not None:
        if node.type in ctx.spec.statement_containers:
            return child, node
        problem = _barrier(ctx, node, child)
        if problem is not None:
            raise RefactorNotApplicableError(
                f"`{text}` cannot be moved before its statement: {problem}",
                {"field": START_FIELD},
            )
        child, node = node, node.parent
    raise RefactorNotApplicableError(
        f"`{text}` is not inside a function body or statement block",
        {"field": START_FIELD},
    )


def _barrier(ctx: RefactorContext, parent: Node, child: Node) -> str | None:
    spec = ctx.spec
    kind = parent.type
    field = field_name(child) or ""
    if spec.is_function_like(parent):
        return "it belongs to a closure or a function header, which runs at another time"
    if kind in spec.loops:
        allowed = spec.loops[kind]
        if field not in allowed and child.type not in allowed:
            return "it is part of a loop header that runs on every iteration"
    if kind in spec.branches:
        fields = spec.branches[kind]
        if "*" in fields or field in fields:
            return "it runs only on one branch"
        branches = parent.named_children
        if "#branches" in fields and branches and child.id in (branches[0].id, branches[-1].id):
            return "it runs only on one branch"
    if field == "right":
        operator = parent.child_by_field_name("operator")
        if operator is not None and ctx.document.node_text(operator) in spec.short_circuit:
            return "it runs only when the left operand does not short-circuit"
    return None


def _check_dependencies(
    ctx: RefactorContext, expression: Node, anchor: Node, analysis: ScopeAnalysis
) -> None:
    """Refuse when the expression uses a name its own statement declares first."""
    span = [(expression.start_byte, expression.end_byte)]
    for occurrence in analysis.in_ranges(span):
        binding = occurrence.binding
        if occurrence.declares or binding is None:
            continue
        for declaration in binding.declarations:
            if anchor.start_byte <= declaration.start_byte < expression.start_byte:
                raise RefactorNotApplicableError(
                    f"The expression uses `{occurrence.name}`, which its statement declares "
                    "before it; it cannot move above that declaration",
                    {"field": START_FIELD},
                )


def _declared_type(ctx: RefactorContext, expression: Node, analysis: ScopeAnalysis) -> str | None:
    if ctx.spec.name != "java":
        return None
    inferred = TypeOracle(ctx.document, analysis).of_expression(expression)
    if inferred is None and expression.type in _JAVA_NEEDS_TARGET_TYPE:
        raise RefactorNotApplicableError(
            "A Java lambda or method reference needs a target type, which cannot be inferred here",
            {"field": START_FIELD},
        )
    return inferred


def _edits(
    ctx: RefactorContext,
    expression: Node,
    anchor: Node,
    container: Node,
    name: str,
    *,
    type_text: str | None,
) -> list[TextEdit]:
    document = ctx.document
    binding = ctx.spec.binding(name, document.node_text(expression), type_text)
    start, end = document.node_range(expression)
    replacement = f'"{{}}", {name}' if _is_rust_format_string(ctx, expression) else name
    edits = [TextEdit(start, end, replacement)]
    edits.extend(_insert_before_statement(ctx, anchor, container, binding))
    return edits


def _insert_before_statement(
    ctx: RefactorContext, anchor: Node, container: Node, statement: str
) -> list[TextEdit]:
    """Edits that put ``statement`` on its own line before ``anchor``.

    A one-line block (``fn f() { a }``, ``def f(): return a``) is opened up
    so that every statement sits on its own line, as a formatter would.
    """
    document, code, newline = ctx.document, ctx.code, ctx.newline
    anchor_start = document.char_offset(anchor.start_byte)
    if starts_line(code, anchor_start):
        indent = line_indent(code, anchor_start)
        return [TextEdit(anchor_start, anchor_start, statement + newline + indent)]
    layout = _open_up_block(ctx, anchor, container, statement)
    if layout is not None:
        return layout
    return [TextEdit(anchor_start, anchor_start, statement + ctx.spec.same_line_separator)]


def _open_up_block(
    ctx: RefactorContext, anchor: Node, container: Node, statement: str
) -> list[TextEdit] | None:
    document, code, newline = ctx.document, ctx.code, ctx.newline
    statements = statement_children(container)
    braced = container if container.children and container.children[0].type == "{" else None
    if braced is None and container.parent is not None and container.parent.children:
        parent = container.parent
        braced = parent if parent.children[0].type == "{" else None
    if braced is not None:
        if braced.start_point.row != braced.end_point.row:
            return None
        owner_indent = line_indent(code, document.char_offset(braced.start_byte))
        opening_end = braced.children[0].end_byte
        closing_start = braced.children[-1].start_byte
    elif ctx.spec.name == "python" and container.type == "block":
        colon = container.prev_sibling
        header = container.parent
        if colon is None or header is None or colon.end_point.row != container.start_point.row:
            return None
        owner_indent = line_indent(code, document.char_offset(header.start_byte))
        opening_end = colon.end_byte
        closing_start = -1
    else:
        return None
    inner = owner_indent + ctx.indent
    edits: list[TextEdit] = []
    previous_end = opening_end
    for current in statements:
        gap_start = document.char_offset(previous_end)
        gap_end = document.char_offset(current.start_byte)
        text = newline + inner
        if current.id == anchor.id:
            text += statement + newline + inner
        edits.append(TextEdit(gap_start, gap_end, text))
        previous_end = current.end_byte
    if closing_start >= 0:
        edits.append(
            TextEdit(
                document.char_offset(previous_end),
                document.char_offset(closing_start),
                newline + owner_indent,
            )
        )
    return edits


def _explain(
    ctx: RefactorContext, expression: Node, anchor: Node, name: str, from_model: bool
) -> str:
    document = ctx.document
    text = one_line(document.node_text(expression), 50)
    origin = "proposed by the model" if from_model else "derived from the expression"
    message = (
        f"Extracted `{text}` ({line_span(expression, expression)}) into the variable `{name}` "
        f"(name {origin}), declared just before its statement, and replaced the expression "
        f"with `{name}`."
    )
    earlier_calls = _calls_before(ctx, expression, anchor)
    if earlier_calls:
        message += (
            f" Note: it is now evaluated before `{earlier_calls}`, which preceded it in the "
            "same statement."
        )
    return message


def _calls_before(ctx: RefactorContext, expression: Node, anchor: Node) -> str | None:
    """A call in the same statement that used to run before the extracted expression."""
    kinds = ctx.spec.call_kinds
    ancestors: set[int] = set()
    node: Node | None = expression
    while node is not None and node.id != anchor.id:
        ancestors.add(node.id)
        node = node.parent
    stack = [anchor]
    while stack:
        current = stack.pop()
        if current.start_byte >= expression.start_byte:
            continue
        earlier = current.end_byte <= expression.start_byte
        if earlier and current.type in kinds and current.id not in ancestors:
            return one_line(ctx.document.node_text(current), 30)
        stack.extend(current.named_children)
    return None


def _prompt(ctx: RefactorContext, expression: Node, anchor: Node) -> str:
    """Code up to the statement, then a comment asking for a variable: what a base model reads."""
    code, document, spec = ctx.code, ctx.document, ctx.spec
    anchor_start = document.char_offset(anchor.start_byte)
    item_start = document.char_offset(top_level_item(expression).start_byte)
    cut = line_start(code, anchor_start)
    if starts_line(code, anchor_start):
        start = max(item_start, cut - 1500)
        before = code[start:cut]
        if start > item_start:
            before = before[before.find("\n") + 1 :]  # begin at a whole line
        indent = line_indent(code, anchor_start)
    else:
        before = code[item_start:anchor_start].rstrip() + ctx.newline
        indent = line_indent(code, anchor_start) + ctx.indent
    comment = (
        f"{indent}{spec.comment} Store `{one_line(document.node_text(expression), 200)}` "
        "in a variable with a short, descriptive name."
    )
    # No trailing space: the model's next token carries its own leading space.
    return f"{before}{comment}{ctx.newline}{indent}{spec.binding_prompt_prefix.rstrip()}"
