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
    Hangul syllables into jamo and drop nothing useful. The vocabulary is learned by
    `wordpiece_vocab`, the same BPE-then-WordPiece recipe as `tokenizers`' WordPieceTrainer
    but the same on every run."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
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
    vocab = wordpiece_vocab(tok, texts, vocab_size, min_frequency)
    tok.model = models.WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix="##")
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
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


# a character after a word's first one is learned as its own symbol, this offset away (the
# Unicode private-use planes 15-16), so that every symbol is in the trainer's sorted alphabet
_INNER = 0xF0000


def wordpiece_vocab(
    tok, texts: Sequence[str], vocab_size: int, min_frequency: int
) -> dict[str, int]:
    """WordPiece vocabulary {token: id} of `texts` as split by `tok`'s normaliser and
    pre-tokenizer: BPE merges within words, a `##` prefix on pieces that do not start a word.

    `tokenizers`' WordPieceTrainer does the same, but numbers the `##` symbols in the order
    of a hash map that is seeded anew in every process, and that order breaks ties between
    equally frequent merges: the vocabulary changed from run to run. Here each inner character
    is a distinct code point from the start, so the BPE trainer sees one sorted alphabet and
    its merges, ranked by count and then by symbol ids, come out the same every time."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    def inner(word: str) -> str | None:
        if any(ord(c) >= _INNER for c in word) or any(ord(c) >= 0x110000 - _INNER for c in word):
            return None  # private-use or supplementary-plane text: left to [UNK]
        return word[0] + "".join(chr(_INNER + ord(c)) for c in word[1:])

    def lines():
        for text in texts:
            if not text.strip():
                continue
            words = tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(text))
            marked = (inner(word) for word, _ in words)
            yield " ".join(m for m in marked if m)

    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
    )
    bpe.train_from_iterator(lines(), trainer=trainer, length=len(texts))
    vocab: dict[str, int] = {}
    for piece, _ in sorted(bpe.get_vocab().items(), key=lambda item: item[1]):
        if piece not in SPECIAL_TOKENS and ord(piece[0]) >= _INNER:
            piece = "##" + "".join(chr(ord(c) - _INNER) for c in piece)
        elif piece not in SPECIAL_TOKENS:
            piece = piece[0] + "".join(chr(ord(c) - _INNER) for c in piece[1:])
        vocab.setdefault(piece, len(vocab))
    return vocab


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


class EpochOrder:
    """The training batches one at a time: epoch `epoch`'s length-grouped batches
    (`epoch_batches`, fixed by seed and epoch) from `position` on, then the next
    epoch's. (epoch, position) is all a checkpoint needs for a resumed run to go on with
    the very batches the interrupted one would have taken."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int) -> None:
        self.lengths, self.batch_size, self.seed = lengths, batch_size, seed
        self.epoch, self.position = 0, 0
        self._batches: tuple[int, list[np.ndarray]] | None = None  # (epoch, its batches)

    def next(self) -> np.ndarray:
        batches = self._epoch(self.epoch)
        if self.position >= len(batches):  # this epoch is done: the next one's first batch
            self.epoch, self.position = self.epoch + 1, 0
            batches = self._epoch(self.epoch)
        self.position += 1
        return batches[self.position - 1]

    def _epoch(self, epoch: int) -> list[np.ndarray]:
        if self._batches is None or self._batches[0] != epoch:
            batches = epoch_batches(self.lengths, self.batch_size, self.seed, epoch)
            if not batches:
                raise ValueError("no training sequences to make batches of")
            self._batches = (epoch, batches)
        return self._batches[1]


def training_state(model, optimiser, schedule, order: EpochOrder) -> dict:
    """A checkpoint's family state: weights, optimiser, schedule and place in the data."""
    return {
        "model": model.state_dict(),
        "optimiser": optimiser.state_dict(),
        "schedule": schedule.state_dict(),
        "epoch": order.epoch,
        "position": order.position,
    }


def load_training_state(model, optimiser, schedule, order: EpochOrder, state: dict) -> None:
    """Put back what `training_state` saved."""
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    schedule.load_state_dict(state["schedule"])
    order.epoch, order.position = int(state["epoch"]), int(state["position"])
