"""python-frontmatter reads every file plurspool writes to the same metadata and body as
plurspool's own reader does.

plurspool reads the frontmatter strictly, every value as text (plurspool(5), YAML TRAPS). The
other tools of its users (static-site generators, note apps, scripts) read the same files with
python-frontmatter, that is with PyYAML's YAML 1.1 safe loader. Each file here is made the way a
user makes it, through the CLI, then read both ways: python-frontmatter's `content` must be the
body after the closing `---` (thread parts joined as the file holds them) and every key must hold
the same value. The one difference by design is a bare ISO 8601 `schedule`, which YAML 1.1 turns
into a datetime: there the test asserts the same instant at the same UTC offset.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import frontmatter
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plurspool.post import Post, parse
from tests.daemon_helpers import Sandbox, toml_str
from tests.helpers import Run, invoke, png, run_cli

pytestmark = pytest.mark.slow

# The keys of plurspool(5), KEYS: top level, then those of a media item, an override, a result.
KEYS = (
    "schedule",
    "platforms",
    "cw",
    "language",
    "visibility",
    "sensitive",
    "media",
    "overrides",
    "results",
    "attempts",
    "retried",
)
MEDIA_KEYS = ("path", "alt")
OVERRIDE_KEYS = ("text", "cw", "language", "visibility", "sensitive")
RESULT_KEYS = ("id", "url", "error", "attempts", "at")
# What plurspool's reader gives for a key that is left out (None for the others).
UNSET: dict[str, object] = {"media": (), "overrides": {}, "results": {}, "attempts": 0}

# An exec account's command: it answers as the files in the directory $1 say, for this post and
# account (ID.ACCOUNT.out or .err) or else for this account (ACCOUNT.out or .err): an .out file
# is printed on stdout (exit 0), an .err file on stderr (exit 1). No file: exit 0, no output.
EXEC = """\
cat >/dev/null
for f in "$1/$PLURSPOOL_ID.$PLURSPOOL_ACCOUNT" "$1/$PLURSPOOL_ACCOUNT"; do
    if [ -f "$f.err" ]; then cat "$f.err" >&2; exit 1; fi
    if [ -f "$f.out" ]; then cat "$f.out"; exit 0; fi
done
"""

# The editor for `new`: it takes the template's `cw` line out of its comment and writes a
# thread of two parts under the closing `---`.
EDITOR = """\
sed 's/^# cw: Content warning$/cw: Content warning/' "$1" > "$1.edited"
mv "$1.edited" "$1"
printf '%s\\n' 'Written in the editor' '' '---' '' 'and a reply' >> "$1"
"""

# Accounts whose names YAML 1.1 reads as something else than text: a boolean, an int, null.
ACCOUNTS = ("x", "no", "1")


# -- reading a file both ways -----------------------------------------------------------------


def assert_reads_alike(path: Path) -> Post:
    """Read `path` with plurspool and with python-frontmatter; fail unless both read the same
    body and the same value for every key. Returns plurspool's reading."""
    data = path.read_bytes()
    post = parse(data)
    text = data.decode("utf-8")
    loaded = frontmatter.loads(text)
    body = raw_body(text)
    assert loaded.content == body.strip(), f"{path.name}: python-frontmatter's body differs"
    assert joined(post.parts, newline_of(text)) == loaded.content, (
        f"{path.name}: plurspool's thread parts {post.parts!r} are not the body "
        f"{loaded.content!r} python-frontmatter reads"
    )
    metadata: dict[str, Any] = dict(loaded.metadata)
    unknown = set(metadata) - set(KEYS)
    assert not unknown, f"{path.name}: python-frontmatter reads keys plurspool has not: {unknown}"
    for key in KEYS:
        same_key(f"{path.name}: `{key}`", key, metadata.get(key), getattr(post, key))
    return post


def raw_body(text: str) -> str:
    """The text after the line that closes the frontmatter (all of it without a frontmatter)."""
    lines = text.split("\n")  # not splitlines(): a body may hold U+2028; "\r" stays on CRLF
    if lines[0].rstrip("\r \t") != "---":
        return text
    for number, line in enumerate(lines[1:], 1):
        if line.rstrip("\r \t") == "---":
            return "\n".join(lines[number + 1 :])
    raise AssertionError(f"the frontmatter is never closed: {text!r}")


