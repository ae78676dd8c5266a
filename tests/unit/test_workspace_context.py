"""Cross-file context: imports, workspace folders (files not open) and the chunk ring.

Real tree-sitter throughout; files are real files in a temporary workspace.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.completion.ring import ChunkRing, line_similarity
from engine.config import CompletionSettings
from engine.documents import DocumentStore
from engine.imports import ImportRef, imported_names, parse_imports
from engine.syntax import CompletionContext
from engine.workspace import path_from_uri


class _Request:
    def __init__(self, code: str, cursor: int, language: str = "python") -> None:
        self.code = code
        self.cursor = cursor
        self.language = language


def _context(store: DocumentStore, uri: str, code: str, marker: str) -> CompletionContext:
    store.open(uri, code.replace(marker, ""), 1, None)
    cursor = code.index(marker)
    context = store.completion_context(uri, _Request(code.replace(marker, ""), cursor))
    assert context is not None
    return context


def _sources(context: CompletionContext) -> list[str]:
    return [s.source for s in context.definitions if s.source != "this"]


def _foreign(context: CompletionContext) -> list[tuple[str, str]]:
    """Definitions from other files (the enclosing function may come from this one)."""
    return [(s.source, s.text) for s in context.definitions if s.source != "this"]


# -- imports ----------------------------------------------------------------------


def test_python_imports_keep_modules_levels_and_original_names() -> None:
    refs = parse_imports(
        "python",
        [
            "from .models import (Request,  # the body\n    Response as Resp)",
            "import os.path, json as j",
            "from .. import utils",
            "from x import *",
        ],
    )
    assert refs == [
        ImportRef("models", ("Request", "Response"), 1),
        ImportRef("os.path"),
        ImportRef("json"),
        ImportRef("", ("utils",), 2),
        ImportRef("x", (), 0),
    ]
    assert imported_names(refs) == ["Request", "Response", "utils"]


def test_ecmascript_rust_go_and_java_imports() -> None:
    assert parse_imports("typescript", ["import Base, { type A, b as c } from './lib/x';"]) == [
        ImportRef("./lib/x", ("A", "b", "Base"))
    ]
    assert parse_imports("rust", ["use crate::shapes::{Circle, area::{self, Area as A}};"]) == [
        ImportRef("crate::shapes", ("Circle",)),
        ImportRef("crate::shapes::area"),
        ImportRef("crate::shapes::area", ("Area",)),
    ]
    assert parse_imports("go", ['import (\n\t"fmt"\n\tgeo "example.com/m/geometry"\n)']) == [
        ImportRef("fmt"),
        ImportRef("example.com/m/geometry"),
    ]
    assert parse_imports("java", ["import com.acme.shapes.Circle;"]) == [
        ImportRef("com.acme.shapes", ("Circle",))
    ]


# -- workspace files --------------------------------------------------------------


def _write(root: Path, relative: str, text: str | bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    _write(root, "shop/__init__.py", "")
    _write(root, "shop/pricing.py", "def discounted_total(items, rate):\n    return 1\n")
    _write(root, "shop/tax.py", "VAT_RATE = 0.2\n\ndef apply_vat(amount):\n    return amount\n")
    _write(root, "node_modules/shop/pricing.py", "def discounted_total(x):\n    pass\n")
    _write(root, ".venv/lib/fake.py", "def apply_vat(x):\n    pass\n")
    return root


def test_an_imported_name_is_defined_from_a_file_that_is_not_open(project: Path) -> None:
    store = DocumentStore()
    store.set_workspace_folders([project.as_uri()])
    uri = (project / "shop" / "cart.py").as_uri()
    code = "from .pricing import discounted_total\n\ndef checkout(items):\n    return |\n"
    context = _context(store, uri, code, "|")
    texts = [s.text for s in context.definitions]
    # The name is not near the cursor (it is the answer): the import names it.
    assert "def discounted_total(items, rate):" in texts
    assert _sources(context) == ["shop/shop/pricing.py"]
    assert context.repo_name == "shop"


def test_a_name_near_the_cursor_is_found_by_the_background_index(project: Path) -> None:
    store = DocumentStore()
    store.set_workspace_folders([str(project)])
    uri = (project / "shop" / "cart.py").as_uri()
    code = "def checkout(amount):\n    total = apply_vat(amount)\n    return |\n"
    _context(store, uri, code, "|")  # starts the index (may or may not be done)
    assert store.workspace.wait_indexed(30)
    context = _context(store, uri + "?again", code, "|")
    # Found in shop/tax.py; the copies under node_modules and .venv are never indexed.
    assert _foreign(context) == [("shop/shop/tax.py", "def apply_vat(amount):")]


def test_a_file_changed_on_disk_is_read_again(project: Path) -> None:
    store = DocumentStore()
    store.set_workspace_folders([str(project)])
    uri = (project / "shop" / "cart.py").as_uri()
    code = "from shop.pricing import discounted_total\n\nx = |\n"
    assert "rate" in _context(store, uri, code, "|").definitions[0].text
    pricing = project / "shop" / "pricing.py"
    pricing.write_text("def discounted_total(items, coupon, rate):\n    return 2\n")
    stat = pricing.stat()
    os.utime(pricing, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert "coupon" in _context(store, uri, code, "|").definitions[0].text


def test_an_open_file_supersedes_its_copy_on_disk(project: Path) -> None:
    store = DocumentStore()
    store.set_workspace_folders([str(project)])
    pricing = (project / "shop" / "pricing.py").as_uri()
    store.open(pricing, "def discounted_total(edited):\n    return 3\n", 1, None)
    uri = (project / "shop" / "cart.py").as_uri()
    context = _context(store, uri, "from .pricing import discounted_total\nx = |\n", "|")
    assert [s.text for s in context.definitions] == ["def discounted_total(edited):"]


def test_bad_files_are_skipped_and_completion_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    _write(root, "pkg/binary.py", b"def hidden():\x00\n")
    _write(root, "pkg/latin.py", b"def latin():\n    return '\xe9'\n")
    _write(root, "pkg/huge.py", "def huge():\n    pass\n" + "#" * 300_000 + "\n")
    _write(root, "pkg/good.py", "def good_one():\n    return 1\n")
    (root / "pkg" / "loop.py").symlink_to(root / "pkg" / "loop.py")
    (root / "pkg" / "cycle").symlink_to(root, target_is_directory=True)
    locked = _write(root, "pkg/locked.py", "def locked():\n    pass\n")
    locked.chmod(0)
    try:
        store = DocumentStore(CompletionSettings(workspace_max_file_kb=64))
        store.set_workspace_folders([str(root)])
        uri = (root / "pkg" / "main.py").as_uri()
        code = (
            "from pkg.binary import hidden\nfrom pkg.latin import latin\n"
            "from pkg.huge import huge\nfrom pkg.loop import x\nfrom pkg.locked import locked\n"
            "from pkg.good import good_one\n\ny = |\n"
        )
        context = _context(store, uri, code, "|")
        # Root reads a file whatever its mode: then the locked file counts as readable.
        readable = ["def locked():"] if os.access(locked, os.R_OK) else []
        # (In the order of the names' distance from the cursor.)
        assert [text for _, text in _foreign(context)] == ["def good_one():", *readable]
        assert store.workspace.wait_indexed(30)
    finally:
        locked.chmod(0o644)


def test_the_file_cap_bounds_the_walk(tmp_path: Path) -> None:
    root = tmp_path / "many"
    for index in range(30):
        _write(root, f"m{index:02}.py", f"def f{index}():\n    pass\n")
    store = DocumentStore(CompletionSettings(workspace_max_files=10))
    store.set_workspace_folders([str(root)])
    store.completion_context(None, _Request("x = 1\n", 0))  # REST: no workspace
    uri = (root / "main.py").as_uri()
    _context(store, uri, "x = |\n", "|")
    assert store.workspace.wait_indexed(30)
    assert store.workspace.indexed_names() == 10


def test_rest_requests_never_see_workspace_files(project: Path) -> None:
    store = DocumentStore()
    store.set_workspace_folders([str(project)])
    code = "from shop.pricing import discounted_total\nx = "
    context = store.completion_context(None, _Request(code, len(code)))
    assert context is not None
    assert context.definitions == [] and context.chunks == []


# -- the ring of chunks ---------------------------------------------------------


def test_line_similarity_is_llama_vims_ratio() -> None:
    assert line_similarity(["a", "b"], ["a", "b"]) == 1.0
    assert line_similarity(["a", "b"], ["c", "d"]) == 0.0
    assert line_similarity(["a", "b", "c", "d"], ["a", "b"]) == pytest.approx(4 / 6)


def _file(name: str, lines: int) -> str:
    return "".join(f"{name}_{i} = {i}\n" for i in range(lines))


def test_the_ring_drops_duplicates_evicts_similar_chunks_and_is_bounded() -> None:
    ring = ChunkRing(max_chunks=2, chunk_lines=32)
    assert ring.note("a", _file("a", 80), 16)
    assert not ring.note("a", _file("a", 80), 16)  # the same chunk again
    edited = _file("a", 80).replace("a_3 = 3", "a_3 = 33")
    assert ring.note("a", edited, 16)  # 31 of 32 lines shared: replaces the old one
    assert len(ring) == 1 and "a_3 = 33" in ring.offered([])[0].text
    ring.note("b", _file("b", 80), 16)
    ring.note("c", _file("c", 80), 16)
    assert [c.source for c in ring.offered([])] == ["b", "c"]  # oldest first, bounded


def test_ring_chunks_like_the_cursor_text_are_not_offered() -> None:
    ring = ChunkRing(max_chunks=4, chunk_lines=8)
    ring.note("a", _file("a", 40), 4)
    ring.note("b", _file("b", 40), 4)
    around = _file("a", 8).splitlines()
    assert [c.source for c in ring.offered(around)] == ["b"]


def test_edits_far_apart_add_chunks_and_typing_in_place_does_not() -> None:
    ring = ChunkRing(max_chunks=8, chunk_lines=8)
    text = _file("a", 100)
    ring.note("a", text, 0)
    assert not ring.note_edit("a", text, text.index("a_2 ="))
    assert ring.note_edit("a", text, text.index("a_50 ="))
    assert len(ring) == 2


def test_typing_at_two_places_of_a_file_takes_each_region_once() -> None:
    # Every other place's prompt shows the ring: a chunk taken again on each
    # keystroke would have each prompt read again from its snippets on.
    ring = ChunkRing(max_chunks=8, chunk_lines=8)
    text = _file("a", 100)
    ring.note("a", text, 0)
    places = [text.index("a_50 ="), text.index("a_90 =")]
    for place in places:
        assert ring.note_edit("a", text, place)
    version = ring.version
    for _ in range(6):
        for index, place in enumerate(places):
            text = text[:place] + "x" + text[place:]
            places = [p + 1 if p >= place and i != index else p for i, p in enumerate(places)]
            places[index] = place + 1
            assert not ring.note_edit("a", text, place)
    assert ring.version == version and len(ring) == 3


def test_a_region_that_drifted_is_taken_again_in_place_of_its_old_chunk() -> None:
    ring = ChunkRing(max_chunks=8, chunk_lines=8)
    text = _file("a", 100)
    ring.note("a", text, 0)
    assert ring.note_edit("a", text, text.index("a_50 ="))
    # Lines edited in the chunk of lines 46-53, each after an edit far away
    # (line 90), so that each return is checked against the chunk held.
    for number, taken in ((50, False), (51, False), (52, True)):
        ring.note_edit("a", text, text.index("a_90 ="))
        text = text.replace(f"a_{number} = {number}\n", f"b_{number} = 0\n")
        # Two lines of eight changed: still held; the third: taken again.
        assert ring.note_edit("a", text, text.index(f"b_{number}")) is taken
    chunks = [c for c in ring.offered([]) if c.source == "a" and 0 < c.start_line < 80]
    assert len(chunks) == 1 and "b_52 = 0" in chunks[0].text  # one per region


def test_a_file_switched_back_to_adds_no_chunk_for_a_region_held() -> None:
    ring = ChunkRing(max_chunks=8, chunk_lines=8)
    first, second = _file("a", 40), _file("b", 40)
    assert ring.revisit("a", first, 20)
    assert ring.revisit("b", second, 20)
    version = ring.version
    assert not ring.revisit("a", first[:-1] + "x\n", 20)  # the last line, out of the chunk
    assert not ring.revisit("b", second.replace("b_20 = 20", "b_20 = 2"), 20)
    assert ring.version == version


def test_a_file_left_after_typing_on_in_one_region_shows_it_as_it_is_now() -> None:
    ring = ChunkRing(max_chunks=8, chunk_lines=8)
    text = _file("a", 40)
    assert ring.revisit("a", text, 20)
    # One line typed: the chunk still reads like the region, leaving adds nothing.
    text = text.replace("a_20 = 20\n", "a_20 = 20 + 1\n")
    assert not ring.note_edit("a", text, text.index("a_20"))
    assert not ring.leave("a", text)
    # Three lines typed there (keystrokes near the last edit check nothing):
    # on leaving, the region is taken again, in place of its old chunk.
    for number in (18, 19, 21):
        text = text.replace(f"a_{number} = {number}\n", f"typed_{number}()\n")
        assert not ring.note_edit("a", text, text.index(f"typed_{number}"))
    assert ring.leave("a", text)
    chunks = [c for c in ring.offered([]) if c.source == "a"]
    assert len(chunks) == 1 and "typed_21()" in chunks[0].text
    assert not ring.leave("never-seen", text)


def test_switching_files_takes_the_region_typed_in_the_file_left() -> None:
    store = DocumentStore(CompletionSettings(ring_chunk_lines=8))
    first, second = "file:///w/first.py", "file:///w/second.py"
    store.open(first, _file("first", 30), 1, None)
    store.open(second, _file("second", 30), 1, None)
    code = _file("first", 30)
    assert store.completion_context(first, _Request(code, code.index("first_15")))
    for version, number in enumerate((14, 15, 16), start=2):
        at = code.index(f"first_{number} = {number}")
        old = f"first_{number} = {number}"
        code = code.replace(old, f"typed_{number}()")
        store.edit(first, at, at + len(old), f"typed_{number}()", version)
    other = _file("second", 30)
    context = store.completion_context(second, _Request(other, len(other)))
    assert context is not None
    texts = [c.text for c in context.chunks if c.source == "first.py"]
    assert any("typed_16()" in text for text in texts), texts


def test_open_documents_feed_the_ring_of_editor_completions() -> None:
    store = DocumentStore(CompletionSettings(ring_chunk_lines=8))
    store.open("file:///w/other.py", _file("other", 30), 1, None)
    code = _file("mine", 30)
    context = _context(store, "file:///w/mine.py", code + "|", "|")
    # Both files' tops (where they were opened); the chunk taken at the cursor
    # when the editor switched to mine.py is the cursor's own text: left out.
    assert [c.source for c in context.chunks] == ["other.py", "mine.py"]
    assert context.chunks[0].text.startswith("other_0 = 0\n")
    assert len(store.ring) == 3


def test_without_other_files_only_the_document_itself_is_context(project: Path) -> None:
    store = DocumentStore(CompletionSettings(ring_chunk_lines=8))
    store.set_workspace_folders([project.as_uri()])
    store.open((project / "shop" / "tax.py").as_uri(), "VAT_RATE = 0.2\n" * 12, 1, None)
    uri = (project / "shop" / "cart.py").as_uri()
    code = "from .pricing import discounted_total\n\ndef checkout(items):\n    return |\n"
    store.open(uri, code.replace("|", ""), 1, None)
    request = _Request(code.replace("|", ""), code.index("|"))
    full = store.completion_context(uri, request)
    alone = store.completion_context(uri, request, other_files=False)
    assert full is not None and alone is not None
    assert _sources(full) == ["shop/shop/pricing.py"]
    assert [c.source for c in full.chunks] == ["shop/shop/tax.py"]
    # No other file's definitions or chunks (the document's own chunk around
    # the cursor is never offered).
    assert _sources(alone) == [] and alone.chunks == []
    assert alone.imports == full.imports


def test_a_file_uri_is_decoded_once() -> None:
    # A literal "%20" in a file name is "%2520" in its URI: decoding twice
    # would turn it into a space and name another file.
    path = Path("/tmp/project/a%20b c.py")
    assert path_from_uri(path.as_uri()) == path


def test_uris_of_other_schemes_name_no_path() -> None:
    # VS Code's unsaved buffers and notebook cells have no "//" after the scheme.
    assert path_from_uri("untitled:Untitled-1") is None
    assert path_from_uri("vscode-notebook-cell:/nb.ipynb#W0sZmlsZQ") is None
    assert path_from_uri("https://example.com/x.py") is None
    assert path_from_uri("") is None
    # Plain paths, a Windows drive letter included, are paths.
    assert path_from_uri("/tmp/project/a.py") == Path("/tmp/project/a.py")
    assert path_from_uri("src/a.py") == Path("src/a.py")
    assert path_from_uri("C:\\project\\a.py") == Path("C:\\project\\a.py")


def test_the_documents_own_chunk_around_the_cursor_is_not_offered() -> None:
    store = DocumentStore(CompletionSettings(ring_chunk_lines=8))
    store.open("file:///w/other.py", _file("other", 30), 1, None)
    code = _file("mine", 30)
    # The cursor on line 5, inside the chunk taken when mine.py was opened
    # (lines 0-7, not similar enough to lines 1-8 around the cursor to be
    # left out for that): it would show the line being typed as it was.
    cursor_at = code.index("mine_5 = 5") + len("mine_5 = ")
    context = _context(store, "file:///w/mine.py", code[:cursor_at] + "|" + code[cursor_at:], "|")
    assert [c.source for c in context.chunks] == ["other.py"]


def test_a_folder_taken_out_of_the_workspace_takes_its_ring_chunks(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    store = DocumentStore(CompletionSettings(ring_chunk_lines=8))
    store.set_workspace_folders([first.as_uri()])
    store.open((first / "a.py").as_uri(), _file("a", 30), 1, None)
    store.open((second / "b.py").as_uri(), _file("b", 30), 1, None)
    store.open("untitled:Untitled-1", _file("u", 30), 1, None)
    assert len(store.ring) == 3
    store.set_workspace_folders([second.as_uri()])
    assert [c.source for c in store.ring.offered([])] == [
        (second / "b.py").as_uri(),
        "untitled:Untitled-1",
    ]
