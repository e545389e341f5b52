"""Company single sign-on: where a staff member's identity comes from (docs/sso.md).

One source, chosen by KEYADMIN_SSO, and nothing else is ever trusted:

- `remote-user`: REMOTE_USER in the WSGI environ, set by the front server (Apache
  mod_auth_openidc); `sources.RemoteUserSource`.
- `assertion`: a signed JWT an identity-aware proxy adds to every request, verified against its
  JWKS with pinned issuer, audience and algorithms; `sources.AssertionSource`.
- `oidc`: keyadmin's own OpenID Connect login (mozilla-django-oidc); `oidc`.
- `dev`: the development sign-in, only with DEBUG on; `keyadmin.identity.sign_in_dev`.

Each source yields an `Identity` (issuer, subject, name, email, groups) or fails closed;
`staff.provision` turns an allowed identity into a Django user, matched by issuer and subject.
`middleware.staff_identity` applies the per-request sources, `bridge` optionally signs the staff
member in to App Services with a short-lived custom-token JWT.
"""
