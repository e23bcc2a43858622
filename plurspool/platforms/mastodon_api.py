"""Mastodon's HTTP API as plurspool uses it: one client, the small functions that read every
answer, the instance's limits with their cache, finding and reblogging a status, editing one
(`plurspool amend`) and deleting a thread (`delete_thread`).

Requests go through Mastodon.py (imported only when a client is made), with the raw response of
each call kept. Every answer is read from that response by the same small functions (`answer`,
`outcome_for`, `limits_from_instance`, `media_processing`, `status_ref`), so the contract tests
can feed them responses recorded from a real Mastodon.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import Account, secret_env_var
from ..errors import ConfigError
from ..post.repost import MASTODON_URL
from . import ratelimit
from .base import Abandoned, DeleteJob, Job, Outcome, wait_within
from .options import limits_dir

DEFAULT_LIMIT = 500
QUOTE_API = 7  # the api_versions.mastodon that brought quoted_status_id (Mastodon 4.5)
URL_LENGTH = 23  # what a URL counts when the instance does not say (Mastodon's own constant)
MIB = 1024 * 1024
USER_AGENT = "plurspool"
LOOKUP_PAGES = 5  # of 40 statuses each, when looking for a status sent in doubt


@dataclass(frozen=True)
class Limits:
    """An instance's limits, as far as plurspool uses them (Mastodon's defaults otherwise)."""

    max_characters: int = DEFAULT_LIMIT
    max_media: int = 4
    image_size: int = 16 * MIB
    video_size: int = 99 * MIB
    description_limit: int = 1500
    # configuration.polls; Mastodon's defaults otherwise (plurspool(5), `poll`)
    poll_options: int = 4
    poll_option_chars: int = 50
    poll_min_expiration: int = 300
    poll_max_expiration: int = 30 * 86400
    quotes: bool = False  # the quote API (quoted_status_id): api_versions.mastodon 7 and later
    characters_reserved_per_url: int = URL_LENGTH
    known: bool = False  # read from the instance (now or from the cache)


class Refused(Exception):
    """A request did not give what was asked; `outcome` says what that means for the send.

    `code` is the HTTP status of the answer, None when there was none.
    """

    def __init__(self, outcome: Outcome, code: int | None = None) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome
        self.code = code

    @property
    def created_nothing(self) -> bool:
        """The server refused the request outright (4xx but 408): it created nothing."""
        return self.code is not None and 400 <= self.code < 500 and self.code != 408


# --- reading answers (live and recorded alike) ----------------------------------------------


# Mastodon's rate-limit headers: X-RateLimit-Remaining and X-RateLimit-Reset (ISO 8601 from
# Mastodon, epoch seconds from some other servers).
RATELIMIT_PREFIX = "x-ratelimit-"


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait, from Retry-After or X-RateLimit-Reset; None when neither is usable."""
    return ratelimit.retry_after(headers, now, RATELIMIT_PREFIX)


