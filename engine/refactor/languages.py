"""Per-language syntax facts the refactorings need: node kinds, keywords, conventions.

Name resolution lives in ``binding_rules``; this module only says what the
grammar's nodes mean (which are expressions, statement lists, functions, loops)
and how code is written (binding syntax, naming case, comments, indentation).
"""

from __future__ import annotations

import builtins
import keyword
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from tree_sitter import Node

Case = Literal["snake", "camel"]


@dataclass(frozen=True)
class LanguageSpec:
    """How one language's code is shaped and spelled."""

    name: str
    case: Case
    comment: str
    keywords: frozenset[str]
    avoid: frozenset[str]
    identifier_extra: str
    indent_unit: str
    statement_containers: frozenset[str]
    expression_kinds: frozenset[str]
    not_extractable: frozenset[str]
    expression_statements: frozenset[str]
    functions: frozenset[str]
    lambdas: frozenset[str]
    loops: Mapping[str, frozenset[str]]
    branches: Mapping[str, frozenset[str]]
    short_circuit: frozenset[str]
    string_kinds: frozenset[str]
    comment_kinds: frozenset[str]
    call_kinds: frozenset[str]
    same_line_separator: str
    binding_prompt_prefix: str
    function_prompt_prefix: str

    def binding(self, name: str, expression: str, type_text: str | None = None) -> str:
        """A local-variable declaration of ``name`` holding ``expression``."""
        if self.name == "rust":
            return f"let {name} = {expression};"
        if self.name == "python":
            return f"{name} = {expression}"
        if self.name == "go":
            return f"{name} := {expression}"
        if self.name == "java":
            return f"{type_text or 'var'} {name} = {expression};"
        return f"const {name} = {expression};"

    def is_function(self, node: Node) -> bool:
        """A named function or method definition."""
        return node.type in self.functions

    def is_function_like(self, node: Node) -> bool:
        """A function, method, closure or lambda."""
        return node.type in self.functions or node.type in self.lambdas


