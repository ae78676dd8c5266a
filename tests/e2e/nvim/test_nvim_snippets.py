"""The editor snippets of editors/README.md: parsed, checked, and run where possible.

The Neovim snippets run in headless Neovim (a test dependency); the Emacs one
runs in ``emacs --batch`` against the language server when Emacs and eglot are
installed; the Helix TOML and the Zed JSON and extension manifest are parsed
and checked against the server's command line and settings.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import lsp_server_command
from tests.support.nvim_helpers import PLUGIN, REPO, nvim_binary

README = REPO / "editors" / "README.md"
VSCODE_MANIFEST = REPO / "editors" / "vscode" / "package.json"
ZED = REPO / "editors" / "zed"

# Keys of the server's settings object (initializationOptions / section "aiIde").
SERVER_SETTINGS = {"model", "maxTokens", "languages", "sidecar"}


def snippets(section: str, language: str) -> list[str]:
    """The fenced ``language`` blocks under the README's ``## {section}`` heading."""
    text = README.read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.M)
    matching = [p for p in parts if p.startswith(section)]
    assert matching, f"no section {section!r} in {README}"
    blocks = re.findall(rf"^```{language}\n(.*?)^```", matching[0], flags=re.M | re.S)
    assert blocks, f"no {language} block in section {section!r}"
    return blocks


def test_vscode_settings_snippet_names_contributed_settings() -> None:
    (settings,) = snippets("VS Code", "json")
    values = json.loads(settings)
    manifest = json.loads(VSCODE_MANIFEST.read_text(encoding="utf-8"))
    contributed = manifest["contributes"]["configuration"]["properties"]
    assert set(values) <= set(contributed), set(values) - set(contributed)
    assert values["aiIde.server.command"][1] == "lsp"


def test_helix_languages_toml() -> None:
    (block,) = snippets("Helix", "toml")
    config = tomllib.loads(block)
    server = config["language-server"]["ai-ide"]
    assert server["command"] == "ai-ide"
    assert server["args"][0] == "lsp"
    assert set(server["config"]) <= SERVER_SETTINGS
    languages = config["language"]
    assert languages, "at least one [[language]] table"
    for language in languages:
        assert "ai-ide" in language["language-servers"], language["name"]


def test_zed_settings_and_extension() -> None:
    (block,) = snippets("Zed", "json")
    settings = json.loads(block)
    server = settings["lsp"]["ai-ide"]
    assert server["binary"]["arguments"][0] == "lsp"
    assert set(server["initialization_options"]) <= SERVER_SETTINGS
    assert set(server["settings"]["aiIde"]) <= SERVER_SETTINGS

    extension = tomllib.loads((ZED / "extension.toml").read_text(encoding="utf-8"))
    declared = extension["language_servers"]["ai-ide"]
    for language, options in settings["languages"].items():
        assert "ai-ide" in options["language_servers"], language
        assert language in declared["languages"], language
    cargo = tomllib.loads((ZED / "Cargo.toml").read_text(encoding="utf-8"))
    assert cargo["lib"]["crate-type"] == ["cdylib"]
    assert "zed_extension_api" in cargo["dependencies"]
    source = (ZED / "src" / "lib.rs").read_text(encoding="utf-8")
    assert 'const SERVER: &str = "ai-ide";' in source
    assert "zed::register_extension!(" in source


def read_sexps(text: str) -> list[Any]:
    """A small Emacs Lisp reader: lists, vectors, strings, symbols, quotes, comments."""
    tokens = re.findall(r'"(?:\\.|[^"\\])*"|;[^\n]*|[()\[\]]|\'|[^\s()\[\]"\';]+', text, flags=re.S)
    position = 0

    def read() -> Any:
        nonlocal position
        token = tokens[position]
        position += 1
        if token in "([":
            close = ")" if token == "(" else "]"
            items = []
            while True:
                assert position < len(tokens), f"unbalanced {token}"
                if tokens[position] == close:
                    position += 1
                    return items
                items.append(read())
        assert token not in ")]", f"unexpected {token}"
        if token == "'":
            return ["quote", read()]
        if token.startswith('"'):
            return json.loads(token)
        return token

    tokens = [t for t in tokens if not t.startswith(";")]
    forms = []
    while position < len(tokens):
        forms.append(read())
    return forms


def test_emacs_eglot_snippet_reads() -> None:
    (block,) = snippets("Emacs", "elisp")
    forms = read_sexps(block)
    assert [f[0] for f in forms] == ["with-eval-after-load", "defun"]
    add_to_list = forms[0][2]
    assert add_to_list[:2] == ["add-to-list", ["quote", "eglot-server-programs"]]
    quote, (modes, dot, *contact) = add_to_list[2]
    assert quote == "quote"
    assert dot == "."
    assert "python-mode" in modes and "rust-ts-mode" in modes
    program = contact[0]
    assert program[:2] == ["ai-ide", "lsp"]
    options = program[program.index(":initializationOptions") + 1]
    assert options[0] == ":maxTokens"


