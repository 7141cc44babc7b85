"""Causal language models: loading any Hugging Face causal-LM directory (by
path, MLflow run or registry alias), streaming generation, and the MLflow pyfunc wrapper."""
