"""Tests for scrapy_hitl.config: where state lives, and the crawl settings dataclass."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from scrapy.settings import Settings

from scrapy_hitl import defaults
from scrapy_hitl.config import CrawlSettings, StateConfig

STATE_NAMES = ("HITL_DATA_DIR", "HITL_DATABASE_URL", "HITL_REDIS_SERVER", "HITL_REDIS_URL", "HITL_SECRET_KEY")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No HITL_* variables, and a working directory of our own (the default data dir is relative)."""
    for name in STATE_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- StateConfig ---------------------------------------------------------------------------


def test_from_env_defaults(clean_env):
    cfg = StateConfig.from_env()
    data_dir = (clean_env / ".hitl").resolve()
    assert cfg.data_dir == data_dir
    assert cfg.database_url == f"sqlite:///{data_dir / 'hitl.db'}"
    assert cfg.redis_url == ""
    assert cfg.redis_server == ""  # the newest redis-server found
    # generated into the data dir on first use
    assert cfg.secret_key == (data_dir / "secret_key").read_text().strip()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700  # it holds the key
    assert len(cfg.secret_key) == 64  # token_urlsafe(48)


def test_from_env_reads_every_variable(clean_env):
    environ = {
        "HITL_DATA_DIR": str(clean_env / "d"),
        "HITL_DATABASE_URL": "postgresql://u@db/hitl",
        "HITL_REDIS_SERVER": "/opt/redis/bin/redis-server",
        "HITL_REDIS_URL": "redis://r:6379/2",
        "HITL_SECRET_KEY": "k-env",
    }
    cfg = StateConfig.from_env(environ)
    assert cfg == StateConfig(
        data_dir=(clean_env / "d").resolve(),
        database_url="postgresql://u@db/hitl",
        redis_url="redis://r:6379/2",
        secret_key="k-env",
        redis_server="/opt/redis/bin/redis-server",
    )
    assert not (clean_env / "d" / "secret_key").exists()  # a given key writes no file


def test_from_env_uses_os_environ(clean_env, monkeypatch):
    monkeypatch.setenv("HITL_DATA_DIR", str(clean_env / "from-os"))
    monkeypatch.setenv("HITL_SECRET_KEY", "k-os")
    cfg = StateConfig.from_env()
    assert cfg.data_dir == (clean_env / "from-os").resolve()
    assert cfg.secret_key == "k-os"


def test_data_dir_expands_user(clean_env, monkeypatch):
    monkeypatch.setenv("HOME", str(clean_env / "home"))
    cfg = StateConfig.from_env({"HITL_DATA_DIR": "~/state", "HITL_SECRET_KEY": "k"})
    assert cfg.data_dir == (clean_env / "home" / "state").resolve()


@pytest.mark.parametrize(
    ("setting", "env", "expected"),
    [
        pytest.param("from-setting", "from-env", "from-setting", id="setting-wins"),
        pytest.param(None, "from-env", "from-env", id="env-when-no-setting"),
        pytest.param("", "from-env", "from-env", id="empty-setting-falls-back-to-env"),
        pytest.param(None, None, "default", id="default-when-neither"),
    ],
)
@pytest.mark.parametrize("name", ["HITL_DATABASE_URL", "HITL_REDIS_URL", "HITL_SECRET_KEY"])
def test_from_settings_precedence(clean_env, name, setting, env, expected):
    settings = Settings({name: setting} if setting is not None else {})
    environ = {name: env} if env is not None else {}
    if name != "HITL_SECRET_KEY":
        environ["HITL_SECRET_KEY"] = "k"  # keep the key file out of it
    cfg = StateConfig.from_settings(settings, environ)
    value = {
        "HITL_DATABASE_URL": cfg.database_url,
        "HITL_REDIS_URL": cfg.redis_url,
        "HITL_SECRET_KEY": cfg.secret_key,
    }[name]
    if expected == "default":
        default = {
            "HITL_DATABASE_URL": f"sqlite:///{(clean_env / '.hitl').resolve() / 'hitl.db'}",
            "HITL_REDIS_URL": "",
            "HITL_SECRET_KEY": ((clean_env / ".hitl" / "secret_key").read_text().strip()
                                if name == "HITL_SECRET_KEY" else None),
        }[name]
        assert value == default
    else:
        assert value == expected


