"""Who may call the gateway: principals (agencies and staff), their API keys and passwords.

Secrets are stored only as hashes. An API key is ``cbk_<key id>_<secret>``: the key id (16 hex
digits) is not secret and finds the row; the whole key is compared by SHA-256 with
:func:`hmac.compare_digest`. A plain hash is enough for a key with 256 random bits (nothing to
brute-force); passwords, chosen by people, go through scrypt instead. Nothing here caches a
successful look-up; the gateway reuses one for at most ``api_key_cache_seconds`` (see
:class:`casebridge.gateway.security.KeyCache`), so a revoked key or a disabled principal fails
within that time in every gateway process, and on the very next request in the revoking one.

Data access follows one pattern: keyword-only functions taking a session and returning
``X | None``; callers decide what a missing row means.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import Connection, ForeignKey, Row, String, bindparam, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from casebridge import passwords
from casebridge.db import Base, UtcDateTime, code_column
from casebridge.errors import ConflictError, InputError, NotFound


class Role(StrEnum):
    """What a principal may do (see docs/gateway.md for the permissions of each)."""

    AGENCY = "agency"
    CONSENT_DESK = "consent_desk"
    DPO = "dpo"
    ADMIN = "admin"


class PrincipalKind(StrEnum):
    """An agency's system, or a person (staff, DPO, administrator)."""

    AGENCY = "agency"
    USER = "user"


# --- tables -----------------------------------------------------------------------------------


