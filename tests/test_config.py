from pathlib import Path

import pytest

from personable.config import load_config, write_starter
from personable.errors import ConfigError, ProjectNotFound


def test_starter_parses_and_has_secrets_outside_yaml(project: Path):
    cfg = load_config(project)
    assert cfg.name == "test-shop"
    assert cfg.offline_url.startswith("duckdb://")
    text = (project / "personable.yaml").read_text()
    keys = cfg.write_keys()
    assert len(keys) == 2 and all(k not in text for k in keys)
    assert cfg.admin_token() and cfg.admin_token() not in text
    assert (project / ".personable" / "keys.json").stat().st_mode & 0o077 == 0


def test_init_refuses_to_overwrite(project: Path):
    with pytest.raises(ConfigError):
        write_starter(project)


def test_invalid_config_names_every_problem(project: Path):
    (project / "personable.yaml").write_text(
        "server:\n  port: 70000\nidentity:\n  identifiers:\n    - trait: email\n      kind: fax\ntraits:\n  default_policy: newest\n")
    with pytest.raises(ConfigError) as err:
        load_config(project)
    paths = {d.path for d in err.value.details}
    assert {"server.port", "identity.identifiers[0].kind", "traits.default_policy"} <= paths


def test_env_overrides(project: Path):
    cfg = load_config(project, environ={"PERSONABLE_SERVER__PORT": "9999", "PERSONABLE_WRITE_KEY_WEB": "k-env"})
    assert cfg.server.port == 9999
    cfg2 = load_config(project, environ={"PERSONABLE_SERVER__PORT": "9999"})
    assert cfg2.server.port == 9999


def test_missing_project(tmp_path: Path):
    with pytest.raises(ProjectNotFound):
        load_config(tmp_path)


# -- one schema: field paths, unknown keys, strict types, the JSON Schema -----------------
import json  # noqa: E402

import jsonschema  # noqa: E402
import yaml  # noqa: E402

from personable.config import STARTER, json_schema, parse_config  # noqa: E402


def _problems(raw: dict, tmp_path: Path, origins: dict | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as err:
        parse_config(raw, tmp_path, origins)
    assert err.value.code == "config_invalid"
    return {d.path: d.problem for d in err.value.details}


def _starter() -> dict:
    return yaml.safe_load(STARTER.format(name="shop"))


def test_starter_passes_the_json_schema_and_the_schema_is_valid():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(_starter())) == []
    assert schema["title"] == "personable.yaml" and schema["additionalProperties"] is False


