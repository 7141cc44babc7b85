"""Bad params.yaml values, each with the key its one-line error must name. The unit test runs
all of them through the validator; the pipeline test runs the wine ones through `dvc repro`
and `dvc exp run -S` and checks that nothing was touched; tests/pipeline/test_check_battery.py
runs every case through the check stage on a sandbox with outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NAN, INF = float("nan"), float("inf")

# (dotted key, bad value); every one is refused with an error line naming the key
WINE = [
    ("seed", -1),
    ("seed", 2**70),
    ("seed", 1.5),
    ("seed", "abc"),
    ("seed", NAN),
    ("datasets.wine.sample_fraction", 1e-9),
    ("datasets.wine.sample_fraction", 0),
    ("datasets.wine.sample_fraction", 1.5),
    ("datasets.wine.valid_size", 0.9),
    ("datasets.wine.test_size", -0.1),
    ("datasets.wine.colors", ["rose"]),
    ("datasets.wine.colors", []),
    ("datasets.wine.kind", "beer"),
    ("models.wine-ridge.alpha", INF),
    ("models.wine-ridge.alpha", NAN),
    ("models.wine-ridge.alpha", -1),
    ("models.wine-rf.n_jobs", 0),
    ("models.wine-rf.n_jobs", -1000),
    ("models.wine-rf.n_estimators", 10**12),
    ("models.wine-rf.n_estimators", 0),
    ("models.wine-rf.max_features", 2.0),
    ("models.wine-rf.min_samples_leaf", 0),
    ("models.wine-rf.task", "nope"),
    ("models.wine-rf.dataset", "nope"),
    ("models.wine-rf.kind", "forest"),
    ("models.wine-rf.unknown_key", 1),
    ("models.wine-hgb.learning_rate", INF),
    ("models.wine-hgb.max_iter", 0),
    ("models.wine-mlp.hidden", [10**9]),
    ("models.wine-mlp.hidden", []),
    ("models.wine-mlp.dropout", 1.5),
    ("models.wine-mlp.lr", 0),
    ("models.wine-mlp.batch_size", 0),
    ("models.wine-mlp.max_epochs", 10**9),
    ("models.wine-mlp.patience", -1),
    ("hpo.wine-hgb.cv_folds", 1_000_000),
    ("hpo.wine-hgb.n_trials", 10**9),
    ("hpo.wine-hgb.n_trials", 0),
    ("hpo.wine-hgb.timeout", -5),
    ("hpo.wine-hgb.seed", -3),
    ("hpo.wine-hgb.space.learning_rate.low", 0.5),
    ("registry.wine-quality.metric", "rmsee"),
    ("registry.wine-quality.threshold", NAN),
    ("registry.wine-quality.direction", "up"),
    ("report.scatter_points", -1),
    ("models.wine-hgb.l2_regularization", -1),
]
OTHERS = [
    # DVC itself reads infer inputs into dvc.yaml's deps and stops on a number there before
    # any stage runs; so this one is checked by the validator alone
    ("infer.wine-quality.input", 5),
    ("datasets.nsmc.sampling_rate", 0),
    ("models.nuclei-unet.crop_size", 7),
    ("models.nuclei-unet.max_steps", 10**12),
    ("models.nuclei-unet.base_width", 10**6),
    ("pretrain.minit.n_embd", 130),
    ("pretrain.minit.n_embd", 10**6),
    ("finetune.smollm2-lora.r", 0),
    ("finetune.smollm2-lora.quantization", "int3"),
    ("models.pidnet.hidden", [10**9]),
    ("models.nsmc-tfidf.hash_bits", 40),
    ("datasets.control.n_plants", 10**9),
    ("hpo.pidnet.space.lr.low", -1.0),
    ("datasets.nuclei.limit", 0),
    ("registry.pid-control.metric", "dice"),
]


@dataclass(frozen=True)
class Bad:
    """One bad value: `key` set to `value` (and `also`'s keys with it); the one error line
    must hold `names` (the key itself, or the model whose estimated size is over a cap)."""

    key: str
    value: Any
    names: str = ""
    also: tuple[tuple[str, Any], ...] = ()

    @property
    def named(self) -> str:
        return self.names or self.key

    def apply(self, raw: dict) -> dict:
        for key, value in ((self.key, self.value), *self.also):
            *parents, last = key.split(".")
            node = raw
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        return raw


# schema-level mistakes of every workload: strict types, (min, max) ranges, splits too
# small to score, storage URLs, contexts longer than the corpus, models over `limits`
SCHEMA = [
    # wine
    Bad("models.wine-mlp.max_epochs", "5"),
    Bad("models.wine-rf.n_estimators", True),
    Bad("models.wine-ridge.alpha", "1.0"),
    Bad("models.wine-mlp.deterministic", "yes"),
    Bad("datasets.wine.drop_duplicates", 1),
    Bad("models.wine-mlp.hidden", [16384] * 16, names="models.wine-mlp"),
    Bad("hpo.wine-hgb.storage", "bogus://x"),
    Bad("hpo.wine-hgb.storage", "sqlite://optuna.db"),
    Bad("hpo.wine-hgb.n_trials", "20"),
    Bad("registry.wine-quality.threshold", "0.8"),
    # sentiment
    Bad("models.nsmc-tfidf.char_ngrams", [4, 1]),
    Bad("models.nsmc-tfidf.word_ngrams", [2, 1]),
    Bad("datasets.nsmc.sampling_rate", 1e-6),
    Bad("datasets.nsmc.sampling_rate", 1e-4),
    Bad("datasets.nsmc.max_length", "300"),
    Bad("models.nsmc-nblr.hash_bits", "21"),
    Bad("models.nsmc-nblr.hash_bits", 30),
    Bad("models.nsmc-nblr.morph_ngrams", [3, 1]),
    Bad("models.nsmc-nblr.alpha", 0),
    Bad("models.nsmc-tfidf.morphemes", "yes"),
    Bad("ensembles.nsmc-ensemble.grid_step", "0.05"),
    # nuclei
    Bad("models.nuclei-unet.crop_size", 1_048_576, names="models.nuclei-unet"),
    Bad("models.nuclei-unet.tile_size", 1_048_576, names="models.nuclei-unet"),
    Bad("models.nuclei-unet.base_width", 16_384, names="models.nuclei-unet"),
    Bad("models.nuclei-unet.tta", "true"),
    Bad("datasets.nuclei.limit", "16"),
    # control
    Bad("models.pidnet.hidden", [16384] * 16, names="models.pidnet"),
    Bad("models.pidnet.epochs", 60.0),
    Bad("datasets.control.gain", [3.0, 0.5]),
    Bad("datasets.control.n_plants", "200"),
    Bad("hpo.pidnet.storage", "redis://localhost/0"),
    # minit
    Bad("pretrain.minit.n_layer", 1_000_000, names="pretrain.minit"),
    Bad("pretrain.minit.block_size", 200_000),
    Bad("datasets.shakespeare.limit", 1000, names="pretrain.minit.block_size"),
    Bad("pretrain.minit.batch_size", 1_000_000, names="pretrain.minit"),
    Bad("pretrain.minit.threads", "2"),
    Bad("pretrain.minit.deterministic", "false"),
    # llm
    Bad("datasets.codealpaca.sampling_rate", 1e-6, also=(("datasets.codealpaca.synthetic", 0),)),
    Bad("datasets.codealpaca.sampling_rate", 1e-9, also=(("datasets.codealpaca.synthetic", 0),)),
    Bad("datasets.codealpaca.synthetic", "200"),
    Bad("finetune.smollm2-lora.max_steps", "30"),
    Bad("finetune.smollm2-lora.merge", "yes"),
    # the caps themselves
    Bad("limits.max_params", 0),
    Bad("limits.max_activation_mb", "8192"),
]

# what only the check stage sees: files and packages on this machine (the fixture's sandbox
# holds data/wrong.csv, a CSV without the expected columns, and data/junk.bin, binary bytes)
MACHINE = [
    Bad("infer.wine-quality.input", "data/nope.csv"),
    Bad("infer.wine-quality.input", "data/wrong.csv"),
    Bad("infer.wine-quality.input", "data/junk.bin"),
    Bad("infer.wine-quality.input", "data/processed/wine/nope.csv"),
    Bad("infer.nsmc-sentiment.input", "data/junk.bin"),
    Bad("infer.nsmc-sentiment.input", "data/nope.tsv"),
    Bad("infer.nuclei-segmentation.input", "data/no-images"),
    Bad("infer.nuclei-segmentation.input", "data/wrong.csv"),
    Bad("imports.smollm2.source", "package:does_not_exist"),
    Bad("imports.smollm2.source", "/nonexistent/model.gguf"),
    Bad("imports.smollm2.source", "./no-such-dir"),
    Bad("imports.smollm2.gguf_file", "missing.gguf", names="imports.smollm2.source"),
]

# the first battery's values, as cases
EARLIER = [Bad(key, value) for key, value in WINE + OTHERS]
