"""The repost a recurring repost's occurrence undoes before it reposts (plurspool(5), `repost`):
the one its latest earlier occurrence made on the account, from that occurrence's results,
unless that one was deleted already (`expires`, `delete`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .errors import PlurspoolError

if TYPE_CHECKING:
    from .platforms.base import Quoted
    from .spool import Spool

_OCCURRENCE = re.compile(r"(.+)--([0-9]{8}T[0-9]{6}Z)")  # repeat.occurrence_id's shape


def previous(spool: Spool, post_id: str, account: str) -> Quoted | None:
    """The repost (its recorded id and url) that the occurrence `post_id`'s latest earlier
    occurrence in sent/ made on `account`, or None: not an occurrence, or none made one."""
    from .platforms.base import Quoted
    from .post import parse

    this = _OCCURRENCE.fullmatch(post_id)
    if this is None:
        return None
    earlier = []
    with spool.scandir("sent") as names:  # only the template's occurrences are looked at
        found = [spool.scan_one("sent", de) for de in names if de.name.startswith(this[1])]
    for kind, entry in filter(None, found):
        other = _OCCURRENCE.fullmatch(entry.id)
        if kind == "post" and other and other[1] == this[1] and other[2] < this[2]:
            earlier.append((other[2], entry))
    for _, entry in sorted(earlier, reverse=True):
        try:
            post = parse(spool.read(entry))
        except (PlurspoolError, OSError):
            continue  # moved or unreadable: an older one may still tell
        result = post.results.get(account)
        if post.repost is not None and result is not None and result.id and not result.error:
            # Deleted (`expires`, `delete`): undone already, as the one before it was by it.
            return None if result.deleted_at else Quoted(url=result.url, id=result.id)
    return None
