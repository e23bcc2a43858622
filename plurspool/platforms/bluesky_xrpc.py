"""Bluesky's XRPC as plurspool speaks it: calls to one account's PDS over httpx, and the login
session kept on disk between sends.

The session (access and refresh JWTs) is kept in `$XDG_STATE_HOME/plurspool/bluesky/
<account>.session.json`, mode 0600, under a lock that other plurspool processes respect, and
refreshed when its access token is about to expire, because createSession is limited to 30 calls
per 5 minutes. Every request goes to the configured `service`, never elsewhere; secrets seen in
answers are scrubbed from every message.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..config import Account, secret_env_var
from ..errors import ConfigError
from ..locks import session_lock
from . import ratelimit
from .base import Abandoned, wait_within

REQUEST_TIMEOUT = 30.0
POST_NSID = "app.bsky.feed.post"
REPOST_NSID = "app.bsky.feed.repost"
SESSION_MARGIN = 120.0  # renew a token this many seconds before it expires
AUTH_ERRORS = ("ExpiredToken", "InvalidToken")


class XrpcError(Exception):
    """A failed XRPC call: `status` is None when no answer came (network error, timeout)."""

    def __init__(
        self,
        step: str,
        status: int | None,
        error: str,
        message: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{step}: {error}: {message}")
        self.step = step
        self.status = status
        self.error = error
        self.message = message
        self.retry_after = retry_after

    @property
    def temporary(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500

    def text(self) -> str:
        what = f"HTTP {self.status}" if self.status is not None else "no answer"
        detail = f"{self.error}: {self.message}" if self.message else self.error
        return f"{self.step}: {detail} ({what})"


# Bluesky's rate-limit headers: RateLimit-Remaining and RateLimit-Reset (epoch seconds from
# atproto; seconds from now in the IETF draft).
RATELIMIT_PREFIX = "ratelimit-"


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait, from Retry-After (seconds or an HTTP date) or RateLimit-Reset."""
    return ratelimit.retry_after(headers, now, RATELIMIT_PREFIX)


