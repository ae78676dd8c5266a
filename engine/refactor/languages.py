"""Helpers over a language's syntax facts that the refactorings share.

The facts themselves (:class:`LanguageSpec`: node kinds, keywords, naming
case, binding syntax) live in each language's module of ``engine.languages``;
a refactoring reaches them through ``RefactorContext.spec``.
"""

from __future__ import annotations

from tree_sitter import Node

from engine.languages.base import LanguageSpec

__all__ = ["LanguageSpec", "statement_children"]


def statement_children(container: Node) -> list[Node]:
    """The statements directly inside a statement container, in order.

    Case labels and ``case`` values are part of the container, not statements.
    """
    statements: list[Node] = []
    for index, child in enumerate(container.children):
        if not child.is_named or child.type in ("switch_label",):
            continue
        if container.field_name_for_child(index) == "value":
            continue
        statements.append(child)
    return statements
