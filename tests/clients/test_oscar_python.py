"""oscar-python 2.2.0 from PyPI, unmodified, against the real server (scripts/with-server.sh).

Create from an FDL file, list, get, update, remove: the calls OSCAR users make.
"""
import json
import os
import pathlib

import pytest
import requests
from oscar_python.client import Client

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "fdl"


@pytest.fixture
def client():
    return Client({
        "cluster_id": "my-cluster",
        "endpoint": os.environ["BASE_URL"],
        "user": os.environ["OSCAR_USERNAME"],
        "password": os.environ["OSCAR_PASSWORD"],
        "ssl": "False",
    })


def test_service_round_trip_from_an_fdl_file(client):
    created = client.create_service(str(FIXTURES / "grayify.yaml"))
    assert created.status_code == 201

    names = [s["name"] for s in json.loads(client.list_services().text)]
    assert "grayify" in names

    service = json.loads(client.get_service("grayify").text)
    assert service["memory"] == "1Gi"
    assert service["script"].startswith("#!/bin/sh")
    assert service["output"][0]["suffix"] == [".png", ".jpg"]
    assert len(service["token"]) == 64, "the admin reads the token to invoke"
    token = service["token"]

    service["memory"] = "2Gi"
    updated = client.update_service("grayify", service)
    assert updated.status_code == 204

    service = json.loads(client.get_service("grayify").text)
    assert service["memory"] == "2Gi"
    assert service["token"] == token, "the token survives updates"

    assert client.remove_service("grayify").status_code == 204
    with pytest.raises(requests.HTTPError) as missing:
        client.get_service("grayify")
    assert missing.value.response.status_code == 404


def test_creating_twice_is_refused_by_the_client_check(client):
    client.create_service(str(FIXTURES / "grayify.yaml"))
    with pytest.raises(ValueError, match="already present"):
        client.create_service(str(FIXTURES / "grayify.yaml"))
    client.remove_service("grayify")


def test_invalid_definitions_are_a_400_naming_the_field(client):
    bad = {"name": "bad", "image": "alpine", "script": "echo", "cpu": "1", "memory": "12X"}
    with pytest.raises(requests.HTTPError) as refused:
        client.create_service(bad)
    assert refused.value.response.status_code == 400
    assert refused.value.response.text.startswith("memory:")


def test_wrong_credentials_are_a_401():
    intruder = Client({
        "cluster_id": "my-cluster",
        "endpoint": os.environ["BASE_URL"],
        "user": os.environ["OSCAR_USERNAME"],
        "password": "wrong",
        "ssl": "False",
    })
    with pytest.raises(requests.HTTPError) as refused:
        intruder.list_services()
    assert refused.value.response.status_code == 401
