"""rename: one binding and every reference to it, and nothing else with the same text.

Only names the resolver can follow completely are renamed: locals, parameters,
and file-level functions, classes and variables. Members reached through a
value (``obj.field``, ``self.method``), types and imported names are refused,
because their other uses cannot be found without type information.
"""

from __future__ import annotations

import re
import unicodedata

from tree_sitter import Node

from engine.errors import InvalidRequestError, RefactorNotApplicableError
from engine.refactor.context import (
    Candidate,
    RefactorContext,
    Signature,
    enclosing_functions,
    signature_of,
    top_level_item,
)
from engine.refactor.model_port import TextGenerator
from engine.refactor.naming import (
    Style,
    ask_model,
    conventional,
    fallback_variable_name,
    name_problem,
    style_of,
    unique_name,
)
from engine.refactor.schema import TextEdit
from engine.refactor.scopes import Binding, Occurrence, ScopeAnalysis, nearest
from engine.refactor.selection import START_FIELD, identifier_at

_SHORTHAND_DECLARATIONS = frozenset(
    {"shorthand_field_identifier", "shorthand_property_identifier_pattern"}
)
_SHORTHAND_REFERENCES = frozenset({"shorthand_property_identifier"})
_SHORTHAND_PARENTS = frozenset({"shorthand_field_initializer"})


def rename_target(ctx: RefactorContext, *, quick: bool = False) -> tuple[Occurrence, ScopeAnalysis]:
    """The occurrence at the selection and the analysis that resolved it, or a refusal.

    ``quick`` (for listing code actions) accepts a file-level name found in the
    outline instead of resolving the whole file.
    """
    if ctx.selection is None:
        raise RefactorNotApplicableError(
            "rename needs the cursor on the identifier to rename (selection_start)",
            {"field": START_FIELD},
        )
    node = identifier_at(ctx.document, *ctx.selection)
    name = ctx.document.node_text(node)
    analysis = ctx.analysis([top_level_item(node)])
    occurrence = _occurrence_of(analysis, node)
    file_level = occurrence is not None and (
        occurrence.binding is None or occurrence.binding.scope.parent is None
    )
    in_outline = name in ctx.document.definitions_index()
    if occurrence is not None and file_level and quick and in_outline:
        return occurrence, analysis
    if file_level:
        # Declared at file level or not in this item: only the whole file can tell.
        analysis = ctx.full_analysis()
        occurrence = _occurrence_of(analysis, node)
    if occurrence is None:
        raise RefactorNotApplicableError(
            f"`{name}` is a member, type, label or path segment, not a variable; renaming it "
            "needs type information this engine does not have",
            {"field": START_FIELD, "node_kind": node.type},
        )
    binding = occurrence.binding
    if binding is None:
        raise RefactorNotApplicableError(
            f"`{name}` is not defined in this file (a global, builtin or external name); "
            "rename it where it is defined",
            {"field": START_FIELD},
        )
    problem = _binding_problem(binding)
    if problem is not None:
        raise RefactorNotApplicableError(f"`{name}` {problem}", {"field": START_FIELD})
    return occurrence, analysis


def _occurrence_of(analysis: ScopeAnalysis, node: Node) -> Occurrence | None:
    for occurrence in analysis.occurrences:
        if occurrence.node.id == node.id:
            return occurrence
    return None


def _binding_problem(binding: Binding) -> str | None:
    if binding.kind == "import":
        return "is imported; rename it where it is defined"
    if binding.kind == "field" or binding.scope.kind == "class":
        return (
            "is a class member; its uses through instances cannot be found without type information"
        )
    if any(d.type == "type_identifier" for d in binding.declarations):
        return "is a type name; renaming types is not supported"
    return None


_WORD = re.compile(r"\w+")


def _check_other_spellings(code: str, name: str) -> None:
    """Refuse when Python code also spells ``name`` another way (``ｘ`` for ``x``).

    Python reads identifiers NFKC-normalised, so both spellings are one
    variable, while the syntax tree has two different names: a rename would
    change one and leave a ``NameError`` at the other.
    """
    for word in {w for w in _WORD.findall(code) if not w.isascii()}:
        if word != name and unicodedata.normalize("NFKC", word) == name:
            raise RefactorNotApplicableError(
                f"`{name}` is also written {word!a} in this code, which Python reads as "
                f"`{name}`; renaming would miss those uses",
                {"field": START_FIELD},
            )


