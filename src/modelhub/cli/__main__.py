"""`python -m modelhub.cli`: the `modelhub` command."""

from . import main

main()
