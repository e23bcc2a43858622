"""Auto-split (plurspool(5), AUTO-SPLIT): where text breaks (`plurspool.split`) and how each
platform counts a part (its measure).

The properties, for any text and any of the platforms' measures:
- every piece fits, as the platform's server counts it (numbering included);
- the pieces, numbering taken off, are the text's own characters in order: what lies between
  two pieces (and before the first, after the last) is whitespace and nothing else;
- no piece boundary falls inside a URL, @mention, #hashtag, `nostr:` URI or grapheme cluster;
- the same input gives the same pieces.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plurspool.platforms.bluesky import MAX_BYTES, PostMeasure
from plurspool.platforms.fit import Graphemes
from plurspool.platforms.mastodon import StatusMeasure, status_length
from plurspool.split import (
    Measure,
    NoFixedPoint,
    Thread,
    Unbreakable,
    check_numbering,
    graphemes,
    split_thread,
)

# --- counting ---------------------------------------------------------------------------------


def test_graphemes_count_user_perceived_characters() -> None:
    assert graphemes("e\u0301") == 1  # e + combining acute
    assert graphemes("👨‍👩‍👧") == 1  # a ZWJ family
    assert graphemes("🇫🇷🇩🇪") == 2  # two flags
    assert graphemes("Café 🎉") == 6


def test_mastodon_counts_a_url_as_the_instances_reserved_length() -> None:
    url = "https://example.com/" + "a" * 60
    assert status_length(f"see {url}") == 4 + 23
    assert status_length(f"see {url}", url_length=40) == 4 + 40
    # A short URL counts the reserved length too, as Mastodon counts it.
    assert status_length("http://a.co") == 23
    # Without a scheme it is plain text to Mastodon.
    assert status_length("example.com/abc") == len("example.com/abc")


def test_mastodon_counts_a_remote_mention_as_the_user_alone() -> None:
    assert status_length("hi @alice@example.social") == len("hi @alice")
    assert status_length("hi @alice") == len("hi @alice")


def test_mastodon_counts_graphemes_and_the_cw() -> None:
    assert status_length("👨‍👩‍👧 e\u0301", cw="Spoilers") == 3 + len("Spoilers")


def test_bluesky_counts_the_cw_line_and_limits_bytes_as_well_as_graphemes() -> None:
    measure = PostMeasure(cw="food")
    assert measure.count("x") == graphemes("CW: food\n\nx")
    families = "👨‍👩‍👧" * 200  # 200 graphemes, 3,600 bytes
    assert graphemes(families) == 200 and len(families.encode()) > MAX_BYTES
    assert not PostMeasure(cw=None).fits(families)
    thread = split_thread([" ".join(["👨‍👩‍👧" * 10] * 20)], PostMeasure(cw=None))
    assert all(len(t.encode()) <= MAX_BYTES for t in thread.texts)


# --- breaking: examples -----------------------------------------------------------------------


def test_a_thread_that_fits_is_sent_as_written_without_numbering() -> None:
    thread = split_thread(["one", "two"], Graphemes(10))
    assert thread == split_thread(["one", "two"], Graphemes(10))
    assert thread.texts == ("one", "two") and not thread.changed


def test_paragraphs_break_before_sentences_and_sentences_before_words() -> None:
    text = "First paragraph.\n\nSecond one is here. It has two sentences of some length."
    thread = split_thread([text], Graphemes(60), numbering="")
    assert thread.texts == (
        "First paragraph.",
        "Second one is here. It has two sentences of some length.",
    )
    thread = split_thread([text], Graphemes(40), numbering="")
    assert thread.texts == (
        "First paragraph.",
        "Second one is here.",
        "It has two sentences of some length.",
    )
    thread = split_thread(["one two three four five six seven"], Graphemes(15), numbering="")
    assert thread.texts == ("one two three", "four five six", "seven")


def test_no_sentence_break_after_an_abbreviation_followed_by_lower_case() -> None:
    # UAX #29 (rule SB8): "etc. and" is one sentence; the break goes at a word instead.
    text = "We packed tents, stoves etc. and then we left the valley."
    thread = split_thread([text], Graphemes(40), numbering="")
    assert thread.texts[0] != "We packed tents, stoves etc."


def test_numbering_counts_inside_the_limit_and_numbers_the_whole_thread() -> None:
    thread = split_thread(["short", "word " * 30], Graphemes(40))
    n = len(thread.texts)
    assert thread.changed and n > 2
    assert [t.rsplit(" ", 1)[1] for t in thread.texts] == [f"{i}/{n}" for i in range(1, n + 1)]
    assert thread.texts[0] == f"short 1/{n}"
    assert all(graphemes(t) <= 40 for t in thread.texts)


def test_numbering_settles_when_the_count_gains_a_digit() -> None:
    # Nine parts without numbering; numbered "i/9" they need ten, and "i/10" is longer still.
    words = " ".join(f"w{k:02d}" for k in range(45))
    thread = split_thread([words], Graphemes(21))
    n = len(thread.texts)
    assert n >= 10 and thread.texts[-1].endswith(f" {n}/{n}")
    assert all(graphemes(t) <= 21 for t in thread.texts)


def test_media_stay_on_the_first_piece_of_their_part() -> None:
    thread = split_thread(["a b c d e f", "g"], Graphemes(5), numbering="")
    assert thread.texts == ("a b c", "d e f", "g")
    assert [(p.source, p.first) for p in thread.pieces] == [(0, True), (0, False), (1, True)]


def test_a_url_longer_than_the_limit_is_unbreakable_and_named() -> None:
    url = "https://example.com/" + "x" * 80
    with pytest.raises(Unbreakable) as caught:
        split_thread(["fine", f"text {url} more"], Graphemes(50))
    assert (caught.value.part, caught.value.parts, caught.value.token) == (2, 2, url)


def test_numbering_formats_are_checked() -> None:
    assert check_numbering("{i}/{n}") is None
    assert check_numbering("({i} of {n})") is None
    assert check_numbering("") is None
    assert "unknown placeholder {x}" in (check_numbering("{x}") or "")
    assert check_numbering("{i") is not None


def test_a_numbering_that_never_settles_is_an_error() -> None:
    class Odd:
        """Counts words, and one more under 'n=2': two pieces become four, four become two."""

        limit = 2

        def count(self, text: str) -> int:
            words = text.removesuffix(" n=2").removesuffix(" n=4").split()
            return len(words) + text.endswith("n=2")

        def fits(self, text: str) -> bool:
            return self.count(text) <= self.limit

    with pytest.raises(NoFixedPoint):
        split_thread(["a b c d"], Odd(), numbering="n={n}")


# --- breaking: properties ---------------------------------------------------------------------

URLS = st.builds(
    lambda host, path: f"https://{host}.example/{path}",
    st.text("abcdefghij", min_size=1, max_size=8),
    st.text("abc-/_?=.日本", max_size=20),
)
MENTIONS = st.builds(
    lambda user, host: f"@{user}" + (f"@{host}.social" if host else ""),
    st.text("abcdef_", min_size=1, max_size=8),
    st.text("xyz", max_size=6),
)
HASHTAGS = st.builds(lambda tag: f"#{tag}", st.sampled_from(["plurspool", "日本語タグ", "ça"]))
NOSTR = st.builds(lambda key: f"nostr:npub1{key}", st.text("qpzry9x8", min_size=5, max_size=30))
TOKENS = st.one_of(URLS, MENTIONS, HASHTAGS, NOSTR)
WORDS = st.sampled_from(
    [
        "a",
        "the",
        "plurspool",
        "über",
        "naïve",
        "e\u0301te\u0301",
        "日本語",
        "テキスト",
        "🎉",
        "👨‍👩‍👧",
        "🇫🇷",
        "Mr.",
        "U.S.",
        "3.14",
        "etc.",
        "(quoted)",
        "«ça»",
        "don't",
        "—",
    ]
)
SENTENCES = st.builds(
    lambda words, seps, end: (
        "".join(w + s for w, s in zip(words, seps, strict=False)).strip() + end
    ),
    st.lists(st.one_of(WORDS, WORDS, TOKENS), min_size=1, max_size=18),
    st.lists(st.sampled_from([" ", " ", " ", "", "\n", "  "]), min_size=18, max_size=18),
    st.sampled_from([".", "!", "?", "。", "", "…", '."']),
)
PARAGRAPHS = st.builds(
    lambda ss, sep: sep.join(ss), st.lists(SENTENCES, min_size=1, max_size=6), st.just(" ")
)
TEXTS = st.builds(
    lambda ps, sep: sep.join(ps).strip() or "x",
    st.lists(PARAGRAPHS, min_size=1, max_size=5),
    st.sampled_from(["\n\n", "\n \n\n"]),
)
MEASURES = st.one_of(
    st.builds(Graphemes, st.integers(30, 300)),
    st.builds(StatusMeasure, st.integers(60, 500), st.sampled_from([23, 30]), st.none()),
    st.builds(StatusMeasure, st.integers(80, 500), st.just(23), st.just("CW text")),
    st.builds(PostMeasure, st.sampled_from([None, "a cw"])),
)
_PROTECTED = re.compile(r"https://\S+|@\S+|#\S+|nostr:\S+")


def _boundaries(text: str) -> set[int]:
    import regex  # type: ignore[import-untyped]

    return {0, *(m.end() for m in regex.finditer(r"\X", text))}


def _spans(text: str, pieces: list[str]) -> list[tuple[int, int]]:
    """Where each piece lies in `text`; fails unless only whitespace lies between them."""
    spans, pos = [], 0
    for piece in pieces:
        at = text.index(piece, pos)
        assert not text[pos:at].strip(), (text[pos:at], piece)
        spans.append((at, at + len(piece)))
        pos = at + len(piece)
    assert not text[pos:].strip()
    return spans


def _unnumbered(thread: Thread, numbering: str) -> list[str]:
    if not (thread.changed and numbering):
        return list(thread.texts)
    n = len(thread.texts)
    out = []
    for i, text in enumerate(thread.texts, 1):
        label = " " + numbering.format(i=i, n=n)
        assert text.endswith(label)
        out.append(text.removesuffix(label))
    return out


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(TEXTS, min_size=1, max_size=3),
    measure=MEASURES,
    numbering=st.sampled_from(["{i}/{n}", "", "({i} of {n})"]),
)
def test_any_text_splits_into_pieces_that_fit_and_give_back_the_text(
    parts: list[str], measure: Measure, numbering: str
) -> None:
    parts = [p.strip() for p in parts]
    try:
        thread = split_thread(parts, measure, numbering=numbering)
    except Unbreakable as exc:
        assert exc.token and exc.token in parts[exc.part - 1]
        if not numbering:
            assert not measure.fits(exc.token)
        return
    assert all(measure.fits(t) for t in thread.texts)
    assert split_thread(parts, measure, numbering=numbering) == thread  # a pure function
    pieces = _unnumbered(thread, numbering)
    for source, part in enumerate(parts):
        mine = [p for p, piece in zip(pieces, thread.pieces, strict=True) if piece.source == source]
        assert next(piece.first for piece in thread.pieces if piece.source == source)
        spans = _spans(part, mine)
        cuts = {a for a, _ in spans} | {b for _, b in spans}
        assert cuts <= _boundaries(part)  # never inside a grapheme cluster
        for m in _PROTECTED.finditer(part):  # never inside a URL, mention, hashtag, nostr:
            assert not any(m.start() < c < m.end() for c in cuts), (m.group(), spans)
