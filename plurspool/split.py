"""Where text breaks: a thread's parts cut into pieces that fit a limit, at a paragraph, else a
sentence, else a word, never inside a URL, @mention, #hashtag, `nostr:` URI or grapheme cluster
(plurspool(5), AUTO-SPLIT).

How long a piece is belongs to the platform that sends it (a `Measure`); this module only decides
where text breaks, as a pure function of the parts, the measure and the numbering format, so the
same file gives the same pieces on every retry and every host.

Breaking. A piece is the longest run that fits from where the last one ended: it ends at the last
paragraph break that fits; when none does, at the last sentence boundary of that paragraph that
fits; when none does, at the last word boundary of that sentence. Whitespace at a break belongs
to no piece; a piece keeps every other character of the text, in order. Sentence and word
boundaries are Unicode's (UAX #29, from `uniseg`); grapheme clusters are `regex`'s `\\X`. uniseg
is pure Python and slow (tens of microseconds a character), so it only ever reads a few dozen
characters around a place where the `regex` module's Sentence_Break property says a boundary can
fall, and the text up to the limit when a sentence has to be broken at a word.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

SPLIT_MODES = ("auto", "off")  # the post key and config key `split`

# Blank lines end a paragraph; the break is where the first of them starts.
_PARAGRAPH = r"[ \t\r]*\n[ \t\r]*\n\s*"
# Never broken: the whole whitespace-delimited run around a URL or a `nostr:` URI, and a mention or
# hashtag to the end of its run (hashtags in CJK text have no space inside them to break at).
_ANCHOR = r"://|nostr:|[@#＃](?=\S)"
_SPACE = r"\s"
# Where UAX #29's look-ahead after a sentence terminator stops (rule SB8), and how far at most.
_AHEAD = (
    r"[\p{SB=OLetter}\p{SB=Upper}\p{SB=Lower}\p{SB=Sep}\p{SB=CR}\p{SB=LF}"
    r"\p{SB=STerm}\p{SB=ATerm}\p{SB=SContinue}]"
)
_SENTENCE_AHEAD = 24
_WORD_MARGIN = 64  # characters past the longest prefix that fits, for the word breaker
_WORD_WINDOW = 256  # characters the word breaker reads first, back from there

_compiled: dict[str, Any] = {}
_compiled_re: dict[str, re.Pattern[str]] = {}


def _re(pattern: str) -> re.Pattern[str]:
    """A pattern compiled on first use: the config loads this module with every command."""
    found = _compiled_re.get(pattern)
    if found is None:
        found = _compiled_re[pattern] = re.compile(pattern)
    return found


def _regex(name: str, pattern: str) -> Any:
    """A `regex` pattern compiled on first use (the module loads only when text is measured)."""
    found = _compiled.get(name)
    if found is None:
        import regex  # type: ignore[import-untyped]

        found = _compiled[name] = regex.compile(pattern)
    return found


def graphemes(text: str) -> int:
    """Extended grapheme clusters in `text` (what Mastodon and Bluesky call characters)."""
    if text.isascii():  # every ASCII character is a cluster of its own, but CR LF (GB3)
        return len(text) - text.count("\r\n")
    return len(_regex("grapheme", r"\X").findall(text))


class Measure(Protocol):
    """How one account's server counts a part; the platform's own (its module says how)."""

    @property
    def limit(self) -> int | None:
        """The most a part may count; None: no limit."""
        ...

    def count(self, text: str) -> int:
        """The length of a part sent as `text`, counted as the server counts it."""
        ...

    def fits(self, text: str) -> bool:
        """Whether a part sent as `text` is accepted (the count, and any other rule)."""
        ...


@dataclass(frozen=True)
class Piece:
    """One part of an account's thread as it is sent, and the written part it was made from."""

    text: str
    source: int  # 0-based index of the written part
    first: bool  # the first piece made from its written part (media stay on it)


@dataclass(frozen=True)
class Thread:
    """An account's thread: its pieces, and whether auto-split changed the written parts."""

    pieces: tuple[Piece, ...]
    changed: bool

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(p.text for p in self.pieces)


