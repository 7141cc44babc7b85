"""The network of `hf_classifier`: where its base lives, loading it with a labelled
classification head (the class names come from the dataset), and which layers train."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def base_dir(base: str | None) -> Path:
    """The HF directory of `base`: models/<base> (a pretrain or imports entry), or a path."""
    from reprolab.core.errors import DataError
    from reprolab.core.layout import model_dir
    from reprolab.lm import hf_dir

    if not base:
        raise DataError("hf_classifier: no `base` given (a pretrain/imports entry or a path)")
    for candidate in (model_dir(base), Path(base)):
        if candidate.is_dir():
            return hf_dir(candidate)
    raise DataError(f"{model_dir(base)}: base model not found; run its pretrain@/import@ stage")


def load_classifier(
    directory: Path,
    num_labels: int = 2,
    dropout: float | None = None,
    labels: Sequence[str] | None = None,
):
    """AutoModelForSequenceClassification from any BERT-family directory (a fresh head when
    the directory holds an encoder or an MLM model), quietly; `labels` name the classes in
    its config (id2label), else the directory's own names are kept."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    extra: dict[str, Any] = {"classifier_dropout": dropout} if dropout is not None else {}
    if labels is not None:
        extra["id2label"] = dict(enumerate(labels))
        extra["label2id"] = {name: i for i, name in enumerate(labels)}
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights were newly initialised": expected here
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return AutoModelForSequenceClassification.from_pretrained(
                directory, num_labels=num_labels, **extra
            )
    finally:
        hf_logging.set_verbosity(level)


def label_names(split: Any, dataset: str | None) -> list[str]:
    """The dataset's class names, for config.json's id2label: the split's own when it carries
    them, else params.yaml's `datasets.<dataset>.label_names`, else the NSMC default."""
    names = getattr(split, "label_names", None)
    if names:
        return [str(n) for n in names]
    from reprolab.workloads.sentiment.params import NsmcDataset

    return _params_label_names(dataset) or list(NsmcDataset.model_fields["label_names"].default)


def _params_label_names(dataset: str | None) -> list[str] | None:
    from reprolab.core.errors import ReprolabError
    from reprolab.core.paths import workspace_root
    from reprolab.params import load_params

    path = workspace_root() / "params.yaml"
    if dataset is None or not path.is_file():
        return None
    try:
        spec = load_params(path, only=dataset).datasets.get(dataset)
    except ReprolabError:
        return None
    names = getattr(spec, "label_names", None)
    return [str(n) for n in names] if names else None


def freeze(model, unfrozen_layers: int | None) -> list[str]:
    """Train only the top `unfrozen_layers` encoder layers and the head; returns the names of
    the frozen parameters. None: nothing frozen."""
    if unfrozen_layers is None:
        return []
    base = getattr(model, model.base_model_prefix)
    layers = base.encoder.layer
    keep = {id(t) for layer in layers[len(layers) - unfrozen_layers :] for t in layer.parameters()}
    frozen = []
    for name, tensor in base.named_parameters():
        if name.startswith("pooler."):  # part of the head (a fresh one for an MLM base)
            continue
        if id(tensor) not in keep:
            tensor.requires_grad_(False)
            frozen.append(f"{model.base_model_prefix}.{name}")
    return frozen


logging.getLogger("transformers.modeling_utils").setLevel(logging.ERROR)
