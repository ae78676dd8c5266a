"""Script commands that call a running server: complete, generate, refactor, batch, models load.

They are thin users of the Python SDK (``ai_ide.client``): each builds its
request from the wire contract, prints the server's JSON answer on stdout
(exit status 1 on an error response) and reads the API key from
``--api-key``, ``AI_IDE_API_KEY`` or the key file the server wrote into its
data directory. The ones that take seconds (``batch``, ``models load``) show
their progress on stderr (:mod:`lsp_server.progress`): a bar on a terminal,
plain lines otherwise, nothing with ``--quiet``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ai_ide import wire
from ai_ide.client import AIIDE, resolve_api_key
from ai_ide.client.errors import APIConnectionError, APIStatusError
from engine.config import Settings
from lsp_server.progress import ProgressReport, progress_mode
from services.keys import INITIAL_KEY_FILE

SCRIPT_COMMANDS = ("complete", "generate", "refactor", "batch")
POLL_SECONDS = 0.2


def client_options(parser: argparse.ArgumentParser, common: Any, *, model: bool = True) -> None:
    """The options every script command takes (server, credential, timeout, --quiet)."""
    common(parser)
    parser.add_argument("--url", help="server base URL (default http://<http.host>:<http.port>)")
    parser.add_argument("--api-key", help="API key (default: $AI_IDE_API_KEY, then the key file)")
    if model:
        parser.add_argument("--model", help="model id (default: the server's default)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress on stderr (only the JSON answer)"
    )


def add_model_parsers(
    models_sub: argparse._SubParsersAction[argparse.ArgumentParser], common: Any
) -> None:
    """``ai-ide models load ID`` (a running server loads the model; progress on stderr)."""
    load = models_sub.add_parser(
        "load",
        help="load a model on a running server and wait for it (prints JSON)",
        description="POST /models/ID/load, follow the load's progress, print the model's entry.",
    )
    client_options(load, common, model=False)
    load.add_argument("model_id", metavar="ID", help="the model's id (see `ai-ide models list`)")
    load.add_argument("--priority", choices=["low", "normal", "high", "critical"])
    load.add_argument("--force-reload", action="store_true", help="load again if loaded")


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: Any,
) -> None:
    """Add the script subcommands to the main parser."""

    def options(parser: argparse.ArgumentParser) -> None:
        client_options(parser, common)

    complete = sub.add_parser(
        "complete",
        help="complete code at a cursor (prints JSON)",
        description="POST /inference/completion for a file (or stdin) and print the response.",
    )
    options(complete)
    complete.add_argument("file", help="source file, or - for stdin")
    complete.add_argument("--cursor", type=int, help="offset of the cursor (default: end)")
    complete.add_argument("--language", help="language (default: from the file extension)")
    complete.add_argument("--max-tokens", type=int, default=128)

    generate = sub.add_parser(
        "generate",
        help="generate code from a description (prints JSON)",
        description="POST /inference/generation and print the response.",
    )
    options(generate)
    generate.add_argument("prompt", help="what to write")
    generate.add_argument("--language", help="target language")
    generate.add_argument("--existing", help="file with the code to continue")
    generate.add_argument("--max-tokens", type=int, default=256)

    refactor = sub.add_parser(
        "refactor",
        help="refactor code with safety checks (prints JSON)",
        description="POST /inference/refactor for a file and print the response.",
    )
    options(refactor)
    refactor.add_argument("file", help="source file, or - for stdin")
    refactor.add_argument(
        "--operation",
        required=True,
        choices=["extract_variable", "extract_method", "rename", "optimize_performance"],
    )
    refactor.add_argument("--start", type=int, help="selection start offset")
    refactor.add_argument("--end", type=int, help="selection end offset")
    refactor.add_argument("--language", help="language (default: from the file extension)")
    refactor.add_argument("--new-name", help="for rename: the name to use")

    batch = sub.add_parser(
        "batch",
        help="run a JSONL file of requests as one batch (prints JSON)",
        description="Each line of FILE is one batch request object ({id, model_id, type, ...}).",
    )
    options(batch)
    batch.add_argument("file", help="JSON Lines file, or - for stdin")
    batch.add_argument("--sequential", action="store_true", help="run the requests one by one")
    batch.add_argument("--max-concurrent", type=int, default=5)
    batch.add_argument("--batch-timeout", type=float, default=120.0, help="seconds for the batch")
    batch.add_argument(
        "--async", dest="background", action="store_true", help="return at once with the batch id"
    )


def stored_api_key(settings: Settings) -> str | None:
    """A key from ``AI_IDE_API_KEY`` or the key file the server wrote, if any."""
    return resolve_api_key(None, settings.data_dir / INITIAL_KEY_FILE)


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")


def _complete(client: AIIDE, args: argparse.Namespace) -> BaseModel:
    return client.ai.inference.completion(
        wire.CompletionRequestBody(
            model_id=args.model,
            context=wire.CompletionContext(
                code=_read(args.file),
                language=args.language,
                file_path=None if args.file == "-" else args.file,
                cursor_position=args.cursor,
            ),
            parameters=wire.CompletionParameters(max_tokens=args.max_tokens),
        )
    )


def _generate(client: AIIDE, args: argparse.Namespace) -> BaseModel:
    context = wire.GenerationContext(language=args.language)
    if args.existing:
        context = wire.GenerationContext(language=args.language, existing_code=_read(args.existing))
    return client.ai.inference.generation(
        wire.GenerationRequestBody(
            model_id=args.model,
            prompt=args.prompt,
            context=context,
            parameters=wire.GenerationParameters(max_tokens=args.max_tokens),
        )
    )


def _refactor(client: AIIDE, args: argparse.Namespace) -> BaseModel:
    return client.ai.inference.refactor(
        wire.RefactorRequestBody(
            model_id=args.model,
            new_name=args.new_name or None,
            code=_read(args.file),
            operation=args.operation,
            context=wire.RefactorContext(
                language=args.language,
                file_path=None if args.file == "-" else args.file,
                selection_start=args.start,
                selection_end=args.end,
            ),
        )
    )


def _batch(client: AIIDE, args: argparse.Namespace) -> BaseModel:
    requests = [json.loads(line) for line in _read(args.file).splitlines() if line.strip()]
    if args.model:
        for request in requests:
            request.setdefault("model_id", args.model)
    options = wire.BatchOptions(
        parallel_execution=not args.sequential,
        max_concurrent=args.max_concurrent,
        timeout_seconds=args.batch_timeout,
    )
    mode = progress_mode(args.quiet)
    if args.background or mode == "quiet":
        return client.ai.batch.inference(
            requests=requests, options=options, background=args.background
        )
    # To report progress the batch runs in the background and is followed
    # until it ends; what is printed is the same stored response.
    accepted = client.ai.batch.inference(requests=requests, options=options, background=True)
    deadline = time.monotonic() + args.timeout
    with ProgressReport(f"batch {accepted.batch_id}", len(requests), mode) as progress:
        while True:
            batch = client.ai.batch.get(accepted.batch_id)
            if batch.status in wire.BATCH_TERMINAL_STATUSES:
                progress.update(len(requests), batch.status)
                return batch
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"batch {accepted.batch_id} still running after {args.timeout} s"
                )
            done = batch.progress.finished_requests if batch.progress is not None else 0
            progress.update(done, "running")
            time.sleep(POLL_SECONDS)


def _models_load(client: AIIDE, args: argparse.Namespace) -> BaseModel:
    fields: dict[str, Any] = {"force_reload": args.force_reload}
    if args.priority:
        fields["priority"] = args.priority
    # The registry marks a queued load "loading" at once, so polling until the
    # status changes follows the whole load (and a failure ends it as "error").
    client.ai.models.load(args.model_id, **fields)
    deadline = time.monotonic() + args.timeout
    mode = progress_mode(args.quiet)
    with ProgressReport(f"load {args.model_id}", 100, mode, unit=" %") as progress:
        while True:
            model = client.ai.models.get(args.model_id)
            progress.update(round(model.load_progress * 100), model.status)
            if model.status != "loading":
                return model
            if time.monotonic() > deadline:
                raise TimeoutError(f"model {args.model_id} still loading after {args.timeout} s")
            time.sleep(POLL_SECONDS)


_COMMANDS: dict[str, Callable[[AIIDE, argparse.Namespace], BaseModel]] = {
    "complete": _complete,
    "generate": _generate,
    "refactor": _refactor,
    "batch": _batch,
    "models load": _models_load,
}


def _print(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Send the request with the SDK, print the JSON answer; 0 on success, 1 on an error."""
    client = AIIDE(
        api_key=args.api_key,
        key_file=str(settings.data_dir / INITIAL_KEY_FILE),
        base_url=args.url or f"http://{settings.http.host}:{settings.http.port}",
        timeout=args.timeout,
    )
    command = args.command
    if command == "models":
        command = f"models {args.models_command}"
    try:
        result = _COMMANDS[command](client, args)
    except APIStatusError as exc:
        _print(exc.envelope.model_dump(mode="json"))
        return 1
    except APIConnectionError as exc:
        _print({"error": {"code": "CONNECTION_FAILED", "message": str(exc)}})
        return 1
    except (ValidationError, json.JSONDecodeError) as exc:
        # Refused before sending: the same contract the server validates with.
        _print({"error": {"code": "VALIDATION_ERROR", "message": str(exc)}})
        return 1
    except TimeoutError as exc:
        _print({"error": {"code": "TIMEOUT", "message": str(exc)}})
        return 1
    finally:
        client.close()
    # Only what the server sent (unset defaults are not invented).
    _print(result.model_dump(mode="json", by_alias=True, exclude_unset=True))
    failed_load = isinstance(result, wire.ModelEntry) and result.status == "error"
    return 1 if failed_load else 0
