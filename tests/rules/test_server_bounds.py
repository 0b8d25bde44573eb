"""``server.fetch_images_allow`` and ``server.max_response``: parsed, defaulted, checked."""

from __future__ import annotations

from tests.rules.test_rules_load import BASE, errors, parse


def test_defaults() -> None:
    server = parse(BASE).server
    assert server.fetch_images_allow == ()
    assert server.max_response == 32 * 1024 * 1024


def test_values() -> None:
    text = '[server]\nfetch_images_allow = ["10.0.0.0/8", "fd00::/8", "192.168.1.7"]\n'
    server = parse(text + 'max_response = "1MiB"\n' + BASE).server
    assert server.fetch_images_allow == ("10.0.0.0/8", "fd00::/8", "192.168.1.7")
    assert server.max_response == 1024 * 1024


def test_errors_name_the_bad_entry() -> None:
    text = '[server]\nfetch_images_allow = ["10.0.0.0/8", "intranet"]\n'
    assert errors(text + BASE) == [
        "server.fetch_images_allow[1]: 'intranet' is not a network "
        "(CIDR such as 10.0.0.0/8 or an address)"
    ]
    assert errors("[server]\nmax_response = 0\n" + BASE) == [
        "server.max_response: must be greater than 0, got 0"
    ]