def test_init_writes_the_schema_the_starter_names(project: Path):
    first = (project / "personable.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=.personable/personable.schema.json"
    assert json.loads((project / ".personable" / "personable.schema.json").read_text()) == json_schema()


def test_unknown_keys_are_errors_with_their_path(tmp_path: Path):
    # Before the schema these were silently ignored: a typo meant the default applied.
    raw = _starter()
    raw["servr"] = {"port": 9000}
    raw["server"]["prot"] = 9000
    raw["identity"]["resolution"]["match_probabilty"] = 0.9
    raw["quality"]["fields"]["email"]["rules"]["uniq"] = True
    raw["recommend"]["placements"]["home"]["diversty"] = 0.5
    raw["segments"]["champions"]["nme"] = "Champs"
    problems = _problems(raw, tmp_path)
    assert set(problems) == {"servr", "server.prot", "identity.resolution.match_probabilty",
                             "quality.fields.email.rules.uniq", "recommend.placements.home.diversty",
                             "segments.champions.nme"}
    assert problems["server.prot"].startswith("unknown setting (did you mean port?); use one of host, port")
    assert "did you mean server?" in problems["servr"]
    assert "did you mean unique?" in problems["quality.fields.email.rules.uniq"]


def test_types_are_strict_and_paths_name_list_items(tmp_path: Path):
    raw = _starter()
    raw["server"]["port"] = "8787"
    raw["server"]["commit_interval_ms"] = True
    raw["identity"]["identifiers"].append({"trait": "crm_id", "kind": "fax"})
    raw["rfm"] = {"segments": [{"r": [1, 5], "fm": [1, 5]}]}
    raw["recommend"]["generators"] = ["als", "magic"]
    raw["sources"] = ["web", "bad name"]
    problems = _problems(raw, tmp_path)
    assert problems == {
        "server.port": "must be a whole number, got '8787'",
        "server.commit_interval_ms": "must be a number, got True",
        "identity.identifiers[2].kind": "must be one of email, phone, external, got 'fax'",
        "rfm.segments[0].name": "is required",
        "recommend.generators[1]": "must be one of als, bpr, ease, cooccurrence, complementary, content, "
                                   "same_category, trending, popularity, recently_viewed, got 'magic'",
        "sources[1]": "must be a simple name (letters, digits, _), got 'bad name'",
    }


def test_rule_errors_keep_the_rule_languages_paths(tmp_path: Path):
    raw = _starter()
    raw["segments"]["cart_abandoners"]["rule"]["all"][1] = {"not": {"event": "Order Completed", "within": "soon"}}
    raw["segments"]["big_spenders"]["rule"] = {"all": [{"computed": "revenue", "gt": 300}, {"trait": 3}]}
    problems = _problems(raw, tmp_path)
    assert set(problems) == {"segments.cart_abandoners.rule.all[1].not.within", "segments.big_spenders.rule.all[1].trait"}
    # high_value_at_risk uses big_spenders: a segment that failed is still defined.


def test_cross_field_checks_name_their_field(tmp_path: Path):
    raw = _starter()
    raw["identity"]["resolution"]["blocking"].append(["email", "shoe_size"])
    raw["identity"]["resolution"]["review_probability"] = 0.99
    raw["lifecycle"]["active_days"] = 365
    raw["quality"]["fields"]["city"] = {"missing": {"derive": "copy"}}
    problems = _problems(raw, tmp_path)
    assert problems == {
        "identity.resolution.blocking[6]": "uses fields not under fields: shoe_size",
        "identity.resolution.review_probability": "must not be above match_probability",
        "lifecycle.active_days": "must not be above lapsed_days",
        "quality.fields.city.missing": "derive: copy needs from: the field to copy",
    }


def test_null_means_default_and_the_runtime_objects_keep_their_shape(tmp_path: Path):
    raw = _starter()
    raw.update(quality=None, rfm=None, lifecycle=None)
    raw["server"]["port"] = None
    raw["models"]["maintain"] = {"churn": None}
    raw["recommend"]["placements"]["side"] = None
    raw["quality"] = {"fields": {"city": None, "plan": {"missing": "unknown", "rules": {"allowed": ["free", 2]}}}}
    cfg = parse_config(raw, tmp_path)
    assert cfg.server.port == 8787 and cfg.rfm.order_event == "Order Completed"
    assert cfg.lifecycle.lapsed_days == 180 and cfg.lifecycle.order_event == "Order Completed"
    assert cfg.models.maintain["churn"].retrain_days == 7.0
    assert cfg.recommend.placements["side"].n == 10 and "default" in cfg.recommend.placements
    plan = cfg.quality.field("plan")
    assert plan.missing.kind == "unknown" and plan.missing.constant == "unknown"
    assert plan.rule("allowed").value == ["free", "2"] and cfg.quality.field("city").standardize is None


def test_env_override_problems_name_the_variable(project: Path):
    with pytest.raises(ConfigError) as err:
        load_config(project, environ={"PERSONABLE_SERVER__PORT": "http", "PERSONABLE_SERVR__PORT": "1"})
    problems = {d.path: d.problem for d in err.value.details}
    assert problems["server.port"] == "must be a whole number, got 'http' (set by PERSONABLE_SERVER__PORT)"
    assert problems["servr"].endswith("(set by PERSONABLE_SERVR__PORT)")
    cfg = load_config(project, environ={"PERSONABLE_IDENTITY__DEFAULT_REGION": "gb",
                                        "PERSONABLE_RECOMMEND__GENERATORS": "[popularity]"})
    assert cfg.identity.default_region == "GB" and cfg.recommend.generators == ("popularity",)


def test_defaults_construct_as_before():
    # Services and tests build these directly; the schema must not change how.
    from personable.identity.resolution.config import ResolutionConfig
    from personable.predict.config import ModelsConfig
    from personable.predict.drift import DriftThresholds
    from personable.quality.config import QualityConfig
    from personable.recommend.config import Placement, RecommendConfig
    from personable.segments.lifecycle import LifecycleConfig
    from personable.segments.rfm import DEFAULT_RFM_SEGMENTS, RfmConfig

    assert RfmConfig().segments == DEFAULT_RFM_SEGMENTS and QualityConfig().rates() == {"USD": 1.0}
    assert RecommendConfig().placements == {"default": Placement()} and ModelsConfig().horizon_days == 30
    assert LifecycleConfig(order_event="Purchase").order_event == "Purchase"
    assert DriftThresholds(0.1, 0.5).ks_pvalue == 0.5
    assert ResolutionConfig(fields=(("email", "email"),), blocking=(("email",),)).field_names == ["email"]


def test_config_check_and_schema_commands(project: Path, tmp_path: Path):
    from conftest import run_cli

    ok = json.loads(run_cli("config", "check", "--json", project=project).stdout)
    assert ok["valid"] is True and ok["segments"] == 4
    out = tmp_path / "schema.json"
    run_cli("config", "schema", "--output", str(out))
    assert json.loads(out.read_text()) == json.loads(run_cli("config", "schema").stdout) == json_schema()
    path = project / "personable.yaml"
    path.write_text(path.read_text().replace("  port: 8787", "  prot: 8787"))
    bad = run_cli("config", "check", project=project, check=False)
    assert bad.returncode == 2 and "server.prot: unknown setting (did you mean port?)" in bad.stderr
    as_json = run_cli("config", "check", "--json", project=project, check=False)
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["error"]["details"][0]["path"] == "server.prot"
