"""workspace/executeCommand: load/unload models, generate code, show status."""

from __future__ import annotations

import re
from dataclasses import asdict, replace
from typing import Any

from lsprotocol import types
from lsprotocol.converters import get_converter

from engine.codegen.prompt import CodeGenRequest
from engine.errors import EngineError, InvalidRequestError
from engine.runtime.messages import Priority, SamplingParams
from lsp_server.convert import to_offset, to_position, versioned_edit
from lsp_server.errors import to_jsonrpc_error
from lsp_server.features.lifecycle import with_model_fallback
from lsp_server.server import AiIdeLanguageServer

LOAD_MODEL = "ai-ide.loadModel"
UNLOAD_MODEL = "ai-ide.unloadModel"
GENERATE = "ai-ide.generate"
SHOW_STATUS = "ai-ide.showStatus"
APPLY_EDIT = "ai-ide.applyEdit"
COMMANDS = (LOAD_MODEL, UNLOAD_MODEL, GENERATE, SHOW_STATUS, APPLY_EDIT)

STALE = "the file changed while it was computed"


def _quiet(args: tuple[Any, ...]) -> bool:
    """``ai-ide.showStatus`` with ``{"quiet": true}``: the result only, no message to show.

    Editors that poll the status or draw it themselves (a status bar,
    ``:checkhealth``, benchmarks timing a round trip) pass it; a user's
    explicit status command gets the one-line summary as well.
    """
    return bool(args) and isinstance(args[0], dict) and args[0].get("quiet") is True


_converter = get_converter()

_COMMENT_LINE = re.compile(r"^\s*(#|//|/\*+|\*|--)\s?(.*?)\s*(\*/)?\s*$")


def comment_above(text: str, line: int) -> str | None:
    """The comment block on or right above ``line`` (without comment markers).

    Lines are the editor's: they end at LF, CRLF or a lone CR only
    (``str.splitlines`` also breaks at form feeds and U+2028, which would
    shift every line number after one).
    """
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "" and len(lines) > 1:
        lines.pop()  # the empty "line" after a final line break
    if not lines:
        return None
    line = min(line, len(lines) - 1)
    # Start at the cursor line if it is a comment, else at the line above.
    index = line if _COMMENT_LINE.match(lines[line]) else line - 1
    collected: list[str] = []
    while index >= 0:
        match = _COMMENT_LINE.match(lines[index])
        if match is None:
            break
        collected.append(match.group(2))
        index -= 1
    prompt = "\n".join(reversed([c for c in collected if c.strip()]))
    return prompt or None


async def _model_arg(ls: AiIdeLanguageServer, args: tuple[Any, ...]) -> str:
    if args and args[0] is not None:
        if isinstance(args[0], str) and args[0]:
            return args[0]
        # Not the default model: acting on another model than the one named
        # (as an object, a number) would surprise whoever sent it.
        raise InvalidRequestError(
            "arguments", "the argument must be a model id (a non-empty string)"
        )
    return ls.config.model or await ls.backend.default_model()


def _position_arg(raw: object) -> types.Position:
    """The ``position`` option of a command: ``{"line": n, "character": n}``, both >= 0."""
    if raw is None:
        return types.Position(line=0, character=0)
    line = raw.get("line", 0) if isinstance(raw, dict) else None
    character = raw.get("character", 0) if isinstance(raw, dict) else None
    if not (
        isinstance(line, int)
        and isinstance(character, int)
        and not isinstance(line, bool)
        and not isinstance(character, bool)
        and line >= 0
        and character >= 0
    ):
        raise InvalidRequestError(
            "position", "position must be {line, character} with integers >= 0"
        )
    return types.Position(line=line, character=character)


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _fail(ls: AiIdeLanguageServer, exc: EngineError) -> Exception:
    ls.window_show_message(
        types.ShowMessageParams(type=types.MessageType.Error, message=f"ai-ide: {exc.message}")
    )
    ls.window_log_message(
        types.LogMessageParams(
            type=types.MessageType.Error, message=f"{exc.code}: {exc.message} {exc.details}"
        )
    )
    return to_jsonrpc_error(exc)


def apply_edit_command(title: str, edit: types.WorkspaceEdit) -> types.Command:
    """The command that applies a refactoring's versioned ``edit`` (``ai-ide.applyEdit``)."""
    return types.Command(
        title=title,
        command=APPLY_EDIT,
        arguments=[{"title": title, "edit": _converter.unstructure(edit)}],
    )


async def apply_edit(ls: AiIdeLanguageServer, edit: types.WorkspaceEdit, title: str) -> bool:
    """Ask the editor to apply ``edit``; tell the user when it refuses.

    Every edit names the document version it was computed on: an editor whose
    text is newer refuses it (the user typed while the model ran, or the
    server missed a change), and nothing is applied to text it was not made for.
    """
    response = await ls.workspace_apply_edit_async(
        types.ApplyWorkspaceEditParams(edit=edit, label=f"ai-ide: {title}")
    )
    if not response.applied:
        reason = response.failure_reason or STALE
        ls.window_show_message(
            types.ShowMessageParams(
                type=types.MessageType.Warning,
                message=f"ai-ide: {title} not applied: {reason}; try again",
            )
        )
    return bool(response.applied)


