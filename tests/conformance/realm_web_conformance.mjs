// The real realm-web 2.0.1 client judges the local App Services server.
//
// Usage: node tests/conformance/realm_web_conformance.mjs BASE_URL APP_ID
//   (or APPSERVICES_BASE_URL / APPSERVICES_APP_ID in the environment). With
//   CUSTOM_TOKEN_SECRET set, the server must accept HS256 custom tokens signed with it and
//   copy the `name` and `email` claims into the profile (--custom-token-metadata
//   name=name,email=email); without it, a custom-token login must be refused as a provider
//   the app has not enabled.
//
// Every step asserts the exact HTTP status and error_code it gets (null: the body has no
// error_code). One line per step ("ok - ..." / "not ok - ..."), then a summary; exit status 1
// if any step failed. A step checked against the Realm SDK teams' integration tests, which ran
// against the real service, names them in brackets: [repo file: test name]. Where those tests
// never assert the status, the status is the local server's documented choice
// (docs/local-appservices-server.md).

import { createHmac, randomBytes } from "node:crypto";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const Realm = require("realm-web");
const { App, Credentials, MongoDBRealmError } = Realm;

const baseUrl = (process.argv[2] ?? process.env.APPSERVICES_BASE_URL ?? "").replace(/\/$/, "");
const appId = process.argv[3] ?? process.env.APPSERVICES_APP_ID;
const customTokenSecret = process.env.CUSTOM_TOKEN_SECRET;
if (!baseUrl || !appId) {
  console.error("usage: realm_web_conformance.mjs BASE_URL APP_ID");
  process.exit(2);
}

// Where the Realm SDK tests that name a step live (see the step names).
const KOTLIN =
  "realm-kotlin packages/test-sync/src/commonTest/kotlin/io/realm/kotlin/test/mongodb/common";
const JAVA = "realm-java realm/realm-library/src/androidTestObjectServer/kotlin/io/realm";

const OBJECT_ID = /^[0-9a-f]{24}$/;
const KEY_SECRET = /^[A-Za-z0-9]{64}$/;
const PASSWORD = "conformance-password";

let passed = 0;
let failed = 0;

