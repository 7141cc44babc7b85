"""Bad params.yaml values, each with the key its one-line error must name. The unit test runs
all of them through the validator; the pipeline test runs the wine ones through `dvc repro`
and `dvc exp run -S` and checks that nothing was touched."""

from __future__ import annotations

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
