"""The REST API (AI Services API) served next to the language server."""
