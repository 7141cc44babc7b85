"""Load any Hugging Face causal LM and generate from it, token by token.

One path for every causal LM in the repository (Mini-T, an imported SmolLM2, a LoRA adapter
or a fine-tuned LoRA model): `locate(...)` turns a model directory, an MLflow run id or a
registry alias (`models:/<task>@<alias>`) into a local directory that holds a standard HF
model (config.json, or a PEFT adapter_config.json) and its tokenizer: the model directory's
root, or for a model saved in the earlier layout its artifacts/hf; `load(dir)` returns
(model, tokenizer), with a fine-tuned model's adapter applied when it was saved unmerged;
`stream(...)` yields text pieces as they are generated (a
TextIteratorStreamer fed by `model.generate` in a thread) and `generate(...)` returns whole
completions for a batch of prompts (the report's side-by-side generations).

Bad input is a GenerationError (a ReprolabError: one clear line, no traceback in the CLI):
an empty prompt, a prompt that does not fit the model's context, a missing model.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprolab.core.errors import RegistryError, ReprolabError

DEFAULT_TASK = "llm-sft"
MAX_SEARCH_DEPTH = 3  # how deep under an MLflow model directory to look for the HF files


class GenerationError(ReprolabError):
    """A prompt or sampling setting the model cannot take, or a model that cannot load."""


GREEDY_BELOW = 1e-5  # logits divided by 1e-300 become inf, then NaN: decode greedily instead


@dataclass(frozen=True)
class Sampling:
    """Sampling settings; temperature 0 (or below GREEDY_BELOW) means greedy decoding."""

    max_new_tokens: int = 200
    temperature: float = 0.8
    top_k: int = 50
    top_p: float = 1.0
    seed: int | None = 0

    def check(self) -> None:
        if self.max_new_tokens < 1:
            raise GenerationError(f"max_new_tokens: must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise GenerationError(f"temperature: must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise GenerationError(f"top_k: must be >= 0 (0: no top-k), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise GenerationError(f"top_p: must be in (0, 1], got {self.top_p}")

    def generate_kwargs(self) -> dict[str, Any]:
        if self.temperature < GREEDY_BELOW:
            return {"max_new_tokens": self.max_new_tokens, "do_sample": False}
        return {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": True,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
        }


# ---------------------------------------------------------------- finding a model


def is_hf_dir(path: Path) -> bool:
    return (path / "config.json").is_file() or (path / "adapter_config.json").is_file()


def find_hf_dir(root: Path) -> Path:
    """`root` itself when it holds an HF model (or adapter), else the shallowest folder under
    it that does (a model saved in the earlier layout keeps them under artifacts/hf)."""
    root = Path(root)
    if not root.is_dir():
        raise GenerationError(f"{root}: no such model directory")
    if is_hf_dir(root):
        return root
    for depth in range(1, MAX_SEARCH_DEPTH + 1):
        found = sorted(p for p in root.glob("/".join(["*"] * depth)) if p.is_dir() and is_hf_dir(p))
        if found:
            return found[0]
    raise GenerationError(
        f"{root}: not a Hugging Face causal-LM directory (no config.json or "
        "adapter_config.json in it or below)"
    )


def locate(
    model_dir: str | Path | None = None,
    run_id: str | None = None,
    alias: str | None = None,
    task: str = DEFAULT_TASK,
) -> Path:
    """The local HF directory of a model given by directory, MLflow run or registry alias
    (checked in that order; the alias is the fallback)."""
    if model_dir is not None:
        return find_hf_dir(Path(model_dir))
    if run_id is not None:
        return find_hf_dir(_download_run_model(run_id))
    if alias is None:
        raise GenerationError("name a model: a model directory, a run id or a registry alias")
    return find_hf_dir(_download_alias(task, alias))


def _quiet_downloads() -> None:
    """No "Downloading artifacts" bar on the terminal the completion streams to."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _download_run_model(run_id: str) -> Path:
    _quiet_downloads()
    import mlflow
    from mlflow.exceptions import MlflowException

    from reprolab.core.tracking import client

    mlflow_client = client()
    try:
        run = mlflow_client.get_run(run_id)
    except MlflowException as err:
        raise RegistryError(f"run {run_id}: not found in the MLflow store") from err
    model_id = run.data.tags.get("reprolab.model_id")  # a Logged Model; older runs: artifacts
    try:
        if model_id:
            return Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_id}"))
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model"))
    except (MlflowException, OSError) as err:
        raise GenerationError(f"run {run_id}: has no logged model ({_first_line(err)})") from err


def _download_alias(task: str, alias: str) -> Path:
    _quiet_downloads()
    import mlflow
    from mlflow.exceptions import MlflowException

    from reprolab.core.tracking import client

    client()  # points MLflow at the repository's store
    uri = f"models:/{task}@{alias}"
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except (MlflowException, OSError) as err:
        raise RegistryError(
            f"{uri}: cannot load the model ({_first_line(err)}); run the pipeline (register "
            "stage), or give --model-dir or --run-id"
        ) from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


