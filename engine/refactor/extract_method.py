"""extract_method: selected statements (or one expression) become a new function.

Parameters are the local variables the selection reads but does not declare;
return values are the variables it declares or assigns that are used after it
(or, inside a loop, again in the loop). Control flow that would escape the
helper (``return`` in the middle, ``break`` to an outer loop, ``?``, ``await``,
``yield``, ``defer``) is refused. Statically typed languages need every
parameter's type; when a type cannot be determined the request is refused
with the variable named, rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

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
from engine.refactor.edits import apply_edits, line_indent, map_offset, reindent
from engine.refactor.model_port import TextGenerator
from engine.refactor.naming import (
    ask_model,
    conventional,
    fallback_variable_name,
    identifier_texts,
    unique_name,
)
from engine.refactor.schema import TextEdit
from engine.refactor.scopes import Binding, Occurrence, ScopeAnalysis
from engine.refactor.selection import START_FIELD, require_expression, statements_for
from engine.refactor.type_inference import TypeOracle

_RETURNS = frozenset({"return_statement", "return_expression"})
_BREAKS = frozenset(
    {"break_statement", "continue_statement", "break_expression", "continue_expression"}
)
_LOOPS = frozenset(
    {
        "while_expression",
        "loop_expression",
        "for_expression",
        "while_statement",
        "for_statement",
        "do_statement",
        "for_in_statement",
        "enhanced_for_statement",
    }
)
_BREAK_TARGETS = _LOOPS | {
    "switch_statement",
    "switch_expression",
    "expression_switch_statement",
    "type_switch_statement",
    "select_statement",
}
_ESCAPES = MappingProxyType(
    {
        "try_expression": "uses `?`, which would return from the new function instead",
        "await_expression": "awaits, so the new function would have to be async",
        "await": "awaits, so the new function would have to be async",
        "yield": "yields, which would make the new function a generator",
        "yield_expression": "yields, which would make the new function a generator",
        "yield_statement": "yields from a switch expression",
        "defer_statement": "defers a call, which would run when the new function returns",
        "goto_statement": "jumps with goto",
        "fallthrough_statement": "falls through to the next case",
    }
)
_SCOPE_BARRIERS = frozenset({"class_definition", "class_declaration", "class", "impl_item"})
_RUST_COPY = frozenset(
    {f"{sign}{bits}" for sign in "iu" for bits in ("8", "16", "32", "64", "128", "size")}
    | {"f32", "f64", "bool", "char"}
)
_TYPED = frozenset({"rust", "go", "java"})


@dataclass
class ExtractionPlan:
    """What the selection reads, writes and returns, ready to be turned into code."""

    statements: list[Node]
    expression: Node | None
    function: Node  # innermost function or closure: where locals live
    method: Node | None  # innermost named function: where the helper goes
    item: Node
    params: list[Binding]
    outputs: list[Binding]
    new_outputs: set[Binding]
    written: set[Binding]
    trailing_return: Node | None
    method_owner: Node | None
    reassigned_after: set[Binding] = field(default_factory=set)
    tail_value: Node | None = None
    body_rewrites: list[tuple[int, int, str]] = field(default_factory=list)
    types: dict[Binding, str] = field(default_factory=dict)
    return_type: str | None = None
    by_reference: dict[Binding, str] = field(default_factory=dict)

    @property
    def first(self) -> Node:
        """The first selected node."""
        return self.expression if self.expression is not None else self.statements[0]

    @property
    def last(self) -> Node:
        """The last selected node."""
        return self.expression if self.expression is not None else self.statements[-1]


def extraction_plan(ctx: RefactorContext) -> ExtractionPlan:
    """Analyse the selection; refuse with a reason when it cannot become a function."""
    if ctx.selection is None or ctx.selection[0] == ctx.selection[1]:
        raise RefactorNotApplicableError(
            "extract_method needs a selection: the statements or the expression to extract",
            {"field": START_FIELD},
        )
    document, spec = ctx.document, ctx.spec
    start, end = ctx.selection
    found = statements_for(document, spec, start, end)
    statements: list[Node] = []
    expression: Node | None = None
    tail: Node | None = None
    if found is not None:
        statements = [s for s in found[1] if s.type not in spec.comment_kinds] or found[1]
        if _is_rust_tail(ctx, found[0], statements[-1]):
            # A block's final expression is its value: the helper returns it.
            last = statements[-1]
            value = last if last.type != "expression_statement" else last.named_children[0]
            if len(statements) == 1:
                expression, statements = value, []
            else:
                tail = last
    else:
        try:
            expression = require_expression(document, spec, start, end)
        except RefactorNotApplicableError as error:
            raise RefactorNotApplicableError(
                "The selection is neither whole statements nor one complete expression: "
                + error.message,
                error.details,
            ) from None
        if expression.type in ("identifier", "scoped_identifier") or (
            expression.type in spec.not_extractable
        ):
            raise RefactorNotApplicableError(
                f"`{one_line(document.node_text(expression), 40)}` is too small to become a "
                "function",
                {"field": START_FIELD},
            )
    first = expression if expression is not None else statements[0]
    function = _enclosing_function(ctx, first)
    trailing = _check_control_flow(ctx, statements or [first], expression is not None)
    item = top_level_item(first)
    analysis = ctx.analysis([item])
    plan = _data_flow(
        ctx,
        analysis,
        statements=statements,
        expression=expression,
        function=function,
        item=item,
        trailing=trailing or tail,
    )
    plan.trailing_return, plan.tail_value = trailing, tail
    _assign_types(ctx, analysis, plan)
    _check_call_site(ctx, plan)
    return plan


def _check_call_site(ctx: RefactorContext, plan: ExtractionPlan) -> None:
    """Outside Rust and Python, one call cannot both declare and reassign its results."""
    fresh = [b for b in plan.outputs if b in plan.new_outputs]
    if ctx.spec.name in ("rust", "python") or not fresh or len(fresh) == len(plan.outputs):
        return
    raise RefactorNotApplicableError(
        "The selection both declares and reassigns variables used afterwards; declare "
        f"{', '.join(b.name for b in fresh)} before it",
        {"field": START_FIELD},
    )


def _is_rust_tail(ctx: RefactorContext, container: Node, statement: Node) -> bool:
    if ctx.spec.name != "rust":
        return False
    is_expression = statement.type in ctx.spec.expression_kinds
    if statement.type != "expression_statement" and not is_expression:
        return False
    if statement.type == "expression_statement" and not statement.named_children:
        return False
    if ctx.document.node_text(statement).rstrip().endswith(";"):
        return False
    rest = [c for c in container.named_children if c.type not in ctx.spec.comment_kinds]
    return bool(rest) and rest[-1].id == statement.id


def _enclosing_function(ctx: RefactorContext, node: Node) -> Node:
    current = node.parent
    while current is not None:
        if ctx.spec.is_function_like(current):
            return current
        current = current.parent
    raise RefactorNotApplicableError(
        "extract_method works on code inside a function; the selection is at file level",
        {"field": START_FIELD},
    )


def _check_control_flow(
    ctx: RefactorContext, nodes: list[Node], expression_mode: bool
) -> Node | None:
    """Refuse escaping control flow; return a final ``return`` the call can take over."""
    trailing: Node | None = None
    spec = ctx.spec
    for index, root in enumerate(nodes):
        stack = [(root, False)]
        while stack:
            node, in_breakable = stack.pop()
            kind = node.type
            if node is not root and (spec.is_function_like(node) or kind in _SCOPE_BARRIERS):
                continue  # its returns and breaks are its own
            if kind in _ESCAPES:
                raise _refuse(ctx, node, _ESCAPES[kind])
            if kind == "self" and spec.name == "rust":
                raise _refuse(ctx, node, "uses `self`, which a free function cannot receive")
            if kind in _RETURNS:
                # Rust's `return x;` is a return expression inside a statement.
                statement = node is root or (
                    root.type == "expression_statement"
                    and node.parent is not None
                    and node.parent.id == root.id
                )
                last_top_level = statement and index == len(nodes) - 1 and not expression_mode
                if not last_top_level or trailing is not None:
                    raise _refuse(ctx, node, "returns from the middle of the selection")
                trailing = node
            if kind in _BREAKS and not in_breakable:
                raise _refuse(ctx, node, "breaks or continues a loop outside the selection")
            if kind in _BREAKS and any(_is_label(spec.name, c) for c in node.named_children):
                raise _refuse(ctx, node, "uses a labelled break or continue")
            inner = in_breakable or kind in _BREAK_TARGETS
            stack.extend((child, inner) for child in node.named_children)
    return trailing


def _is_label(language: str, node: Node) -> bool:
    if node.type in ("label", "label_name", "statement_identifier"):
        return True
    return language == "java" and node.type == "identifier"


def _refuse(ctx: RefactorContext, node: Node, reason: str) -> RefactorNotApplicableError:
    return RefactorNotApplicableError(
        f"The selection cannot become a function: line {ctx.line_of(node)} {reason}",
        {"field": START_FIELD},
    )


def _data_flow(
    ctx: RefactorContext,
    analysis: ScopeAnalysis,
    *,
    statements: list[Node],
    expression: Node | None,
    function: Node,
    item: Node,
    trailing: Node | None,
) -> ExtractionPlan:
    first = expression if expression is not None else statements[0]
    last = expression if expression is not None else statements[-1]
    span = (first.start_byte, last.end_byte)
    inside = analysis.in_ranges([span])
    python = ctx.spec.name == "python"

    def local(binding: Binding) -> bool:
        return binding.scope.parent is not None and binding.scope.kind != "class"

    def declared_inside(binding: Binding) -> bool:
        return all(span[0] <= d.start_byte < span[1] for d in binding.declarations)

    params: list[Binding] = []
    written: set[Binding] = set()
    touched: list[Binding] = []
    for occurrence in inside:
        binding = occurrence.binding
        if binding is None or not local(binding):
            continue
        if binding not in touched:
            touched.append(binding)
        if occurrence.writes:
            written.add(binding)
        if declared_inside(binding) or binding in params:
            continue
        if occurrence.declares and python:
            continue  # Python assignment to a name also bound outside: a write, below
        if python and not occurrence.reads and not _read_in(inside, binding):
            continue  # only assigned here: the helper's own local
        params.append(binding)

    loop = _enclosing_loop(first, function)
    outputs: list[Binding] = []
    reassigned_after: set[Binding] = set()
    for binding in touched:
        if binding not in written and not declared_inside(binding):
            continue
        later = [o for o in analysis.occurrences_of(binding) if _used_after(o, span, loop, binding)]
        if later:
            outputs.append(binding)
            if any(o.writes for o in later):
                reassigned_after.add(binding)
    if expression is not None and outputs:
        names = ", ".join(f"`{b.name}`" for b in outputs)
        raise RefactorNotApplicableError(
            f"The expression assigns {names}, which is used afterwards; extract whole "
            "statements instead",
            {"field": START_FIELD},
        )
    if trailing is not None and outputs:
        raise RefactorNotApplicableError(
            "The selection ends with `return` and also changes variables used later; "
            "it cannot be replaced by a single call",
            {"field": START_FIELD},
        )
    new_outputs = {b for b in outputs if declared_inside(b)}
    return ExtractionPlan(
        statements=statements,
        expression=expression,
        function=function,
        item=item,
        params=params,
        outputs=outputs,
        new_outputs=new_outputs,
        written=written,
        trailing_return=trailing,
        method=_named_function(ctx, function),
        method_owner=_method_owner(ctx, _named_function(ctx, function)),
        reassigned_after=reassigned_after,
    )


def _read_in(occurrences: list[Occurrence], binding: Binding) -> bool:
    return any(o.binding is binding and o.reads for o in occurrences)


def _enclosing_loop(node: Node, function: Node) -> Node | None:
    current = node.parent
    while current is not None and current.id != function.id:
        if current.type in _LOOPS:
            return current
        current = current.parent
    return None


def _used_after(
    occurrence: Occurrence, span: tuple[int, int], loop: Node | None, binding: Binding
) -> bool:
    start = occurrence.node.start_byte
    if span[0] <= start < span[1]:
        return False
    if start >= span[1]:
        return True
    # Inside a loop, a use before the selection sees the previous iteration's value.
    declared_outside_loop = loop is not None and all(
        not (loop.start_byte <= d.start_byte < loop.end_byte) for d in binding.declarations
    )
    return bool(declared_outside_loop and loop is not None and loop.start_byte <= start)


def _named_function(ctx: RefactorContext, function: Node) -> Node | None:
    current: Node | None = function
    while current is not None and not ctx.spec.is_function(current):
        current = current.parent
    return current


def _method_owner(ctx: RefactorContext, function: Node | None) -> Node | None:
    """The class body the helper joins as a method, when it must be one."""
    if function is None:
        return None
    spec = ctx.spec.name
    parent = function.parent
    if spec == "java":
        return parent
    if spec == "python" and parent is not None and parent.type == "block":
        owner = parent.parent
        params = function.child_by_field_name("parameters")
        first = params.named_children[0] if params is not None and params.named_children else None
        is_method = owner is not None and owner.type == "class_definition"
        if is_method and first is not None and ctx.document.node_text(first) == "self":
            return parent
    if spec in ("typescript", "tsx", "javascript") and _uses_this(ctx, function):
        if function.type == "method_definition" and parent is not None:
            return parent
        raise RefactorNotApplicableError(
            "The selection uses `this` outside a class method; a function would not receive it",
            {"field": START_FIELD},
        )
    return None


def _uses_this(ctx: RefactorContext, function: Node) -> bool:
    span = ctx.byte_span()
    if span is None:
        return False
    stack = [function]
    while stack:
        node = stack.pop()
        if node.type == "this" and span[0] <= node.start_byte < span[1]:
            return True
        stack.extend(node.named_children)
    return False


def _assign_types(ctx: RefactorContext, analysis: ScopeAnalysis, plan: ExtractionPlan) -> None:
    language = ctx.spec.name
    if language not in _TYPED and language not in ("typescript", "tsx"):
        return
    oracle = TypeOracle(ctx.document, analysis)
    required = language in _TYPED
    for binding in [*plan.params, *plan.outputs]:
        if binding in plan.types:
            continue
        inferred = oracle.of_binding(binding)
        if inferred is None and required:
            raise RefactorNotApplicableError(
                f"Cannot determine the type of `{binding.name}` for the new function's "
                "signature; add a type annotation to its declaration",
                {"field": START_FIELD},
            )
        if inferred is not None:
            plan.types[binding] = inferred
    if plan.expression is not None:
        plan.return_type = oracle.of_expression(plan.expression)
        if plan.return_type is None and required:
            raise RefactorNotApplicableError(
                "Cannot determine the type of the selected expression for the new function's "
                "return type",
                {"field": START_FIELD},
            )
    elif plan.tail_value is not None:
        plan.return_type = oracle.of_expression(plan.tail_value)
        body = plan.function.child_by_field_name("body")
        if plan.return_type is None and body is not None and plan.tail_value.parent == body:
            plan.return_type = oracle.function_return_type(plan.function)
        if plan.return_type is None and required:
            raise RefactorNotApplicableError(
                "Cannot determine the type of the selection's final expression",
                {"field": START_FIELD},
            )
    elif plan.trailing_return is not None:
        plan.return_type = oracle.function_return_type(plan.function)
        if plan.return_type is None and required and plan.trailing_return.named_child_count:
            raise RefactorNotApplicableError(
                "Cannot determine the enclosing function's return type", {"field": START_FIELD}
            )
    if language == "rust":
        for binding in plan.params:
            _rust_passing(ctx, analysis, plan, binding)
    if language == "java" and len(plan.outputs) > 1:
        names = ", ".join(b.name for b in plan.outputs)
        raise RefactorNotApplicableError(
            f"The selection changes {names}, all used afterwards; a Java method returns one value",
            {"field": START_FIELD},
        )


def _rust_passing(
    ctx: RefactorContext, analysis: ScopeAnalysis, plan: ExtractionPlan, binding: Binding
) -> None:
    """Copy types by value; other types by reference unless the selection assigns them."""
    written_type = plan.types[binding]
    copyable = written_type in _RUST_COPY or written_type.startswith("&")
    if copyable or binding in plan.written:
        return
    span = (plan.first.start_byte, plan.last.end_byte)
    mutated = binding.mutable and any(
        o.binding is binding and _is_receiver(o.node) for o in analysis.in_ranges([span])
    )
    plan.by_reference[binding] = "&mut " if mutated else "&"
    # The helper already holds a reference: `&name` in its body would be `&&T`.
    for occurrence in analysis.in_ranges([span]):
        parent = occurrence.node.parent
        if occurrence.binding is binding and parent is not None:
            borrows_mutably = any(c.type == "mutable_specifier" for c in parent.children)
            if parent.type == "reference_expression" and borrows_mutably == mutated:
                plan.body_rewrites.append((parent.start_byte, parent.end_byte, binding.name))


def _is_receiver(node: Node) -> bool:
    parent = node.parent
    if parent is None or parent.type != "field_expression":
        return False
    value = parent.child_by_field_name("value")
    return value is not None and value.id == node.id


# ------------------------------------------------------------------ generation


def plan_extract_method(ctx: RefactorContext, generator: TextGenerator | None) -> list[Candidate]:
    """Candidates (model name first, then the fallback) for extracting a function."""
    plan = extraction_plan(ctx)
    document, spec = ctx.document, ctx.spec
    taken = identifier_texts(document)
    fallback = unique_name(conventional(_fallback_name(ctx, plan), spec), taken, spec)
    names: list[tuple[str, float | None]] = []
    proposal = ask_model(generator, _prompt(ctx, plan), spec, spec.case)
    if proposal is not None and proposal.name not in taken and proposal.name != fallback:
        names.append((proposal.name, proposal.confidence))
    names.append((fallback, None))
    functions = enclosing_functions(spec, plan.first)
    signatures = tuple(s for s in (signature_of(document, f) for f in functions) if s)
    return [
        Candidate(
            edits=tuple(_edits(ctx, plan, name)),
            explanation=_explain(ctx, plan, name, confidence is not None),
            model_confidence=confidence,
            allowed_new_free=frozenset({name}),
            signatures=signatures,
        )
        for name, confidence in names
    ]


def _fallback_name(ctx: RefactorContext, plan: ExtractionPlan) -> str:
    if len(plan.outputs) == 1:
        return f"compute_{plan.outputs[0].name}"
    value = plan.expression
    final = plan.trailing_return or plan.tail_value
    if value is None and final is not None and final.named_children:
        value = final.named_children[0]
    if value is not None:
        shape = fallback_variable_name(ctx.document, value)
        if shape not in ("extracted", "result"):
            return f"compute_{shape}"
    return "extracted_function"


def _edits(ctx: RefactorContext, plan: ExtractionPlan, name: str) -> list[TextEdit]:
    document, newline = ctx.document, ctx.newline
    start = document.char_offset(plan.first.start_byte)
    end = document.char_offset(plan.last.end_byte)
    call = _call(ctx, plan, name)
    helper, insert_at, indent = _helper(ctx, plan, name)
    gap = newline * (3 if ctx.spec.name == "python" and plan.method_owner is None else 2)
    return [
        TextEdit(start, end, call),
        TextEdit(
            insert_at, insert_at, gap + indent + reindent(helper, "", indent, newline=newline)
        ),
    ]


def _arguments(ctx: RefactorContext, plan: ExtractionPlan) -> list[str]:
    args = []
    for binding in plan.params:
        if _is_implicit_receiver(ctx, plan, binding):
            continue
        args.append(plan.by_reference.get(binding, "") + binding.name)
    return args


def _is_implicit_receiver(ctx: RefactorContext, plan: ExtractionPlan, binding: Binding) -> bool:
    return (
        plan.method_owner is not None
        and ctx.spec.name == "python"
        and binding.name == "self"
        and binding.kind == "parameter"
    )


def _call(ctx: RefactorContext, plan: ExtractionPlan, name: str) -> str:
    spec = ctx.spec.name
    receiver = ""
    if plan.method_owner is not None and spec == "python":
        receiver = "self."
    elif plan.method_owner is not None and spec in ("typescript", "tsx", "javascript"):
        receiver = "this."
    call = f"{receiver}{name}({', '.join(_arguments(ctx, plan))})"
    if plan.expression is not None or plan.tail_value is not None:
        return call
    semicolon = ";" if spec in ("rust", "java", "typescript", "tsx", "javascript") else ""
    if plan.trailing_return is not None:
        return f"return {call}{semicolon}"
    outputs = plan.outputs
    if not outputs:
        return call + semicolon
    names = [b.name for b in outputs]
    new = [b in plan.new_outputs for b in outputs]
    if spec == "python":
        return f"{', '.join(names)} = {call}"
    if spec == "rust":
        if not any(new):
            target = names[0] if len(names) == 1 else f"({', '.join(names)})"
            return f"{target} = {call};"
        parts = [("mut " if b in plan.reassigned_after else "") + b.name for b in outputs]
        target = parts[0] if len(parts) == 1 else f"({', '.join(parts)})"
        return f"let {target} = {call};"
    if spec == "go":
        return f"{', '.join(names)} {':=' if all(new) else '='} {call}"
    if spec == "java":
        binding = outputs[0]
        declared = f"{plan.types[binding]} " if all(new) else ""
        return f"{declared}{binding.name} = {call};"
    target = names[0] if len(names) == 1 else f"[{', '.join(names)}]"
    if all(new):
        keyword = "let" if any(b in plan.reassigned_after for b in outputs) else "const"
        return f"{keyword} {target} = {call};"
    return f"{target} = {call};"


def _helper(ctx: RefactorContext, plan: ExtractionPlan, name: str) -> tuple[str, int, str]:
    """The helper's text (at column 0), where it goes, and the indentation it gets there."""
    document, code, spec = ctx.document, ctx.code, ctx.spec
    unit, newline = ctx.indent, ctx.newline
    body = _body(ctx, plan, unit)
    params = _parameter_list(ctx, plan)
    outputs = [b.name for b in plan.outputs]
    language = spec.name
    returned: str | None = None
    if plan.expression is not None:
        returned = document.node_text(plan.expression)
    elif outputs:
        if language == "rust":
            returned = outputs[0] if len(outputs) == 1 else f"({', '.join(outputs)})"
        elif language in ("typescript", "tsx", "javascript"):
            returned = outputs[0] if len(outputs) == 1 else f"[{', '.join(outputs)}]"
        else:
            returned = ", ".join(outputs)
    result_type = _result_type(ctx, plan)
    if language == "python":
        header = f"def {name}({params}):"
        tail = f"{unit}return {returned}" if returned is not None else None
    elif language == "rust":
        arrow = f" -> {result_type}" if result_type else ""
        header = f"fn {name}({params}){arrow} {{"
        tail = f"{unit}{returned}" if returned is not None else None
    elif language == "go":
        results = ""
        if result_type:
            results = f" ({result_type})" if "," in result_type else f" {result_type}"
        header = f"func {name}({params}){results} {{"
        tail = f"{unit}return {returned}" if returned is not None else None
    elif language == "java":
        static = "static " if plan.method and _is_static(ctx, plan.method) else ""
        header = f"private {static}{result_type or 'void'} {name}({params}) {{"
        tail = f"{unit}return {returned};" if returned is not None else None
    else:
        annotation = f": {result_type}" if result_type and language != "javascript" else ""
        keyword = "" if plan.method_owner is not None else "function "
        header = f"{keyword}{name}({params}){annotation} {{"
        tail = f"{unit}return {returned};" if returned is not None else None
    lines = [header]
    if body:
        lines.append(body)
    if tail is not None:
        lines.append(tail)
    if language != "python":
        lines.append("}")
    elif not body and tail is None:
        lines.append(f"{unit}pass")
    # A method goes after the method it came from; a function after the top-level item.
    anchor = plan.method if plan.method_owner is not None and plan.method else plan.item
    indent = line_indent(code, document.char_offset(anchor.start_byte))
    return newline.join(lines), document.char_offset(anchor.end_byte), indent