def newline_of(text: str) -> str:
    first = text.split("\n", 1)[0]
    return "\r\n" if first.endswith("\r") else "\n"


def joined(parts: Sequence[str], newline: str) -> str:
    """Thread parts as plurspool writes them into a body: a `---` line between blank lines."""
    return (newline * 2 + "---" + newline * 2).join(p.replace("\n", newline) for p in parts)


def same_key(where: str, key: str, loaded: Any, ours: Any) -> None:
    """One top-level key as python-frontmatter (`loaded`) and plurspool (`ours`) read it."""
    if loaded is None:  # left out, or empty, ~ or null: both mean "not set"
        unset = ours is None if key not in UNSET else ours == UNSET[key]
        assert unset, f"{where}: python-frontmatter reads nothing, plurspool {ours!r}"
    elif key == "schedule":
        same_time(where, loaded, ours)
    elif key == "platforms":
        assert isinstance(loaded, list), f"{where}: python-frontmatter reads {loaded!r}"
        for number, (name, mine) in enumerate(itertools.zip_longest(loaded, ours or ())):
            same_value(f"{where}[{number}]", name, mine)
    elif key == "media":
        assert isinstance(loaded, list) and len(loaded) == len(ours), (
            f"{where}: python-frontmatter reads {loaded!r}, plurspool {ours!r}"
        )
        for number, (item, mine) in enumerate(zip(loaded, ours, strict=True)):
            if isinstance(item, str):  # a bare path
                same_value(f"{where}[{number}]", item, mine.path)
                assert mine.alt is None
            else:
                same_fields(f"{where}[{number}]", item, mine, MEDIA_KEYS)
    elif key in ("overrides", "results"):
        assert isinstance(loaded, dict), f"{where}: python-frontmatter reads {loaded!r}"
        assert list(loaded) == list(ours), (
            f"{where}: python-frontmatter reads the accounts {list(loaded)!r}, "
            f"plurspool {list(ours)!r}"
        )
        names = OVERRIDE_KEYS if key == "overrides" else RESULT_KEYS
        for account, entry in loaded.items():
            same_fields(f"{where}.{account}", entry, ours[account], names)
    else:
        same_value(where, loaded, ours)


def same_fields(where: str, loaded: Any, ours: object, names: Sequence[str]) -> None:
    """A mapping python-frontmatter read against plurspool's record `ours`: each key it holds
    has the same value, and each key it lacks is unset in `ours`."""
    assert isinstance(loaded, dict), f"{where}: python-frontmatter reads {loaded!r}"
    unknown = set(loaded) - set(names)
    assert not unknown, f"{where}: python-frontmatter reads keys plurspool has not: {unknown}"
    for name in names:
        mine = getattr(ours, name)
        value = loaded.get(name)
        if value is None:
            unset = mine == 0 if name == "attempts" else mine is None
            assert unset, f"{where}.{name}: python-frontmatter reads nothing, plurspool {mine!r}"
        else:
            same_value(f"{where}.{name}", value, mine)


def same_value(where: str, loaded: object, ours: object) -> None:
    """The same value of the same type (`False == 0`, so the type is compared too)."""
    assert type(loaded) is type(ours) and loaded == ours, (
        f"{where}: python-frontmatter reads {loaded!r}, plurspool {ours!r}"
    )


def same_time(where: str, loaded: object, ours: str) -> None:
    """`schedule`: the same text where the file quotes it or holds a relative time; a bare ISO
    time is a datetime in YAML 1.1, and must then be the same instant at the same offset."""
    if isinstance(loaded, str):
        same_value(where, loaded, ours)
        return
    assert isinstance(loaded, datetime), f"{where}: python-frontmatter reads {loaded!r}"
    mine = datetime.fromisoformat(ours)
    assert loaded.tzinfo is not None and mine.tzinfo is not None, (
        f"{where}: python-frontmatter reads {loaded!r}, plurspool {ours!r}: a time without offset"
    )
    assert loaded == mine and loaded.utcoffset() == mine.utcoffset(), (
        f"{where}: python-frontmatter reads {loaded.isoformat()}, plurspool {ours!r}"
    )


