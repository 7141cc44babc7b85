"""LoRA on a tiny Llama built from a config: only adapter parameters change, the merged model
gives the adapter model's logits, the loss counts response tokens only, target modules that
match nothing are refused before training, QLoRA trains on CPU when bitsandbytes imports."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from reprolab.core.errors import DataError  # noqa: E402
from reprolab.workloads.llm import loading, lora, scoring  # noqa: E402
from reprolab.workloads.llm.instructions import IGNORE, collate, encode  # noqa: E402
from tests.workloads.llm import tiny  # noqa: E402

PAIRS = [
    ("### Instruction:\nAdd two numbers.\n\n### Response:\n", "def add(a, b):\n    return a + b"),
    ("### Instruction:\nReproduce a pipeline.\n\n### Response:\n", "Run dvc repro."),
    ("### Instruction:\nName a dog.\n\n### Response:\n", "The lazy dog."),
    ("### Instruction:\nCount.\n\n### Response:\n", "0123456789"),
]


@pytest.fixture(autouse=True)
def threads():
    torch.set_num_threads(2)


@pytest.fixture
def base(tmp_path):
    return tiny.save_base(tmp_path / "base")


def examples(tok, max_length=64):
    kept, dropped = lora.encode_pairs(tok, [p for p, _ in PAIRS], [r for _, r in PAIRS], max_length)
    assert dropped == 0
    return kept


def config(steps=6):
    return lora.TrainConfig(lr=5e-3, warmup_steps=0, batch_size=2, max_steps=steps, eval_every=3)


def test_response_only_labels_and_loss():
    tok = tiny.tokenizer()
    prompt, response = PAIRS[0]
    e = encode(tok, prompt, response, 64)
    n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert e["labels"][:n_prompt] == [IGNORE] * n_prompt
    assert e["labels"][n_prompt:] == e["input_ids"][n_prompt:]
    assert e["input_ids"][-1] == tok.eos_token_id  # the model learns to stop

    model = tiny.llama(len(tok))
    batch = collate([e, encode(tok, *PAIRS[2], 64)], tok.pad_token_id)
    with torch.no_grad():
        out = model(**batch)
    # the same loss by hand over response positions only
    logits, labels = out.logits[:, :-1], batch["labels"][:, 1:]
    mask = labels != IGNORE
    by_hand = torch.nn.functional.cross_entropy(logits[mask], labels[mask])
    assert torch.allclose(out.loss, by_hand, atol=1e-6)
    # changing prompt tokens' labels to IGNORE vs. their ids changes the loss: masking matters
    full = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, IGNORE)
    with torch.no_grad():
        assert not torch.allclose(model(**{**batch, "labels": full}).loss, out.loss)


def test_truncation_keeps_only_examples_with_a_response():
    tok = tiny.tokenizer()
    kept, dropped = lora.encode_pairs(tok, ["x " * 100], ["answer"], max_length=16)
    assert kept == [] and dropped == 1


def test_lora_changes_only_adapters_and_merge_matches(base, tmp_path):
    tok = loading.load_tokenizer(base)
    device = loading.pick_device("float32")
    model = loading.load_base(base, device)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    peft_model = lora.attach_lora(model, ["q_proj", "v_proj"], 4, 8, 0.0, quantized=False)
    ex = examples(tok)
    rows = lora.train(peft_model, ex, ex[:2], tok.pad_token_id, config(), seed=0)
    assert rows[-1]["valid_perplexity"] < rows[0]["valid_perplexity"] * 1.5

    changed_adapters = 0
    for name, param in peft_model.named_parameters():
        if "lora_" in name:
            changed_adapters += "lora_B" in name and bool((param != 0).any())
            continue
        plain = name.replace("base_model.model.", "").replace(".base_layer", "")
        assert torch.equal(param, before[plain]), f"{plain} changed"
    assert changed_adapters == 4  # q and v of both layers

    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    merged = lora.merge_adapter(base, adapter)
    batch = collate(ex, tok.pad_token_id)
    peft_model.eval()
    with torch.no_grad():
        a = peft_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        b = merged(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        plain = loading.load_base(base, device)(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, plain, atol=1e-3)  # and the adapter did something


def test_targets_checked_against_architecture(base):
    names = lora.linear_module_names(loading.load_config(base))
    assert lora.resolve_targets(None, "llama", names) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert lora.resolve_targets({"llama": ["gate_proj"]}, "llama", names) == ["gate_proj"]
    with pytest.raises(DataError, match=r"\['c_attn'\] match no linear layer.*q_proj"):
        lora.resolve_targets(["q_proj", "c_attn"], "llama", names)
    with pytest.raises(DataError, match="no entry for architecture 'llama'"):
        lora.resolve_targets({"gpt2": ["c_attn"]}, "llama", names)
    with pytest.raises(DataError, match="no default for architecture 'bert'"):
        lora.resolve_targets(None, "bert", names)


def test_qlora_trains_on_cpu_after_an_eval_pass(base):
    pytest.importorskip("bitsandbytes")
    tok = loading.load_tokenizer(base)
    device = loading.pick_device("float32")
    model = loading.load_base(base, device, quantization="nf4")
    assert any("Linear4bit" in type(m).__name__ for m in model.modules())
    ex = examples(tok)
    scoring.example_nll(model, ex, tok.pad_token_id)  # an eval pass first: the repack trap
    peft_model = lora.attach_lora(model, ["q_proj", "v_proj"], 4, 8, 0.0, quantized=True)
    rows = lora.train(peft_model, ex, ex, tok.pad_token_id, config(8), seed=0)  # checks grads
    assert rows[-1]["valid_loss"] < rows[0]["valid_loss"]
    first_layer = [
        p for n, p in peft_model.named_parameters() if "layers.0." in n and "lora_B" in n
    ]
    assert first_layer and all(bool((p != 0).any()) for p in first_layer)


def test_dead_adapters_are_caught():
    tok = tiny.tokenizer()
    model = lora.attach_lora(tiny.llama(len(tok)), ["q_proj"], 2, 4, 0.0, quantized=False)
    for name, param in model.named_parameters():  # no gradient can reach layer 0
        if "layers.0" in name and "lora_A" in name:
            param.data.zero_()
    batch = collate([encode(tok, *PAIRS[0], 64)], tok.pad_token_id)
    model(**batch).loss.backward()
    with pytest.raises(RuntimeError, match=r"got no gradient.*layers\.0"):
        lora.check_gradients(model)


def test_qlora_repack_trap_is_caught_not_silent(tmp_path):
    """Without our switch, an eval pass repacks the 4-bit weights (on CPUs with AVX512-BF16)
    and training gets no gradient below: the first step must fail loudly."""
    pytest.importorskip("bitsandbytes")
    from bitsandbytes.nn.modules import has_avx512bf16

    if not has_avx512bf16():
        pytest.skip("this CPU has no AVX512-BF16: bitsandbytes never repacks here")
    # the CPU layout packs 32 output rows at a time: every projection needs >= 32 outputs
    base = tiny.save_base(tmp_path / "base", hidden_size=64, num_key_value_heads=4)
    tok = loading.load_tokenizer(base)
    model = loading.load_base(base, loading.pick_device("float32"), quantization="nf4")
    for module in model.modules():  # undo loading.no_cpu_repack
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = True
    ex = examples(tok)
    scoring.example_nll(model, ex, tok.pad_token_id)
    peft_model = lora.attach_lora(model, ["q_proj", "v_proj"], 4, 8, 0.0, quantized=True)
    with pytest.raises(RuntimeError, match="no gradient"):
        lora.train(peft_model, ex, ex, tok.pad_token_id, config(2), seed=0)


def test_last_layers_only(base):
    tok = loading.load_tokenizer(base)
    model = loading.load_base(base, loading.pick_device("float32"))
    peft_model = lora.attach_lora(model, ["q_proj"], 4, 8, 0.0, quantized=False, last_layers=1)
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert names and all("layers.1." in n for n in names)
    ex = examples(tok)
    lora.train(peft_model, ex, [], tok.pad_token_id, config(2), seed=0)  # grads reach all
    with pytest.raises(DataError, match="last_layers: 3, but the base has 2 layers"):
        lora.attach_lora(
            loading.load_base(base, loading.pick_device("float32")), ["q_proj"], 4, 8, 0.0, False, 3
        )
