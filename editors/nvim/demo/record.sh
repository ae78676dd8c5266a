#!/usr/bin/env bash
# Records editors/nvim/demo.txt: headless Neovim in tmux, a completion from the
# embedded default model appearing as ghost text, then accepted with <Tab>.
#
#   editors/nvim/demo/record.sh [path/to/ai-ide] [path/to/nvim]
#
# Needs tmux. The first run assembles the default model (about 250 MB) in the
# ai-ide data directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
ai_ide="${1:-$repo/.venv/bin/ai-ide}"
nvim="${2:-$repo/.venv/bin/nvim}"
out="$here/../demo.txt"
session="ai-ide-demo-$$"
work="$(mktemp -d)"
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$work"' EXIT
cp "$here/fibonacci.py" "$work/fibonacci.py"

capture() { tmux capture-pane -p -t "$session" | sed -e 's/[[:space:]]*$//'; }
wait_for() { # wait_for TEXT SECONDS
  local deadline=$((SECONDS + $2))
  until capture | grep -qF -- "$1"; do
    if ((SECONDS > deadline)); then
      echo "timed out waiting for: $1" >&2
      capture >&2
      exit 1
    fi
    sleep 0.2
  done
}
frame() { # frame TITLE
  {
    echo "── $1"
    echo
    capture
    echo
  } >>"$out.tmp"
}

: >"$out.tmp"
cd "$work"
tmux new-session -d -s "$session" -x 78 -y 12 \
  env AI_IDE_BIN="$ai_ide" "$nvim" --clean -u "$here/init.lua" fibonacci.py
wait_for "ai-ide: gemma3-270m loaded" 180
frame "1. nvim fibonacci.py: the server has loaded the default model (statusline)"
tmux send-keys -t "$session" G A
wait_for "return fibonacci(" 60
frame "2. 'A' at the end of line 4: the suggestion appears as ghost text (not yet in the buffer: no [+])"
tmux send-keys -t "$session" Tab
sleep 0.5
tmux send-keys -t "$session" Escape
sleep 0.3
frame "3. <Tab> accepts it into the buffer ([+]: modified), <Esc>"
tmux send-keys -t "$session" ':qa!' Enter
mv "$out.tmp" "$out"
echo "wrote $out"
