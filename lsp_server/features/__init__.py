"""LSP features: thin handlers over the engine."""
