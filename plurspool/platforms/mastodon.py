"""The `mastodon` platform: statuses with CW, visibility, language, media with alt text, threads.

Requests go through Mastodon.py (imported only when a send, check or test needs it), in
`mastodon_api`, which also reads every answer and caches the instance's limits.

Sending a post once: each thread part carries the Idempotency-Key `<job key>-<part index>`, the
same on every retry. Progress is saved with `job.save` before and after each part: the statuses
already posted, and the part whose request may have reached the server with the time it was first
sent. The job key is the post's own (`hosts.idempotency_key`), so another host sending the same
post uses the same keys. Mastodon remembers a key for one hour; a part first sent longer ago than
that is looked up in the account's recent statuses (same parent, same CW, same source text) before
it is sent again, and so is a part this host first sends more than an hour after the post's time
(another host may have sent it; not found among 200 statuses, it is sent). That record covers a
crash (`job.in_doubt`) and a timeout or 5xx alike; a 4xx answer (429 included) clears it, since
nothing was created. Media are attached to the first part of a thread; uploads are reused by a
retry within the hour. A repost is a reblog (`mastodon_api.reblog`).
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from ..config import Account, secret_env_var
from ..errors import ConfigError
from ..paths import state_dir as default_state_dir
from ..post import Poll, Post
from ..split import NoFixedPoint, Unbreakable, graphemes
from ..when import duration
from . import fit
from .base import DeleteJob, Issue, Job, Outcome
from .mastodon_api import (
    MIB,
    URL_LENGTH,
    Client,
    Limits,
    Refused,
    delete_thread,
    find_status,
    limits_from_instance,
    local_status,
    media_processing,
    read_cached_limits,
    reblog,
    search_status,
    status_ref,
    write_cached_limits,
)
from .mastodon_api import (
    instance_of as _instance,
)
from .mastodon_api import (
    token_of as _token,
)
from .media import media_error, read_media

# Mastodon keeps an Idempotency-Key for 3600 s; past this age a resend is not deduplicated.
KEY_TRUST = 55 * 60.0
# Slack for clock skew between this host and the server when matching statuses by time.
CLOCK_SLACK = 600.0
REQUEST_TIMEOUT = 30.0
MEDIA_WAIT = 120.0  # at most this long for an upload to be processed (video)
CACHE_MAX_AGE = 86400.0  # the instance's limits are read again after a day (on a send)
VISIBILITY = {
    "public": "public",
    "unlisted": "unlisted",
    "followers": "private",
    "direct": "direct",
}


# How Mastodon shortens a remote mention for counting: `@user@domain` counts as `@user`.
_REMOTE_MENTION = re.compile(r"(^|[^/\w])@(([a-z0-9_]+)@[a-z0-9.\-]+[a-z0-9]+)", re.IGNORECASE)


def status_length(text: str, cw: str | None = None, url_length: int = URL_LENGTH) -> int:
    """Characters as Mastodon counts a status: graphemes of the text and the CW, each http(s)
    URL as `url_length` (the instance's characters_reserved_per_url), @user@domain as @user."""
    countable = text
    if "://" in text:
        # Mastodon.py's port of the URL pattern Mastodon counts with (twitter-text's).
        from mastodon._url_regex import url_regex

        countable = url_regex.sub(lambda m: m.group(2) + "x" * url_length, countable)
    if "@" in countable:
        countable = _REMOTE_MENTION.sub(r"\1@\3", countable)
    return graphemes(countable) + (graphemes(cw) if cw else 0)


@dataclass(frozen=True)
class StatusMeasure:
    """A status as `account`'s instance counts it (`split.Measure`), its CW included."""

    limit: int
    url_length: int
    cw: str | None

    def count(self, text: str) -> int:
        return status_length(text, self.cw, self.url_length)

    def fits(self, text: str) -> bool:
        return self.count(text) <= self.limit


def limits_for(account: Account, state_dir: Path) -> Limits:
    """The instance's limits as cached in `state_dir`, else Mastodon's defaults."""
    cached = read_cached_limits(state_dir, _instance(account))
    return cached[0] if cached else Limits()


def measure_with(post: Post, account: Account, limits: Limits) -> StatusMeasure:
    return StatusMeasure(
        limits.max_characters,
        limits.characters_reserved_per_url,
        post.field_for(account.name, "cw"),
    )


# --- the platform ---------------------------------------------------------------------------


def open_client(account: Account, clock: Callable[[], float] = time.time) -> Client:
    """A client of the account's instance with its token (`import mastodon-scheduled`)."""
    token = _token(account)
    return Client(
        _instance(account), token, timeout=REQUEST_TIMEOUT, account=account.name, clock=clock
    )


def _read_media(spool_root: Path, relpath: str) -> bytes:
    """A media file's bytes: a regular file inside the spool, reached through no symlink."""
    try:
        return read_media(spool_root, relpath)
    except OSError as exc:
        raise Refused(Outcome("permanent", error=media_error(relpath, exc))) from None


def _media_kind(relpath: str) -> str | None:
    mime = mimetypes.guess_type(relpath)[0]
    return mime if mime and mime.split("/")[0] in ("image", "video", "audio") else None


def with_link(text: str, url: str) -> str:
    """A part with the quoted post's URL on a line of its own at the end."""
    return f"{text}\n\n{url}"


def _poll_issues(poll: Poll, limits: Limits, instance: str, media: bool) -> list[Issue]:
    """What keeps `poll` from the instance: its configuration.polls, Mastodon's defaults while
    unknown (plurspool(5), `poll`)."""
    import regex  # type: ignore[import-untyped]

    whose = f"{instance} allows" if limits.known else "Mastodon allows (by default)"
    out: list[Issue] = []
    if len(poll.options) > limits.poll_options:
        out.append(
            Issue(
                "error",
                f"line {poll.line}: `poll.options` has {len(poll.options)} choices; "
                f"{whose} {limits.poll_options}",
            )
        )
    for number, (option, line) in enumerate(zip(poll.options, poll.option_lines, strict=True), 1):
        n = len(regex.findall(r"\X", option))  # Mastodon counts an option's graphemes
        if n > limits.poll_option_chars:
            out.append(
                Issue(
                    "error",
                    f"line {line}: option {number} of `poll.options` is {n} characters; "
                    f"{whose} {limits.poll_option_chars}",
                )
            )
    low, high = limits.poll_min_expiration, limits.poll_max_expiration
    if not low <= poll.seconds <= high:
        out.append(
            Issue(
                "error",
                f"line {poll.expires_line}: `poll.expires` is {duration(poll.seconds)}; "
                f"{whose} {duration(low, coarse=True)} to {duration(high, coarse=True)}",
            )
        )
    if media:
        out.append(
            Issue("error", f"line {poll.line}: a Mastodon status carries media or a poll, not both")
        )
    return out


class MastodonPlatform:
    """The platform object; `clock` and `sleep` are replaceable for tests."""

    material_first = True  # see base.Platform
    polls = True

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clock = clock
        self.sleep = sleep

    # -- check ---------------------------------------------------------------------------

    def measure(self, post: Post, account: Account, state_dir: Path) -> StatusMeasure:
        return measure_with(post, account, limits_for(account, state_dir))

    def check(self, post: Post, account: Account, spool_root: Path) -> list[Issue]:
        instance = _instance(account)
        limits = limits_for(account, default_state_dir(os.environ))
        cw = post.field_for(account.name, "cw")
        measure = measure_with(post, account, limits)
        parts = None
        if post.quote is not None and post.quote.target(account.name) and not limits.quotes:
            # Without the quote API the URL goes at the end of the first part, and Mastodon
            # counts any URL as the same number of characters, whatever it is.
            written = list(post.parts_for(account.name))
            written[0] = with_link(written[0], "https://example.com/")
            parts = tuple(written)

        def describe(where: str, text: str) -> str:
            n = measure.count(text)
            counted = " with the content warning" if cw else ""
            if limits.known:
                limit = f"{instance} allows {limits.max_characters}"
            else:
                limit = (
                    f"the limit is {limits.max_characters} until {instance}'s own is known "
                    f"(`plurspool accounts test {account.name}` reads it)"
                )
            return f"{where} is {n} characters{counted}; {limit}"

        # An assumed limit must not fail a post the instance may well accept: it warns, and
        # the instance's own answer decides at send time.
        level: Literal["error", "warning"] = "error" if limits.known else "warning"
        issues = fit.issues(post, account, measure, describe, level=level, parts=parts)
        if len(post.media) > limits.max_media:
            issues.append(
                Issue(
                    "error",
                    f"{len(post.media)} media files; {instance} takes {limits.max_media} "
                    "per status",
                )
            )
        if post.poll is not None:
            issues += _poll_issues(post.poll, limits, instance, bool(post.media))
        for m in post.media:
            kind = _media_kind(m.path)
            if kind is None:
                issues.append(
                    Issue("error", f"media file {m.path}: not an image, video or audio file")
                )
            else:
                try:
                    size = os.stat(spool_root / m.path).st_size
                except OSError:
                    size = 0  # a missing file is reported by the post checks
                cap = limits.image_size if kind.startswith("image/") else limits.video_size
                if size > cap:
                    issues.append(
                        Issue(
                            "error",
                            f"media file {m.path} is {size / MIB:.1f} MiB; the limit for "
                            f"{kind.split('/')[0]} is {cap / MIB:.0f} MiB",
                        )
                    )
            if not m.alt:
                issues.append(Issue("warning", f"media file {m.path} has no alt text"))
            elif len(m.alt) > limits.description_limit:
                issues.append(
                    Issue(
                        "error",
                        f"alt text of {m.path} is {len(m.alt)} characters; the limit is "
                        f"{limits.description_limit}",
                    )
                )
        return issues

    # -- test ----------------------------------------------------------------------------

    def test(self, account: Account, state_dir: Path) -> dict[str, Any]:
        instance = _instance(account)
        token = _token(account)
        client = Client(
            instance, token, timeout=REQUEST_TIMEOUT, account=account.name, clock=self.clock
        )
        try:
            try:
                _, me = client.call("account_verify_credentials")
            except Refused as refused:
                error = refused.outcome.error or "failed"
                hint = (
                    f"check token_cmd or token_file in [accounts.{account.name}] (or "
                    f"{secret_env_var(account.name, 'token')}): it must give an access token "
                    f"for {instance} with the write:statuses and write:media scopes"
                    if refused.code in (401, 403)
                    else f"check `instance` in [accounts.{account.name}] and the network"
                )
                raise ConfigError(f"account {account.name}: {instance}: {error}", hint) from None
            limits = self._fetch_limits(client, state_dir, instance)
        finally:
            client.close()
        return {
            "platform": "mastodon",
            "instance": instance,
            "acct": me.get("acct") if isinstance(me, Mapping) else None,
            "url": me.get("url") if isinstance(me, Mapping) else None,
            "max_characters": limits.max_characters,
            "max_media": limits.max_media,
            "limits_known": limits.known,
        }

    def _fetch_limits(self, client: Client, state_dir: Path, instance: str) -> Limits:
        """Read the instance's limits (v2, else v1) and cache them; defaults on failure."""
        limits = Limits()
        for method in ("instance_v2", "instance_v1"):
            try:
                _, data = client.call(method)
            except Refused:
                continue
            if method == "instance_v2":
                limits = limits_from_instance(v2=data)
            else:
                limits = limits_from_instance(v1=data)
            if limits.known:
                with contextlib.suppress(OSError):
                    write_cached_limits(state_dir, instance, limits, self.clock())
                break
        return limits

    # -- send ----------------------------------------------------------------------------

    def send(self, job: Job) -> Outcome:
        try:
            token = _token(job.account)
        except ConfigError as exc:
            return Outcome("permanent", error=exc.message + (f"; {exc.hint}" if exc.hint else ""))
        timeout = max(1.0, min(REQUEST_TIMEOUT, job.deadline()))
        instance = _instance(job.account)
        client = Client(
            instance,
            token,
            timeout=timeout,
            account=job.account.name,
            clock=self.clock,
            deadline=job.deadline,
        )
        try:
            cached = read_cached_limits(job.state_dir, instance)
            if cached is None or self.clock() - cached[1] > CACHE_MAX_AGE:
                self._fetch_limits(client, job.state_dir, instance)
            sent = reblog(job, client, instance) if job.repost else self._send_parts(job, client)
            return replace(sent, hold=client.hold)
        except Refused as refused:
            o = refused.outcome
            return Outcome(
                o.status,
                error=client.redact(o.error or ""),
                retry_after=o.retry_after,
                hold=client.hold,
            )
        finally:
            client.close()

    def delete(self, job: DeleteJob) -> Outcome:
        """Delete the account's thread (`mastodon_api.delete_thread`; plurspool(5), `expires`)."""
        return delete_thread(job, _instance(job.account), lambda: _token(job.account), self.clock)

    def _quote(self, job: Job, client: Client, material: dict[str, Any]) -> dict[str, str]:
        """How this post quotes, decided once and saved: {"id": status} through the quote
        API where the instance has it and the status is found, else {"link": URL} appended."""
        saved = material.get("quote")
        if isinstance(saved, dict):
            return {str(k): str(v) for k, v in saved.items()}
        assert job.quote is not None
        instance = _instance(job.account)
        cached = read_cached_limits(job.state_dir, instance)
        status_id = None
        # A status carries a quote, or media or a poll: with those, the quote is a link.
        alone = not job.post.media and job.post.poll is None
        if cached is not None and cached[0].quotes and alone:
            status_id = job.quote.id or local_status(instance, job.quote.url)
            if status_id is None and job.quote.url:
                status_id = search_status(client, job.quote.url)
        if status_id is not None:
            plan = {"id": status_id}
        elif job.quote.url:
            plan = {"link": job.quote.url}
        else:
            raise Refused(
                Outcome("permanent", error="the quoted post has no URL recorded to link to")
            )
        material["quote"] = plan
        return plan

    def _send_parts(self, job: Job, client: Client) -> Outcome:
        material = dict(job.material)
        done: list[dict[str, Any]] = list(material.get("parts", []))
        quote = self._quote(job, client, material) if job.quote is not None else {}
        written = list(job.post.parts_for(job.account.name))
        if "link" in quote:
            written[0] = with_link(written[0], quote["link"])
        # The limits the thread was split with are saved with the first part, and a retry
        # splits with them again: a limit read anew meanwhile must not move its breaks.
        saved = material.get("split_limits")
        if isinstance(saved, dict):
            limits = Limits(
                max_characters=int(saved["max_characters"]),
                characters_reserved_per_url=int(saved["characters_reserved_per_url"]),
            )
        else:
            limits = limits_for(job.account, job.state_dir)
        material["split_limits"] = {
            "max_characters": limits.max_characters,
            "characters_reserved_per_url": limits.characters_reserved_per_url,
        }
        try:
            measure = measure_with(job.post, job.account, limits)
            parts = fit.thread(job.post, job.account, measure, written).texts
        except (Unbreakable, NoFixedPoint) as exc:
            if limits.known:
                return Outcome("permanent", error=f"cannot split the thread to fit: {exc}")
            # An assumed limit must not fail a post the instance may well take (as in `check`):
            # the parts go as written, and the instance's own answer decides.
            parts = tuple(written)
        for index in range(len(done), len(parts)):
            if index > 0 and job.deadline() <= 0:
                return Outcome(
                    "temporary", error=f"stopped after part {index} of {len(parts)}; will go on"
                )
            parent = done[-1]["id"] if done else None
            pending = material.get("pending")
            if isinstance(pending, dict) and pending.get("part") == index:
                if self.clock() - float(pending.get("since", 0)) > KEY_TRUST:
                    cw = job.post.field_for(job.account.name, "cw")
                    since = float(pending.get("since", 0)) - CLOCK_SLACK
                    found = find_status(client, parts[index], cw, parent, since, part=index)
                    if found is not None:
                        done.append({"id": found[0], "url": found[1]})
                        material.update(parts=done, pending=None)
                        job.save(material)
                        continue
                    pending = None
            else:
                pending = None
                found = self._posted_elsewhere(job, client, parts[index], parent, material)
                if found is not None:
                    done.append({"id": found[0], "url": found[1]})
                    material.update(parts=done, elsewhere=True)
                    job.save(material)
                    continue
            if pending is None:
                material["pending"] = {"part": index, "since": self.clock()}
            material["parts"] = done
            job.save(material)  # before the request: a crash now leaves this part in doubt
            media_ids = self._upload_media(job, client, material) if index == 0 else []
            try:
                args = self._status_args(job, parts[index], parent, media_ids, index)
                if index == 0 and "id" in quote:
                    args["quoted_status_id"] = quote["id"]
                _, data = client.call("status_post", **args)
            except Refused as refused:
                if refused.created_nothing:  # nothing is in doubt any more
                    material["pending"] = None
                    job.save(material)
                raise
            status_id, url = status_ref(data)
            done.append({"id": status_id, "url": url})
            material.update(parts=done, pending=None)
            job.save(material)
        if not done:
            return Outcome("permanent", error="the post has no text to send")
        return Outcome("sent", remote_id=str(done[0]["id"]), url=done[0].get("url"))

    def _status_args(
        self, job: Job, text: str, parent: str | None, media_ids: list[str], index: int
    ) -> dict[str, Any]:
        post, name = job.post, job.account.name
        args: dict[str, Any] = {
            "status": text,
            "idempotency_key": f"{job.idempotency_key}-{index}",
            "sensitive": post.field_for(name, "sensitive"),  # None: not sent
        }
        if parent is not None:
            args["in_reply_to_id"] = parent
        if media_ids:
            args["media_ids"] = media_ids
        poll = post.poll
        if poll is not None and index == 0:
            args["poll"] = {
                "options": list(poll.options),
                "expires_in": poll.seconds,
                "multiple": bool(poll.multiple),
                "hide_totals": bool(poll.hide_totals),
            }
        cw = post.field_for(name, "cw")
        if cw:
            args["spoiler_text"] = cw
        visibility = post.field_for(name, "visibility")
        if visibility:
            args["visibility"] = VISIBILITY[visibility]
        language = post.field_for(name, "language")
        if language:
            args["language"] = language
        return args

    def _upload_media(self, job: Job, client: Client, material: dict[str, Any]) -> list[str]:
        """Upload the post's media (or reuse this hour's uploads) and wait until processed."""
        media = job.post.media
        if not media:
            return []
        saved = material.get("media")
        if (
            isinstance(saved, dict)
            and len(saved.get("ids", [])) == len(media)
            and self.clock() - float(saved.get("at", 0)) < KEY_TRUST
        ):
            ids = [str(i) for i in saved["ids"]]
        else:
            ids = []
            for m in media:
                kind = _media_kind(m.path)
                if kind is None:
                    raise Refused(
                        Outcome(
                            "permanent",
                            error=f"media file {m.path}: not an image, video or audio file",
                        )
                    )
                data = _read_media(job.spool_root, m.path)
                try:
                    code, answer_ = client.call(
                        "media_post",
                        data,
                        mime_type=kind,
                        description=m.alt,
                        file_name=Path(m.path).name,
                    )
                except Refused as refused:
                    o = refused.outcome
                    error = f"media {m.path}: {o.error}"
                    raise Refused(
                        Outcome(o.status, error=error, retry_after=o.retry_after), refused.code
                    ) from None
                media_id, _ = status_ref(answer_)
                self._wait_processed(job, client, media_id, code, answer_, m.path)
                ids.append(media_id)
            material["media"] = {"ids": ids, "at": self.clock()}
            job.save(material)
        return ids

    def _wait_processed(
        self, job: Job, client: Client, media_id: str, code: int, data: Any, path: str
    ) -> None:
        waited, delay = 0.0, 0.5
        limit = max(0.0, min(MEDIA_WAIT, job.deadline()))
        while media_processing(code, data):
            if waited + delay > limit:
                raise Refused(
                    Outcome(
                        "temporary",
                        error=f"media {path}: still being processed after {waited:.0f}s",
                    )
                )
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, 5.0)
            code, data = client.call("media", media_id)

    def _posted_elsewhere(
        self, job: Job, client: Client, text: str, parent: str | None, material: dict[str, Any]
    ) -> tuple[str, str | None] | None:
        """The status another host posted for this part more than an hour ago, when this host
        first sends it later than KEY_TRUST after the post's time (the server has forgotten
        the key by then): looked up among the statuses since the post's time, for the first
        part, and for the next ones once a part was found so. None when not found."""
        if self.clock() - job.due.timestamp() <= KEY_TRUST:
            return None
        if parent is not None and not material.get("elsewhere"):
            return None  # this host posted the part before: the next one is its own too
        cw = job.post.field_for(job.account.name, "cw")
        since = job.due.timestamp() - CLOCK_SLACK
        return find_status(client, text, cw, parent, since, sure=False)


PLATFORM = MastodonPlatform()
