"""export@<name>: write a trained causal LM as GGUF (f16 and Q8_0) with llama.cpp's
converter, check that llama.cpp loads and tokenizes it as the model does, and log the Q8_0
file to the model's MLflow run."""

import click

from reprolab.cli_support import choice, user_errors


@click.command()
@click.argument("name")
def main(name: str) -> None:
    """Export NAME (a causal LM of gguf.yaml) as GGUF into models/gguf/NAME/."""
    with user_errors():
        from reprolab.pipeline.export import export, names

        choice("model", name, names())
        info = export(name)
        for outtype, path in info["files"].items():
            m = info[outtype]
            click.echo(
                f"{name}: {path} {m['size_mb']} MB, tokenizer identical, greedy agreement "
                f"with transformers {m['greedy_agreement']:.0%}"
            )


if __name__ == "__main__":
    main()
