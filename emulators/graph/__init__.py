"""A local, persistent subset of Microsoft Graph v1.0 that the official msgraph-sdk talks to."""

from emulators.graph.app import create_app

__all__ = ["create_app"]
