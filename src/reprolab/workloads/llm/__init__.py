"""LoRA/QLoRA fine-tuning of an imported causal LM (SmolLM2) on instruction data."""
