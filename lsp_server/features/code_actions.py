"""Refactoring code actions: listed instantly, computed by the model on resolve."""

from __future__ import annotations

from collections.abc import Sequence

from lsprotocol import types

from engine.errors import EngineError
from engine.refactor import RefactorRequest, RefactorResult, applicable_operations
from engine.runtime.messages import Priority
from lsp_server.convert import to_offsets, to_range, versioned_edit
from lsp_server.errors import to_jsonrpc_error
from lsp_server.features.commands import apply_edit_command
from lsp_server.features.lifecycle import with_model_fallback
from lsp_server.positions import Encoding, LineIndex
from lsp_server.server import AiIdeLanguageServer

ACTIONS: dict[str, tuple[str, types.CodeActionKind]] = {
    "extract_variable": ("Extract variable", types.CodeActionKind.RefactorExtract),
    "extract_method": ("Extract function", types.CodeActionKind.RefactorExtract),
    "rename": ("Rename (suggested name)", types.CodeActionKind.RefactorRewrite),
    "optimize_performance": ("Optimize", types.CodeActionKind.RefactorRewrite),
}


def _wanted(kind: types.CodeActionKind, only: Sequence[types.CodeActionKind | str] | None) -> bool:
    if not only:
        return True
    value = str(kind.value)
    wanted = [str(o.value if isinstance(o, types.CodeActionKind) else o) for o in only]
    return any(value == o or value.startswith(f"{o}.") for o in wanted)


def to_workspace_edit(
    uri: str, version: int, text: str, result: RefactorResult, encoding: Encoding
) -> types.WorkspaceEdit:
    """The refactoring's edits (offsets into ``text``, version ``version``) as a workspace edit.

    The edit names the document version it was computed on, so an editor
    whose buffer is newer refuses it instead of applying it to other text.
    """
    index = LineIndex(text)
    edits = [
        types.TextEdit(range=to_range(index, e.start, e.end, encoding), new_text=e.new_text)
        for e in result.edits
    ]
    return versioned_edit(uri, version, edits)


def trim_selection(text: str, start: int, end: int) -> tuple[int, int]:
    """A selection without the whitespace around it; a bare cursor stays where it is.

    A linewise selection (Vim's ``V``, a triple click) starts at the line's
    first column and ends at or after its line break: the statements it holds
    start after the indentation.
    """
    if start >= end:
        return start, start
    trimmed_start, trimmed_end = start, end
    while trimmed_start < trimmed_end and text[trimmed_start].isspace():
        trimmed_start += 1
    while trimmed_end > trimmed_start and text[trimmed_end - 1].isspace():
        trimmed_end -= 1
    if trimmed_start == trimmed_end:
        return start, end
    return trimmed_start, trimmed_end


def describe_checks(result: RefactorResult) -> str:
    """One line naming the safety checks and their outcomes."""
    parts = []
    for check in result.checks:
        outcome = {True: "passed", False: "FAILED", None: "skipped"}[check.passed]
        parts.append(f"{check.name} {outcome}")
    return ", ".join(parts)


def register(server: AiIdeLanguageServer) -> None:
    """Register textDocument/codeAction and codeAction/resolve."""

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[
                types.CodeActionKind.RefactorExtract,
                types.CodeActionKind.RefactorRewrite,
            ],
            resolve_provider=True,
        ),
    )
    def code_action(
        ls: AiIdeLanguageServer, params: types.CodeActionParams
    ) -> list[types.CodeAction] | None:
        # Listing must be instant: only tree-sitter decides what is offered.
        doc = ls.backend.documents.get(params.text_document.uri)
        if doc is None or doc.language is None:
            return None
        index = ls.line_index(params.text_document.uri, doc.text)
        start, end = trim_selection(doc.text, *to_offsets(index, params.range, ls.encoding))
        actions = []
        offered = applicable_operations(doc.text, doc.language, start, end, document=doc.syntax)
        for operation in offered:
            title, kind = ACTIONS[operation]
            if not _wanted(kind, params.context.only):
                continue
            actions.append(
                types.CodeAction(
                    title=title,
                    kind=kind,
                    data={
                        "uri": doc.uri,
                        "version": doc.version,
                        "operation": operation,
                        "start": start,
                        "end": end,
                    },
                )
            )
        return actions

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def resolve(ls: AiIdeLanguageServer, action: types.CodeAction) -> types.CodeAction:
        data = action.data if isinstance(action.data, dict) else {}
        doc = ls.backend.documents.get(str(data.get("uri", "")))
        if doc is None or doc.language is None or data.get("version") != doc.version:
            _tell(ls, types.MessageType.Warning, f"{action.title}: the document changed; try again")
            return action
        # The text and version the edit is computed on: the edit names this
        # version, whatever arrives while the model runs.
        text, version = doc.text, doc.version
        request = RefactorRequest(
            code=text,
            language=doc.language,
            operation=str(data["operation"]),
            selection_start=int(data["start"]),
            selection_end=int(data["end"]),
            file_path=doc.uri,
        )
        try:
            result = await with_model_fallback(
                ls,
                ls.config.model,
                lambda model_id: ls.backend.refactor(request, model_id, Priority.INTERACTIVE),
            )
        except EngineError as exc:
            if exc.code == "REQUEST_CANCELLED":
                raise to_jsonrpc_error(exc) from exc
            # Failed safety checks or an unfit selection: tell the user, apply nothing.
            _tell(ls, types.MessageType.Warning, f"{action.title} not applied: {exc.message}")
            return action
        if any(check.passed is False for check in result.checks):
            _tell(
                ls,
                types.MessageType.Warning,
                f"{action.title} not applied: safety checks failed ({describe_checks(result)})",
            )
            return action
        edit = to_workspace_edit(doc.uri, version, text, result, ls.encoding)
        if ls.refactor_edits_by_command:
            # The server sends the edit with workspace/applyEdit: the editor
            # checks the version in it, and a refusal comes back here to be
            # explained (see apply_edit_command).
            action.command = apply_edit_command(action.title, edit)
        else:
            # The edit itself, naming its version (``data`` keeps it too, for
            # clients that check it before applying, as the VS Code extension does).
            action.edit = edit
        ls.window_log_message(
            types.LogMessageParams(
                type=types.MessageType.Info,
                message=f"{action.title}: {result.explanation} "
                f"(safety {result.safety_score:.2f}, confidence {result.confidence:.2f}; "
                f"{describe_checks(result)})",
            )
        )
        return action


def _tell(ls: AiIdeLanguageServer, kind: types.MessageType, message: str) -> None:
    ls.window_show_message(types.ShowMessageParams(type=kind, message=f"ai-ide: {message}"))
