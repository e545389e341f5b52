"""Fixtures for the SSO tests; test modules import the ones they use.

- `keys`: one RSA and one EC P-256 key pair, made once per test session.
- `jwks_server`: a loopback stdlib HTTP server serving a JWKS document the test controls, and
  counting how often it was fetched.
- `mint(...)`: a JWT signed the way an identity-aware proxy signs its assertion.
- `oidc_provider`: npm oidc-provider on loopback, configured for keyadmin's live_server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from keyadmin.emulator.process import free_port
from keyadmin.sso import jwks as jwks_module
from tests.conftest import ROOT

ISSUER = "https://team.cloudflareaccess.example"
AUDIENCE = "keyadmin-aud-tag"
RSA_KID = "rsa-1"
EC_KID = "ec-1"

# The groups our fake providers hand out, and the roles settings that map them.
STAFF = "keyadmin-staff"
OPERATORS = "keyadmin-operators"
AUDITORS = "keyadmin-auditors"


@dataclass
class Keys:
    rsa: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey

    def jwk(self, which: str, kid: str) -> dict:
        if which == "rsa":
            jwk = json.loads(RSAAlgorithm.to_jwk(self.rsa.public_key()))
            return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}
        jwk = json.loads(ECAlgorithm.to_jwk(self.ec.public_key()))
        return {**jwk, "kid": kid, "use": "sig", "alg": "ES256"}

    def jwks(self) -> dict:
        return {"keys": [self.jwk("rsa", RSA_KID), self.jwk("ec", EC_KID)]}

    def rsa_public_pem(self) -> bytes:
        return self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def rsa_private_pem(self) -> str:
        return self.rsa.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(
        rsa=rsa.generate_private_key(65537, 2048), ec=ec.generate_private_key(ec.SECP256R1())
    )


@dataclass
class JwksServer:
    url: str
    document: dict
    hits: list[float] = field(default_factory=list)
    # When set, each answer waits (at most 30 s) until the test sets this event: a slow provider.
    hold: threading.Event | None = None


@pytest.fixture
def jwks_server(keys):
    """A JWKS on 127.0.0.1 holding the RSA and EC keys; `document` may be changed by the test."""
    server_state = JwksServer(url="", document=keys.jwks())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            server_state.hits.append(time.monotonic())
            if server_state.hold is not None:
                server_state.hold.wait(30)
            body = json.dumps(server_state.document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.url = f"http://127.0.0.1:{httpd.server_port}/certs"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    jwks_module.forget_all()
    yield server_state
    httpd.shutdown()
    httpd.server_close()
    jwks_module.forget_all()


def claims(subject: str = "alice", groups=(STAFF,), **overrides) -> dict:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "email": f"{subject}@example.com",
        "name": subject.title(),
        "groups": None if groups is None else list(groups),
        "iat": now,
        "exp": now + 300,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def mint(keys: Keys, alg: str = "RS256", kid: str | None = None, **claim_overrides) -> str:
    key = keys.rsa if alg.startswith("RS") else keys.ec
    kid = kid or (RSA_KID if alg.startswith("RS") else EC_KID)
    return jwt.encode(claims(**claim_overrides), key, algorithm=alg, headers={"kid": kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict, payload: dict, secret: bytes | None) -> str:
    """A token PyJWT would refuse to make: `alg: none`, or HS256 keyed with a public key."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if secret is None:
        return signing_input + "."
    digest = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(digest)}"


def use_assertion_mode(settings, jwks_url: str, header: str = "Cf-Access-Jwt-Assertion") -> None:
    settings.KEYADMIN_SSO = "assertion"
    settings.KEYADMIN_SSO_ASSERTION_HEADER = header
    settings.KEYADMIN_SSO_JWKS_URL = jwks_url
    settings.KEYADMIN_SSO_ISSUER = ISSUER
    settings.KEYADMIN_SSO_AUDIENCE = [AUDIENCE]
    settings.KEYADMIN_SSO_ALGORITHMS = ["RS256", "ES256"]
    use_roles(settings)


def use_remote_user_mode(settings) -> None:
    settings.KEYADMIN_SSO = "remote-user"
    settings.KEYADMIN_SSO_ISSUER = "https://sso.example.com/realms/staff"
    use_roles(settings)


def use_roles(settings) -> None:
    settings.KEYADMIN_SSO_ALLOWED_GROUPS = [STAFF]
    settings.KEYADMIN_ROLE_GROUPS_VIEWER = [STAFF]
    settings.KEYADMIN_ROLE_GROUPS_OPERATOR = [OPERATORS]
    settings.KEYADMIN_ROLE_GROUPS_AUDITOR = [AUDITORS]
    settings.ROOT_URLCONF = "tests.sso.urls"


@dataclass
class OidcProvider:
    issuer: str
    client_id: str
    client_secret: str
    process: subprocess.Popen

    def endpoint(self, path: str) -> str:
        return f"{self.issuer}{path}"


@pytest.fixture(scope="session")
def oidc_provider(live_server):
    """npm oidc-provider on loopback, with keyadmin's live_server as its one client."""
    port = free_port()
    client_secret = "test-client-secret-" + os.urandom(8).hex()
    process = subprocess.Popen(
        ["node", str(ROOT / "tests" / "sso" / "oidc_provider.mjs")],
        cwd=ROOT,
        env={
            **os.environ,
            "OP_PORT": str(port),
            "CLIENT_ID": "keyadmin",
            "CLIENT_SECRET": client_secret,
            "REDIRECT_URI": f"{live_server.url}/oidc/callback/",
            "POST_LOGOUT_REDIRECT_URI": f"{live_server.url}/signed-out/",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = process.stdout.readline()  # "ready <issuer>", or EOF if node failed
    if not line.startswith("ready "):
        process.kill()
        raise RuntimeError(f"oidc-provider did not start: {line!r}")
    yield OidcProvider(line.split()[1], "keyadmin", client_secret, process)
    process.terminate()
    process.wait(timeout=10)


def use_oidc_mode(settings, provider: OidcProvider) -> None:
    settings.KEYADMIN_SSO = "oidc"
    settings.KEYADMIN_OIDC_ISSUER = provider.issuer
    settings.KEYADMIN_OIDC_CLIENT_ID = provider.client_id
    settings.KEYADMIN_OIDC_CLIENT_SECRET = provider.client_secret
    settings.KEYADMIN_OIDC_AUTHORIZATION_ENDPOINT = provider.endpoint("/auth")
    settings.KEYADMIN_OIDC_TOKEN_ENDPOINT = provider.endpoint("/token")
    settings.KEYADMIN_OIDC_USERINFO_ENDPOINT = provider.endpoint("/me")
    settings.KEYADMIN_OIDC_JWKS_ENDPOINT = provider.endpoint("/jwks")
    settings.KEYADMIN_OIDC_END_SESSION_ENDPOINT = provider.endpoint("/session/end")
    settings.KEYADMIN_OIDC_SCOPES = "openid email profile groups"
    use_roles(settings)