def _body(ctx: RefactorContext, plan: ExtractionPlan, unit: str) -> str:
    if plan.expression is not None:
        return ""
    document, code = ctx.document, ctx.code
    first, last = plan.statements[0], plan.statements[-1]
    start = document.char_offset(first.start_byte)
    text = document.slice_bytes(first.start_byte, last.end_byte)
    rewrites = [
        TextEdit(document.char_offset(a) - start, document.char_offset(b) - start, new)
        for a, b, new in plan.body_rewrites
    ]
    keep = [
        (
            map_offset(document.char_offset(node.start_byte) - start, rewrites),
            map_offset(document.char_offset(node.end_byte) - start, rewrites),
        )
        for node in _multiline_strings(ctx, plan.statements)
    ]
    old_indent = line_indent(code, start)
    return unit + reindent(apply_edits(text, rewrites), old_indent, unit, keep, ctx.newline)


def _multiline_strings(ctx: RefactorContext, roots: list[Node]) -> list[Node]:
    found = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node.type in ctx.spec.string_kinds and node.start_point.row != node.end_point.row:
            found.append(node)
            continue
        stack.extend(node.named_children)
    return found


def _parameter_list(ctx: RefactorContext, plan: ExtractionPlan) -> str:
    language = ctx.spec.name
    parts: list[str] = []
    if plan.method_owner is not None and language == "python":
        parts.append("self")
    for binding in plan.params:
        if _is_implicit_receiver(ctx, plan, binding):
            continue
        written_type = plan.types.get(binding)
        if language == "rust":
            reference = plan.by_reference.get(binding, "")
            mutable = "mut " if binding in plan.written and not reference else ""
            parts.append(f"{mutable}{binding.name}: {reference}{written_type}")
        elif language == "go":
            parts.append(f"{binding.name} {written_type}")
        elif language == "java":
            parts.append(f"{written_type} {binding.name}")
        elif language in ("typescript", "tsx") and written_type:
            parts.append(f"{binding.name}: {written_type}")
        else:
            parts.append(binding.name)
    return ", ".join(parts)


