"""Where the hub keeps what must survive a restart: its database and cookie secret, in one data directory.

The directory is meant to be a volume (`JH_DATA_DIR`, default /srv/jupyterhub/data). It is created 0700 when
missing, and narrowed to 0700 when the hub owns it. The cookie secret is created 0600 (never readable by others,
not even for an instant) and refused when group or others can read it, as JupyterHub itself does.
"""

from __future__ import annotations

import os
import secrets
import stat

from hub.settings import SettingsError

DEFAULT_DATA_DIR = "/srv/jupyterhub/data"
COOKIE_SECRET_NAME = "jupyterhub_cookie_secret"
DB_NAME = "jupyterhub.sqlite"


def prepare_data_dir(path: str) -> str:
    """The absolute data directory, created (0700) if missing; SettingsError if it cannot be used."""
    path = os.path.abspath(path)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as e:
        raise SettingsError(f"JH_DATA_DIR: cannot create {path}: {e.strerror}") from None
    if not os.path.isdir(path):
        raise SettingsError(f"JH_DATA_DIR: {path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise SettingsError(f"JH_DATA_DIR: {path} is not writable by this process (uid {os.getuid()})")
    info = os.stat(path)
    if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == os.getuid():
        # a fresh volume is often 0755; the database in it holds token hashes: keep it to the hub
        os.chmod(path, 0o700)
    return path


def sqlite_url(data_dir: str) -> str:
    return f"sqlite:///{os.path.join(data_dir, DB_NAME)}"


def prepare_cookie_secret(data_dir: str) -> str:
    """Path of the cookie secret file in `data_dir`, created 0600 with 32 random bytes (hex) if missing."""
    path = os.path.join(data_dir, COOKIE_SECRET_NAME)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            raise SettingsError(
                f"{path} can be read by group or others (mode {mode:04o}): run `chmod 600 {path}`"
            ) from None
        return path
    except OSError as e:
        raise SettingsError(f"cannot create the cookie secret {path}: {e.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path


def cookie_secret(value: str) -> bytes:
    """The cookie secret given as a Docker secret (`JH_COOKIE_SECRET_FILE`): 32 or more bytes, hex-encoded as
    `openssl rand -hex 32` writes them. Every hub replica or rescheduled hub that reads the same secret keeps every
    browser session; a secret in the data directory would be a new one on another node."""
    text = value.strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise SettingsError("JH_COOKIE_SECRET_FILE must hold hex digits (e.g. `openssl rand -hex 32`)") from None
    if len(secret) < 32:
        raise SettingsError(f"JH_COOKIE_SECRET_FILE holds {len(secret)} bytes; 32 or more are needed")
    return secret
