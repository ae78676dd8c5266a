"""Script commands that call a running server: complete, generate, refactor, batch.

They print the server's JSON answer on stdout (exit status 1 on an error
response) and read the API key from ``--api-key``, ``AI_IDE_API_KEY`` or the
key file the server wrote into its data directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from engine.config import Settings
from services.keys import INITIAL_KEY_FILE

SCRIPT_COMMANDS = ("complete", "generate", "refactor", "batch")


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: Any,
) -> None:
    """Add the script subcommands to the main parser."""

    def client_options(parser: argparse.ArgumentParser) -> None:
        common(parser)
        parser.add_argument(
            "--url", help="server base URL (default http://<http.host>:<http.port>)"
        )
        parser.add_argument(
            "--api-key", help="API key (default: $AI_IDE_API_KEY, then the key file)"
        )
        parser.add_argument("--model", help="model id (default: the server's default)")
        parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait")

    complete = sub.add_parser(
        "complete",
        help="complete code at a cursor (prints JSON)",
        description="POST /inference/completion for a file (or stdin) and print the response.",
    )
    client_options(complete)
    complete.add_argument("file", help="source file, or - for stdin")
    complete.add_argument("--cursor", type=int, help="offset of the cursor (default: end)")
    complete.add_argument("--language", help="language (default: from the file extension)")
    complete.add_argument("--max-tokens", type=int, default=128)

    generate = sub.add_parser(
        "generate",
        help="generate code from a description (prints JSON)",
        description="POST /inference/generation and print the response.",
    )
    client_options(generate)
    generate.add_argument("prompt", help="what to write")
    generate.add_argument("--language", help="target language")
    generate.add_argument("--existing", help="file with the code to continue")
    generate.add_argument("--max-tokens", type=int, default=256)

    refactor = sub.add_parser(
        "refactor",
        help="refactor code with safety checks (prints JSON)",
        description="POST /inference/refactor for a file and print the response.",
    )
    client_options(refactor)
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
    client_options(batch)
    batch.add_argument("file", help="JSON Lines file, or - for stdin")
    batch.add_argument("--sequential", action="store_true", help="run the requests one by one")
    batch.add_argument("--max-concurrent", type=int, default=5)
    batch.add_argument("--batch-timeout", type=float, default=120.0, help="seconds for the batch")
    batch.add_argument(
        "--async", dest="background", action="store_true", help="return at once with the batch id"
    )


def api_key(args: argparse.Namespace, settings: Settings) -> str | None:
    """The key to send: the option, the environment, or the server's key file."""
    if args.api_key:
        return str(args.api_key)
    return stored_api_key(settings)


def stored_api_key(settings: Settings) -> str | None:
    """A key from ``AI_IDE_API_KEY`` or the key file the server wrote, if any."""
    if os.environ.get("AI_IDE_API_KEY"):
        return os.environ["AI_IDE_API_KEY"]
    key_file = settings.data_dir / INITIAL_KEY_FILE
    try:
        return key_file.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")


def _body(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    model = {"model_id": args.model} if args.model else {}
    if args.command == "complete":
        code = _read(args.file)
        context: dict[str, Any] = {"code": code, "language": args.language}
        if args.file != "-":
            context["file_path"] = args.file
        if args.cursor is not None:
            context["cursor_position"] = args.cursor
        return "/inference/completion", {
            **model,
            "context": context,
            "parameters": {"max_tokens": args.max_tokens},
        }
    if args.command == "generate":
        generation_context: dict[str, Any] = {"language": args.language}
        if args.existing:
            generation_context["existing_code"] = _read(args.existing)
        return "/inference/generation", {
            **model,
            "prompt": args.prompt,
            "context": generation_context,
            "parameters": {"max_tokens": args.max_tokens},
        }
    if args.command == "refactor":
        refactor_context: dict[str, Any] = {"language": args.language}
        if args.file != "-":
            refactor_context["file_path"] = args.file
        if args.start is not None:
            refactor_context["selection_start"] = args.start
        if args.end is not None:
            refactor_context["selection_end"] = args.end
        body: dict[str, Any] = {
            **model,
            "code": _read(args.file),
            "operation": args.operation,
            "context": refactor_context,
        }
        if args.new_name:
            body["new_name"] = args.new_name
        return "/inference/refactor", body
    requests = [json.loads(line) for line in _read(args.file).splitlines() if line.strip()]
    if args.model:
        for request in requests:
            request.setdefault("model_id", args.model)
    return "/batch/inference", {
        "requests": requests,
        "options": {
            "parallel_execution": not args.sequential,
            "max_concurrent": args.max_concurrent,
            "timeout_seconds": args.batch_timeout,
            "async": args.background,
        },
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Send the request, print the JSON answer; 0 on success, 1 on an error answer."""
    base = args.url or f"http://{settings.http.host}:{settings.http.port}"
    path, body = _body(args)
    headers = {}
    key = api_key(args, settings)
    if key:
        headers["X-API-Key"] = key
    try:
        response = httpx.post(
            f"{base.rstrip('/')}/v1/ai{path}", json=body, headers=headers, timeout=args.timeout
        )
    except httpx.HTTPError as exc:
        print(json.dumps({"error": {"code": "CONNECTION_FAILED", "message": str(exc)}}))
        return 1
    try:
        payload = response.json()
    except ValueError:
        payload = {"error": {"code": "BAD_RESPONSE", "message": response.text[:500]}}
    print(json.dumps(payload, indent=2, ensure_ascii=False))
    return 0 if response.is_success else 1
