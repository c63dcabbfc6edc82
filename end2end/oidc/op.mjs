// A real OpenID Connect provider (panva's oidc-provider) for the browser and client tests.
// No screens: login is automatic (user picked by `login_hint`) and so is consent, and
// RP-initiated logout confirms itself. Loopback only, in-memory state, throwaway keys.
//
//   OP_PORT=9400 OP_REDIRECT_URIS=http://127.0.0.1:3000/auth/callback \
//   OP_POST_LOGOUT_URIS=http://127.0.0.1:3000/login node end2end/oidc/op.mjs
//
// oidc-provider 9 warns "Unsupported runtime" on Node 20; it works there all the same.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider, { interactionPolicy } from 'oidc-provider';

const port = Number(process.env.OP_PORT || 9400);
// Exactly this string, no trailing slash: the Rust openidconnect crate compares it byte for byte.
const issuer = `http://127.0.0.1:${port}`;
const list = (v, dflt) => (v || dflt).split(',').map((s) => s.trim()).filter(Boolean);

const VO = (vo) => `urn:mace:egi.eu:group:${vo}:role=member#aai.egi.eu`;
const USERS = {
  'alice@test': { name: 'Alice Example', email: 'alice@example.org', ents: [VO('vo.example.eu')] },
  'bob@test': { name: 'Bob Example', email: 'bob@example.org', ents: [VO('vo.example.eu'), VO('vo.other.eu')] },
  // Outside the required VO (vo.example.eu): for the "not authorised" tests.
  'carol@test': { name: 'Carol Outsider', email: 'carol@example.org', ents: [VO('vo.other.eu')] },
};

// A fresh signing key per run (instead of the library's dev keys, which warn).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', kid: 'op-test' };

// A live OP session normally wins over login_hint (as at Keycloak/EGI). Here a hint naming
// another user forces a fresh login, so "log in as carol" works in a browser that was alice.
const policy = interactionPolicy.base();
const { Check } = interactionPolicy;
policy.get('login').checks.add(new Check('login_hint_other_user', 'login_hint names another user', 'login_required',
  ({ oidc }) => Boolean(oidc.params.login_hint && oidc.session.accountId
    && oidc.params.login_hint !== oidc.session.accountId)));

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'oscar-dashboard',
    client_secret: 'oscar-dashboard-secret',
    // oidc-provider 9 accepts client_secret_post too for a client registered with basic.
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: list(process.env.OP_REDIRECT_URIS, 'http://127.0.0.1:3000/auth/callback'),
    post_logout_redirect_uris: list(process.env.OP_POST_LOGOUT_URIS, 'http://127.0.0.1:3000/login'),
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  // Scope -> claims, so the entitlement is only released when its scope is asked for (as at EGI).
  scopes: ['openid', 'profile', 'email', 'eduperson_entitlement', 'offline_access'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    eduperson_entitlement: ['eduperson_entitlement'],
  },
  // Default conformIdTokenClaims=true already keeps the ID token to `sub` (+ protocol claims):
  // the profile/email/entitlement claims come from userinfo (/me), as at EGI.
  conformIdTokenClaims: true,
  findAccount: async (_ctx, sub) => {
    const u = USERS[sub];
    if (!u) return undefined;
    return {
      accountId: sub,
      claims: async () => ({
        sub,
        name: u.name,
        preferred_username: sub.split('@')[0],
        email: u.email,
        email_verified: true,
        eduperson_entitlement: u.ents,
      }),
    };
  },
  // Auto-consent: every request gets a grant for whatever it asked, so no consent prompt.
  loadExistingGrant: async (ctx) => grantFor(ctx.oidc.provider, ctx.oidc.client.clientId,
    ctx.oidc.session.accountId, ctx.oidc.params.scope,
    ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId)),
  interactions: { policy, url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  // PKCE is verified whenever it is sent (the app sends S256) but not demanded of this
  // confidential client. OP_PKCE_REQUIRED=1 demands it, to check the app really sends it.
  pkce: { required: () => process.env.OP_PKCE_REQUIRED === '1' },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // The default page asks "Do you want to sign-out?". Submit its form at once instead,
      // with logout=yes (what the "Yes" button would send), so a browser following the
      // end_session redirect lands back on post_logout_redirect_uri without a click.
      // The provider sets no CSP, so the inline script runs.
      logoutSource: async (ctx, form) => {
        ctx.body = `<!DOCTYPE html><html><head><title>Signing out</title></head><body>
${form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>')}
<script>document.getElementById('op.logoutForm').submit()</script></body></html>`;
      },
    },
  },
});

async function grantFor(op, clientId, accountId, scope, grantId) {
  if (!accountId) return undefined;
  const grant = (grantId && await op.Grant.find(grantId)) || new op.Grant({ clientId, accountId });
  grant.addOIDCScope(scope || 'openid');
  await grant.save();
  return grant;
}

// Auto-login (and explicit prompt=consent): /interaction/<uid> finishes the interaction at
// once with the account named by login_hint (alice when absent; unknown -> access_denied).
provider.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!m || ctx.method !== 'GET') return next();
  const { params, prompt, session } = await provider.interactionDetails(ctx.req, ctx.res);
  let result;
  if (prompt.name === 'login') {
    const accountId = params.login_hint || 'alice@test';
    result = USERS[accountId]
      ? { login: { accountId } }
      : { error: 'access_denied', error_description: `unknown test user ${accountId}` };
  } else {
    const grant = await grantFor(provider, params.client_id, session.accountId, params.scope);
    result = { consent: { grantId: grant.jti } };
  }
  ctx.status = 303;
  ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result));
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc test provider listening on ${issuer}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections(); // keep-alive sockets would otherwise hold close() open
  });
}
