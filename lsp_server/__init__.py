"""The faces: the language server and the REST sidecar, over one Engine."""