def test_from_settings_data_dir_precedence(clean_env):
    env = {"HITL_DATA_DIR": str(clean_env / "env-dir"), "HITL_SECRET_KEY": "k"}
    from_setting = StateConfig.from_settings(Settings({"HITL_DATA_DIR": str(clean_env / "set-dir")}), env)
    from_env = StateConfig.from_settings(Settings(), env)
    assert from_setting.data_dir == (clean_env / "set-dir").resolve()
    assert from_setting.database_url == f"sqlite:///{(clean_env / 'set-dir').resolve() / 'hitl.db'}"
    assert from_env.data_dir == (clean_env / "env-dir").resolve()


def test_from_settings_uses_os_environ(clean_env, monkeypatch):
    monkeypatch.setenv("HITL_REDIS_URL", "redis://os-env:6379/0")
    monkeypatch.setenv("HITL_SECRET_KEY", "k")
    assert StateConfig.from_settings(Settings()).redis_url == "redis://os-env:6379/0"


def test_secret_key_file_created_0600_and_reused(clean_env):
    data_dir = clean_env / "state"
    first = StateConfig.from_env({"HITL_DATA_DIR": str(data_dir)})
    key_file = data_dir / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text() == first.secret_key + "\n"
    second = StateConfig.from_env({"HITL_DATA_DIR": str(data_dir)})
    assert second.secret_key == first.secret_key
    # and a crawl (from_settings) agrees with the CLI (from_env)
    third = StateConfig.from_settings(Settings({"HITL_DATA_DIR": str(data_dir)}), {})
    assert third.secret_key == first.secret_key


def test_secret_key_file_0600_despite_permissive_umask(clean_env):
    old = os.umask(0)
    try:
        StateConfig.from_env({"HITL_DATA_DIR": str(clean_env / "s")})
    finally:
        os.umask(old)
    assert stat.S_IMODE((clean_env / "s" / "secret_key").stat().st_mode) == 0o600


def test_existing_secret_key_file_is_read(clean_env):
    data_dir = clean_env / "s"
    data_dir.mkdir()
    (data_dir / "secret_key").write_text("  handmade-key \n")
    assert StateConfig.from_env({"HITL_DATA_DIR": str(data_dir)}).secret_key == "handmade-key"


def test_different_data_dirs_get_different_keys(clean_env):
    a = StateConfig.from_env({"HITL_DATA_DIR": str(clean_env / "a")})
    b = StateConfig.from_env({"HITL_DATA_DIR": str(clean_env / "b")})
    assert a.secret_key != b.secret_key


# --- CrawlSettings -------------------------------------------------------------------------


def test_crawl_settings_defaults():
    cs = CrawlSettings.from_settings(Settings())
    assert cs == CrawlSettings(
        block_signatures=(),
        classifier_max_body=65536,
        selector_drift_pages=3,
        learn_min_attempts=10,
        session_required_block_rate=0.8,
        stats_flush_interval=5.0,
        events_maxlen=100_000,
        gc_freeze=True,
        park_buffer_max=5000,
        park_flush_interval=0.05,
        pause_timeout=1800,
        progress_interval=5.0,
        resume_batch=500,
        run_heartbeat=10.0,
    )
    assert cs.classifier_max_body == defaults.HITL_CLASSIFIER_MAX_BODY
    assert cs.park_flush_deadline == 60.0


