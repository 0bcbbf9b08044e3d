"""Reading native XML safely: one hardened parser, encoding checks, XSD validation.

Shared by the XML-speaking adapters (jobcenter, sozialamt). The order of the checks matters:

1. the caller bounds the size (``Adapter.check_size``) before anything here runs;
2. :func:`check_encoding` compares the bytes with the encoding the format prescribes, before the
   parser decodes them (libxml2 would otherwise guess or replace silently);
3. :func:`refuse_doctype` rejects any document type declaration by scanning the prolog, so a
   billion-laughs or XXE payload is refused without the parser ever seeing its entities;
4. :func:`parse` uses lxml with entity resolution, DTD loading, DTD validation and network access
   off and ``huge_tree`` off (libxml2's own size/depth limits stay on) -- defence in depth;
5. :func:`validate` checks the tree against the format's XSD and reports every violation with its
   line number.

Every error is a :class:`~casebridge.errors.AdapterError` whose problems name ``<source>:line N``
and never quote the offending value: libxml2 puts values into its messages, :func:`sanitise`
removes them.
"""

from __future__ import annotations

import codecs
import functools
import operator
import re
import threading
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

from lxml import etree

from casebridge.errors import MappingError, ParseError, Problem, SchemaError

#: libxml2 reports at most this many problems per message; more would only repeat the first.
MAX_PROBLEMS = 20

_DECLARATION = re.compile(rb"^<\?xml\s[^>]{0,300}?\?>")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]{0,39})["']""")
_UTF8_BOM = b"\xef\xbb\xbf"
_C1_CONTROLS = re.compile(rb"[\x80-\x9f]")
_C1_BYTES = bytes(range(0x80, 0xA0))
_NON_ASCII = re.compile(rb"[\x80-\xff]")


def at(source: str, line: int | None) -> str:
    """The location of a problem: file (or ``<input>``) and line."""
    return f"{source}:line {line}" if line else source


def line(el: etree._Element) -> int | None:
    """The element's source line (None for elements built in memory)."""
    value = el.sourceline
    return value if isinstance(value, int) else None


def entries(log: Any) -> list[Any]:
    """The entries of an lxml error log (the stubs do not declare it iterable)."""
    return list(log)