def absolute(post: Post) -> datetime:
    """The post's `schedule`, which must be an absolute time with a UTC offset."""
    assert post.schedule is not None
    at = datetime.fromisoformat(post.schedule)
    assert at.tzinfo is not None, post.schedule
    return at


# -- a spool with exec accounts ---------------------------------------------------------------


class ExecBox(Sandbox):
    """A Sandbox whose exec accounts answer as the test tells them (see EXEC), in a zone half an
    hour behind UTC, with a scripted $EDITOR and a picture in media/."""

    @property
    def answers(self) -> Path:
        return self.base / "answers"

    def ok(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Run:
        """Run `plurspool ARGS` as a subprocess, as a user does; it must succeed."""
        run = run_cli(list(args), {**self.env, **(env or {})}, input)
        assert run.code == 0, f"{args}: exit {run.code}\nstdout: {run.out}\nstderr: {run.err}"
        return run

    def answer(
        self, account: str, *, out: str | None = None, err: str | None = None, post: str = ""
    ) -> None:
        """Make `account` print `out` (exit 0) or `err` (exit 1), for `post` or for any."""
        name = f"{post}.{account}" if post else account
        if out is not None:
            (self.answers / f"{name}.out").write_bytes(out.encode("utf-8"))
        if err is not None:
            (self.answers / f"{name}.err").write_bytes(err.encode("utf-8"))

    def drop(self, post_id: str, text: str) -> None:
        """Deliver a post into new/ the Maildir way (written in tmp/, renamed), bytes as given."""
        self.deliver("new", post_id, text)

    def path(self, post_id: str, state: str) -> Path:
        """The file of `post_id`, which must be in `state` and nowhere else."""
        assert self.where(post_id) == [state], self.where(post_id)
        return self.spool / state / f"{post_id}.md"


def make_world(base: Path, accounts: Sequence[str] = ACCOUNTS) -> ExecBox:
    world = ExecBox(base)
    world.env["TMPDIR"] = str(base / "tmp")
    (base / "tmp").mkdir()
    world.answers.mkdir()
    command = base / "account.sh"
    command.write_text(EXEC)
    editor = base / "editor.sh"
    editor.write_text(EDITOR)
    world.env["EDITOR"] = f"sh {editor}"
    # Half an hour behind UTC: a bare time read as a datetime keeps an offset worth checking.
    world.top = 'timezone = "America/St_Johns"'
    world.default_platforms = [accounts[0]]
    for name in accounts:
        world.accounts[toml_str(name)] = (
            f'platform = "exec"\ncommand = ["sh", "{command}", "{world.answers}"]'
        )
    world.write_config()
    world.ok("init")
    (world.spool / "media").mkdir()
    (world.spool / "media" / "cat.png").write_bytes(png())
    return world


@pytest.fixture
def world(tmp_path: Path) -> ExecBox:
    return make_world(tmp_path)


# -- files written by `post` ------------------------------------------------------------------


def test_a_queued_post_with_every_option_reads_alike(world: ExecBox) -> None:
    run = world.ok(
        "post",
        "-s",
        "2h",
        "--cw",
        "Spoilers: episode 3",
        "--lang",
        "pt-BR",
        "--visibility",
        "unlisted",
        "--sensitive",
        "--media",
        "media/cat.png:A grey cat: asleep, #1",
        *("-p", "x", "-p", "no", "-p", "1"),
        "--json",
        "Launch day!",
    )
    post = assert_reads_alike(world.path(run.json()["id"], "scheduled"))
    assert post.platforms == ("x", "no", "1")
    assert (post.cw, post.language, post.visibility, post.sensitive) == (
        "Spoilers: episode 3",
        "pt-BR",
        "unlisted",
        True,
    )
    assert [(m.path, m.alt) for m in post.media] == [("media/cat.png", "A grey cat: asleep, #1")]
    absolute(post)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param([], id="no-options"),  # the file is all body
        pytest.param(["--cw", "no", "--lang", "no", "-p", "no"], id="yaml-1.1-booleans"),
    ],
)
def test_a_draft_reads_alike(world: ExecBox, options: list[str]) -> None:
    run = world.ok("post", "--draft", *options, "--json", "A draft: kept, never sent")
    path = world.path(run.json()["id"], "drafts")
    post = assert_reads_alike(path)
    assert post.parts == ("A draft: kept, never sent",)
    assert path.read_bytes().startswith(b"---\n") == bool(options)
    if options:
        assert (post.cw, post.language, post.platforms) == ("no", "no", ("no",))


