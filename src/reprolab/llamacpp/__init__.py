"""llama.cpp beside the Python stack: the pinned build that `make setup` compiles
(`install`), Hugging Face causal LMs written as GGUF with llama.cpp's own converter
(`convert`), a managed `llama-server` process (`server`) and the check that a GGUF file
loads and tokenizes as its model does (`check`).

It sits beside `lm` on the floor below the workloads, and no training stage depends on it:
the GGUF export stage and the service's llama.cpp backend do."""