# ---------------------------------------------------------------- loading


def load(directory: str | Path, dtype: Any = None):
    """(model in eval mode, tokenizer) from an HF directory: a full model, or a PEFT
    adapter whose base model is found through its adapter_config.json."""
    directory = find_hf_dir(Path(directory))
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars: noise on a terminal

        if (directory / "config.json").is_file():
            model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=dtype)
            model = _with_adapter(model, directory)
        else:
            from peft import AutoPeftModelForCausalLM

            model = AutoPeftModelForCausalLM.from_pretrained(str(directory), dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
    except (OSError, ValueError) as err:
        raise GenerationError(f"{directory}: cannot load the model ({_first_line(err)})") from err
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer


def _with_adapter(model, directory: Path):
    """The model with its fine-tuned adapter applied when it was saved unmerged (the HF files
    are then a copy of the base)."""
    from reprolab.lm import unmerged_adapter

    adapter = unmerged_adapter(directory)
    if adapter is None:
        return model
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter))


def context_length(model) -> int | None:
    """Longest sequence (prompt + generated tokens) the model was built for, if it says."""
    config = model.config
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def encode_prompt(prompt: str, tokenizer, model, max_new_tokens: int) -> list[int]:
    """Token ids of `prompt`; GenerationError for an empty one or one that does not fit."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise GenerationError("prompt: empty (give some text to continue)")
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if not ids:
        raise GenerationError(f"prompt: {prompt[:40]!r} encodes to no tokens")
    limit = context_length(model)
    if limit is not None and len(ids) + max_new_tokens > limit:
        if len(ids) >= limit:
            raise GenerationError(
                f"prompt: too long, {len(ids)} tokens; the model's context is {limit} tokens"
            )
        raise GenerationError(
            f"prompt: {len(ids)} tokens + max_new_tokens {max_new_tokens} exceed the model's "
            f"context of {limit} tokens (use at most {limit - len(ids)} new tokens)"
        )
    return ids


# ---------------------------------------------------------------- generating


def _seed(seed: int | None) -> None:
    if seed is not None:
        import torch

        torch.manual_seed(seed)


def stream(model, tokenizer, prompt: str, sampling: Sampling = Sampling()) -> Iterator[str]:
    """The completion of `prompt`, piece by piece as the model generates it. The prompt and
    settings are checked now (a GenerationError before anything is generated)."""
    sampling.check()
    ids = encode_prompt(prompt, tokenizer, model, sampling.max_new_tokens)
    return _pieces(model, tokenizer, ids, sampling)


def _token_streamer(tokenizer):
    """A TextIteratorStreamer that hands text on as soon as it decodes to whole characters.
    HF's own waits for a space or newline (so a character-level model would print word by
    word); an incomplete UTF-8 sequence (a byte-level BPE token inside a character) decodes
    to U+FFFD and is held back until the character is complete."""
    from transformers import TextIteratorStreamer

    class TokenStreamer(TextIteratorStreamer):
        def put(self, value) -> None:
            if value.dim() > 1:
                if value.shape[0] > 1:
                    raise ValueError("streaming takes one sequence at a time")
                value = value[0]
            if self.skip_prompt and self.next_tokens_are_prompt:
                self.next_tokens_are_prompt = False
                return
            self.token_cache.extend(value.tolist())
            text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
            if text.endswith("\ufffd"):
                return
            printable, self.print_len = text[self.print_len :], len(text)
            if printable:
                self.on_finalized_text(printable)

    return TokenStreamer(
        tokenizer, skip_prompt=True, skip_special_tokens=True, clean_up_tokenization_spaces=False
    )


def _pieces(model, tokenizer, ids: list[int], sampling: Sampling) -> Iterator[str]:
    import torch

    streamer = _token_streamer(tokenizer)
    input_ids = torch.tensor([ids], device=model.device)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            _seed(sampling.seed)
            with torch.no_grad():
                model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    streamer=streamer,
                    pad_token_id=tokenizer.pad_token_id,
                    **sampling.generate_kwargs(),
                )
        except BaseException as err:  # surfaced in the caller's thread below
            failure.append(err)
            streamer.end()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    yield from streamer
    thread.join()
    if failure:
        raise failure[0]


def generate(
    model, tokenizer, prompts: list[str], sampling: Sampling = Sampling(), batch_size: int = 8
) -> list[str]:
    """Completions (without the prompt) for each prompt; left-padded batches."""
    import torch

    sampling.check()
    encoded = [encode_prompt(p, tokenizer, model, sampling.max_new_tokens) for p in prompts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[str] = []
    _seed(sampling.seed)
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        width = max(len(ids) for ids in chunk)
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in chunk])
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in chunk])
        with torch.no_grad():
            result = model.generate(
                input_ids=input_ids.to(model.device),
                attention_mask=mask.to(model.device),
                pad_token_id=pad,
                **sampling.generate_kwargs(),
            )
        out += tokenizer.batch_decode(result[:, width:], skip_special_tokens=True)
    return out
