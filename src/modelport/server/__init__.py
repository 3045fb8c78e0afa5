"""The HTTP server: the registry REST API (/api/v1) and the OpenAI-compatible /v1 surface."""
