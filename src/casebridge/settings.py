"""The one settings object, read by the CLI, the workers and the gateway alike.

Every setting comes from an environment variable with the ``CASEBRIDGE_`` prefix (or a ``.env``
file named by ``CASEBRIDGE_ENV_FILE``). The defaults are the embedded single-machine set-up: a
SQLite database and kombu's SQLAlchemy transport on a SQLite file in the user's data directory,
so nothing is lost across a restart and nothing has to be installed. ``environment=production``
refuses those embedded defaults and default credentials.
"""

from __future__ import annotations

import os
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from platformdirs import user_data_dir
from pydantic import Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from casebridge import passwords
from casebridge.errors import ConfigError

DEFAULT_MAX_MESSAGE_BYTES = 5 * 1024 * 1024


def default_data_dir() -> Path:
    """Where the embedded database and broker files live unless configured otherwise."""
    return Path(user_data_dir("casebridge", appauthor=False))


class SecretFilesSource(PydanticBaseSettingsSource):
    """``CASEBRIDGE_<NAME>_FILE=/path``: the setting is the content of that file.

    This is how container secrets (compose ``secrets:``, Kubernetes Secret volumes) reach a
    setting without putting a password in the environment. Setting both ``CASEBRIDGE_<NAME>`` and
    ``CASEBRIDGE_<NAME>_FILE`` is refused, since it is unclear which one the operator meant.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: :meth:`__call__` reads every field at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            variable = f"CASEBRIDGE_{name.upper()}"
            path = os.environ.get(f"{variable}_FILE")
            if not path:
                continue
            if os.environ.get(variable):
                raise ConfigError(f"set either {variable} or {variable}_FILE, not both")
            try:
                content = Path(path).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                raise ConfigError(f"{variable}_FILE: cannot read the file ({reason})") from None
            complex_ = self.field_is_complex(field)
            values[name] = self.prepare_field_value(name, field, content, complex_)
        return values


#: Passwords that come with a product or a tutorial; production refuses them in any URL.
DEFAULT_PASSWORDS = frozenset({"guest", "postgres", "password", "changeme", "change-me", "admin"})


def _url_credential_problems(variable: str, urls: str) -> list[str]:
    """Default, missing or weak credentials in a URL or a ``;``-separated failover list."""
    problems = []
    for url in filter(None, (part.strip() for part in urls.split(";"))):
        parts = urlsplit(url)
        if url.startswith(("amqp://", "amqps://")) and parts.username in (None, "", "guest"):
            # kombu logs in as guest/guest when the URL names no user.
            problems.append(f"{variable} uses the default guest credentials")
        elif not parts.password:
            problems.append(f"{variable} names no password")
        elif parts.password.lower() in DEFAULT_PASSWORDS:
            problems.append(f"{variable} uses a well-known default password")
        elif (why := passwords.weakness(unquote(parts.password))) is not None:
            problems.append(f"{variable} has a weak password ({why})")
    return sorted(set(problems))


def _proxy_problems(entries: list[str]) -> list[str]:
    """Trusted-proxy entries that would let the public claim a certificate subject."""
    problems = []
    for entry in entries:
        try:
            network = ip_network(entry, strict=False)
        except ValueError:
            continue  # a host name as the server reports a unix-socket peer
        if network.prefixlen == 0 or not (network.is_private or network.is_loopback):
            problems.append(
                "CASEBRIDGE_TRUSTED_PROXIES lists a wildcard or public network; name the "
                "proxy's own address (anyone in a listed network could claim any certificate)"
            )
    return sorted(set(problems))


class Settings(BaseSettings):
    """All runtime configuration of casebridge."""

    model_config = SettingsConfigDict(
        env_prefix="CASEBRIDGE_",
        env_file=os.environ.get("CASEBRIDGE_ENV_FILE"),
        extra="ignore",
    )

    environment: Literal["local", "production"] = "local"
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the consent/audit/routing store."
    )
    broker_url: str | None = Field(
        default=None, description="kombu URL: amqp://… in production, embedded SQLite otherwise."
    )
    broker_prefix: str = Field(
        default="casebridge", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Name prefix of the broker's exchanges and queues (one per installation).",
    )
    route_table: Path | None = Field(default=None, description="Route table file (YAML/TOML).")
    max_message_bytes: int = Field(default=DEFAULT_MAX_MESSAGE_BYTES, gt=0)
    api_key_cache_seconds: float = Field(
        default=5.0, ge=0, le=60,
        description="Seconds a gateway process reuses an API key's successful look-up. A key "
        "revoked (or a principal disabled) by another process -- `casebridge keys revoke` -- is "
        "refused at the latest this long after the revocation commits; in the process that "
        "revokes, at once. 0: read the key on every request.",
    )
    inbound_concurrency: int = Field(
        default=4, ge=1, le=64,
        description="Inbound messages one gateway process routes at once; more wait. Routing is "
        "CPU work under one interpreter lock, so more threads mostly add contention; raise it "
        "when the database or broker is far away (network round trips to overlap).",
    )
    delivery_batch_size: int = Field(
        default=32, ge=1, le=500,
        description="Messages a worker decides, audits and records in one transaction (its "
        "prefetch is at least this); 1 handles each message on its own.",
    )
    delivery_linger_ms: float = Field(
        default=10.0, ge=0, le=1000,
        description="Milliseconds a worker waits for more messages to fill a batch after the "
        "first one arrived (the most a lone message is delayed).",
    )
    body_idle_timeout: float = Field(
        default=10.0, gt=0, le=300,
        description="Seconds a request body may pause before the request is answered 408.",
    )
    body_min_rate: float = Field(
        default=8192.0, gt=0,
        description="Bytes per second a request body must average after the grace period.",
    )
    body_grace_seconds: float = Field(
        default=5.0, ge=0, le=300, description="Seconds before the minimum body rate applies."
    )
    uploads_per_principal: int = Field(
        default=32, ge=1, le=1024,
        description="Requests with a body one caller may have in progress per gateway process.",
    )
    audit_chains: int = Field(
        default=8, ge=1, le=1024,
        description="Hash chains the audit trail spreads new entries over (by a hash of the "
        "client reference): appenders lock only their chains' heads. 1 keeps one global chain.",
    )
    audit_checkpoint_every: int = Field(
        default=1000, ge=1,
        description="Entries a process appends before it writes a checkpoint binding all chain "
        "heads.",
    )
    audit_checkpoint_seconds: float = Field(
        default=60.0, gt=0,
        description="Seconds after which a process that appended writes a checkpoint anyway.",
    )
    minor_age: int = Field(default=15, ge=0, le=21, description="Below it a guardian consents.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses of the TLS-terminating proxy whose client-certificate header the "
        "gateway trusts (JSON list); empty: the header is ignored.",
    )
    client_cert_header: str = Field(
        default="X-Client-Cert-Subject",
        description="Header in which the trusted proxy passes the verified certificate subject.",
    )
    console_cookie_secure: bool = Field(
        default=True,
        description="Mark the DPO console's cookies Secure (HTTPS only); off only for local http.",
    )
    console_session_hours: int = Field(
        default=8, ge=1, le=24, description="Lifetime of a DPO console login session."
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="limits storage URI of the failed-authentication counters: memory:// (one "
        "process) or redis://host:6379/0 (shared by every gateway process).",
    )
    auth_failures_per_account: str = Field(
        default="10/15 minutes",
        description="Failed authentications one account may have in the moving window.",
    )
    auth_failures_per_address: str = Field(
        default="100/15 minutes",
        description="Failed authentications one client address may have in the moving window.",
    )
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _refuse_embedded_defaults_in_production(self) -> Settings:
        if self.environment != "production":
            return self
        problems = []
        if not self.database_url or self.database_url.startswith("sqlite"):
            problems.append("CASEBRIDGE_DATABASE_URL must name a server database in production")
        if not self.broker_url or not self.broker_url.startswith(("amqp://", "amqps://")):
            problems.append("CASEBRIDGE_BROKER_URL must be an amqp(s):// broker in production")
        else:
            problems += _url_credential_problems("CASEBRIDGE_BROKER_URL", self.broker_url)
        if self.database_url:
            problems += _url_credential_problems("CASEBRIDGE_DATABASE_URL", self.database_url)
        problems += _proxy_problems(self.trusted_proxies)
        if not self.console_cookie_secure:
            problems.append("CASEBRIDGE_CONSOLE_COOKIE_SECURE must be true in production")
        if self.route_table is not None and self.route_table.exists():
            from casebridge.routing.routes import load_route_table

            problems += [
                f"CASEBRIDGE_ROUTE_TABLE: {problem}"
                for problem in load_route_table(self.route_table).production_problems()
            ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def gateway_problems(self) -> list[str]:
        """What production refuses in a gateway (``serve``) on top of every process's checks.

        Only the gateway counts failed authentications, so only it needs a shared storage: in
        memory every process and replica would count on its own, and a guesser spreading attempts
        over them would get the limit times their number.
        """
        if self.environment != "production":
            return []
        if urlsplit(self.rate_limit_storage).scheme in ("", "memory"):
            return [
                "CASEBRIDGE_RATE_LIMIT_STORAGE must be a shared storage (redis://…) in "
                "production; in memory each gateway process counts failed logins on its own"
            ]
        return []

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first, then ``CASEBRIDGE_*_FILE`` secrets, then the ``.env`` file."""
        return (
            init_settings,
            env_settings,
            SecretFilesSource(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    @property
    def effective_database_url(self) -> str:
        """The configured store, or the embedded SQLite file."""
        return self.database_url or f"sqlite:///{self.data_dir / 'casebridge.db'}"

    @property
    def effective_broker_url(self) -> str:
        """The configured broker, or kombu's SQLAlchemy transport on a SQLite file."""
        return self.broker_url or f"sqla+sqlite:///{self.data_dir / 'broker.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated once; invalid settings raise ConfigError."""
    try:
        return Settings()
    except ValidationError as exc:
        details = "; ".join(
            f"CASEBRIDGE_{'_'.join(str(p) for p in err['loc']).upper() or 'SETTINGS'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {details}") from None
