"""`python -m plurspool` is `plurspool` (used to start the detached daemon)."""

from .usage import main

main()