def test_crawl_settings_reads_values_and_types():
    sig = {"name": "acme-wall", "body": "Access denied by ACME", "verdict": "pause"}
    cs = CrawlSettings.from_settings(
        Settings(
            {
                "HITL_BLOCK_SIGNATURES": [sig],
                "HITL_CLASSIFIER_MAX_BODY": "1000",
                "HITL_RESUME_BATCH": 7,
                "HITL_PAUSE_TIMEOUT": "2.5",
                "HITL_SESSION_REQUIRED_BLOCK_RATE": "1",
                "HITL_PARK_FLUSH_DEADLINE": "12.5",
            }
        )
    )
    assert cs.park_flush_deadline == 12.5
    assert cs.block_signatures == (sig,)
    assert cs.classifier_max_body == 1000
    assert cs.resume_batch == 7
    assert cs.pause_timeout == 2.5
    assert cs.session_required_block_rate == 1.0


POSITIVE = "must be greater than 0; got"
RATE = "must be in (0, 1]; got"


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        pytest.param("HITL_CLASSIFIER_MAX_BODY", 0, f"{POSITIVE} 0", id="max-body-zero"),
        pytest.param("HITL_SELECTOR_DRIFT_PAGES", -1, f"{POSITIVE} -1", id="drift-negative"),
        pytest.param("HITL_LEARN_MIN_ATTEMPTS", 0, f"{POSITIVE} 0", id="min-attempts-zero"),
        pytest.param("HITL_STATS_FLUSH_INTERVAL", 0, f"{POSITIVE} 0.0", id="flush-zero"),
        pytest.param("HITL_EVENTS_MAXLEN", -5, f"{POSITIVE} -5", id="maxlen-negative"),
        pytest.param("HITL_PARK_FLUSH_INTERVAL", "0", f"{POSITIVE} 0.0", id="park-flush-zero-str"),
        pytest.param("HITL_PARK_FLUSH_DEADLINE", 0, f"{POSITIVE} 0.0", id="flush-deadline-zero"),
        pytest.param("HITL_PAUSE_TIMEOUT", -1, f"{POSITIVE} -1.0", id="pause-timeout-negative"),
        pytest.param("HITL_PROGRESS_INTERVAL", 0, f"{POSITIVE} 0.0", id="progress-zero"),
        pytest.param("HITL_RESUME_BATCH", 0, f"{POSITIVE} 0", id="resume-batch-zero"),
        pytest.param("HITL_RUN_HEARTBEAT", 0, f"{POSITIVE} 0.0", id="heartbeat-zero"),
        pytest.param("HITL_SESSION_REQUIRED_BLOCK_RATE", 0, f"{RATE} 0.0", id="rate-zero"),
        pytest.param("HITL_SESSION_REQUIRED_BLOCK_RATE", 1.5, f"{RATE} 1.5", id="rate-above-one"),
        pytest.param("HITL_SESSION_REQUIRED_BLOCK_RATE", -0.1, f"{RATE} -0.1", id="rate-negative"),
    ],
)
def test_crawl_settings_rejects_bad_values(name, value, problem):
    with pytest.raises(ValueError) as excinfo:
        CrawlSettings.from_settings(Settings({name: value}))
    assert str(excinfo.value) == f"{name} {problem}"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("HITL_RESUME_BATCH", "many", id="int-not-a-number"),
        pytest.param("HITL_PAUSE_TIMEOUT", "soon", id="float-not-a-number"),
    ],
)
def test_crawl_settings_rejects_non_numbers(name, value):
    with pytest.raises(ValueError, match=repr(value)):
        CrawlSettings.from_settings(Settings({name: value}))


def test_state_names_have_empty_defaults():
    """The state settings default to "": their real defaults are resolved by StateConfig."""
    assert defaults.HITL_DATABASE_URL == ""
    assert defaults.HITL_REDIS_URL == ""
    assert defaults.HITL_SECRET_KEY == ""
    assert Path(defaults.HITL_DATA_DIR) == Path(".hitl")
