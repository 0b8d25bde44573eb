"""``[server] shared_state``: the Redis that several daemons share their state through.

Written one of two ways::

    shared_state = "redis://10.0.0.5:6379/0"
    shared_state = { url = "rediss://redis.internal:6380/2", password = "env:REDIS_PASSWORD",
                     timeout = "50ms", prefix = "llm-router",
                     tls = { ca_file = "/etc/llm-router/redis-ca.pem" } }

URLs: ``redis://[USER@]HOST[:PORT][/DB]`` (TCP), ``rediss://`` (TLS: the system's CAs,
or whom ``tls`` says to trust) and ``unix:///PATH[?db=N]`` (a local socket). ``tls``
has a provider's shape (``ca_file``, ``cert_file``, ``key_file``, ``verify``) and
needs a ``rediss://`` URL. A password never goes in the URL: the
file would hold a secret; it is a secret reference in ``password``, like every key of
this language. No message here repeats a URL's text (it could hold a pasted password).
"""

from typing import Annotated, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import attrs

from ._connection import TLSConfig
from ._errors import FieldError
from ._fields import Duration, Parse, positive
from ._secrets import SecretRef

__all__ = ["RedisURL", "SharedState", "SharedURL"]

_FORMS = "must be redis://HOST[:PORT][/DB], rediss://HOST[:PORT][/DB] or unix:///PATH[?db=N]"


@attrs.frozen
class RedisURL:
    """Where the Redis is. ``str()`` gives the URL back (never with a password).

    Attributes:
        scheme: ``redis`` (TCP), ``rediss`` (TLS) or ``unix`` (a socket path in ``host``).
        host: The host name or address; the socket's path for ``unix``.
        port: The TCP port (6379 unless given; 0 for ``unix``).
        db: The database number (``SELECT``).
        username: The ACL user (``AUTH user password``); empty: the default user.
    """

    scheme: Literal["redis", "rediss", "unix"]
    host: str
    port: int = 6379
    db: int = 0
    username: str = ""

    @classmethod
    def parse(cls, text: object) -> "RedisURL":
        """Read a URL (see the module's doc).

        Raises:
            FieldError: not one of the forms, or a password in it.
        """
        if not isinstance(text, str):
            raise FieldError(_FORMS)
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise FieldError(f"{_FORMS} (the port is not a number from 0 to 65535)") from None
        if parts.password is not None:
            raise FieldError(
                "holds a password: the config file must not; give it as a secret reference"
                ' in shared_state.password (e.g. password = "env:REDIS_PASSWORD")'
            )
        if parts.fragment:
            raise FieldError(_FORMS)
        if parts.scheme == "unix":
            if not parts.path.startswith("/") or parts.netloc:
                raise FieldError("unix:// needs an absolute socket path (unix:///run/redis.sock)")
            query = parse_qs(parts.query)
            db = query.pop("db", ["0"])[-1]
            if query or not db.isdigit():
                raise FieldError("unix:// takes only ?db=N after the path")
            return cls("unix", unquote(parts.path), 0, int(db))
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise FieldError(_FORMS)
        path = parts.path.strip("/")
        if parts.query or (path and not path.isdigit()):
            raise FieldError(f"{_FORMS} (the database is a number: /0)")
        scheme: Literal["redis", "rediss"] = "rediss" if parts.scheme == "rediss" else "redis"
        username = unquote(parts.username or "")
        return cls(scheme, parts.hostname, port or 6379, int(path or 0), username)

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.host}" + (f"?db={self.db}" if self.db else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.username}@" if self.username else ""
        return f"{self.scheme}://{user}{host}:{self.port}/{self.db}"


#: The field type: the loader parses the text with `RedisURL.parse`.
SharedURL = Annotated[RedisURL, Parse.REDIS_URL]


@attrs.frozen
class SharedState:
    """``[server] shared_state``: rate windows, budgets' spend, the response cache and
    the hedge budget, shared with every daemon pointing at the same Redis.

    Attributes:
        url: Where the Redis is.
        password: A secret reference to its password (``AUTH``); none: no ``AUTH``.
        timeout: Every Redis call gives up after it, and the request goes on with this
            daemon's own accounting (the shared state is then "degraded" until Redis
            answers again).
        prefix: Put before every key, so several deployments can share one Redis.
        tls: Whom to trust (a private CA) and which client certificate to show, for a
            ``rediss://`` URL; none: the system's CAs, no client certificate.
    """

    url: SharedURL
    password: SecretRef | None = None
    timeout: Duration = attrs.field(default=0.05, validator=positive)
    prefix: str = "llm-router"
    tls: TLSConfig | None = None

    def __attrs_post_init__(self) -> None:
        if self.tls is not None and self.url.scheme != "rediss":
            raise FieldError("tls needs a rediss:// URL (TLS to Redis)", ("tls",))
