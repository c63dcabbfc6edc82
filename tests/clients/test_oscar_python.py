"""oscar-python 2.2.0 from PyPI, unmodified, against the real server (scripts/with-server.sh).

Create from an FDL file, list, get, update, remove, run (sync and async), list jobs, read
and remove job logs, status, deployment, usage metrics and quotas: the calls OSCAR users make. boto3
uploads straight to the embedded store.
"""
import json
import os
import pathlib
import time

import boto3

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


def test_cluster_info_answers_with_upstreams_fields(client):
    info = json.loads(client.get_cluster_info().text)
    assert info["version"]
    assert info["architecture"] in ("amd64", "arm64")
    assert info["kubernetes_version"] == ""


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


UPPERCASE = """#!/bin/sh
echo "processed $(basename "$INPUT_FILE_PATH")"
tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"
"""


def uppercase_service(name):
    return {
        "name": name, "image": "docker.io/library/alpine:3.20", "script": UPPERCASE,
        "cpu": "0.5", "memory": "256Mi",
        "input": [{"storage_provider": "minio.default", "path": f"{name}/in"}],
        "output": [{"storage_provider": "minio.default", "path": f"{name}/out"}],
    }


def wait_for_jobs(client, service, count):
    """The service's jobs once `count` of them have finished (OSCAR's list_jobs shape)."""
    deadline = time.time() + 60
    while True:
        jobs = json.loads(client.list_jobs(service).text)["jobs"]
        done = [j for j in jobs.values() if j["status"] in ("Succeeded", "Failed")]
        if len(done) >= count:
            return jobs
        assert time.time() < deadline, f"jobs did not finish: {jobs}"
        time.sleep(0.2)


def test_run_service_sync_and_async_then_logs_and_removal(client, tmp_path):
    assert client.create_service(uppercase_service("py-upper")).status_code == 201
    source = tmp_path / "words.txt"
    source.write_text("hello from python")

    # Synchronous: the output file comes back base64-encoded and the client decodes it.
    result = tmp_path / "result.txt"
    response = client.run_service("py-upper", input=str(source), output=str(result))
    assert response.status_code == 200
    assert result.read_text() == "HELLO FROM PYTHON"

    # Asynchronous: 201, then the job shows up in list_jobs with its log.
    response = client.run_service("py-upper", input=str(source), async_call=True)
    assert response.status_code == 201
    jobs = wait_for_jobs(client, "py-upper", 2)
    assert len(jobs) == 2
    for name, job in jobs.items():
        assert job["status"] == "Succeeded", job
        assert name.startswith("py-upper-")
        assert job["creation_time"].endswith("Z")
        assert "processed event-file-" in client.get_job_logs("py-upper", name).text

    # The admin's access log has both invocations.
    logs = json.loads(client.get_system_logs().text)["logs"]
    paths = [entry["path"] for entry in logs]
    assert "/run/py-upper" in paths and "/job/py-upper" in paths

    first = sorted(jobs)[0]
    assert client.remove_job("py-upper", first).status_code == 204
    assert first not in json.loads(client.list_jobs("py-upper").text)["jobs"]
    assert client.remove_all_jobs("py-upper").status_code == 204
    assert json.loads(client.list_jobs("py-upper").text)["jobs"] == {}
    client.remove_service("py-upper")


def test_run_service_is_answered_by_a_warm_worker(client, tmp_path):
    """A service with synchronous.min_scale: run_service, unchanged, reaches one warm worker,
    whose /tmp lives on between requests (a job per request never sees the last one's). Runs
    before the worker is up are jobs of their own (each answers "run 1")."""
    service = uppercase_service("py-warm")
    service["script"] = (
        "n=$(cat /tmp/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/count\n"
        "echo \"run $n\" > \"$TMP_OUTPUT_DIR/out.txt\"\n"
    )
    service["synchronous"] = {"min_scale": 1, "max_scale": 1}
    assert client.create_service(service).status_code == 201
    source = tmp_path / "in.txt"
    source.write_text("x")
    def run():
        result = tmp_path / "result.txt"
        response = client.run_service("py-warm", input=str(source), output=str(result))
        assert response.status_code == 200
        return int(result.read_text().strip().removeprefix("run "))

    deadline = time.time() + 60
    runs, count = 1, run()
    while count < 2:
        assert time.time() < deadline, "no warm worker answered"
        runs, count = runs + 1, run()
    assert [run(), run()] == [count + 1, count + 2]
    assert len(json.loads(client.list_jobs("py-warm").text)["jobs"]) == runs + 2
    client.remove_service("py-warm")