async function step(name, body) {
  try {
    await body();
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (error) {
    failed += 1;
    console.log(`not ok - ${name}\n    ${String(error?.stack ?? error).replaceAll("\n", "\n    ")}`);
  }
}

function check(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

function same(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

/**
 * The promise must reject with a MongoDBRealmError of exactly this status and error code
 * (null: no error_code in the body) and, when given, exactly this error text.
 */
async function rejects(promise, status, errorCode, what, text) {
  let error;
  try {
    await promise;
  } catch (caught) {
    error = caught;
  }
  check(error !== undefined, `${what}: expected HTTP ${status} ${errorCode}, but it succeeded`);
  check(error instanceof MongoDBRealmError, `${what}: expected a MongoDBRealmError, got ${error}`);
  same(
    [error.statusCode, error.errorCode ?? null],
    [status, errorCode],
    `${what}: status and error code`,
  );
  check(typeof error.link === "string" && error.link.includes("logs?co_id="), `${what}: link`);
  if (text !== undefined) same(error.error, text, `${what}: error text`);
  return error;
}

/** A raw request, for what realm-web hides (tokens it has dropped, headers). */
async function raw(method, path, token, authorization) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  if (authorization !== undefined) headers.Authorization = authorization;
  const response = await fetch(`${baseUrl}${path}`, { method, headers });
  const text = await response.text();
  return {
    status: response.status,
    contentType: response.headers.get("content-type"),
    body: text ? JSON.parse(text) : null,
  };
}

function newApp() {
  // A separate App keeps its own user objects: logging in with a user's API key in the same App
  // would replace that user's tokens (reference §8).
  return new App({ id: appId, baseUrl });
}

function uniqueEmail(label) {
  return `${label}-${randomBytes(4).toString("hex")}@example.com`;
}

/** The claims of a JWT, unverified. */
function claimsOf(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
}

function signHs256(claims, secret) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${encode({ alg: "HS256", typ: "JWT" })}.${encode(claims)}`;
  const signature = createHmac("sha256", secret).update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}

const app = newApp();
const email = uniqueEmail("conformance");
let user;
let first;
let second;

await step("an unknown app id is refused with 404 AppNotFound", async () => {
  const stranger = new App({ id: "no-such-app", baseUrl });
  await rejects(stranger.logIn(Credentials.anonymous()), 404, "AppNotFound", "location");
});

await step("registerUser registers a new email/password user", async () => {
  const result = await app.emailPasswordAuth.registerUser({ email, password: PASSWORD });
  check(result === undefined, "registerUser resolves to undefined");
});

await step("a second registration of the email is refused with 409 AccountNameInUse", async () => {
  const again = app.emailPasswordAuth.registerUser({ email, password: PASSWORD });
  const error = await rejects(again, 409, "AccountNameInUse", "register twice");
  same(error.error, "name already in use", "error text");
});

await step(
  "an empty email is refused: 'email invalid' [realm-dart packages/realm_dart/test/" +
    "credentials_test.dart: Email/Password - register user with empty email throws]",
  async () => {
    const empty = app.emailPasswordAuth.registerUser({ email: "", password: PASSWORD });
    await rejects(empty, 400, "BadRequest", "empty email", "email invalid");
  },
);

await step("a password shorter than 6 characters is refused with 400 BadRequest", async () => {
  const short = { email: uniqueEmail("short"), password: "12345" };
  await rejects(app.emailPasswordAuth.registerUser(short), 400, "BadRequest", "short password");
});

await step(
  "a wrong password is 401 InvalidPassword 'unauthorized' [realm-swift Realm/ObjectServerTests/" +
    "RLMObjectServerTests.mm: testInvalidPasswordAuthentication; realm-core test/object-store/" +
    "sync/app.cpp: cannot login with wrong password]",
  async () => {
    const wrong = Credentials.emailPassword(email, "not-the-password");
    await rejects(app.logIn(wrong), 401, "InvalidPassword", "wrong password", "unauthorized");
  },
);

await step(
  "an unknown user is 401 InvalidPassword 'unauthorized' [realm-js integration-tests/tests/src/" +
    "tests/sync/app.ts: throws on login with non existing user; realm-swift " +
    "RLMObjectServerTests.mm: testNonExistingEmailAuthentication]",
  async () => {
    const nobody = Credentials.emailPassword(uniqueEmail("nobody"), PASSWORD);
    await rejects(newApp().logIn(nobody), 401, "InvalidPassword", "unknown user", "unauthorized");
  },
);

await step("logIn with email/password returns a user with tokens and a device id", async () => {
  user = await app.logIn(Credentials.emailPassword(email, PASSWORD));
  check(OBJECT_ID.test(user.id), `user id ${user.id} is 24-hex`);
  check(user.accessToken.split(".").length === 3, "access token is a JWT");
  check(user.refreshToken.split(".").length === 3, "refresh token is a JWT");
  check(OBJECT_ID.test(user.deviceId), `device id ${user.deviceId} is 24-hex`);
  check(app.currentUser === user, "the new user is the current user");
  same(user.providerType, "local-userpass", "provider type");
});

await step("the profile carries the email and a local-userpass identity", async () => {
  same(user.profile.email, email, "profile email");
  same(user.identities.length, 1, "identity count");
  same(user.identities[0].providerType, "local-userpass", "identity provider");
  const profile = await raw("GET", "/api/client/v2.0/auth/profile", user.accessToken);
  same(profile.status, 200, "raw profile status");
  same(profile.body.type, "normal", "profile type");
  same(profile.body.user_id, user.id, "profile user_id");
  check(OBJECT_ID.test(profile.body.domain_id), "profile domain_id is 24-hex");
  check(OBJECT_ID.test(profile.body.identities[0].provider_id), "identity provider_id");
});

await step("create returns the secret once, a 24-hex string _id and disabled false", async () => {
  first = await user.apiKeys.create("conformance-key");
  check(typeof first._id === "string" && OBJECT_ID.test(first._id), `_id ${first._id}`);
  check(KEY_SECRET.test(first.key), "the secret is 64 letters and digits");
  same(first.name, "conformance-key", "name");
  same(first.disabled, false, "disabled");
  same(Object.keys(first).sort(), ["_id", "disabled", "key", "name"], "create fields");
  second = await user.apiKeys.create("second_key-2");
});

await step("fetchAll lists the keys in creation order without any secret", async () => {
  const keys = await user.apiKeys.fetchAll();
  same(
    keys.map((key) => key._id),
    [first._id, second._id],
    "ids in creation order",
  );
  for (const key of keys) {
    same(Object.keys(key).sort(), ["_id", "disabled", "name"], "listed fields");
  }
});

await step("fetch returns exactly {_id, name, disabled}", async () => {
  const key = await user.apiKeys.fetch(first._id);
  same(key, { _id: first._id, name: "conformance-key", disabled: false }, "fetched key");
});

await step("disable resolves, is idempotent and shows in fetch", async () => {
  same(await user.apiKeys.disable(first._id), undefined, "disable result");
  same(await user.apiKeys.disable(first._id), undefined, "second disable result");
  same((await user.apiKeys.fetch(first._id)).disabled, true, "disabled after disable");
});

await step(
  "a disabled key cannot log in: 401 AuthError 'unauthorized' [realm-dotnet Tests/Realm.Tests/" +
    "Sync/UserManagementTests.cs: UserApiKeys_CantLoginWithDisabledKey]",
  async () => {
  const login = newApp().logIn(Credentials.apiKey(first.key));
  const error = await rejects(login, 401, "AuthError", "disabled key login");
  same(error.error, "unauthorized", "error text");
  },
);

await step("enable resolves, is idempotent and answers 204 without a Content-Type", async () => {
  same(await user.apiKeys.enable(first._id), undefined, "enable result");
  const rawEnable = await raw(
    "PUT",
    `/api/client/v2.0/auth/api_keys/${first._id}/enable`,
    user.refreshToken,
  );
  same([rawEnable.status, rawEnable.contentType, rawEnable.body], [204, null, null], "raw enable");
  same((await user.apiKeys.fetch(first._id)).disabled, false, "enabled after enable");
});

await step("an enabled key logs in as its owner, with an api-key identity", async () => {
  const keyUser = await newApp().logIn(Credentials.apiKey(first.key));
  same(keyUser.id, user.id, "API-key login user id");
  const identity = keyUser.identities.find((each) => each.providerType === "api-key");
  check(identity !== undefined, "the profile lists an api-key identity");
  same(identity.id, first._id, "the api-key identity id is the key id");
});

await step("a session opened with an API key cannot manage keys: 403", async () => {
  const keyUser = await newApp().logIn(Credentials.apiKey(first.key));
  await rejects(keyUser.apiKeys.create("from-a-key"), 403, "Forbidden", "create");
  await rejects(keyUser.apiKeys.fetchAll(), 403, "Forbidden", "fetchAll");
  await rejects(keyUser.apiKeys.delete(first._id), 403, "Forbidden", "delete");
});

await step("an API-key login in the same App takes over the user; email login restores", async () => {
  const same_user = await app.logIn(Credentials.apiKey(first.key));
  check(same_user === user, "realm-web reuses the user object for the same user id");
  await rejects(user.apiKeys.fetchAll(), 403, "Forbidden", "fetchAll on the API-key session");
  await app.logIn(Credentials.emailPassword(email, PASSWORD));
  same((await user.apiKeys.fetchAll()).length, 2, "keys visible again");
});

await step(
  "an empty name has no error_code: 'name' is a required string " +
    `[${KOTLIN}/ApiKeyAuthTests.kt: create_throwsWithNoName]`,
  async () => {
    const text = "'name' is a required string";
    await rejects(user.apiKeys.create(""), 400, null, "empty name", text);
  },
);

await step("invalid names are refused with 400 InvalidParameter", async () => {
  for (const name of ["My very cool key", "%s", "$()!$"]) {
    const error = await rejects(user.apiKeys.create(name), 400, "InvalidParameter", name);
    same(
      error.error,
      "can only contain ASCII letters, numbers, underscores, and hyphens",
      "error text",
    );
  }
  await rejects(user.apiKeys.create("a".repeat(65)), 400, "InvalidParameter", "65 characters");
});

await step(
  "a duplicate name is 409 'API key with name already exists' [realm-dart packages/realm_dart/" +
    "test/user_test.dart: User.apiKeys.create with duplicate name returns error]",
  async () => {
  const error = await rejects(
    user.apiKeys.create("conformance-key"),
    409,
    "APIKeyAlreadyExists",
    "duplicate",
  );
  same(error.error, "API key with name already exists", "error text");
  },
);

await step("another user's key id is 404 APIKeyNotFound on fetch, enable, disable, delete", async () => {
  const otherEmail = uniqueEmail("other");
  await app.emailPasswordAuth.registerUser({ email: otherEmail, password: PASSWORD });
  const other = await newApp().logIn(Credentials.emailPassword(otherEmail, PASSWORD));
  check(other.id !== user.id, "a different user");
  const keys = other.apiKeys;
  await rejects(keys.fetch(first._id), 404, "APIKeyNotFound", "fetch");
  await rejects(keys.enable(first._id), 404, "APIKeyNotFound", "enable");
  await rejects(keys.disable(first._id), 404, "APIKeyNotFound", "disable");
  await rejects(keys.delete(first._id), 404, "APIKeyNotFound", "delete");
  same(await keys.fetchAll(), [], "the other user's list");
  same((await user.apiKeys.fetch(first._id)).disabled, false, "the owner's key is untouched");
});

await step("a malformed key id is 404 APIKeyNotFound", async () => {
  const error = await rejects(
    user.apiKeys.fetch("not-an-object-id"),
    404,
    "APIKeyNotFound",
    "fetch",
  );
  same(error.error, "API key not found", "error text");
});

await step("an anonymous user cannot create keys: 403", async () => {
  const anonymous = await newApp().logIn(Credentials.anonymous(false));
  same(anonymous.identities[0].providerType, "anon-user", "anonymous identity");
  await rejects(anonymous.apiKeys.create("anon-key"), 403, "Forbidden", "anonymous create");
});

await step("each anonymous login is a new user", async () => {
  // reuse=false: Apps share realm-web's default storage, so a new App would reuse the last one.
  const one = await newApp().logIn(Credentials.anonymous(false));
  const two = await newApp().logIn(Credentials.anonymous(false));
  check(one.id !== two.id, "two anonymous logins give two users");
});

await step("delete resolves; the key can no longer log in nor be fetched", async () => {
  same(await user.apiKeys.delete(first._id), undefined, "delete result");
  await rejects(newApp().logIn(Credentials.apiKey(first.key)), 401, "AuthError", "login");
  await rejects(user.apiKeys.fetch(first._id), 404, "APIKeyNotFound", "fetch");
  await rejects(user.apiKeys.delete(first._id), 404, "APIKeyNotFound", "second delete");
  same(
    (await user.apiKeys.fetchAll()).map((key) => key._id),
    [second._id],
    "remaining keys",
  );
});

await step("the 21st key is refused with 400 APIKeyLimitExceeded", async () => {
  for (let number = 2; number <= 20; number += 1) {
    await user.apiKeys.create(`bulk-${number}`);
  }
  same((await user.apiKeys.fetchAll()).length, 20, "20 keys");
  await rejects(user.apiKeys.create("one-too-many"), 400, "APIKeyLimitExceeded", "21st key");
  same((await user.apiKeys.fetchAll()).length, 20, "still 20 keys");
});

await step("refreshAccessToken and refreshCustomData get a new working access token", async () => {
  await user.refreshAccessToken();
  check(user.accessToken.split(".").length === 3, "new access token");
  same(typeof (await user.refreshCustomData()), "object", "custom data");
  await user.refreshProfile();
  same(user.profile.email, email, "profile after refresh");
});

await step("a bad access token is refreshed and the call retried once", async () => {
  user.accessToken = "not.a-valid.token";
  await user.refreshProfile();
  check(user.accessToken !== "not.a-valid.token", "realm-web refreshed the access token");
});

await step("a bad refresh token on a key call is 401 InvalidSession and logs out", async () => {
  const throwaway = await newApp().logIn(Credentials.emailPassword(email, PASSWORD));
  throwaway.refreshToken = "not.a-valid.token";
  await rejects(throwaway.apiKeys.fetchAll(), 401, "InvalidSession", "fetchAll");
  same(throwaway.refreshToken, null, "realm-web dropped the tokens");
});

await step(
  "a refresh token signed with another key is 'signature is invalid', no error_code " +
    "[realm-swift Realm/ObjectServerTests/RLMObjectServerTests.mm: " +
    "testSyncErrorHandlerErrorDomain, testDownloadCancelsOnAuthError; " +
    "Realm/ObjectServerTests/SwiftObjectServerTests.swift: testUserExpirationCallback]",
  async () => {
    const victim = await newApp().logIn(Credentials.emailPassword(email, PASSWORD));
    const forged = signHs256(claimsOf(victim.refreshToken), "not-the-servers-signing-key");
    victim.refreshToken = forged;
    const text = "signature is invalid";
    await rejects(victim.apiKeys.fetchAll(), 401, null, "fetchAll", text);
    await rejects(victim.apiKeys.create("forged"), 401, null, "create", text);
    const refresh = await raw("POST", "/api/client/v2.0/auth/session", forged);
    same(refresh.status, 401, "refresh status");
    same(refresh.body.error, text, "refresh text");
    check(!("error_code" in refresh.body), "no error_code on the refresh answer");
  },
);

await step(
  "an empty or non-Bearer Authorization on the key routes has no error_code " +
    `[${KOTLIN}/ApiKeyAuthTests.kt: callMethodWithLoggedOutUser; ` +
    `${JAVA}/ApiKeyAuthTests.kt: callMethodWithLoggedOutUser]`,
  async () => {
    const keyId = "0123456789abcdef01234567";
    for (const header of ["Bearer ", "Basic dXNlcjpwYXNz"]) {
      for (const [method, path] of [
        ["GET", "/api/client/v2.0/auth/api_keys"],
        ["POST", "/api/client/v2.0/auth/api_keys"],
        ["GET", `/api/client/v2.0/auth/api_keys/${keyId}`],
        ["PUT", `/api/client/v2.0/auth/api_keys/${keyId}/enable`],
        ["PUT", `/api/client/v2.0/auth/api_keys/${keyId}/disable`],
        ["DELETE", `/api/client/v2.0/auth/api_keys/${keyId}`],
      ]) {
        const answer = await raw(method, path, null, header);
        const what = `${method} ${path} with ${JSON.stringify(header)}`;
        same(answer.status, 401, `${what} status`);
        same(
          answer.body,
          {
            error: "expected Authorization header with JWT (Bearer schema)",
            link: answer.body.link,
          },
          `${what} body`,
        );
      }
    }
  },
);

await step("an access token where a refresh token belongs is 401 InvalidSession", async () => {
  const answer = await raw("GET", "/api/client/v2.0/auth/api_keys", user.accessToken);
  same(answer.status, 401, "status");
  same(answer.contentType, "application/json", "content type");
  same(answer.body.error_code, "InvalidSession", "error code");
  same(answer.body.error, "invalid refresh token: incorrect token type", "error text");
});

await step("logOut revokes the refresh token", async () => {
  const oldRefresh = user.refreshToken;
  await user.logOut();
  same([user.accessToken, user.refreshToken], [null, null], "realm-web forgot the tokens");
  for (const [method, path] of [
    ["GET", "/api/client/v2.0/auth/api_keys"],
    ["POST", "/api/client/v2.0/auth/api_keys"],
    ["POST", "/api/client/v2.0/auth/session"],
    ["DELETE", "/api/client/v2.0/auth/session"],
  ]) {
    const answer = await raw(method, path, oldRefresh);
    same(answer.status, 401, `${method} ${path} status`);
    same(answer.contentType, "application/json", `${method} ${path} content type`);
    same(answer.body.error_code, "InvalidSession", `${method} ${path} error code`);
    same(
      answer.body.error,
      "invalid session: failed to find refresh token",
      `${method} ${path} text`,
    );
  }
});

await step(
  "a deleted user's login is 401 InvalidPassword 'unauthorized' [realm-js packages/" +
    "realm-web-integration-tests/src/user.test.ts: can be deleted; realm-js integration-tests/" +
    "tests/src/tests/sync/user.ts: can delete a user; realm-dotnet Tests/Realm.Tests/Sync/" +
    "UserManagementTests.cs: AppDeleteUserFromServer_RemovesUser; realm-dart packages/realm_dart/" +
    "test/app_test.dart: App delete user]",
  async () => {
    const doomedEmail = uniqueEmail("doomed");
    await app.emailPasswordAuth.registerUser({ email: doomedEmail, password: PASSWORD });
    const doomed = await app.logIn(Credentials.emailPassword(doomedEmail, PASSWORD));
    await app.deleteUser(doomed);
    const again = app.logIn(Credentials.emailPassword(doomedEmail, PASSWORD));
    await rejects(again, 401, "InvalidPassword", "login after delete", "unauthorized");
  },
);

if (customTokenSecret) {
  await step("a custom token logs in and maps its sub to one user", async () => {
    const exp = Math.floor(Date.now() / 1000) + 300;
    const token = signHs256({ sub: "staff-7", aud: appId, exp }, customTokenSecret);
    const one = await newApp().logIn(Credentials.jwt(token));
    const two = await newApp().logIn(Credentials.jwt(token));
    same(one.id, two.id, "same user for the same sub");
    same(
      one.identities.map((each) => [each.providerType, each.id]),
      [["custom-token", "staff-7"]],
      "identities",
    );
  });

  await step(
    "a custom token signed with the wrong key is 401 'unauthorized' [realm-dart packages/" +
      "realm_dart/test/credentials_test.dart: JWT with wrong signiture key - login fails]",
    async () => {
      const exp = Math.floor(Date.now() / 1000) + 600;
      const forged = signHs256({ sub: "staff-7", aud: appId, exp }, "not-the-secret");
      const login = newApp().logIn(Credentials.jwt(forged));
      await rejects(login, 401, "AuthError", "forged", "unauthorized");
    },
  );

  await step("an expired custom token or a foreign audience is 401 'unauthorized'", async () => {
    // No SDK test covers these: the same answer as a wrong key is the local choice.
    const past = Math.floor(Date.now() / 1000) - 60;
    const expired = signHs256({ sub: "staff-7", aud: appId, exp: past }, customTokenSecret);
    const login = newApp().logIn(Credentials.jwt(expired));
    await rejects(login, 401, "AuthError", "expired", "unauthorized");
    const elsewhere = { sub: "staff-7", aud: "other-app", exp: past + 600 };
    const foreign = signHs256(elsewhere, customTokenSecret);
    const other = newApp().logIn(Credentials.jwt(foreign));
    await rejects(other, 401, "AuthError", "audience", "unauthorized");
  });

  await step(
    "the profile holds only the configured metadata fields [realm-js packages/realm-web/src/" +
      "credentials.test.ts: jwt can authenticate; realm-core test/object-store/sync/app.cpp: " +
      "app: jwt login and metadata tests]",
    async () => {
      const exp = Math.floor(Date.now() / 1000) + 300;
      const claims = {
        sub: "staff-meta",
        aud: appId,
        exp,
        name: "Ada Lovelace",
        email: "ada@example.com",
        title: "not mapped",
      };
      const metaUser = await newApp().logIn(Credentials.jwt(signHs256(claims, customTokenSecret)));
      same(metaUser.profile, { name: "Ada Lovelace", email: "ada@example.com" }, "profile");
    },
  );
} else {
  await step(
    "a custom-token login while the provider is off is 401 InvalidSession 'unauthorized' " +
      `[${KOTLIN}/CredentialsTests.kt: loginUsingCredentials; ` +
      `${JAVA}/CredentialsTests.kt: loginUsingCredentials]`,
    async () => {
      const token = signHs256({ sub: "x", aud: appId, exp: 4070908800 }, "whatever");
      const login = newApp().logIn(Credentials.jwt(token));
      await rejects(login, 401, "InvalidSession", "custom-token login", "unauthorized");
    },
  );
}

await step(
  "providers the app has not enabled are 401 InvalidSession 'unauthorized' " +
    `[${KOTLIN}/CredentialsTests.kt: loginUsingCredentials; ` +
    `${JAVA}/CredentialsTests.kt: loginUsingCredentials]`,
  async () => {
    for (const [what, credentials] of [
      ["google auth code", Credentials.google({ authCode: "google-auth-code" })],
      ["google id token", Credentials.google({ idToken: "google-id-token" })],
      ["facebook", Credentials.facebook("facebook-token")],
      ["apple", Credentials.apple("apple-token")],
      ["custom function", Credentials.function({ anything: 1 })],
    ]) {
      await rejects(newApp().logIn(credentials), 401, "InvalidSession", what, "unauthorized");
    }
  },
);

console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
