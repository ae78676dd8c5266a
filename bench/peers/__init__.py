"""Peers the benchmarks measure against: llama.cpp's own llama-server, built from source."""