def _line_of(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


#: Declarations as casebridge and the vendors' systems write them → (label, codec name). A
#: startswith per entry replaces two regular expressions and a codec lookup per message.
_COMMON_DECLARATIONS = {
    f"<?xml version={q}1.0{q} encoding={q}{label}{q}?>".encode("ascii"): (label, codec)
    for q in ("'", '"')
    for label, codec in (("UTF-8", "utf-8"), ("ISO-8859-1", "iso8859-1"))
}


def declared_encoding(raw: bytes) -> str | None:
    """The encoding named in the XML declaration (codec name), or None when there is none."""
    head = raw[len(_UTF8_BOM) :] if raw.startswith(_UTF8_BOM) else raw
    match = _DECLARATION.match(head)
    if not match:
        return None
    enc = _ENCODING.search(match.group(0))
    return enc.group(1).decode("ascii") if enc else None


def check_encoding(raw: bytes, expected: str, source: str) -> None:
    """Refuse bytes that are not in the encoding the format prescribes (``utf-8``/``iso8859-1``)."""
    if (
        raw[:2] in (b"\xff\xfe", b"\xfe\xff")
        or raw[:4] in (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")
        or b"\x00" in raw[:4]
    ):
        raise ParseError(
            f"{source}: UTF-16/32 input",
            problems=[
                Problem(
                    at(source, 1),
                    f"the input is UTF-16 or UTF-32; this format is {_label(expected)}",
                )
            ],
        )
    if not raw or raw.isspace():  # isspace stops at the first other byte; strip() copies
        raise ParseError(
            f"{source}: empty input", problems=[Problem(at(source, 1), "the input is empty")]
        )
    known: tuple[str | None, str] | None = None
    for declaration, value in _COMMON_DECLARATIONS.items():
        if raw.startswith(declaration):
            known = value
            break
    name, actual = known if known is not None else _actual_encoding(raw, source)
    if actual != expected:
        shown = name or "none (UTF-8)"
        raise ParseError(
            f"{source}: wrong encoding",
            problems=[
                Problem(
                    at(source, 1),
                    f"the declared encoding is {shown}; this format requires {_label(expected)}",
                )
            ],
        )
    if raw.isascii():  # the common case: valid in both formats' encodings, nothing to find
        return
    if expected == "utf-8":
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(
                f"{source}: not UTF-8",
                problems=[
                    Problem(
                        at(source, _line_of(raw, exc.start)),
                        "the bytes are not valid UTF-8 although UTF-8 is declared",
                    )
                ],
            ) from None
        return
    if raw.startswith(_UTF8_BOM):
        raise ParseError(
            f"{source}: UTF-8 BOM",
            problems=[
                Problem(
                    at(source, 1),
                    "the input starts with a UTF-8 byte order mark; this format is "
                    + _label(expected),
                )
            ],
        )
    # bytes.translate runs at memory speed; the regex is only needed to say where the byte is.
    c1 = _C1_CONTROLS.search(raw) if len(raw.translate(None, _C1_BYTES)) != len(raw) else None
    if c1:
        raise ParseError(
            f"{source}: not ISO-8859-1",
            problems=[
                Problem(
                    at(source, _line_of(raw, c1.start())),
                    "byte in the range 0x80-0x9F (a control character in ISO-8859-1): the file is "
                    "probably UTF-8 or Windows-1252, not the declared ISO-8859-1",
                )
            ],
        )
    if _is_utf8(raw):  # not ASCII (checked above), so a multi-byte sequence is in it
        first = _NON_ASCII.search(raw)
        assert first is not None
        raise ParseError(
            f"{source}: UTF-8 declared as ISO-8859-1",
            problems=[
                Problem(
                    at(source, _line_of(raw, first.start())),
                    "the text is UTF-8 encoded although ISO-8859-1 is declared",
                )
            ],
        )


def _actual_encoding(raw: bytes, source: str) -> tuple[str | None, str]:
    """(the declared name or None, the codec it names; UTF-8 when nothing is declared)."""
    name = declared_encoding(raw)
    if name is None:
        return None, "utf-8"  # XML's default
    try:
        return name, _codec_name(name)
    except LookupError:
        raise ParseError(
            f"{source}: unknown encoding",
            problems=[Problem(at(source, 1), f"the declared encoding '{name}' is unknown")],
        ) from None


@functools.lru_cache(maxsize=64)
def _codec_name(name: str) -> str:
    return codecs.lookup(name).name


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def looks_like_utf8(raw: bytes) -> bool:
    """Whether :func:`check_encoding` would refuse these Latin-1 bytes as mislabelled UTF-8."""
    return bool(_C1_CONTROLS.search(raw)) or (bool(_NON_ASCII.search(raw)) and _is_utf8(raw))


def _label(codec: str) -> str:
    return {"utf-8": "UTF-8", "iso8859-1": "ISO-8859-1"}.get(codec, codec)


#: What may precede the root element besides a DOCTYPE: blanks, the declaration and other
#: processing instructions, comments. One C-level match instead of a byte-by-byte Python loop;
#: an unclosed PI or comment ends the match there, and the parser reports the truncation.
_PROLOG = re.compile(rb"(?:[ \t\r\n]|<\?.*?\?>|<!--.*?-->)*", re.S)


def refuse_doctype(raw: bytes, source: str) -> None:
    """Reject a document type declaration in the prolog (entities, external DTDs) before parsing.

    Works on the raw bytes of an ASCII-compatible encoding (checked before), skipping the XML
    declaration, whitespace, comments and processing instructions; it reads only the prolog.
    """
    prolog = _PROLOG.match(raw, len(_UTF8_BOM) if raw.startswith(_UTF8_BOM) else 0)
    pos = prolog.end() if prolog else 0  # the pattern matches the empty string: never None
    if raw.startswith(b"<!", pos) and raw[pos + 2 : pos + 9].upper() == b"DOCTYPE":
        raise ParseError(
            f"{source}: DOCTYPE refused",
            problems=[
                Problem(
                    at(source, _line_of(raw, pos)),
                    "document type declarations (DTDs, entities) are not accepted",
                )
            ],
        )


_local = threading.local()


def _parser() -> etree.XMLParser:
    # lxml parsers keep state while parsing, so each thread gets its own.
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            # Whitespace between elements is not data in these formats (no mixed content; a
            # whitespace-only leaf keeps its text, so blank elements are still reported):
            # dropping it makes the tree smaller to build, validate and walk (~1 us/message).
            remove_blank_text=True,
            collect_ids=False,
        )
        _local.parser = parser
    return parser


def parse(raw: bytes, *, encoding: str, source: str) -> etree._Element:
    """Check encoding and prolog, then parse with the hardened parser; return the root element."""
    check_encoding(raw, encoding, source)
    refuse_doctype(raw, source)
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as exc:
        problems = [
            Problem(at(source, e.line), sanitise(e.message)) for e in entries(exc.error_log)
        ]
        if not problems:
            problems = [Problem(at(source, exc.lineno), sanitise(str(exc.msg)))]
        raise ParseError(
            f"{source}: not well-formed XML", problems=problems[:MAX_PROBLEMS]
        ) from None
    if root.getroottree().docinfo.doctype:  # type: ignore[union-attr]
        raise ParseError(
            f"{source}: DOCTYPE refused",
            problems=[
                Problem(
                    at(source, 1), "document type declarations (DTDs, entities) are not accepted"
                )
            ],
        )
    return root


def check_root(root: etree._Element, namespace: str, names: tuple[str, ...], source: str) -> str:
    """The root's local name if it is one of ``names`` in ``namespace``; SchemaError otherwise."""
    tag = root.tag
    prefix = "{" + namespace + "}"
    if isinstance(tag, str) and tag.startswith(prefix) and tag[len(prefix) :] in names:
        return tag[len(prefix) :]
    qname = etree.QName(root)
    if qname.namespace != namespace:
        found = f"namespace '{qname.namespace}'" if qname.namespace else "no namespace"
        raise SchemaError(
            f"{source}: wrong namespace",
            problems=[
                Problem(
                    at(source, line(root)),
                    f"root element '{qname.localname}' is in {found}; expected '{namespace}'",
                )
            ],
        )
    if qname.localname not in names:
        raise SchemaError(
            f"{source}: unexpected root",
            problems=[
                Problem(
                    at(source, line(root)),
                    f"root element '{qname.localname}' is not one of {', '.join(names)}",
                )
            ],
        )
    return qname.localname


_COMPILE_LOCK = threading.Lock()


def load_schema(path: Path) -> etree.XMLSchema:
    """The compiled XSD at ``path``, compiled once per thread (XMLSchema keeps an error log)."""
    cache: dict[Path, etree.XMLSchema] | None = getattr(_local, "schemas", None)
    if cache is None:
        cache = _local.schemas = {}
    schema = cache.get(path)
    if schema is None:
        # libxml2's XSD compiler is not safe to run in several threads at once (a worker with
        # --threads failed a message with XMLSchemaParseError); compiling happens once per
        # thread, so serialising it costs nothing on the validation path.
        with _COMPILE_LOCK:
            schema = cache[path] = etree.XMLSchema(etree.parse(str(path), _parser()))
    return schema


def validate(root: etree._Element, schema: etree.XMLSchema, source: str) -> None:
    """Validate against the XSD; SchemaError with one problem per violation (line numbers kept)."""
    if schema.validate(root):
        return
    problems = [Problem(at(source, e.line), sanitise(e.message)) for e in entries(schema.error_log)]
    raise SchemaError(f"{source}: schema violation", problems=problems[:MAX_PROBLEMS])


# libxml2 messages quote values in a few fixed shapes; names ('{ns}Element') are kept.
_VALUE_PATTERNS = [
    (re.compile(r"The value '.*?' (is|has)", re.S), r"The value \1"),
    (
        re.compile(r"(Element '[^']*'|attribute '[^']*'): '.*?' is not a valid value", re.S),
        r"\1: the value is not a valid value",
    ),
    (re.compile(r"\[facet '(\w+)'\] The value '.*'", re.S), r"[facet '\1'] The value"),
]
_NAMESPACE = re.compile(r"\{[A-Za-z][A-Za-z0-9+.-]*:[^}'\s]*\}")
_QUOTED = re.compile(r"'([^']*)'")
_NAMEISH = re.compile(r"^[A-Za-z_][\w.\-:]*$|^[\w:]+( [\w:]+)*$|^[^\w\s]{1,2}$")


def sanitise(message: str) -> str:
    """libxml2's message without quoted values and namespace URIs; element names stay."""
    text = message.strip()
    for pattern, repl in _VALUE_PATTERNS:
        text = pattern.sub(repl, text)
    text = _NAMESPACE.sub("", text)
    # Anything else quoted that is not a plain name (patterns, free text) is hidden as well.
    return _QUOTED.sub(lambda m: m.group(0) if _NAMEISH.match(m.group(1)) else "'…'", text)


# --- small reading helpers shared by the XML adapters -----------------------------------------

#: ``children(el)`` is ``el[:]``, the element's children as a list built in C. Iterating an
#: element first builds an iterator object (~0.25 us per container, a tenth of a jobcenter
#: message's mapping); the readers' loops over containers use this instead. (lxml-stubs do not
#: type slicing, hence the getter.)
children = cast(
    Callable[[etree._Element], list[etree._Element]], operator.itemgetter(slice(None))
)



def text_of(el: etree._Element, source: str) -> str:
    """The element's text, stripped; MappingError (naming the element) when it is blank."""
    value = (el.text or "").strip()
    if not value:
        raise blank(el, source)
    return value


def blank(el: etree._Element, source: str) -> MappingError:
    """The error :func:`text_of` raises, for readers that take the text inline (hot loops)."""
    return MappingError(
        f"{source}: empty element",
        problems=[Problem(at(source, line(el)), f"element '{etree.QName(el).localname}' is empty")],
    )


def bad_value(
    el: etree._Element, source: str, what: str, attribute: str | None = None
) -> MappingError:
    """A MappingError for a value that fails a check the XSD cannot express (e.g. 30.02.)."""
    name = etree.QName(el).localname + (f"/@{attribute}" if attribute else "")
    return MappingError(
        f"{source}: invalid value", problems=[Problem(at(source, line(el)), f"'{name}': {what}")]
    )


def iso_date(value: str, el: etree._Element, source: str, attribute: str | None = None) -> date:
    """An ISO ``YYYY-MM-DD`` date, or MappingError naming the element."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise bad_value(el, source, "not a valid date (YYYY-MM-DD)", attribute) from None


def iso_datetime(value: str, el: etree._Element, source: str, default_tz: object) -> datetime:
    """An ISO date-time; a time without offset is local time in ``default_tz``."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad_value(el, source, "not a valid date-time (ISO 8601)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=default_tz)  # type: ignore[arg-type]
    return parsed
