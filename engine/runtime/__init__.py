"""Runtime: the per-model worker thread, its llama.cpp backend and the message interface."""
