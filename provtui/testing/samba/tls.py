"""A throwaway certificate authority for one test DC: a CA certificate and a server certificate for its IP.

Samba's own ``tls enabled = yes`` default generates a self-signed certificate for the host *name*, which a client
that verifies (as provtui must) cannot trust for ``ldaps://127.0.0.N``. So each DC gets a CA of its own, made
fresh with the ``openssl`` command (the ``cryptography`` package is not one of provtui's dependencies), whose
server certificate names the DC's address in subjectAltName (``IP:...``): a client then verifies the chain *and*
the host against ``ca.pem`` only. The CA's key is deleted once the server certificate is signed, so nothing
else can ever be issued under that CA.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_DAYS = 7  # long enough for a soak or a manual session; the CA is gone with the DC's directory anyway


class TlsError(RuntimeError):
    """openssl is missing or refused to make the certificates; the message carries its output."""


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files Samba's ``tls cafile``/``tls certfile``/``tls keyfile`` name (the key is mode 0600, as Samba requires)."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def make_server_certificate(directory: Path, ip: str) -> TlsFiles:
    """Make ``ca.pem``, ``server.pem`` and ``server.key`` in ``directory`` for a server at ``ip`` (P-256 keys: fast to make)."""
    ipaddress.ip_address(ip)  # the SAN must be an IP entry; refuse a host name early
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsError("openssl is not installed (apt-get install openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_file = directory / "ca.key", directory / "ca.pem"
    key_file, cert_file = directory / "server.key", directory / "server.pem"
    csr, extensions = directory / "server.csr", directory / "server.ext"
    extensions.write_text(
        f"subjectAltName=IP:{ip}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        [openssl, "req", "-x509", *new_key, "-keyout", str(ca_key), "-out", str(ca_file), "-days", str(_DAYS)]
        + ["-subj", f"/CN=provtui throwaway test CA for {ip}", "-addext", "basicConstraints=critical,CA:TRUE"]
        + ["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", *new_key, "-keyout", str(key_file), "-out", str(csr), "-subj", f"/CN={ip}"],
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_file), "-CAkey", str(ca_key), "-set_serial", "2"]
        + ["-out", str(cert_file), "-days", str(_DAYS), "-extfile", str(extensions)],
    ]
    try:
        for command in steps:
            result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False)
            if result.returncode != 0:
                raise TlsError(f"{' '.join(command[:2])} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
    finally:
        for leftover in (ca_key, csr, extensions):
            leftover.unlink(missing_ok=True)
    os.chmod(key_file, 0o600)  # Samba refuses a key file that others can read
    return TlsFiles(ca_file=ca_file, cert_file=cert_file, key_file=key_file)
