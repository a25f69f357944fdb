"""The adapter as a service (FastAPI): thin routes that parse, call adapter.services, and respond (docs/api.md)."""

from adapter.api.app import create_app

__all__ = ["create_app"]
