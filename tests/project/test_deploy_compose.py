"""deploy/docker-compose.yml: the services the team stack needs, the pipeline (profiles cpu,
gpu) and model server (profile serve) built from deploy/Dockerfile, Prometheus and Grafana
watching the model server (profile serve), every variable it reads defined once in
.env.example, no secret inline; `docker compose config` validates it where the compose plugin
exists (it needs no engine). The Grafana dashboard charts only metrics the service exports,
from the provisioned datasource."""

from __future__ import annotations

import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path, PurePosixPath

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE, ENV = DEPLOY / "docker-compose.yml", DEPLOY / ".env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
GRAFANA = DEPLOY / "grafana"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "reprolab.yml"
DASHBOARD = GRAFANA / "dashboards" / "reprolab-serve.json"
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")
SECRETS = (
    "MINIO_ROOT_PASSWORD",
    "POSTGRES_PASSWORD",
    "REPROLAB_API_TOKEN",
    "GRAFANA_ADMIN_PASSWORD",
)

# what `reprolab serve` exports (prometheus_client); the dashboard may chart nothing else
METRICS = {
    "reprolab_http_requests_total": "counter",
    "reprolab_http_request_duration_seconds": "histogram",
    "reprolab_model_info": "gauge",
    "reprolab_model_reloads_total": "counter",
    "reprolab_batch_size": "histogram",
    "reprolab_time_to_first_token_seconds": "histogram",
    "reprolab_inter_token_latency_seconds": "histogram",
    "reprolab_e2e_request_latency_seconds": "histogram",
    "reprolab_prompt_tokens_total": "counter",
    "reprolab_generation_tokens_total": "counter",
    "reprolab_time_per_output_token_seconds": "histogram",
    "reprolab_request_prompt_tokens": "histogram",
    "reprolab_request_generation_tokens": "histogram",
    "reprolab_num_requests_running": "gauge",
    "reprolab_num_requests_waiting": "gauge",
    "reprolab_request_success_total": "counter",
}
SERIES = {
    series: (name, kind)
    for name, kind in METRICS.items()
    for series in (
        [f"{name}_bucket", f"{name}_sum", f"{name}_count"] if kind == "histogram" else [name]
    )
}
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def _env() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in ENV.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {k: v for k, v in pairs}


