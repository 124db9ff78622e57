"""Round trips through the HK and Macau mappings, and the fast decoder against plain XPath.

canonical -> native XML -> canonical loses nothing the mapping fills: every written field
comes back as it was, the derived ones (``zh-Hans``, ``latin``, ``original``) come back as
their rules derive them, and original-script strings (rare Traditional characters, Portuguese
accents) survive. The decoder, which reads simple paths in one walk, gives what evaluating
every ``from`` as XPath gives, problems included, on golden documents damaged at random.
"""

from __future__ import annotations

import copy
import json
import random
import string
from base64 import b64encode
from datetime import date
from pathlib import Path
from typing import Any

import opencc
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

import adapters.hk
import adapters.macau
from gateway.domain.errors import ValidationFailedError
from gateway.domain.matters import Matter
from gateway.domain.values import hkid_check_digit, mod11_2_check
from gateway.mapping.catalog import Catalog
from gateway.mapping.decode import first_text
from gateway.mapping.fields import XmlCodec
from gateway.mapping.particulars import field_specs, read_layout
from gateway.mapping.transforms import TransformError, build
from gateway.mapping.xml import parse_xml

ROOT = Path(__file__).parents[3]
MAPPINGS = ROOT / "mappings"
CATALOG = Catalog.load(MAPPINGS / "matters")
PARTICULARS = CATALOG.particulars()
DOCUMENTS = ROOT / "tests" / "fixtures" / "documents"
CODECS = {
    "hk": adapters.hk.ADAPTER.load_codec(MAPPINGS, PARTICULARS),
    "macau": adapters.macau.ADAPTER.load_codec(MAPPINGS, PARTICULARS),
}
# The XSDs as the codecs generate them (the particulars of the catalog filled in).
SCHEMAS = {name: etree.XMLSchema(etree.fromstring(c.schema_document)) for name, c in CODECS.items()}
HK2S = opencc.OpenCC("hk2s")
ROUND_TRIP = settings(
    database=None, deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow]
)
PER_MATTER = settings(
    database=None, deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow]
)
# The latest version of each matter of the catalog.
MATTERS = {str(m.code): m for m in CATALOG.all(date.today())}


def _document_types(name: str) -> list[str]:
    spec = yaml.safe_load((ROOT / "adapters" / name / "fields" / f"{name}.yaml").read_text("utf-8"))
    (documents,) = [lst for lst in spec["lists"] if lst["to"] == "/applicant/documents"]
    return sorted(documents["fields"][0]["transform"]["map"].values())


# --- canonical documents ---------------------------------------------------------------------

# Characters HK and Macau names use that are rare, outside Big5, or have Simplified forms.
RARE_TRADITIONAL = "𨋢𠝹煊喆堃淼鑫䶮𡃁裏綫峯啓爲鄺譚鍾龔㷛"
PORTUGUESE = "ÁÂÃÀÇÉÊÍÓÔÕÚÜáâãàçéêíóôõúü"


def _words(alphabet: st.SearchStrategy[str], max_words: int = 4) -> st.SearchStrategy[str]:
    """Text as the text transform leaves it: words joined by single spaces."""
    word = st.text(alphabet, min_size=1, max_size=12)
    return st.lists(word, min_size=1, max_size=max_words).map(" ".join)


CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF) | st.sampled_from(RARE_TRADITIONAL)
LATIN = st.sampled_from(string.ascii_letters + PORTUGUESE)
# Any letter, mark, number, punctuation or symbol: no whitespace, no control character.
ANY = st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S"))
TEXT = _words(ANY | CJK)
CHINESE_NAME = st.text(CJK, min_size=1, max_size=6)
FAMILY_NAME = _words(LATIN, 2).map(str.upper).filter(lambda s: s.upper() == s)
GIVEN_NAMES = st.one_of(
    _words(LATIN, 3), st.sampled_from(["Maria da Conceição", "João", "Sio Meng", "Tai Man"])
)
CODE = st.from_regex(r"[A-Z][A-Z0-9_]{2,24}", fullmatch=True)


