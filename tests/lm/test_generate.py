"""`reprolab generate` and reprolab.lm.generation on a tiny causal LM built from a config:
tokens stream as they are generated, bad prompts and missing models are one clear error line
(no traceback), and a model is found by directory, run id or registry alias."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from reprolab.cli import main
from reprolab.lm import generation
from reprolab.lm import tokenizers as tokenization

VOCAB = "abcdefghijklmnopqrstuvwxyz ,.\n"


def tiny_lm(path: Path, arch: str = "llama") -> Path:
    """A random 1-layer model and a character tokenizer; no end-of-text token, so it always
    generates max_new_tokens."""
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    tok = tokenization.char_tokenizer(VOCAB)
    common = {"vocab_size": len(tok), "eos_token_id": None, "bos_token_id": None}
    if arch == "gpt2":
        config = GPT2Config(n_embd=16, n_layer=1, n_head=2, n_positions=64, **common)
    else:
        config = LlamaConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=64,
            **common,
        )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory) -> Path:
    return tiny_lm(tmp_path_factory.mktemp("lm") / "tiny")


def test_stream_yields_pieces_that_add_up_to_the_completion(lm_dir):
    model, tok = generation.load(lm_dir)
    sampling = generation.Sampling(max_new_tokens=20, temperature=0.0)
    pieces = list(generation.stream(model, tok, "hello world", sampling))
    assert len([p for p in pieces if p]) > 1  # streamed, not one block at the end
    whole = generation.generate(model, tok, ["hello world"], sampling)[0]
    assert "".join(pieces) == whole and len(whole) == 20  # one character per token


def test_batched_generation_matches_one_by_one(lm_dir):
    model, tok = generation.load(lm_dir)
    sampling = generation.Sampling(max_new_tokens=8, temperature=0.0)
    batch = generation.generate(model, tok, ["a", "the lazy dog"], sampling)
    alone = [generation.generate(model, tok, [p], sampling)[0] for p in ("a", "the lazy dog")]
    assert batch == alone


def test_cli_streams_prompt_and_completion(lm_dir):
    args = ["generate", "--model-dir", str(lm_dir), "hello", "--max-new-tokens", "12"]
    result = CliRunner().invoke(main, [*args, "--temperature", "0"])
    assert result.exit_code == 0, result.output
    model, tok = generation.load(lm_dir)
    greedy = generation.Sampling(max_new_tokens=12, temperature=0.0)
    assert result.output == "hello" + generation.generate(model, tok, ["hello"], greedy)[0] + "\n"
    sampled = CliRunner().invoke(main, [*args, "--seed", "1", "--top-k", "5"])
    assert sampled.exit_code == 0 and sampled.output.startswith("hello")
    # a temperature too small to divide by decodes greedily instead of failing on NaN
    tiny = CliRunner().invoke(main, [*args, "--temperature", "1e-300", "--seed", "1"])
    assert tiny.exit_code == 0 and tiny.output == result.output, tiny.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["   "], "error: prompt: empty"),
        (["x" * 70], "error: prompt: too long, 70 tokens; the model's context is 64 tokens"),
        (["abc", "--max-new-tokens", "100"], "exceed the model's context of 64 tokens"),
        (["abc", "--temperature", "-1"], "error: temperature: must be >= 0"),
        (["abc", "--max-new-tokens", "0"], "error: max_new_tokens: must be >= 1"),
    ],
)
def test_cli_bad_input_is_one_clear_line(lm_dir, args, message):
    result = CliRunner().invoke(main, ["generate", "--model-dir", str(lm_dir), *args])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit


def test_cli_missing_models_are_clear_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["generate", "--model-dir", str(tmp_path / "nope"), "hi"])
    assert result.exit_code == 1 and f"error: {tmp_path / 'nope'}: no such model directory" in (
        result.output
    )
    (tmp_path / "empty").mkdir()
    result = runner.invoke(main, ["generate", "--model-dir", str(tmp_path / "empty"), "hi"])
    assert result.exit_code == 1 and "not a Hugging Face causal-LM directory" in result.output
    result = runner.invoke(main, ["generate", "hi"])  # the default: models:/llm-sft@champion
    assert result.exit_code == 1 and "error: models:/llm-sft@champion: cannot load" in result.output
    result = runner.invoke(main, ["generate", "--run-id", "0123abcd", "hi"])
    assert result.exit_code == 1 and "error: run 0123abcd: not found in the MLflow store" in (
        result.output
    )


def test_a_registered_pyfunc_model_is_found_by_alias_and_run_id(lm_dir, tmp_path):
    """An MLflow model directory with the HF files at its root (llm.pyfunc), logged to a run
    and registered with an alias, as the pipeline does."""
    import mlflow

    from reprolab.core.tracking import client, experiment_id
    from reprolab.lm import pyfunc

    model, tok = generation.load(lm_dir)
    saved = tmp_path / "model"
    pyfunc.save(saved, model, tok, generation.Sampling(max_new_tokens=5), ["ab"])
    mlflow_client = client()
    with mlflow.start_run(experiment_id=experiment_id("tiny-lm")) as run:
        mlflow.log_artifacts(str(saved), "model")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "tiny-lm")
    mlflow_client.set_registered_model_alias("tiny-lm", "champion", version.version)

    by_alias = generation.locate(alias="champion", task="tiny-lm")
    by_run = generation.locate(run_id=run.info.run_id)
    for found in (by_alias, by_run):
        assert (found / "config.json").is_file() and (found / "MLmodel").is_file()
    result = CliRunner().invoke(
        main, ["generate", "--task", "tiny-lm", "ab", "--max-new-tokens", "4", "--seed", "0"]
    )
    assert result.exit_code == 0, result.output
    assert len(result.output.rstrip("\n")) == 6


def test_a_run_s_logged_model_is_found_by_run_id(lm_dir, tmp_path):
    """The pipeline logs models as MLflow Logged Models (not run artifacts)."""
    from reprolab.core.tracking import Run
    from reprolab.lm import pyfunc

    model, tok = generation.load(lm_dir)
    saved = tmp_path / "model"
    pyfunc.save(saved, model, tok, generation.Sampling(max_new_tokens=5), ["ab"])
    with Run("tiny-lm", run_name="lm") as run:
        run.log_model_dir(saved, kind="minit")
    found = generation.locate(run_id=run.run_id)
    assert (found / "config.json").is_file() and (found / "MLmodel").is_file()


def test_hf_files_below_an_mlflow_directory_are_found(lm_dir, tmp_path):
    import shutil

    shutil.copytree(lm_dir, tmp_path / "wrapped" / "artifacts" / "hf")
    assert generation.find_hf_dir(tmp_path / "wrapped") == tmp_path / "wrapped/artifacts/hf"


def test_gpt2_models_generate_too(tmp_path):
    model, tok = generation.load(tiny_lm(tmp_path / "g", arch="gpt2"))
    greedy = generation.Sampling(max_new_tokens=6, temperature=0.0)
    batch = generation.generate(model, tok, ["ab", "the lazy"], greedy)
    assert batch == [generation.generate(model, tok, [p], greedy)[0] for p in ("ab", "the lazy")]


def test_a_peft_adapter_directory_loads_through_its_base(lm_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(lm_dir))
    adapted = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    adapted.save_pretrained(str(tmp_path / "adapter"))  # adapter_config.json names lm_dir
    generation.load(lm_dir)[1].save_pretrained(str(tmp_path / "adapter"))
    assert not (tmp_path / "adapter" / "config.json").exists()
    model, tok = generation.load(tmp_path / "adapter")
    greedy = generation.Sampling(max_new_tokens=6, temperature=0.0)
    plain, _ = generation.load(lm_dir)
    # LoRA starts as the identity (B = 0): same greedy completion as the base
    assert generation.generate(model, tok, ["ab"], greedy) == generation.generate(
        plain, tok, ["ab"], greedy
    )
