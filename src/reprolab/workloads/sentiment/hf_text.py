"""Shared pieces of the BERT-family text models (pretrain `bert_mlm`, finetune `hf_classifier`,
import `hf`): a WordPiece tokenizer trained with HF `tokenizers`, token-id batches with dynamic
padding grouped by length, AdamW groups. Schedules, checkpoints, threads, device and bf16
autocast come from the training kit (reprolab.core.train); the loops live in the kinds'
modules, written out step by step (no HF Trainer)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_tokenizer(
    texts: Sequence[str], vocab_size: int, min_frequency: int, lowercase: bool, max_length: int
):
    """A BERT-style WordPiece tokenizer learned from `texts`, as a transformers fast tokenizer
    (saves tokenizer.json + tokenizer_config.json; AutoTokenizer loads it).

    No accent stripping and NFC normalisation: BERT's default NFD + strip_accents would cut
    Hangul syllables into jamo and drop nothing useful."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    steps = [
        normalizers.NFC(),
        normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=lowercase
        ),
    ]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tok.train_from_iterator((t for t in texts if t.strip()), trainer=trainer, length=len(texts))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    from tokenizers import decoders

    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )


def encode(tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text ([CLS] ... [SEP]), cut to `max_length`; no padding (done per batch)."""
    out = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    return out["input_ids"]


def pad(
    ids: Sequence[Sequence[int]], pad_id: int, multiple: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic padding: to the longest sequence of this batch (rounded up to a multiple of
    `multiple`, so that CPU kernels see a handful of shapes), not a global max_length."""
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    width = int(-(-lengths.max() // multiple) * multiple)
    batch = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.arange(width)[None, :] < lengths[:, None]
    batch[mask] = np.fromiter((t for x in ids for t in x), dtype=np.int64, count=lengths.sum())
    return torch.from_numpy(batch), torch.from_numpy(mask.astype(np.int64))


def epoch_batches(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int, pool: int = 50
) -> list[np.ndarray]:
    """Index batches for one epoch: shuffled by (seed, epoch), then within pools of
    `pool` batches sorted by length so that each batch pads little; batch order shuffled
    again. Deterministic in (seed, epoch): a resumed run replays the same order."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    lengths = np.asarray(lengths)
    batches = []
    span = batch_size * pool
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[np.ndarray]:
    """Prediction batches in length order (least padding); callers put results back."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def decay_groups(model, weight_decay: float) -> list[dict]:
    """AdamW groups with no weight decay on biases and LayerNorm weights (BERT's convention);
    frozen parameters are left out."""
    decay, plain = [], []
    for name, tensor in model.named_parameters():
        if not tensor.requires_grad:
            continue
        (plain if tensor.ndim < 2 or "LayerNorm" in name else decay).append(tensor)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
