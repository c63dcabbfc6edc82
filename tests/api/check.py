#!/usr/bin/env python3
"""The server's OpenAPI document checked by third-party tools, against the running server.

1. `$BASE_URL/openapi.json` (served without credentials) is downloaded and validated as
   OpenAPI 3.1 by openapi-spec-validator.
2. Schemathesis calls every documented operation as the admin (HTTP Basic,
   `$OSCAR_USERNAME` / `$OSCAR_PASSWORD`) with valid and invalid generated requests, and the
   run fails on any 5xx answer (its `not_a_server_error` check; 4xx answers to bad input are
   what we want). A fixed seed and a bounded number of examples per operation keep the run
   short and repeatable.

Run by tests/api/run.sh inside scripts/with-server.sh; with the venv's python so both tools
are importable. Knobs (environment): API_SEED, API_MAX_EXAMPLES, API_WORKERS, API_PHASES,
API_REQUEST_TIMEOUT, API_TIMEOUT (whole schemathesis run, seconds), API_REPORT_DIR. Extra
arguments go to `schemathesis run` as they are, e.g. `--include-path-regex '^/system/'`;
per-operation exceptions (an operation left out, a documented 5xx accepted) belong in
tests/api/schemathesis.toml beside this file.
"""

import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NoReturn

from openapi_spec_validator import OpenAPIV31SpecValidator

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def fail(message: str) -> NoReturn:
    sys.stdout.flush()
    print(f"api: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def download(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read()
    except urllib.error.HTTPError as e:
        fail(f"GET {url} answered {e.code} (it must be served without credentials)")
    except OSError as e:
        fail(f"GET {url}: {e}")
    try:
        doc = json.loads(body)
    except ValueError as e:
        fail(f"{url} is not JSON: {e}")
    if not isinstance(doc, dict):
        fail(f"{url} is not a JSON object")
    return doc


def validate(doc: dict, url: str) -> int:
    """openapi-spec-validator on the document as OpenAPI 3.1; returns the operation count."""
    version = str(doc.get("openapi", ""))
    if not version.startswith("3.1."):
        fail(f"{url} declares openapi {version!r}; expected 3.1.x")
    errors = list(OpenAPIV31SpecValidator(doc, base_uri=url).iter_errors())
    if errors:
        print(f"api: {url} is not a valid OpenAPI {version} document "
              f"({len(errors)} error(s), openapi-spec-validator):", file=sys.stderr)
        for err in errors[:50]:
            where = getattr(err, "json_path", "$")
            print(f"  at {where}: {err.message.splitlines()[0]}", file=sys.stderr)
        fail("the OpenAPI document does not validate")
    operations = sum(
        1
        for item in (doc.get("paths") or {}).values()
        for method in (item or {})
        if method in HTTP_METHODS
    )
    if operations == 0:
        fail(f"{url} documents no operation")
    print(f"api: {url} is valid OpenAPI {version} (openapi-spec-validator), {operations} operations")
    return operations


def call(base_url: str, auth: str, method: str, path: str, body: bytes) -> bytes:
    request = urllib.request.Request(f"{base_url}{path}", data=body, method=method)
    request.add_header("Authorization", f"Basic {auth}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.read()
    except urllib.error.HTTPError as e:
        fail(f"{method} {path} answered {e.code}: {e.read().decode(errors='replace')}")


def prepare(base_url: str, user: str, password: str) -> None:
    """A service with a finished job, so that operations on a service, a job or a bucket reach
    their logic instead of a 404 (schemathesis.toml names them through these variables). Its
    script succeeds on any input: `/run` answers 500 only when the script fails."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    service = "api-probe"
    call(base_url, auth, "POST", "/system/services", json.dumps({
        "name": service, "image": "docker.io/library/alpine:3.20", "cpu": "0.5",
        "memory": "256Mi", "script": "#!/bin/sh\nwc -c \"$INPUT_FILE_PATH\"\n",
        "input": [{"storage_provider": "minio.default", "path": f"{service}/in"}],
        "output": [{"storage_provider": "minio.default", "path": f"{service}/out"}],
    }).encode())
    job = json.loads(call(base_url, auth, "POST", f"/job/{service}", b"hello"))["job_name"]
    os.environ.update(API_SERVICE=service, API_BUCKET=service, API_JOB=job)
    print(f"api: service {service} with job {job} for the operations that need one")


def junit_summary(path: Path) -> None:
    """One line per operation that failed or errored, from schemathesis's JUnit report."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"api: no readable JUnit report at {path}: {e}")
        return
    cases = root.iter("testcase")
    total = bad = 0
    for case in cases:
        total += 1
        problems = [c for c in case if c.tag in ("failure", "error")]
        if problems:
            bad += 1
            kinds = ", ".join(sorted({p.tag for p in problems}))
            print(f"api:   {kinds}: {case.get('name')}")
    print(f"api: JUnit report {path}: {total} test cases (one per operation, plus stateful), "
          f"{bad} with failures or errors")


def main() -> None:
    base_url = os.environ["BASE_URL"].rstrip("/")
    user, password = os.environ["OSCAR_USERNAME"], os.environ["OSCAR_PASSWORD"]
    doc_url = f"{base_url}/openapi.json"

    validate(download(doc_url), doc_url)
    prepare(base_url, user, password)

    report_dir = Path(os.environ.get("API_REPORT_DIR") or tempfile.mkdtemp(prefix="oscar-api-"))
    report_dir.mkdir(parents=True, exist_ok=True)
    junit = report_dir / "junit.xml"
    # A fresh crash cache per run (tests/api/schemathesis.toml): nothing replayed from before.
    cache = report_dir / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["API_CACHE_DIR"] = str(cache)
    config = Path(__file__).resolve().with_name("schemathesis.toml")
    schemathesis = Path(sys.executable).parent / "schemathesis"
    command = [
        str(schemathesis), "--config-file", str(config), "run", doc_url,
        # Requests go to the server under test whatever `servers` the document declares.
        "--url", base_url,
        "--auth", f"{user}:{password}",
        # Only 5xx fails the run: the goal. Conformance checks are not turned on.
        "--checks", "not_a_server_error",
        "--phases", os.environ.get("API_PHASES", "examples,coverage,fuzzing,stateful"),
        "--mode", "all",
        "--max-examples", os.environ.get("API_MAX_EXAMPLES", "100"),
        "--seed", os.environ.get("API_SEED", "20261204"),
        # No example database: a run never replays what an earlier one found, so runs repeat.
        "--generation-database", "none",
        # One worker: against a fresh server a seed then makes the same requests every run
        # (two workers interleave operations differently, so the server's state differs).
        "--workers", os.environ.get("API_WORKERS", "1"),
        "--request-timeout", os.environ.get("API_REQUEST_TIMEOUT", "30"),
        "--report", "junit", "--report-junit-path", str(junit),
        "--no-color",
        *sys.argv[1:],
    ]
    shown = [("***" if a.startswith(f"{user}:") else a) for a in command]
    print("api: " + shlex.join(shown), flush=True)
    timeout = float(os.environ.get("API_TIMEOUT", "480"))
    started = time.monotonic()
    try:
        status = subprocess.run(command, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        fail(f"schemathesis did not finish in {timeout:.0f} s (API_TIMEOUT)")
    elapsed = time.monotonic() - started
    junit_summary(junit)
    if status != 0:
        fail(f"schemathesis exited {status} after {elapsed:.0f} s: a 5xx answer or an error above; "
             f"report in {report_dir}")
    print(f"api: schemathesis found no 5xx in {elapsed:.0f} s; report in {report_dir}")


if __name__ == "__main__":
    main()