def emacs_with_eglot() -> str:
    emacs = shutil.which("emacs")
    if emacs is None:
        pytest.skip("Emacs is not installed (optional: the snippet is still read above)")
    probe = subprocess.run(
        [emacs, "--batch", "-q", "--eval", "(require 'eglot)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip("eglot is not available in this Emacs")
    return emacs


def test_emacs_eglot_snippet_connects(tmp_path: Path, lsp_config_file: Path) -> None:
    emacs = emacs_with_eglot()
    (block,) = snippets("Emacs", "elisp")
    snippet = tmp_path / "ai-ide-eglot.el"
    snippet.write_text(block, encoding="utf-8")
    project = tmp_path / "project"
    project.mkdir()
    source = project / "geometry.py"
    source.write_text("def area(r):\n    return 3.14 * r * r\n", encoding="utf-8")
    # The snippet runs `ai-ide` from PATH: here, the test server on the tiny models.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program, module_flag, module = lsp_server_command(lsp_config_file)[:3]
    wrapper = bin_dir / "ai-ide"
    wrapper.write_text(
        "#!/bin/sh\n"
        'subcommand="$1"; shift\n'
        f'exec "{program}" {module_flag} {module} "$subcommand" '
        f'--config "{lsp_config_file}" "$@"\n',
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    script = tmp_path / "connect.el"
    script.write_text(
        f"""
(require 'eglot)
(load {json.dumps(str(snippet))})
(find-file {json.dumps(str(source))})
(python-mode)
;; What `M-x eglot` does: the contact comes from eglot-server-programs.
(let* ((project-find-functions
        (list (lambda (_dir) (cons 'transient {json.dumps(str(project) + "/")}))))
       (server (apply #'eglot (eglot--guess-contact))))
  (with-timeout (60 (error "eglot did not connect"))
    (while (not (eglot-current-server)) (accept-process-output nil 0.1)))
  (let ((status (ai-ide-show-status)))
    (princ (json-encode (list :server (plist-get (eglot--server-info server) :name)
                              :command (car (process-command (jsonrpc--process server)))
                              :models (length (plist-get status :models))
                              :max_tokens (plist-get (plist-get status :config) :maxTokens)))))
  (eglot-shutdown server))
""",
        encoding="utf-8",
    )
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [emacs, "--batch", "-q", "-l", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["server"] == "ai-ide"
    assert Path(result["command"]).name == "ai-ide"
    assert result["models"] >= 1
    # :initializationOptions from the snippet reached the server.
    assert result["max_tokens"] == 64


NEOVIM_SNIPPET_CHECK = r"""
local plugin, lazy_spec, init_snippet = arg[1], arg[2], arg[3]
local function read(path)
  local file = assert(io.open(path))
  local text = file:read('*a'):gsub('/path/to/ai%-ide/editors/nvim', plugin)
  file:close()
  return text
end
local spec = assert(loadstring('return ' .. read(lazy_spec)))()
vim.opt.runtimepath:prepend(spec.dir)
spec.config()
local from_lazy = vim.deepcopy(vim.lsp.config.ai_ide.cmd)
assert(loadstring(read(init_snippet)))()
local config = vim.lsp.config.ai_ide
io.stdout:write(vim.json.encode({
  lazy_dir = spec.dir,
  lazy_cmd = from_lazy,
  cmd = config.cmd,
  filetypes = config.filetypes,
  init_options = config.init_options,
  commands = vim.tbl_map(function(name)
    return vim.fn.exists(':' .. name) == 2
  end, { 'AiIdeLoadModel', 'AiIdeUnloadModel', 'AiIdeGenerate', 'AiIdeStatus' }),
}))
"""


def test_neovim_snippets_run_in_neovim(tmp_path: Path) -> None:
    nvim = nvim_binary()
    lazy_spec, init_snippet = snippets("Neovim", "lua")
    (tmp_path / "lazy.lua").write_text(lazy_spec, encoding="utf-8")
    (tmp_path / "init_snippet.lua").write_text(init_snippet, encoding="utf-8")
    (tmp_path / "check.lua").write_text(NEOVIM_SNIPPET_CHECK, encoding="utf-8")
    proc = subprocess.run(
        [
            nvim,
            "--headless",
            "--clean",
            "-l",
            str(tmp_path / "check.lua"),
            str(PLUGIN),
            str(tmp_path / "lazy.lua"),
            str(tmp_path / "init_snippet.lua"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert Path(out["lazy_dir"]) == PLUGIN
    assert out["lazy_cmd"][1:] == ["lsp", "--http-port", "8765"]
    assert out["cmd"] == ["ai-ide", "lsp", "--http-port", "8765"]
    assert "python" in out["filetypes"]
    assert out["init_options"]["languages"]["java"] is False
    assert out["init_options"]["maxTokens"] == 64
    assert out["commands"] == [True, True, True, True]


def test_snippet_reader_rejects_unbalanced_lisp() -> None:
    with pytest.raises(AssertionError):
        read_sexps("(with-eval-after-load 'eglot (add-to-list 'x '(a . (b))")
