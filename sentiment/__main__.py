"""`python -m sentiment`: the same command line as the `sentiment` console script."""

from sentiment.cli import main

main()
