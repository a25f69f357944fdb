"""The hardened parser: DTDs refused, entities never expanded, no network, no file access, no XInclude.

Each attack is tried twice: through parse_untrusted (refused up front) and, where it matters, through the
configured lxml parser alone with the up-front check bypassed, to show the parser is safe on its own.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from adapter.errors import InputError, UnsafeInputError
from adapter.fhirxml import secure
from adapter.fhirxml.secure import parse_untrusted

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
<lolz>&lol9;</lolz>"""

XXE_FILE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<r>&xxe;</r>"""

XINCLUDE = b"""<r xmlns:xi="http://www.w3.org/2001/XInclude">
<xi:include href="file:///etc/passwd" parse="text"/></r>"""


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, int]]:
    """A loopback TCP listener: had libxml2 fetched anything, the connection would wait in its backlog."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    try:
        yield server, server.getsockname()[1]
    finally:
        server.close()


def assert_no_connection(server: socket.socket, attack: str) -> None:
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        return
    conn.close()
    pytest.fail(f"{attack}: the parser connected to the network")


def network_attacks(port: int) -> dict[str, bytes]:
    url = f"http://127.0.0.1:{port}"
    return {
        "external DTD": f'<?xml version="1.0"?><!DOCTYPE r SYSTEM "{url}/x.dtd"><r/>'.encode(),
        "external entity": f'<!DOCTYPE r [<!ENTITY e SYSTEM "{url}/e.txt">]><r>&e;</r>'.encode(),
        "parameter entity": f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]><r/>'.encode(),
        "public id": f'<!DOCTYPE r PUBLIC "-//X//DTD X//EN" "{url}/pub.dtd"><r/>'.encode(),
    }


def test_a_plain_document_parses() -> None:
    root = parse_untrusted(b'<?xml version="1.0" encoding="UTF-8"?><a x="1"><!-- gone --><?pi gone?><b/></a>')
    assert etree.tostring(root) == b'<a x="1"><b/></a>'


def test_billion_laughs_is_refused_quickly() -> None:
    with pytest.raises(UnsafeInputError, match="DTDs and entities are not allowed"):
        parse_untrusted(BILLION_LAUGHS, source="bomb.xml")


def test_billion_laughs_does_not_expand_in_the_bare_parser() -> None:
    try:
        root = etree.fromstring(BILLION_LAUGHS, secure._parser())
    except etree.XMLSyntaxError:
        return  # libxml2's amplification limit stopped it: also safe
    assert len(etree.tostring(root)) < 1000


def test_xxe_file_is_refused_and_never_read() -> None:
    with pytest.raises(UnsafeInputError):
        parse_untrusted(XXE_FILE)
    root = etree.fromstring(XXE_FILE, secure._parser())
    assert b"root:" not in etree.tostring(root)