def _result_type(ctx: RefactorContext, plan: ExtractionPlan) -> str | None:
    if plan.expression is not None or plan.trailing_return or plan.tail_value:
        return plan.return_type
    types = [plan.types.get(b) for b in plan.outputs]
    if not types or any(t is None for t in types):
        return None
    known = [t for t in types if t is not None]
    if len(known) == 1:
        return known[0]
    if ctx.spec.name == "rust":
        return f"({', '.join(known)})"
    if ctx.spec.name == "go":
        return ", ".join(known)
    return f"[{', '.join(known)}]"


def _is_static(ctx: RefactorContext, function: Node) -> bool:
    for child in function.children:
        if child.type == "modifiers" and b"static" in (child.text or b""):
            return True
    return False


def _explain(ctx: RefactorContext, plan: ExtractionPlan, name: str, from_model: bool) -> str:
    origin = "proposed by the model" if from_model else "derived from the code"
    what = (
        f"the expression `{one_line(ctx.document.node_text(plan.expression), 40)}`"
        if plan.expression is not None
        else f"{len(plan.statements)} statement(s)"
    )
    lines = line_span(plan.first, plan.last)
    params = ", ".join(_arguments(ctx, plan)) or "no parameters"
    if plan.expression is not None or plan.trailing_return or plan.tail_value:
        returning = "returning its value"
    elif plan.outputs:
        returning = "returning " + ", ".join(f"`{b.name}`" for b in plan.outputs)
    else:
        returning = "returning nothing"
    owner = signature_of(ctx.document, plan.method) if plan.method else None
    source = f" of `{owner.name}`" if owner is not None else ""
    message = (
        f"Extracted {what} ({lines}){source} into the new function `{name}` (name {origin}), "
        f"called with ({params}) and {returning}; the selection is replaced by the call."
    )
    borrowed = [b.name for b in plan.params if b in plan.by_reference]
    if borrowed:
        message += " Passed by reference: " + ", ".join(f"`{n}`" for n in borrowed) + "."
    return message


def _prompt(ctx: RefactorContext, plan: ExtractionPlan) -> str:
    """A comment describing the helper, then the definition keyword, for a base model."""
    spec, document, newline = ctx.spec, ctx.document, ctx.newline
    source = (
        document.node_text(plan.expression)
        if plan.expression is not None
        else document.slice_bytes(plan.statements[0].start_byte, plan.statements[-1].end_byte)
    )
    lines = [line.strip() for line in source.splitlines() if line.strip()][:10]
    owner = signature_of(document, plan.method) if plan.method else None
    origin = f" from `{owner.name}`" if owner is not None else ""
    body = newline.join(f"{spec.comment}     {line}" for line in lines)
    returns = ", ".join(b.name for b in plan.outputs) or (
        "the value" if plan.expression is not None else "nothing"
    )
    return (
        f"{spec.comment} Helper function extracted{origin}. It does:{newline}{body}{newline}"
        f"{spec.comment} and returns {returns}.{newline}{spec.function_prompt_prefix.rstrip()}"
    )
