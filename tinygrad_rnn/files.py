"""Writing a file the way ``open(path, "wb")`` would, but atomically: :func:`write_atomically`.

A new file gets mode ``0o666`` less the umask, an existing one keeps its mode (and owner where
allowed), a symbolic link is written through (the link stays), a read-only file is refused, and
the bytes go to a temporary file next to the target that replaces it only once complete: never a
half-written or lost file. ``tr.save`` and the CLI's outputs write through it.
"""
from __future__ import annotations

import errno
import os
import secrets
import stat


def write_atomically(path, write, op: str) -> None:
    """Call ``write(file)`` on a binary file that becomes ``path`` when it returns; errors name ``op``."""
    path = os.fspath(path)
    target, existing = _target(path, op)
    descriptor, temporary = _create_temporary(path, target, op)
    try:
        with os.fdopen(descriptor, "wb") as file:
            if existing is not None:
                _copy_mode_and_owner(file.fileno(), existing)
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.strerror and not str(exc).startswith(f"{op}: "):
            raise _os_error(type(exc), exc.errno, f"{op}: cannot write {path}: {exc.strerror}") from None
        raise


def _os_error(kind, number, message):
    """``kind(message)`` with ``errno`` set; its text is ``message`` alone."""
    error = kind(message)
    error.errno = number
    return error


def _target(path, op):
    """The file to replace (``path``, or what a symbolic link there points to) and its ``os.stat``
    result (``None`` when it does not exist yet); refuses what ``open()`` could not write."""
    target = os.path.realpath(path)
    if os.path.islink(target):
        raise _os_error(OSError, errno.ELOOP, f"{op}: cannot write {path}: its symbolic links form a loop")
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise _os_error(FileNotFoundError, errno.ENOENT,
                        f"{op}: cannot write {path}: the directory {directory} does not exist")
    try:
        existing = os.stat(target)
    except FileNotFoundError:
        return target, None
    if stat.S_ISDIR(existing.st_mode):
        raise _os_error(IsADirectoryError, errno.EISDIR, f"{op}: cannot write {path}: it is a directory")
    if not stat.S_ISREG(existing.st_mode):
        raise _os_error(OSError, errno.EINVAL,
                        f"{op}: cannot write {path}: it is not a regular file (a device, pipe or socket)")
    mode = stat.S_IMODE(existing.st_mode)
    if not mode & 0o222 or not os.access(target, os.W_OK):
        raise _os_error(PermissionError, errno.EACCES,
                        f"{op}: cannot write {path}: the file is read-only (mode {mode:04o}); "
                        "make it writable (chmod u+w) or save under another name")
    return target, existing


def _create_temporary(path, target, op):
    """A new empty file next to ``target``, created like ``open()`` creates files (mode 0o666 less the umask)."""
    directory, name = os.path.split(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        temporary = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
        except OSError as exc:
            raise _os_error(type(exc), exc.errno, f"{op}: cannot write {path}: {exc.strerror}") from None
    raise _os_error(FileExistsError, errno.EEXIST, f"{op}: cannot write {path}: no free temporary name in {directory}")


def _copy_mode_and_owner(descriptor, existing):
    """Give the new file the replaced file's permissions, and its owner where allowed (as ``open()`` keeps them)."""
    if hasattr(os, "fchmod"):
        os.fchmod(descriptor, stat.S_IMODE(existing.st_mode))
    if hasattr(os, "fchown") and (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.fchown(descriptor, existing.st_uid, existing.st_gid)
        except OSError:
            pass  # only root may give a file away; the new file stays ours