def hold_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the account must wait because this answer says its window is used up
    (`X-RateLimit-Remaining: 0`), until X-RateLimit-Reset; None when requests are left."""
    return ratelimit.hold_after(headers, now, RATELIMIT_PREFIX)


def _server_message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    message = ""
    if isinstance(data, dict):
        parts = [data.get("error"), data.get("error_description")]
        message = ": ".join(str(p) for p in parts if isinstance(p, str) and p)
    if not message:
        text = body.decode("utf-8", "replace").strip()
        # An HTML error page says nothing useful in a log line.
        message = "" if text.startswith("<") else " ".join(text.split())
    return message[:300] + ("…" if len(message) > 300 else "")


def outcome_for(
    code: int, headers: Mapping[str, str], body: bytes, now: float, account: str = ""
) -> Outcome:
    """What an HTTP error answer means: 429/408/5xx are temporary, other 4xx permanent."""
    message = _server_message(body)
    text = f"HTTP {code}" + (f": {message}" if message else "")
    if code == 429:
        return Outcome(
            "temporary", error=f"rate limited ({text})", retry_after=retry_after(headers, now)
        )
    if code == 408 or code >= 500:
        return Outcome("temporary", error=f"server error ({text})")
    if code == 401 and account:
        text += (
            f"; the access token was refused: check token_cmd or token_file of account "
            f"{account} (or {secret_env_var(account, 'token')})"
        )
    elif code == 403 and account:
        text += f"; the token of account {account} lacks a permission (write:statuses, write:media)"
    return Outcome("permanent", error=text)


def answer(
    code: int, headers: Mapping[str, str], body: bytes, now: float, account: str = ""
) -> Any:
    """The JSON of a 2xx answer; any other answer raises `Refused` with its outcome."""
    if not 200 <= code < 300:
        raise Refused(outcome_for(code, headers, body, now, account), code)
    try:
        return json.loads(body) if body.strip() else {}
    except ValueError:
        raise Refused(
            Outcome("temporary", error=f"HTTP {code} with a body that is not JSON")
        ) from None


def status_ref(data: Any) -> tuple[str, str | None]:
    """(id, url) of a status as Mastodon returns it."""
    if not isinstance(data, Mapping) or data.get("id") in (None, ""):
        raise Refused(Outcome("temporary", error="the server's answer holds no status id"))
    url = data.get("url") or data.get("uri")
    return str(data["id"]), str(url) if url else None


def media_processing(code: int, data: Any) -> bool:
    """True while an upload is still being processed (202 on upload, 206 on GET, or no url)."""
    return code in (202, 206) or not isinstance(data, Mapping) or data.get("url") is None


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        n = int(value)
    except ValueError:
        return None
    return n if n > 0 else None


def _dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def limits_from_instance(v2: Any = None, v1: Any = None) -> Limits:
    """Limits from /api/v2/instance (configuration), or /api/v1/instance (max_toot_chars)."""
    found: dict[str, int] = {}
    for data in (v1, v2):  # v2 last: it wins
        if data is None:
            continue
        conf = _dig(data, "configuration")
        pairs = {
            "max_characters": (
                _dig(conf, "statuses", "max_characters"),
                _dig(data, "max_toot_chars"),
            ),
            "max_media": (_dig(conf, "statuses", "max_media_attachments"),),
            "characters_reserved_per_url": (_dig(conf, "statuses", "characters_reserved_per_url"),),
            "image_size": (_dig(conf, "media_attachments", "image_size_limit"),),
            "video_size": (_dig(conf, "media_attachments", "video_size_limit"),),
            "description_limit": (_dig(conf, "media_attachments", "description_limit"),),
            "poll_options": (_dig(conf, "polls", "max_options"),),
            "poll_option_chars": (_dig(conf, "polls", "max_characters_per_option"),),
            "poll_min_expiration": (_dig(conf, "polls", "min_expiration"),),
            "poll_max_expiration": (_dig(conf, "polls", "max_expiration"),),
        }
        for name, candidates in pairs.items():
            for candidate in candidates:
                n = _positive_int(candidate)
                if n is not None:
                    found[name] = n
                    break
    version = _dig(v2, "api_versions", "mastodon")
    quotes = isinstance(version, int) and not isinstance(version, bool) and version >= QUOTE_API
    return Limits(**found, quotes=quotes, known="max_characters" in found)


# --- the per-instance limits cache ----------------------------------------------------------


def cache_path(state_dir: Path, instance: str) -> Path:
    """Where an instance's limits are cached: one small JSON file per instance URL."""
    host = urllib.parse.urlsplit(instance).netloc or "instance"
    safe = re.sub(r"[^A-Za-z0-9.-]+", "_", host)[:60]
    digest = hashlib.sha256(instance.rstrip("/").encode()).hexdigest()[:10]
    return limits_dir(state_dir) / f"{safe}-{digest}.json"


