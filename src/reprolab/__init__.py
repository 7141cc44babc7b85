"""reprolab: reproducible ML experiments on DVC pipelines, MLflow and dvclive."""

__version__ = "0.1.0"
