"""The command line: the only module that imports click. Thin commands over `core`.

Data goes to stdout (text or JSON), messages to stderr. Every `PlurspoolError` becomes
`plurspool: MESSAGE` + `hint: HINT` and its exit code, in one place (`Cli.invoke`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from . import __version__, usage
from .errors import (
    EXIT_FAILURE,
    EXIT_INVALID,
    ConfigError,
    InvalidInput,
    PlurspoolError,
    TimeError,
    UsageError,
)

if TYPE_CHECKING:
    from pathlib import Path

F = TypeVar("F", bound=Callable[..., Any])

QUEUE_COMMANDS = (
    "list",
    "show",
    "cancel",
    "reschedule",
    "now",
    "retry",
    "schedule",
    "stats",
    "check",
)


def _guarded(invoke: Callable[[click.Context], Any], ctx: click.Context) -> Any:
    """Run a command, turning plurspool errors into messages and exit codes."""
    try:
        return invoke(ctx)
    except PlurspoolError as exc:
        fail(exc.message, exc.hint, exc.exit_code)
    except KeyboardInterrupt:
        click.echo("plurspool: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # `plurspool list | head`: the reader left; nothing is wrong.
        sys.stderr.close()
        sys.exit(0)


class Cli(click.Group):
    """Turns plurspool errors into messages and exit codes, once, for every command."""

    def invoke(self, ctx: click.Context) -> Any:
        return _guarded(super().invoke, ctx)


def fail(message: str, hint: str = "", code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(f"plurspool: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    sys.exit(code)


def note(message: str) -> None:
    """A message for the person at the terminal (stderr)."""
    click.echo(message, err=True)


class State:
    """Global options, and the configuration and core loaded on first use."""

    def __init__(self, spool: str | None, config: str | None, verbose: bool) -> None:
        self.spool_opt = spool
        self.config_opt = config
        self.verbose = verbose
        self._core: Any = None
        self._ensured = False

    def load_config(self) -> Any:
        from pathlib import Path

        from .config import load

        return load(Path(self.config_opt) if self.config_opt else None, spool=self.spool_opt)

    @property
    def core(self) -> Any:
        core = self.host_core
        if not self._ensured:
            core.spool.ensure()
            self._ensured = True
        return core

    @property
    def host_core(self) -> Any:
        """The core, its spool as it is: for what only looks at this host's state (`daemon
        health` must not make an empty spool where a fresh clone is about to go)."""
        if self._core is None:
            from .core import Core

            self._core = Core(self.load_config())
        return self._core

    def daemon_core(self) -> Any:
        """The core; while the config cannot be loaded, that of the daemon to stop or inspect,
        found from the state directory alone (see plurspool(1), daemon), after a warning."""
        try:
            return self.host_core  # stopping or inspecting a daemon makes no spool
        except ConfigError as exc:
            from pathlib import Path

            from .service import core_without_config

            config = Path(self.config_opt) if self.config_opt else None
            core = core_without_config(self.spool_opt, config)
            note(
                f"plurspool: warning: config ignored: {exc.message}; "
                f"acting on the daemon of {core.spool.root}"
            )
            return core


pass_state = click.make_pass_decorator(State)


def format_option(f: F) -> F:
    f = click.option("--json", "fmt", flag_value="json", help="Same as --format json.")(f)
    f = click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Output format.",
    )(f)
    return f


def emit_json(data: Any) -> None:
    """JSON on stdout: an array one element a line (fast for 100k posts), else indented."""
    if isinstance(data, list):
        if not data:
            click.echo("[]")
            return
        import json

        dumps = json.JSONEncoder(ensure_ascii=False).encode
        # A file name that is not UTF-8 shows as \udcXX escapes, still JSON.
        emit_json_lines("\n".join(dumps(x) for x in data).encode("utf-8", "backslashreplace"))
    else:
        import json

        text = json.dumps(data, indent=2, ensure_ascii=False)
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode("utf-8", "backslashreplace") + b"\n")
        sys.stdout.buffer.flush()


def emit_json_lines(lines: bytes) -> None:
    """A JSON array on stdout from its elements, already encoded (UTF-8), one a line."""
    if not lines:
        click.echo("[]")
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(b"[\n" + lines.replace(b"\n", b",\n") + b"\n]\n")
    sys.stdout.buffer.flush()


_OPTION_HELP = dict(usage.OPTIONS)


@click.group(
    cls=Cli, help=usage.DESCRIPTION, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option("--spool", metavar="DIR", help=_OPTION_HELP["--spool DIR"])
@click.option("--config", metavar="FILE", help=_OPTION_HELP["--config FILE"])
@click.option("-v", "--verbose", is_flag=True, help=_OPTION_HELP["-v, --verbose"])
@click.version_option(
    __version__, "-V", "--version", prog_name="plurspool", help=_OPTION_HELP["-V, --version"]
)
@click.pass_context
def cli(ctx: click.Context, spool: str | None, config: str | None, verbose: bool) -> None:
    # The help text is usage.DESCRIPTION: `plurspool --help` prints it without importing click.
    ctx.obj = State(spool, config, verbose)


# -- helpers ---------------------------------------------------------------------------------


def _echo_time(core: Any, at: datetime) -> str:
    from . import when

    return when.echo(at, core.config.timezone)


def _until(core: Any, due: datetime | None) -> str:
    if due is None:
        return "-"
    delta = due - core.clock()
    s = int(delta.total_seconds())
    if -60 < s <= 0:
        return "due now"
    sign, s = ("overdue ", -s) if s < 0 else ("in ", s)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    if d:
        text = f"{d}d{h}h" if h else f"{d}d"
    elif h:
        text = f"{h}h{m:02d}m"
    elif m:
        text = f"{m}m"
    else:
        text = f"{sec}s"
    return sign + text


def _local(core: Any, due: datetime | None) -> str:
    if due is None:
        return "-"
    return due.astimezone(core.config.timezone).strftime("%Y-%m-%d %H:%M %Z")


def _width(text: str) -> int:
    """The columns `text` takes on a terminal: emoji and CJK take two, combining marks none."""
    if text.isascii() and text.isprintable():
        return len(text)
    import wcwidth

    return int(wcwidth.width(text))


def _cut(text: str, width: int, mark: str = "…") -> str:
    """`text` in at most `width` columns, cut between graphemes and ended with `mark` if cut."""
    if _width(text) <= width:
        return text
    room = width - _width(mark)
    if text.isascii():
        return text[: max(room, 0)] + mark
    import wcwidth

    kept = []
    for grapheme in wcwidth.iter_graphemes(text):
        room -= _width(grapheme)
        if room < 0:
            break
        kept.append(grapheme)
    return "".join(kept) + mark


def _table(
    rows: list[list[str]],
    header: list[str],
    width: int | None = None,
    shrink: Sequence[tuple[int, int]] = (),
    exact: int | None = None,
) -> None:
    """Rows under a header, aligned by display width.

    With `width`, columns are cut until the table fits it, as `shrink` says: (column, its
    narrowest) in turn. A cut cell ends with …, except in the `exact` column (IDs: a prefix
    is still a valid ID).
    """
    table = [header, *rows]
    widths = [max(_width(r[i]) for r in table) for i in range(len(header))]
    if width is not None:
        excess = sum(widths) + 2 * (len(widths) - 1) - width
        for column, narrowest in shrink:
            cut = min(max(excess, 0), max(widths[column] - narrowest, 0))
            widths[column] -= cut
            excess -= cut
        marks = ["" if i == exact else "…" for i in range(len(widths))]
        table = [list(map(_cut, r, widths, marks)) for r in table]
    for row in table:
        cells = (c + " " * (w - _width(c)) for c, w in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def _parse_media(values: Sequence[str]) -> list[Any]:
    from .post import Media

    out = []
    for v in values:
        path, _, alt = v.partition(":")
        out.append(Media(path=path, alt=alt or None))
    return out


def _resolve_ids(core: Any, ids: Sequence[str], states: tuple[str, ...]) -> list[Any]:
    return [core.find(i, states) for i in ids]


def _id_argument(states: tuple[str, ...] | None, many: bool = False) -> Callable[[F], F]:
    """The ID argument(s) of a command that finds posts in `states` (None: all of them);
    the shell completes them from the names of the posts there."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        # A directory listing: no post is read, and nothing heavy is imported.
        from click.shell_completion import CompletionItem

        from .spool import STATES, Spool, classify

        given = ctx.find_root().params  # the group's callback does not run while completing
        try:
            config = State(given.get("spool"), given.get("config"), False).load_config()
        except PlurspoolError:
            return []
        spool = Spool(config.spool)
        already = ctx.params.get(param.name or "") if many else None  # ID... given so far
        found = []
        for state in states or STATES:
            try:
                names = os.listdir(spool.dir(state))
            except OSError:
                continue
            found += [
                CompletionItem(name[:-3], help=state)
                for name in names
                if name.startswith(incomplete)
                and classify(name) == "post"
                and name[:-3] not in (already or ())
            ]
        return sorted(found, key=lambda item: item.value)

    if many:
        return click.argument("ids", nargs=-1, metavar="ID...", shell_complete=complete)
    return click.argument("post_id", metavar="ID", shell_complete=complete)


# -- init ------------------------------------------------------------------------------------


@cli.command()
@format_option
@pass_state
def init(state: State, fmt: str) -> None:
    """Create the config (if missing) and the spool; print their paths."""
    from pathlib import Path

    from .config import config_path, default_config_text

    path = Path(state.config_opt) if state.config_opt else config_path(os.environ)
    created = False
    if not path.exists():
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(default_config_text())
            created = True
        except OSError as exc:
            fail(f"cannot write {path}: {exc.strerror}", "check the directory's permissions")
    core = state.host_core
    core.spool.ensure(keep=True)
    data = {
        "config": str(path),
        "config_created": created,
        "spool": str(core.spool.root),
        "state_dir": str(core.state_dir),
    }
    if fmt == "json":
        emit_json(data)
        return
    click.echo(f"config: {path}{' (created)' if created else ''}")
    click.echo(f"spool:  {core.spool.root}")
    click.echo(f"state:  {core.state_dir}")


# -- post ------------------------------------------------------------------------------------


@cli.command()
@click.argument("text", required=False)
@click.option(
    "-p",
    "--platform",
    "platforms",
    multiple=True,
    metavar="ACCOUNT",
    help="Send to this account (repeatable); default: default_platforms.",
)
@click.option(
    "-s", "--schedule", metavar="WHEN", help="Queue for this time instead of sending now."
)
@click.option("--draft", is_flag=True, help="Keep it in drafts/; never sent until scheduled.")
@click.option("--cw", metavar="TEXT", help="Content warning.")
@click.option("--lang", "language", metavar="LANG", help="Language tag, e.g. en or pt-BR.")
@click.option("--visibility", type=click.Choice(["public", "unlisted", "followers", "direct"]))
@click.option("--sensitive/--no-sensitive", default=None, help="Mark media as sensitive.")
@click.option(
    "--media",
    multiple=True,
    metavar="PATH[:ALT]",
    help="Attach a file from the spool, with alt text (repeatable).",
)
@format_option
@pass_state
def post(
    state: State,
    text: str | None,
    platforms: tuple[str, ...],
    schedule: str | None,
    draft: bool,
    cw: str | None,
    language: str | None,
    visibility: str | None,
    sensitive: bool | None,
    media: tuple[str, ...],
    fmt: str,
) -> None:
    """Make a post from TEXT (or stdin): send it now, queue it (-s), or keep it (--draft).

    A line holding only `---` starts the next part of a thread. Without --schedule or --draft
    the post is sent at once, in the foreground, through the same path as the daemon, and each
    account's result is printed.
    """
    if text is None:
        if sys.stdin.isatty():
            note("reading the post from stdin; end with Ctrl-D")
        text = sys.stdin.read()
    if schedule is not None and draft:
        raise UsageError("--schedule and --draft exclude each other", "use one of them")
    core = state.core
    item, at = core.add(
        text,
        platforms=platforms,
        schedule=schedule,
        draft=draft,
        cw=cw,
        language=language,
        visibility=visibility,
        sensitive=sensitive,
        media=_parse_media(media),
    )
    if draft or schedule is not None:
        if fmt == "json":
            emit_json(core.view(item))
        else:
            click.echo(item.id)
        if at is not None:
            _echo_due(core, item, "queued", fmt)
        elif fmt != "json":
            note(f"kept in drafts/ ({item.entry.path})")
        return
    _send_foreground(state, item.id, fmt)


def _send_foreground(state: State, post_id: str, fmt: str) -> None:
    """Send one post now, in this process, unless a running daemon does it; print results."""
    from .foreground import send_one

    core = state.core
    view = send_one(core, post_id, verbose=state.verbose)
    if fmt == "json":
        emit_json(view)
    else:
        click.echo(view["id"])
        for account in view["platforms"]:
            r = view["results"].get(account)
            if r is not None:
                note(f"{account}: sent {r.get('url') or r.get('id') or ''}".rstrip())
        if view["state"] == "failed":
            note(f"failed: {view['error']}")
        elif view["state"] == "scheduled":
            note(f"not sent yet: {view['error'] or 'deferred'}; it stays queued")
    if view["state"] != "sent":
        sys.exit(EXIT_FAILURE)


# -- new / edit ------------------------------------------------------------------------------


def _editor() -> list[str]:
    import shlex

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    return shlex.split(editor)


def _edit_loop(
    core: Any, state_name: str, post_id: str, initial: bytes, schedule: str | None
) -> Any:
    """Open $EDITOR until the file is valid (like crontab -e); return (bytes, item) or None.

    `schedule` is the post's time before the edit: kept as it is, it may lie in the past.
    """
    import subprocess
    import tempfile
    from pathlib import Path

    workdir = Path(tempfile.mkdtemp(prefix="plurspool-edit-"))
    path = workdir / f"{post_id}.md"
    path.write_bytes(initial)
    rounds = 0
    while True:
        rounds += 1
        try:
            rc = subprocess.call([*_editor(), str(path)])
        except OSError as exc:
            fail(
                f"cannot run the editor {_editor()[0]!r}: {exc.strerror}", "set $VISUAL or $EDITOR"
            )
        if rc != 0:
            fail(
                f"the editor exited with status {rc}; nothing was changed",
                f"your text is kept in {path}",
            )
        data = path.read_bytes()
        if (data == initial and rounds == 1) or not data.strip():
            note("no changes" if data.strip() else "empty file: nothing saved")
            _cleanup(workdir)
            return None
        try:
            stored, item = core.validate_edit(state_name, post_id, data, schedule)
            if item.problem:
                raise InvalidInput(item.problem)
        except PlurspoolError as exc:
            note(f"plurspool: {path.name}: {exc.message}")
            if exc.hint:
                note(f"hint: {exc.hint}")
            if not _again(rounds):
                fail("nothing was saved", f"your text is kept in {path}", EXIT_INVALID)
            continue
        return stored, item, workdir


def _again(rounds: int) -> bool:
    if sys.stdin.isatty():
        return click.confirm("Edit again?", default=True, err=True)
    return rounds < 5


def _cleanup(workdir: Path) -> None:
    for p in workdir.iterdir():
        p.unlink()
    workdir.rmdir()


@cli.command()
@click.option("-s", "--schedule", metavar="WHEN", help="Send time to put in the template.")
@click.option("-p", "--platform", "platforms", multiple=True, metavar="ACCOUNT")
@click.option("--draft", is_flag=True, help="Save into drafts/ instead of the queue.")
@pass_state
def new(state: State, schedule: str | None, platforms: tuple[str, ...], draft: bool) -> None:
    """Write a new post in $VISUAL/$EDITOR; it is queued when saved valid.

    An unchanged or empty file aborts. An invalid one is reported and the editor re-opens.
    """
    from .post import template
    from .spool import new_id

    core = state.core
    stamp = core.stamp(core.resolve(schedule)) if schedule else None
    initial = template(schedule=stamp, platforms=list(platforms) or None).encode()
    target = "drafts" if draft else "scheduled"
    got = _edit_loop(core, target, new_id(), initial, stamp)
    if got is None:
        sys.exit(EXIT_FAILURE)
    data, _item, workdir = got
    saved = core.deliver_new(target, data, "")
    _cleanup(workdir)
    click.echo(saved.id)
    if saved.due and target == "scheduled":
        note(f"queued for {_echo_time(core, saved.due)}")


EDIT_STATES = ("new", "drafts", "scheduled", "failed")


@cli.command()
@_id_argument(EDIT_STATES)
@pass_state
def edit(state: State, post_id: str) -> None:
    """Edit a post in $VISUAL/$EDITOR; the daemon never sees an invalid or half-saved version."""
    core = state.core
    item = core.find(post_id, EDIT_STATES)
    original = core.spool.read(item.entry)
    before = item.post.schedule if item.post else None
    got = _edit_loop(core, item.state, item.id, original, before)
    if got is None:
        return
    data, _, workdir = got
    try:
        saved = core.save_edit(item, data)
    except PlurspoolError as exc:
        fail(exc.message, f"your version is kept in {workdir / (item.id + '.md')}", exc.exit_code)
    _cleanup(workdir)
    click.echo(saved.id)
    if saved.due and saved.state == "scheduled":
        note(f"queued for {_echo_time(core, saved.due)}")


# -- list / show -----------------------------------------------------------------------------


ID_SHORT = 8  # characters of an ID that `list` keeps at least: all the random part of a new one


@cli.command("list")
@click.option(
    "--state",
    "state_name",
    default="scheduled",
    show_default=True,
    type=click.Choice(["new", "drafts", "scheduled", "sent", "failed", "all"]),
)
@click.option("-p", "--platform", "account", metavar="ACCOUNT", help="Only posts to ACCOUNT.")
@click.option(
    "--wide", is_flag=True, help="Show every column in full, whatever the terminal's width."
)
@format_option
@pass_state
def list_(state: State, state_name: str, account: str | None, wide: bool, fmt: str) -> None:
    """List posts in a state, soonest first, with the time until due.

    The table fits the terminal's width ($COLUMNS, else the terminal's, else 80 columns):
    IDs are cut to a unique prefix of at least 8 characters (any unique prefix is a valid
    ID), accounts and previews end with … where cut. --wide shows them in full.
    """
    from .core import sort_key
    from .spool import STATES

    core = state.core
    states = STATES if state_name == "all" else (state_name,)
    if fmt == "json" and not account:
        emit_json_lines(core.view_lines(states))  # from the listings: 100k posts in a second
        return
    items = sorted(core.items(states), key=sort_key)
    if account:
        items = [i for i in items if account in core.platforms(i.summary)]
    ledger = core.ledger.all_deliveries() if core.ledger_exists() else {}
    views = [core.view(i, ledger.get(i.id, {})) for i in items]
    if fmt == "json":
        emit_json(views)
        return
    if not views:
        note(f"no posts in {state_name if state_name != 'all' else 'the spool'}")
        return
    rows = []
    for item, v in zip(items, views, strict=True):
        status = _until(core, item.due) if item.state == "scheduled" else item.state
        if v["error"] and item.state == "scheduled":
            status += " (invalid)" if item.problem else " (deferred)"
        elif v["retry_at"]:
            status += " (retrying)"
        row = [item.id, _local(core, item.due), status, ",".join(v["platforms"]), v["preview"]]
        if state_name == "all":
            row.insert(1, item.state)
        rows.append(row)
    header = ["ID", "WHEN", "DUE", "ACCOUNTS", "PREVIEW"]
    if state_name == "all":
        header.insert(1, "STATE")
    if wide:
        _table(rows, header)
    else:
        need = core.spool.prefix_lengths()
        short_id = max(_width(i.id[: max(need.get(i.id, 0), ID_SHORT)]) for i in items)
        accounts, preview = len(header) - 2, len(header) - 1
        shrink = [(preview, 30), (0, short_id), (accounts, 12), (preview, 8)]
        _table(rows, header, usage.columns(), shrink, exact=0)
    for item, v in zip(items, views, strict=True):
        if v["error"] and item.state in ("scheduled", "failed", "new"):
            note(f"{item.id}: {v['error']}")


@cli.command()
@_id_argument(None)
@format_option
@pass_state
def show(state: State, post_id: str, fmt: str) -> None:
    """Show one post in full, with its state and results or error."""
    core = state.core
    item = core.find(post_id)
    v = core.view(item)
    post = item.post
    v["text"] = "\n\n---\n\n".join(post.parts) if post else None
    v["parts"] = list(post.parts) if post else []
    if fmt == "json":
        emit_json(v)
        return
    click.echo(f"id:        {v['id']}")
    click.echo(f"state:     {v['state']}")
    click.echo(f"path:      {core.spool.root / v['path']}")
    if item.due:
        # Only what is still to be sent is "in 2h" or "due now"; a sent post was due.
        until = f" ({_until(core, item.due)})" if item.state in ("new", "scheduled") else ""
        click.echo(f"when:      {_echo_time(core, item.due)}{until}")
    click.echo(f"accounts:  {', '.join(v['platforms'])}")
    click.echo(f"attempts:  {v['attempts']}")
    for account, r in v["results"].items():
        click.echo(f"sent:      {account}: {r.get('url') or r.get('id') or '(no id)'}")
    if v["retry_at"]:
        click.echo(f"retry at:  {v['retry_at']}")
    if v["error"]:
        click.echo(f"error:     {v['error']}")
    if post:
        for n, part in enumerate(post.parts, 1):
            click.echo("")
            if len(post.parts) > 1:
                click.echo(f"--- part {n}/{len(post.parts)}")
            click.echo(part)


# -- queue changes ---------------------------------------------------------------------------


def _report(core: Any, items: list[Any], fmt: str, verb: str) -> None:
    """What a queue change did: the IDs (or JSON) on stdout, what became of each on stderr."""
    if fmt == "json":
        emit_json([core.view(i) for i in items])
    for i in items:
        if fmt != "json":
            click.echo(i.id)
        _echo_due(core, i, verb, fmt)


def _echo_due(core: Any, item: Any, verb: str, fmt: str) -> None:
    """On stderr: when a queued post is due, in local time and UTC, whatever the format (with
    JSON, after its ID: stdout has no line of its own for it); in text, else its new state."""
    if item.due and item.state == "scheduled":
        named = f"{item.id}: " if fmt == "json" else ""
        note(f"{named}{verb} for {_echo_time(core, item.due)}")
    elif fmt != "json":
        note(f"{verb}: now in {item.state}/")


CANCEL_STATES = ("scheduled", "new")


@cli.command()
@_id_argument(CANCEL_STATES, many=True)
@click.option("--all", "all_", is_flag=True, help="Cancel every queued post.")
@click.option("--force", is_flag=True, help="With --all, do not ask.")
@format_option
@pass_state
def cancel(state: State, ids: tuple[str, ...], all_: bool, force: bool, fmt: str) -> None:
    """Take posts out of the queue into drafts/ (delete them there if you wish)."""
    core = state.core
    if all_ == bool(ids):
        raise UsageError(
            "give post IDs or --all, not both and not neither",
            "plurspool cancel ID... | --all [--force]",
        )
    if all_:
        items = core.items(["scheduled"])
        if not items:
            note("the queue is empty")
            return
        if not force:
            if not sys.stdin.isatty():
                raise UsageError(
                    f"refusing to cancel all {len(items)} queued posts without a terminal to ask",
                    "add --force",
                )
            if not click.confirm(f"Move all {len(items)} queued posts to drafts/?", err=True):
                sys.exit(EXIT_FAILURE)
    else:
        items = _resolve_ids(core, ids, CANCEL_STATES)
    done = [core.cancel(i) for i in items]
    _report(core, done, fmt, "cancelled")


class WhenCommand(click.Command):
    """A command whose WHEN may start with `-`: `reschedule ID -2h` is a time, not `-2 -h`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        # A leading space keeps click from reading `-2h` as short options (and -h as --help).
        marked = [
            f" {a}" if n < end and len(a) > 1 and a[0] == "-" and a[1].isdigit() else a
            for n, a in enumerate(args)
        ]
        return super().parse_args(ctx, marked)


def _when_text(words: tuple[str, ...]) -> str:
    return " ".join(w.strip() for w in words)


def _when_args(f: F) -> F:
    return click.argument(
        "when_words", nargs=-1, required=True, type=click.UNPROCESSED, metavar="WHEN"
    )(f)


RESCHEDULE_STATES = ("scheduled", "drafts")


@cli.command(cls=WhenCommand, context_settings={"ignore_unknown_options": True})
@_id_argument(RESCHEDULE_STATES)
@_when_args
@format_option
@pass_state
def reschedule(state: State, post_id: str, when_words: tuple[str, ...], fmt: str) -> None:
    """Change a post's send time; +1h or -30m move it relative to its current time."""
    core = state.core
    item = core.find(post_id, RESCHEDULE_STATES)
    done, _ = core.reschedule(item, _when_text(when_words))
    _report(core, [done], fmt, "rescheduled")


SCHEDULE_STATES = ("drafts",)


@cli.command(cls=WhenCommand, context_settings={"ignore_unknown_options": True})
@_id_argument(SCHEDULE_STATES)
@_when_args
@format_option
@pass_state
def schedule(state: State, post_id: str, when_words: tuple[str, ...], fmt: str) -> None:
    """Move a draft into the queue at WHEN."""
    core = state.core
    item = core.find(post_id, SCHEDULE_STATES)
    done, _ = core.schedule(item, _when_text(when_words))
    _report(core, [done], fmt, "queued")


NOW_STATES = ("scheduled",)


@cli.command()
@_id_argument(NOW_STATES)
@format_option
@pass_state
def now(state: State, post_id: str, fmt: str) -> None:
    """Make a post due now: a running daemon sends it; else it is sent here. Never both."""
    core = state.core
    item = core.find(post_id, NOW_STATES)
    item = core.make_due(item)
    if core.daemon_running():
        if fmt == "json":
            emit_json(core.view(item))
        else:
            click.echo(item.id)
            note("due now: the running daemon sends it")
        return
    _send_foreground(state, item.id, fmt)


RETRY_STATES = ("failed",)


@cli.command()
@_id_argument(RETRY_STATES, many=True)
@click.option("--all", "all_", is_flag=True, help="Retry every failed post.")
@click.option("-s", "--schedule", metavar="WHEN", help="Queue them for WHEN instead of now.")
@format_option
@pass_state
def retry(state: State, ids: tuple[str, ...], all_: bool, schedule: str | None, fmt: str) -> None:
    """Move failed posts back to the queue, due now; accounts that succeeded are not resent."""
    core = state.core
    if all_ == bool(ids):
        raise UsageError("give post IDs or --all", "plurspool retry ID... | --all [-s WHEN]")
    items = core.items(RETRY_STATES) if all_ else _resolve_ids(core, ids, RETRY_STATES)
    done = []
    problems = []
    for item in items:
        try:
            done.append(core.retry(item, schedule))
        except TimeError:
            raise  # the same for every post: nothing was changed
        except InvalidInput as exc:
            if not all_:
                raise
            problems.append(exc.message)
    _report(core, done, fmt, "queued again")
    for p in problems:
        note(f"plurspool: {p}")
    if problems:
        sys.exit(EXIT_INVALID)


# -- stats / check ---------------------------------------------------------------------------


@cli.command()
@format_option
@pass_state
def stats(state: State, fmt: str) -> None:
    """Totals by state and account, what is due when, the next posts, and a chart by day."""
    core = state.core
    data = core.stats()
    if fmt == "json":
        emit_json(data)
        return
    click.echo(
        f"{data['total']} posts: " + ", ".join(f"{n} {s}" for s, n in data["by_state"].items())
    )
    if data["by_platform"]:
        click.echo(
            "queued by account: "
            + ", ".join(f"{a} {n}" for a, n in sorted(data["by_platform"].items()))
        )
    b = data["buckets"]
    click.echo(
        f"due: {b['next_hour']} in the next hour, {b['today']} later today, "
        f"{b['this_week']} this week, {b['later']} later"
    )
    if data["next"]:
        click.echo("\nnext:")
        for v in data["next"]:
            due = datetime.fromisoformat(v["scheduled_at"]) if v["scheduled_at"] else None
            click.echo(f"  {_local(core, due):22} {_until(core, due):12} {v['id']}  {v['preview']}")
    days = data["days"]
    top = max((d["count"] for d in days), default=0)
    if top:
        click.echo("\nthe coming weeks:")
        width = 40
        for d in days:
            day = datetime.fromisoformat(d["date"])
            bar = "█" * max(1 if d["count"] else 0, round(d["count"] * width / top))
            click.echo(f"  {day:%a %m-%d} {bar} {d['count'] or ''}".rstrip())


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@format_option
@pass_state
def check(state: State, paths: tuple[str, ...], fmt: str) -> None:
    """Validate posts; default new/, drafts/ and scheduled/. Changes nothing; exit 3 on problems."""
    from pathlib import Path

    from .checks import check_paths

    reports = check_paths(state.core, [Path(p) for p in paths])
    bad = [r for r in reports if r["problems"]]
    if fmt == "json":
        emit_json(reports)
    else:
        for r in reports:
            for p in r["problems"]:
                click.echo(f"{r['path']}: {p}")
            for w in r["warnings"]:
                click.echo(f"{r['path']}: warning: {w}")
        note(f"{len(reports)} checked, {len(bad)} with problems")
    if bad:
        sys.exit(EXIT_INVALID)


# -- the daemon ------------------------------------------------------------------------------


@cli.command()
@click.option("--once", is_flag=True, help="One pass (intake, send what is due), then exit.")
@click.option(
    "--poll-interval",
    metavar="DUR",
    help="Poll this often when inotify is unavailable (overrides the config).",
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@pass_state
def send(state: State, once: bool, poll_interval: str | None, log_format: str) -> None:
    """The daemon: send posts when they are due (or one pass with --once)."""
    from .daemon import Daemon
    from .log import Log
    from .when import parse_duration

    poll = parse_duration(poll_interval).total_seconds() if poll_interval else None
    daemon = Daemon(state.load_config, Log(log_format, verbose=state.verbose), poll_interval=poll)
    if once:
        result = daemon.once()
        note(
            f"{len(result.queued)} taken in, {len(result.sent)} sent, "
            f"{len(result.failed)} failed, {len(result.deferred)} deferred"
        )
        return
    daemon.run()


@cli.group()
def daemon() -> None:
    """Manage the background daemon (systemd user unit, or a detached process).

    stop, status, logs and health work while the config cannot be loaded: they warn and find
    the daemon from the state directory. restart then refuses, so the daemon is not lost.
    """


def _service(state: State, core: Any = None) -> Any:
    """The daemon's service, for `core` (default: the one of the config)."""
    from pathlib import Path

    from .service import Service

    args = []
    if state.spool_opt:
        args += ["--spool", str(Path(state.spool_opt).resolve())]
    if state.config_opt:
        args += ["--config", str(Path(state.config_opt).resolve())]
    return Service(core if core is not None else state.core, args)


@daemon.command()
@pass_state
def install(state: State) -> None:
    """Install and start the systemd user unit (where a user manager runs)."""
    note(_service(state).install())


@daemon.command()
@pass_state
def uninstall(state: State) -> None:
    """Stop and remove the systemd user unit."""
    note(_service(state).uninstall())


@daemon.command()
@pass_state
def start(state: State) -> None:
    """Start the daemon (systemd unit, or detached with a pidfile)."""
    note(_service(state).start())


@daemon.command()
@pass_state
def stop(state: State) -> None:
    """Stop the daemon; sends in flight finish first. Works while the config is broken."""
    note(_service(state, state.daemon_core()).stop())


@daemon.command()
@pass_state
def restart(state: State) -> None:
    """Stop, then start the daemon; refused, stopping nothing, while the config is broken."""
    try:
        core = state.core
    except ConfigError as exc:
        raise ConfigError(
            f"{exc.message}; nothing was stopped: the daemon keeps running with its old config",
            exc.hint or "fix the config, then restart",
        ) from None
    note(_service(state, core).restart())


@daemon.command()
@format_option
@pass_state
def status(state: State, fmt: str) -> None:
    """Say how the daemon runs (systemd or pidfile), whether it runs, and its heartbeat."""
    st = _service(state, state.daemon_core()).status()
    if fmt == "json":
        emit_json(st.as_dict())
    else:
        click.echo(f"mode:    {st.mode}")
        click.echo(
            f"running: {'yes' if st.running else 'no'}{f' (pid {st.pid})' if st.pid else ''}"
        )
        click.echo(f"health:  {'ok' if st.healthy else 'not ok'}: {st.detail}")
    if not st.running:
        sys.exit(EXIT_FAILURE)


@daemon.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines to show.")
@pass_state
def logs(state: State, follow: bool, lines: int) -> None:
    """Show the daemon's log (journalctl in systemd mode)."""
    for line in _service(state, state.daemon_core()).logs(follow, lines):
        click.echo(line, nl=False)


@daemon.command()
@format_option
@pass_state
def health(state: State, fmt: str) -> None:
    """Exit 0 only if the daemon runs and its heartbeat is fresh."""
    from .daemon import health as check_health

    ok, why = check_health(state.daemon_core())
    if fmt == "json":
        emit_json({"healthy": ok, "detail": why})
    else:
        click.echo(("healthy: " if ok else "unhealthy: ") + why)
    if not ok:
        sys.exit(EXIT_FAILURE)


# -- accounts --------------------------------------------------------------------------------


@cli.group(invoke_without_command=True)
@format_option
@click.pass_context
def accounts(ctx: click.Context, fmt: str) -> None:
    """List the configured accounts."""
    if ctx.invoked_subcommand is not None:
        return
    state: State = ctx.obj
    config = state.load_config()
    rows = []
    for name, acc in sorted(config.accounts.items()):
        rows.append(
            {"name": name, "platform": acc.platform, "default": name in config.default_platforms}
        )
    if fmt == "json":
        emit_json(rows)
        return
    _table(
        [[r["name"], r["platform"], "yes" if r["default"] else ""] for r in rows],
        ["ACCOUNT", "PLATFORM", "DEFAULT"],
    )


@accounts.command("test")
@click.argument("names", nargs=-1, metavar="[ACCOUNT]...")
@format_option
@pass_state
def accounts_test(state: State, names: tuple[str, ...], fmt: str) -> None:
    """Log in to accounts and report who you are there; sends nothing."""
    from .platforms import get

    config = state.load_config()
    chosen = [config.account(n) for n in names] or list(config.accounts.values())
    reports = []
    failed = False
    for account in chosen:
        try:
            info = get(account.platform).test(account, config.state_dir)
            reports.append({"account": account.name, "ok": True, **info})
        except PlurspoolError as exc:
            failed = True
            reports.append(
                {"account": account.name, "ok": False, "error": exc.message, "hint": exc.hint}
            )
    if fmt == "json":
        emit_json(reports)
    else:
        for r in reports:
            if r["ok"]:
                extra = ", ".join(
                    f"{k}={v}" for k, v in r.items() if k not in ("account", "ok", "platform")
                )
                click.echo(f"{r['account']}: ok ({extra})" if extra else f"{r['account']}: ok")
            else:
                click.echo(f"{r['account']}: FAILED: {r['error']}")
                if r["hint"]:
                    click.echo(f"  hint: {r['hint']}")
    if failed:
        sys.exit(EXIT_FAILURE)


# The summaries `plurspool --help` shows (usage.py prints the same without importing click).
for _name, _command in cli.commands.items():
    _command.short_help = usage.COMMANDS[_name]


# -- aliases ---------------------------------------------------------------------------------


class Alias(click.Command):
    """`plur-post`, `plur-send`: one command as a program, with the global options too."""

    def __init__(self, name: str, command: click.Command) -> None:
        def callback(spool: str | None, config: str | None, verbose: bool, **params: Any) -> Any:
            click.get_current_context().obj = State(spool, config, verbose)
            assert command.callback is not None
            return command.callback(**params)

        super().__init__(
            name,
            callback=callback,
            params=[*command.params, *cli.params],
            help=command.help,
            epilog=f"{name} is `plurspool {command.name}`; see plurspool(1).",
            context_settings=cli.context_settings,
        )

    def invoke(self, ctx: click.Context) -> Any:
        return _guarded(super().invoke, ctx)


plur_post_cli = Alias("plur-post", post)
plur_send_cli = Alias("plur-send", send)
queue_cli = Cli(
    "plur-queue",
    commands={name: cli.commands[name] for name in QUEUE_COMMANDS},
    params=cli.params,
    callback=cli.callback,
    help="The queue commands of plurspool: `plur-queue COMMAND` is `plurspool COMMAND`. "
    "Without a command: list. See plurspool(1).",
    context_settings=cli.context_settings,
)


def main() -> None:
    cli(prog_name="plurspool")


def plur_post() -> None:
    """`plur-post ARGS` is `plurspool post ARGS`."""
    plur_post_cli(prog_name="plur-post")


def plur_send() -> None:
    """`plur-send ARGS` is `plurspool send ARGS`."""
    plur_send_cli(prog_name="plur-send")


def plur_queue() -> None:
    """`plur-queue CMD ARGS` is `plurspool CMD ARGS` for the queue commands."""
    args = sys.argv[1:]
    # Global options may come first; the first other word must be a queue command.
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("--spool", "--config") else 1
    if i < len(args) and args[i] not in QUEUE_COMMANDS:
        fail(
            f"plur-queue has no command {args[i]!r}", f"use one of: {', '.join(QUEUE_COMMANDS)}", 2
        )
    if i >= len(args):
        args = [*args, "list"]
    queue_cli(args=args, prog_name="plur-queue")
