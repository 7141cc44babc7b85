"""Mini-T: a small decoder-only language model trained on Tiny Shakespeare."""
