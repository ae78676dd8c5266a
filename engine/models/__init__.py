"""Models: the catalog, the registry that loads and unloads them, measured resources."""
