"""Test support: tiny GGUF models, REST and Neovim helpers, worker watchers."""