def test_a_boto3_upload_to_the_embedded_store_runs_the_service(client):
    assert client.create_service(uppercase_service("py-boto")).status_code == 201
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT"],
        aws_access_key_id=os.environ["OSCAR_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["OSCAR_S3_SECRET_KEY"],
        region_name="us-east-1",
    )
    s3.put_object(Bucket="py-boto", Key="in/notes été.txt", Body=b"straight to the store")

    jobs = wait_for_jobs(client, "py-boto", 1)
    assert [j["status"] for j in jobs.values()] == ["Succeeded"]
    output = s3.get_object(Bucket="py-boto", Key="out/notes été.txt")["Body"].read()
    assert output == b"STRAIGHT TO THE STORE"
    name = next(iter(jobs))
    assert "processed notes été.txt" in client.get_job_logs("py-boto", name).text
    client.remove_service("py-boto")


def test_buckets_and_the_storage_client_through_system_config(client, tmp_path):
    assert client.create_bucket("py-files").status_code == 201
    assert "py-files" in [b["bucket_name"] for b in json.loads(client.list_buckets().text)]
    with pytest.raises(requests.HTTPError) as twice:
        client.create_bucket("py-files")
    assert twice.value.response.status_code == 409

    # oscar-python's storage client takes its keys from GET /system/config.
    storage = client.create_storage_client()
    local = tmp_path / "notes été.txt"
    local.write_text("via /system/config")
    storage.upload_file("minio.default", str(local), "py-files/docs")
    listed = json.loads(client.get_bucket("py-files").text)
    assert [o["object_name"] for o in listed["objects"]] == ["docs/notes été.txt"]
    assert listed["returned_items"] == 1

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    storage.download_file("minio.default", str(downloads), "py-files/docs/notes été.txt")
    assert (downloads / "notes été.txt").read_text() == "via /system/config"

    # Presigned links work without credentials (oscar-python sends `expires`).
    presigned = json.loads(client.presign_bucket("py-files", "docs/notes été.txt", expires=60).text)
    assert presigned["method"] == "GET"
    assert requests.get(presigned["url"], timeout=10).text == "via /system/config"

    assert client.delete_bucket("py-files").status_code == 204
    assert "py-files" not in [b["bucket_name"] for b in json.loads(client.list_buckets().text)]


def test_a_services_storage_client_reads_its_providers(client):
    assert client.create_service(uppercase_service("py-store")).status_code == 201
    storage = client.create_storage_client("py-store")
    listing = storage.list_files_from_path("minio.default", "py-store/in")
    assert listing["ResponseMetadata"]["HTTPStatusCode"] == 200
    client.remove_service("py-store")


def test_cluster_status_config_and_health(client):
    assert client.health_check().status_code == 200
    status = json.loads(client.get_cluster_status().text)
    assert status["cluster"]["nodes_count"] == 1
    node = status["cluster"]["nodes"][0]
    assert node["status"] == "Ready" and node["cpu"]["capacity_cores"] >= 1000
    # with-server.sh signs people in through a local OIDC provider.
    assert status["oscar"]["oidc"]["enabled"] is True
    assert status["oscar"]["oidc"]["issuers"]
    config = json.loads(client.get_cluster_config().text)
    assert config["allowed_image_repositories"] == []


