"""Lifecycle and configuration: initialize, initialized, didChangeConfiguration."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from lsprotocol import types

from engine.errors import EngineError
from lsp_server.config import parse_config
from lsp_server.server import AiIdeLanguageServer

log = logging.getLogger(__name__)

SECTION = "aiIde"

T = TypeVar("T")


THINKING_DELAY_KEY = "thinkingDelayMs"
EDITS_BY_COMMAND_KEY = "refactorEditsByCommand"


def apply_settings(ls: AiIdeLanguageServer, raw: Any) -> None:
    """Merge settings from the editor; report invalid ones and use their defaults."""
    config, problem = parse_config(raw, ls.config)
    ls.config = config
    if isinstance(raw, dict) and THINKING_DELAY_KEY in raw:
        # How long a completion runs before "thinking…" shows (milliseconds).
        delay = raw[THINKING_DELAY_KEY]
        if isinstance(delay, int) and not isinstance(delay, bool) and 0 <= delay <= 60_000:
            ls.thinking.delay_s = delay / 1000
        else:
            problem = f"ai-ide: invalid settings ({THINKING_DELAY_KEY}); using the default for it"
    if isinstance(raw, dict) and isinstance(raw.get(EDITS_BY_COMMAND_KEY), bool):
        ls.refactor_edits_by_command = raw[EDITS_BY_COMMAND_KEY]
    if problem:
        ls.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Warning, message=problem)
        )
        ls.window_log_message(
            types.LogMessageParams(type=types.MessageType.Warning, message=problem)
        )


async def pull_configuration(ls: AiIdeLanguageServer) -> None:
    """Ask the client for the ``aiIde`` section when it supports workspace/configuration."""
    workspace = ls.client_capabilities.workspace
    if not (workspace and workspace.configuration):
        return
    try:
        result = await ls.workspace_configuration_async(
            types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])
        )
    except Exception as exc:  # a client that fails the request keeps what it sent before
        log.warning("workspace/configuration failed: %s", exc)
        return
    if result and isinstance(result[0], dict):
        apply_settings(ls, result[0])


def forget_unknown_model(ls: AiIdeLanguageServer, exc: EngineError, model_id: str) -> bool:
    """Whether ``exc`` says that ``model_id``, the model a request asked for, does not exist.

    If that model is still the ``model`` setting, the setting is dropped
    (the default model serves) with one warning: an unknown id is an invalid
    setting like any other, and without this every completion failed, shown
    only in the log. The caller retries with the default model when True.
    """
    if exc.code != "MODEL_NOT_FOUND":
        return False
    if ls.config.model == model_id:
        ls.config = ls.config.model_copy(update={"model": None})
        problem = (
            f"ai-ide: invalid settings (model: no model '{model_id}' is configured); "
            "using the default model"
        )
        ls.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Warning, message=problem)
        )
        ls.window_log_message(
            types.LogMessageParams(type=types.MessageType.Warning, message=problem)
        )
    return True


async def with_model_fallback(
    ls: AiIdeLanguageServer, asked: str | None, call: Callable[[str | None], Awaitable[T]]
) -> T:
    """``call(asked)``; if the model setting ``asked`` names no model, ``call(None)``.

    ``None`` means the default model; see :func:`forget_unknown_model`.
    """
    try:
        return await call(asked)
    except EngineError as exc:
        if asked is None or not forget_unknown_model(ls, exc, asked):
            raise
    return await call(None)


async def preload_completion_model(ls: AiIdeLanguageServer) -> None:
    """Load the completion model so the first keystroke does not wait for it."""
    for _ in range(2):  # once more with the default when the setting names no model
        configured = ls.config.model
        try:
            model_id = configured or await ls.backend.default_model()
            await ls.backend.load(model_id)
            return
        except EngineError as exc:
            if configured is not None and forget_unknown_model(ls, exc, configured):
                continue
            ls.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Error, message=f"ai-ide: {exc.message}"
                )
            )
            return


def workspace_folder_uris(
    folders: Sequence[types.WorkspaceFolder] | None,
    root_uri: str | None,
    root_path: str | None,
) -> list[str]:
    """The workspace folders an editor named: its folders, else its root URI, else root path."""
    if folders:
        return [folder.uri for folder in folders]
    if root_uri:
        return [root_uri]
    return [root_path] if root_path else []


def register(server: AiIdeLanguageServer) -> None:
    """Register lifecycle handlers."""

    @server.feature(types.INITIALIZE)
    def initialize(ls: AiIdeLanguageServer, params: types.InitializeParams) -> None:
        options = params.initialization_options
        if isinstance(options, dict) and isinstance(options.get(SECTION), dict):
            options = options[SECTION]
        apply_settings(ls, options)
        # Only recorded here: the files are read lazily, off the event loop.
        ls.backend.documents.set_workspace_folders(
            workspace_folder_uris(params.workspace_folders, params.root_uri, params.root_path)
        )

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def did_change_workspace_folders(
        ls: AiIdeLanguageServer, params: types.DidChangeWorkspaceFoldersParams
    ) -> None:
        # pygls has applied the change to its workspace before calling this.
        # An editor that sends this change speaks in folders: the root URI
        # of initialize must not come back when its last folder is removed.
        folders = list(ls.workspace.folders.values())
        ls.backend.documents.set_workspace_folders(workspace_folder_uris(folders, None, None))

    @server.feature(types.INITIALIZED)
    async def initialized(ls: AiIdeLanguageServer, params: types.InitializedParams) -> None:
        ls.status.attach(asyncio.get_running_loop())
        await pull_configuration(ls)
        # In the background: initialization must not wait for a model to load.
        ls.spawn(preload_completion_model(ls))

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: AiIdeLanguageServer, params: types.DidChangeConfigurationParams
    ) -> None:
        settings = params.settings
        if isinstance(settings, dict) and isinstance(settings.get(SECTION), dict):
            apply_settings(ls, settings[SECTION])
        else:
            # Clients that send null (pull model) expect us to ask.
            await pull_configuration(ls)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: AiIdeLanguageServer, *args: object) -> None:
        ls.status.detach()
