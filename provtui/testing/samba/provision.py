"""The provisioned domain: ``samba-tool domain provision``, the per-machine template cache, and each DC's smb.conf."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import filelock
import platformdirs

from provtui.testing.samba.tls import TlsFiles, openssl_available

REALM = "EXAMPLE.TEST"
DOMAIN = "EXAMPLE"
HOST_NAME = "dc1"
BASE_DN = "DC=example,DC=test"
ADMIN_DN = f"CN=Administrator,CN=Users,{BASE_DN}"
SETUP_DIR = Path("/usr/share/samba/setup/ad-schema")  # samba-ad-provision: provisioning fails on a missing .ldf without it
INSTALL_HINT = "apt-get install --no-install-recommends samba samba-ad-provision samba-dsdb-modules samba-vfs-modules"
CACHE_ENV = "PROVTUI_SAMBA_CACHE"  # a directory for the templates, or "off" to provision every DC afresh

_TEMPLATE_FORMAT = 1  # bump whenever provision() changes, so that templates cached by the old code are not used
_MARKER = "provtui-template.json"
_PASSWORD_FILE = "admin.pw"
LOG_TAIL_CHARS = 4000


class SambaError(RuntimeError):
    """Samba could not be provisioned or started, or refused a request; the message carries its own output."""


def find_binary(name: str) -> str | None:
    """``samba`` or ``samba-tool``: Debian installs samba in /usr/sbin, often not on a user's PATH."""
    path = os.pathsep.join(filter(None, ["/usr/sbin", "/usr/local/sbin", os.environ.get("PATH")]))
    return shutil.which(name, path=path)


def samba_available() -> bool:
    """Whether samba, samba-tool, the provisioning data and openssl are installed (for skip markers)."""
    return bool(find_binary("samba") and find_binary("samba-tool") and SETUP_DIR.is_dir() and openssl_available())


def new_password() -> str:
    return secrets.token_urlsafe(12) + "-Aa1"  # AD's complexity rule wants three of: upper, lower, digit, symbol


def path_options(directory: Path) -> dict[str, str]:
    """Every place Samba writes to, inside ``directory``: their defaults are the system's own, under /var and /run."""
    run = directory / "run"
    return {
        "private dir": str(directory / "private"),
        "lock directory": str(directory),
        "state directory": str(directory / "state"),
        "cache directory": str(directory / "cache"),
        "binddns dir": str(directory / "bind-dns"),
        "pid directory": str(run),
        "ncalrpc dir": str(run / "ncalrpc"),
        "winbindd socket directory": str(run / "winbindd"),
        "ntp signd socket directory": str(run / "ntp_signd"),
        "log file": str(directory / "log.%m"),
    }


def smb_conf(directory: Path, ip: str, tls: TlsFiles) -> str:
    """The DC's whole smb.conf, written afresh for every copy of the template (the template's names its own paths).

    ``interfaces`` carries a netmask because Samba accepts a bare address only when an interface holds it, and
    127.0.0.1 is the only one lo holds; with a mask it "fakes up" the interface and binds just that address.
    samba-tool drops ``ldap server require strong auth``, hence this file: tests simple-bind over plain LDAP too.
    """
    options = {
        "netbios name": HOST_NAME.upper(),
        "workgroup": DOMAIN,
        "realm": REALM,
        "server role": "active directory domain controller",
        "server services": "ldap",  # no smb, kdc, dns, rpc: nothing else to bind, start or clean up
        "interfaces": f"{ip}/8",
        "bind interfaces only": "yes",
        **path_options(directory),
        "idmap_ldb:use rfc2307": "yes",
        "ldb:nosync": "true",  # a throwaway database need not survive a power cut; writes get much faster
        "tls enabled": "yes",
        "tls keyfile": str(tls.key_file),
        "tls certfile": str(tls.cert_file),
        "tls cafile": str(tls.ca_file),
        "ldap server require strong auth": "no",
    }
    return "[global]\n" + "".join(f"\t{name} = {value}\n" for name, value in options.items())


