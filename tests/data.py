"""Shared test data: Hypothesis strategies for text that looks like a post file's YAML, for the
parser's property tests (tests/unit/test_post.py) and the hostile-input run
(tests/robustness/test_hostile.py).
"""

from __future__ import annotations

from hypothesis import strategies as st

from plurspool.post import MEDIA_KEYS, OVERRIDE_KEYS, RESULT_KEYS, TOP_KEYS

# Every key a post file may hold, at any level (plurspool(5), KEYS).
POST_KEYS = tuple(dict.fromkeys(TOP_KEYS + MEDIA_KEYS + OVERRIDE_KEYS + RESULT_KEYS))

# Pieces of YAML syntax, post keys and values YAML 1.1 would type, mixed with short random text.
YAMLISH = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "\n",
                "\r\n",
                "\r",
                ": ",
                ":",
                " ",
                "  ",
                "\t",
                "[",
                "]",
                "{",
                "}",
                ",",
                "- ",
                "? ",
                "&a ",
                "*a",
                "!!str ",
                "! ",
                "!foo ",
                "'",
                '"',
                "\\",
                "#",
                "|",
                ">",
                "...",
                "---",
                "--- ",
                "%YAML 1.1\n",
                "\ufeff",
                "\x85",
                "\u2028",
                "\x00",
                "\x07",
                *POST_KEYS,
                "true",
                "9:30",
                "no",
                "~",
                "null",
                "../",
                "/",
                "<<<<<<< ",
                "=======",
                "0",
                "-1",
                "en",
            ]
        ),
        st.text(max_size=4),
    ),
    max_size=60,
).map("".join)

# A post file made of it: an opening line (or none), YAML-ish frontmatter, a closing `---`, and
# a YAML-ish body; encoded with lone surrogates kept, as hostile bytes may hold them.
YAMLISH_FILES = st.builds(
    lambda start, head, tail: (start + head + "\n---\n" + tail).encode("utf-8", "surrogatepass"),
    st.sampled_from(["", "---\n", "---\r\n", "\ufeff---\n"]),
    YAMLISH,
    YAMLISH,
)
