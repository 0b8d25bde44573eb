"""A throwaway certificate authority for the TLS and HTTP/2 rows (``trustme``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import trustme

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class Certs:
    """PEM files: the CA clients trust, and the upstream's certificate chain and key."""

    ca: Path
    cert: Path
    key: Path


def write_certs(folder: Path) -> Certs:
    """Make a CA and a server certificate for ``localhost`` and ``127.0.0.1`` in ``folder``.

    The router reaches the upstream as ``localhost`` (the name in its config) and the
    load tools as ``127.0.0.1``; one certificate covers both.
    """
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    certs = Certs(folder / "ca.pem", folder / "server-chain.pem", folder / "server-key.pem")
    ca.cert_pem.write_to_path(str(certs.ca))
    certs.cert.write_bytes(b"".join(pem.bytes() for pem in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(certs.key))
    return certs