def plan_rename(ctx: RefactorContext, generator: TextGenerator | None) -> list[Candidate]:
    """Candidates for renaming the binding at the selection."""
    occurrence, analysis = rename_target(ctx)
    binding = occurrence.binding
    if binding is None:  # rename_target refuses unresolved names
        raise RefactorNotApplicableError("nothing to rename", {"field": START_FIELD})
    document, spec = ctx.document, ctx.spec
    old = binding.name
    scope_node = binding.scope.node
    # Names declared or used where the binding is visible; member names don't collide.
    taken = analysis.names_in(scope_node) - {old}
    style = style_of(old)
    occurrences = analysis.occurrences_of(binding)
    _check_keyword_callers(ctx, binding)
    captures = _format_captures(ctx, analysis, binding)

    if ctx.document.language == "python":
        _check_other_spellings(ctx.request.code, old)
    names: list[tuple[str, float | None, str]] = []
    requested = ctx.request.new_name
    if requested is not None:
        requested = requested.strip()
        problem = name_problem(requested, spec)
        if problem is not None:
            raise InvalidRequestError("new_name", problem)
        if requested == old:
            raise InvalidRequestError(
                "new_name", f"new_name is the same as the current name `{old}`"
            )
        if requested in taken:
            raise RefactorNotApplicableError(
                f"`{requested}` is already used where `{old}` is visible; renaming would "
                "change what one of them refers to",
                {"field": "new_name"},
            )
        names.append((requested, None, "given in the request"))
    else:
        proposal = ask_model(generator, _prompt(ctx, binding), spec, style)
        if proposal is not None and proposal.name != old and proposal.name not in taken:
            names.append((proposal.name, proposal.confidence, "proposed by the model"))
        derived = _derived_name(ctx, binding, taken, style)
        if derived is not None and all(derived != n for n, _, _ in names):
            names.append((derived, None, "derived from its value"))
    if not names:
        reason = "no model is loaded" if generator is None else "the model's proposal was unusable"
        raise RefactorNotApplicableError(
            f"rename needs new_name: {reason} and no name can be derived for `{old}`",
            {"field": "new_name"},
        )

    signatures: tuple[Signature, ...] = ()
    if binding.kind not in ("parameter", "function"):
        functions = enclosing_functions(spec, binding.declarations[0])
        signatures = tuple(s for s in (signature_of(document, f) for f in functions) if s)
    where = _scope_description(ctx, binding)
    declarations = sum(1 for o in occurrences if o.declares)
    references = len(occurrences) - declarations
    candidates = []
    for new, confidence, origin in names:
        note = ""
        if binding.scope.parent is None:
            note = " Other files that use it are not updated."
        explanation = (
            f"Renamed `{old}` to `{new}` (name {origin}): {declarations} declaration(s) and "
            f"{references} reference(s) {where}; other names spelled `{old}` are untouched." + note
        )
        if captures:
            explanation += f" Also renamed {len(captures)} capture(s) in format strings."
        candidates.append(
            Candidate(
                edits=tuple(
                    [_edit(ctx, o, new) for o in occurrences]
                    + [TextEdit(start, start + len(old), new) for start in captures]
                ),
                explanation=explanation,
                model_confidence=confidence,
                signatures=signatures,
            )
        )
    return candidates


def _check_keyword_callers(ctx: RefactorContext, binding: Binding) -> None:
    """Refuse renaming a Python parameter that a call in the file passes by keyword."""
    if ctx.spec.name != "python" or binding.kind != "parameter":
        return
    function_name = binding.scope.node.child_by_field_name("name")
    if function_name is None:
        return
    target = ctx.document.node_text(function_name)
    stack = [ctx.document.tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.named_children)
        if node.type != "keyword_argument":
            continue
        keyword = node.child_by_field_name("name")
        call = node.parent.parent if node.parent is not None else None
        callee = call.child_by_field_name("function") if call is not None else None
        if keyword is None or callee is None or ctx.document.node_text(keyword) != binding.name:
            continue
        if ctx.document.node_text(callee).rsplit(".", 1)[-1] == target:
            raise RefactorNotApplicableError(
                f"`{target}` is called with `{binding.name}=` on line {ctx.line_of(node)}; "
                "renaming the parameter would break that call",
                {"field": START_FIELD},
            )


