"""Importers that turn other model maps (LiteLLM, OpenRouter, hub metadata) into entries."""
