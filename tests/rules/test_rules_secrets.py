"""Secret references: parsing, resolving, and never showing a value."""

import os
from pathlib import Path

import pytest

from adapters import provider_kinds
from rules import ConfigError, MalformedSecret, SecretRef, find_secrets, load_config

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
    (tmp_path / "openai").write_text(KEY + "\n")
    ref = SecretRef("cred", "openai")
    assert ref.resolve({"CREDENTIALS_DIRECTORY": str(tmp_path)}) == KEY


def test_resolve_cred_without_credentials_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match=r"^secret cred:openai: CREDENTIALS_DIRECTORY is not set"):
        SecretRef("cred", "openai").resolve()


def test_resolve_cred_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^secret cred:openai: cannot read"):
        SecretRef("cred", "openai").resolve({"CREDENTIALS_DIRECTORY": str(tmp_path)})


# --- values that cannot be a key (whitespace, control characters) -----------------------

# What a CRLF env file, a pasted space or a second line leave around or inside a key.
MALFORMED = [
    KEY + "\r",
    KEY + " ",
    " " + KEY,
    KEY[:6] + "\n" + KEY[6:],
    KEY + "\t",
    KEY[:6] + "\x00" + KEY[6:],
    KEY + "\x7f",
    KEY + "\u0085",  # a C1 control (NEL)
    KEY + "\u00a0",  # a no-break space
]


@pytest.mark.parametrize("value", MALFORMED)
def test_env_value_with_whitespace_or_control_character_refused(value: str) -> None:
    with pytest.raises(MalformedSecret) as info:
        SecretRef("env", "K").resolve({"K": value})
    message = str(info.value)
    assert message.startswith("secret env:K: the value has surrounding whitespace")
    assert KEY not in message
    assert KEY[:8] not in message


@pytest.mark.parametrize(
    "content",
    [KEY + "\r\n", KEY + " \n", KEY + "\n\n", KEY + "\r", "\n" + KEY, *MALFORMED],
)
def test_file_value_refused_unless_only_one_newline_follows(tmp_path: Path, content: str) -> None:
    path = tmp_path / "key"
    path.write_bytes(content.encode())
    with pytest.raises(MalformedSecret) as info:
        SecretRef("file", str(path)).resolve({})
    assert f"secret file:{path}: the value has surrounding" in str(info.value)
    assert KEY[:8] not in str(info.value)


def test_file_with_one_trailing_newline_or_none_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "key"
    for content in (KEY, KEY + "\n"):
        path.write_bytes(content.encode())
        assert SecretRef("file", str(path)).resolve({}) == KEY


def test_a_multiline_secret_keeps_its_newlines(tmp_path: Path) -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEv\r\nQIBAD\n-----END PRIVATE KEY-----\n"
    path = tmp_path / "tls.key"
    path.write_bytes(pem.encode())
    assert SecretRef("file", str(path)).resolve({}, multiline=True) == pem
    with pytest.raises(MalformedSecret):
        SecretRef("file", str(path)).resolve({})


# --- where file: paths point; who may read the file -------------------------------------

ROUTES = """
[providers.up]
kind = "openai"
api_key = "{ref}"

[routes.chat]
fallback = ["up:gpt-4o"]
"""


def test_relative_file_path_is_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "openai.key").write_text(KEY + "\n")
    (folder / "router.toml").write_text(ROUTES.format(ref="file:openai.key"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "openai.key").write_text("the-wrong-key")
    monkeypatch.chdir(elsewhere)
    config = load_config("../etc/router.toml", kinds=provider_kinds())
    ref = config.providers["up"].api_key  # type: ignore[attr-defined]
    assert str(ref) == "file:openai.key"  # shown as written
    assert ref.resolve() == KEY


def test_absolute_file_path_stays(tmp_path: Path) -> None:
    (tmp_path / "router.toml").write_text(ROUTES.format(ref=f"file:{tmp_path}/k"))
    (tmp_path / "k").write_text(KEY)
    config = load_config(tmp_path / "router.toml", kinds=provider_kinds())
    assert config.providers["up"].api_key.resolve() == KEY  # type: ignore[attr-defined]


def test_world_readable_secret_file_gets_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(KEY)
    os.chmod(path, 0o640)
    ref = SecretRef("file", str(path))
    assert ref.warning() is None
    os.chmod(path, 0o644)
    assert ref.warning() == (
        f"secret file:{path}: {path} is readable by every user (chmod o-r {path})"
    )
    assert SecretRef("env", "K").warning() is None


def test_find_secrets_names_each_reference_by_its_key_path(tmp_path: Path) -> None:
    text = '[server]\napi_keys = ["env:A", "env:B"]\nadmin_key = "env:C"\n' + ROUTES.format(
        ref="env:D"
    )
    (tmp_path / "router.toml").write_text(text + '[keys.team]\nsecret = "env:E"\n')
    config = load_config(tmp_path / "router.toml", kinds=provider_kinds())
    found = {path: str(ref) for path, ref in find_secrets(config)}
    assert found == {
        "server.api_keys[0]": "env:A",
        "server.api_keys[1]": "env:B",
        "server.admin_key": "env:C",
        "providers.up.api_key": "env:D",
        "keys.team.secret": "env:E",
    }
