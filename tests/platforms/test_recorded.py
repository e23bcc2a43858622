"""What a send records (plurspool(5), `results`): whatever a command or a server answers, the
id, url and error that reach the log, the ledger and the post are one short printable line, and
a recorded result never makes a post unreadable.

The exec tests run `plurspool send --once` as a subprocess with commands that answer megabytes,
control characters, invalid UTF-8 and terminal escapes, then read the post back with
`plurspool show`, as a user would.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plurspool.post import RECORD_MAX, parse, recorded
from tests.daemon_helpers import Sandbox, in_process, iso, post_text, toml_str

BIG = 3 << 19  # 1.5 MiB: more than the default max_post_size of 1 MiB


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path)
    try:
        yield sandbox
    finally:
        sandbox.cleanup()


def command_account(box: Sandbox, name: str, script: str) -> None:
    """An exec account whose command is a Python script (which reads the post first)."""
    argv = [sys.executable, "-c", "import sys; sys.stdin.buffer.read()\n" + script]
    box.accounts[name] = f'platform = "exec"\ncommand = [{", ".join(toml_str(a) for a in argv)}]\n'
    box.default_platforms.append(name)


def send_once(box: Sandbox, post_id: str, text: str) -> str:
    """Drop a post into new/ and run `plurspool send --once`; its stderr (the log)."""
    box.deliver("new", post_id, post_text(text))
    run = box.cli("send", "--once")
    assert run.code == 0, run.err
    return run.err


def show(box: Sandbox, post_id: str) -> list[str]:
    run = box.cli("show", post_id)
    assert run.code == 0, run.err
    assert "refused" not in run.out + run.err
    return run.out.splitlines()


def results_in_file(box: Sandbox, state: str, post_id: str) -> dict[str, Any]:
    post = parse((box.spool / state / f"{post_id}.md").read_bytes())
    return {a: (r.id, r.url, r.error) for a, r in post.results.items()}


# -- the rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("109345", "109345"),
        ("https://example.social/@me/1", "https://example.social/@me/1"),
        ("  spaced\tout\r\nover lines \u2028 and more ", "spaced out over lines and more"),
        ("\x1b[1;31mred\x1b[0m id", "red id"),  # colours (CSI)
        ("\x1b]0;a window title\x07id", "id"),  # a window title (OSC)
        ("\x1b]8;;https://evil.test\x1b\\link\x1b]8;;\x1b\\", "link"),  # a hyperlink
        ("a\x00b\x7fc\x9bd", "a\ufffdb\ufffdc\ufffdd"),  # other control characters
        ("\ud800lone", "\ufffdlone"),  # a lone surrogate (json.loads gives them)
        ("https://x.test/\u202egnp.exe", "https://x.test/\ufffdgnp.exe"),  # bidi override
        (
            "caf\u00e9 \U0001f468\u200d\U0001f469 \ufffd",
            "caf\u00e9 \U0001f468\u200d\U0001f469 \ufffd",
        ),
        ("", ""),
        ("\x1b[0m", ""),
    ],
)
def test_recorded_is_one_printable_line(text: str, expected: str) -> None:
    assert recorded(text) == expected
    assert recorded(expected) == expected  # applied twice, nothing more changes


def test_recorded_is_cut_at_record_max_with_an_ellipsis() -> None:
    assert recorded("x" * RECORD_MAX) == "x" * RECORD_MAX
    assert recorded("x" * (RECORD_MAX + 1)) == "x" * (RECORD_MAX - 1) + "…"
    huge = recorded("y" * BIG)
    assert huge == "y" * (RECORD_MAX - 1) + "…"
    # Escapes do not count, and a long run of them does not hide that text was cut.
    assert recorded("\x1b[0m" * BIG + "z") == "…"
    assert recorded(None) is None


# -- exec commands that answer too much --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("after", ["", "\\n", "\\nsecond line\\n"])
def test_an_exec_command_printing_megabytes_records_a_short_id_and_the_post_stays_readable(
    box: Sandbox, after: str
) -> None:
    """The first line is 1.5 MiB (curl echoing JSON): the post lands in sent/ with the id cut
    to RECORD_MAX characters, and `show` prints its text, its account and that id."""
    command_account(box, "x", f"sys.stdout.write('id-' + 'x' * {BIG} + '{after}')")
    box.write_config()
    log = send_once(box, "big", "Hello from a chatty command")
    assert box.is_in("big", "sent")
    expected = "id-" + "x" * (RECORD_MAX - 4) + "…"
    lines = show(box, "big")
    assert "accounts:  x" in lines
    assert f"sent:      x: {expected}" in lines
    assert "Hello from a chatty command" in lines
    assert results_in_file(box, "sent", "big") == {"x": (expected, None, None)}
    assert (box.spool / "sent" / "big.md").stat().st_size < 4096
    # Nor did the megabytes reach the log.
    assert len(log) < 10_000 and expected in log


def test_an_exec_command_failing_with_megabytes_on_stderr_records_the_end(box: Sandbox) -> None:
    script = (
        f"sys.stdout.write('o' * {BIG}); sys.stderr.write('e' * {BIG} + ' the real reason\\n');"
        " sys.exit(1)"
    )
    command_account(box, "x", script)
    box.write_config()
    send_once(box, "bad", "Doomed")
    assert box.is_in("bad", "failed")
    [(rid, url, error)] = results_in_file(box, "failed", "bad").values()
    assert (rid, url) == (None, None)
    assert error.startswith("command exited 1: …e") and error.endswith("e the real reason")
    assert len(error) <= RECORD_MAX
    lines = show(box, "bad")
    assert "accounts:  x" in lines and "Doomed" in lines
    assert any(line.startswith("error:") and "the real reason" in line for line in lines)


def test_an_exec_commands_output_is_read_without_holding_it_all(tmp_path: Path) -> None:
    """32 MiB on stdout: the sender keeps only the start and the end, and the command, never
    blocked on a full pipe, exits at once."""
    import tracemalloc

    box = Sandbox(tmp_path)
    command_account(box, "x", "sys.stdout.write('id-1\\n' + 'z' * (32 << 20))")
    w = in_process(box)
    box.deliver("scheduled", "p", post_text("p", schedule=iso(w.now - 1)))
    tracemalloc.start()
    try:
        result = w.run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.sent == ["p"]
    assert results_in_file(box, "sent", "p") == {"x": ("id-1", None, None)}
    assert peak < 4 << 20, f"{peak} bytes held at the peak"


def test_control_characters_invalid_utf8_and_escapes_are_recorded_printable(
    box: Sandbox,
) -> None:
    command_account(
        box, "link", "sys.stdout.buffer.write(b'\\x1b[1;32mhttps://example.test/@me/1\\x1b[0m\\n')"
    )
    command_account(
        box, "raw", "sys.stdout.buffer.write(b'id-\\x00\\x07one\\xff\\x1b]0;pwned\\x07 two\\r\\n')"
    )
    box.write_config()
    log = send_once(box, "odd", "Odd answers")
    assert box.is_in("odd", "sent")
    assert results_in_file(box, "sent", "odd") == {
        # Still a URL once its colours are gone: recorded as the url.
        "link": (None, "https://example.test/@me/1", None),
        "raw": ("id-\ufffd\ufffdone\ufffd two", None, None),
    }
    lines = show(box, "odd")
    assert "sent:      link: https://example.test/@me/1" in lines
    assert "sent:      raw: id-\ufffd\ufffdone\ufffd two" in lines
    assert "\x1b" not in log and "\x00" not in log


def test_a_hostile_server_answer_is_recorded_cut_and_printable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any platform's answer passes the same rule: here one whose id and url are megabytes of
    escapes and text."""
    from plurspool.platforms import exec as exec_platform
    from plurspool.platforms.base import Outcome

    answer = Outcome(
        "sent", remote_id="\x1b[2J" + "9" * BIG, url="https://evil.test/\x1b[8m" + "a" * BIG
    )
    monkeypatch.setattr(exec_platform.PLATFORM, "send", lambda job: answer)
    box = Sandbox(tmp_path)
    box.exec_account("x")
    w = in_process(box)
    box.deliver("scheduled", "p", post_text("p", schedule=iso(w.now - 1)))
    assert w.run().sent == ["p"]
    rid, url = "9" * (RECORD_MAX - 1) + "…", "https://evil.test/" + "a" * (RECORD_MAX - 19) + "…"
    assert results_in_file(box, "sent", "p") == {"x": (rid, url, None)}
    row = w.row("p", "x")
    assert (row.remote_id, row.url) == (rid, url)
    assert "\x1b" not in w.log.getvalue() and len(w.log.getvalue()) < 10_000