@st.composite
def _document(draw: st.DrawFn, kind: str) -> dict[str, str]:
    digits = lambda n: draw(st.text(string.digits, min_size=n, max_size=n))  # noqa: E731
    if kind == "HKID":
        prefix = draw(st.text(string.ascii_uppercase, min_size=1, max_size=2))
        body = digits(6)
        number = prefix + body + hkid_check_digit(prefix, body)
    elif kind == "MO_BIR":
        number = draw(st.sampled_from("157")) + digits(7)
    elif kind == "HRP":
        number = draw(st.sampled_from("HM")) + digits(8)
    elif kind == "RESIDENCE_PERMIT":
        born = draw(st.dates(date(1900, 1, 1), date(2100, 12, 31)))
        area = draw(st.sampled_from(["810000", "820000", "830000"]))
        body = area + born.strftime("%Y%m%d") + digits(3)
        number = body + mod11_2_check(body)
    else:  # HK_BRN
        number = digits(8)
    return {"type": kind, "number": number}


def _phone(country: str) -> st.SearchStrategy[str]:
    local = st.from_regex(r"[2-9][0-9]{7}", fullmatch=True)
    mainland = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
    return st.one_of(local.map(lambda n: f"+{country}{n}"), mainland.map(lambda n: f"+86{n}"))


def _digest(data: bytes) -> str:
    return "sha-256=:" + b64encode(data).decode() + ":"


AMOUNT = st.integers(0, 10**17 - 1).map(lambda cents: f"{cents // 100}.{cents % 100:02d}")
CANONICAL_ADDRESS = st.fixed_dictionaries(
    {"text": TEXT},
    optional={
        "district": _words(CJK | LATIN, 2),
        "jurisdiction": st.sampled_from(["HK", "MO", "GD"]),
        "area_code": st.from_regex(r"[0-9]{6}|[0-9]{12}", fullmatch=True),
    },
)
# A canonical value of each kind of particular, as decoding gives it back.
KINDS: dict[str, st.SearchStrategy[Any]] = {
    "text": TEXT,
    "integer": st.integers(0, 10**9 - 1).map(str),  # at most 9 digits, as validation takes
    "date": st.dates(date(1900, 1, 1), date(2100, 12, 31)).map(date.isoformat),
    "money": st.fixed_dictionaries(
        {"amount": AMOUNT, "currency": st.sampled_from(["HKD", "MOP", "CNY"])}
    ),
    "address": CANONICAL_ADDRESS,
}


@st.composite
def matter_particulars(draw: st.DrawFn, matter: Matter) -> dict[str, Any]:
    """The particulars of ``matter``: every required one, any of the optional ones; a value of
    its code list when it has one."""
    return {
        p.name: draw(st.sampled_from(p.values) if p.values else KINDS[p.kind])
        for p in matter.particulars
        if p.required or draw(st.booleans())
    }


@st.composite
def canonical_documents(draw: st.DrawFn, name: str, matter: Matter | None) -> dict[str, Any]:
    """A canonical application as decoding ``name`` XML gives it, derived fields included,
    with the particulars of ``matter`` (none without one)."""
    chinese = draw(st.none() | CHINESE_NAME)
    family = draw(FAMILY_NAME if chinese is None else st.none() | FAMILY_NAME)
    given = draw(st.none() | GIVEN_NAMES) if family else None
    names: dict[str, str] = {"original": chinese or family}
    if chinese:
        names |= {"zh-Hant": chinese, "zh-Hans": HK2S.convert(chinese)}
    if family:
        names["family_name_latin"] = family
        if given:
            names["given_names_latin"] = given
        names["latin"] = f"{family} {given}" if given else family
    applicant: dict[str, Any] = {
        "names": names,
        "birth_date": draw(st.dates(date(1900, 1, 1), date(2100, 12, 31))).isoformat(),
    }
    if draw(st.booleans()):
        applicant["phone"] = draw(_phone({"hk": "852", "macau": "853"}[name]))
    if draw(st.booleans()):
        applicant["email"] = draw(st.emails(domains=st.just("example.org")))
    if draw(st.booleans()):
        applicant["address"] = draw(CANONICAL_ADDRESS)
    types = st.sampled_from(_document_types(name))
    applicant["documents"] = draw(st.lists(types.flatmap(_document), min_size=1, max_size=10))
    particulars = draw(matter_particulars(matter)) if matter is not None else {}
    material = st.fixed_dictionaries(
        {"code": CODE, "digest": st.binary(min_size=32, max_size=32).map(_digest)},
        optional={
            "media_type": st.sampled_from(["application/pdf", "image/jpeg", "image/png"]),
            "filename": _words(ANY | LATIN, 2).map(lambda s: s + ".pdf"),
        },
    )
    code = str(matter.code) if matter is not None else None
    document: dict[str, Any] = {
        "matter": code or draw(st.from_regex(r"[0-9A-Z]{31}", fullmatch=True))
    }
    document["applicant"] = applicant
    if particulars:
        document["particulars"] = particulars
    document["materials"] = draw(st.lists(material, max_size=5))
    # a commitment as the applicant names it, or as the gateway fills it in (Art. 12): its text
    # in the applicant's language, and the text's digest
    commitment = st.fixed_dictionaries(
        {"material": CODE},
        optional={
            "language": st.sampled_from(["zh-Hant", "zh-Hans", "en", "pt"]),
            "text": TEXT,
            "digest": st.binary(min_size=32, max_size=32).map(_digest),
        },
    )
    document["commitments"] = draw(st.lists(commitment, max_size=5))
    return document


