// A real OpenID Connect provider on loopback for keyadmin's `oidc` mode tests (npm oidc-provider).
//
// Configured from the environment by tests/sso/fixtures.py: OP_PORT, CLIENT_ID, CLIENT_SECRET,
// REDIRECT_URI, POST_LOGOUT_REDIRECT_URI. Code flow with PKCE required for every client,
// client_secret_basic at the token endpoint, RS256 ID tokens, RP-initiated logout, and the
// development login/consent pages (any login name; the password is not checked).
// Prints "ready <issuer>" once it listens.
import Provider from 'oidc-provider';

const port = Number(process.env.OP_PORT);
const issuer = `http://127.0.0.1:${port}`;

// Who may sign in, and their groups (a login name not listed here signs in with no groups).
const ACCOUNTS = {
  alice: { name: 'Alice Operator', email: 'alice@example.com', groups: ['keyadmin-staff', 'keyadmin-operators'] },
  audrey: { name: 'Audrey Auditor', email: 'audrey@example.com', groups: ['keyadmin-staff', 'keyadmin-auditors'] },
  mallory: { name: 'Mallory', email: 'alice@example.com', groups: ['everyone'] },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [process.env.REDIRECT_URI],
      post_logout_redirect_uris: [process.env.POST_LOGOUT_REDIRECT_URI],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
  ],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  async findAccount(ctx, id) {
    const account = ACCOUNTS[id] || { name: id, email: `${id}@example.com`, groups: [] };
    return {
      accountId: id,
      async claims() {
        return { sub: id, email_verified: true, ...account };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  cookies: { keys: ['keyadmin-test-only-cookie-key'] },
});

provider.on('server_error', (ctx, error) => console.error('server_error', error));
provider.listen(port, '127.0.0.1', () => console.log(`ready ${issuer}`));
