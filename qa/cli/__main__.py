"""`python -m qa.cli`."""

from qa.cli import main

main()
