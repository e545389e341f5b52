"""Helpers for the SSO, roles and audit tests: keys, a loopback JWKS, a real OIDC provider."""
