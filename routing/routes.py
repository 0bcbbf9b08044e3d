"""The route table: which agencies exist, how each receives, who may send what to whom.

A route table is a YAML or TOML file, validated on load; an invalid file raises ConfigError
naming the file and the field. Routes are matched in file order and the first match wins (like
firewall rules), so a narrow route placed before a broad one refines it without widening anything.
A message whose sender, purpose or recipients match no route is refused at the door with
:class:`~casebridge.errors.NoRoute`: nothing about it reaches the consent gate or the broker.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from casebridge.canonical_model import (
    AgencyKind,
    Category,
    MessageType,
    Purpose,
    TransferEnvelope,
)
from casebridge.consent.policy import TransferPolicy
from casebridge.errors import ConfigError, NoRoute, Problem, StatutoryNotAdmitted

AGENCY_ID = r"^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$"
DEFAULT_RESPONSE_DAYS = 10


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(_Strict):
    """How often and how patiently a push delivery is retried (exponential backoff, jitter)."""

    max_attempts: int = Field(default=6, ge=1, le=100)
    initial_backoff: float = Field(default=0.5, gt=0, description="Seconds before retry 1.")
    max_backoff: float = Field(default=30.0, gt=0, description="Cap of one wait, seconds.")
    jitter: float = Field(default=0.5, ge=0, description="Up to this many seconds added.")


class ClientCertificate(_Strict):
    """The TLS client certificate casebridge presents to a recipient that asks for one (mTLS)."""

    cert_file: Path = Field(description="PEM certificate (chain) casebridge presents.")
    key_file: Path = Field(description="PEM private key of that certificate.")


class PushDelivery(_Strict):
    """The agency registered an HTTP(S) endpoint; casebridge POSTs each message to it."""

    mode: Literal["push"] = "push"
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    timeout: float = Field(default=10.0, gt=0, le=300, description="Seconds per attempt.")
    retry: RetryPolicy | None = None
    signing_secret_files: list[Path] = Field(
        default_factory=list, max_length=8,
        description="Files each holding one Standard Webhooks secret (whsec_<base64>); every push "
        "is signed with each, so a recipient keeps verifying while it rotates its secret.",
    )
    client_certificate: ClientCertificate | None = None
    ca_file: Path | None = Field(
        default=None, description="PEM CA bundle verifying the recipient's server certificate "
        "(default: the system's trust store).",
    )
    allow_insecure_http: bool = Field(
        default=False,
        description="Production accepts an http:// URL only with this set and a loopback host.",
    )


class PullDelivery(_Strict):
    """The agency fetches its messages from its outbox and acknowledges them."""

    mode: Literal["pull"] = "pull"


Delivery = Annotated[PushDelivery | PullDelivery, Field(discriminator="mode")]


class AgencyConfig(_Strict):
    """One agency: its id, kind, system (adapter name) and how it receives."""

    id: Annotated[str, Field(pattern=AGENCY_ID)]
    kind: AgencyKind
    #: How people know the agency ("Jobcenter Duisburg"); reports and the console show it.
    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    system: str
    delivery: Delivery
    #: The version of its system's interface the agency runs (e.g. "2.3" for a job centre
    #: that has not installed 2.4); absent: the newest casebridge writes.
    interface_version: Annotated[str, Field(pattern=r"^\d{1,3}(\.\d{1,3}){0,3}$")] | None = None

    @field_validator("interface_version", mode="before")
    @classmethod
    def _quoted(cls, value: object) -> object:
        # YAML reads 2.10 as the number 2.1: a version must be written as text.
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f'write the version in quotes ("{value}"): it is text, not a number')
        return value


class RouteConfig(_Strict):
    """Senders (ids or kinds) may send these purposes to these recipients (ids or kinds)."""

    sender: str | list[str]
    purposes: list[Purpose] = Field(min_length=1)
    recipients: list[str] = Field(min_length=1)
    message_types: list[MessageType] | None = Field(
        default=None, description="Restrict the route to these message types; absent: all."
    )
    required_categories: list[Category] = Field(default_factory=list)
    statutory_bases: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,63}$")]] = Field(
        default_factory=list,
        description="Legal bases admitted for transfers without consent (rule 8); empty: none.",
    )
    response_days: int = Field(default=DEFAULT_RESPONSE_DAYS, ge=1, le=365)

    @property
    def senders(self) -> list[str]:
        """The sender selectors as a list."""
        return [self.sender] if isinstance(self.sender, str) else list(self.sender)


class RouteTableConfig(_Strict):
    """The whole file."""

    version: Literal[1] = 1
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    agencies: list[AgencyConfig] = Field(min_length=1)
    routes: list[RouteConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> RouteTableConfig:
        from casebridge.adapters.registry import adapter_class, installed, systems

        ids = [a.id for a in self.agencies]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"agencies: id {', '.join(dupes)} is listed twice")
        available = systems()
        for n, agency in enumerate(self.agencies):
            if agency.system not in available:
                raise ValueError(
                    f"agencies.{n}.system: no installed adapter provides system "
                    f"'{agency.system}' (installed systems: {installed()})"
                )
            declared = agency.interface_version
            if declared is None:
                continue
            versions = adapter_class(agency.system).interface_versions
            if declared not in versions:
                written = (f"writes versions {', '.join(versions)}" if versions
                           else "has one interface version and takes no interface_version")
                raise ValueError(
                    f"agencies.{n}.interface_version: '{declared}' is not a version of "
                    f"'{agency.system}' (its adapter {written})"
                )
        selectors = set(ids) | {k.value for k in AgencyKind}
        for n, route in enumerate(self.routes):
            for field, values in (("sender", route.senders), ("recipients", route.recipients)):
                unknown = [v for v in values if v not in selectors]
                if unknown:
                    raise ValueError(
                        f"routes.{n}.{field}: '{unknown[0]}' is neither an agency id nor a kind"
                    )
        return self


@dataclass(frozen=True, slots=True)
class RecipientRoute:
    """What the route table says about one recipient of one message."""

    agency: AgencyConfig
    route_index: int
    policy: TransferPolicy
    response_days: int


class RouteTable:
    """A validated route table with look-ups for the pipeline and the workers."""

    def __init__(self, config: RouteTableConfig, *, source: str = "<routes>") -> None:
        self.config = config
        self.source = source
        self.agencies: dict[str, AgencyConfig] = {a.id: a for a in config.agencies}

    def agency(self, agency_id: str) -> AgencyConfig:
        """The agency with this id; NoRoute if the table does not know it."""
        agency = self.agencies.get(agency_id)
        if agency is None:
            raise NoRoute(f"agency '{agency_id}' is not in the route table")
        return agency

    def retry_policy(self, agency: AgencyConfig) -> RetryPolicy:
        """The agency's own retry policy or the table's default."""
        if isinstance(agency.delivery, PushDelivery) and agency.delivery.retry is not None:
            return agency.delivery.retry
        return self.config.retry

    def name_of(self, agency_id: str) -> str:
        """The agency's configured name; its id where the table names it not (or knows it not)."""
        agency = self.agencies.get(agency_id)
        return agency.name if agency is not None and agency.name else agency_id

    @staticmethod
    def _selects(selectors: list[str], agency: AgencyConfig) -> bool:
        return agency.id in selectors or agency.kind.value in selectors

    def route_for(
        self, sender: str, recipient: str, purpose: Purpose, message_type: MessageType
    ) -> RecipientRoute | None:
        """The first route admitting this transfer, or None."""
        src, dst = self.agencies.get(sender), self.agencies.get(recipient)
        if src is None or dst is None:
            return None
        for n, route in enumerate(self.config.routes):
            if (
                self._selects(route.senders, src)
                and purpose in route.purposes
                and self._selects(route.recipients, dst)
                and (route.message_types is None or message_type in route.message_types)
            ):
                policy = TransferPolicy(
                    required_categories=frozenset(route.required_categories),
                    statutory_bases=frozenset(route.statutory_bases),
                )
                return RecipientRoute(dst, n, policy, route.response_days)
        return None

    @staticmethod
    def statutory_refusal(envelope: TransferEnvelope, hit: RecipientRoute) -> str | None:
        """Why the route ``hit`` refuses ``envelope``'s statutory claim (rule 8), or None.

        A child-protection transfer passes only as a statutory one (nobody can consent to it),
        so it needs a legal basis with a justification that its route admits; a claim on a
        route that admits no basis, or another basis, is refused too rather than left to the
        consents: the sender asked for an exception the route does not grant.
        """
        claim = envelope.statutory
        recipient = hit.agency.id
        if claim is None:
            if envelope.purpose is Purpose.CHILD_PROTECTION:
                return (f"a child-protection notification to {recipient} needs a legal basis "
                        "and a written justification")
            return None
        admitted = hit.policy.statutory_bases
        if claim.legal_basis in admitted:
            return None
        if not admitted:
            return (f"the route to {recipient} admits no transfer without consent (legal "
                    f"basis '{claim.legal_basis}')")
        return (f"legal basis '{claim.legal_basis}' is not admitted on the route to "
                f"{recipient} (admitted: {', '.join(sorted(admitted))})")

    @staticmethod
    def version_refusal(envelope: TransferEnvelope, hit: RecipientRoute) -> str | None:
        """Why the interface version the recipient runs cannot carry ``envelope`` (a
        child-protection notification to a system older than the notification), or None."""
        from casebridge.adapters.registry import adapter_class

        version = hit.agency.interface_version
        if version is None:
            return None
        why = adapter_class(hit.agency.system).version_refusal(envelope, version)
        return None if why is None else f"{hit.agency.id}: {why}"

    def check(self, envelope: TransferEnvelope) -> dict[str, RecipientRoute]:
        """The route of every recipient of ``envelope``; NoRoute naming what is missing,
        StatutoryNotAdmitted when a route does not admit the message's statutory claim."""
        if envelope.sender not in self.agencies:
            raise NoRoute(f"sender '{envelope.sender}' is not in the route table")
        found: dict[str, RecipientRoute] = {}
        missing: list[str] = []
        for recipient in envelope.recipients:
            hit = self.route_for(
                envelope.sender, recipient, envelope.purpose, envelope.message_type
            )
            if hit is None:
                missing.append(recipient)
            else:
                found[recipient] = hit
        if missing:
            unknown = [r for r in missing if r not in self.agencies]
            why = (
                f"recipient(s) {', '.join(unknown)} not in the route table"
                if unknown
                else f"no route admits {envelope.message_type} for purpose '{envelope.purpose}' "
                f"to {', '.join(missing)}"
            )
            raise NoRoute(f"message {envelope.message_id} from {envelope.sender}: {why}")
        refusals = [r for r in (self.statutory_refusal(envelope, h) or self.version_refusal(
            envelope, h) for h in found.values()) if r]
        if refusals:
            raise StatutoryNotAdmitted(
                f"message {envelope.message_id} from {envelope.sender}: {refusals[0]}",
                problems=[Problem(envelope.message_id, r) for r in refusals],
            )
        return found

    def production_problems(self) -> list[str]:
        """What production refuses in this table: unsigned pushes, plain http to anyone else."""
        problems = []
        for n, agency in enumerate(self.config.agencies):
            target = agency.delivery
            if not isinstance(target, PushDelivery):
                continue
            where = f"{self.source}: agencies.{n}.delivery ({agency.id})"
            if not target.signing_secret_files:
                problems.append(f"{where}: a push needs signing_secret_files in production")
            if target.url.startswith("http://") and not (
                target.allow_insecure_http and _is_loopback(urlsplit(target.url).hostname)
            ):
                problems.append(
                    f"{where}: url must be https:// in production (http:// only with "
                    "allow_insecure_http for a recipient on loopback)"
                )
        return problems

    def policies(self, routes: Mapping[str, RecipientRoute]) -> dict[str, TransferPolicy]:
        """recipient → TransferPolicy, as the consent gate takes them."""
        return {r: hit.policy for r, hit in routes.items()}


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host or "").is_loopback
    except ValueError:
        return False


