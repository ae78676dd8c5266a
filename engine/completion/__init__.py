"""Completion: prompts, the pipeline, post-processing, reuse caches and speculation."""