def _round_trip(name: str, document: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    codec = CODECS[name]
    body = codec.to_native(document)
    assert SCHEMAS[name].validate(etree.fromstring(body)), SCHEMAS[name].error_log
    return body, codec.decode(body).document


def _check_round_trip(name: str, document: dict[str, Any]) -> None:
    _, decoded = _round_trip(name, document)

    assert decoded == document
    names = decoded["applicant"]["names"]
    if "zh-Hant" in names:
        assert names["zh-Hans"] == HK2S.convert(names["zh-Hant"])
        assert names["original"] == names["zh-Hant"]
    else:
        assert names["original"] == names["family_name_latin"]


@pytest.mark.parametrize("name", ["hk", "macau"])
@ROUND_TRIP
@given(data=st.data())
def test_canonical_to_native_to_canonical_loses_nothing(name: str, data: st.DataObject) -> None:
    _check_round_trip(name, data.draw(canonical_documents(name, None)))


@pytest.mark.parametrize("name", ["hk", "macau"])
@pytest.mark.parametrize("code", sorted(MATTERS))
@PER_MATTER
@given(data=st.data())
def test_every_matter_round_trips_with_its_particulars(
    name: str, code: str, data: st.DataObject
) -> None:
    matter = MATTERS[code]
    document = data.draw(canonical_documents(name, matter))

    _check_round_trip(name, document)


@pytest.mark.parametrize("name", ["hk", "macau"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_original_scripts_in_particulars_survive(name: str, kind: str) -> None:
    """Traditional and Simplified text in particulars comes back unchanged (no conversion)."""
    matter = next(m for m in MATTERS.values() if any(p.kind == kind for p in m.particulars))
    document = _golden_canonical(name)
    document["matter"] = str(matter.code)
    text = {"traditional": "鄺𨋢峯 譚啓綫 裏爲", "simplified": "邝峰 谭启线 里为"}
    values = {
        "text": text["traditional"],
        "integer": "12",
        "date": "2028-02-29",
        "money": {"amount": "12.50", "currency": "MOP"},
        "address": {"text": text["simplified"], "district": text["traditional"]},
    }
    document["particulars"] = {
        p.name: p.values[-1] if p.values else values[p.kind] for p in matter.particulars
    }

    body, decoded = _round_trip(name, document)

    assert decoded["particulars"] == document["particulars"]
    if kind in ("text", "address"):
        assert text["traditional"].encode() in body
    if kind == "address":
        assert text["simplified"].encode() in body


@pytest.mark.parametrize(
    ("name", "chinese", "family", "given"),
    [
        ("hk", "鄺𨋢峯", "KWONG", "Lap Fung"),
        ("hk", "譚啓綫", "TAM", "Kai Sin"),
        ("macau", "李小明", "DA CONCEIÇÃO", "Maria João"),
        ("macau", "龔喆", "GONÇALVES", "Inês Sofia"),
    ],
)
def test_original_script_names_survive_the_round_trip(
    name: str, chinese: str, family: str, given: str
) -> None:
    document = _golden_canonical(name)
    document["applicant"]["names"] = {
        "original": chinese,
        "zh-Hant": chinese,
        "zh-Hans": HK2S.convert(chinese),
        "family_name_latin": family,
        "given_names_latin": given,
        "latin": f"{family} {given}",
    }

    body, decoded = _round_trip(name, document)

    assert decoded == document
    assert chinese.encode("utf-8") in body
    assert given.encode("utf-8") in body


# --- golden documents ------------------------------------------------------------------------


def _golden_canonical(name: str) -> dict[str, Any]:
    path = DOCUMENTS / f"{name}-individual-business.canonical.json"
    return json.loads(path.read_text("utf-8"))


@pytest.mark.parametrize("name", ["hk", "macau"])
def test_golden_canonical_encodes_to_valid_xml_that_decodes_back_to_it(name: str) -> None:
    golden = _golden_canonical(name)

    _, decoded = _round_trip(name, golden)

    # the same members in the same order: the canonical JSON is byte for byte the golden file
    assert json.dumps(decoded, ensure_ascii=False) == json.dumps(golden, ensure_ascii=False)


@pytest.mark.parametrize("name", ["hk", "macau"])
def test_golden_xml_decodes_encodes_and_decodes_to_the_same_canonical(name: str) -> None:
    codec = CODECS[name]
    native = (DOCUMENTS / f"{name}-individual-business.xml").read_bytes()

    first = codec.decode(native).document

    assert codec.decode(codec.to_native(first)).document == first


# --- the fast decoder is XPath, field by field -----------------------------------------------


def _xpath_decoder(name: str) -> Any:
    """The mapping file evaluated the plain way: one compiled XPath per field and item."""
    spec = yaml.safe_load((ROOT / "adapters" / name / "fields" / f"{name}.yaml").read_text("utf-8"))
    ns = spec["namespaces"]
    prefix, _, local = spec["root"].partition(":")
    root_tag = f"{{{ns[prefix]}}}{local}"

    def compile_rules(specs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        rules = []
        for rule in specs:
            options = rule.get("transform", "text")
            options = {"name": options} if isinstance(options, str) else options
            pointer = rule["to"].strip("/").split("/")
            xpath = etree.XPath(rule["from"], namespaces=ns) if "from" in rule else None
            transform = build(options["name"], options)
            rules.append((pointer, rule.get("from", ""), xpath, rule.get("value"), transform, rule))
        return rules

    expanded = field_specs(read_layout(spec["particulars"]), PARTICULARS)
    fields = compile_rules(spec["fields"] + expanded)
    lists = [
        (
            lst["to"].strip("/").split("/"),
            lst["each"],
            etree.XPath(lst["each"], namespaces=ns),
            compile_rules(lst["fields"]),
        )
        for lst in spec["lists"]
    ]

    def put(target: dict[str, Any], pointer: list[str], value: Any) -> None:
        for part in pointer[:-1]:
            target = target.setdefault(part, {})
        target[pointer[-1]] = value

    def decode(body: bytes) -> Any:
        root = parse_xml(body)
        if root.tag != root_tag:
            return "wrong root"
        schema = SCHEMAS[name]
        problems = [] if schema.validate(root) else [("schema", e.path) for e in schema.error_log]

        def apply(rules: list[tuple[Any, ...]], context: Any, target: dict[str, Any], at: str):
            for pointer, source, xpath, value, transform, rule in rules:
                raw = value if xpath is None else first_text(xpath(context))
                if raw is None:
                    if rule.get("required"):
                        problems.append(("required", at + source))
                    continue
                try:
                    put(target, pointer, transform(raw))
                except TransformError as exc:
                    problems.append((exc.code, at + source))

        document: dict[str, Any] = {}
        apply(fields, root, document, "")
        for pointer, source, each, rules in lists:
            items = []
            for i, element in enumerate(each(root), start=1):
                items.append({})
                apply(rules, element, items[-1], f"{source}[{i}]/")
            put(document, pointer, items)
        return json.dumps(document, ensure_ascii=False), problems

    return decode


XPATH_DECODERS = {name: _xpath_decoder(name) for name in CODECS}


def _outcome(codec: XmlCodec, body: bytes) -> Any:
    """The document as far as it maps and every problem, as the fast decoder finds them."""
    try:
        document, problems = codec.translate(body)
    except ValidationFailedError:
        return "wrong root"
    return json.dumps(document, ensure_ascii=False), [(p.code, p.xpath) for p in problems]


def _damage(root: etree._Element, rng: random.Random) -> None:
    """One random edit of the kind a sloppy or hostile sender makes."""
    elements = list(root.iter(etree.Element))[1:]
    if not elements:
        return
    element = rng.choice(elements)
    parent = element.getparent()
    action = rng.randrange(9)
    if action == 0:  # drop it
        parent.remove(element)
    elif action == 1:  # repeat it (the schema refuses; the first one is mapped)
        parent.insert(parent.index(element) + rng.randrange(2), copy.deepcopy(element))
    elif action == 2:
        element.text = rng.choice(["", "   ", "\n\t", None, " x  y ", "31/02/1990", "ABC"])
    elif action == 3:  # mixed content: its string-value is no longer its text
        etree.SubElement(element, element.tag).text = "inner"
        etree.SubElement(element, "Foreign").tail = "tail"
    elif action == 4:
        element.insert(0, etree.Comment("note"))
        element[0].tail = rng.choice(["after", ""])
    elif action == 5 and element.attrib:
        name = rng.choice(list(element.attrib))
        if rng.randrange(2):
            del element.attrib[name]
        else:
            element.set(name, rng.choice(["", " ", "PASSPORT", "HKID", "12.345", "zzz"]))
    elif action == 6:  # move it to the front or the back of its siblings
        parent.remove(element)
        parent.insert(0 if rng.randrange(2) else len(parent), element)
    elif action == 7:  # a sibling of another kind, or an attribute the mapping reads elsewhere
        etree.SubElement(parent, f"{{{etree.QName(element).namespace}}}Unexpected").text = "?"
        element.set(rng.choice(["district", "currency", "type", "moeda", "tipo"]), "X")
    else:  # hoist its children next to it
        for child in list(element):
            parent.insert(parent.index(element), child)


@pytest.mark.parametrize("name", ["hk", "macau"])
@settings(database=None, deadline=None, max_examples=300)
@given(seed=st.integers(0, 2**32 - 1), edits=st.integers(1, 8))
def test_fast_decode_gives_what_xpath_gives_on_damaged_documents(
    name: str, seed: int, edits: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 (uniform choices, not secrets)
    root = etree.parse(str(DOCUMENTS / f"{name}-individual-business.xml")).getroot()
    for _ in range(edits):
        _damage(root, rng)
    body = etree.tostring(root, encoding="UTF-8", xml_declaration=True)

    assert _outcome(CODECS[name], body) == XPATH_DECODERS[name](body)


HK_EDITS = {
    # mixed content: concat() takes string-values, more than the text before the first child
    "surname-with-children": (
        "<Surname>CHAN</Surname>",
        "<Surname>CH<!-- c -->AN<Surname>inner</Surname>tail</Surname>",
    ),
    # document order decides the union: the English name first gives the surname
    "english-name-first": (
        "<ChineseName>陳大文</ChineseName>\n    <EnglishName>\n      <Surname>CHAN</Surname>"
        "\n      <GivenNames>Tai Man</GivenNames>\n    </EnglishName>",
        "<EnglishName><Surname>CHAN</Surname><GivenNames>Tai Man</GivenNames></EnglishName>"
        "<ChineseName>陳大文</ChineseName>",
    ),
    # the first Address has no district: XPath's first attribute node is on the second one
    "district-on-a-second-address": (
        '<Address district="灣仔">',
        '<Address>first</Address><Address district="second">',
    ),
    # a blank first element is absent; the second one is not used instead
    "blank-first-email": (
        "<Email>chan.taiman@example.com</Email>",
        "<Email>  </Email><Email>chan.taiman@example.com</Email>",
    ),
    # problems of several list items come item by item, each in field order
    "several-broken-materials": (
        "</Materials>",
        '<Material mediaType=" "/><Material code="X" digest=""> </Material>'
        '<Material digest="d"/></Materials>',
    ),
    "several-broken-documents": (
        '<Document type="HRP">H12345678</Document>',
        '<Document type="HRP"> </Document><Document type="XX"/><Document>1</Document>',
    ),
}


@pytest.mark.parametrize("edit", sorted(HK_EDITS))
def test_fast_decode_gives_what_xpath_gives_on_edge_cases(edit: str) -> None:
    old, new = HK_EDITS[edit]
    text = (DOCUMENTS / "hk-individual-business.xml").read_text("utf-8")
    assert text.count(old) == 1, old
    body = text.replace(old, new).encode("utf-8")

    assert _outcome(CODECS["hk"], body) == XPATH_DECODERS["hk"](body)
