from pathlib import Path

import pytest
import yaml

from reprolab.core.errors import ParamsError
from reprolab.core.params import MAX_COUNT
from reprolab.ops.sandbox import set_dotted
from reprolab.params import load_params, parse_params
from tests.bad_params import OTHERS, WINE

REPO = Path(__file__).resolve().parents[2]


def repo_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def errors_of(raw) -> list[str]:
    with pytest.raises(ParamsError) as caught:
        parse_params(raw)
    return str(caught.value).splitlines()


def test_repository_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.models["wine-rf"].kind == "random_forest"
    assert set(params.models_of_task("wine-quality")) == {
        "wine-ridge",
        "wine-rf",
        "wine-hgb",
        "wine-mlp",
    }


def test_bad_value_names_key_path_expectation_and_value():
    raw = repo_params()
    raw["models"]["wine-rf"]["n_estimators"] = -5
    assert errors_of(raw) == ["params: models.wine-rf.n_estimators: must be > 0, got -5"]


def test_every_problem_is_reported_at_once():
    raw = repo_params()
    raw["models"]["wine-rf"]["n_estimators"] = 0
    raw["models"]["wine-mlp"]["hidden"] = [64, "wide"]
    raw["datasets"]["wine"]["valid_size"] = 0.7
    lines = errors_of(raw)
    assert len(lines) == 3
    assert any(line.startswith("params: models.wine-mlp.hidden[1]:") for line in lines)
    assert "params: datasets.wine.valid_size: must be < 0.5, got 0.7" in lines


def test_unknown_key_is_an_error_not_ignored():
    raw = repo_params()
    raw["models"]["wine-rf"]["n_estimator"] = 10  # typo
    assert errors_of(raw) == ["params: models.wine-rf.n_estimator: unknown key"]


def test_unknown_kind_lists_the_known_ones():
    raw = repo_params()
    raw["models"]["wine-rf"]["kind"] = "xgboost"
    (line,) = errors_of(raw)
    assert line.startswith("params: models.wine-rf.kind: unknown kind 'xgboost'")
    assert "random_forest" in line


def test_references_between_sections_are_checked():
    raw = repo_params()
    raw["models"]["wine-rf"]["dataset"] = "beer"
    raw["models"]["wine-rf"]["task"] = "beer-quality"
    lines = errors_of(raw)
    assert any("models.wine-rf.dataset: unknown dataset 'beer'" in line for line in lines)
    assert any("models.wine-rf.task: no registry.beer-quality section" in line for line in lines)


def test_missing_required_key():
    raw = repo_params()
    del raw["registry"]["wine-quality"]["threshold"]
    assert errors_of(raw) == ["params: registry.wine-quality.threshold: required key is missing"]


def test_unreadable_files(tmp_path):
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_gate_semantics():
    from reprolab.core.params import RegistryTask

    low = RegistryTask(metric="rmse", direction="minimize", threshold=0.8)
    assert low.passes(0.7) and not low.passes(0.9) and not low.passes(float("nan"))
    assert low.better(0.6, 0.7) and not low.better(0.7, 0.6) and low.better(0.7, None)
    high = RegistryTask(metric="acc", direction="maximize", threshold=0.8)
    assert high.passes(0.9) and not high.passes(0.7) and high.better(0.9, 0.85)


def _with_base_models(raw: dict) -> dict:
    """Two stand-in entries for the base-model sections (any kind validates the routing)."""
    ridge = {"workload": "wine", "kind": "ridge"}
    raw["pretrain"] = {"encoder": {**ridge, "dataset": "wine"}}
    raw["imports"] = {"outside": dict(ridge)}
    raw["finetune"] = {
        "tuned": {**ridge, "dataset": "wine", "task": "wine-quality", "base": "encoder"}
    }
    raw["ensembles"] = {}
    return raw


def test_model_sections_route_by_name_and_compete_per_task():
    params = parse_params(_with_base_models(repo_params()))
    assert params.model("tuned").base == "encoder"
    assert params.section_of("outside") == "imports"
    assert "tuned" in params.models_of_task("wine-quality")
    assert "encoder" not in params.models_of_task("wine-quality")  # a base does not compete