def test_a_thread_reads_alike(world: ExecBox) -> None:
    text = (
        "First part.\nkey: value, which is text here\n\n---\n\n"
        "# Second part\n> quoted\n----\n\n---\n\n"
        "***\nThird part, after a rule.\n"
    )
    run = world.ok("post", "-s", "1d", "--json", input=text)
    post = assert_reads_alike(world.path(run.json()["id"], "scheduled"))
    assert post.parts == (
        "First part.\nkey: value, which is text here",
        "# Second part\n> quoted\n----",
        "***\nThird part, after a rule.",
    )


def test_a_draft_whose_body_starts_with_a_rule_reads_alike(world: ExecBox) -> None:
    run = world.ok("post", "--draft", "--json", input="----\nkey: value\n\n---\n\nthe reply\n")
    post = assert_reads_alike(world.path(run.json()["id"], "drafts"))
    assert post.parts == ("----\nkey: value", "the reply")


# -- `new`'s template, saved with a change ----------------------------------------------------


@pytest.mark.parametrize(
    ("options", "state"),
    [
        pytest.param(["-s", "3h", "-p", "x"], "scheduled", id="with-a-schedule"),
        pytest.param([], "scheduled", id="due-now"),  # the time is written in when it is stored
        pytest.param(["--draft"], "drafts", id="draft"),
    ],
)
def test_the_template_of_new_saved_with_a_change_reads_alike(
    world: ExecBox, options: list[str], state: str
) -> None:
    post_id = world.ok("new", *options).out.strip()
    post = assert_reads_alike(world.path(post_id, state))
    assert post.cw == "Content warning"
    assert post.parts == ("Written in the editor", "and a reply")
    if state == "scheduled":
        absolute(post)
    else:
        assert post.schedule is None


def test_the_template_of_new_with_yaml_1_1_account_names_reads_alike(world: ExecBox) -> None:
    post_id = world.ok("new", "-p", "no", "-p", "1").out.strip()
    post = assert_reads_alike(world.path(post_id, "scheduled"))
    assert post.platforms == ("no", "1")


# -- what intake and the sender write ---------------------------------------------------------


def test_intake_write_back_and_the_results_read_alike(world: ExecBox) -> None:
    """A relative time written back as an absolute one (queued for later), a post due now sent
    with its results, a CRLF file whose line ends are kept, and a frontmatter written as one
    flow mapping, which plurspool rewrites as block YAML (plurspool(5))."""
    world.drop(
        "later",
        "---\n"
        "# Written by hand; plurspool changes only the schedule line.\n"
        "schedule: 2h   # relative\n"
        "platforms: [x, 'no']\n"
        "cw: 'Spoilers: episode 3'\n"
        "language: 'no'\n"
        "media:\n"
        "  - path: media/cat.png\n"
        "    alt: A grey cat\n"
        "  - media/cat.png\n"
        "overrides:\n"
        "  'no': {text: \"Shorter\\n---\\nthread\", visibility: public}\n"
        "---\n"
        "Later.\n",
    )
    world.drop("crlf", "---\r\nschedule: tomorrow 9am\r\n---\r\nWindows line ends.\r\n")
    world.drop("due", "---\nplatforms: [x, 'no', '1']\n---\nDue now.\n")
    world.drop(
        "flow", "---\n{platforms: [x], cw: 'no', language: 'no', sensitive: false}\n---\nF\n"
    )
    world.answer("x", out="123\n", post="due")
    world.answer("no", out="https://example.social/@me/109345\n", post="due")
    world.answer("1", out='it\'s: "quoted" #not-a-comment\n', post="due")
    world.ok("send", "--once")

    later = assert_reads_alike(world.path("later", "scheduled"))
    absolute(later)
    assert later.overrides["no"].text == "Shorter\n---\nthread"
    crlf_path = world.path("crlf", "scheduled")
    absolute(assert_reads_alike(crlf_path))
    data = crlf_path.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n") == 4
    due = assert_reads_alike(world.path("due", "sent"))
    assert {a: (r.id, r.url, r.error) for a, r in due.results.items()} == {
        "x": ("123", None, None),
        "no": (None, "https://example.social/@me/109345", None),
        "1": ('it\'s: "quoted" #not-a-comment', None, None),
    }
    assert due.attempts == 1
    flow_path = world.path("flow", "sent")
    flow = assert_reads_alike(flow_path)
    assert not flow_path.read_bytes().startswith(b"---\n{")  # rewritten as block YAML
    assert (flow.cw, flow.language, flow.sensitive) == ("no", "no", False)
    assert flow.results["x"].error is None and flow.schedule is not None


