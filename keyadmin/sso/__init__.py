"""Who the staff member is and what they may do: company single sign-on (docs/sso.md).

One source, chosen by KEYADMIN_SSO, and nothing else is ever trusted:

- `remote-user`: REMOTE_USER in the WSGI environ, set by the front server (Apache
  mod_auth_openidc); `sources.RemoteUserSource`.
- `assertion`: a signed JWT an identity-aware proxy adds to every request, verified against its
  JWKS with pinned issuer, audience and algorithms; `sources.AssertionSource`.
- `oidc`: keyadmin's own OpenID Connect login (mozilla-django-oidc); `oidc` and `views`.
- `dev`: the development sign-in, only with DEBUG on; `session.sign_in_dev`.

Layers, each importing only those above it:

1. `mode` (which mode, its issuer), `http`, `jwks`, `sources`, `backends`, `bridge_key`, `config`;
2. `staff` (identity to user), `roles` (groups to roles, pure), then `cookie_check` (did the
   session cookie come back);
3. `bridge`, `oidc` and `actfor` (they use the audit trail, the App Services connection and
   the app registry);
4. `session` (open and end staff sessions), then `access` (the guards views wear);
5. `middleware`, `views`, `forms`, `urls`.

Each source yields a `StaffIdentity` (issuer, subject, name, email, groups) or fails closed;
`staff.provision` turns an allowed identity into a Django user, matched by issuer and subject.
`middleware.staff_identity` applies the per-request sources, `bridge` optionally signs the staff
member in to App Services with a short-lived custom-token JWT.
"""
