"""Code generation from natural language: prompts and the sandboxed chat template."""
