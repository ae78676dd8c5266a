"""Names that read well (issue 12): weak model proposals give way to derived names."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from engine.refactor import GeneratedText, RefactorRequest, refactor
from engine.refactor.naming import known_words, weak_name_problem

PRICE = "def total(price, quantity, tax_rate):\n    return price * quantity * (1 + tax_rate)\n"


@dataclass
class FixedName:
    """A model that always proposes ``text`` as the name."""

    text: str

    def generate(
        self, prompt: str, *, max_tokens: int, stop: Sequence[str], temperature: float = 0.0
    ) -> GeneratedText:
        return GeneratedText(self.text, 0.9, 2)


def extract(code: str, selected: str, proposal: str, operation: str = "extract_variable") -> str:
    start = code.index(selected)
    result = refactor(
        RefactorRequest(
            code=code,
            language="python",
            operation=operation,
            selection_start=start,
            selection_end=start + len(selected),
        ),
        FixedName(proposal),
    )
    return result.refactored_code


@pytest.mark.parametrize(
    "name", ["this", "self", "tmp", "temp", "x1", "value2", "it", "foo", "nulextcrate", "ab"]
)
def test_weak_names_are_recognised(name: str) -> None:
    assert weak_name_problem(name, known_words(PRICE)) is not None


@pytest.mark.parametrize(
    "name", ["product", "surface_area", "total_price", "subtotal", "price_with_tax", "maxValue"]
)
def test_good_names_pass(name: str) -> None:
    assert weak_name_problem(name, known_words(PRICE)) is None


def test_words_of_the_code_count_as_words() -> None:
    assert weak_name_problem("quantity_tax", known_words(PRICE)) is None
    assert weak_name_problem("quantity_tax") is not None


@pytest.mark.parametrize("proposal", [" this", " tmp", " x1", " nulextcrate"])
def test_a_weak_proposal_gives_the_derived_name(proposal: str) -> None:
    code = extract(PRICE, "price * quantity", proposal)
    assert re.search(r"\n    product = price \* quantity\n", code), code


def test_a_good_proposal_is_kept() -> None:
    code = extract(PRICE, "price * quantity", " subtotal")
    assert "    subtotal = price * quantity\n" in code


def test_the_fallback_for_a_call_reads_like_its_result() -> None:
    code = "def area(w, h):\n    return round(compute_surface_area(w, h), 2)\n"
    extracted = extract(code, "compute_surface_area(w, h)", " this")
    assert "    surface_area = compute_surface_area(w, h)\n" in extracted


def test_extract_function_drops_a_meaningless_name() -> None:
    code = (
        "def report(items):\n    total = sum(items)\n    count = len(items)\n"
        "    print(total / count)\n"
    )
    extracted = extract(
        code, "total = sum(items)\n    count = len(items)", " nulextcrate", "extract_method"
    )
    # Two results (total, count): the derived name is the generic one.
    assert "nulextcrate" not in extracted
    assert "total, count = extracted_function(items)" in extracted, extracted
