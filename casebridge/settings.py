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
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from casebridge.errors import ConfigError

DEFAULT_MAX_MESSAGE_BYTES = 5 * 1024 * 1024


def default_data_dir() -> Path:
    """Where the embedded database and broker files live unless configured otherwise."""
    return Path(user_data_dir("casebridge", appauthor=False))


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
    route_table: Path | None = Field(default=None, description="Route table file (YAML/TOML).")
    max_message_bytes: int = Field(default=DEFAULT_MAX_MESSAGE_BYTES, gt=0)
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
        elif "guest:guest@" in self.broker_url:
            problems.append("CASEBRIDGE_BROKER_URL uses the default guest credentials")
        if problems:
            raise ValueError("; ".join(problems))
        return self

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
