import json
import logging
import os
import re

import pytest

from cryptobot import secrets
from cryptobot.errors import ConfigError, SecretError
from cryptobot.logs import configure_logging, process_log_path


@pytest.fixture(autouse=True)
def _clean_registry():
    saved = set(secrets._registered)
    yield
    secrets._registered.clear()
    secrets._registered.update(saved)


def test_keys_from_environment(monkeypatch):
    monkeypatch.setenv(secrets.API_KEY_ENV, "env-key-123")
    monkeypatch.setenv(secrets.API_SECRET_ENV, "env-secret-456")
    keys = secrets.load_api_keys()
    assert (keys.key, keys.secret) == ("env-key-123", "env-secret-456")
    assert "env-secret-456" not in repr(keys)
    assert "env-secret-456" in secrets.registered_secrets()


def test_missing_keys_are_refused(monkeypatch):
    monkeypatch.delenv(secrets.API_KEY_ENV, raising=False)
    monkeypatch.delenv(secrets.API_SECRET_ENV, raising=False)
    with pytest.raises(SecretError, match="missing exchange keys"):
        secrets.load_api_keys()


def test_key_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "keys.toml"
    path.write_text('key = "file-key-1"\nsecret = "file-secret-2"\n')
    os.chmod(path, 0o644)
    with pytest.raises(SecretError, match="readable by others") as caught:
        secrets.load_api_keys(path)
    assert "file-secret-2" not in str(caught.value)
    os.chmod(path, 0o600)
    assert secrets.load_api_keys(path).secret == "file-secret-2"


def test_key_file_without_secret_is_refused(tmp_path):
    path = tmp_path / "keys.toml"
    path.write_text('key = "only-key"\n')
    os.chmod(path, 0o600)
    with pytest.raises(SecretError, match="needs string values"):
        secrets.load_api_keys(path)


def test_log_lines_are_json_and_redacted(tmp_path):
    secrets.register_secret("s3cr3t-value")
    path = configure_logging(tmp_path, console=False, clock_ms=lambda: 1_722_816_000_000)
    logger = logging.getLogger("cryptobot.test")
    logger.info("signing with %s", "s3cr3t-value",
                extra={"event": "order", "detail": "k=s3cr3t-value"})
    try:
        raise RuntimeError("bad key s3cr3t-value")
    except RuntimeError:
        logger.exception("failed")
    for handler in logging.getLogger("cryptobot").handlers:
        handler.flush()
    text = path.read_text()
    assert path == process_log_path(tmp_path)
    assert "s3cr3t-value" not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["message"] == "signing with ***"
    assert first["event"] == "order" and first["detail"] == "k=***"
    assert first["ts_ms"] == 1_722_816_000_000
    assert "RuntimeError: bad key ***" in second["exception"]


def test_a_secret_json_escapes_is_masked_in_a_nested_field(tmp_path):
    # A key holding a quote, a backslash or a non-ASCII character reaches the line escaped.
    secret = 'pa"ss\\wörd-42'
    secrets.register_secret(secret)
    path = configure_logging(tmp_path, console=False, clock_ms=lambda: 1_722_816_000_000)
    logging.getLogger("cryptobot.test").info(
        "nested", extra={"event": "order", "detail": {"auth": {"password": secret}}})
    for handler in logging.getLogger("cryptobot").handlers:
        handler.flush()
    text = path.read_text()
    assert "ss\\\\w" not in text and "w\\u00f6rd" not in text and "wörd" not in text
    assert json.loads(text.splitlines()[0])["detail"] == {"auth": {"password": "***"}}


def test_each_process_writes_its_own_file_named_by_its_start(tmp_path):
    path = configure_logging(tmp_path / "a", console=False, max_bytes=300, backup_count=3)
    name = re.fullmatch(r"cryptobot-(\d{8}T\d{6}Z)-(\d+)\.jsonl", path.name)
    assert name and int(name.group(2)) == os.getpid()
    logger = logging.getLogger("cryptobot.test")
    for n in range(6):
        logger.info("line %d: each line fills its file (over 200 bytes as JSON)", n)
    # rotated on its own: the current file and backup_count parts
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        path.name, *(f"{path.name}.{n}" for n in (1, 2, 3))
    ]
    line = json.loads(path.read_text().splitlines()[-1])
    assert line["message"].startswith("line 5") and line["wall_ms"] == line["ts_ms"]
    # the same process keeps its name, in any folder
    assert configure_logging(tmp_path / "b", console=False).name == path.name


def test_an_unwritable_log_folder_is_one_clear_error(tmp_path):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ConfigError, match="cannot write the log there") as caught:
        configure_logging(tmp_path / "a_file" / "logs", console=False)
    assert "\n" not in str(caught.value)


def test_the_log_rotates_at_its_size_and_keeps_every_line_whole(tmp_path):
    # The handler counts the bytes it wrote instead of asking the file each time.
    path = configure_logging(tmp_path, max_bytes=2_000, backup_count=20, console=False)
    log = logging.getLogger("cryptobot.events")
    for index in range(60):
        log.info("event %d", index, extra={"event": "order", "detail": "x" * (index % 7)})
    for handler in logging.getLogger("cryptobot").handlers:
        handler.flush()
    files = [path, *sorted(path.parent.glob(path.name + ".*"))]
    assert len(files) > 3
    assert all(f.stat().st_size <= 2_000 for f in files)
    lines = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert sorted(int(line["message"].split()[1]) for line in lines) == list(range(60))
