"""`python -m reprolab`: the `reprolab` command, for environments whose scripts are not on PATH."""

from reprolab.cli import main

if __name__ == "__main__":
    main(prog_name="reprolab")
