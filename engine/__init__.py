"""The inference engine: models, prompts, syntax, refactoring; no LSP or HTTP."""
