"""The ``ai-ide`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.config import Settings, load_settings
from engine.engine import Engine
from engine.errors import EngineError
from engine.models.catalog import ModelSpec
from lsp_server import client_cli
from lsp_server.logs import configure_logging
from services.composition import Services

DESCRIPTION = """\
Local code assistant: a language server and a REST API over llama.cpp models.

Settings come from defaults, then --config FILE (TOML), then AI_IDE_*
environment variables (nested keys with a double underscore, e.g.
AI_IDE_HTTP__PORT=9000), then command-line options.
"""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML settings file (see README: Configuration).",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="Logging verbosity (to stderr).",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="ai-ide", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lsp = sub.add_parser(
        "lsp",
        help="language server on stdio, plus the REST sidecar on 127.0.0.1",
        description="Language server on stdio (what an editor spawns), with the REST API "
        "served from the same process and engine on 127.0.0.1.",
    )
    _common(lsp)
    lsp.add_argument("--http-port", type=int, metavar="PORT", help="sidecar port (default 8765)")
    lsp.add_argument("--no-http", action="store_true", help="do not start the REST sidecar")
    # What language clients add to a stdio server's command line by convention
    # (vscode-languageclient: `--stdio`, and `--clientProcessId=N` for some
    # transports). stdio is the only transport, so both are accepted and change nothing.
    lsp.add_argument(
        "--stdio", action="store_true", help="talk LSP over stdin/stdout (the default and only way)"
    )
    lsp.add_argument(
        "--clientProcessId",
        "--client-process-id",
        dest="client_process_id",
        type=int,
        metavar="PID",
        help="the editor's process id (accepted for compatibility; not used)",
    )
    for transport in ("--node-ipc", "--pipe", "--socket"):
        lsp.add_argument(
            transport,
            dest=f"unsupported_{transport.strip('-').replace('-', '_')}",
            nargs="?",
            const=True,
            help=argparse.SUPPRESS,
        )

    serve = sub.add_parser(
        "serve",
        help="the REST API alone",
        description="Serve the AI Services API over HTTP (for scripts and other tools).",
    )
    _common(serve)
    serve.add_argument("--host", help="bind address (default 127.0.0.1: loopback only)")
    serve.add_argument("--port", type=int, help="TCP port (default 8765)")

    models = sub.add_parser("models", help="inspect the model catalog, load a model")
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    models_list = models_sub.add_parser(
        "list", help="the catalog and each model's status", description="List catalog models."
    )
    _common(models_list)
    models_list.add_argument("--json", action="store_true", help="print JSON")
    client_cli.add_model_parsers(models_sub, _common)

    keys = sub.add_parser(
        "keys",
        help="manage REST API keys",
        description="API keys for the REST API (header X-API-Key). Only an HMAC digest of "
        "each key is stored, so a key is shown once, when it is created.",
    )
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    keys_create = keys_sub.add_parser(
        "create",
        help="create a key and print it (once)",
        description="Create an API key; the key goes to stdout, everything else to stderr.",
    )
    _common(keys_create)
    keys_create.add_argument("--name", required=True, help="what the key is for (1-64 chars)")
    keys_list = keys_sub.add_parser(
        "list", help="id, name, created, last used, revoked", description="List API keys."
    )
    _common(keys_list)
    keys_list.add_argument("--json", action="store_true", help="print JSON")
    keys_revoke = keys_sub.add_parser(
        "revoke",
        help="revoke a key (a running server refuses it within a second)",
        description="Revoke an API key by its id (see `ai-ide keys list`).",
    )
    _common(keys_revoke)
    keys_revoke.add_argument("key_id", metavar="ID", help="the key's id")
    client_cli.add_parsers(sub, _common)
    return parser


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    if args.log_level:
        overrides["log_level"] = args.log_level
    http: dict[str, Any] = {}
    for key in ("host", "port"):
        value = overrides.pop(key, None)
        if value is not None:
            http[key] = value
    settings = load_settings(args.config, **overrides)
    if http:
        settings.http = settings.http.model_copy(update=http)
    return settings


def _configure_logging(settings: Settings) -> None:
    # stdout belongs to the LSP protocol: logs always go to stderr, through a
    # queue, so that a full stderr pipe never blocks the server.
    configure_logging(settings.log_level)
    if settings.log_level != "debug":
        # pygls and httpx log every message at INFO: protocol traffic is
        # debug material, and an editor that does not read stderr would
        # otherwise fill the pipe.
        for name in ("pygls", "httpx"):
            logging.getLogger(name).setLevel(logging.WARNING)


def cmd_serve(args: argparse.Namespace) -> int:
    """``ai-ide serve``."""
    from lsp_server.runner import serve_http

    settings = _settings(args, host=args.host, port=args.port)
    _configure_logging(settings)
    engine = Engine(settings)
    services = Services(engine, settings)
    base = f"http://{settings.http.host}:{settings.http.port}/v1/ai"
    print(f"ai-ide REST API: {base}", file=sys.stderr)
    print(f"  models: {', '.join(engine.model_ids())}", file=sys.stderr)
    for line in _auth_banner(services, settings, base):
        print(line, file=sys.stderr)
    print(f"  docs:   {base}/docs", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve_http(
                engine,
                services,
                settings,
                settings.http.host,
                settings.http.port,
                freeze_heap=True,
            )
        )
    return 0


def _auth_banner(services: Services, settings: Settings, base: str) -> list[str]:
    """How to authenticate; creates the first-start key file when it is needed."""
    from lsp_server.sidecar.auth import Authenticator

    authenticator = Authenticator.from_settings(settings, services.store)
    lines = []
    if authenticator.initial_key_file is not None:
        path = authenticator.initial_key_file
        lines.append(f"  key:    {path} (readable only by you)")
        lines.append(f'  try:    curl -H "X-API-Key: $(cat {path})" {base}/health')
    elif authenticator.keys is not None:
        lines.append("  keys:   X-API-Key: <key> (create one: ai-ide keys create --name NAME)")
    if authenticator.verifier is not None:
        algorithms = ", ".join(authenticator.verifier.algorithms)
        lines.append(f"  jwt:    Authorization: Bearer <token> ({algorithms})")
    return lines


def cmd_keys(args: argparse.Namespace) -> int:
    """``ai-ide keys create|list|revoke``."""
    from services.keys import ApiKeyStore
    from services.store import Store

    settings = _settings(args)
    store = Store.from_settings(settings)
    try:
        keys = ApiKeyStore.in_data_dir(store, settings.data_dir)
        if args.keys_command == "create":
            created = keys.create(args.name)
            print(
                f"Created API key {created.info.id} ({created.info.name}). It is shown only "
                "now; send it as the X-API-Key header:",
                file=sys.stderr,
            )
            print(created.key)
            return 0
        if args.keys_command == "revoke":
            info = keys.revoke(args.key_id)
            if info is None:
                print(f"ai-ide: no API key with id {args.key_id}", file=sys.stderr)
                return 1
            print(f"Revoked API key {info.id} ({info.name}) at {info.revoked_at}", file=sys.stderr)
            return 0
        rows = keys.list_keys()
        if args.json:
            print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
            return 0
        print(f"{'ID':<14} {'NAME':<24} {'CREATED':<21} {'LAST USED':<21} REVOKED")
        for r in rows:
            print(
                f"{r.id:<14} {r.name:<24} {r.created_at:<21} {r.last_used_at or '-':<21} "
                f"{r.revoked_at or '-'}"
            )
        return 0
    finally:
        store.close()


def cmd_lsp(args: argparse.Namespace) -> int:
    """``ai-ide lsp``."""
    from lsp_server.runner import run_lsp

    for transport in ("node_ipc", "pipe", "socket"):
        if getattr(args, f"unsupported_{transport}", None) is not None:
            flag = "--" + transport.replace("_", "-")
            print(
                f"ai-ide: {flag} is not supported: the language server talks over stdio only "
                "(configure your editor's client for a stdio server)",
                file=sys.stderr,
            )
            return 2
    settings = _settings(args, port=args.http_port)
    if args.no_http:
        settings.http = settings.http.model_copy(update={"enabled": False})
    _configure_logging(settings)
    run_lsp(settings)  # does not return: the process ends with the editor


def cmd_models_list(args: argparse.Namespace) -> int:
    """``ai-ide models list``."""
    settings = _settings(args)
    engine = Engine(settings)
    try:
        views = engine.list_models()
        if args.json:
            rows = [
                {
                    "id": v.spec.id,
                    "name": v.spec.name,
                    "type": v.spec.type,
                    "status": v.status,
                    "fim": v.spec.fim,
                    "context_length": v.spec.context_length,
                    "source": _model_source(v.spec),
                    "error": v.error,
                }
                for v in views
            ]
            print(json.dumps(rows, indent=2))
        else:
            print(f"{'ID':<28} {'STATUS':<10} {'TYPE':<11} SOURCE")
            for v in views:
                source = _model_source(v.spec)
                if v.spec.embedded:
                    source = f"pypi:{source}"
                print(f"{v.spec.id:<28} {v.status:<10} {v.spec.type:<11} {source}")
                if v.error:
                    print(f"{'':<28} error: {v.error}")
    finally:
        asyncio.run(engine.close())
    return 0


def _model_source(spec: ModelSpec) -> str | None:
    """Where a model comes from: its file, its PyPI package, or its remote engine."""
    if spec.is_remote:
        return f"{spec.backend}:{spec.url}"
    return str(spec.path) if spec.path else spec.embedded


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ai-ide`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "lsp":
            return cmd_lsp(args)
        if args.command == "models" and args.models_command == "load":
            return client_cli.run(args, _settings(args))
        if args.command == "models":
            return cmd_models_list(args)
        if args.command == "keys":
            return cmd_keys(args)
        if args.command in client_cli.SCRIPT_COMMANDS:
            return client_cli.run(args, _settings(args))
    except FileNotFoundError as exc:
        print(f"ai-ide: {exc}", file=sys.stderr)
        return 2
    except EngineError as exc:
        print(f"ai-ide: {exc.message}", file=sys.stderr)
        return 2
    except ValueError as exc:  # invalid settings (pydantic) or auth configuration
        print(f"ai-ide: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
