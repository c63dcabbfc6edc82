"""Get an access token from the test OP (end2end/oidc/op.mjs) without a browser.

Runs the authorization code flow (with S256 PKCE, as the app does) by following the OP's
redirects by hand with a cookie jar until it redirects to redirect_uri, then exchanges the
code at the token endpoint. The OP logs in whoever `login_hint` names and consents by itself.
redirect_uri need not be reachable: it is never requested.

    python3 tests/clients/oidc_token.py http://127.0.0.1:9400 bob@test

Stdlib only (requests is not a direct requirement of the clients venv).
"""

import base64
import hashlib
import http.cookiejar
import json
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_REDIRECT_URI = "http://127.0.0.1:3000/auth/callback"
SCOPE = "openid profile email eduperson_entitlement"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # Returning None makes urllib raise HTTPError for a 3xx, so we see every Location.
    def redirect_request(self, *args, **kwargs):
        return None


def _b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token_response(issuer, user, client_id="oscar-dashboard",
                   client_secret="oscar-dashboard-secret",
                   redirect_uri=DEFAULT_REDIRECT_URI, scope=SCOPE):
    """The token endpoint's JSON (access_token, id_token, ...) for `user`."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect())
    with opener.open(issuer.rstrip("/") + "/.well-known/openid-configuration") as r:
        disc = json.load(r)

    verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url = disc["authorization_endpoint"] + "?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": scope, "state": state, "nonce": secrets.token_urlsafe(16),
        "login_hint": user, "code_challenge_method": "S256",
        "code_challenge": _b64url(hashlib.sha256(verifier.encode()).digest()),
    })
    for _ in range(10):  # /auth -> /interaction/<uid> -> /auth/<uid> -> redirect_uri
        try:
            with opener.open(url) as r:
                raise RuntimeError(f"OP answered {r.status} at {url} instead of redirecting")
        except urllib.error.HTTPError as e:
            if e.code not in (301, 302, 303, 307):
                raise RuntimeError(f"OP answered {e.code} at {url}: {e.read()[:300]!r}") from None
            url = urllib.parse.urljoin(url, e.headers["Location"])
        if url.split("?")[0] == redirect_uri:
            break
    else:
        raise RuntimeError("too many redirects")

    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    if "error" in q:  # e.g. an unknown login_hint -> access_denied
        raise RuntimeError(f"authorization failed: {q['error'][0]}: {q.get('error_description')}")
    if q.get("state") != [state]:
        raise RuntimeError("state mismatch")

    basic = base64.b64encode(
        f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(client_secret, safe='')}"
        .encode()).decode()
    req = urllib.request.Request(
        disc["token_endpoint"],
        data=urllib.parse.urlencode({
            "grant_type": "authorization_code", "code": q["code"][0],
            "redirect_uri": redirect_uri, "code_verifier": verifier,
        }).encode(),
        headers={"Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def access_token(issuer, user, client_id="oscar-dashboard",
                 client_secret="oscar-dashboard-secret", redirect_uri=DEFAULT_REDIRECT_URI):
    """An (opaque) access token for `user`, good at the OP's userinfo endpoint."""
    return token_response(issuer, user, client_id, client_secret, redirect_uri)["access_token"]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: oidc_token.py ISSUER USER")
    print(access_token(sys.argv[1], sys.argv[2]))
