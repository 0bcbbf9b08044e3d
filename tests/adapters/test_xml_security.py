"""Hostile and broken XML for both XML adapters: each refused with a clear, data-free error."""

from __future__ import annotations

import time

import pytest
from lxml import etree

from casebridge.adapters import get_adapter, xml
from casebridge.errors import InputTooLarge, MappingError, ParseError, SchemaError

JC = "urn:de:jobcenter:schnittstelle:zuweisung:2"
SA = "urn:de:sozialamt:fallmitteilung:1"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Fallmitteilungen xmlns="urn:de:sozialamt:fallmitteilung:1">&lol9;</Fallmitteilungen>
"""


def _lines(exc: pytest.ExceptionInfo) -> list[str]:
    return exc.value.lines()


def _latin1(sample, name: str) -> bytes:
    return sample(name)


@pytest.mark.parametrize("system", ["jobcenter", "sozialamt"])
def test_xxe_cannot_read_a_file(system, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-4711")
    payload = (
        f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM '
        f'"file://{secret}">]>\n<x>&xxe;</x>'
    ).encode("latin-1")
    if system == "jobcenter":
        payload = payload.replace(b"ISO-8859-1", b"UTF-8")
    with pytest.raises(ParseError) as exc:
        get_adapter(system).parse(payload, source="evil.xml")
    text = "\n".join(_lines(exc))
    assert "TOP-SECRET" not in text
    assert "evil.xml:line 2" in text and "document type" in text


def test_the_parser_itself_does_not_resolve_external_entities(tmp_path) -> None:
    # Defence in depth: even if the DOCTYPE check were bypassed, lxml must not read the file.
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-4711")
    payload = f'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{secret}">]><x>&xxe;</x>'.encode()
    root = etree.fromstring(payload, xml._parser())
    assert "TOP-SECRET" not in etree.tostring(root).decode()


@pytest.mark.parametrize("system", ["jobcenter", "sozialamt"])
def test_billion_laughs_fails_fast_without_expansion(system) -> None:
    payload = BILLION_LAUGHS
    if system == "sozialamt":
        payload = payload.replace(b'version="1.0"?>', b'version="1.0" encoding="ISO-8859-1"?>')
    start = time.perf_counter()
    with pytest.raises(ParseError) as exc:
        get_adapter(system).parse(payload, source="lol.xml")
    assert time.perf_counter() - start < 1.0
    assert any("lol.xml:line 2" in line for line in _lines(exc))


@pytest.mark.parametrize("system", ["jobcenter", "sozialamt"])
def test_external_dtd_is_refused(system) -> None:
    enc = b"UTF-8" if system == "jobcenter" else b"ISO-8859-1"
    payload = (
        b'<?xml version="1.0" encoding="' + enc + b'"?>\n<!-- c -->\n<?pi x?>\n'
        b'<!DOCTYPE x SYSTEM "http://example.invalid/x.dtd">\n<x/>'
    )
    with pytest.raises(ParseError) as exc:
        get_adapter(system).parse(payload, source="dtd.xml")
    assert _lines(exc) == [
        "dtd.xml:line 4: document type declarations (DTDs, entities) are not accepted"
    ]


@pytest.mark.parametrize("system", ["jobcenter", "sozialamt"])
def test_oversized_input_is_refused_before_parsing(system) -> None:
    adapter = get_adapter(system, max_bytes=1000)
    # Not XML at all: a parse attempt would raise ParseError, so InputTooLarge proves the order.
    with pytest.raises(InputTooLarge) as exc:
        adapter.parse(b"\x00" * 1001, source="big.xml")
    assert "big.xml" in _lines(exc)[0] and "1000 bytes" in _lines(exc)[0]


def test_default_size_limit_is_five_megabytes(sample) -> None:
    adapter = get_adapter("jobcenter")
    assert adapter.max_bytes == 5 * 1024 * 1024
    big = sample("zuweisung").replace(b"<jc:Vermerk>", b"<jc:Vermerk>" + b"x" * 5 * 1024 * 1024)
    with pytest.raises(InputTooLarge):
        adapter.parse(big)


def test_jobcenter_refuses_latin1_bytes_declared_as_utf8(sample) -> None:
    raw = sample("zuweisung").decode("utf-8").encode("latin-1", errors="replace")
    with pytest.raises(ParseError) as exc:
        get_adapter("jobcenter").parse(raw, source="z.xml")
    assert _lines(exc) == ["z.xml:line 9: the bytes are not valid UTF-8 although UTF-8 is declared"]


def test_jobcenter_refuses_another_declared_encoding(sample) -> None:
    raw = sample("rueckmeldung").replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')
    with pytest.raises(ParseError) as exc:
        get_adapter("jobcenter").parse(raw, source="r.xml")
    assert "this format requires UTF-8" in _lines(exc)[0]


def test_sozialamt_refuses_utf8_content_declared_as_latin1(sample) -> None:
    raw = sample("fallmitteilung").decode("latin-1").encode("utf-8")
    with pytest.raises(ParseError) as exc:
        get_adapter("sozialamt").parse(raw, source="f.xml")
    (line,) = _lines(exc)
    assert line.startswith("f.xml:line ") and "ISO-8859-1" in line


def test_sozialamt_refuses_utf8_with_only_lowercase_umlauts() -> None:
    raw = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<Fallmitteilungen xmlns="'
        + SA
        + '"><Fallmitteilung id="x"><Zeitpunkt>R\u00e4ume</Zeitpunkt></Fallmitteilung>'
        "</Fallmitteilungen>"
    ).encode("utf-8")
    with pytest.raises(ParseError) as exc:
        get_adapter("sozialamt").parse(raw, source="f.xml")
    assert "UTF-8 encoded although ISO-8859-1 is declared" in _lines(exc)[0]


@pytest.mark.parametrize("declaration", [b"UTF-8", b"windows-1252"])
def test_sozialamt_refuses_other_declared_encodings(sample, declaration) -> None:
    raw = sample("fallmitteilung").replace(b"ISO-8859-1", declaration)
    with pytest.raises(ParseError) as exc:
        get_adapter("sozialamt").parse(raw, source="f.xml")
    assert "requires ISO-8859-1" in _lines(exc)[0]


def test_sozialamt_refuses_windows_1252_bytes(sample) -> None:
    raw = sample("fallmitteilung").replace(b"380 EUR", b"380 \x80")
    with pytest.raises(ParseError) as exc:
        get_adapter("sozialamt").parse(raw, source="f.xml")
    assert _lines(exc)[0].startswith("f.xml:line 25: byte in the range 0x80-0x9F")


@pytest.mark.parametrize("system", ["jobcenter", "sozialamt"])
def test_utf16_is_refused(system) -> None:
    raw = '<?xml version="1.0" encoding="UTF-16"?><x/>'.encode("utf-16")
    with pytest.raises(ParseError, match="UTF-16"):
        get_adapter(system).parse(raw)


@pytest.mark.parametrize("system", ["jobcenter", "sozialamt"])
def test_empty_input_is_refused(system) -> None:
    with pytest.raises(ParseError) as exc:
        get_adapter(system).parse(b"  \n", source="e.xml")
    assert _lines(exc) == ["e.xml:line 1: the input is empty"]


@pytest.mark.parametrize(
    ("system", "name"),
    [("jobcenter", "zuweisung"), ("jobcenter", "rueckmeldung"), ("sozialamt", "fallmitteilung")],
)
def test_truncated_file_is_refused_with_a_line(sample, system, name) -> None:
    raw = sample(name)
    with pytest.raises(ParseError) as exc:
        get_adapter(system).parse(raw[: len(raw) // 2], source="t.xml")
    assert all(line.startswith("t.xml:line ") for line in _lines(exc))


def test_jobcenter_wrong_namespace(sample) -> None:
    raw = sample("zuweisung").replace(JC.encode(), b"urn:de:jobcenter:schnittstelle:zuweisung:1")
    with pytest.raises(SchemaError) as exc:
        get_adapter("jobcenter").parse(raw, source="z.xml")
    assert _lines(exc) == [
        "z.xml:line 3: root element 'Zuweisung' is in namespace "
        "'urn:de:jobcenter:schnittstelle:zuweisung:1'; expected '" + JC + "'"
    ]


def test_sozialamt_missing_namespace(sample) -> None:
    raw = sample("fallmitteilung").replace(b' xmlns="' + SA.encode() + b'"', b"")
    with pytest.raises(SchemaError) as exc:
        get_adapter("sozialamt").parse(raw, source="f.xml")
    assert "is in no namespace" in _lines(exc)[0]


def test_jobcenter_missing_required_element(sample) -> None:
    raw = sample("zuweisung").replace(
        b"    <jc:NachrichtenID>JC-DU-2026-000123</jc:NachrichtenID>\n", b""
    )
    with pytest.raises(SchemaError) as exc:
        get_adapter("jobcenter").parse(raw, source="z.xml")
    (line,) = _lines(exc)
    assert line.startswith("z.xml:line 5: Element 'ErstelltAm'") and "NachrichtenID" in line


def test_sozialamt_missing_required_element(sample) -> None:
    raw = sample("fallmitteilung").replace(b"<Von>sozialamt-duisburg</Von>", b"")
    with pytest.raises(SchemaError) as exc:
        get_adapter("sozialamt").parse(raw, source="f.xml")
    (line,) = _lines(exc)
    assert line.startswith("f.xml:line 8: Element 'An'") and "Von" in line


def test_jobcenter_invalid_date_names_the_element_not_the_value(sample) -> None:
    raw = sample("zuweisung").replace(b"1988-04-12", b"1988-02-30")
    with pytest.raises(SchemaError) as exc:
        get_adapter("jobcenter").parse(raw, source="z.xml")
    (line,) = _lines(exc)
    assert line.startswith("z.xml:line 18: Element 'Geburtsdatum'")
    assert "1988" not in line


@pytest.mark.parametrize(
    ("old", "new", "lineno", "element"),
    [
        (b"<GebDatum>12.04.1988", b"<GebDatum>30.02.1988", 19, "GebDatum"),
        (b"<Termin>03.12.2026 09:30", b"<Termin>03.12.2026 25:30", 11, "Termin"),
        (b"<Zeitpunkt>21.11.2026 10:02", b"<Zeitpunkt>32.11.2026 10:02", 6, "Zeitpunkt"),
    ],
)
def test_sozialamt_invalid_date(sample, old, new, lineno, element) -> None:
    raw = sample("fallmitteilung").replace(old, new)
    with pytest.raises(MappingError) as exc:
        get_adapter("sozialamt").parse(raw, source="f.xml")
    (line,) = _lines(exc)
    assert line.startswith(f"f.xml:line {lineno}: '{element}': not a valid date")
    assert new.split(b">")[1].decode() not in line


def test_sozialamt_date_in_wrong_notation(sample) -> None:
    raw = sample("fallmitteilung").replace(b"<GebDatum>12.04.1988", b"<GebDatum>1988-04-12")
    with pytest.raises(SchemaError) as exc:
        get_adapter("sozialamt").parse(raw, source="f.xml")
    assert _lines(exc)[0].startswith("f.xml:line 19: Element 'GebDatum'")
    assert "1988" not in _lines(exc)[0]


def test_unknown_zweck_code(sample) -> None:
    raw = sample("zuweisung").replace(b'schluessel="ZUW"', b'schluessel="XY"')
    with pytest.raises(SchemaError) as exc:
        get_adapter("jobcenter").parse(raw, source="z.xml")
    (line,) = _lines(exc)
    assert line.startswith("z.xml:line 9: Element 'Zweck', attribute 'schluessel'")
    assert "'XY'" not in line and "{'ZUW', 'FK', 'KP', 'KS'}" in line


def test_unknown_anlass(sample) -> None:
    raw = sample("fallmitteilung").replace(b"<Anlass>Fallkonferenz", b"<Anlass>Sonstiges")
    with pytest.raises(SchemaError) as exc:
        get_adapter("sozialamt").parse(raw, source="f.xml")
    (line,) = _lines(exc)
    assert line.startswith("f.xml:line 10: Element 'Anlass'") and "Sonstiges" not in line


@pytest.mark.parametrize(
    ("system", "name", "old", "new"),
    [
        ("jobcenter", "rueckmeldung", b">begonnen<", b">pausiert<"),
        ("jobcenter", "zuweisung", b'kategorie="sucht"', b'kategorie="strafe"'),
        ("sozialamt", "fallmitteilung", b'bereich="Sucht"', b'bereich="Strafe"'),
    ],
)
def test_unknown_codes(sample, system, name, old, new) -> None:
    raw = sample(name).replace(old, new)
    if old not in sample(name):
        raw = sample(name).replace(b'bereich="Gesundheit"', new)
    with pytest.raises(SchemaError) as exc:
        get_adapter(system).parse(raw, source="c.xml")
    assert all(line.startswith("c.xml:line ") for line in _lines(exc))


@pytest.mark.parametrize(
    ("system", "name", "anchor"),
    [
        ("jobcenter", "zuweisung", b"</jc:Kunde>"),
        ("sozialamt", "fallmitteilung", b"</Person>"),
    ],
)
def test_unknown_element_is_rejected(sample, system, name, anchor) -> None:
    prefix = b"jc:" if system == "jobcenter" else b""
    extra = b"<" + prefix + b"Religion>geheim</" + prefix + b"Religion>"
    raw = sample(name).replace(anchor, extra + anchor)
    with pytest.raises(SchemaError) as exc:
        get_adapter(system).parse(raw, source="u.xml")
    assert "Religion" in _lines(exc)[0] and "geheim" not in _lines(exc)[0]


def test_sanitise_removes_values_but_keeps_names() -> None:
    msg = (
        "Element '{urn:x:y}Geburtsdatum': 'Yılmaz 1988' is not a valid value of the atomic "
        "type 'Datum'."
    )
    assert xml.sanitise(msg) == (
        "Element 'Geburtsdatum': the value is not a valid value of the atomic type 'Datum'."
    )
    assert "Ayşe" not in xml.sanitise(
        "[facet 'pattern'] The value 'Ayşe' is not accepted by the pattern '[0-9]{5}'."
    )