class Unbreakable(Exception):
    """A written part holds a run that fits in no piece: no break falls inside it."""

    def __init__(self, part: int, parts: int, token: str, count: int, limit: int) -> None:
        super().__init__(f"part {part} of {parts}: {token!r} counts {count}, limit {limit}")
        self.part, self.parts, self.token, self.count, self.limit = part, parts, token, count, limit


class NoFixedPoint(Exception):
    """The numbering never settled (a format whose length shrinks as n grows)."""


def check_numbering(fmt: str) -> str | None:
    """Why `fmt` is not a numbering format ({i} and {n} only), or None."""
    import string

    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(fmt) if f is not None]
    except ValueError as exc:
        return f"{fmt!r} is not a format: {exc}"
    bad = [f for f in fields if f not in ("i", "n")]
    if bad:
        return f"unknown placeholder {{{bad[0]}}} in {fmt!r}"
    try:
        fmt.format(i=1, n=1)
    except (ValueError, IndexError, KeyError) as exc:
        return f"{fmt!r} is not a format: {exc}"
    return None


def split_thread(parts: Sequence[str], measure: Measure, *, numbering: str = "{i}/{n}") -> Thread:
    """The pieces of a thread whose written `parts` must each fit `measure`.

    A thread whose parts all fit is returned as written. Otherwise every part that does not fit
    is broken, and, with a `numbering` format (`""`: none), every piece of the thread gets
    `" " + numbering.format(i=place, n=count)` appended, counted inside the limit: the count
    is found by splitting again until it no longer changes. Raises Unbreakable.
    """
    if measure.limit is None or all(measure.fits(p) for p in parts):
        return Thread(tuple(Piece(p, i, True) for i, p in enumerate(parts)), changed=False)
    texts = [_Text(p) for p in parts]
    unnumbered = _split_all(texts, lambda text, i: measure.fits(text), measure)
    if not numbering:
        return Thread(tuple(unnumbered), changed=True)
    n, seen = len(unnumbered), set()
    while n not in seen:
        seen.add(n)

        def fits(text: str, i: int, n: int = n) -> bool:
            return measure.fits(f"{text} {numbering.format(i=i, n=n)}")

        pieces = _split_all(texts, fits, measure)
        if len(pieces) == n:
            return Thread(
                tuple(
                    Piece(f"{p.text} {numbering.format(i=i, n=n)}", p.source, p.first)
                    for i, p in enumerate(pieces, 1)
                ),
                changed=True,
            )
        n = len(pieces)
    raise NoFixedPoint(numbering)


def _split_all(
    texts: list[_Text], fits: Callable[[str, int], bool], measure: Measure
) -> list[Piece]:
    """Every written part broken where `fits(text, place in the thread)` holds, in order."""
    out: list[Piece] = []
    for source, text in enumerate(texts):

        def ok(piece: str, k: int, before: int = len(out)) -> bool:
            return fits(piece, before + k + 1)

        try:
            spans = text.pieces(ok)
        except _Stuck as stuck:
            token = stuck.token
            raise Unbreakable(
                source + 1, len(texts), token, measure.count(token), measure.limit or 0
            ) from None
        first = True
        for a, b in spans:
            out.append(Piece(text.text[a:b], source, first))
            first = False
    return out


class _Stuck(Exception):
    def __init__(self, token: str) -> None:
        self.token = token