def test_model_sections_check_their_routing_keys():
    raw = _with_base_models(repo_params())
    raw["finetune"]["other"] = {
        "workload": "wine",
        "kind": "ridge",
        "dataset": "wine",
        "base": "outside",
    }  # no task
    raw["pretrain"]["wine-rf"] = {
        "workload": "wine",
        "kind": "ridge",
        "dataset": "wine",
    }  # name taken
    raw["models"]["wine-ridge"]["base"] = "encoder"
    lines = errors_of(raw)
    assert "params: pretrain.wine-rf: name already used by models.wine-rf" in lines
    assert "params: finetune.other.task: required key is missing" in lines
    assert "params: models.wine-ridge.base: only finetune entries start from a base" in lines


def test_finetune_base_must_be_a_base_model():
    raw = _with_base_models(repo_params())
    raw["finetune"]["tuned"]["base"] = "wine-rf"
    assert errors_of(raw) == [
        "params: finetune.tuned.base: must name a pretrain or imports entry, expected one of "
        "['encoder', 'outside'], got 'wine-rf'"
    ]


def test_restrict_keeps_a_finetuned_models_base():
    from reprolab.ops.sandbox import restrict

    raw = restrict(_with_base_models(repo_params()), ["tuned"])
    assert list(raw["finetune"]) == ["tuned"] and list(raw["pretrain"]) == ["encoder"]
    assert raw["models"] == {} and raw["imports"] == {}
    assert list(raw["datasets"]) == ["wine"] and list(raw["registry"]) == ["wine-quality"]
    parse_params({**raw, "infer": {}})  # still a valid params file


def test_ensemble_members_are_checked_and_restrict_brings_them_along():
    from reprolab.ops.sandbox import restrict

    raw = repo_params()
    members = raw["ensembles"]["nsmc-ensemble"]["members"]
    kept = restrict(raw, ["nsmc-ensemble"])
    assert set(kept["models"]) | set(kept["finetune"]) == set(members)
    assert list(kept["pretrain"]) == [raw["finetune"][members[1]]["base"]]
    parse_params(kept)
    raw["ensembles"]["nsmc-ensemble"]["members"] = ["nsmc-tfidf", "wine-rf"]
    assert errors_of(raw) == [
        "params: ensembles.nsmc-ensemble.members: 'wine-rf' learns wine/wine-quality, "
        "not nsmc/nsmc-sentiment"
    ]


@pytest.mark.parametrize(
    ("key", "value"), WINE + OTHERS, ids=[f"{k}={v!r}"[:60] for k, v in WINE + OTHERS]
)
def test_a_bad_value_anywhere_is_one_line_naming_its_key(key, value):
    raw = repo_params()
    set_dotted(raw, key, value)
    with pytest.raises(ParamsError) as caught:
        parse_params(raw)
    lines = str(caught.value).splitlines()
    named = [line for line in lines if key in line]
    assert named, f"no line names {key}: {lines}"


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("models.wine-rf.n_estimators", 10**12, f"must be <= {MAX_COUNT}, got 1000000000000"),
        ("hpo.wine-hgb.cv_folds", 1_000_000, "must be <= 20"),
        ("models.wine-mlp.hidden", [10**9], "hidden[0]: must be <= 16384"),
        ("seed", -1, "seed: must be >= 0"),
        ("seed", 2**32, "seed: must be <= 4294967295"),
        ("models.wine-rf.n_jobs", 0, "n_jobs: must be -1 (every core) or 1..1024, got 0"),
    ],
)
def test_sizes_carry_their_limit_in_the_message(key, value, words):
    raw = repo_params()
    set_dotted(raw, key, value)
    assert words in "\n".join(errors_of(raw))


def test_the_gate_metric_must_be_one_the_evaluation_writes():
    raw = repo_params()
    set_dotted(raw, "registry.wine-quality.metric", "rmsee")
    text = "\n".join(errors_of(raw))
    assert "registry.wine-quality.metric: 'rmsee' is not a metric" in text and "'rmse'" in text
