from pathlib import Path

import pytest
import yaml

from reprolab.core.errors import ParamsError
from reprolab.core.params import MAX_COUNT
from reprolab.ops.sandbox import set_dotted
from reprolab.params import load_params, parse_params
from tests.bad_params import OTHERS, SCHEMA, WINE

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
    assert set(kept["models"]) == set(members) and not kept["finetune"]
    parse_params(kept)
    lora = restrict(raw, ["smollm2-lora"])  # a fine-tune brings its base along
    assert list(lora["finetune"]) == ["smollm2-lora"]
    assert list(lora["imports"]) == [raw["finetune"]["smollm2-lora"]["base"]]
    parse_params(lora)
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


@pytest.mark.parametrize("case", SCHEMA, ids=[f"{c.key}={c.value!r}"[:60] for c in SCHEMA])
def test_later_mistakes_are_one_line_at_load(case):
    """Strict types, ranges, splits too small, storage URLs, models over `limits`: found when
    params are loaded, with one line naming the key (or the model over a cap)."""
    lines = errors_of(case.apply(repo_params()))
    assert len(lines) == 1 and case.named in lines[0], lines


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("models.wine-mlp.max_epochs", "5", "must be an integer (a string or true/false"),
        ("models.wine-rf.n_estimators", True, "must be an integer"),
        ("models.nsmc-tfidf.char_ngrams", [4, 1], "char_ngrams: min 4 must be <= max 1"),
        ("datasets.nsmc.sampling_rate", 1e-6, "train 0, valid 0, test 0 row(s)"),
        ("hpo.wine-hgb.storage", "bogus://x", "expected sqlite:///<path>, postgresql"),
        ("pretrain.minit.n_layer", 1_000_000, "over limits.max_params = 200,000,000"),
        ("models.nuclei-unet.crop_size", 1_048_576, "over limits.max_activation_mb = 8,192"),
    ],
)
def test_later_mistakes_say_what_was_expected(key, value, words):
    raw = repo_params()
    set_dotted(raw, key, value)
    assert words in "\n".join(errors_of(raw))


def test_strict_types_still_take_an_int_for_a_float_and_pairs_from_code():
    from reprolab.workloads.control.params import ControlDataset

    raw = repo_params()
    set_dotted(raw, "models.wine-ridge.alpha", 2)
    assert parse_params(raw).models["wine-ridge"].alpha == 2.0
    data = ControlDataset(workload="control", kind="control", gain=(0.5, 2.0), delay=[0.2, 1])
    assert data.gain == (0.5, 2.0) and data.delay == (0.2, 1.0)


def test_exponents_in_the_file_are_numbers(tmp_path):
    """`1e-4` is a float to DVC (YAML 1.2), which writes it so on `dvc exp run -S`; strict
    params must not see it as the string YAML 1.1 makes of it."""
    text = (REPO / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("    lr: 0.003\n", "    lr: 3e-3\n", 1))
    assert load_params(path).models["wine-mlp"].lr == 0.003


def test_yes_and_no_are_text_as_dvc_reads_them(tmp_path):
    """YAML 1.1 reads `yes` as true; DVC (YAML 1.2) writes and shows it as text. A flag must
    be true or false, so the two never disagree on what a run used."""
    from reprolab.core.errors import ParamsError

    text = (REPO / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("    lr: 0.003\n", "    lr: 0.003\n    deterministic: yes\n", 1))
    with pytest.raises(ParamsError, match=r"deterministic: must be true or false, got 'yes'"):
        load_params(path)


def test_the_limits_hold_the_committed_and_smoke_models_easily():
    """Every torch model of params.yaml and of the smoke overlay is well under the caps."""
    from reprolab.ops.sandbox import smoke_overrides

    smoke = repo_params()
    for key, value in smoke_overrides(REPO).items():
        set_dotted(smoke, key, value)
    for params in (parse_params(repo_params()), parse_params(smoke)):
        limits = params.limits
        for name in [n for s in ("models", "pretrain", "finetune") for n in getattr(params, s)]:
            model = params.model(name)
            found = model.footprint(params.datasets.get(model.dataset), params._base_of(model))
            if found is not None:
                assert found.parameters < limits.max_params / 10, name
                assert found.activation_bytes / 2**20 < limits.max_activation_mb / 4, name


def test_a_cap_can_be_raised_in_the_file():
    raw = repo_params()
    set_dotted(raw, "models.pidnet.hidden", [4096] * 16)
    assert any("models.pidnet: an estimated" in line for line in errors_of(raw))
    raw["limits"] = {"max_params": 400_000_000}
    assert parse_params(raw).limits.max_params == 400_000_000