def _services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _mounts(service: dict) -> dict[str, str]:
    """Container path -> host path (relative to deploy/) of a service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = source
    return mounts


def test_services_and_lean_mlflow_on_postgres():
    spec = yaml.safe_load(COMPOSE.read_text())
    assert set(spec["services"]) == {
        "minio",
        "minio-init",
        "postgres",
        "mlflow",
        "train",
        "train-gpu",
        "serve",
        "prometheus",
        "grafana",
    }
    mlflow = spec["services"]["mlflow"]
    command = " ".join(mlflow["command"])
    assert "postgresql+psycopg2://" in command and "--workers 1" in command
    assert "--artifacts-destination s3://" in command
    assert mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert mlflow["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    init = " ".join(spec["services"]["minio-init"]["entrypoint"])
    assert init.count("mc mb --ignore-existing") == 2


def test_profiles_cpu_gpu_and_serve_build_from_the_dockerfile():
    services = _services()
    profiles = ("cpu", "gpu", "serve")
    by_profile = {
        p: {n for n, s in services.items() if p in s.get("profiles", [])} for p in profiles
    }
    assert by_profile == {
        "cpu": {"train"},
        "gpu": {"train-gpu"},
        "serve": {"serve", "prometheus", "grafana"},
    }
    for name, target in (("train", "train"), ("train-gpu", "train"), ("serve", "serve")):
        build = services[name]["build"]
        assert (build["context"], build["dockerfile"]) == ("..", "deploy/Dockerfile")
        assert build["target"] == target and f" AS {target}\n" in DOCKERFILE.read_text()
    # the stack itself runs with no profile; only the GPU service reserves a GPU
    assert all("profiles" not in services[n] for n in ("minio", "postgres", "mlflow"))
    devices = services["train-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert "deploy" not in services["train"] and "deploy" not in services["serve"]
    gpu_args = services["train-gpu"]["build"]["args"]
    assert gpu_args == {"BASE": "${CUDA_BASE}", "TORCH_VARIANT": "${GPU_TORCH_VARIANT}"}
    assert _env()["GPU_TORCH_VARIANT"].startswith("cu") and "cuda" in _env()["CUDA_BASE"]
    # the monitoring images are pinned in .env.example like the others
    for name, variable in (("prometheus", "PROMETHEUS_IMAGE"), ("grafana", "GRAFANA_IMAGE")):
        assert services[name]["image"] == f"${{{variable}}}"
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", _env()[variable]), variable


def test_serve_runs_the_image_cmd_with_the_token_and_the_stack_registry():
    serve = _services()["serve"]
    assert "command" not in serve and "entrypoint" not in serve  # the image's reprolab serve
    env = serve["environment"]
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["REPROLAB_API_TOKEN"] == "${REPROLAB_API_TOKEN}"
    assert env["PORT"] == "8000" and serve["ports"] == ["${SERVE_PORT}:8000"]
    assert serve["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert "--insecure" not in COMPOSE.read_text()  # it binds 0.0.0.0 with a token


class _Ready(http.server.BaseHTTPRequestHandler):
    status = 503

    def do_GET(self):
        self.send_response(type(self).status if self.path == "/ready" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_serve_healthcheck_asks_ready_and_fails_until_it_answers(monkeypatch):
    check = _services()["serve"]["healthcheck"]
    kind, python, flag, code = check["test"]
    assert (kind, python, flag) == ("CMD", "python", "-c")  # no curl in the slim image
    assert "urllib" in code and "'http://127.0.0.1:8000/ready'" in code
    assert check.get("start_period")  # models take a while to load
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    code = code.replace("127.0.0.1:8000", f"127.0.0.1:{server.server_address[1]}")
    try:
        for status, healthy in ((503, False), (200, True)):
            monkeypatch.setattr(_Ready, "status", status)
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
            assert (done.returncode == 0) is healthy, (status, done.stderr)
    finally:
        server.shutdown()
        server.server_close()


def test_prometheus_scrapes_serve_metrics_with_the_token_from_a_secret_file():
    spec = yaml.safe_load(COMPOSE.read_text())
    prometheus = spec["services"]["prometheus"]
    # the image's default --config.file is /etc/prometheus/prometheus.yml
    assert "command" not in prometheus
    assert _mounts(prometheus)["/etc/prometheus/prometheus.yml"] == "./prometheus/prometheus.yml"
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert config["global"]["scrape_interval"] == "5s"
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "reprolab-serve"]
    assert job.get("scrape_interval", "5s") == "5s"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert [t for c in job["static_configs"] for t in c["targets"]] == ["serve:8000"]
    assert "8000" in spec["services"]["serve"]["ports"][0].split(":")[-1]
    auth = job["authorization"]
    assert auth.get("type", "Bearer") == "Bearer" and "credentials" not in auth
    assert "bearer_token" not in job and "bearer_token_file" not in job
    # the credentials file is the compose secret made from REPROLAB_API_TOKEN, readable by
    # the image's user (nobody, 65534)
    secret_name = PurePosixPath(auth["credentials_file"]).name
    assert auth["credentials_file"] == f"/run/secrets/{secret_name}"
    assert spec["secrets"][secret_name] == {"environment": "REPROLAB_API_TOKEN"}
    (granted,) = [s for s in prometheus["secrets"] if secret_name in (s, s.get("source"))]
    assert isinstance(granted, str) or str(granted.get("uid", "65534")) == "65534"


def test_grafana_provisions_the_datasource_and_the_dashboards_folder():
    grafana = _services()["grafana"]
    mounts = _mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    datasources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    (prometheus,) = [d for d in datasources if d["type"] == "prometheus"]
    assert prometheus["url"] == "http://prometheus:9090"
    assert _services()["prometheus"]["ports"] == ["${PROMETHEUS_PORT}:9090"]
    (provider,) = yaml.safe_load(PROVIDERS.read_text())["providers"]
    path = provider["options"]["path"]
    assert mounts[path] == "./grafana/dashboards" and (DEPLOY / mounts[path]).is_dir()
    assert DASHBOARD.parent == DEPLOY / mounts[path]
    env = grafana["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD}"


def test_every_variable_is_defined_in_env_example_and_used():
    used = set(VARIABLE.findall(COMPOSE.read_text()))
    defined = _env()
    assert used == set(defined), used ^ set(defined)
    # secrets come from the env file only: not inline in compose nor in the configs it mounts
    mounted = [COMPOSE, PROMETHEUS, DATASOURCES, PROVIDERS, DASHBOARD, DOCKERFILE]
    for secret in SECRETS:
        assert defined[secret], secret
        for path in mounted:
            assert defined[secret] not in path.read_text(), (secret, path.name)


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


# ---- the Grafana dashboard


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict) -> list[dict]:
    """Every panel, those inside collapsed rows too, rows left out."""
    panels = []
    for panel in dashboard["panels"]:
        panels.extend(panel.get("panels", []))
        if panel["type"] != "row":
            panels.append(panel)
    return panels


def _exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]


def _metric_names(expr: str) -> list[str]:
    """The series names a PromQL expression selects: identifiers that are not functions,
    keywords, label names (in {...}, by (...), ...), durations or strings."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    names = re.findall(r"(?<![\w.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", bare)
    return [n for n in names if n.lower() not in PROMQL_WORDS]


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (task) (rate(a_total{status=~"5.."}[5m])) / 2', ["a_total"]),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[$__rate_interval])))", ["h_bucket"]),
        ("max by (task, version) (info == 1) or on (task) other offset 5m", ["info", "other"]),
    ],
)
def test_metric_names_are_read_from_promql(expr, names):
    assert _metric_names(expr) == names


