#!/usr/bin/env python3
"""Checks the Dockerfile against the repository and `make build`'s outputs, with no Docker
engine (none runs on our machines), then lays out its runtime stage in a directory.

    scripts/dockerfile-runtime.py ROOT

- the build stage copies only files that exist, and builds with `make build`;
- the runtime stage's `COPY --from=<build stage>` sources are what `make build` made (the
  build stage's /src is this work tree, its CARGO_TARGET_DIR is ours); they are copied under
  ROOT at their destinations;
- the runtime stage has what the server needs at start: its CMD, a compiled site at
  LEPTOS_SITE_ROOT, and the static supervisor where the Kubernetes executor expects it.

Prints `export NAME=value` lines for the runtime stage's environment (paths under ROOT) and
SERVER_BIN, for `scripts/release-smoke.sh` to start the server as the image would.
"""
import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def fail(message):
    sys.exit(f"Dockerfile: {message}")


def instructions(text):
    """(stage name, instruction, arguments) for each instruction, continuations joined."""
    stage = None
    joined = re.sub(r"\\\n", " ", text)
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            parts = rest.split()
            stage = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else f"#{parts[0]}"
        yield stage, word, rest.strip()


def copy_arguments(rest):
    """Flags, sources and destination of a COPY."""
    words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    flags = {w.split("=", 1)[0]: w.split("=", 1)[-1] for w in words if w.startswith("--")}
    paths = [w for w in words if not w.startswith("--")]
    return flags, paths[:-1], paths[-1]


def built(path, build_env):
    """Where a path of the build stage is on this machine."""
    path = Path(path)
    target = Path(build_env.get("CARGO_TARGET_DIR", "/src/target"))
    if path.is_relative_to(target):
        return TARGET / path.relative_to(target)
    if path.is_relative_to("/src"):
        return REPO / path.relative_to("/src")
    fail(f"COPY --from takes {path}, outside the build stage's /src")


def env_pairs(rest):
    pairs = shlex.split(rest)
    if len(pairs) == 2 and "=" not in pairs[0]:
        return [tuple(pairs)]
    return [tuple(p.split("=", 1)) for p in pairs]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = Path(sys.argv[1]).resolve()
    steps = list(instructions((REPO / "Dockerfile").read_text()))
    stages = list(dict.fromkeys(stage for stage, _, _ in steps))
    build_stage, runtime_stage = stages[0], stages[-1]

    build_env, runs = {}, []
    for stage, word, rest in steps:
        if stage != build_stage:
            continue
        if word == "COPY":
            _, sources, _ = copy_arguments(rest)
            for source in sources:
                if not (REPO / source).exists():
                    fail(f"the build stage copies {source}, which is not in the repository")
        elif word == "ENV":
            build_env.update(env_pairs(rest))
        elif word == "RUN":
            runs.append(rest)
    if not any(re.search(r"\bmake build\b", run) for run in runs):
        fail("the build stage must build with `make build`, as CI does")

    if root.exists():
        shutil.rmtree(root)
    runtime_env, command = {}, None
    for stage, word, rest in steps:
        if stage != runtime_stage:
            continue
        if word == "COPY":
            flags, sources, destination = copy_arguments(rest)
            if flags.get("--from") != build_stage:
                fail(f"the runtime stage copies {sources} from outside the build stage")
            for source in sources:
                found = built(source, build_env)
                if not found.exists():
                    fail(f"the runtime stage copies {source}, which `make build` did not make ({found})")
                into = root / destination.lstrip("/")
                into.parent.mkdir(parents=True, exist_ok=True)
                if found.is_dir():
                    shutil.copytree(found, into, symlinks=True)
                else:
                    shutil.copy2(found, into)
        elif word == "ENV":
            runtime_env.update(env_pairs(rest))
        elif word == "CMD":
            command = json.loads(rest) if rest.startswith("[") else shlex.split(rest)

    if not command:
        fail("the runtime stage has no CMD")
    on_path = (root / directory / command[0] for directory in ("usr/local/bin", "usr/bin"))
    program = next((path for path in on_path if path.exists()), None)
    if program is None:
        fail(f"the runtime stage's CMD {command[0]} is not copied onto its PATH")
    site = runtime_env.get("LEPTOS_SITE_ROOT")
    if not site or not (root / site.lstrip("/") / "pkg").is_dir():
        fail(f"LEPTOS_SITE_ROOT ({site}) holds no compiled site (pkg/)")
    source = (REPO / "domain/src/kubernetes/mod.rs").read_text()
    supervisor = re.search(r'SUPERVISOR_IN_IMAGE: &str = "([^"]+)"', source)
    if not supervisor:
        fail("SUPERVISOR_IN_IMAGE not found in domain/src/kubernetes/mod.rs")
    if not (root / supervisor[1].lstrip("/")).is_file():
        fail(f"the static supervisor is not at {supervisor[1]}, where Kubernetes jobs copy it from")

    for name, value in runtime_env.items():
        if value.startswith("/"):
            value = str(root / value.lstrip("/"))
        print(f"export {name}={shlex.quote(value)}")
    print(f"export SERVER_BIN={shlex.quote(str(program))}")


if __name__ == "__main__":
    main()
