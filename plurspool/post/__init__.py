"""The post file (plurspool(5)): bytes in, a frozen `Post` out, and careful edits back to bytes.

Nothing here touches the filesystem. `model` holds the values, `tree` reads the frontmatter's
YAML into a tree that keeps every place in the file, `read` checks it into a `Post` (errors name
their line), and `write` renders new files and edits existing ones. This module re-exports what
the rest of plurspool uses; it loads PyYAML, so callers that may not need it (`list` from the
cache) import it inside the function that parses.

plurspool reads posts with its own strict reader rather than a frontmatter library's
`yaml.safe_load`: YAML 1.1's implicit typing must never decide a value, and an edit must not
re-dump (and so reformat) the user's metadata.
"""

from __future__ import annotations

from .model import (
    CARD_KEYS,
    MEDIA_KEYS,
    OVERRIDE_KEYS,
    POLL_KEYS,
    RESULT_KEYS,
    TOP_KEYS,
    VISIBILITIES,
    WRITTEN_KEYS,
    Card,
    Expiry,
    Media,
    Override,
    Poll,
    Post,
    Quote,
    Repost,
    Result,
    split_parts,
    without_written,
)
from .read import has_conflict_markers, parse
from .write import (
    RECORD_MAX,
    TEMPLATE,
    occurrence,
    recorded,
    render,
    template,
    with_card,
    with_queue,
    with_record,
    with_repeat,
    with_retried,
    with_schedule,
    with_skip,
    with_skipped,
)

__all__ = [
    "CARD_KEYS",
    "MEDIA_KEYS",
    "OVERRIDE_KEYS",
    "POLL_KEYS",
    "RECORD_MAX",
    "RESULT_KEYS",
    "TEMPLATE",
    "TOP_KEYS",
    "VISIBILITIES",
    "WRITTEN_KEYS",
    "Card",
    "Expiry",
    "Media",
    "Override",
    "Poll",
    "Post",
    "Quote",
    "Repost",
    "Result",
    "has_conflict_markers",
    "occurrence",
    "parse",
    "recorded",
    "render",
    "split_parts",
    "template",
    "with_card",
    "with_queue",
    "with_record",
    "with_repeat",
    "with_retried",
    "with_schedule",
    "with_skip",
    "with_skipped",
    "without_written",
]
