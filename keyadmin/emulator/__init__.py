"""A local stand-in for MongoDB Atlas App Services' client HTTP API.

Live App Services is gone, so keyadmin's development server and tests talk to this one. It serves
the subset keyadmin needs (location, provider login, registration, sessions, profile and the six
user-API-key routes) with the real service's statuses, error codes and token shapes, as checked by
the real `realm-web` client in tests/conformance/. See docs/local-appservices-server.md.

Layout: `store` (sqlite state), `tokens` (session JWTs), `customtoken` (custom-token provider),
`api` (the client API routes), `faults` (fault injection, latency, stats), `control` (the
`/_emulator/` test controls) and `server` (HTTP plumbing and `serve`).
"""

from __future__ import annotations