# -- results never push a post over max_post_size ---------------------------------------------


def test_results_that_would_push_a_post_over_max_post_size_are_left_out(box: Sandbox) -> None:
    """A post just under the limit, and an id of RECORD_MAX characters: written in, the results
    would make the post too big to read. It moves to sent/ without them, says so in the log,
    and `show` still lists the id, from the ledger."""
    command_account(box, "x", f"sys.stdout.write('id-' + 'x' * {RECORD_MAX})")
    box.write_config()
    box.config_path.write_text(
        "max_post_size = 4096\n" + box.config_path.read_text(encoding="utf-8"), encoding="utf-8"
    )
    body = "A long post. " * 300
    assert 3800 < len(post_text(body).encode()) < 4000
    log = send_once(box, "full", body)
    assert box.is_in("full", "sent")
    expected = "id-" + "x" * (RECORD_MAX - 4) + "…"
    lines = show(box, "full")
    assert f"sent:      x: {expected}" in lines
    assert "accounts:  x" in lines
    assert (box.spool / "sent" / "full.md").stat().st_size <= 4096
    assert results_in_file(box, "sent", "full") == {}
    assert "max_post_size" in log and "results" in log


# -- how the exec platform waits for a command ------------------------------------------------


def sh_account(box: Sandbox, script: str, timeout: str = "1s") -> None:
    box.accounts["x"] = f'platform = "exec"\ncommand = ["sh", "-c", {toml_str(script)}]\n'
    box.accounts["x"] += f'timeout = "{timeout}"\n'
    box.default_platforms.append("x")


