"""The typed context every command gets: global options, the output, the app on first use."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from ..errors import PlurspoolError
from .output import OUTPUTS, Output, TextOutput

if TYPE_CHECKING:
    from pathlib import Path

    from click.shell_completion import CompletionItem

    from ..app import App
    from ..config import Config

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    """The global options, the output --format chose, and the config and app loaded once."""

    def __init__(self, spool: str | None, config: str | None, verbose: bool) -> None:
        self.spool_opt = spool
        self.config_opt = config
        self.verbose = verbose
        self.out: Output = TextOutput()  # commands without --format print text
        self._app: App | None = None
        self._ensured = False

    @property
    def config_file(self) -> Path:
        """The config file: --config, $PLURSPOOL_CONFIG or the default (see plurspool-config(5))."""
        from pathlib import Path

        from ..config import config_file

        # The same function `load` reads it with: `--config=~/x` is under $HOME for both.
        return config_file(Path(self.config_opt) if self.config_opt else None, os.environ)

    def load_config(self) -> Config:
        from pathlib import Path

        from ..config import load

        return load(Path(self.config_opt) if self.config_opt else None, spool=self.spool_opt)

    @property
    def app(self) -> App:
        """The app of the configured spool; the spool is created on first use."""
        app = self.host_app
        if not self._ensured:
            app.spool.ensure()
            self._ensured = True
        return app

    @property
    def host_app(self) -> App:
        """The app, its spool as it is: for what only looks at this host's state (`daemon
        health` must not make an empty spool where a fresh clone is about to go)."""
        if self._app is None:
            from ..app import App

            self._app = App(self.load_config())
        return self._app


pass_context = click.make_pass_decorator(Context)


def format_option(f: F) -> F:
    """--format text|json and --json: the command's output, chosen here, once, as `ctx.out`."""

    @functools.wraps(f)
    def chosen(*args: Any, fmt: str, **kwargs: Any) -> Any:
        context = click.get_current_context().find_object(Context)
        assert context is not None  # set by the group (or an alias) before any command runs
        context.out = OUTPUTS[fmt]()
        return f(*args, **kwargs)

    decorated = click.option("--json", "fmt", flag_value="json", help="Same as --format json.")(
        chosen
    )
    decorated = click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Output format.",
    )(decorated)
    return cast(F, decorated)


def id_argument(states: tuple[str, ...] | None, many: bool = False) -> Callable[[F], F]:
    """The ID argument(s) of a command that finds posts in `states` (None: all of them);
    the shell completes them from the names of the posts there."""

    def complete(
        ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        # A directory listing: no post is read, and nothing heavy is imported.
        from click.shell_completion import CompletionItem

        from ..spool import STATES, Spool, classify

        given = ctx.find_root().params  # the group's callback does not run while completing
        try:
            config = Context(given.get("spool"), given.get("config"), False).load_config()
        except PlurspoolError:
            return []
        spool = Spool(config.spool)
        already = ctx.params.get(param.name or "") if many else None  # ID... given so far
        found: list[CompletionItem] = []
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
