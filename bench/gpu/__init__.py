"""GPU verification: build, model and measurement scripts for a lent GPU machine."""
