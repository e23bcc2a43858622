"""`plurspool import csv|jsonl`: rows → checked posts, all or nothing, never twice (in process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_helpers import Sandbox
from tests.helpers import Run, invoke, png, read_post


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    b = Sandbox(tmp_path)
    b.accounts["masto"] = 'platform = "exec"\ncommand = ["true"]\n'
    b.accounts["nostr"] = 'platform = "exec"\ncommand = ["true"]\n'
    b.default_platforms.append("masto")
    b.write_config()
    (b.spool / "media").mkdir()
    (b.spool / "media" / "a.png").write_bytes(png())
    (b.spool / "media" / "b.png").write_bytes(png())
    return b


def imp(box: Sandbox, kind: str, text: str, *args: str) -> Run:
    path = box.base / f"rows.{kind}"
    path.write_text(text, encoding="utf-8")
    return invoke(["import", kind, *args, str(path)], box.env)


def files(box: Sandbox) -> dict[str, set[str]]:
    return {s: box.ids(s) for s in ("new", "drafts", "scheduled", "sent", "failed")}


CSV = (
    "text,schedule,platforms,cw,language,visibility,media,alt\n"
    "Hello from a spreadsheet,2030-01-02T09:00:00Z,,,,,,\n"
    '"A thread\n---\nin two parts",2030-01-03 10:00,"masto, nostr",spoilers,pt-BR,unlisted,,\n'
    "Two pictures,2030-01-04T09:00:00Z,nostr masto,,,,media/a.png|media/b.png,first|\n"
    "No time: a draft,,,,,,,\n"
)


def test_csv_rows_become_posts_with_every_column(box: Sandbox) -> None:
    run = imp(box, "csv", CSV)
    assert run.code == 0, run.err
    ids = run.out.split()
    assert len(ids) == 4
    assert "imported 4 posts: 3 in scheduled/, 1 in drafts/" in run.err
    assert box.ids("scheduled") == set(ids[:3]) and box.ids("drafts") == {ids[3]}
    hello = box.post("scheduled", ids[0])
    assert hello.parts == ("Hello from a spreadsheet",) and hello.platforms is None
    assert hello.schedule == "2030-01-02T09:00:00+00:00"
    thread = box.post("scheduled", ids[1])
    assert thread.parts == ("A thread", "in two parts")
    assert thread.platforms == ("masto", "nostr")
    assert (thread.cw, thread.language, thread.visibility) == ("spoilers", "pt-BR", "unlisted")
    assert thread.schedule == "2030-01-03T10:00:00+00:00"  # local time in the zone (UTC here)
    pics = box.post("scheduled", ids[2])
    assert pics.platforms == ("nostr", "masto")
    assert [(m.path, m.alt) for m in pics.media] == [
        ("media/a.png", "first"),
        ("media/b.png", None),
    ]
    draft = box.post("drafts", ids[3])
    assert draft.schedule is None and draft.parts == ("No time: a draft",)
    # What the import checked is what `check` checks: the posts it made pass.
    checked = invoke(["check", "--format", "json"], box.env)
    assert checked.code == 0, checked.out
    assert {r["id"] for r in checked.json()} == set(ids)


def test_importing_the_same_file_again_makes_nothing_new(box: Sandbox) -> None:
    first = imp(box, "csv", CSV)
    before = files(box)
    again = imp(box, "csv", CSV)
    assert again.code == 0, again.err
    assert again.out == ""
    assert "nothing new: 4 were imported before" in again.err
    assert files(box) == before
    # One row added: only it is made, the others are known by their content.
    more = imp(box, "csv", CSV + "One more,2030-02-01T09:00:00Z,,,,,,\n")
    assert more.code == 0, more.err
    assert len(more.out.split()) == 1 and more.out.split()[0] not in first.out.split()
    assert "imported 1 post: 1 in scheduled/" in more.err and "4 were imported before" in more.err


def test_a_row_and_its_line_number_do_not_make_the_id(box: Sandbox) -> None:
    """The same row at another line, or in JSON Lines, is the same post; a repeated row is
    made once."""
    csv_run = imp(box, "csv", "text,schedule\nfirst,2030-01-01T00:00:00Z\n")
    rows = [
        {"text": "other", "schedule": "2030-01-01T00:00:00Z"},
        {"text": "first", "schedule": "2030-01-01T00:00:00Z"},
        {"text": "other", "schedule": "2030-01-01T00:00:00Z"},
    ]
    jl = imp(box, "jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    assert jl.code == 0, jl.err
    (other,) = jl.out.split()
    assert other != csv_run.out.strip()
    assert box.ids("scheduled") == {other, csv_run.out.strip()}
    assert "1 was imported before" in jl.err
    assert "1 row repeated an earlier one" in jl.err


def test_any_bad_row_writes_nothing_and_names_every_bad_line(box: Sandbox) -> None:
    text = (
        "text,schedule,platforms,media,alt\n"
        ",2030-01-01T00:00:00Z,,,\n"  # 2: no text
        '"a cell\non two lines",yesterday,,,\n'  # 3-4: past
        "fine,2030-01-01T00:00:00Z,,,\n"  # 5
        "who,2030-01-01T00:00:00Z,nobody,,\n"  # 6: unknown account
        "pic,2030-01-01T00:00:00Z,,media/missing.png,\n"  # 7: no such file
        "alts,2030-01-01T00:00:00Z,,media/a.png,x|y\n"  # 8: more alts than media
        "when,the day after never,,,\n"  # 9: not a time
        "short,row\n"  # 10: too few cells
    )
    run = imp(box, "csv", text)
    assert run.code == 3
    assert run.out == ""
    err = run.err
    assert "7 bad rows, nothing imported" in err
    lines = [line.strip() for line in err.splitlines() if line.startswith("  line ")]
    assert [line.split(":")[0] for line in lines] == [
        "line 2",
        "line 3",
        "line 6",
        "line 7",
        "line 8",
        "line 9",
        "line 10",
    ]
    assert "`text` is empty" in lines[0]
    assert "in the past" in lines[1]
    assert "unknown account nobody" in lines[2]
    assert "media/missing.png" in lines[3]
    assert "2 texts for 1 media files" in lines[4]
    assert "5 cells for 5 columns" not in lines[6] and "2 cells for 5 columns" in lines[6]
    assert files(box) == {s: set() for s in files(box)}
    assert not list((box.spool / "tmp").iterdir())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("schedule,platforms\n2h,masto\n", "no `text` column"),
        ("text,when\nhi,2h\n", "unknown column 'when'"),
        ("text,text\nhi,ho\n", "the column 'text' is named twice"),
    ],
)
def test_a_bad_header_is_line_1(box: Sandbox, text: str, message: str) -> None:
    run = imp(box, "csv", text)
    assert run.code == 3
    assert f"line 1: {message}" in run.err


def test_not_utf8_names_the_line(box: Sandbox) -> None:
    path = box.base / "latin1.csv"
    path.write_bytes("text\nok\ncaf\xe9\n".encode("latin-1"))
    run = invoke(["import", "csv", str(path)], box.env)
    assert run.code == 3
    assert "line 3: not UTF-8 text" in run.err


def test_jsonl_takes_lists_and_reports_bad_lines(box: Sandbox) -> None:
    good = {
        "text": "from json",
        "schedule": "2030-05-01T12:00:00+02:00",
        "platforms": ["nostr"],
        "media": ["media/a.png"],
        "alt": ["a small picture"],
        "cw": None,
    }
    bad = imp(
        box,
        "jsonl",
        json.dumps(good) + "\n\n{not json\n[1, 2]\n" + json.dumps({"text": "x", "tags": []}) + "\n"
        '{"text": 5}\n',
    )
    assert bad.code == 3
    err = bad.err
    assert "line 3: not JSON: Expecting property name enclosed in double quotes at column 2" in err
    assert "line 4: not a JSON object" in err
    assert "line 5: unknown key 'tags'" in err
    assert "line 6: `text` must be text, not int" in err
    assert "  line 1:" not in err
    assert box.ids("scheduled") == set()
    run = imp(box, "jsonl", json.dumps(good) + "\n", "--format", "json")
    assert run.code == 0, run.err
    (view,) = run.json()
    assert view["state"] == "scheduled"
    assert view["scheduled_at"] == "2030-05-01T10:00:00Z"
    assert view["platforms"] == ["nostr"]
    assert view["path"] == f"scheduled/{view['id']}.md"
    post = read_post(box.spool / view["path"])
    assert [(m.path, m.alt) for m in post.media] == [("media/a.png", "a small picture")]


def test_stdin_and_an_unreadable_file(box: Sandbox) -> None:
    run = invoke(
        ["import", "csv", "-"], box.env, input="text,schedule\nfrom stdin,2030-01-01T00:00:00Z\n"
    )
    assert run.code == 0, run.err
    assert box.ids("scheduled") == {run.out.strip()}
    missing = invoke(["import", "csv", str(box.base / "nope.csv")], box.env)
    assert missing.code == 3
    assert "cannot read" in missing.err and "nope.csv" in missing.err


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"text": "a\u0000b"}, "NUL"),
        ({"text": "<<<<<<< HEAD\nmine\n=======\ntheirs\n>>>>>>> other\n"}, "conflict"),
        ({"text": "---"}, "empty"),
        ({"text": "first\n---\n\n---\nthird"}, "thread part 2 is empty"),
        ({"text": "x", "language": "not a language!"}, "language"),
        ({"text": "x", "visibility": "everyone"}, "visibility"),
        ({"text": "x", "media": ["../outside.png"]}, "outside.png"),
        ({"text": "x", "platforms": [1, 2]}, "account names"),
        ({"text": "x", "schedule": "2030-03-31T02:30:00"}, ""),  # fine in UTC: a control row
    ],
)
def test_hostile_rows_are_named_never_a_traceback(
    box: Sandbox, row: dict[str, object], reason: str
) -> None:
    run = imp(box, "jsonl", json.dumps(row) + "\n")
    if not reason:
        assert run.code == 0, run.err
        return
    assert run.code == 3, run.out + run.err
    assert "Traceback" not in run.err
    bad = [line for line in run.err.splitlines() if line.startswith("  line 1: ")]
    assert len(bad) == 1 and reason.lower() in bad[0].lower(), run.err
    assert files(box) == {s: set() for s in files(box)}


def test_an_interrupted_import_is_completed_by_running_it_again(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk failure after the first batch: what was written stays, and the same import run
    again makes the rest, none twice."""
    from plurspool import importing
    from plurspool.errors import SpoolError
    from plurspool.spool import Spool

    monkeypatch.setattr(importing, "BATCH", 2)
    real = Spool.deliver_many
    calls = []

    def failing(self: Spool, state: str, posts: list[tuple[str, bytes]]) -> list[Any]:
        calls.append(len(posts))
        if len(calls) == 2:
            raise SpoolError("cannot write: No space left on device", "free some space")
        return real(self, state, posts)

    monkeypatch.setattr(Spool, "deliver_many", failing)
    text = "text,schedule\n" + "".join(f"post {i},2030-01-0{i + 1}T09:00:00Z\n" for i in range(5))
    first = imp(box, "csv", text)
    assert first.code == 1
    assert "No space left on device (2 of 5 posts were written)" in first.err
    assert "run the same import again: it makes only the rest" in first.err
    assert len(box.ids("scheduled")) == 2
    again = imp(box, "csv", text)
    assert again.code == 0, again.err
    assert len(again.out.split()) == 3
    assert (
        "imported 3 posts: 3 in scheduled/" in again.err and "2 were imported before" in again.err
    )
    assert len(box.ids("scheduled")) == 5
    assert not list((box.spool / "tmp").iterdir())