def test_deployment_and_usage_of_a_service(client, tmp_path):
    assert client.create_service(uppercase_service("py-usage")).status_code == 201
    deployment = json.loads(client.get_deployment_status("py-usage").text)
    assert deployment["service_name"] == "py-usage"
    assert deployment["state"] == "ready"
    source = tmp_path / "words.txt"
    source.write_text("count me")
    result = tmp_path / "result.txt"
    assert client.run_service("py-usage", input=str(source), output=str(result)).status_code == 200

    logs = json.loads(client.get_deployment_logs("py-usage").text)
    assert logs["available"] is True
    assert any("processed" in entry["message"] for entry in logs["entries"])
    summary = json.loads(client.get_metrics_summary().text)
    assert summary["totals"]["requests_count_sync"] >= 1
    by_service = json.loads(client.get_metrics_breakdown("service").text)
    item = next(i for i in by_service["items"] if i["key"] == "py-usage")
    assert item["requests_count_sync"] == 1 and item["executions_succeeded"] == 1
    metrics = json.loads(client.get_service_metrics("py-usage").text)
    values = {m["metric"]: m["value"] for m in metrics["metrics"]}
    assert values["requests-sync-per-service"] == 1 and values["cpu-hours"] > 0
    client.remove_service("py-usage")


def test_quotas_read_and_set_by_the_admin(client):
    own = json.loads(client.get_own_quota().text)
    assert own["resources"]["cpu"]["max"] == -1
    updated = json.loads(client.update_user_quota("someone@example.org", "2", "4Gi").text)
    assert updated["resources"]["cpu"]["max"] == 2000
    assert updated["resources"]["memory"]["max"] == 4 * 1024 ** 3
    read = json.loads(client.get_user_quota("someone@example.org").text)
    assert read == updated


def test_managed_volumes_through_the_client(client):
    made = client.create_volume("py-data", "100Mi")
    assert made.status_code == 201
    assert json.loads(made.text)["creation_mode"] == "api"
    names = [v["name"] for v in json.loads(client.list_volumes().text)]
    assert "py-data" in names
    assert json.loads(client.get_volume("py-data").text)["size"] == "100Mi"
    assert client.delete_volume("py-data").status_code == 204
    with pytest.raises(Exception):
        client.get_volume("py-data")


def test_prometheus_metrics_parse_with_the_reference_parser(client):
    """`/metrics` in Prometheus's text format, read by the Prometheus project's own parser."""
    from prometheus_client.parser import text_string_to_metric_families
    response = requests.get(os.environ["BASE_URL"] + "/metrics",
                            auth=(os.environ["OSCAR_USERNAME"], os.environ["OSCAR_PASSWORD"]))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for name in ["oscar_http_requests", "oscar_http_request_duration_seconds", "oscar_jobs",
                 "oscar_queue_depth", "oscar_job_duration_seconds", "oscar_uploads"]:
        assert name in families, sorted(families)
    assert families["oscar_http_request_duration_seconds"].type == "histogram"


def test_a_federated_service_from_an_fdl_and_its_members(client):
    """Upstream's federation block and `clusters` in an FDL, then the client's federation
    calls. The member here is on loopback, which a server left as it comes does not call:
    each answer says so, and nothing else changes."""
    created = client.create_service(str(FIXTURES / "federated.yaml"))
    assert created.status_code == 201
    copies = json.loads(created.text)["federation"]
    assert copies[0]["member"] == "cloud/py-federated"
    assert copies[0]["ok"] is False
    assert "OSCAR_FEDERATION_PRIVATE_PEERS" in copies[0]["message"]

    service = json.loads(client.get_service("py-federated").text)
    assert service["federation"]["members"][0]["cluster_id"] == "cloud"
    assert service["clusters"]["cloud"]["auth_password"] == "", "credentials are write-only"

    federation = json.loads(client.get_federation("py-federated").text)
    assert federation["topology"] == "star"
    assert [m["service_name"] for m in federation["members"]] == ["py-federated"]

    second = {"type": "oscar", "cluster_id": "backup", "service_name": "py-federated", "priority": 1}
    backup = {"endpoint": "http://127.0.0.1:10", "auth_user": "oscar", "auth_password": "b",
              "ssl_verify": True}
    added = json.loads(client.add_federation_members(
        "py-federated", [second], clusters={"backup": backup}).text)
    assert [m["cluster_id"] for m in added["members"]] == ["cloud", "backup"]

    moved = dict(second, priority=0)
    updated = json.loads(client.update_federation_members(
        "py-federated", [second], [moved]).text)
    assert [m["priority"] for m in updated["members"]] == [0, 0]

    removed = json.loads(client.remove_federation_members("py-federated", [moved]).text)
    assert [m["cluster_id"] for m in removed["members"]] == ["cloud"]
    assert client.remove_service("py-federated").status_code == 204
