"""The headless core as an operator deploys it: deploy/Containerfile and deploy/sdtui.yaml agree with `sd serve`,
and the commands they run work: the core serves, `sd health` tells when it stops, a first start shows a code."""

from __future__ import annotations

import inspect
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from sdcore.core import default_data_dir
from sdcore.net import DEFAULT_PORT
from sdcore.net.pairing import normalize_code
from sdtui.cli.net import serve

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SD = str(Path(sys.executable).parent / "sd")  # the console script pip made, as in the image


def image() -> dict[str, list[str]]:
    """The Containerfile's instructions, by name: the text after each (continued lines joined)."""
    found: dict[str, list[str]] = {}
    logical = ""
    for line in (DEPLOY / "Containerfile").read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        logical += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            name, _, rest = logical.strip().partition(" ")
            found.setdefault(name.upper(), []).append(rest.strip())
            logical = ""
    return found


def base_image() -> str:
    """The image FROM names when built with no --build-arg: the default of its ARG."""
    (base,) = image()["FROM"]
    args = dict(arg.split("=", 1) for arg in image().get("ARG", []) if "=" in arg)
    for name, default in args.items():
        base = base.replace(f"${{{name}}}", default)
    return base


def image_env() -> dict[str, str]:
    return dict(word.split("=", 1) for text in image()["ENV"] for word in shlex.split(text))


def image_cmd() -> list[str]:
    (text,) = image()["CMD"]
    return list(json.loads(text))


def health_cmd() -> list[str]:
    (text,) = image()["HEALTHCHECK"]
    return list(json.loads(text[text.index("CMD ") + 4 :]))


def manifest() -> dict[str, list[dict[str, Any]]]:
    """deploy/sdtui.yaml's documents, by kind."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for doc in yaml.safe_load_all((DEPLOY / "sdtui.yaml").read_text()):
        kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


def serve_default_listen() -> str:
    return str(inspect.signature(serve).parameters["listen"].default.default)


def test_the_image_runs_sd_serve_on_its_port_as_a_fixed_user_with_the_data_dir_on_a_volume() -> None:
    steps = image()
    base = base_image()
    assert base.split("/")[-1].startswith("python:") and base.endswith("-slim")
    assert image_cmd() == ["sd", "serve", "--listen", f"0.0.0.0:{DEFAULT_PORT}"] == [
        "sd", "serve", "--listen", serve_default_listen()
    ]  # fmt: skip
    assert steps["EXPOSE"] == [str(DEFAULT_PORT)]
    uid, _, gid = steps["USER"][0].partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
    (volume,) = steps["VOLUME"]
    data_dir = image_env()["SD_DATA_DIR"]
    assert Path(data_dir).parent == Path(volume)  # inside the volume, so it survives the container
    # and the explorer's config (a theme picked over SSH): nothing is written outside the volume
    assert Path(image_env()["XDG_CONFIG_HOME"]).parent == Path(volume)
    assert image_env()["SD_PAIR_ON_START"] == "1"
    assert health_cmd()[:2] == ["sd", "health"]
    check_timeout = float(health_cmd()[health_cmd().index("--timeout") + 1])
    assert check_timeout < float(steps["HEALTHCHECK"][0].split("--timeout=")[1].split("s")[0])
    # the image installs every package of the project, and what pip needs to build it
    copied = " ".join(steps["COPY"]).split()
    assert {"pyproject.toml", "README.md", "sdcore", "sdtui", "themes"} <= set(copied)
    (install,) = [run for run in steps["RUN"] if "pip install" in run]
    assert "/src" in install
    # the explorer starts on a built-in theme: the build puts themes/ in the package, nothing is copied by hand
    assert "themes" not in install


def test_the_manifest_agrees_with_the_image_and_sd_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    kinds = manifest()
    (statefulset,) = kinds["StatefulSet"]
    pod = statefulset["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["args"] == image_cmd()
    (port,) = container["ports"]
    assert port["containerPort"] == DEFAULT_PORT
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SD_DATA_DIR"] == image_env()["SD_DATA_DIR"] and env["SD_PAIR_ON_START"] == "1"
    monkeypatch.setenv("SD_DATA_DIR", env["SD_DATA_DIR"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (claim,) = [c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]]
    # a volume per device, from the claim template, where the image keeps its data dir
    assert default_data_dir().parent == Path(mounts.pop(claim)) == Path(image()["VOLUME"][0])
    # the root filesystem is read-only: the rest are the pod's own volumes (/tmp, in case a library writes there)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert mounts == {"tmp": "/tmp"} and {v["name"] for v in pod["spec"]["volumes"]} == set(mounts)
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert f"{security['runAsUser']}:{security['runAsGroup']}" == image()["USER"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = container[probe]["exec"]["command"]
        assert command == health_cmd(), probe
        assert container[probe]["timeoutSeconds"] > float(command[command.index("--timeout") + 1]), probe
    resources = container["resources"]
    for what in ("cpu", "memory"):
        assert resources["requests"][what] and resources["limits"][what]
    # the Services reach the pod's SSH port; the StatefulSet's is headless (a stable name per device)
    labels = pod["metadata"]["labels"]
    services = {s["metadata"]["name"]: s for s in kinds["Service"]}
    assert services[statefulset["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"
    for service in services.values():
        selector = service["spec"]["selector"]
        assert all(
            labels.get(k) == v for k, v in selector.items() if not k.startswith("statefulset.kubernetes.io/")
        )
        for p in service["spec"]["ports"]:
            assert p["port"] == DEFAULT_PORT and p["targetPort"] in (port["name"], DEFAULT_PORT)


@pytest.mark.parametrize("version", ["1.25", kubernetes_validate.latest_version()])
def test_kubernetes_accepts_every_field_of_the_manifest(version: str) -> None:
    """The schemas of the oldest and newest Kubernetes the package knows, strict: a misspelled or misplaced field
    (which `kubectl apply` would refuse, or an older server would drop in silence) fails here."""
    for docs in manifest().values():
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)
    (statefulset,) = manifest()["StatefulSet"]
    statefulset["spec"]["template"]["spec"]["securityContext"]["runAsNonroot"] = True
    with pytest.raises(kubernetes_validate.ValidationError, match="'runAsNonroot' was unexpected"):
        kubernetes_validate.validate(statefulset, version, strict=True)


# -- the image's commands, run for real against a data dir in tmp_path --------------------------------------


def in_tmp(command: list[str], listen: str = "127.0.0.1:0") -> list[str]:
    """An image command as it runs here: this venv's `sd`, and a free port on loopback."""
    return [SD if word == "sd" else listen if word.startswith("0.0.0.0:") else word for word in command]


