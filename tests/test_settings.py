"""One settings object; embedded defaults locally, refused in production."""

from __future__ import annotations

import pytest

from casebridge.errors import ConfigError
from casebridge.settings import Settings, get_settings


def test_local_defaults_are_embedded(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'casebridge.db'}"
    assert settings.effective_broker_url.startswith("sqla+sqlite:///")
    assert settings.max_message_bytes == 5 * 1024 * 1024


def test_environment_variables_are_read(monkeypatch) -> None:
    monkeypatch.setenv("CASEBRIDGE_MAX_MESSAGE_BYTES", "1024")
    monkeypatch.setenv("CASEBRIDGE_MINOR_AGE", "16")
    settings = Settings()
    assert settings.max_message_bytes == 1024
    assert settings.minor_age == 16


@pytest.mark.parametrize(
    ("db", "broker", "complaint"),
    [
        (None, "amqp://cb:secret@rabbit:5672//", "DATABASE_URL"),
        ("sqlite:///x.db", "amqp://cb:secret@rabbit:5672//", "DATABASE_URL"),
        ("postgresql+psycopg://cb@db/cb", None, "BROKER_URL"),
        ("postgresql+psycopg://cb@db/cb", "amqp://guest:guest@rabbit:5672//", "guest"),
    ],
)
def test_production_refuses_embedded_defaults_and_default_credentials(
    monkeypatch, db, broker, complaint
) -> None:
    monkeypatch.setenv("CASEBRIDGE_ENVIRONMENT", "production")
    for name, value in (("CASEBRIDGE_DATABASE_URL", db), ("CASEBRIDGE_BROKER_URL", broker)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match=complaint):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_production_accepts_server_backends(monkeypatch) -> None:
    monkeypatch.setenv("CASEBRIDGE_ENVIRONMENT", "production")
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", "postgresql+psycopg://cb:Vq8-long-Kx2m@db/cb")
    monkeypatch.setenv("CASEBRIDGE_BROKER_URL", "amqps://cb:Vq8-long-Kx2m@rabbit:5671//")
    assert Settings().environment == "production"