def register(server: AiIdeLanguageServer) -> None:
    """Register the ai-ide commands."""

    @server.command(APPLY_EDIT)
    async def apply_refactoring(ls: AiIdeLanguageServer, *args: Any) -> dict[str, Any]:
        options = args[0] if args and isinstance(args[0], dict) else {}
        raw = options.get("edit")
        try:
            if not isinstance(raw, dict):  # cattrs made an empty edit of a string
                raise TypeError(f"an object is needed, not {type(raw).__name__}")
            edit = _converter.structure(raw, types.WorkspaceEdit)
        except Exception as exc:  # cattrs raises several kinds; all mean a malformed argument
            raise _fail(ls, InvalidRequestError("edit", f"not a workspace edit: {exc}")) from exc
        title = str(options.get("title") or "edit")
        return {"applied": await apply_edit(ls, edit, title)}

    @server.command(LOAD_MODEL)
    async def load_model(ls: AiIdeLanguageServer, *args: Any) -> dict[str, Any]:
        try:
            model_id = await _model_arg(ls, args)
            status = await ls.backend.load(model_id)
        except EngineError as exc:
            raise _fail(ls, exc) from exc
        return {"model_id": model_id, "status": status}

    @server.command(UNLOAD_MODEL)
    async def unload_model(ls: AiIdeLanguageServer, *args: Any) -> dict[str, Any]:
        try:
            model_id = await _model_arg(ls, args)
            result = await ls.backend.unload(model_id)
        except EngineError as exc:
            raise _fail(ls, exc) from exc
        ls.window_show_message(
            types.ShowMessageParams(
                type=types.MessageType.Info,
                message=f"ai-ide: unloaded {model_id} ({result.memory_freed_mb:.0f} MB freed)",
            )
        )
        return {
            "model_id": model_id,
            "memory_freed_mb": result.memory_freed_mb,
            "unload_time_ms": result.unload_time_ms,
        }

    @server.command(GENERATE)
    async def generate(ls: AiIdeLanguageServer, *args: Any) -> dict[str, Any]:
        options = args[0] if args and isinstance(args[0], dict) else {}
        uri = options.get("uri")
        doc = ls.backend.documents.get(uri) if isinstance(uri, str) else None
        if doc is None:
            raise _fail(ls, InvalidRequestError("uri", "generate needs an open document's uri"))
        try:
            position = _position_arg(options.get("position"))
        except InvalidRequestError as exc:
            raise _fail(ls, exc) from exc
        # The edit is computed on this text and names this version.
        version = doc.version
        assert isinstance(uri, str)  # a document was found under it
        index = ls.line_index(uri, doc.text)
        cursor = to_offset(index, position, ls.encoding)
        prompt = options.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            prompt = comment_above(doc.text, position.line)
        if not prompt:
            raise _fail(
                ls, InvalidRequestError("prompt", "give a prompt or put a comment above the cursor")
            )
        # Insert on a new line after the cursor's line, with the document's
        # own line breaks (CRLF and lone CR documents too).
        found = _LINE_BREAK.search(index.text, cursor)
        insert_at = len(index.text) if found is None else found.start()
        first_break = found or _LINE_BREAK.search(index.text)
        newline = first_break.group() if first_break is not None else "\n"
        codegen = CodeGenRequest(
            prompt=prompt,
            language=doc.language,
            # The model reads LF lines whatever the document's line breaks.
            existing_code=_LINE_BREAK.sub("\n", index.text[:insert_at]),
            model_id=ls.config.model,
            params=SamplingParams(max_tokens=max(ls.config.max_tokens, 256)),
            priority=Priority.INTERACTIVE,
        )
        try:
            result = await with_model_fallback(
                ls,
                codegen.model_id,
                lambda model_id: ls.backend.generate_code(replace(codegen, model_id=model_id)),
            )
        except EngineError as exc:
            raise _fail(ls, exc) from exc
        if not result.text.strip():
            return {"applied": False, "text": ""}
        text = result.text.replace("\r\n", "\n").replace("\n", newline)
        where = to_position(index, insert_at, ls.encoding)
        edit = versioned_edit(
            doc.uri,
            version,
            [types.TextEdit(range=types.Range(start=where, end=where), new_text=newline + text)],
        )
        applied = await apply_edit(ls, edit, "generated code")
        return {"applied": applied, "text": text}

    @server.command(SHOW_STATUS)
    async def show_status(ls: AiIdeLanguageServer, *args: Any) -> dict[str, Any]:
        try:
            report = await ls.backend.status()
            completion_model = ls.config.model or await ls.backend.default_model()
        except EngineError as exc:
            raise _fail(ls, exc) from exc
        lines = []
        for model in report.models:
            memory = f", {model.memory_usage_mb:.0f} MB" if model.memory_usage_mb else ""
            timing = (
                f", {model.inference_count} requests, avg {model.average_inference_time_ms:.0f} ms"
                if model.average_inference_time_ms is not None
                else ""
            )
            cache = (
                f", {model.cached_prompt_tokens / model.prompt_tokens:.0%} of prompt tokens"
                " from the KV cache"
                if model.prompt_tokens and model.cached_prompt_tokens is not None
                else ""
            )
            lines.append(f"{model.id}: {model.status}{memory}{timing}{cache}")
        if not _quiet(args):
            ls.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Info,
                    message=f"ai-ide ({report.status}, {ls.backend.description}): "
                    + "; ".join(lines),
                )
            )
        return {
            "status": report.status,
            "models": [asdict(model) for model in report.models],
            "active_requests": report.active_requests,
            "queue_length": report.queue_length,
            "completion_model": completion_model,
            "backend": ls.backend.description,
            "config": ls.config.model_dump(by_alias=True),
            "position_encoding": ls.encoding,
        }
