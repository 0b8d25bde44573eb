"""Secret references: parsing, resolving, and never showing a value."""

from pathlib import Path

import pytest

from rules import ConfigError, SecretRef

KEY = "sk-test-0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "scheme", "name"),
    [
        ("env:OPENAI_API_KEY", "env", "OPENAI_API_KEY"),
        ("file:/run/secrets/openai", "file", "/run/secrets/openai"),
        ("cred:openai", "cred", "openai"),
    ],
)
def test_parse(text: str, scheme: str, name: str) -> None:
    ref = SecretRef.parse(text)
    assert (ref.scheme, ref.name) == (scheme, name)
    assert str(ref) == text
    assert repr(ref) == f"SecretRef({text!r})"


@pytest.mark.parametrize("text", [KEY, "Bearer " + KEY, "sk:" + KEY])
def test_literal_key_rejected_without_echo(text: str) -> None:
    with pytest.raises(ValueError, match="not a literal key") as info:
        SecretRef.parse(text)
    assert KEY not in str(info.value)


@pytest.mark.parametrize("text", ["env:", "env:1ABC", "env:A-B", "file:", "cred:", "cred:a/b"])
def test_malformed_reference_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=text.partition(":")[0] + ": needs"):
        SecretRef.parse(text)


def test_resolve_env() -> None:
    assert SecretRef("env", "K").resolve({"K": KEY}) == KEY


def test_resolve_env_default_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_TEST_KEY", KEY)
    assert SecretRef("env", "ROUTER_TEST_KEY").resolve() == KEY


@pytest.mark.parametrize("environ", [{}, {"K": ""}])
def test_resolve_env_missing(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        SecretRef("env", "K").resolve(environ)
    assert str(info.value) == "secret env:K: environment variable K is not set"


def test_resolve_file_strips_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    assert SecretRef("file", str(path)).resolve({}) == KEY


def test_resolve_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    with pytest.raises(ConfigError, match=rf"^secret file:{path}: cannot read {path}: "):
        SecretRef("file", str(path)).resolve({})


def test_resolve_file_empty(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        SecretRef("file", str(path)).resolve({})


def test_resolve_file_not_utf8_does_not_show_bytes(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"\xff" + KEY.encode())
    with pytest.raises(ConfigError) as info:
        SecretRef("file", str(path)).resolve({})
    assert KEY not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_resolve_cred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "openai").write_text(KEY)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert SecretRef("cred", "openai").resolve() == KEY


def test_resolve_cred_from_given_environ(tmp_path: Path) -> None:
    (tmp_path / "openai").write_text(KEY + "\r\n")
    ref = SecretRef("cred", "openai")
    assert ref.resolve({"CREDENTIALS_DIRECTORY": str(tmp_path)}) == KEY


def test_resolve_cred_without_credentials_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match=r"^secret cred:openai: CREDENTIALS_DIRECTORY is not set"):
        SecretRef("cred", "openai").resolve()


def test_resolve_cred_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^secret cred:openai: cannot read"):
        SecretRef("cred", "openai").resolve({"CREDENTIALS_DIRECTORY": str(tmp_path)})
