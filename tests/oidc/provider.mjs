// A real OpenID Provider (panva/oidc-provider) for the identity tests, on loopback.
//
//   node provider.mjs CONFIG.json
//
// CONFIG (written by tests/identity/oidc_provider.py): {port, issuer, keys: [private JWKs,
// the first signs], clients: [...], accounts: {login: {name, acr, document_type,
// document_number, enterprises: [...]}}, id_token_ttl_s}.
//
// The provider's own protocol code does everything; this file only supplies what every
// deployment supplies: the accounts, the clients, the keys, and the login/consent
// interaction. The interaction signs in the account named by `login_hint` at the level of
// `acr_values` (else the account's own) and grants what is asked: the tests drive the OIDC
// protocol, not a login page.
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = config.accounts;

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: { keys: config.keys },
  cookies: { keys: ['vtax-test-cookie-key-0123456789'] },
  claims: {
    openid: ['sub'],
    profile: ['name'],
    vtax: ['vtax_document_type', 'vtax_document_number', 'vtax_enterprises'],
  },
  scopes: ['openid', 'profile', 'vtax', 'offline_access'],
  acrValues: ['3', '4', '5'],
  pkce: { required: () => true },
  ttl: {
    IdToken: config.id_token_ttl_s ?? 3600,
    AccessToken: 600,
    AuthorizationCode: 60,
    Session: 3600,
    Interaction: 600,
    Grant: 3600,
  },
  features: {
    devInteractions: { enabled: false },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = `<!DOCTYPE html><html><body>${form}<button type="submit" form="op.logoutForm" value="yes" name="logout">Sign out</button></body></html>`;
      },
    },
  },
  // The provider refuses outgoing requests to special-use addresses (SSRF protection);
  // in the tests our back-channel logout endpoint is on loopback, so this one provider
  // fetches without that dispatcher.
  fetch: (url, options) => {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          name: account.name,
          vtax_document_type: account.document_type,
          vtax_document_number: account.document_number,
          vtax_enterprises: account.enterprises ?? [],
        };
      },
    };
  },
});

provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/interaction/')) {
    await next();
    return;
  }
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params } = details;
  let result;
  if (prompt.name === 'login') {
    const account = accounts[params.login_hint];
    if (!account) {
      result = { error: 'access_denied', error_description: 'unknown account' };
    } else {
      // the account's level if the client accepts it, else the lowest level it accepts (as
      // if the person had stepped up, e.g. matched their face)
      const accepted = typeof params.acr_values === 'string' ? params.acr_values.split(' ') : [];
      const own = String(account.acr);
      const acr = accepted.length === 0 || accepted.includes(own) ? own : accepted[0];
      result = { login: { accountId: params.login_hint, acr, amr: ['pwd', 'sms'] } };
    }
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  }
  const to = await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: prompt.name !== 'login',
  });
  ctx.status = 303;
  ctx.redirect(to);
});

provider.on('backchannel.error', (ctx, err, client) => {
  console.error(`back-channel logout to ${client.clientId} failed: ${err.message}`);
});
provider.on('server_error', (ctx, err) => console.error(`server error: ${err.stack}`));

provider.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider ready on ${config.issuer}`);
});
