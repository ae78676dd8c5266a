"""Completion quality: holes punched in real code, filled by several clients, judged.

``python -m bench.quality`` runs the whole comparison (see :mod:`bench.quality.run`):
HumanEval holes executed against their tests (pass@1), holes in real source files
of every supported language (exact match, edit similarity), each filled by a naive
prefix-only llama.cpp client, the engine through its REST endpoint and the engine
through the language server.
"""