def test_the_dashboard_charts_only_metrics_the_service_exports():
    dashboard = _dashboard()
    exprs = _exprs(dashboard)
    assert exprs
    used = set()
    for expr in exprs:
        names = _metric_names(expr)
        assert names, expr  # every query reads some series
        unknown = [n for n in names if n not in SERIES]
        assert not unknown, (unknown, expr)
        used.update(SERIES[n][0] for n in names)
        # rates only of counters and histogram series; quantiles only of buckets, by le
        for series in re.findall(r"\b(?:rate|irate|increase)\(\s*([\w:]+)", expr):
            assert SERIES[series][1] != "gauge", expr
        if "histogram_quantile(" in expr:
            assert all(n.endswith("_bucket") for n in names), expr
            assert re.search(r"\bby \([^)]*\ble\b[^)]*\)", expr), expr
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        match = re.fullmatch(r"label_values\((\w+),\s*\w+\)", query)
        assert match and match[1] in SERIES, query
    # and it charts every one of them
    assert used == set(METRICS), set(METRICS) - used


def test_the_dashboard_has_the_panels_the_service_needs():
    dashboard = _dashboard()
    assert dashboard["uid"] == "reprolab-serve" and 36 <= dashboard["schemaVersion"] <= 41
    panels = _panels(dashboard)

    def panel(title: str) -> dict:
        found = [p for p in panels if p["title"].lower().startswith(title.lower())]
        assert len(found) == 1, (title, [p["title"] for p in panels])
        return found[0]

    def exprs(title: str) -> str:
        return " ".join(t["expr"] for t in panel(title)["targets"])

    assert "sum by (task, status)" in exprs("Request rate by task and status")
    assert exprs("Latency p50 / p99").count("histogram_quantile(") == 2
    assert '"4.."' in exprs("4xx / 5xx") and '"5.."' in exprs("4xx / 5xx")
    assert "reprolab_model_info" in exprs("Loaded model version")
    assert "result" in exprs("Model reloads by result")
    assert "reprolab_time_to_first_token_seconds" in exprs("Time to first token")
    assert "reprolab_inter_token_latency_seconds" in exprs("Inter-token latency")
    tokens = exprs("Prompt and generation tokens/s")
    assert "reprolab_prompt_tokens_total" in tokens and "generation_tokens_total" in tokens
    assert "reprolab_batch_size" in exprs("Batch size")
    # unique ids, refIds unique per panel, on the 24-column grid without overlaps
    ids = [p["id"] for p in dashboard["panels"] + [c for p in panels for c in p.get("panels", [])]]
    assert len(ids) == len(set(ids))
    cells = set()
    for p in dashboard["panels"]:
        refs = [t["refId"] for t in p.get("targets", [])]
        assert len(refs) == len(set(refs)), p["title"]
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        area = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & area, p["title"]
        cells |= area


def _datasources(node) -> list[dict]:
    if isinstance(node, dict):
        found = [node["datasource"]] if isinstance(node.get("datasource"), dict) else []
        return found + [d for v in node.values() for d in _datasources(v)]
    if isinstance(node, list):
        return [d for v in node for d in _datasources(v)]
    return []


def test_the_dashboard_uses_the_provisioned_datasource_by_uid():
    (provisioned,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    dashboard = _dashboard()
    refs = [d for d in _datasources(dashboard) if d.get("type") != "grafana"]  # annotations
    assert refs and all(d == {"type": "prometheus", "uid": provisioned["uid"]} for d in refs)
    # every panel and query names it (none falls back to whatever is the default)
    for panel in _panels(dashboard):
        assert panel.get("datasource", {}).get("uid") == provisioned["uid"], panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", {}).get("uid") == provisioned["uid"], panel["title"]