def container_env(tmp_path: Path, **more: str) -> dict[str, str]:
    """The image's environment, its paths in the volume moved into tmp_path."""
    (volume,) = image()["VOLUME"]
    env = {**os.environ, **image_env(), **more}
    for name, value in image_env().items():
        if Path(value).is_relative_to(volume):
            env[name] = str(tmp_path / value.lstrip("/"))
    return env


def start(env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    """Run the image's CMD; its output up to the line that says where it serves."""
    proc = subprocess.Popen(
        in_tmp(image_cmd()), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("serving "):
        line = proc.stdout.readline()
        assert line, f"sd serve ended before serving: {lines}"
        lines.append(line.rstrip("\n"))
    return proc, lines


def health(env: dict[str, str], timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    command = in_tmp(health_cmd())
    if timeout is not None:
        command[command.index("--timeout") + 1] = str(timeout)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.terminate()
    out, _ = proc.communicate(timeout=30)
    return out


def test_the_image_serves_and_its_health_check_passes_until_the_core_dies(tmp_path: Path) -> None:
    env = container_env(tmp_path)
    server, lines = start(env)
    try:
        address = lines[-1].rsplit(" ", 1)[1]
        answer = health(env)
        assert answer.returncode == 0, answer.stderr
        assert f"at {address} greets with SSH-2.0-" in answer.stdout
        server.kill()  # as an OOM kill would: the control socket stays behind
        server.wait(10)
        began = time.monotonic()
        answer = health(env, timeout=1)
        assert answer.returncode == 1
        assert answer.stderr.startswith("unhealthy: no core runs for ") and answer.stderr.count("\n") == 1
        assert time.monotonic() - began < 10  # python's start-up under load, and nothing waited on
    finally:
        stop(server)


def test_health_fails_within_its_timeout_when_the_core_hangs(tmp_path: Path) -> None:
    env = container_env(tmp_path)
    server, _ = start(env)
    try:
        os.kill(server.pid, signal.SIGSTOP)  # alive, but answering nobody
        began = time.monotonic()
        answer = health(env, timeout=1)
        took = time.monotonic() - began
        assert answer.returncode == 1
        assert (
            answer.stderr.startswith("unhealthy: the core for ")
            and "did not answer within 1 s" in answer.stderr
        )
        assert took < 8, took
        os.kill(server.pid, signal.SIGCONT)
        assert health(env).returncode == 0
    finally:
        os.kill(server.pid, signal.SIGCONT)
        stop(server)


def test_health_says_the_core_runs_without_its_ssh_server(tmp_path: Path) -> None:
    env = container_env(tmp_path)
    data_dir = env["SD_DATA_DIR"]
    script = (
        "import asyncio, sys\n"
        "from sdcore.api import Api\nfrom sdcore.api.server import serve\n"
        "from sdcore.control import ControlServer\nfrom sdcore.core import Core\n"
        "async def main():\n"
        "    async with Core(sys.argv[1]) as core:\n"
        "        control = ControlServer(core.data_dir)\n"
        "        serve(control, Api(core))\n"
        "        await control.start()\n"
        "        print('ready', flush=True)\n"
        "        await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )  # a core as sdtui holds one: the API served, no SSH server
    core = subprocess.Popen([sys.executable, "-c", script, data_dir], stdout=subprocess.PIPE, text=True)
    try:
        assert core.stdout is not None and core.stdout.readline() == "ready\n"
        answer = health(env)
        assert answer.returncode == 1
        assert "runs without its SSH server" in answer.stderr and "`sd serve`" in answer.stderr
    finally:
        core.kill()
        core.wait(10)


def test_a_first_start_shows_a_code_that_pairs_and_a_restart_shows_none(tmp_path: Path) -> None:
    env = container_env(tmp_path)
    server, lines = start(env)
    try:
        assert server.stdout is not None
        code_line = server.stdout.readline()
        assert code_line.startswith("pairing code (no device is paired yet): ")
        code = code_line.split(": ", 1)[1].strip()
        assert normalize_code(code) == code and len(code.split()) == 12
        told = server.stdout.readline() + server.stdout.readline()
        port = lines[-1].rsplit(":", 1)[1]
        assert f"sd network pair join {code} --host HOST:{port}" in told and "10 minutes" in told
        assert "sd network pair generate" in told
        # a person pairs their laptop with the code they read in the log
        laptop = {**os.environ, "SD_DATA_DIR": str(tmp_path / "laptop")}
        joined = subprocess.run(
            [SD, "network", "pair", "join", *code.split(), "--host", f"127.0.0.1:{port}"],
            capture_output=True, text=True, env=laptop, timeout=60,
        )  # fmt: skip
        assert joined.returncode == 0, joined.stderr
    finally:
        stop(server)
    server, lines = start(env)  # the pod restarts: a device is paired, so no code this time
    try:
        assert health(env).returncode == 0
    finally:
        rest = stop(server)
    assert "pairing code" not in rest


def test_no_code_without_sd_pair_on_start(tmp_path: Path) -> None:
    env = container_env(tmp_path, SD_PAIR_ON_START="0")
    server, _ = start(env)
    try:
        assert health(env).returncode == 0
    finally:
        rest = stop(server)
    assert "pairing code" not in rest


async def test_health_shows_what_a_server_that_is_not_ssh_said_escaped(tmp_path: Path) -> None:
    import asyncio

    from sdcore.api.health import Unhealthy, _greeting

    async def impostor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x1b]0;owned\x07\x1b[2J" + b"x" * 1000 + b"\r\n" * 100)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(impostor, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(Unhealthy) as told:
            await _greeting(f"127.0.0.1:{port}")
    finally:
        server.close()
    message = str(told.value)
    assert f"what answers at 127.0.0.1:{port} is not an SSH server" in message
    assert "\\x1b]0;owned\\x07" in message and "\x1b" not in message and len(message) < 200