def provision(target: Path, admin_password: str) -> None:
    """``samba-tool domain provision`` into ``target`` (10-15 s); raises SambaError with its output."""
    samba_tool = find_binary("samba-tool")
    if samba_tool is None:
        raise SambaError(f"samba-tool is not installed ({INSTALL_HINT})")
    empty = target / "empty.conf"  # not /etc/samba/smb.conf: its shares and settings would be merged in
    empty.write_text("")
    command = [samba_tool, "domain", "provision", "-s", str(empty), f"--realm={REALM}", f"--domain={DOMAIN}"]
    command += ["--server-role=dc", "--dns-backend=NONE", "--use-rfc2307", f"--host-name={HOST_NAME}"]
    command += [f"--targetdir={target}", f"--adminpass={admin_password}", "--option=ldb:nosync=true"]
    command += [f"--option={name}={value}" for name, value in path_options(target).items()]
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600, check=False)
    finally:
        empty.unlink(missing_ok=True)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-LOG_TAIL_CHARS:]
        raise SambaError(f"samba-tool domain provision failed (exit {result.returncode}):\n{output}")


def cache_root() -> Path | None:
    """Where provisioned templates are kept (``$PROVTUI_SAMBA_CACHE``, else the user's cache); None when turned off."""
    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() in ("0", "off", "no", "false"):
        return None
    return Path(value) if value else platformdirs.user_cache_path("provtui") / "samba"


def template_key() -> str:
    """What a template depends on: Samba's version, the provisioning's options and this code's format."""
    samba = find_binary("samba")
    version = subprocess.run([samba or "samba", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    material = json.dumps([_TEMPLATE_FORMAT, version, REALM, DOMAIN, HOST_NAME, sorted(path_options(Path("/")))])
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def ensure_template(root: Path) -> Path:
    """A provisioned domain under ``root``, made on first use; returns its directory (never run Samba in it).

    A provisioned directory names no path and no address outside its smb.conf, which each copy replaces, so
    one template serves every DC of the machine; a file lock makes concurrent sessions (xdist workers) wait for
    the one that provisions, and the template appears by an atomic rename, complete or not at all.
    """
    root.mkdir(parents=True, exist_ok=True)
    key = template_key()
    template = root / key
    with filelock.FileLock(str(root / f"{key}.lock"), timeout=900):
        if (template / _MARKER).is_file():
            return template
        shutil.rmtree(template, ignore_errors=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            password = new_password()
            provision(partial, password)
            (partial / _PASSWORD_FILE).write_text(password)
            (partial / _PASSWORD_FILE).chmod(0o600)
            (partial / _MARKER).write_text(json.dumps({"key": key, "created": time.time()}))
            partial.rename(template)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    return template


def populate(directory: Path, admin_password: str, *, cache: bool = True) -> tuple[str, dict[str, float]]:
    """Fill the empty ``directory`` with a provisioned domain: a copy of the template, or provisioned here.

    Returns the Administrator's password in that database (the template's own, or ``admin_password`` when
    provisioned here) and the seconds spent ("provision": the wait for the template, near 0 once cached; "copy").
    """
    root = cache_root() if cache else None
    began = time.monotonic()
    if root is None:
        provision(directory, admin_password)
        return admin_password, {"provision": time.monotonic() - began, "copy": 0.0}
    template = ensure_template(root)
    provisioned = time.monotonic()
    shutil.copytree(template, directory, symlinks=True, dirs_exist_ok=True)  # a copy: Samba writes its databases in place
    password = (directory / _PASSWORD_FILE).read_text()
    for stale in (_MARKER, _PASSWORD_FILE):
        (directory / stale).unlink(missing_ok=True)
    return password, {"provision": provisioned - began, "copy": time.monotonic() - provisioned}
