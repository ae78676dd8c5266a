"""The worker's memo of prompt-part token ids."""

from __future__ import annotations

from engine.runtime.token_memo import TokenMemo


class CountingTokenizer:
    """One id per character, counting the texts it was asked for."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, text: str) -> list[int]:
        self.calls.append(text)
        return [ord(c) for c in text]


def test_a_long_text_is_tokenized_once_and_each_caller_gets_its_own_list() -> None:
    tokenizer = CountingTokenizer()
    memo = TokenMemo(tokenizer, min_chars=4)
    first = memo("window text")
    first.append(0)  # the caller's list: the memo's copy is untouched
    second = memo("window text")
    assert second == [ord(c) for c in "window text"]
    assert tokenizer.calls == ["window text"]
    assert (memo.hits, memo.misses) == (1, 1)


def test_short_texts_go_straight_to_the_tokenizer() -> None:
    tokenizer = CountingTokenizer()
    memo = TokenMemo(tokenizer, min_chars=4)
    memo("ab")
    memo("ab")
    assert tokenizer.calls == ["ab", "ab"] and memo.hits == memo.misses == 0


def test_the_memo_is_bounded_by_entries_and_characters() -> None:
    tokenizer = CountingTokenizer()
    memo = TokenMemo(tokenizer, min_chars=1, max_entries=2, max_chars=1000)
    for text in ("aaaa", "bbbb", "cccc"):
        memo(text)
    memo("aaaa")  # the least recently used one went
    assert tokenizer.calls == ["aaaa", "bbbb", "cccc", "aaaa"]
    big = TokenMemo(tokenizer, min_chars=1, max_entries=10, max_chars=10)
    big("x" * 6)
    big("y" * 6)  # 12 characters: the older one is dropped
    tokenizer.calls.clear()
    big("y" * 6)
    big("x" * 6)
    assert tokenizer.calls == ["x" * 6]
