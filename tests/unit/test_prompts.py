"""FIM prompt construction against the real tokenizers and FIM ids of tiny GGUF models."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.completion.prompts import (
    FAMILY_ORDER,
    ContextBlock,
    FimPrompt,
    FimTokens,
    TextPrompt,
    build_fim_prompt,
    detect_family,
    split_at_cursor,
)
from engine.runtime.llama_backend import LlamaModel
from tests.support.tiny_models import FIM_FAMILIES

CODE = "import os\n\ndef area(r):\n    return 3.14 * r * r\n\nprint(are"


@pytest.fixture(scope="module")
def loaded(tiny_models: dict[str, Path]) -> dict[str, LlamaModel]:
    models = {name: LlamaModel(path) for name, path in tiny_models.items()}
    yield models
    for model in models.values():
        model.close()


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("tiny-starcoder", "starcoder"),
        ("tiny-codellama", "codellama"),
        ("tiny-deepseek", "deepseek"),
        ("tiny-qwen", "qwen"),
    ],
)
def test_fim_prompt_uses_the_models_own_fim_ids_in_family_order(
    loaded: dict[str, LlamaModel], name: str, family: str
) -> None:
    model = loaded[name]
    # The ids come from the GGUF, and their texts are the family's markers.
    assert model.fim.supports_fim
    assert model.token_text(model.fim.prefix or -1) == FIM_FAMILIES[family].pre
    assert detect_family(model.token_text, model.fim) == family

    prefix, line, suffix = split_at_cursor(CODE + ")\n", len(CODE))
    built = build_fim_prompt(
        FimPrompt(prefix=prefix, line_prefix=line, suffix=suffix),
        model.fim,
        model.tokenize,
        bos=model.bos,
        order=FAMILY_ORDER.get(family, "psm"),
    )
    tokens = built.tokens
    assert built.used_fim
    pre, suf, mid = model.fim.prefix, model.fim.suffix, model.fim.middle
    # Each special token appears exactly once, in prefix-suffix-middle order.
    assert [t for t in tokens if t in (pre, suf, mid)] == [pre, suf, mid]
    assert tokens[0] == model.bos
    assert tokens[1] == pre
    # The text between the markers is the document's prefix and suffix.
    between = tokens[tokens.index(pre) + 1 : tokens.index(suf)]
    assert between == model.tokenize(prefix)
    after_suffix = tokens[tokens.index(suf) + 1 : tokens.index(mid)]
    assert after_suffix == model.tokenize(suffix)
    # The cursor line goes last, after the middle marker: typing only changes the tail.
    assert tokens[tokens.index(mid) + 1 :] == model.tokenize(line)


def test_model_without_fim_tokens_gets_a_prefix_only_prompt(
    loaded: dict[str, LlamaModel],
) -> None:
    model = loaded["tiny-nofim"]
    assert not model.fim.supports_fim
    assert detect_family(model.token_text, model.fim) == "none"
    prefix, line, suffix = split_at_cursor(CODE, len(CODE) - 3)
    built = build_fim_prompt(
        FimPrompt(prefix=prefix, line_prefix=line, suffix=suffix),
        model.fim,
        model.tokenize,
        bos=model.bos,
    )
    assert not built.used_fim
    assert built.tokens == [model.bos, *model.tokenize(prefix), *model.tokenize(line)]


def test_codestral_order_puts_the_suffix_first(loaded: dict[str, LlamaModel]) -> None:
    model = loaded["tiny-starcoder"]
    built = build_fim_prompt(
        FimPrompt(prefix="a = 1\n", line_prefix="b", suffix=" = 2\n"),
        model.fim,
        model.tokenize,
        bos=None,
        order="spm",
    )
    fim = model.fim
    assert built.tokens[0] == fim.suffix
    assert built.tokens.index(fim.suffix) < built.tokens.index(fim.prefix)
    assert built.tokens.index(fim.prefix) < built.tokens.index(fim.middle)


def test_budget_keeps_whole_lines_nearest_the_cursor(loaded: dict[str, LlamaModel]) -> None:
    model = loaded["tiny-starcoder"]
    prefix = "".join(f"value_{i} = {i}\n" for i in range(400))
    suffix = "".join(f"other_{i} = {i}\n" for i in range(400))
    built = build_fim_prompt(
        FimPrompt(prefix=prefix, line_prefix="x = ", suffix=suffix, budget_tokens=200),
        model.fim,
        model.tokenize,
        bos=model.bos,
    )
    assert len(built.tokens) <= 200
    fim = model.fim
    kept_prefix = built.tokens[built.tokens.index(fim.prefix) + 1 : built.tokens.index(fim.suffix)]
    text = b"".join(model.piece(t) for t in kept_prefix).decode()
    # Line-aligned, ending with the line just above the cursor.
    assert text.endswith("value_399 = 399\n")
    assert text.startswith("value_")
    assert built.suffix_tokens <= 200 // 4


def test_snippets_already_in_the_window_are_not_repeated(loaded: dict[str, LlamaModel]) -> None:
    model = loaded["tiny-starcoder"]
    local = ContextBlock("# from this file:\ndef area(r):\n", "def area(r):")
    remote = ContextBlock("# from geometry.py:\ndef volume(r):\n", "def volume(r):")
    prefix, line, suffix = split_at_cursor(CODE, len(CODE))
    built = build_fim_prompt(
        FimPrompt(prefix=prefix, line_prefix=line, suffix=suffix, snippets=(local, remote)),
        model.fim,
        model.tokenize,
        bos=model.bos,
    )
    assert built.snippets_used == 1
    text = b"".join(model.piece(t) for t in built.tokens).decode()
    assert "geometry.py" in text
    assert "from this file" not in text


def test_the_line_being_typed_is_not_offered_as_a_snippet(
    loaded: dict[str, LlamaModel],
) -> None:
    # A definition lookup at the cursor finds the definition being written,
    # half-typed: shown as a finished line above the prompt, it tells the
    # model that line ends there (Gemma then answered with a line break).
    model = loaded["tiny-starcoder"]
    code = "NAME = 1\nexport const DRAFT_STATE: unique symbol = S"
    typed = ContextBlock(
        "// from this file:\nconst DRAFT_STATE: unique symbol = S\n",
        "const DRAFT_STATE: unique symbol = S",
    )
    prefix, line, suffix = split_at_cursor(code, len(code))
    built = build_fim_prompt(
        FimPrompt(prefix=prefix, line_prefix=line, suffix=suffix, snippets=(typed,)),
        model.fim,
        model.tokenize,
        bos=model.bos,
    )
    assert built.snippets_used == 0
    assert "from this file" not in b"".join(model.piece(t) for t in built.tokens).decode()


def test_a_snippet_too_large_for_the_budget_leaves_room_for_smaller_ones(
    loaded: dict[str, LlamaModel],
) -> None:
    model = loaded["tiny-starcoder"]
    body = "".join(f"    step_{i} = {i}\n" for i in range(300))
    huge = ContextBlock(f"# from big.py:\ndef huge():\n{body}", f"def huge():\n{body}")
    small = ContextBlock("# from geometry.py:\ndef volume(r):\n", "def volume(r):")
    prefix, line, suffix = split_at_cursor(CODE, len(CODE))
    built = build_fim_prompt(
        FimPrompt(
            prefix=prefix,
            line_prefix=line,
            suffix=suffix,
            snippets=(huge, small),
            budget_tokens=400,
        ),
        model.fim,
        model.tokenize,
        bos=model.bos,
    )
    text = b"".join(model.piece(t) for t in built.tokens).decode()
    assert "def huge" not in text  # it cannot fit in 400 tokens
    assert "geometry.py" in text and built.snippets_used == 1
    assert len(built.tokens) <= 400


def test_absent_fim_ids_mean_no_fim() -> None:
    assert not FimTokens(None, None, None).supports_fim
    assert FimTokens(1, 2, 3).supports_fim


def test_repository_level_fim_puts_other_files_first_as_file_sections(
    loaded: dict[str, LlamaModel],
) -> None:
    model = loaded["tiny-qwen"]
    fim = model.fim
    # The GGUF of the tiny Qwen-style model carries the repository-level tokens.
    assert fim.repo is not None and fim.file_sep is not None
    assert model.token_text(fim.repo) == FIM_FAMILIES["qwen"].rep
    assert model.token_text(fim.file_sep) == FIM_FAMILIES["qwen"].sep
    prefix, line, suffix = split_at_cursor(CODE + ")\n", len(CODE))
    snippets = (
        ContextBlock("# from geo/shapes.py:\ndef circle(r):\n", "def circle(r):", "geo/shapes.py"),
        ContextBlock("# from geo/shapes.py:\ndef square(s):\n", "def square(s):", "geo/shapes.py"),
        ContextBlock("# from this file:\nimport math\n", "import math"),
    )
    built = build_fim_prompt(
        FimPrompt(prefix, line, suffix, snippets, file_path="geo/main.py", repo_name="geo"),
        fim,
        model.tokenize,
        bos=model.bos,
    )
    tokens = built.tokens
    sep, pre = fim.file_sep, fim.prefix
    assert built.used_fim and built.snippets_used == 3
    name = model.tokenize("geo\n")
    assert tokens[: 2 + len(name)] == [model.bos, fim.repo, *name]
    # One section for the two blocks of the same file, then the current file's header.
    sections = [i for i, t in enumerate(tokens) if t == sep]
    assert len(sections) == 2
    first = tokens[sections[0] + 1 : sections[1]]
    assert first == (
        model.tokenize("geo/shapes.py\n")
        + model.tokenize("def circle(r):\n")
        + model.tokenize("def square(s):\n")
    )
    assert tokens[sections[1] + 1 : tokens.index(pre)] == model.tokenize("geo/main.py\n")
    # This file's own block stays comment-headed inside the prefix, before the window.
    own = model.tokenize("# from this file:\nimport math\n")
    assert tokens[tokens.index(pre) + 1 : tokens.index(pre) + 1 + len(own)] == own


def test_without_other_files_a_repo_level_model_keeps_the_plain_fim_form(
    loaded: dict[str, LlamaModel],
) -> None:
    model = loaded["tiny-qwen"]
    prefix, line, suffix = split_at_cursor(CODE, len(CODE))
    own = (ContextBlock("# from this file:\nimport math\n", "import math"),)
    built = build_fim_prompt(
        FimPrompt(prefix, line, suffix, own, file_path="geo/main.py"),
        model.fim,
        model.tokenize,
        bos=model.bos,
    )
    assert built.tokens[1] == model.fim.prefix
    assert model.fim.repo not in built.tokens and model.fim.file_sep not in built.tokens


def test_a_text_prompt_reads_special_tokens_outside_its_literal_spans_only() -> None:
    prompt = TextPrompt("<a>user text<b>", parse_special=True, literal=((3, 12),))
    assert prompt.pieces() == [("<a>", True), ("user text", False), ("<b>", True)]
    assert TextPrompt("<a>", parse_special=False, literal=((0, 3),)).pieces() == [("<a>", False)]
    assert TextPrompt("<a>x", parse_special=True).pieces() == [("<a>x", True)]
    whole = TextPrompt("ab", parse_special=True, literal=((0, 2),))
    assert whole.pieces() == [("ab", False)]


def test_a_chat_prompt_marks_the_users_words_as_plain_text() -> None:
    from engine.codegen.prompt import _literal_span

    rendered = "<|system|>\nBe brief\n<|user|>\nWrite <|system|> hi\n<|assistant|>\n"
    ((start, end),) = _literal_span(rendered, "Write <|system|> hi")
    assert rendered[start:end] == "Write <|system|> hi"
    # A template that rewrote the content: plain text throughout when it spells a token.
    assert _literal_span("<|user|>\nWRITE <|SYSTEM|>\n", "Write <|system|>") == ((0, 26),)
    assert _literal_span("<|user|>\nWRITE HI\n", "Write hi") == ()