class PrincipalRow(Base):
    """An agency system or a staff member who may call the gateway."""

    __tablename__ = "gateway_principals"

    #: The agency id for agency principals, the user name for people.
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = code_column(PrincipalKind)
    role: Mapped[str] = code_column(Role)
    #: The agency an agency principal speaks for (equal to ``name``); None for people.
    agency: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    #: Subject of the client certificate a trusted proxy verified for this agency.
    cert_subject: Mapped[str | None] = mapped_column(String(512), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ApiKeyRow(Base):
    """One API key of a principal: only its hash is stored."""

    __tablename__ = "gateway_api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    principal: Mapped[str] = mapped_column(ForeignKey("gateway_principals.name"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


# --- values -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request."""

    name: str
    kind: PrincipalKind
    role: Role
    agency: str | None
    #: How the caller proved who it is: ``api_key``, ``password`` or ``client_cert``.
    method: str
    key_id: str | None = None

    @property
    def is_agency(self) -> bool:
        """Whether the caller is an agency system."""
        return self.kind is PrincipalKind.AGENCY and self.role is Role.AGENCY


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """An API key as listed (never with its secret)."""

    key_id: str
    principal: str
    role: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A newly issued key: ``secret`` is shown once and never stored."""

    key_id: str
    principal: str
    role: str
    secret: str


KEY_PREFIX = "cbk_"
_KEY_RE = re.compile(r"^cbk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}[a-z0-9]$")


def _now() -> datetime:
    return datetime.now(UTC)


def new_api_key() -> tuple[str, str]:
    """A fresh ``(key_id, key)``: 8 random bytes of id, 32 random bytes of secret."""
    key_id = secrets.token_hex(8)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def hash_api_key(key: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


def split_api_key(key: str) -> str | None:
    """The key id of a well-formed key, or None."""
    match = _KEY_RE.match(key)
    return match.group(1) if match else None


# scrypt parameters: 16 MiB of memory per check; about 50 ms on a server core.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32
    )


def hash_password(password: str) -> str:
    """A self-describing scrypt hash: ``scrypt$n$r$p$salt$digest`` (base64)."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


#: Checked against when the user does not exist, so timing does not reveal which names exist.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored`` (always spends one KDF run)."""
    try:
        scheme, n, r, p, salt, digest = (stored or _DUMMY_HASH).split("$")
        if scheme != "scrypt":
            return False
        computed = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return stored is not None and hmac.compare_digest(computed, base64.b64decode(digest))


# --- look-ups (per request, never cached) -----------------------------------------------------


#: A principal's columns: an ORM row, or a plain row of a Core look-up selecting the same names.
_PrincipalColumns = TypeVar("_PrincipalColumns", PrincipalRow, Row)


def _active(row: _PrincipalColumns | None) -> _PrincipalColumns | None:
    return row if row is not None and row.disabled_at is None else None


def _principal(row: PrincipalRow | Row, method: str, key_id: str | None = None) -> Principal:
    return Principal(
        name=row.name, kind=PrincipalKind(row.kind), role=Role(row.role), agency=row.agency,
        method=method, key_id=key_id,
    )


_KEY_OWNER = (
    select(ApiKeyRow.key_hash, ApiKeyRow.revoked_at, PrincipalRow.name, PrincipalRow.kind,
           PrincipalRow.role, PrincipalRow.agency, PrincipalRow.disabled_at)
    .join(PrincipalRow, PrincipalRow.name == ApiKeyRow.principal)
    .where(ApiKeyRow.key_id == bindparam("key_id"))
)


def principal_for_key(db: Session | Connection, *, key: str) -> Principal | None:
    """The active principal owning an unrevoked ``key``, or None (one indexed query).

    Runs on every agency request, so it reads plain columns with one prepared statement.
    """
    key_id = split_api_key(key)
    if key_id is None:
        return None
    found = db.execute(_KEY_OWNER, {"key_id": key_id}).one_or_none()
    if found is None:
        return None
    if found.revoked_at is not None or not hmac.compare_digest(found.key_hash,
                                                                hash_api_key(key)):
        return None
    active = _active(found)
    return None if active is None else _principal(active, "api_key", key_id)


def principal_for_password(session: Session, *, name: str, password: str) -> Principal | None:
    """The active person ``name`` if ``password`` is theirs, or None."""
    row = session.get(PrincipalRow, name[:128])
    stored = row.password_hash if row is not None else None
    if not verify_password(password, stored):
        return None
    active = _active(row)
    return None if active is None else _principal(active, "password")


def principal_for_cert(session: Session, *, subject: str) -> Principal | None:
    """The active agency whose registered certificate subject is ``subject``, or None."""
    row = session.scalar(select(PrincipalRow).where(PrincipalRow.cert_subject == subject[:512]))
    active = _active(row)
    return None if active is None else _principal(active, "client_cert")


# --- provisioning (CLI) -----------------------------------------------------------------------


def _check_name(name: str, what: str) -> None:
    if not _NAME_RE.match(name):
        raise InputError(
            f"{what}: 3-64 characters of lower-case letters, digits, '.', '_' or '-'"
        )


def ensure_principal(
    session: Session, *, name: str, kind: PrincipalKind, role: Role
) -> PrincipalRow:
    """The principal ``name`` (created if new); ConflictError if it exists with another role."""
    _check_name(name, "AGENCY" if kind is PrincipalKind.AGENCY else "--user")
    if kind is PrincipalKind.AGENCY and role is not Role.AGENCY:
        raise InputError("an agency principal has the role 'agency'")
    if kind is PrincipalKind.USER and role is Role.AGENCY:
        raise InputError("--role: people are consent_desk, dpo or admin; agencies get 'agency'")
    row = session.get(PrincipalRow, name)
    if row is None:
        row = PrincipalRow(
            name=name, kind=str(kind), role=str(role),
            agency=name if kind is PrincipalKind.AGENCY else None, created_at=_now(),
        )
        session.add(row)
        session.flush()
    elif row.kind != kind or row.role != role:
        raise ConflictError(
            f"principal '{name}' exists as {row.kind} with role '{row.role}'; roles are not "
            "changed implicitly"
        )
    if row.disabled_at is not None:
        raise ConflictError(f"principal '{name}' is disabled; enable it deliberately first")
    return row


#: Bumped by every revocation and disabling in this process: look-ups cached before are void.
_revocations = [0]


def revocations() -> int:
    """How many revocations and disablings this process has made (see ``KeyCache``)."""
    return _revocations[0]


def set_disabled(session: Session, *, name: str, disabled: bool) -> bool:
    """Disable (every key, password and certificate at once) or re-enable a principal.

    Returns False if it was already in that state; NotFound if there is no such principal.
    """
    row = session.get(PrincipalRow, name)
    if row is None:
        raise NotFound(f"no principal '{name}'")
    if (row.disabled_at is not None) == disabled:
        return False
    row.disabled_at = _now() if disabled else None
    _revocations[0] += 1
    return True


def issue_key(
    session: Session, *, name: str, kind: PrincipalKind, role: Role, label: str | None = None
) -> IssuedKey:
    """Issue a new API key for ``name`` (creating the principal if new)."""
    row = ensure_principal(session, name=name, kind=kind, role=role)
    key_id, key = new_api_key()
    session.add(
        ApiKeyRow(
            key_id=key_id, principal=row.name, key_hash=hash_api_key(key),
            label=(label or None) and label[:255], created_at=_now(),
        )
    )
    session.flush()
    return IssuedKey(key_id=key_id, principal=row.name, role=row.role, secret=key)


def revoke_key(session: Session, *, key_id: str) -> KeyInfo | None:
    """Revoke a key at once; None if there is no such key; ConflictError if already revoked."""
    row = session.get(ApiKeyRow, key_id.removeprefix(KEY_PREFIX)[:32])
    if row is None:
        return None
    if row.revoked_at is not None:
        raise ConflictError(f"key '{row.key_id}' is already revoked")
    row.revoked_at = _now()
    session.flush()
    _revocations[0] += 1
    owner = session.get(PrincipalRow, row.principal)
    return KeyInfo(row.key_id, row.principal, owner.role if owner else "?", row.label,
                   row.created_at, row.revoked_at)


def list_keys(session: Session, *, principal: str | None = None) -> list[KeyInfo]:
    """Every key (of one principal, if given), oldest first."""
    stmt = (
        select(ApiKeyRow, PrincipalRow.role)
        .join(PrincipalRow, PrincipalRow.name == ApiKeyRow.principal)
        .order_by(ApiKeyRow.created_at, ApiKeyRow.key_id)
    )
    if principal is not None:
        stmt = stmt.where(ApiKeyRow.principal == principal)
    return [
        KeyInfo(k.key_id, k.principal, role, k.label, k.created_at, k.revoked_at)
        for k, role in session.execute(stmt)
    ]


def set_password(session: Session, *, name: str, password: str) -> None:
    """Set a person's password (scrypt); NotFound if no such person."""
    row = session.get(PrincipalRow, name)
    if row is None or row.kind != PrincipalKind.USER:
        raise NotFound(f"no person '{name}'; issue them a key or create them first")
    why = passwords.weakness(password)
    if why is not None:
        raise InputError(f"password: {why}; choose a longer, unusual passphrase")
    row.password_hash = hash_password(password)


def set_cert_subject(session: Session, *, agency: str, subject: str | None) -> None:
    """Register (or clear) the client-certificate subject an agency authenticates with."""
    row = session.get(PrincipalRow, agency)
    if row is None or row.kind != PrincipalKind.AGENCY:
        raise NotFound(f"no agency principal '{agency}'; issue it a key first")
    if subject is not None:
        other = session.scalar(
            select(PrincipalRow.name).where(
                PrincipalRow.cert_subject == subject, PrincipalRow.name != agency
            )
        )
        if other is not None:
            raise ConflictError(f"that certificate subject is registered for '{other}'")
    row.cert_subject = subject
