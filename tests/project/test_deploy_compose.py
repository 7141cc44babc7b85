"""deploy/docker-compose.yml: the services the team stack needs, the pipeline (profiles cpu,
gpu) and model server (profile serve) built from deploy/Dockerfile, every variable it reads
defined once in .env.example, no secret inline; `docker compose config` validates it where
the compose plugin exists (it needs no engine)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE, ENV = DEPLOY / "docker-compose.yml", DEPLOY / ".env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


def _env() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in ENV.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {k: v for k, v in pairs}


def test_services_and_lean_mlflow_on_postgres():
    spec = yaml.safe_load(COMPOSE.read_text())
    assert set(spec["services"]) == {
        "minio",
        "minio-init",
        "postgres",
        "mlflow",
        "train",
        "train-gpu",
        "model-server",
    }
    mlflow = spec["services"]["mlflow"]
    command = " ".join(mlflow["command"])
    assert "postgresql+psycopg2://" in command and "--workers 1" in command
    assert "--artifacts-destination s3://" in command
    assert mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert mlflow["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    init = " ".join(spec["services"]["minio-init"]["entrypoint"])
    assert init.count("mc mb --ignore-existing") == 2
    assert spec["services"]["model-server"]["profiles"] == ["serve"]


def test_profiles_cpu_gpu_and_serve_build_from_the_dockerfile():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    profiles = ("cpu", "gpu", "serve")
    by_profile = {
        p: {n for n, s in services.items() if p in s.get("profiles", [])} for p in profiles
    }
    assert by_profile == {"cpu": {"train"}, "gpu": {"train-gpu"}, "serve": {"model-server"}}
    for name, target in (("train", "train"), ("train-gpu", "train"), ("model-server", "serve")):
        build = services[name]["build"]
        assert (build["context"], build["dockerfile"]) == ("..", "deploy/Dockerfile")
        assert build["target"] == target and f" AS {target}\n" in DOCKERFILE.read_text()
    # the stack itself runs with no profile; only the GPU service reserves a GPU
    assert all("profiles" not in services[n] for n in ("minio", "postgres", "mlflow"))
    devices = services["train-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert "deploy" not in services["train"] and "deploy" not in services["model-server"]
    gpu_args = services["train-gpu"]["build"]["args"]
    assert gpu_args == {"BASE": "${CUDA_BASE}", "TORCH_VARIANT": "${GPU_TORCH_VARIANT}"}
    assert _env()["GPU_TORCH_VARIANT"].startswith("cu") and "cuda" in _env()["CUDA_BASE"]


def test_every_variable_is_defined_in_env_example_and_used():
    used = set(VARIABLE.findall(COMPOSE.read_text()))
    defined = _env()
    assert used == set(defined), used ^ set(defined)
    # secrets come from the env file only
    for secret in ("MINIO_ROOT_PASSWORD", "POSTGRES_PASSWORD"):
        assert defined[secret] not in COMPOSE.read_text()


def test_docker_compose_config_validates():
    docker = shutil.which("docker")
    probe = docker and subprocess.run([docker, "compose", "version"], capture_output=True)
    if not probe or probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed here (no engine is needed)")
    done = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "--env-file", str(ENV), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
