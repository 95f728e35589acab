"""Atomic file output: every file and directory snnsim writes goes through this module; and
the one check of an input file a user names (:func:`existing_file`).

A destination is written as a temporary beside it, then renamed onto it, so nothing
half-written is ever left at the destination path, even if the process is killed mid-write.

* Temporaries are named ``.<dest>.snnsim-<pid>-<random>.tmp``. Every writer first sweeps its
  target's directory for temporaries whose owning process is gone (a run killed with -9,
  a full disk) and removes them, so an interrupted run leaves nothing behind after the next run
  (older snnsim's pid-less ``.<dest>.<random>.tmp`` leftovers go once they are an hour old).
* Replacing an existing directory (:func:`atomic_dir`) is one atomic exchange of the two
  directory entries (Linux ``renameat2(RENAME_EXCHANGE)``): at every moment the destination
  holds either the complete old tree or the complete new one. Where the exchange is not
  available, the old tree is first renamed aside as ``.<dest>.snnsim-<pid>-old.tmp``; a kill
  between the two renames is repaired by the next writer's sweep (the old tree is put back).
* :func:`output_dir` validates a user's output directory before any long work starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from snnsim.errors import SnnsimError

_TMP_RE = re.compile(r"^\.(?P<dest>.+)\.snnsim-(?P<pid>\d+)-(?P<tag>[0-9a-f]+|old)\.tmp$")
# Temporaries of snnsim before 0.1.0's trust work (tempfile's 8 random characters, no owner pid):
# removed once they are older than an hour, since their owner cannot be asked.
_LEGACY_TMP_RE = re.compile(r"^\.(?P<dest>.+)\.[a-z0-9_]{8}(?:\.[A-Za-z0-9]+)?\.tmp$")
_LEGACY_AGE_S = 3600.0
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _tmp_name(dest: Path, tag: str | None = None) -> Path:
    return dest.with_name(f".{dest.name}.snnsim-{os.getpid()}-{tag or secrets.token_hex(4)}.tmp")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _age(path: Path) -> float:
    try:
        return time.time() - path.lstat().st_mtime
    except OSError:
        return 0.0


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def sweep_stale(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries of dead snnsim processes in ``directory``; put back an old tree
    that a killed replacement had moved aside while its destination is missing. Returns the
    paths removed or restored."""
    d = Path(directory)
    done: list[Path] = []
    try:
        entries = list(d.iterdir())
    except OSError:
        return done
    for entry in entries:
        m = _TMP_RE.match(entry.name)
        if m is None:
            if _LEGACY_TMP_RE.match(entry.name) and _age(entry) > _LEGACY_AGE_S:
                _remove(entry)
                done.append(entry)
            continue
        if _alive(int(m["pid"])):
            continue
        dest = d / m["dest"]
        if m["tag"] == "old" and not dest.exists():
            with contextlib.suppress(OSError):
                os.replace(entry, dest)
                done.append(dest)
                continue
        _remove(entry)
        done.append(entry)
    return done


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directory entries atomically; False where the kernel or libc cannot."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _name_the_destination(exc: BaseException, tmp: Path, dest: Path) -> None:
    """An OSError about the temporary (or a file inside it) names the destination the user
    asked for instead: they never chose the temporary's name."""
    if isinstance(exc, OSError) and exc.filename is not None:
        name = os.fsdecode(exc.filename) if isinstance(exc.filename, bytes) else str(exc.filename)
        if name == str(tmp) or name.startswith(str(tmp) + os.sep):
            exc.filename = str(dest) + name[len(str(tmp)):]


def _prepare_parent(dest: Path) -> None:
    if dest.parent.exists() and not dest.parent.is_dir():
        raise SnnsimError(f"cannot write {str(dest)!r}: {str(dest.parent)!r} is a file, not a directory",
                          "choose an output path inside a directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(dest.parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    ``suffix`` is kept for callers that name a file type; the temporary always ends in
    ``.tmp`` so the sweep recognises it.
    """
    del suffix
    dest = Path(path)
    if dest.is_dir():
        raise SnnsimError(f"cannot write file {str(dest)!r}: a directory is in the way",
                          "remove it or choose another path")
    _prepare_parent(dest)
    tmp = _tmp_name(dest)
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException as exc:
        _remove(tmp)
        _name_the_destination(exc, tmp, dest)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing and atomically move it to ``path`` on success."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``path`` (an existing one atomically)."""
    dest = Path(path)
    if dest.exists() and not dest.is_dir():
        raise SnnsimError(f"cannot write directory {str(dest)!r}: a file is in the way",
                          "remove it or choose another path")
    _prepare_parent(dest)
    tmp = _tmp_name(dest)
    try:
        tmp.mkdir()
    except OSError as exc:
        _name_the_destination(exc, tmp, dest)
        raise
    try:
        yield tmp
        if not dest.exists():
            os.replace(tmp, dest)
        elif _exchange(tmp, dest):
            _remove(tmp)  # now the old tree; a kill here leaves it to the next sweep
        else:
            old = _tmp_name(dest, "old")
            os.replace(dest, old)
            os.replace(tmp, dest)
            _remove(old)
    except BaseException as exc:
        _remove(tmp)
        _name_the_destination(exc, tmp, dest)
        raise


def output_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Check, before any long work, that ``path`` can become an output directory.

    It may exist (as a directory) or not; every existing ancestor must be a writable directory.
    Nothing is created here. Raises a one-line :class:`SnnsimError` naming ``option``.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise SnnsimError(f"{option} {str(p)!r} exists and is not a directory",
                          f"pass a directory path to {option}")
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise SnnsimError(f"{option} {str(p)!r} lies under {str(probe)!r}, which is a file",
                          f"pass a directory path to {option}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise SnnsimError(f"{option} {str(p)!r}: {str(probe)!r} is not writable",
                          f"choose a writable location for {option}")
    return p


def write_csv(df: Any, path: str | os.PathLike[str]) -> Path:
    """Write a pandas DataFrame as CSV atomically and return the path."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return Path(path)


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write text atomically and return the path."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def existing_file(path: str | os.PathLike[str], what: str, fix: str = "check the path",
                  suffixes: tuple[str, ...] = (), suffix_fix: str = "", dir_fix: str = "pass the file, not its folder",
                  error: type[SnnsimError] = SnnsimError) -> Path:
    """The path of an input file the user named (``~`` expanded), or one line naming ``what``
    and the fix: a name without one of ``suffixes`` (case-insensitive; any when empty), a path
    that does not exist, a directory. ``error`` is the :class:`SnnsimError` subclass raised."""
    p = Path(path).expanduser()
    shown = repr(str(p))
    if suffixes and p.suffix.lower() not in suffixes:
        kinds = " or ".join(suffixes)
        raise error(f"{what} {shown} is not a {kinds} file", suffix_fix or f"pass a {kinds} file")
    if not p.exists():
        raise error(f"{what} {shown} does not exist", fix)
    if p.is_dir():
        raise error(f"{what} {shown} is a directory", dir_fix)
    return p


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks (never the whole file at once)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
