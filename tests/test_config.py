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