def _format_error(exc: ValidationError, source: str) -> ConfigError:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        # checks across the file name their field themselves, after pydantic's "Value error, "
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {loc}: {msg}" if loc else f"{source}: {msg}")
    return ConfigError(
        lines[0] if len(lines) == 1 else f"{source}: invalid route table",
        problems=[Problem("", line) for line in lines],
    )


def parse_route_table(text: str, *, source: str, fmt: Literal["yaml", "toml"]) -> RouteTable:
    """Validate route-table text; ConfigError naming ``source`` and the field if invalid."""
    try:
        data = yaml.safe_load(text) if fmt == "yaml" else tomllib.loads(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "syntax"
        raise ConfigError(f"{source}: {where}: not valid {fmt.upper()}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the route table must be a mapping with 'agencies'")
    try:
        return RouteTable(RouteTableConfig.model_validate(data), source=source)
    except ValidationError as exc:
        raise _format_error(exc, source) from None


def load_route_table(path: Path) -> RouteTable:
    """Load a ``.yaml``/``.yml`` or ``.toml`` route table file."""
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml"):
        raise ConfigError(f"{path}: a route table is a .yaml, .yml or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the route table ({exc.strerror})") from None
    return parse_route_table(text, source=str(path), fmt="toml" if suffix == ".toml" else "yaml")


def demo_route_table_text() -> str:
    """The pilot region's route table shipped with casebridge (used by the demo)."""
    return (
        importlib.resources.files("casebridge.routing").joinpath("demo_routes.yaml")
        .read_text(encoding="utf-8")
    )


def demo_route_table(urls: Mapping[str, str] | None = None) -> RouteTable:
    """The demo route table; ``urls`` maps agency ids to push URLs that replace the shipped ones."""
    urls = urls or {}
    data = yaml.safe_load(demo_route_table_text())
    for agency in data["agencies"]:
        if agency["id"] in urls:
            agency["delivery"] = {**agency["delivery"], "mode": "push", "url": urls[agency["id"]]}
    return RouteTable(RouteTableConfig.model_validate(data), source="demo_routes.yaml")


def configured_route_table() -> RouteTable:
    """The route table named by CASEBRIDGE_ROUTE_TABLE; ConfigError if none is configured."""
    from casebridge.settings import get_settings

    path = get_settings().route_table
    if path is None:
        raise ConfigError(
            "no route table: set CASEBRIDGE_ROUTE_TABLE to a .yaml or .toml file "
            "(routing/demo_routes.yaml shows the format)"
        )
    return load_route_table(path)
