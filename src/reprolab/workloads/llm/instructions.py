"""Instruction data in the Alpaca format: record validation, the prompt template (with
optional few-shot examples), a template-made synthetic MLOps/DevOps Q&A source, and
tokenisation with the loss on response tokens only."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from reprolab.core.errors import DataError

FIELDS = ("instruction", "input", "output")
IGNORE = -100  # label of tokens that carry no loss (prompt, padding)

# The Stanford Alpaca template (with and without an input), as in Code Alpaca's training code.
ALPACA = {
    "with_input": (
        "Below is an instruction that describes a task, paired with an input that provides "
        "further context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
    ),
    "no_input": (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
    ),
}


def validate_records(records: Any, source: str) -> list[dict[str, str]]:
    """Alpaca records: a list of objects with string `instruction` (non-empty), `input` and
    `output`. DataError naming the record index and field for the first malformed one."""
    if not isinstance(records, list):
        raise DataError(f"{source}: expected a JSON array of records, got {type(records).__name__}")
    out = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(
                f"{source}: record {index}: expected an object with {list(FIELDS)}, got "
                f"{type(record).__name__}"
            )
        for field in FIELDS:
            if field not in record:
                raise DataError(f"{source}: record {index}: field {field!r} is missing")
            if not isinstance(record[field], str):
                raise DataError(
                    f"{source}: record {index}: field {field!r} must be a string, got "
                    f"{type(record[field]).__name__} {record[field]!r:.60}"
                )
        if not record["instruction"].strip():
            raise DataError(f"{source}: record {index}: field 'instruction' is empty")
        extra = sorted(set(record) - set(FIELDS))
        if extra:
            raise DataError(f"{source}: record {index}: unknown field(s) {extra}")
        out.append({f: record[f] for f in FIELDS})
    return out


@dataclass(frozen=True)
class PromptTemplate:
    """How an (instruction, input) pair becomes the prompt the model continues."""

    with_input: str
    no_input: str
    few_shot: tuple[dict[str, str], ...] = ()
    separator: str = "\n\n"  # after each few-shot example's response

    def render(self, instruction: str, input: str = "") -> str:
        shots = "".join(
            self._one(s["instruction"], s.get("input", "")) + s["output"] + self.separator
            for s in self.few_shot
        )
        return shots + self._one(instruction, input)

    def _one(self, instruction: str, input: str) -> str:
        text = self.with_input if input.strip() else self.no_input
        return text.format(instruction=instruction.strip(), input=input.strip())

    def to_dict(self) -> dict[str, Any]:
        return {
            "with_input": self.with_input,
            "no_input": self.no_input,
            "few_shot": [dict(s) for s in self.few_shot],
            "separator": self.separator,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptTemplate:
        return cls(
            with_input=data["with_input"],
            no_input=data["no_input"],
            few_shot=tuple(data.get("few_shot", ())),
            separator=data.get("separator", "\n\n"),
        )


def check_template(with_input: str, no_input: str) -> list[str]:
    """Problems with a user template: unknown placeholders, a missing {instruction}."""
    import string

    problems = []
    for key, text in (("with_input", with_input), ("no_input", no_input)):
        try:
            names = {n for _, n, _, _ in string.Formatter().parse(text) if n is not None}
        except ValueError as err:
            problems.append(f"{key}: not a valid format string ({err})")
            continue
        allowed = {"instruction", "input"} if key == "with_input" else {"instruction"}
        if "instruction" not in names:
            problems.append(f"{key}: must contain {{instruction}}")
        if names - allowed:
            problems.append(f"{key}: unknown placeholder(s) {sorted(names - allowed)}")
    return problems


# ---------------------------------------------------------------- synthetic MLOps/DevOps Q&A

# (topic, question stem, answer): each stem is asked in several phrasings below
_FACTS = [
    (
        "DVC",
        "track a large data file",
        (
            "Run `dvc add data/file.csv`, then commit the generated `data/file.csv.dvc` and "
            "`.gitignore` with git; `dvc push` uploads the file to the remote."
        ),
    ),
    (
        "DVC",
        "reproduce a pipeline",
        (
            "Run `dvc repro`: DVC checks the hashes of every stage's dependencies and "
            "parameters and reruns only the stages whose inputs changed."
        ),
    ),
    (
        "DVC",
        "compare metrics between two commits",
        (
            "Run `dvc metrics diff HEAD~1 HEAD`; it prints each metric of both revisions and "
            "the change."
        ),
    ),
    (
        "DVC",
        "run a parameter sweep",
        (
            "Queue experiments with `dvc exp run --queue -S train.lr=0.01,0.1`, start workers"
            " with `dvc queue start -j 2`, and compare them with `dvc exp show`."
        ),
    ),
    (
        "DVC",
        "share data with a teammate",
        (
            "Configure a remote with `dvc remote add -d storage s3://bucket/path`, run `dvc "
            "push`, and your teammate runs `git pull` followed by `dvc pull`."
        ),
    ),
    (
        "MLflow",
        "log a metric",
        (
            'Inside `with mlflow.start_run():` call `mlflow.log_metric("rmse", value)`; pass '
            "`step=` to record a curve."
        ),
    ),
    (
        "MLflow",
        "register a model",
        (
            'Call `mlflow.register_model("runs:/<run_id>/model", "my-model")`; each call '
            "creates a new version in the registry."
        ),
    ),
    (
        "MLflow",
        "promote a model to production",
        (
            'Set an alias: `MlflowClient().set_registered_model_alias("my-model", "champion",'
            " version)`, and load it with `models:/my-model@champion`."
        ),
    ),
    (
        "MLflow",
        "serve a model over HTTP",
        (
            "Run `mlflow models serve -m models:/my-model@champion -p 5001`; POST JSON to "
            "`/invocations`."
        ),
    ),
    (
        "MLflow",
        "start a tracking server",
        (
            "Run `mlflow server --backend-store-uri postgresql://... --artifacts-destination "
            "s3://bucket` and set `MLFLOW_TRACKING_URI` on the clients."
        ),
    ),
    (
        "Docker",
        "build an image",
        ("Write a `Dockerfile`, then run `docker build -t myapp:1.0 .` in its directory."),
    ),
    (
        "Docker",
        "keep an image small",
        (
            "Use a slim base image, a multi-stage build, `pip install --no-cache-dir`, and a "
            "`.dockerignore` that excludes data and virtual environments."
        ),
    ),
    (
        "Docker",
        "run a container with a GPU",
        ("Install the NVIDIA Container Toolkit and run `docker run --gpus all myimage`."),
    ),
    (
        "Docker",
        "see why a container exited",
        (
            "Run `docker ps -a` to find it and `docker logs <container>` to read its output; "
            "`docker inspect` shows the exit code."
        ),
    ),
    (
        "Kubernetes",
        "roll out a new version of a deployment",
        (
            "Run `kubectl set image deployment/myapp myapp=myapp:1.1` and watch it with "
            "`kubectl rollout status deployment/myapp`."
        ),
    ),
    (
        "Kubernetes",
        "roll back a bad deployment",
        (
            "Run `kubectl rollout undo deployment/myapp`; `kubectl rollout history` lists the"
            " revisions."
        ),
    ),
    (
        "Kubernetes",
        "scale a deployment",
        (
            "Run `kubectl scale deployment/myapp --replicas=3`, or add a "
            "HorizontalPodAutoscaler to scale on CPU."
        ),
    ),
    (
        "Kubernetes",
        "debug a pod stuck in CrashLoopBackOff",
        (
            "Run `kubectl describe pod <pod>` for events and `kubectl logs <pod> --previous` "
            "for the last crash's output."
        ),
    ),
    (
        "Prometheus",
        "expose metrics from a Python service",
        (
            "Use `prometheus_client`: create a `Counter` or `Histogram`, call "
            "`start_http_server(8000)`, and add the target to `prometheus.yml`."
        ),
    ),
    (
        "Prometheus",
        "alert on high latency",
        (
            "Add an alerting rule such as `histogram_quantile(0.99, "
            "rate(request_seconds_bucket[5m])) > 0.5` with a `for: 10m` clause, routed by "
            "Alertmanager."
        ),
    ),
    (
        "Grafana",
        "show model latency on a dashboard",
        (
            "Add Prometheus as a data source, create a panel with a `histogram_quantile` "
            "query over the latency histogram, and save the dashboard as JSON in git."
        ),
    ),
    (
        "GitHub Actions",
        "run tests on every pull request",
        (
            "Add `.github/workflows/test.yml` with `on: pull_request` and a job that checks "
            "out the code, installs dependencies and runs `pytest`."
        ),
    ),
    (
        "GitHub Actions",
        "cache pip downloads",
        ("Use `actions/setup-python` with `cache: pip`, keyed on the requirements file."),
    ),
    (
        "Terraform",
        "preview infrastructure changes",
        ("Run `terraform plan`; it shows what `terraform apply` would create, change or destroy."),
    ),
    (
        "Terraform",
        "share state within a team",
        (
            "Configure a remote backend such as S3 with DynamoDB locking, so that state is "
            "stored centrally and locked during applies."
        ),
    ),
    (
        "Airflow",
        "schedule a daily training job",
        (
            'Define a DAG with `schedule="@daily"` and a task (e.g. `BashOperator` running '
            "`dvc repro`), and put the file in the DAGs folder."
        ),
    ),
    (
        "Airflow",
        "retry a failing task",
        (
            "Set `retries=3` and `retry_delay=timedelta(minutes=5)` in the task's arguments "
            "or the DAG's `default_args`."
        ),
    ),
    (
        "LoRA",
        "fine-tune a large model on a small GPU",
        (
            "Freeze the base model and train low-rank adapters with PEFT LoRA; with QLoRA the"
            " frozen weights are stored in 4-bit NF4, cutting memory about four-fold."
        ),
    ),
    (
        "LoRA",
        "choose the LoRA rank",
        (
            "Start with r=8 or 16 and alpha=2r on the attention projections; raise the rank "
            "only if validation loss plateaus early."
        ),
    ),
    (
        "Monitoring",
        "detect data drift in production",
        (
            "Compare the live feature distributions with the training data (e.g. population "
            "stability index or a KS test) on a schedule and alert above a threshold."
        ),
    ),
    (
        "CI/CD",
        "deploy a model safely",
        (
            "Register the new version as a candidate, evaluate it against the champion on the"
            " same test set, and promote it only if it is better; keep the old version for "
            "rollback."
        ),
    ),
    (
        "Python",
        "pin dependencies for reproducibility",
        (
            "Generate a lock file (e.g. `pip freeze > requirements.lock` or `pip-compile`) "
            "and install from it in CI and in Docker images."
        ),
    ),
]
_PHRASINGS = [
    "How do I {stem} with {topic}?",
    "What is the recommended way to {stem} using {topic}?",
    "Explain how to {stem} in {topic}.",
    "I need to {stem}. How does that work with {topic}?",
    "Give me the steps to {stem} with {topic}.",
]


def synthetic_mlops(n: int, seed: int) -> list[dict[str, str]]:
    """`n` template-made MLOps/DevOps Q&A records (Alpaca format), drawn by `seed` from the
    fact table x phrasings (160 distinct questions; more repeat them)."""
    rng = random.Random(seed)
    pool = [(f, p) for f in _FACTS for p in _PHRASINGS]
    rng.shuffle(pool)
    records = []
    for i in range(n):
        (topic, stem, answer), phrasing = pool[i % len(pool)]
        records.append(
            {"instruction": phrasing.format(stem=stem, topic=topic), "input": "", "output": answer}
        )
    return records


# ---------------------------------------------------------------- tokenisation


def encode(tokenizer: Any, prompt: str, response: str, max_length: int) -> dict[str, list[int]]:
    """Token ids of prompt + response + EOS and labels that are IGNORE on the prompt, so the
    loss covers the response only. Prompt and response are tokenised separately (no merge
    across the boundary). Truncated on the right to `max_length`; the result may carry no
    response token at all when the prompt fills it (callers drop such examples)."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        response_ids = [*response_ids, tokenizer.eos_token_id]
    bos = [tokenizer.bos_token_id] if getattr(tokenizer, "add_bos_token", False) else []
    ids = (bos + prompt_ids + response_ids)[:max_length]
    labels = ([IGNORE] * (len(bos) + len(prompt_ids)) + response_ids)[:max_length]
    return {"input_ids": ids, "labels": labels}


def collate(examples: list[dict[str, list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors: input_ids, attention_mask, labels (IGNORE on padding)."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(e["labels"])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
