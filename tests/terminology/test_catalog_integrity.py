"""The instrument catalog as data: every entry cited, every code well formed, bands tiling the range."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import BaseModel, ValidationError

from adapter.errors import TerminologyError
from adapter.terminology import catalog, loinc, systems
from adapter.terminology.catalog import instrument, instruments
from adapter.terminology.models import Band, Cited, Instrument, RiskLevel, RiskRule

ALL = instruments()
ids = [i.key for i in ALL]


def walk(model: BaseModel) -> Iterator[BaseModel]:
    """The model and every model nested in it (fields, tuples of models)."""
    yield model
    for name in type(model).model_fields:
        value = getattr(model, name)
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, BaseModel):
                yield from walk(v)


def test_catalog_has_the_briefed_instruments() -> None:
    assert set(ids) == {"phq-9", "phq-2", "gad-7", "audit-c", "audit", "dast-10", "pcl-5", "c-ssrs-screener"}


def test_catalog_is_loaded_once() -> None:
    assert instruments() is instruments()
    assert instrument("phq-9") is instrument("PHQ9")


@pytest.mark.parametrize("inst", ALL, ids=ids)
def test_every_entry_has_a_source(inst: Instrument) -> None:
    cited = [m for m in walk(inst) if isinstance(m, Cited)]
    assert len(cited) >= 1 + len(inst.items) + len(inst.bands) + len(inst.risk_rules)
    for entry in cited:
        assert entry.source.strip(), f"{inst.key}: {type(entry).__name__} without a source"


@pytest.mark.parametrize("inst", ALL, ids=ids)
def test_every_loinc_code_has_a_valid_check_digit(inst: Instrument) -> None:
    terms = [inst.panel, inst.total, inst.risk_level]
    codes = [t.code for t in terms if t is not None] + [i.code for i in inst.items if i.code]
    assert codes, inst.key
    for code in codes:
        assert loinc.is_loinc(code), f"{inst.key}: {code}"


@pytest.mark.parametrize("inst", ALL, ids=ids)
def test_answer_and_band_codes_are_well_formed_loinc_answers(inst: Instrument) -> None:
    answer_codes = [o.code for i in inst.items for o in i.answers.options if o.code]
    coded: list[Band | RiskLevel | RiskRule] = [*inst.bands, *inst.risk_levels, *inst.risk_rules]
    answer_codes += [c.code for c in coded if c.system == systems.LOINC and c.code]
    for code in answer_codes:
        assert loinc.is_answer_code(code), f"{inst.key}: {code}"
    for entry in coded:
        assert (entry.system is None) == (entry.code is None)
        assert entry.system in (None, systems.LOINC)


@pytest.mark.parametrize("inst", [i for i in ALL if i.bands], ids=[i.key for i in ALL if i.bands])
def test_bands_cover_the_score_range_without_gap_or_overlap(inst: Instrument) -> None:
    low, high = inst.total_range
    for total in range(low, high + 1):
        holding = [b.key for b in inst.bands if b.contains(total)]
        assert len(holding) == 1, f"{inst.key}: total {total} in bands {holding}"
    assert min(b.min for b in inst.bands) == low
    assert max(b.max for b in inst.bands) == high


@pytest.mark.parametrize("inst", ALL, ids=ids)
def test_items_unique_and_rules_name_real_items(inst: Instrument) -> None:
    keys = [i.key for i in inst.items]
    assert len(keys) == len(set(keys))
    for rule in inst.risk_rules:
        assert all(p.item in keys for p in rule.when if p.item is not None)
        assert rule.severity in {"low", "moderate", "high"}
        assert rule.display.strip()


@pytest.mark.parametrize("inst", ALL, ids=ids)
def test_aliases_resolve_to_their_instrument(inst: Instrument) -> None:
    for name in (inst.key, *inst.aliases, inst.key.upper(), f" {inst.key} "):
        assert instrument(name) is inst


def test_unknown_instrument_is_named_in_the_error() -> None:
    with pytest.raises(TerminologyError, match="'BDI-II'"):
        instrument("BDI-II")


def test_models_are_frozen() -> None:
    phq9 = instrument("phq-9")
    with pytest.raises(ValidationError):
        phq9.key = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        phq9.items[0].answers.options[0].value = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "panel", "total", "items", "range_"),
    [
        (
            "phq-9",
            "44249-1",
            "44261-6",
            "44250-9 44255-8 44259-0 44254-1 44251-7 44258-2 44252-5 44253-3 44260-8 69722-7",
            (0, 27),
        ),
        ("phq-2", "55757-9", "55758-7", "44250-9 44255-8", (0, 6)),
        ("gad-7", "69737-5", "70274-6", "69725-0 68509-9 69733-4 69734-2 69735-9 69689-8 69736-7", (0, 21)),
        ("audit-c", "72109-2", "75626-2", "68518-0 68519-8 68520-6", (0, 12)),
        (
            "audit",
            "72110-0",
            "75624-7",
            "68518-0 68519-8 68520-6 97734-8 97735-5 97736-3 97737-1 97738-9 97739-7 97740-5",
            (0, 40),
        ),
        ("dast-10", "82666-9", "82667-7", "", (0, 10)),
        ("pcl-5", "101697-1", "101698-9", "101699-7", (0, 80)),
    ],
)
def test_codes_pinned(key: str, panel: str, total: str, items: str, range_: tuple[int, int]) -> None:
    inst = instrument(key)
    assert inst.panel.code == panel
    assert inst.total is not None and inst.total.code == total
    assert [i.code for i in inst.items if i.code] == items.split()
    assert inst.total_range == range_
    assert inst.unit == "{score}"


def test_phq9_answers_and_bands_pinned() -> None:
    phq9 = instrument("phq-9")
    assert [(o.value, o.code) for o in phq9.items[0].answers.options] == [
        (0, "LA6568-5"),
        (1, "LA6569-3"),
        (2, "LA6570-1"),
        (3, "LA6571-9"),
    ]
    assert [(b.min, b.max, b.code) for b in phq9.bands] == [
        (0, 4, "LA6708-7"),
        (5, 9, "LA6709-5"),
        (10, 14, "LA6710-3"),
        (15, 19, "LA6711-1"),
        (20, 27, "LA6712-9"),
    ]
    assert [i.key for i in phq9.scored_items] == [str(n) for n in range(1, 10)]


def test_dast10_item3_reversed_and_audit_items_9_10_weighted() -> None:
    dast3 = instrument("dast-10").item("3")
    assert dast3 is not None and dast3.reverse_scored
    assert dast3.answers.by_answer(False).value == 1  # type: ignore[union-attr]
    audit = instrument("audit")
    for key in ("9", "10"):
        item = audit.item(key)
        assert item is not None and [o.value for o in item.answers.options] == [0, 2, 4]


def test_cssrs_has_a_risk_level_instead_of_a_total() -> None:
    cssrs = instrument("c-ssrs-screener")
    assert cssrs.total is None and cssrs.scoring == "none"
    assert cssrs.risk_level is not None and cssrs.risk_level.code == "93374-7"
    assert [lv.key for lv in sorted(cssrs.risk_levels, key=lambda lv: lv.rank)] == [
        "none",
        "low",
        "moderate",
        "high",
    ]
    assert [i.code for i in cssrs.items] == [
        "93246-7",
        "93247-5",
        "93248-3",
        "93249-1",
        "93250-9",
        "93267-3",
        "93269-9",
    ]


PHQ2_YAML = """
key: test
name: Test
source: test
panel: {code: 55757-9, display: panel, source: test}
total: {code: %(total)s, display: total, source: test}
scoring: sum
answer_lists:
  f: {id: LL358-3, source: test, options: [{value: 0, code: LA6568-5, display: a}, {value: 1, display: b}]}
items:
  - {key: "1", code: 44250-9, text: one, answers: %(answers)s, source: test}
bands:
  - {key: low, min: 0, max: %(band_max)s, display: low, source: test}
"""


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"total": "55758-8", "answers": "f", "band_max": 1}, "check digit"),
        ({"total": "55758-7", "answers": "g", "band_max": 1}, "unknown answer list"),
        ({"total": "55758-7", "answers": "f", "band_max": 0}, "cover the whole score range"),
    ],
)
def test_broken_definitions_fail_at_load_with_their_location(params: dict[str, object], message: str) -> None:
    with pytest.raises(TerminologyError) as caught:
        catalog._load("test.yaml", PHQ2_YAML % params)
    text = str(caught.value) + " ".join(caught.value.lines())
    assert message in text
    assert "instruments/test.yaml" in text


def test_a_good_definition_loads() -> None:
    inst = catalog._load("test.yaml", PHQ2_YAML % {"total": "55758-7", "answers": "f", "band_max": 1})
    assert inst.total_range == (0, 1)
