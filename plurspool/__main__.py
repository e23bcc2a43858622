"""`python -m plurspool` is `plurspool` (used to start the detached daemon)."""

from .cli import main

main()
