"""Data quality: standardization, rules with quarantine, the report and its
history, missing-value policies, currencies, and the batch jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from personable import Engine
from personable.errors import ConfigError
from personable.quality.standardize import KINDS, standardize

from conftest import run_cli
from conftest import OFFLINE_STORES, project_on


@pytest.fixture(params=OFFLINE_STORES)
def project(request, tmp_path):
    """Every test here runs on each offline store."""
    return project_on(request, tmp_path)



# -- standardizers ------------------------------------------------------------------
@pytest.mark.parametrize("kind, raw, expected", [
    ("name", "  JOSÉ   garcía ", "José García"),
    ("name", "ｍａｒｉａ", "Maria"),                 # full-width letters: NFKC
    ("name", "McDonald", "McDonald"),               # mixed case is kept as written
    ("email", "  Ann.Lee@Example.COM ", "ann.lee@example.com"),
    ("phone", "(415) 555-0123", "+14155550123"),
    ("country", "united kingdom", "GB"),
    ("country", "DEU", "DE"),
    ("country", "UK", "GB"),
    ("date", "27/01/2026", "2026-01-27"),
    ("date", "01-30-2026", "2026-01-30"),
    ("date", "2026-01-21T10:22:24Z", "2026-01-21"),
    ("datetime", "2026-01-21T12:22:24+02:00", "2026-01-21T10:22:24Z"),
    ("currency", "eur", "EUR"),
    ("currency", "£", "GBP"),
    ("text", "  a\u00a0 b ", "a b"),
])
def test_standard_forms(kind, raw, expected):
    assert standardize(kind, raw).value == expected


@pytest.mark.parametrize("kind, raw", [("email", "ann@"), ("phone", "12"), ("country", "Atlantis"),
                                       ("date", "31/31/2026"), ("currency", "XXY")])
def test_unreadable_values_say_why(kind, raw):
    result = standardize(kind, raw)
    assert result.value is None and result.problem and raw[:3] in result.problem


@pytest.mark.parametrize("raw", ["N/A", " n/a ", "", "null", "-", "unknown"])
def test_placeholders_are_missing_not_values(raw):
    assert standardize("name", raw).missing


def test_phone_region_comes_from_the_record():
    assert standardize("phone", "020 7946 0018", {"region": "GB"}).value == "+442079460018"
    assert standardize("phone", "020 7946 0018", {"region": "US"}).problem


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(KINDS), text=st.text(max_size=40))
def test_standardizers_never_raise_and_are_idempotent(kind, text):
    first = standardize(kind, text, {"region": "US"})
    if first.value is not None:
        again = standardize(kind, first.value, {"region": "US"})
        assert again.value == first.value


# -- configuration -------------------------------------------------------------------
def _configure(project: Path, quality: dict | None = None, **identity: object) -> None:
    path = project / "personable.yaml"
    raw = yaml.safe_load(path.read_text())
    if quality is not None:
        raw["quality"] = quality
    raw["identity"].update(identity)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def test_bad_quality_settings_name_their_path(project):
    _configure(project, {"currency_rates": {"EUR": -1}, "fields": {
        "email": {"standardize": "emial"}, "age": {"rules": {"max": [1]}, "missing": "average"}}})
    with pytest.raises(ConfigError) as err:
        Engine(project)
    paths = {d.path for d in err.value.details}
    assert {"quality.currency_rates.EUR", "quality.fields.email.standardize", "quality.fields.age.rules.max",
            "quality.fields.age.missing"} <= paths


# -- on ingest ----------------------------------------------------------------------------
CRM = """customer_id,email,phone,first_name,last_name,country,birth_date,updated_at
c1,  ANN.Lee@Example.com ,020 7946 0018,ANN,lee,United Kingdom,27/01/1990,2026-01-05T00:00:00Z
c2,bob@example.com,(415) 555-0199,Bob,Ray,usa,1985-02-03,2026-01-06T00:00:00Z
c3,not-an-email,,Cy,Doe,FR,1970-01-01,2026-01-07T00:00:00Z
c4,dee@example.com,,Dee,N/A,US,2090-01-01,2026-01-08T00:00:00Z
"""


def test_crm_import_is_standardized_and_bad_records_quarantined_with_the_rule(project, tmp_path):
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["quality"]["on_invalid"] = "quarantine"  # the default is flag (see test_hostile)
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    engine = Engine(project)
    (tmp_path / "crm.csv").write_text(CRM)
    report = engine.ingest(tmp_path / "crm.csv", kind="crm")
    assert report.accepted == 2 and report.quarantined == 2
    ann = engine.profile("c1")
    assert ann["traits"]["email"] == "ann.lee@example.com"
    assert ann["traits"]["phone"] == "+442079460018"          # read as a UK number: the record says UK
    assert ann["traits"]["first_name"] == "Ann" and ann["traits"]["last_name"] == "Lee"
    assert ann["traits"]["country"] == "GB" and ann["traits"]["birth_date"] == "1990-01-27"
    source = ann["trait_sources"]["birth_date"]
    assert source["origin"] == "standardized" and source["observed"] == "27/01/1990"
    assert engine.profile("c2")["traits"]["country"] == "US"
    problems = {p["path"]: p["problem"] for q in engine.quarantine() for p in q["problems"]}
    assert "not a valid email" in problems["traits.email"]
    assert problems["traits.birth_date"].startswith("rule max failed")
    engine.close()


def test_flag_keeps_the_record_and_marks_the_value(project, tmp_path):
    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["quality"]["on_invalid"] = "flag"
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    (tmp_path / "crm.csv").write_text(CRM)
    with Engine(project) as engine:
        report = engine.ingest(tmp_path / "crm.csv", kind="crm")
        assert report.accepted == 4 and report.quarantined == 0
        cy = engine.profile("c3")
        assert cy["traits"]["email"] == "not-an-email" and cy["trait_sources"]["email"]["origin"] == "invalid"
        assert "last_name" not in engine.profile("c4")["traits"]    # "N/A" is no name
        quality = engine.quality.report()
        email = next(r for r in quality["fields"] if r["field"] == "email" and r["source"] == "*")
        assert email["invalid"] == 1 and email["validity"] == pytest.approx(3 / 4)
        birth = next(r for r in quality["fields"] if r["field"] == "birth_date" and r["source"] == "*")
        assert birth["rule_failures"] == {"max": 1} and "1 invalid value(s) (max: 1)" in birth["problems"]


# -- the report ---------------------------------------------------------------------------
def test_report_measures_each_field_and_keeps_history_with_regressions(project, tmp_path):
    _configure(project, {"on_invalid": "quarantine", "fields": {
        "email": {"standardize": "email", "rules": {"unique": True, "freshness": "30d"}},
        "plan": {"rules": {"allowed": ["free", "pro"], "required": True}}}})
    with Engine(project) as engine:
        engine.send([{"type": "identify", "userId": f"u{i}", "timestamp": "2026-01-01T00:00:00Z",
                      "traits": {"email": "shared@example.com" if i < 2 else f"u{i}@example.com",
                                 **({"plan": "free"} if i % 2 else {})}} for i in range(4)])
        first = engine.quality.report()
        rows = {(r["field"], r["source"]): r for r in first["fields"]}
        email = rows[("email", "*")]
        assert (email["records"], email["observed"], email["completeness"]) == (4, 4, 1.0)
        assert email["duplicates"] == 2 and email["uniqueness"] == pytest.approx(3 / 4)
        assert email["stale"] == 4 and email["freshness"] == 0.0    # observed 2026-01-01, more than 30 days ago
        assert rows[("email", "python")]["observed"] == 4
        plan = rows[("plan", "*")]
        assert plan["completeness"] == 0.5 and "2 of 4 records have no plan" in plan["problems"]
        assert first["regressions"] == []
        engine.send([{"type": "identify", "userId": "u8", "timestamp": "2026-01-02T00:00:00Z",
                      "traits": {"email": "u8@example.com", "plan": "platinum"}},
                     {"type": "identify", "userId": "u9", "timestamp": "2026-01-02T00:00:00Z",
                      "traits": {"email": "u9@example.com"}}])
        assert "rule allowed failed" in engine.quarantine()[0]["problems"][0]["problem"]  # u8 broke a rule
        second = engine.quality.report()
        drop = {(r["field"], r["metric"]) for r in second["regressions"] if r["source"] == "*"}
        assert ("plan", "completeness") in drop
        history = engine.quality.history()
        assert [h["id"] for h in history] == [second["id"], first["id"]]


# -- missing values ------------------------------------------------------------------------
def test_missing_value_policies_are_marked_and_give_way_to_observations(project):
    _configure(project, {"fields": {
        "phone": {"standardize": "phone"},
        "country": {"standardize": "country", "missing": {"derive": "country_from_phone"}},
        "plan": {"missing": {"constant": "free"}},
        "age": {"rules": {"type": "number"}, "missing": "median"},
        "segment": {"missing": "mode"}}})
    with Engine(project) as engine:
        engine.send([
            {"type": "identify", "userId": "a", "traits": {"phone": "+44 20 7946 0018", "age": 30, "segment": "x"}},
            {"type": "identify", "userId": "b", "traits": {"age": 40, "segment": "x", "country": "FR"}},
            {"type": "identify", "userId": "c", "traits": {"age": 60, "segment": "y"}},
            {"type": "identify", "userId": "d", "traits": {"plan": "pro"}}])
        result = {f["field"]: f for f in engine.quality.impute()["fields"]}
        assert result["country"]["filled"] == 1 and result["plan"]["filled"] == 3
        assert result["age"]["value"] == 40 and result["segment"]["value"] == "x"
        a, d = engine.profile("a"), engine.profile("d")
        assert a["traits"]["country"] == "GB" and a["trait_sources"]["country"]["origin"] == "imputed"
        assert a["trait_sources"]["country"]["source"] == "imputed:derive"
        assert d["traits"]["age"] == 40 and d["traits"]["segment"] == "x" and d["traits"]["plan"] == "pro"
        report = {(r["field"], r["source"]): r for r in engine.quality.report()["fields"]}
        assert report[("plan", "*")]["observed"] == 1 and report[("plan", "*")]["imputed"] == 3
        # A real observation replaces the imputed value, even an older one.
        engine.send([{"type": "identify", "userId": "a", "timestamp": "2020-01-01T00:00:00Z", "traits": {"plan": "pro"}}])
        a = engine.profile("a")
        assert a["traits"]["plan"] == "pro" and a["trait_sources"]["plan"]["origin"] == "observed"


# -- currencies and the clean job -------------------------------------------------------------
def test_revenue_in_the_reporting_currency_and_clean_applies_new_settings(project, tmp_path):
    _configure(project, {"reporting_currency": "USD", "currency_rates": {"EUR": 2.0}, "on_invalid": "flag",
                         "fields": {"birth_date": {"standardize": "date"}}})
    (tmp_path / "orders.csv").write_text(
        "order_id,customer_id,total,currency,ordered_at\n"
        "o1,c1,10,EUR,2026-01-10T10:00:00Z\no2,c1,5,USD,2026-01-11T10:00:00Z\no3,c1,7,JPY,2026-01-12T10:00:00Z\n")
    with Engine(project) as engine:
        engine.send([{"type": "identify", "userId": "c1", "traits": {"birth_date": "1990|02|03"}}])
        assert engine.profile("c1")["trait_sources"]["birth_date"]["origin"] == "invalid"  # no format matches... yet
        engine.ingest(tmp_path / "orders.csv", kind="orders")
        assert engine.profile("c1")["computed"]["revenue"] == pytest.approx(25.0)  # JPY has no rate: left out
        assert engine.quality.report(save=False)["revenue"]["without_rate"] == 1
    _configure(project, {"reporting_currency": "USD", "currency_rates": {"EUR": 1.5, "JPY": 0.01},
                         "fields": {"birth_date": {"standardize": "date", "formats": ["%Y|%m|%d"]}}})
    with Engine(project) as engine:
        result = engine.quality.clean()
        assert result["revenue_changed_profiles"] == 1
        assert engine.profile("c1")["computed"]["revenue"] == pytest.approx(15 + 5 + 0.07)
        assert engine.profile("c1")["traits"]["birth_date"] == "1990-02-03"


# -- interfaces -------------------------------------------------------------------------------------
def test_quality_over_cli_and_http(project, tmp_path, server):
    (tmp_path / "crm.csv").write_text(CRM)
    run_cli("ingest", str(tmp_path / "crm.csv"), "--kind", "crm", "--json", project=project)
    report = json.loads(run_cli("quality", "--json", project=project).stdout)
    # Flag is the default: the rows with an unreadable email are kept (their other evidence too), not quarantined.
    assert report["profiles"] == 4 and not any(q["path"] == "traits.email" for q in report["quarantine"])
    with server.client() as http:
        got = http.get("/v1/quality", headers=server.admin, params={"field": "email"})
        assert got.status_code == 200 and {r["field"] for r in got.json()["fields"]} == {"email"}
        assert http.get("/v1/quality").status_code == 401
        assert http.get("/v1/quality", headers=server.admin, params={"field": "nope"}).status_code == 400
        history = http.get("/v1/quality/history", headers=server.admin).json()["items"]
        assert len(history) == 2
    text = run_cli("quality", "history", project=project).stdout
    assert "regressions" in text
    assert json.loads(run_cli("quality", "impute", "--json", project=project).stdout)["fields"][0]["field"] == "country"