def read_cached_limits(state_dir: Path, instance: str) -> tuple[Limits, float] | None:
    """The cached limits and when they were read, or None."""
    try:
        data = json.loads(cache_path(state_dir, instance).read_bytes())
        fields = {k: int(v) for k, v in data["limits"].items() if k in Limits.__annotations__}
        fields.pop("known", None)
        quotes = bool(fields.pop("quotes", 0))
        return Limits(**fields, quotes=quotes, known=True), float(data["fetched_at"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_cached_limits(state_dir: Path, instance: str, limits: Limits, now: float) -> None:
    """Write the cache atomically (tmp file, fsync, rename, fsync the directory)."""
    path = cache_path(state_dir, instance)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fields = asdict(limits)
    fields.pop("known")
    data = json.dumps({"instance": instance, "fetched_at": now, "limits": fields}).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# --- the HTTP client ------------------------------------------------------------------------


def instance_of(account: Account) -> str:
    return str(account.options["instance"]).rstrip("/")


def token_of(account: Account) -> str:
    token = account.secret("token")
    if not token:
        raise ConfigError(
            f"account {account.name}: no access token",
            f"set token_cmd or token_file in [accounts.{account.name}], or "
            f"{secret_env_var(account.name, 'token')}",
        )
    return token


class Client:
    """Mastodon.py with the raw response of each call kept, and read by `answer`."""

    def __init__(
        self,
        instance: str,
        token: str,
        *,
        timeout: float,
        account: str,
        clock: Callable[[], float],
        deadline: Callable[[], float] | None = None,
    ) -> None:
        import requests
        from mastodon import Mastodon

        self.token = token
        self.account = account
        self.timeout = timeout
        self.clock = clock
        self.deadline = deadline
        self.last: Any = None  # the requests.Response of the latest call
        self.hold: float | None = None  # what the latest answer's rate-limit headers ask for
        self.session = requests.Session()
        self.session.hooks["response"].append(self._keep)
        self.api = Mastodon(
            access_token=token,
            api_base_url=instance,
            request_timeout=timeout,
            ratelimit_method="throw",  # plurspool paces and retries itself
            mastodon_version="4.0.0",  # no version probe; selects /api/v2/media
            version_check_mode="created",
            session=self.session,
            user_agent=USER_AGENT,
        )

    def _keep(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self.last = response
        self.hold = hold_after(response.headers, self.clock())

    def redact(self, text: str) -> str:
        return text.replace(self.token, "[token]") if self.token else text

    def call(self, method: str, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        """Run one Mastodon.py call; (HTTP status, JSON) of its answer, or raise `Refused`."""
        from mastodon import MastodonError, MastodonNetworkError

        self.last = None
        try:
            self._run(lambda: getattr(self.api, method)(*args, **kwargs), f"mastodon {method}")
        except MastodonNetworkError as exc:
            raise Refused(
                Outcome("temporary", error=self.redact(f"network error: {_exc_text(exc)}"))
            ) from None
        except MastodonError as exc:
            # Mastodon.py raises on every error answer; the answer itself is read below.
            if self.last is None:
                raise Refused(
                    Outcome("permanent", error=self.redact(f"request failed: {_exc_text(exc)}"))
                ) from None
        return self._answer()

    def put(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """PUT a JSON body to the instance through this client's session (its timeout, deadline
        and answer reading), for a request Mastodon.py has no public call for."""
        import requests

        self.last = None
        url = str(self.api.api_base_url).rstrip("/") + path
        headers = {"Authorization": f"Bearer {self.token}", "User-Agent": USER_AGENT}
        try:
            self._run(
                lambda: self.session.put(url, json=body, headers=headers, timeout=self.timeout),
                f"mastodon PUT {path}",
            )
        except requests.RequestException as exc:
            error = f"network error: {_exc_text(exc)}"
            raise Refused(Outcome("temporary", error=self.redact(error))) from None
        return self._answer()

    def _answer(self) -> tuple[int, Any]:
        """(HTTP status, JSON) of the latest answer, or raise `Refused`."""
        response = self.last
        if response is None:
            raise Refused(Outcome("temporary", error="no answer from the server"))
        try:
            data = answer(
                response.status_code,
                response.headers,
                response.content,
                self.clock(),
                self.account,
            )
        except Refused as refused:
            o = refused.outcome
            error = self.redact(o.error or "")
            raise Refused(
                Outcome(o.status, error=error, retry_after=o.retry_after), refused.code
            ) from None
        return int(response.status_code), data

    def _run(self, request: Callable[[], object], what: str) -> None:
        """Make the call, but stop waiting for it when the sender's deadline passes.

        A request's timeout is fixed when it starts; a shutdown that begins while the server
        hangs must not wait for it. The abandoned call stays in doubt (its part is `pending`),
        as after a crash, and its daemon thread dies with the process.
        """
        if self.deadline is None:
            request()
            return
        try:
            wait_within(self.deadline, request, what)
        except Abandoned:
            raise Refused(
                Outcome("temporary", error="stopped waiting: the sender is shutting down")
            ) from None

    def close(self) -> None:
        self.session.close()


def delete_thread(
    job: DeleteJob, instance: str, secret: Callable[[], str], clock: Callable[[], float]
) -> Outcome:
    """`DELETE /api/v1/statuses/:id` for every part of the account's thread, replies first (the
    parts this host sent, else the one status its result names); 404 counts as gone. `secret`
    gives the account's token."""
    try:
        token = secret()
    except ConfigError as exc:
        return Outcome("permanent", error=exc.message + (f"; {exc.hint}" if exc.hint else ""))
    ids = [str(p["id"]) for p in job.sent.get("parts") or [] if p.get("id")]
    ids = ids or ([job.result.id] if job.result.id else [])
    timeout = max(1.0, min(30.0, job.deadline()))
    client = Client(
        instance,
        token,
        timeout=timeout,
        account=job.account.name,
        clock=clock,
        deadline=job.deadline,
    )
    try:
        for status_id in reversed(ids):
            try:
                client.call("status_delete", status_id)
            except Refused as refused:
                if refused.code != 404:  # gone already: deleted before a crash, or by hand
                    raise
        return Outcome("sent", hold=client.hold)
    except Refused as refused:
        o = refused.outcome
        error = client.redact(o.error or "")
        return Outcome(o.status, error=error, retry_after=o.retry_after, hold=client.hold)
    finally:
        client.close()


def _exc_text(exc: BaseException) -> str:
    text = " ".join(str(a) for a in exc.args if isinstance(a, str | int)) or type(exc).__name__
    return text[:300]


def timestamp(value: object) -> float | None:
    """A status's `created_at` (as Mastodon.py gives it, or as text) in epoch seconds."""
    if isinstance(value, datetime):
        return value.timestamp()
    return ratelimit.parse_time(value) if isinstance(value, str) else None


def find_status(
    client: Client,
    text: str,
    cw: str | None,
    parent: str | None,
    since: float,
    *,
    part: int = 0,
    sure: bool = True,
) -> tuple[str, str | None] | None:
    """(id, url) of the account's status with this source text, CW and parent made since
    `since` (epoch seconds), found among its recent statuses.

    None when it is certainly not there (or, not `sure`, not among the statuses looked at);
    raises `Refused` when that cannot be told.
    """
    cw = (cw or "").strip()
    _, me = client.call("account_verify_credentials")
    account_id = me.get("id") if isinstance(me, Mapping) else None
    if account_id is None:
        raise Refused(Outcome("temporary", error="cannot tell which account the token is for"))
    max_id: str | None = None
    for _ in range(LOOKUP_PAGES):
        _, page = client.call(
            "account_statuses", account_id, limit=40, max_id=max_id, exclude_reblogs=True
        )
        if not isinstance(page, list) or not page:
            return None
        for s in page:
            if not isinstance(s, Mapping):
                continue
            created = timestamp(s.get("created_at"))
            if created is not None and created < since:
                return None
            same_parent = str(s.get("in_reply_to_id") or "") == str(parent or "")
            if not same_parent or str(s.get("spoiler_text") or "").strip() != cw:
                continue
            _, source = client.call("status_source", str(s.get("id")))
            if isinstance(source, Mapping) and str(source.get("text", "")).strip() == text:
                return status_ref(s)
        max_id = str(page[-1].get("id"))
    if not sure:
        return None
    raise Refused(
        Outcome(
            "permanent",
            error=f"an earlier attempt may have posted part {part + 1} and it could not be "
            f"confirmed among the last {40 * LOOKUP_PAGES} statuses; "
            "look at the account and delete or retry by hand",
        )
    )


# --- finding a status, reblogging it (plurspool(5), `quote` and `repost`) ---------------------


def local_status(instance: str, url: str | None) -> str | None:
    """The status id in a URL of this instance's own (`INSTANCE/@user/ID` or
    `INSTANCE/users/user/statuses/ID`), else None."""
    m = MASTODON_URL.fullmatch(url or "")
    if m is None or urllib.parse.urlsplit(url).netloc != urllib.parse.urlsplit(instance).netloc:
        return None
    return m["id"] if m["id"].isdigit() else None


def search_status(client: Client, url: str) -> str | None:
    """The id on this instance of the status at `url` (looked up, fetched if need be), or
    None; only a status whose own url or uri is `url` counts."""
    try:
        _, found = client.call("search_v2", url, resolve=True, result_type="statuses")
    except Refused as refused:
        if refused.code in (401, 403, 404):  # e.g. a token without read:search
            return None
        raise
    statuses = found.get("statuses") if isinstance(found, Mapping) else None
    for status in statuses if isinstance(statuses, list) else []:
        if isinstance(status, Mapping) and url in (status.get("url"), status.get("uri")):
            return str(status.get("id"))
    return None


def reblog(job: Job, client: Client, instance: str) -> Outcome:
    """Reblog what `job.repost` names, once: the status is found through the account's own
    instance and its id saved before the reblog. Reblogging a status twice gives back the
    first reblog (Mastodon's ReblogService, and mastodon-mock), so a retry in doubt simply
    asks again."""
    assert job.repost is not None
    material = dict(job.material)
    saved = material.get("reblog_of")
    status_id = saved if isinstance(saved, str) else None
    if status_id is None:
        url = job.repost.url or ""
        # An `@ID`'s recorded result is a status of this very account: its id is known.
        status_id = job.repost.id or local_status(instance, url) or search_status(client, url)
        if status_id is None:
            answer = "its search found no status with that address"
            return Outcome("permanent", error=f"cannot repost {url}: {instance}: {answer}")
        material["reblog_of"] = status_id
        job.save(material)  # before the request: a crash from here on leaves it in doubt
    if job.undo is not None and job.undo.id and material.get("undone") != job.undo.id:
        unreblog(client, job.undo.id)
        material["undone"] = job.undo.id
        job.save(material)
    try:
        _, data = client.call("status_reblog", status_id)
    except Refused as refused:
        if refused.code == 404:
            o = refused.outcome
            raise Refused(Outcome("permanent", error=f"cannot repost: {o.error}"), 404) from None
        raise
    reblog_id, reblog_url = status_ref(data)
    return Outcome("sent", remote_id=reblog_id, url=reblog_url)


def unreblog(client: Client, reblog_id: str) -> None:
    """Undo our reblog `reblog_id` (a recurring repost's previous one): the status it reblogs
    is unreblogged; one already gone is undone."""
    try:
        _, data = client.call("status", reblog_id)
    except Refused as refused:
        if refused.code == 404:
            return
        raise
    original = data.get("reblog") if isinstance(data, Mapping) else None
    if isinstance(original, Mapping) and original.get("id"):
        client.call("status_unreblog", str(original["id"]))


# --- editing a status (plurspool(1), `amend`) -------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """A status of ours as it is to read after `plurspool amend`."""

    status_id: str
    text: str
    cw: str | None
    sensitive: bool | None
    language: str | None
    alts: tuple[str | None, ...] | None = None  # its media's descriptions, in order, if any


def edit_statuses(account: Account, edits: list[Edit], *, clock: Callable[[], float]) -> None:
    """`PUT /api/v1/statuses/:id` for each edit, in order; raises `Refused` with the server's
    answer at the first it refuses. A status with media keeps them: their ids are read first
    and sent again, with the new descriptions (Mastodon drops what an edit does not name).

    Sent as our own request (`Client.put`): Mastodon.py's public `status_update` takes no
    `language`, and the private helper behind it fails on `media_attributes` (2.3: set + set).
    Every field is named, since Mastodon clears a CW that an edit leaves out."""
    client = Client(
        instance_of(account), token_of(account), timeout=30.0, account=account.name, clock=clock
    )
    try:
        for edit in edits:
            body: dict[str, Any] = {
                "status": edit.text,
                "spoiler_text": edit.cw or "",
                "sensitive": bool(edit.sensitive),
            }
            if edit.language:  # left out, the status keeps its language
                body["language"] = edit.language
            if edit.alts is not None:
                _, data = client.call("status", edit.status_id)
                media = data.get("media_attachments") if isinstance(data, Mapping) else None
                ids = [str(m["id"]) for m in media or [] if isinstance(m, Mapping)]
                body["media_ids"] = ids
                body["media_attributes"] = [
                    {"id": i, "description": alt or ""}
                    for i, alt in zip(ids, edit.alts, strict=False)
                ]
            client.put(f"/api/v1/statuses/{urllib.parse.quote(edit.status_id, safe='')}", body)
    finally:
        client.close()
