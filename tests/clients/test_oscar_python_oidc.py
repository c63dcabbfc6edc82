"""oscar-python 2.2.0 configured with an OIDC access token (`oidc_token`), as EGI users run it.

The token comes from the test provider (end2end/oidc/op.mjs, started by scripts/with-server.sh)
through the authorization code flow; it is opaque, so the server checks it at userinfo.
"""
import json
import os

import pytest
import requests
from oscar_python.client import Client

from oidc_token import access_token
from test_oscar_python import uppercase_service


def oidc_client(user):
    token = access_token(os.environ["OIDC_ISSUER"], user,
                         redirect_uri=os.environ["OIDC_REDIRECT_URL"])
    return Client({"cluster_id": "egi", "endpoint": os.environ["BASE_URL"],
                   "oidc_token": token, "ssl": "False"})


def test_an_oidc_user_creates_a_service_runs_it_and_others_cannot_see_it(tmp_path):
    alice = oidc_client("alice@test")
    assert alice.create_service(uppercase_service("py-alice")).status_code == 201
    mine = json.loads(alice.get_service("py-alice").text)
    assert mine["owner"] == "alice@test"
    assert mine["visibility"] == "private"

    source = tmp_path / "words.txt"
    source.write_text("hello from alice")
    result = tmp_path / "result.txt"
    # The client invokes with alice's own token (not the service token).
    response = alice.run_service("py-alice", input=str(source), output=str(result))
    assert response.status_code == 200
    assert result.read_text() == "HELLO FROM ALICE"
    jobs = json.loads(alice.list_jobs("py-alice").text)["jobs"]
    assert len(jobs) == 1

    bob = oidc_client("bob@test")
    assert "py-alice" not in [s["name"] for s in json.loads(bob.list_services().text)]
    with pytest.raises(requests.HTTPError) as refused:
        bob.get_service("py-alice")
    assert refused.value.response.status_code == 404
    with pytest.raises(requests.HTTPError) as refused:
        bob.run_service("py-alice", input=str(source))
    assert refused.value.response.status_code == 404

    # Carol is outside the required VO: refused with the reason.
    with pytest.raises(requests.HTTPError) as refused:
        oidc_client("carol@test").list_services()
    assert refused.value.response.status_code == 403
    assert "vo.example.eu" in refused.value.response.text

    assert alice.remove_service("py-alice").status_code == 204


def test_an_oidc_users_storage_client_reaches_only_their_buckets(tmp_path):
    alice = oidc_client("alice@test")
    assert alice.create_bucket("py-alice-files").status_code == 201
    # oscar-python's storage client takes alice's own keys from GET /system/config.
    storage = alice.create_storage_client()
    local = tmp_path / "notes.txt"
    local.write_text("alice's notes")
    storage.upload_file("minio.default", str(local), "py-alice-files/docs")
    listed = json.loads(alice.get_bucket("py-alice-files").text)
    assert [o["object_name"] for o in listed["objects"]] == ["docs/notes.txt"]

    bob_storage = oidc_client("bob@test").create_storage_client()
    with pytest.raises(Exception) as refused:
        bob_storage.download_file("minio.default", str(tmp_path), "py-alice-files/docs/notes.txt")
    assert "403" in str(refused.value) or "AccessDenied" in str(refused.value)

    assert alice.delete_bucket("py-alice-files").status_code == 204
