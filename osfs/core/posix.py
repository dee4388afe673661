"""POSIX attributes of an object, kept in its meta document's ``metadata`` map.

Rules (DESIGN §3):
1. The attributes live under documented keys, so they persist with the object, other clients
   carry them along, and rsync's quick check (size + mtime) works across mounts:

   =================  ==========================================================================
   ``osfs.mode``      the full ``st_mode`` in octal, type bits included, as ``stat`` shows it:
                      ``100644`` (file), ``40755`` (directory marker), ``120777`` (symlink).
                      Readers also accept permission bits alone (``644``, ``0644``).
   ``osfs.uid``       owner, decimal.
   ``osfs.gid``       group, decimal.
   ``osfs.mtime``     modification time, integer nanoseconds since the epoch, decimal (may be
                      negative for files older than 1970).
   ``osfs.symlink``   the exact target of a symlink made with ``ln -s`` in the mount; such an
                      object holds no data.
   =================  ==========================================================================

2. The file *type* always comes from the object itself (a marker name is a directory, a link
   or ``osfs.symlink`` is a symlink, anything else a regular file); a stored mode contributes
   its permission bits (``0o7777``) only, so a stale or foreign type can never disagree with
   the tree.
3. Objects without our keys get the mount's defaults and the server's timestamp as mtime; a
   malformed value falls back to the default for that field alone. Reading never raises.
Pure: no I/O.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from osfs.core.meta import ObjectInfo

MODE_KEY = "osfs.mode"
UID_KEY = "osfs.uid"
GID_KEY = "osfs.gid"
MTIME_KEY = "osfs.mtime"
SYMLINK_KEY = "osfs.symlink"

#: Permission bits of a symlink without a stored mode (Linux ignores them anyway).
SYMLINK_PERMISSIONS = 0o777

_PERMISSION_BITS = 0o7777
_MAX_MODE = 0o177777
#: ``(uid_t)-1`` means "no change" to chown(2), so it is never a real owner.
_MAX_ID = 2**32 - 2
_MAX_NS = 2**63 - 1

_OCTAL_RE = re.compile(r"[0-7]{1,7}")
_DECIMAL_RE = re.compile(r"[0-9]{1,10}")
_SIGNED_DECIMAL_RE = re.compile(r"-?[0-9]{1,19}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MountDefaults:
    """What objects from other clients look like: the mount's options.

    Attributes:
        uid: owner of everything without ``osfs.uid``.
        gid: group of everything without ``osfs.gid``.
        file_mode: permission bits of files without ``osfs.mode``.
        dir_mode: permission bits of directories without ``osfs.mode`` (implicit ones always).
    """

    uid: int
    gid: int
    file_mode: int = 0o644
    dir_mode: int = 0o755


@dataclass(frozen=True, slots=True)
class PosixAttrs:
    """The POSIX attributes of one entry.

    Attributes:
        mode: the full ``st_mode`` (type bits and permission bits), ready for ``stat``.
        uid: owner.
        gid: group.
        mtime_ns: modification time in ns since the epoch.
    """

    mode: int
    uid: int
    gid: int
    mtime_ns: int

    @property
    def permissions(self) -> int:
        """The permission bits alone (``0o7777``)."""
        return self.mode & _PERMISSION_BITS


def stored_symlink(info: ObjectInfo) -> str | None:
    """The target of a symlink made with ``ln -s`` in a mount, or None for any other object.

    An empty target or one holding NUL cannot come from ``symlink(2)``: such a value is
    ignored and the object stays a regular file.
    """
    target = info.metadata.get(SYMLINK_KEY)
    if not target or "\x00" in target:
        return None
    return target


def is_symlink(info: ObjectInfo) -> bool:
    """True for an object the mount shows as a symlink: an object link, a bucket link, or
    an object with a valid ``osfs.symlink``."""
    return info.link is not None or stored_symlink(info) is not None


def file_type(info: ObjectInfo) -> int:
    """The ``S_IF*`` type bits of the entry ``info`` shows as (its kind, never metadata)."""
    if info.name.endswith("/"):
        return stat.S_IFDIR
    if is_symlink(info):
        return stat.S_IFLNK
    return stat.S_IFREG


def attrs_of(info: ObjectInfo, defaults: MountDefaults) -> PosixAttrs:
    """The attributes of the entry ``info`` shows as: stored values, else the defaults.

    ``info`` is a file, a symlink or a directory marker; see :func:`implicit_dir_attrs` for
    directories without one. Never raises.
    """
    kind = file_type(info)
    if kind == stat.S_IFDIR:
        default_perms = defaults.dir_mode
    elif kind == stat.S_IFLNK:
        default_perms = SYMLINK_PERMISSIONS
    else:
        default_perms = defaults.file_mode
    metadata = info.metadata
    mode = _parse(metadata.get(MODE_KEY), _OCTAL_RE, 8, 0, _MAX_MODE)
    uid = _parse(metadata.get(UID_KEY), _DECIMAL_RE, 10, 0, _MAX_ID)
    gid = _parse(metadata.get(GID_KEY), _DECIMAL_RE, 10, 0, _MAX_ID)
    mtime = _parse(metadata.get(MTIME_KEY), _SIGNED_DECIMAL_RE, 10, -_MAX_NS - 1, _MAX_NS)
    perms = default_perms if mode is None else mode
    return PosixAttrs(
        mode=kind | (perms & _PERMISSION_BITS),
        uid=defaults.uid if uid is None else uid,
        gid=defaults.gid if gid is None else gid,
        mtime_ns=info.mtime_ns if mtime is None else mtime,
    )


def implicit_dir_attrs(defaults: MountDefaults, *, mtime_ns: int) -> PosixAttrs:
    """The attributes of a directory that exists only because names under it do.

    Args:
        defaults: the mount's options.
        mtime_ns: the time to show (no object carries one; the adapter picks, e.g. mount time).
    """
    return PosixAttrs(
        mode=stat.S_IFDIR | (defaults.dir_mode & _PERMISSION_BITS),
        uid=defaults.uid,
        gid=defaults.gid,
        mtime_ns=mtime_ns,
    )


def metadata_with(
    attrs: PosixAttrs, base_metadata: Mapping[str, str], *, symlink: str | None = None
) -> dict[str, str]:
    """``base_metadata`` with ``attrs`` (and a symlink target, if given) stored in our keys.

    Other keys are kept as they are: they belong to whoever wrote them. The write path puts
    the result in the object's meta document.
    """
    metadata = dict(base_metadata)
    metadata[MODE_KEY] = format(attrs.mode, "o")
    metadata[UID_KEY] = str(attrs.uid)
    metadata[GID_KEY] = str(attrs.gid)
    metadata[MTIME_KEY] = str(attrs.mtime_ns)
    if symlink is not None:
        metadata[SYMLINK_KEY] = symlink
    return metadata


def _parse(
    value: str | None, pattern: re.Pattern[str], base: int, low: int, high: int
) -> int | None:
    """``value`` as an int in ``low..high``, or None when missing or malformed.

    The pattern is matched first because ``int()`` would also take spaces, underscores and
    non-ASCII digits.
    """
    if value is None or pattern.fullmatch(value) is None:
        return None
    number = int(value, base)
    return number if low <= number <= high else None