def test_a_failed_post_and_its_retry_read_alike(world: ExecBox) -> None:
    world.drop("bad", "---\nplatforms: [x, 'no']\n---\nThis one fails on x.\n")
    world.answer("x", err='boom: it\'s "broken" #1\n', post="bad")
    world.answer("no", out="no-1\n", post="bad")
    world.ok("send", "--once")
    failed = assert_reads_alike(world.path("bad", "failed"))
    error = failed.results["x"].error
    assert error is not None and error.endswith('boom: it\'s "broken" #1')
    assert failed.results["no"].id == "no-1" and failed.results["no"].error is None

    world.ok("retry", "bad")
    retried = assert_reads_alike(world.path("bad", "scheduled"))
    assert retried.retried is not None and retried.results == failed.results


def test_reschedule_schedule_and_edit_read_alike(world: ExecBox) -> None:
    queued = world.ok("post", "-s", "2h", "--json", "Queued.").json()["id"]
    world.ok("reschedule", queued, "+1h")
    rescheduled = assert_reads_alike(world.path(queued, "scheduled"))

    draft = world.ok("post", "--draft", "--json", "A draft.").json()["id"]
    world.ok("schedule", draft, "tomorrow 9am")
    absolute(assert_reads_alike(world.path(draft, "scheduled")))

    # An edit that writes a relative time: plurspool stores it resolved.
    editor = world.answers.parent / "reschedule.sh"
    editor.write_text(
        """sed 's/^schedule: .*/schedule: 45m/' "$1" > "$1.edited"\nmv "$1.edited" "$1"\n"""
    )
    world.ok("edit", queued, env={"EDITOR": f"sh {editor}"})
    edited = assert_reads_alike(world.path(queued, "scheduled"))
    assert absolute(edited) < absolute(rescheduled)


def test_a_post_sent_at_once_records_odd_ids_that_read_alike(world: ExecBox) -> None:
    world.answer("x", out="123\n")
    world.answer("no", out="https://example.social/@me/109345?page=1#top\n")
    world.answer("1", out="\"id\": '1', #2: [x]\nsecond line, not recorded\n")
    post_id = world.ok("post", "-p", "x", "-p", "no", "-p", "1", "--json", "Now.").json()["id"]
    post = assert_reads_alike(world.path(post_id, "sent"))
    assert {a: (r.id, r.url) for a, r in post.results.items()} == {
        "x": ("123", None),
        "no": (None, "https://example.social/@me/109345?page=1#top"),
        "1": ("\"id\": '1', #2: [x]", None),
    }


# Ids and URLs a server or a command may answer that YAML 1.1 would read as something else,
# or that need quoting, escapes or cutting.
ODD = (
    "123",
    "007",
    "1_000",
    "0x1F",
    "12:30",
    "1e3",
    "1.5",
    ".inf",
    "~",
    "null",
    "NULL",
    "yes",
    "No",
    "on",
    "y",
    "2026-12-01",
    "2026-12-01T09:00:00Z",
    "- a",
    "? a",
    ": a",
    "a: b",
    "a #b",
    "#a",
    "a:",
    "'",
    '"',
    "''",
    "\\",
    "\\x41",
    "[a, b]",
    "{a: b}",
    "&a",
    "*a",
    "!a",
    "!!str a",
    "%a",
    "@a",
    "`a",
    "|",
    ">",
    "---",
    "...",
    "=",
    "<<",
    "http://[::1]:8080/x?a=b&c=d#e",
    "ünïcödé ✓ 🎉",
    "a\tb",
    "a\x85b",
    "a\u2028b",
    "\ufeffa",
    "\u202eevil",
    "\x1b[31mred\x1b[0m",
    "a\x00b",
    "a" * 600,
)