_FORMAT_CAPTURE = r"(?<!\{{)\{{{name}(?=[}}:])"


def _format_captures(ctx: RefactorContext, analysis: ScopeAnalysis, binding: Binding) -> list[int]:
    """Where Rust format strings capture the binding implicitly (``"{x}"``), as offsets.

    tree-sitter sees these only as string content, so they are found by pattern,
    in macro arguments within the binding's scope; if another binding of the same
    name is declared there, which one a capture means is unknown and we refuse.
    """
    if ctx.spec.name != "rust":
        return []
    document, scope = ctx.document, binding.scope.node
    pattern = re.compile(_FORMAT_CAPTURE.format(name=re.escape(binding.name)))
    found: list[int] = []
    stack = [scope]
    while stack:
        node = stack.pop()
        stack.extend(node.named_children)
        if node.type != "string_literal" or node.start_byte < binding.visible_from:
            continue
        if nearest(node, frozenset({"macro_invocation"})) is None:
            continue
        start = document.char_offset(node.start_byte)
        found.extend(start + m.start() + 1 for m in pattern.finditer(document.node_text(node)))
    others = [
        o
        for o in analysis.occurrences
        if o.declares
        and o.name == binding.name
        and o.binding is not binding
        and scope.start_byte <= o.node.start_byte < scope.end_byte
    ]
    if found and others:
        raise RefactorNotApplicableError(
            f"`{binding.name}` is captured by a format string and shadowed in the same scope; "
            "rename it by hand",
            {"field": START_FIELD},
        )
    return sorted(found)


def _edit(ctx: RefactorContext, occurrence: Occurrence, new: str) -> TextEdit:
    """Replace one occurrence; shorthand forms keep their field/property name."""
    node = occurrence.node
    start, end = ctx.document.node_range(node)
    old = occurrence.name
    parent = node.parent
    if node.type in _SHORTHAND_DECLARATIONS or node.type in _SHORTHAND_REFERENCES:
        return TextEdit(start, end, f"{old}: {new}")
    if parent is not None and parent.type in _SHORTHAND_PARENTS:
        return TextEdit(start, end, f"{old}: {new}")
    if parent is not None and parent.type == "export_specifier" and parent.named_child_count == 1:
        return TextEdit(start, end, f"{new} as {old}")
    return TextEdit(start, end, new)


def _derived_name(
    ctx: RefactorContext, binding: Binding, taken: set[str], style: Style
) -> str | None:
    value = binding.value_node
    if value is None:
        return None
    words = fallback_variable_name(ctx.document, value)
    if words in ("extracted", "result"):
        return None
    name = conventional(words, ctx.spec, style)
    if name == binding.name:
        return None
    return unique_name(name, taken | {binding.name}, ctx.spec)


def _scope_description(ctx: RefactorContext, binding: Binding) -> str:
    scope = binding.scope
    if scope.parent is None:
        return "in the file"
    node: Node | None = scope.node
    while node is not None:
        name = node.child_by_field_name("name")
        if name is not None and ctx.spec.is_function_like(node):
            return f"in `{ctx.document.node_text(name)}`"
        node = node.parent
    return f"in the {scope.node.type.replace('_', ' ')} starting on line {ctx.line_of(scope.node)}"


def _prompt(ctx: RefactorContext, binding: Binding) -> str:
    """The declaration's line, then a comment asking for a clearer name (base-model style)."""
    document, spec, code = ctx.document, ctx.spec, ctx.code
    declaration = binding.declarations[0]
    start = document.char_offset(declaration.start_byte)
    line_begin = code.rfind("\n", 0, start) + 1
    line_end = code.find("\n", start)
    line = code[line_begin : line_end if line_end >= 0 else len(code)]
    indent = line[: len(line) - len(line.lstrip())]
    prefix = (
        spec.function_prompt_prefix if binding.kind == "function" else spec.binding_prompt_prefix
    )
    return (
        f"{line}{ctx.newline}"
        f"{indent}{spec.comment} `{binding.name}` is unclear; the same {binding.kind} "
        f"with a clearer, descriptive name:{ctx.newline}{indent}{prefix.rstrip()}"
    )
