"""Loopback servers that speak hosted providers' HTTP protocols, for the official SDKs."""