@pytest.mark.realtime
@pytest.mark.parametrize(
    "script",
    [
        "sleep 60 & sleep 60",  # a child in its process group holds the pipes open
        "exec >&- 2>&-; sleep 60",  # its output closed, but it does not exit
        "cat >/dev/null; echo id; sleep 60",  # it answered, but does not exit
    ],
)
def test_an_exec_command_that_outlasts_its_timeout_is_killed_with_its_group(
    tmp_path: Path, script: str
) -> None:
    import time

    box = Sandbox(tmp_path)
    sh_account(box, script)
    w = in_process(box)
    box.deliver("scheduled", "p", post_text("p", schedule=iso(w.now - 1)))
    started = time.monotonic()
    result = w.run()
    assert time.monotonic() - started < 15  # 1 s, and the kill: never the 60 s sleep
    assert "x: command timed out after 1s; retry in" in result.deferred["p"]


def test_an_exec_command_that_does_not_read_the_post_still_succeeds(tmp_path: Path) -> None:
    """The post (300 KB, more than a pipe holds) is not read at all: writing it must neither
    block nor fail the send."""
    box = Sandbox(tmp_path)
    sh_account(box, "echo id-7", timeout="30s")
    w = in_process(box)
    box.deliver("scheduled", "p", post_text("long " * 60_000, schedule=iso(w.now - 1)))
    assert w.run().sent == ["p"]
    assert results_in_file(box, "sent", "p") == {"x": ("id-7", None, None)}