class _Text:
    """One written part, with what breaking it needs, worked out once and only when asked."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._bounds: set[int] | None = None
        self._protected: list[tuple[int, int]] | None = None
        self._paragraphs: list[int] | None = None
        self._sentence_ok: dict[int, bool] = {}  # by position: asked of uniseg once
        self._terms: list[tuple[int, int]] | None = None  # where sentences may end
        self._term_ends: list[int] = []

    # -- positions ------------------------------------------------------------------------

    def bound(self, at: int) -> bool:
        """Whether `at` is a grapheme cluster boundary."""
        if self.text.isascii():  # see graphemes()
            return not (0 < at < len(self.text) and self.text[at - 1 : at + 1] == "\r\n")
        if self._bounds is None:
            ends = [m.end() for m in _regex("grapheme", r"\X").finditer(self.text)]
            self._bounds = {0, *ends}
        return at in self._bounds

    def protected(self, at: int) -> bool:
        """Whether a break at `at` would fall inside a URL, mention, hashtag or nostr: URI."""
        if self._protected is None:
            self._protected = self._protected_spans()
        return any(a < at < b for a, b in self._protected)

    def _protected_spans(self) -> list[tuple[int, int]]:
        """The runs no break falls inside: the whitespace-delimited run around a `://` or a
        `nostr:`, and a mention or hashtag from its sign to the end of its run."""
        text, spans = self.text, list[tuple[int, int]]()
        for m in _re(_ANCHOR).finditer(text):
            space = _re(_SPACE).search(text, m.start())
            end = space.start() if space else len(text)
            start = m.start()
            if m.group() in ("://", "nostr:"):
                while start > 0 and not text[start - 1].isspace():
                    start -= 1
            if spans and start < spans[-1][1]:
                start = min(start, spans[-1][0])
                spans[-1] = (start, max(end, spans[-1][1]))
            else:
                spans.append((start, end))
        return spans

    def paragraph_breaks(self) -> list[int]:
        if self._paragraphs is None:
            self._paragraphs = [m.start() for m in _re(_PARAGRAPH).finditer(self.text)]
        return self._paragraphs

    def trim_end(self, start: int, end: int) -> int:
        """`end` moved back over whitespace that is a grapheme cluster of its own."""
        text = self.text
        while end > start and text[end - 1].isspace() and self.bound(end - 1):
            end -= 1
        return end

    def skip_space(self, at: int) -> int:
        text = self.text
        while at < len(text) and text[at].isspace() and self.bound(at + 1):
            at += 1
        return at

    # -- breaking ---------------------------------------------------------------------------

    def pieces(self, ok: Callable[[str, int], bool]) -> list[tuple[int, int]]:
        """Spans of the pieces, each the longest that `ok(piece, k)` accepts from where the
        last one ended (`k` counts the pieces before it)."""
        text, spans = self.text, list[tuple[int, int]]()
        start = self.skip_space(0)
        while start < len(text):
            end = self.trim_end(start, len(text))
            k = len(spans)
            if ok(text[start:end], k):
                spans.append((start, end))
                break

            def fits(at: int, start: int = start, k: int = k) -> bool:
                return ok(text[start : self.trim_end(start, at)], k)

            cut = self._cut(start, fits)
            end = self.trim_end(start, cut)
            spans.append((start, end))
            start = self.skip_space(cut)
        return spans

    def _cut(self, start: int, fits: Callable[[int], bool]) -> int:
        """Where the piece that begins at `start` ends: paragraph, else sentence, else word."""
        paragraphs = self.paragraph_breaks()
        breaks = paragraphs[bisect.bisect_right(paragraphs, start) :]
        found = _last(breaks, fits)
        if found is not None:
            return found
        end = breaks[0] if breaks else len(self.text)
        found = self._sentence_cut(start, end, fits)
        if found is not None:
            return found
        return self._word_cut(start, end, fits)

    def _sentence_cut(self, start: int, end: int, fits: Callable[[int], bool]) -> int | None:
        """The last sentence boundary in (start, end) where a piece from `start` fits."""
        terms = _regex(
            "sentence",
            r"[\p{SB=ATerm}\p{SB=STerm}][\p{SB=Close}\p{SB=Extend}\p{SB=Format}]*"
            r"\p{SB=Sp}*|\r\n?|\n|\p{SB=Sep}",
        )
        if self._terms is None:
            self._terms = [
                (m.start(), m.end())
                for m in terms.finditer(self.text)
                if not self.protected(m.end())
            ]
            self._term_ends = [at for _, at in self._terms]
        ends = self._term_ends
        found = self._terms[bisect.bisect_right(ends, start) : bisect.bisect_left(ends, end)]
        places = ends[bisect.bisect_right(ends, start) : bisect.bisect_left(ends, end)]
        top = _last_index(places, fits)
        for i in range(top, -1, -1):
            term, at = found[i]
            if self._is_sentence_boundary(term, at, end) and (i == top or fits(at)):
                return at
        return None

    def _is_sentence_boundary(self, term: int, at: int, end: int) -> bool:
        """Whether UAX #29 puts a sentence boundary at `at`, after the terminator at `term`,
        asked of uniseg on the text its rules read: from the character before the terminator
        to the next letter, terminator or paragraph separator (rules SB6 to SB11)."""
        known = self._sentence_ok.get(at)
        if known is None:
            lo = max(0, term - 1)
            while lo > 0 and not self.bound(lo):
                lo -= 1
            ahead = _regex("ahead", _AHEAD).search(self.text, at, min(end, at + _SENTENCE_AHEAD))
            hi = ahead.end() if ahead else min(end, at + _SENTENCE_AHEAD)
            known = _uax29_sentence_break(self.text[lo:hi], at - lo)
            self._sentence_ok[at] = known
        return known

    def _word_cut(self, start: int, end: int, fits: Callable[[int], bool]) -> int:
        """The last word boundary in (start, end) where a piece from `start` fits."""
        from uniseg.wordbreak import word_boundaries  # type: ignore[import-untyped]

        text = self.text
        # uniseg reads only what can matter: the text up to a little past the longest prefix
        # (at grapheme boundaries) that fits.
        reach = 1024  # grows until a prefix in reach does not fit: a long part costs no more
        while True:
            stop = min(end, start + reach)
            bounds = [b for b in range(start + 1, stop + 1) if self.bound(b)]
            if stop == end or not bounds or not fits(bounds[-1]):
                break
            reach *= 4
        longest = _last(bounds, fits)
        stop = min(end, (longest or start) + _WORD_MARGIN)
        # The last word boundary is most often a few words before `stop`: uniseg reads that
        # much first, and all of it only when no boundary falls there. (Its rules look a
        # character or two around a boundary, but regional-indicator pairs from the start of
        # their run: so a boundary must also be one of the whole text's grapheme boundaries.)
        found = None
        for lo in (max(start, stop - _WORD_WINDOW), start):
            places = []
            for b in word_boundaries(text[lo:stop]):
                at = lo + b
                if not start < at < end or at == lo or self.protected(at) or not self.bound(at):
                    continue
                left, right = text[at - 1], text[at]
                if left.isspace() or right.isspace() or (left.isalnum() and right.isalnum()):
                    places.append(at)
            found = _last(places, fits)
            if found is not None or lo == start:
                break
        if found is None:
            rest = text[start:end]
            token = rest.split(maxsplit=1)[0] if rest.split() else rest
            for a, b in self._protected or ():
                if a <= start < b:
                    token = text[a:b]
            raise _Stuck(token)
        return found


_decided: dict[tuple[str, int], bool] = {}


def _uax29_sentence_break(window: str, at: int) -> bool:
    """Whether uniseg puts a sentence boundary at `at` in `window`. The answer depends on the
    window alone, and windows are short (a few characters around a full stop) and repeat
    across texts, so each is asked once a process."""
    key = (window, at)
    known = _decided.get(key)
    if known is None:
        from uniseg.sentencebreak import sentence_boundaries  # type: ignore[import-untyped]

        if len(_decided) > 50_000:
            _decided.clear()
        known = _decided[key] = at in set(sentence_boundaries(window))
    return known


def _last_index(places: Sequence[int], fits: Callable[[int], bool]) -> int:
    """The index of the last place where `fits` holds, -1 if none. `fits` holds for a prefix of
    the places (a longer piece never counts less): a galloping search finds it, so that no
    piece much longer than the answer is ever measured."""
    if not places or not fits(places[0]):
        return -1
    lo, step = 0, 1  # fits(places[lo]) holds
    while lo + step < len(places) and fits(places[lo + step]):
        lo, step = lo + step, step * 2
    hi = min(lo + step, len(places))  # fails at hi, or hi is the end
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(places[mid]):
            lo = mid
        else:
            hi = mid
    return lo


def _last(places: Sequence[int], fits: Callable[[int], bool]) -> int | None:
    i = _last_index(places, fits)
    return places[i] if i >= 0 else None