def hold_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the account must wait because this answer says its window is used up
    (`RateLimit-Remaining: 0`), until RateLimit-Reset; None when requests are left."""
    return ratelimit.hold_after(headers, now, RATELIMIT_PREFIX)


@dataclass
class Session:
    service: str
    handle: str  # as configured (what we log in with)
    did: str
    current_handle: str  # as the PDS knows it now
    access: str
    refresh: str

    def as_json(self) -> dict[str, str]:
        return {
            "service": self.service,
            "handle": self.handle,
            "did": self.did,
            "current_handle": self.current_handle,
            "accessJwt": self.access,
            "refreshJwt": self.refresh,
        }


def _jwt_exp(token: str) -> float | None:
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(data["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def _fresh(token: str, now: float) -> bool:
    exp = _jwt_exp(token)
    return exp is None or exp - SESSION_MARGIN > now


def session_path(state_dir: Path, account: str) -> Path:
    return state_dir / "bluesky" / f"{quote(account, safe='')}.session.json"


def _password_source(account: Account) -> str:
    if "password_cmd" in account.options:
        return f"the command in accounts.{account.name}.password_cmd"
    if "password_file" in account.options:
        return f"the file in accounts.{account.name}.password_file"
    return f"${secret_env_var(account.name, 'password')}"


class Client:
    """XRPC calls to one account's service, with its stored session."""

    def __init__(
        self,
        account: Account,
        state_dir: Path,
        deadline: Callable[[], float] = lambda: REQUEST_TIMEOUT,
    ) -> None:
        import httpx

        from .. import __version__

        self.account = account
        self.service = str(account.options.get("service", "https://bsky.social")).rstrip("/")
        self.handle = str(account.options["handle"])
        self.path = session_path(state_dir, account.name)
        self.deadline = deadline
        self.secrets: list[str] = []
        self.hold: float | None = None  # what the latest answer's rate-limit headers ask for
        self.http = httpx.Client(
            follow_redirects=False,
            headers={"User-Agent": f"plurspool/{__version__}"},
            trust_env=False,
        )

    def close(self) -> None:
        self.http.close()

    def scrub(self, text: str) -> str:
        for s in self.secrets:
            if s:
                text = text.replace(s, "[redacted]")
        return text

    # -- raw calls -------------------------------------------------------------------------

    def call(
        self,
        nsid: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        data: bytes | None = None,
        mime: str | None = None,
        token: str | None = None,
        step: str | None = None,
        procedure: bool = False,
    ) -> dict[str, Any]:
        """One XRPC call: a procedure (POST) when it has a body or `procedure`, else a query
        (GET). Raises XrpcError."""
        import httpx

        step = step or nsid
        headers: dict[str, str] = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        timeout = max(1.0, min(REQUEST_TIMEOUT, self.deadline()))
        url = f"{self.service}/xrpc/{nsid}"
        if body is not None or data is not None or procedure:
            if data is not None:
                headers["Content-Type"] = mime or "application/octet-stream"

            def call() -> httpx.Response:
                return self.http.post(
                    url, json=body, content=data, headers=headers, timeout=timeout
                )
        else:

            def call() -> httpx.Response:
                return self.http.get(url, params=params, headers=headers, timeout=timeout)

        try:
            # Stop waiting when a shutdown's deadline passes; the request stays in doubt and
            # the next attempt asks getRecord, as after a crash.
            resp = wait_within(self.deadline, call, f"bluesky {step}")
        except Abandoned:
            raise XrpcError(
                step, None, "Timeout", "stopped waiting: the sender is shutting down"
            ) from None
        except httpx.TimeoutException:
            raise XrpcError(
                step, None, "Timeout", f"no answer from {self.service} within {timeout:.0f}s"
            ) from None
        except httpx.HTTPError as exc:
            raise XrpcError(
                step,
                None,
                "NetworkError",
                f"cannot reach {self.service}: {self.scrub(str(exc)) or type(exc).__name__}",
            ) from None
        self.hold = hold_after(resp.headers, time.time())
        if 200 <= resp.status_code < 300:
            try:
                out = resp.json() if resp.content else {}
            except ValueError:
                raise XrpcError(
                    step, resp.status_code, "BadResponse", "the answer is not JSON"
                ) from None
            return out if isinstance(out, dict) else {}
        error, message = "HTTP", resp.reason_phrase
        try:
            payload = resp.json()
            if isinstance(payload, dict):
                error = str(payload.get("error") or error)
                message = str(payload.get("message") or "")
        except ValueError:
            message = " ".join(resp.text.split())[:200] or message
        wait = retry_after(resp.headers, time.time()) if resp.status_code == 429 else None
        if resp.status_code == 503 and "retry-after" in resp.headers:
            wait = retry_after(resp.headers, time.time())
        raise XrpcError(step, resp.status_code, error, self.scrub(message), wait)

    # -- session ---------------------------------------------------------------------------

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return session_lock(self.path.with_suffix(".lock"))

    def _load(self) -> Session | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o077:
                return None
            try:
                d = json.loads(f.read())
                s = Session(
                    d["service"],
                    d["handle"],
                    d["did"],
                    d["current_handle"],
                    d["accessJwt"],
                    d["refreshJwt"],
                )
            except (ValueError, KeyError, TypeError):
                return None
        if s.service != self.service or s.handle != self.handle:
            return None  # the account's configuration changed
        self.secrets += [s.access, s.refresh]
        return s

    def _store(self, s: Session) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(s.as_json()).encode())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dfd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _from_answer(self, out: Mapping[str, Any]) -> Session:
        s = Session(
            self.service,
            self.handle,
            str(out["did"]),
            str(out.get("handle") or self.handle),
            str(out["accessJwt"]),
            str(out["refreshJwt"]),
        )
        self.secrets += [s.access, s.refresh]
        self._store(s)
        return s

    def session(self, *, stale: str | None = None, login: bool = False) -> Session:
        """A usable session: the stored one, refreshed, or a new one (the password is read
        only then). `stale`: an access token the PDS refused; `login`: always log in anew."""
        now = time.time()
        with self._locked():
            s = None if login else self._load()
            if s is not None and s.access != stale and _fresh(s.access, now):
                return s
            if s is not None and _fresh(s.refresh, now):
                try:
                    out = self.call(
                        "com.atproto.server.refreshSession",
                        procedure=True,
                        token=s.refresh,
                        step="refreshing the session",
                    )
                    return self._from_answer(out)
                except XrpcError as exc:
                    if exc.temporary:
                        raise
                    # The refresh token was revoked or expired: log in again below.
            return self._create()

    def _create(self) -> Session:
        name = self.account.name
        password = self.account.secret("password")
        if not password:
            raise ConfigError(
                f"account {name}: no app password",
                f"set accounts.{name}.password_cmd or password_file, or "
                f"${secret_env_var(name, 'password')}",
            )
        self.secrets.append(password)
        try:
            out = self.call(
                "com.atproto.server.createSession",
                body={"identifier": self.handle, "password": password},
                step=f"logging in as {self.handle}",
            )
        except XrpcError as exc:
            if exc.status in (400, 401) and exc.error in (
                "AuthenticationRequired",
                "AuthFactorTokenRequired",
            ):
                raise ConfigError(
                    f"account {name}: {self.service} refused the handle {self.handle} with this "
                    f"password ({exc.error}: {exc.message})",
                    f"check that {_password_source(self.account)} gives a current app password "
                    "for this handle (Bluesky: Settings → Privacy and security → App passwords)",
                ) from None
            raise
        return self._from_answer(out)

    def authed(self, nsid: str, **kwargs: Any) -> dict[str, Any]:
        """A call with the session's access token, renewed once if the PDS refuses it."""
        s = self.session()
        try:
            return self.call(nsid, token=s.access, **kwargs)
        except XrpcError as exc:
            if exc.status not in (400, 401) or exc.error not in AUTH_ERRORS:
                raise
        return self.call(nsid, token=self.session(stale=s.access).access, **kwargs)

    # -- records ---------------------------------------------------------------------------

    def resolve(self, handle: str) -> str | None:
        """The DID of `handle`, or None when it does not resolve."""
        try:
            out = self.call(
                "com.atproto.identity.resolveHandle",
                params={"handle": handle},
                step=f"resolving @{handle}",
            )
        except XrpcError as exc:
            if exc.temporary:
                raise
            return None
        did = out.get("did")
        return did if isinstance(did, str) else None

    def get_record(
        self, did: str, rkey: str, step: str, collection: str = POST_NSID
    ) -> dict[str, str] | None:
        """The strong ref (uri, cid) of the post (or repost) `rkey` in the repo `did` (ours,
        or one quoted), or None when it does not exist."""
        try:
            out = self.call(
                "com.atproto.repo.getRecord",
                params={"repo": did, "collection": collection, "rkey": rkey},
                step=step,
            )
        except XrpcError as exc:
            if exc.status is not None and exc.status < 500 and exc.error == "RecordNotFound":
                return None
            raise
        return {"uri": str(out["uri"]), "cid": str(out["cid"])}

    def create_record(
        self, did: str, rkey: str, record: dict[str, Any], step: str, collection: str = POST_NSID
    ) -> dict[str, str]:
        """Create our post (or repost) `rkey`; after a timeout or 5xx, look whether it went
        through."""
        body = {"repo": did, "collection": collection, "rkey": rkey, "record": record}
        try:
            out = self.authed("com.atproto.repo.createRecord", body=body, step=step)
        except XrpcError as exc:
            if exc.status is not None and exc.status < 500:
                raise
            try:
                found = self.get_record(
                    did, rkey, f"{step}, checking whether it went through", collection
                )
            except XrpcError:
                raise exc from None
            if found is None:
                raise
            return found
        return {"uri": str(out["uri"]), "cid": str(out["cid"])}

    def delete_record(self, uri: str, step: str) -> None:
        """`com.atproto.repo.deleteRecord` of an at:// URI. The PDS answers a record that is
        not there with success; a RecordNotFound from another server counts as gone too."""
        repo, collection, rkey = uri.removeprefix("at://").split("/", 2)
        body = {"repo": repo, "collection": collection, "rkey": rkey}
        try:
            self.authed("com.atproto.repo.deleteRecord", body=body, step=step)
        except XrpcError as exc:
            if exc.status is None or exc.status >= 500 or exc.error != "RecordNotFound":
                raise

    def upload(self, data: bytes, mime: str, step: str) -> dict[str, Any]:
        out = self.authed("com.atproto.repo.uploadBlob", data=data, mime=mime, step=step)
        blob = out.get("blob")
        if not isinstance(blob, dict):
            raise XrpcError(step, 200, "BadResponse", "no blob in the answer")
        return blob
