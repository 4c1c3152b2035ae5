"""Credentials with scopes (issue: privacy and security, point 7), against a
real server: every route with every kind of credential, a publishable key
asking for another visitor's data, OAuth 2.0 client credentials, rate limits,
keys stored hashed, and HTTPS with a certificate made here."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from conftest import free_port, run_cli, start_server, stop_server
from personable.access.keys import KEYS_FILE
from personable.access.scopes import needed
from personable.access.tokens import issue_access_token, project_secret, user_token
from personable.config import write_starter


def _key(project: Path, *args: str) -> dict:
    return json.loads(run_cli("keys", "create", *args, "--json", project=project).stdout)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    project = tmp_path_factory.mktemp("access") / "proj"
    write_starter(project, "access-shop")
    keys = {
        "publishable": _key(project, "site", "--kind", "publishable"),
        "segments_only": _key(project, "crm-sync", "--scope", "segments:*"),
        "everything": _key(project, "ops", "--scope", "admin"),
        "limited": _key(project, "noisy", "--kind", "publishable", "--rate-limit", "1"),
    }
    server = start_server(project)
    with server.client() as c:
        pk = (keys["publishable"]["key"], "")
        for user, anon in (("alice", "anon-a"), ("bob", "anon-b")):
            assert c.post("/v1/identify", auth=pk, json={"userId": user, "anonymousId": anon,
                                                          "traits": {"country": "US"}}).status_code == 200
        assert c.get("/v1/stats", headers=server.admin, params={"fresh": "true"}).status_code == 200
    yield server, keys
    stop_server(server)


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _routes(c: httpx.Client) -> list[tuple[str, str, str, str]]:
    """(method, concrete path, router tag, path template) of every route behind a credential."""
    spec = c.get("/openapi.json").json()
    out = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if not path.startswith("/v1/") or op.get("tags") in (["collect"], ["oauth"]):
                continue
            out.append((method.upper(), re.sub(r"\{[^}]+\}", "nobody-here", path), op["tags"][0], path))
    return out


def test_every_route_with_every_kind_of_credential(site):
    server, keys = site
    secret = project_secret(server.project / ".personable", "token_secret")
    everything = keys["everything"]["key_id"]
    expired, _ = issue_access_token(secret, everything, ["admin"], "access-shop", ttl_s=-60)
    good, _ = issue_access_token(secret, everything, ["admin"], "access-shop")
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    foreign, _ = issue_access_token(b"another project's secret", everything, ["admin"], "access-shop")
    with server.client() as c:
        routes = _routes(c)
        assert len(routes) > 40
        problems = []
        for method, path, tag, template in routes:
            scope = needed(tag, method, template)       # privacy:erase for the erasure routes

            def call(headers: dict) -> httpx.Response:
                return c.request(method, path, headers=headers)

            for name, headers in (("no credential", {}), ("wrong token", _bearer("adm_nope")),
                                  ("expired token", _bearer(expired)), ("tampered token", _bearer(tampered)),
                                  ("foreign token", _bearer(foreign)), ("unknown key", _bearer("sk_0000_xxxx"))):
                r = call(headers)
                if r.status_code != 401 or r.json()["error"]["code"] != "unauthorized":
                    problems.append(f"{method} {path} with {name}: {r.status_code} {r.text[:120]}")
            r = call(_bearer(keys["publishable"]["key"]))
            if r.status_code != 403 or r.json()["error"].get("missing_scope") not in (scope, "self:read"):
                problems.append(f"{method} {path} with a publishable key: {r.status_code} {r.text[:120]}")
            r = call(_bearer(keys["segments_only"]["key"]))
            if tag == "segments":
                if r.status_code in (401, 403) or r.status_code >= 500:
                    problems.append(f"{method} {path} with segments:*: {r.status_code} {r.text[:120]}")
            elif r.status_code != 403 or r.json()["error"]["missing_scope"] != scope:
                problems.append(f"{method} {path} without {scope}: {r.status_code} {r.text[:120]}")
            for name, headers in (("the admin scope", _bearer(keys["everything"]["key"])),
                                  ("an access token", _bearer(good)), ("the admin token", server.admin)):
                r = call(headers)
                if r.status_code in (401, 403) or r.status_code >= 500:
                    problems.append(f"{method} {path} with {name}: {r.status_code} {r.text[:120]}")
        assert not problems, "\n".join(problems)


def test_a_publishable_key_reads_only_its_own_visitors_recommendations(site):
    server, keys = site
    pk = _bearer(keys["publishable"]["key"])
    secret = project_secret(server.project / ".personable", "user_token_secret")
    with server.client() as c:
        def get(identifier: str, **headers: str) -> httpx.Response:
            return c.get(f"/v1/recommendations/{identifier}", headers={**pk, **headers})

        # Its own visitor, by the anonymous id the page holds: allowed while the visitor is anonymous
        # (no recommender yet: a 400 says so).
        assert c.post("/v1/page", auth=(keys["publishable"]["key"], ""),
                      json={"anonymousId": "anon-z", "name": "Home"}).status_code == 200
        assert c.get("/v1/stats", headers=server.admin, params={"fresh": "true"}).status_code == 200
        own = get("anonymous_id:anon-z")
        assert own.status_code not in (401, 403), own.text
        # An anonymous id linked to a known user (anyone holding the page's key can link one with an
        # identify): that user's data needs the user's token.
        linked = get("anonymous_id:anon-a")
        assert linked.status_code == 403 and "known user" in linked.json()["error"]["message"]
        # By user id, only with the user token its backend issued for that user.
        assert get("user_id:alice", **{"X-User-Token": user_token(secret, "alice")}).status_code not in (401, 403)
        for identifier, headers in (("user_id:bob", {"X-User-Token": user_token(secret, "alice")}),
                                    ("user_id:bob", {}), ("bob", {}), ("email:bob@example.com", {}),
                                    ("anonymous_id:", {})):
            r = get(identifier, **headers)
            assert r.status_code == 403 and r.json()["error"]["missing_scope"] == "self:read", (identifier, r.text)
        assert c.get("/v1/profiles/anonymous_id:anon-a", headers=pk).status_code == 403   # no profile reads at all
        # The backend gets the token over the API (a secret credential with profiles:write) or the CLI.
        issued = c.post("/v1/auth/user-token", headers=server.admin, json={"user_id": "bob"})
        assert issued.status_code == 200 and issued.json()["token"] == user_token(secret, "bob")
        assert get("user_id:bob", **{"X-User-Token": issued.json()["token"]}).status_code not in (401, 403)
        cli = json.loads(run_cli("keys", "user-token", "bob", "--json", project=server.project).stdout)
        assert cli["token"] == issued.json()["token"]
        denied = c.post("/v1/auth/user-token", headers=_bearer(keys["segments_only"]["key"]), json={"user_id": "x"})
        assert denied.status_code == 403 and denied.json()["error"]["missing_scope"] == "profiles:write"


def test_oauth_client_credentials_follow_the_rfc(site):
    server, keys = site
    sk = keys["segments_only"]
    with server.client() as c:
        ok = c.post("/v1/oauth/token", data={"grant_type": "client_credentials", "scope": "segments:read"},
                    auth=(sk["key_id"], sk["key"]))
        assert ok.status_code == 200 and ok.headers["cache-control"] == "no-store"
        body = ok.json()
        assert body["token_type"] == "Bearer" and body["scope"] == "segments:read" and 0 < body["expires_in"] <= 900
        token = _bearer(body["access_token"])
        assert c.get("/v1/segments", headers=token).status_code == 200
        write = c.post("/v1/admin/segments/refresh", headers=token)
        assert write.status_code == 403 and write.json()["error"]["missing_scope"] == "segments:write"
        # Form fields instead of Basic; all the key's scopes when none are asked for.
        whole = c.post("/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": sk["key_id"],
                                                 "client_secret": sk["key"]})
        assert whole.status_code == 200 and whole.json()["scope"] == "segments:*"
        for data, auth, status, error in [
            ({"grant_type": "password"}, (sk["key_id"], sk["key"]), 400, "unsupported_grant_type"),
            ({"grant_type": "client_credentials", "scope": "profiles:read"}, (sk["key_id"], sk["key"]), 400,
             "invalid_scope"),
            ({"grant_type": "client_credentials"}, (sk["key_id"], sk["key"] + "x"), 401, "invalid_client"),
            ({"grant_type": "client_credentials"}, (keys["publishable"]["key_id"], keys["publishable"]["key"]), 401,
             "invalid_client"),
            ({"grant_type": "client_credentials"}, None, 401, "invalid_client"),
        ]:
            r = c.post("/v1/oauth/token", data=data, auth=auth)
            assert r.status_code == status and r.json()["error"] == error, (data, r.text)
        assert c.post("/v1/oauth/token", content=b"\xff\xfe", headers={"content-type": "application/x-www-form-urlencoded"}
                      ).json()["error"] == "invalid_request"
        # Each token issued is in the audit log, by the key that asked for it.
        issued = c.get("/v1/audit", headers=server.admin, params={"action": "token", "actor": sk["key_id"]})
        deadline = time.time() + 10
        while len(issued.json()["items"]) < 2 and time.time() < deadline:
            time.sleep(0.3)      # the HTTP process hands its records over about once a second
            issued = c.get("/v1/audit", headers=server.admin, params={"action": "token", "actor": sk["key_id"]})
        assert len(issued.json()["items"]) == 2 and {r["target"] for r in issued.json()["items"]} == {sk["key_id"]}


def test_rate_limits_answer_429_with_retry_after(site):
    server, keys = site
    limited = (keys["limited"]["key"], "")
    with server.client() as c:
        statuses = [c.post("/v1/track", auth=limited, json={"userId": "alice", "event": "Ping"}) for _ in range(6)]
        codes = [r.status_code for r in statuses]
        assert codes[0] == 200 and 429 in codes, codes
        refused = next(r for r in statuses if r.status_code == 429)
        assert int(refused.headers["retry-after"]) >= 1 and refused.json()["error"]["code"] == "rate_limited"
        time.sleep(float(refused.headers["retry-after"]) + 0.1)
        assert c.post("/v1/track", auth=limited, json={"userId": "alice", "event": "Ping"}).status_code == 200
        # Another key is not slowed by it.
        assert c.post("/v1/track", auth=(keys["publishable"]["key"], ""),
                      json={"userId": "alice", "event": "Ping"}).status_code == 200


def test_keys_are_stored_hashed_and_revoked_at_once(site):
    server, keys = site
    stored = (server.project / ".personable" / KEYS_FILE).read_text()
    assert (server.project / ".personable" / KEYS_FILE).stat().st_mode & 0o777 == 0o600
    for k in keys.values():
        assert k["key"] not in stored and k["key_id"] in stored
    listed = json.loads(run_cli("keys", "list", "--json", project=server.project).stdout)
    assert {k["key_id"] for k in listed} >= {k["key_id"] for k in keys.values()}
    assert all("hash" not in k and "key" not in k for k in listed)
    extra = _key(server.project, "temp", "--scope", "profiles:read")
    with server.client() as c:
        assert c.get("/v1/profiles/alice", headers=_bearer(extra["key"])).status_code == 200
        token = c.post("/v1/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(extra["key_id"], extra["key"])).json()["access_token"]
        run_cli("keys", "revoke", extra["key_id"], project=server.project)
        assert c.get("/v1/profiles/alice", headers=_bearer(extra["key"])).status_code == 401
        assert c.get("/v1/profiles/alice", headers=_bearer(token)).status_code == 401   # its tokens die with it
    bad = run_cli("keys", "create", "x", "--scope", "profiles:everything", project=server.project, check=False)
    assert bad.returncode == 2 and "unknown scope" in bad.stdout + bad.stderr
    bad = run_cli("keys", "create", "x", "--kind", "publishable", "--scope", "admin", project=server.project, check=False)
    assert bad.returncode == 2 and "publishable" in bad.stdout + bad.stderr
    assert run_cli("keys", "revoke", "sk_nope", project=server.project, check=False).returncode == 3


def test_https_with_a_certificate_made_here(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    project = tmp_path / "proj"
    write_starter(project, "tls-shop")
    import subprocess
    from conftest import BIN, keys as project_keys

    port = free_port()
    proc = subprocess.Popen([str(BIN / "personable"), "--project", str(project), "serve", "--port", str(port),
                             "--tls-cert", str(cert_path), "--tls-key", str(key_path), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    import ssl

    trust = ssl.create_default_context(cafile=str(cert_path))
    try:
        url = f"https://127.0.0.1:{port}"
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/healthz", verify=trust, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError(proc.stdout.read().decode() if proc.poll() is not None else "no answer over HTTPS")
        k = project_keys(project)
        r = httpx.post(f"{url}/v1/identify", auth=(k["write_keys"]["web"], ""), json={"userId": "t1"},
                       verify=trust)
        assert r.status_code == 200
        with pytest.raises(httpx.HTTPError):      # plain HTTP is not served
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        # The CLI finds the server and trusts its certificate.
        shown = json.loads(run_cli("profile", "show", "t1", "--json", project=project).stdout)
        assert shown["traits"] == {} and shown["profile_id"]
    finally:
        proc.send_signal(2)
        proc.wait(timeout=30)
    bad = run_cli("serve", "--tls-cert", str(cert_path), project=project, check=False)
    assert bad.returncode == 2 and "--tls-key" in bad.stdout + bad.stderr