def test_results_with_odd_ids_and_account_names_read_alike(tmp_path: Path) -> None:
    accounts = ("x", "no", "1", "on", "null", "2026-12-01", "0x1F", "1_000")
    world = make_world(tmp_path, accounts)
    posts = [ODD[n : n + len(accounts)] for n in range(0, len(ODD), len(accounts))]
    for number, outputs in enumerate(posts):
        names = accounts[: len(outputs)]
        world.drop(
            f"odd{number}", f"---\nplatforms: [{', '.join(repr(a) for a in names)}]\n---\nx\n"
        )
        for account, out in zip(names, outputs, strict=False):
            world.answer(account, out=out + "\n", post=f"odd{number}")
    world.ok("send", "--once")
    for number, outputs in enumerate(posts):
        post = assert_reads_alike(world.path(f"odd{number}", "sent"))
        for account, out in zip(accounts, outputs, strict=False):
            expect_sent(post, account, out)


def expect_sent(post: Post, account: str, out: str) -> None:
    """`account`'s result records `out`, the command's first line, wherever it is printable
    text on one line already (elsewhere, plurspool(5) says how it is made so)."""
    result = post.results[account]
    assert result.error is None and result.attempts == 1 and result.at is not None
    first = out.strip().splitlines()[0] if out.strip() else ""
    if not clean(first):
        return
    if first.startswith(("https://", "http://")):
        assert (result.id, result.url) == (None, first)
    else:
        assert (result.id, result.url) == (first or None, None)


def clean(line: str) -> bool:
    """Whether `line` is recorded as it is: printable, single spaces, at most 500 characters."""
    return line.isprintable() and line == " ".join(line.split()) and len(line) <= 500


# -- generated answers ------------------------------------------------------------------------

ANSWER = st.one_of(
    st.sampled_from(ODD),
    st.lists(st.sampled_from(ODD) | st.text(max_size=8), min_size=1, max_size=4).map(" ".join),
    st.text(max_size=40),
    st.lists(st.text(max_size=12), min_size=2, max_size=3).map("\n".join),
)
# Per post, per account: (exit status, what it prints: on stdout for 0, on stderr for 1).
OUTCOMES = st.lists(
    st.fixed_dictionaries({a: st.tuples(st.sampled_from([0, 0, 1]), ANSWER) for a in ACCOUNTS}),
    min_size=1,
    max_size=3,
)
_examples = itertools.count()


@settings(
    max_examples=30,
    deadline=None,
    # One spool for all the examples (each has posts of its own): making one costs a process.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(OUTCOMES)
def test_generated_answers_are_recorded_in_results_that_read_alike(
    world: ExecBox, outcomes: list[dict[str, tuple[int, str]]]
) -> None:
    example = next(_examples)
    ids = [f"g{example}-{number}" for number in range(len(outcomes))]
    for post_id, answers in zip(ids, outcomes, strict=True):
        world.drop(post_id, "---\nplatforms: [x, 'no', '1']\n---\nGenerated.\n")
        for account, (status, text) in answers.items():
            if status == 0:
                world.answer(account, out=text, post=post_id)
            else:
                world.answer(account, err=text, post=post_id)
    # In-process (the spool and its files are the same): a process per example costs ~0.3 s.
    run = invoke(["send", "--once"], world.env)
    assert run.code == 0, run
    for post_id, answers in zip(ids, outcomes, strict=True):
        failed = any(status for status, _ in answers.values())
        post = assert_reads_alike(world.path(post_id, "failed" if failed else "sent"))
        assert list(post.results) == list(ACCOUNTS)
        for account, (status, text) in answers.items():
            if status == 0:
                expect_sent(post, account, text)
                continue
            result = post.results[account]
            assert result.error, f"{account}: no error recorded for {text!r}"
            detail = text.strip()
            if clean(detail) and len(detail) <= 400:
                assert result.error.endswith(detail), (result.error, detail)