def test_network_dtds_and_entities_never_touch_the_network(
    listener: tuple[socket.socket, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, port = listener
    asked: list[str] = []
    deny = secure._DenyResolver.resolve

    def spy(self: secure._DenyResolver, url: str, public_id: str, context: object) -> object:
        asked.append(url)
        return deny(self, url, public_id, context)

    monkeypatch.setattr(secure._DenyResolver, "resolve", spy)
    for attack, document in network_attacks(port).items():
        with pytest.raises(UnsafeInputError):
            parse_untrusted(document)
        assert asked == [], attack  # refused before libxml2 saw the DTD
        etree.fromstring(document, secure._parser())
        assert_no_connection(server, attack)
        assert asked == [], attack  # the bare parser never even asked for the external resource


def _evil_dtd_document(tmp_path: Path) -> bytes:
    """A document whose parameter entity names a file that is not a valid DTD: reading it fails the parse."""
    evil = tmp_path / "evil.dtd"
    evil.write_text("this is not a DTD")
    return f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{evil.as_uri()}"> %p;]><r/>'.encode()


def test_external_parameter_entity_file_is_never_read(tmp_path: Path) -> None:
    document = _evil_dtd_document(tmp_path)
    with pytest.raises(UnsafeInputError):
        parse_untrusted(document)
    assert etree.tostring(etree.fromstring(document, secure._parser())) == b"<r/>"


def test_collect_ids_false_would_read_the_file_but_the_deny_resolver_stops_it(tmp_path: Path) -> None:
    """Pins the trap documented in secure._DenyResolver: lxml's collect_ids=False makes libxml2 load external
    parameter entities despite load_dtd=False. Without the resolver the file is read; with it, it is not."""
    document = _evil_dtd_document(tmp_path)
    options = {"resolve_entities": False, "load_dtd": False, "no_network": True, "collect_ids": False}
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(document, etree.XMLParser(**options))  # type: ignore[arg-type]
    guarded = etree.XMLParser(**options)  # type: ignore[arg-type]
    guarded.resolvers.add(secure._DenyResolver())
    assert etree.tostring(etree.fromstring(document, guarded)) == b"<r/>"


class _FetchingResolver(etree.Resolver):
    """What a careless application might install: fetch whatever the document names."""

    def resolve(self, system_url: str, public_id: str, context: object) -> object:  # type: ignore[override]
        host, port = system_url.split("/")[2].split(":")
        socket.create_connection((host, int(port)), timeout=1).close()
        return self.resolve_string("", context)  # type: ignore[call-arg]


def test_the_listener_would_have_seen_a_fetch(listener: tuple[socket.socket, int]) -> None:
    """Control for the test above: a parser that loads DTDs reaches the listener. (This libxml2 build has no
    HTTP client of its own, so the control fetches through a resolver; the hardened parser must not depend on
    that: it never asks.)"""
    server, port = listener
    careless = etree.XMLParser(load_dtd=True, no_network=False, resolve_entities=True)
    careless.resolvers.add(_FetchingResolver())
    etree.fromstring(network_attacks(port)["external DTD"], careless)
    conn, _ = server.accept()
    conn.close()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_doctype_in_other_encodings_is_refused(encoding: str) -> None:
    document = f'<?xml version="1.0" encoding="{encoding.upper()}"?><!DOCTYPE r><r/>'.encode(encoding)
    with pytest.raises(UnsafeInputError):
        parse_untrusted(document)


def test_docinfo_check_alone_refuses_a_doctype(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the byte scan miss a DOCTYPE (in an encoding it does not know), the parsed tree betrays it."""
    monkeypatch.setattr(secure, "_MARKERS", ())
    for document in (XXE_FILE, b"<!DOCTYPE r><r/>", b'<!DOCTYPE r SYSTEM "x.dtd"><r/>'):
        with pytest.raises(UnsafeInputError):
            parse_untrusted(document)


def test_xinclude_is_not_processed() -> None:
    root = parse_untrusted(XINCLUDE)
    assert root[0].tag == "{http://www.w3.org/2001/XInclude}include"
    assert b"root:" not in etree.tostring(root)


def test_undeclared_entity_is_malformed() -> None:
    with pytest.raises(InputError, match="line 1") as info:
        parse_untrusted(b"<r>&nbsp;</r>", source="x.xml")
    assert not isinstance(info.value, UnsafeInputError)
    assert info.value.problems[0].location == "x.xml"


def test_malformed_xml_names_the_line() -> None:
    with pytest.raises(InputError) as info:
        parse_untrusted(b"<a>\n<b>\n</a>", source="in.xml")
    assert info.value.problems[0].message.startswith("line 3: malformed XML")


def test_empty_input_is_malformed() -> None:
    with pytest.raises(InputError):
        parse_untrusted(b"")


def test_too_deep_nesting_is_refused() -> None:
    depth = 5000  # beyond libxml2's limit without huge_tree
    with pytest.raises(InputError):
        parse_untrusted(b"<a>" * depth + b"</a>" * depth)


SCHEMA = etree.XMLSchema(
    etree.fromstring(
        b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="visit"><xs:complexType><xs:sequence>
    <xs:element name="score" type="xs:integer"/>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>"""
    )
)


def test_schema_valid_document_passes() -> None:
    assert parse_untrusted(b"<visit><score>3</score></visit>", schema=SCHEMA).tag == "visit"


def test_schema_violations_carry_line_and_message() -> None:
    with pytest.raises(InputError) as info:
        parse_untrusted(b"<visit>\n<score>three</score>\n</visit>", source="v.xml", schema=SCHEMA)
    problem = info.value.problems[0]
    assert problem.location == "v.xml"
    assert problem.message.startswith("line 2: ")
    assert "score" in problem.message


def test_each_thread_gets_its_own_hardened_parser() -> None:
    from concurrent.futures import ThreadPoolExecutor

    main = secure._parser()  # alive throughout, so no thread's parser can reuse its id
    with ThreadPoolExecutor(max_workers=2) as pool:
        parsers = list(pool.map(lambda _: id(secure._parser()), range(8)))
        roots = list(pool.map(lambda i: parse_untrusted(f"<r n='{i}'/>".encode()).get("n"), range(8)))
    assert roots == [str(i) for i in range(8)]
    assert id(main) not in parsers
    with pytest.raises(UnsafeInputError), ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(parse_untrusted, XXE_FILE).result()
