"""`python -m cli`: the same as the `phonetree` command."""
from cli import main

main()