def _names(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Kinds in more than one grammar.
_ANY = frozenset({"*"})
_C_LIKE_SHORT_CIRCUIT = frozenset({"&&", "||", "??"})

_RUST_KEYWORDS = _names(
    """
    as async await break const continue crate dyn else enum extern false fn for if impl in
    let loop match mod move mut pub ref return self Self static struct super trait true type
    unsafe use where while abstract become box do final macro override priv typeof unsized
    virtual yield try gen union"""
)
_RUST_AVOID = _names("Some None Ok Err Vec String Box Option Result drop main std core alloc")

_PY_KEYWORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
_PY_AVOID = frozenset(name for name in dir(builtins) if not name.startswith("_")) | {"self", "cls"}

_JS_KEYWORDS = _names(
    """
    break case catch class const continue debugger default delete do else export extends
    false finally for function if import in instanceof new null return super switch this throw
    true try typeof var void while with yield let static enum await implements package
    protected interface private public"""
)
_JS_AVOID = _names(
    """
    arguments eval undefined NaN Infinity globalThis window document console Math JSON
    Object Array String Number Boolean Symbol Promise Map Set Error require module exports"""
)
_TS_AVOID = _JS_AVOID | _names(
    "any unknown never number string boolean symbol object bigint type namespace declare"
)

_GO_KEYWORDS = _names(
    """
    break case chan const continue default defer else fallthrough for func go goto if
    import interface map package range return select struct switch type var"""
)
_GO_AVOID = _names(
    """
    bool byte complex64 complex128 error float32 float64 int int8 int16 int32 int64 rune
    string uint uint8 uint16 uint32 uint64 uintptr true false iota nil append cap clear close
    complex copy delete imag len make max min new panic print println real recover any
    comparable fmt"""
)

_JAVA_KEYWORDS = _names(
    """
    abstract assert boolean break byte case catch char class const continue default do
    double else enum extends final finally float for goto if implements import instanceof int
    interface long native new package private protected public return short static strictfp
    super switch synchronized this throw throws transient try void volatile while true false
    null var yield record sealed permits"""
)
_JAVA_AVOID = _names("String Object Math System Integer Long Double Boolean")

_JS_EXPRESSIONS = _names(
    """
    await_expression binary_expression jsx_element jsx_self_closing_element new_expression
    ternary_expression unary_expression array arrow_function call_expression class false
    function_expression generator_function identifier member_expression null number object
    parenthesized_expression regex string subscript_expression template_string true undefined
    as_expression satisfies_expression non_null_expression type_assertion
    instantiation_expression"""
)
_JS_NOT_EXTRACTABLE = _names(
    """
    assignment_expression augmented_assignment_expression update_expression
    yield_expression this super meta_property sequence_expression"""
)
_JS_FUNCTIONS = frozenset(
    {"function_declaration", "generator_function_declaration", "method_definition"}
)
_JS_LAMBDAS = frozenset({"arrow_function", "function_expression", "function", "generator_function"})


def _js_spec(name: str, avoid: frozenset[str]) -> LanguageSpec:
    return LanguageSpec(
        name=name,
        case="camel",
        comment="//",
        keywords=_JS_KEYWORDS,
        avoid=avoid,
        identifier_extra="$",
        indent_unit="  ",
        statement_containers=frozenset(
            {"statement_block", "program", "switch_case", "switch_default", "class_static_block"}
        ),
        expression_kinds=_JS_EXPRESSIONS,
        not_extractable=_JS_NOT_EXTRACTABLE,
        expression_statements=frozenset({"expression_statement"}),
        functions=_JS_FUNCTIONS,
        lambdas=_JS_LAMBDAS,
        loops=MappingProxyType(
            {
                "while_statement": frozenset(),
                "do_statement": frozenset(),
                "for_statement": frozenset({"initializer"}),
                "for_in_statement": frozenset({"right"}),
            }
        ),
        branches=MappingProxyType(
            {
                "ternary_expression": frozenset({"consequence", "alternative"}),
                "else_clause": _ANY,
                "if_statement": frozenset({"alternative"}),
            }
        ),
        short_circuit=_C_LIKE_SHORT_CIRCUIT,
        string_kinds=frozenset({"string", "template_string"}),
        comment_kinds=frozenset({"comment"}),
        call_kinds=frozenset({"call_expression", "new_expression"}),
        same_line_separator=" ",
        binding_prompt_prefix="const ",
        function_prompt_prefix="function ",
    )


_SPECS: Mapping[str, LanguageSpec] = MappingProxyType(
    {
        "rust": LanguageSpec(
            name="rust",
            case="snake",
            comment="//",
            keywords=_RUST_KEYWORDS,
            avoid=_RUST_AVOID,
            identifier_extra="",
            indent_unit="    ",
            statement_containers=frozenset({"block"}),
            expression_kinds=_names(
                """
    array_expression async_block await_expression binary_expression
                call_expression closure_expression field_expression generic_function identifier
                if_expression index_expression macro_invocation match_expression
                parenthesized_expression range_expression reference_expression scoped_identifier
                struct_expression try_expression tuple_expression type_cast_expression
                unary_expression unsafe_block boolean_literal char_literal float_literal
                integer_literal raw_string_literal string_literal"""
            ),
            not_extractable=_names(
                """
    assignment_expression compound_assignment_expr break_expression
                continue_expression return_expression yield_expression block self
                for_expression while_expression loop_expression unit_expression"""
            ),
            expression_statements=frozenset({"expression_statement"}),
            functions=frozenset({"function_item"}),
            lambdas=frozenset({"closure_expression"}),
            loops=MappingProxyType(
                {
                    "while_expression": frozenset(),
                    "loop_expression": frozenset(),
                    "for_expression": frozenset({"value"}),
                }
            ),
            branches=MappingProxyType(
                {"else_clause": _ANY, "match_arm": _ANY, "match_block": _ANY}
            ),
            short_circuit=frozenset({"&&", "||"}),
            string_kinds=frozenset({"string_literal", "raw_string_literal"}),
            comment_kinds=frozenset({"line_comment", "block_comment"}),
            call_kinds=frozenset({"call_expression", "macro_invocation"}),
            same_line_separator=" ",
            binding_prompt_prefix="let ",
            function_prompt_prefix="fn ",
        ),
        "python": LanguageSpec(
            name="python",
            case="snake",
            comment="#",
            keywords=_PY_KEYWORDS,
            avoid=_PY_AVOID,
            identifier_extra="",
            indent_unit="    ",
            statement_containers=frozenset({"block", "module"}),
            expression_kinds=_names(
                """
    boolean_operator comparison_operator conditional_expression lambda
                not_operator attribute await binary_operator call concatenated_string dictionary
                dictionary_comprehension false float generator_expression identifier integer
                list list_comprehension none parenthesized_expression set set_comprehension
                string subscript true tuple unary_operator"""
            ),
            not_extractable=frozenset(
                {"named_expression", "list_splat", "dictionary_splat", "ellipsis", "yield"}
            ),
            expression_statements=frozenset({"expression_statement"}),
            functions=frozenset({"function_definition"}),
            lambdas=frozenset({"lambda"}),
            loops=MappingProxyType(
                {
                    "while_statement": frozenset(),
                    "for_statement": frozenset({"right"}),
                    "list_comprehension": frozenset({"for_in_clause"}),
                    "set_comprehension": frozenset({"for_in_clause"}),
                    "dictionary_comprehension": frozenset({"for_in_clause"}),
                    "generator_expression": frozenset({"for_in_clause"}),
                    "for_in_clause": frozenset({"right"}),
                }
            ),
            branches=MappingProxyType(
                {"conditional_expression": frozenset({"#branches"}), "elif_clause": _ANY}
            ),
            short_circuit=frozenset({"and", "or"}),
            string_kinds=frozenset({"string", "concatenated_string"}),
            comment_kinds=frozenset({"comment"}),
            call_kinds=frozenset({"call"}),
            same_line_separator="; ",
            binding_prompt_prefix="",
            function_prompt_prefix="def ",
        ),
        "typescript": _js_spec("typescript", _TS_AVOID),
        "tsx": _js_spec("tsx", _TS_AVOID),
        "javascript": _js_spec("javascript", _JS_AVOID),
        "go": LanguageSpec(
            name="go",
            case="camel",
            comment="//",
            keywords=_GO_KEYWORDS,
            avoid=_GO_AVOID,
            identifier_extra="",
            indent_unit="\t",
            statement_containers=frozenset({"statement_list"}),
            expression_kinds=_names(
                """
    binary_expression call_expression composite_literal false float_literal
                func_literal identifier imaginary_literal index_expression int_literal
                interpreted_string_literal parenthesized_expression raw_string_literal
                rune_literal selector_expression slice_expression true
                type_assertion_expression type_conversion_expression unary_expression"""
            ),
            not_extractable=frozenset({"nil", "iota"}),
            expression_statements=frozenset({"expression_statement"}),
            functions=frozenset({"function_declaration", "method_declaration"}),
            lambdas=frozenset({"func_literal"}),
            loops=MappingProxyType(
                {
                    "for_statement": frozenset({"range_clause", "for_clause"}),
                    "for_clause": frozenset({"initializer"}),
                    "range_clause": frozenset({"right"}),
                }
            ),
            branches=MappingProxyType({"if_statement": frozenset({"alternative"})}),
            short_circuit=frozenset({"&&", "||"}),
            string_kinds=frozenset({"raw_string_literal", "interpreted_string_literal"}),
            comment_kinds=frozenset({"comment"}),
            call_kinds=frozenset({"call_expression"}),
            same_line_separator="; ",
            binding_prompt_prefix="",
            function_prompt_prefix="func ",
        ),
        "java": LanguageSpec(
            name="java",
            case="camel",
            comment="//",
            keywords=_JAVA_KEYWORDS,
            avoid=_JAVA_AVOID,
            identifier_extra="$",
            indent_unit="    ",
            statement_containers=frozenset(
                {"block", "switch_block_statement_group", "constructor_body"}
            ),
            expression_kinds=_names(
                """
    binary_expression instanceof_expression lambda_expression ternary_expression
                unary_expression cast_expression switch_expression class_literal identifier
                parenthesized_expression object_creation_expression field_access array_access
                method_invocation method_reference array_creation_expression string_literal
                character_literal true false decimal_integer_literal hex_integer_literal
                octal_integer_literal binary_integer_literal decimal_floating_point_literal
                hex_floating_point_literal"""
            ),
            not_extractable=frozenset(
                {"assignment_expression", "update_expression", "this", "super", "null_literal"}
            ),
            expression_statements=frozenset({"expression_statement"}),
            functions=frozenset({"method_declaration", "constructor_declaration"}),
            lambdas=frozenset({"lambda_expression"}),
            loops=MappingProxyType(
                {
                    "while_statement": frozenset(),
                    "do_statement": frozenset(),
                    "for_statement": frozenset({"init"}),
                    "enhanced_for_statement": frozenset({"value"}),
                }
            ),
            branches=MappingProxyType(
                {
                    "ternary_expression": frozenset({"consequence", "alternative"}),
                    "if_statement": frozenset({"alternative"}),
                    "switch_rule": _ANY,
                }
            ),
            short_circuit=frozenset({"&&", "||"}),
            string_kinds=frozenset({"string_literal"}),
            comment_kinds=frozenset({"line_comment", "block_comment"}),
            call_kinds=frozenset({"method_invocation", "object_creation_expression"}),
            same_line_separator=" ",
            binding_prompt_prefix="var ",
            function_prompt_prefix="private static void ",
        ),
    }
)


def spec_for(language: str) -> LanguageSpec:
    """The spec of a canonical language name."""
    return _SPECS[language]


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
