"""Writing files whole or not at all, and one process per output folder.

Every file the package writes goes through :func:`atomic_path` (or the helpers built on it):
the content is written under a temporary name in the destination's folder, flushed to disk
and moved over the destination in one ``os.replace``. A reader, a crash or a kill therefore
sees the old file or the new one, never half of one; a failed write (a full disk, say)
leaves the previous file as it was and raises one :class:`~mbf.errors.OutputError` naming
the file and the free space. Logs (``train_log.txt``, TensorBoard event files) are the
exception: they grow line by line.

Temporary names are ``.<name>.tmp-<pid>-<random>``; :func:`remove_stale_temporaries` removes
those a killed process left, and must only be called by the process that holds the folder's
:class:`FolderLock` (then no other writer can be using them).

:class:`FolderLock` is an exclusive lock on a small file (``flock`` on POSIX, ``msvcrt`` on
Windows) held for as long as a run uses its folder. The operating system releases it when the
process ends, however it ends, so a killed run never blocks its own resume; a second process
is refused at once with the holder's PID and start time.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import re
import secrets
import shlex
import shutil
import sys
from pathlib import Path
from typing import IO, Any, Iterator

from .errors import BusyError, OutputError

_TEMPORARY = re.compile(r"^\..+\.tmp-\d+-[0-9a-f]{6}$")
_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG)


def temporary_path(path: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``path`` (same folder, so the final rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary file name made by :func:`temporary_path`."""
    return bool(_TEMPORARY.match(name))


def existing_ancestor(path: str | os.PathLike) -> Path:
    """``path`` itself when it exists, else the nearest folder above it that does."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: str | os.PathLike) -> int | None:
    """Free space on the file system that holds ``path`` (or would hold it); None if unknown."""
    try:
        return shutil.disk_usage(existing_ancestor(path)).free
    except OSError:
        return None


def format_bytes(size: float | None) -> str:
    if size is None:
        return "unknown"
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover - the loop returns at GB


def write_error(path: str | os.PathLike, exc: OSError, existed: bool | None = None) -> OutputError:
    """One :class:`OutputError` for a failed write of ``path``: what failed and what was kept."""
    path = Path(path)
    existed = path.exists() if existed is None else existed
    kept = f"the previous {path.name} is unchanged" if existed else "nothing was written"
    if exc.errno in _FULL:
        return OutputError(f"cannot write {path}: the disk is full ({format_bytes(free_bytes(path))} free in "
                           f"{existing_ancestor(path.parent)}); {kept}")
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"cannot write {path}: {reason} (the folder {existing_ancestor(path.parent)} is not "
                           f"writable); {kept}")
    return OutputError(f"cannot write {path}: {reason}; {kept}")


def make_folder(folder: str | os.PathLike) -> Path:
    """``folder`` and its parents, created if missing; OutputError naming it if that fails."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"cannot create the folder {folder}: a file of that name exists") from None
    except OSError as exc:
        raise write_error(folder, exc) from None
    return folder


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, folder: bool = False) -> Iterator[Path]:
    """A temporary path to write; moved to ``path`` when the block ends without an exception.

    For libraries that write by file name (ONNX, FAISS). ``folder``: the temporary is a folder
    that replaces the folder ``path`` (its old content is removed first). On any failure the
    temporary is removed and ``path`` is left as it was; an OSError becomes an OutputError.
    """
    path = Path(path)
    make_folder(path.parent)
    existed = path.exists()
    tmp = temporary_path(path)
    try:
        if folder:
            tmp.mkdir()
        yield tmp
        if folder and path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as exc:
        raise write_error(path, exc, existed) from None
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            with contextlib.suppress(OSError):
                tmp.unlink()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None,
                 fsync: bool = True) -> Iterator[IO]:
    """An open file whose content replaces ``path`` only once the block completes.

    ``mode`` is "wb" or "w" (text, UTF-8 unless ``encoding``); ``fsync`` flushes the data to disk
    before the rename (turn it off only for many small files that can be made again).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write writes whole files: mode 'w' or 'wb', got {mode!r}")
    text = mode == "w"
    with atomic_path(path) as tmp:
        with open(tmp, "x" if text else "xb", encoding=(encoding or "utf-8") if text else None,
                  newline="" if text else None) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())


def write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = True) -> Path:
    with atomic_write(path, "wb", fsync=fsync) as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    with atomic_write(path, "w", encoding=encoding) as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, data: Any, indent: int = 2, sort_keys: bool = False) -> Path:
    return write_text(path, json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n")


@contextlib.contextmanager
def removing_new_folders(folder: str | os.PathLike) -> Iterator[None]:
    """The folders of ``folder``'s path that do not exist yet are removed again (while empty) when
    the block raises: a refused or failed command leaves no empty folders behind."""
    missing, current = [], Path(os.path.abspath(folder))
    while not current.exists() and current != current.parent:
        missing.append(current)  # deepest first
        current = current.parent
    try:
        yield
    except BaseException:
        for path in missing:
            try:
                path.rmdir()
            except OSError:  # not empty (something else was written there) or already gone
                break
        raise


def remove_stale_temporaries(folder: str | os.PathLike) -> list[str]:
    """Delete the temporary files (and folders) a killed writer left directly in ``folder``.

    Only for the holder of ``folder``'s :class:`FolderLock`: nobody else may write there then.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in sorted(folder.iterdir()):
        if is_temporary(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return removed


def probe_writable(folder: str | os.PathLike) -> Path:
    """The folder files of ``folder`` would be created in (``folder``, or the nearest existing
    folder its missing ones would be made in), once a probe file was created and removed there;
    the OSError of the attempt otherwise (ENOTDIR when that ancestor is a file). Creates nothing
    that stays."""
    base = existing_ancestor(folder)
    if not base.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(base))
    probe = temporary_path(base / "write-check")
    probe.touch(exist_ok=False)
    probe.unlink(missing_ok=True)
    return base


def check_writable(folder: str | os.PathLike, what: str) -> None:
    """Raise OutputError unless files can be created in ``folder`` (see :func:`probe_writable`)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what} {folder} is a file, expected a folder")
    try:
        probe_writable(folder)
    except OSError as exc:
        base = existing_ancestor(folder)
        if not base.is_dir():
            raise OutputError(f"{what} {folder} cannot be created: {base} is a file") from None
        raise OutputError(f"{what} {folder} is not writable: {exc.strerror or exc} ({base})") from None


# ------------------------------------------------------------------------------------ locks
LOCK_NAME = ".mbf-lock"
_COMMAND_SHOWN = 160  # characters of the holder's command line shown in a refusal

try:  # POSIX
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
except ImportError:  # pragma: no cover - Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


class FolderLock:
    """An exclusive, non-blocking lock on ``lock_file`` held for a run's life.

    ``what`` names the thing locked in the refusal ("OUTPUT_DIR logs/x", "gallery out.npz");
    ``advice`` says what to do instead. Acquiring writes the holder's PID, start time and
    command into the file; a second process gets :class:`BusyError` with them. The file is
    removed on :meth:`release`; a killed holder's file stays and is simply taken over.
    """

    def __init__(self, lock_file: str | os.PathLike, what: str, advice: str = ""):
        self.path, self.what, self.advice = Path(lock_file), what, advice
        self._fd: int | None = None

    @classmethod
    def for_folder(cls, folder: str | os.PathLike, what: str, advice: str = "") -> "FolderLock":
        return cls(Path(folder) / LOCK_NAME, what, advice)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "FolderLock":
        if self._fd is not None:
            return self
        make_folder(self.path.parent)
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise write_error(self.path, exc) from None
            if not _try_lock(fd):
                holder = _read_holder(fd)
                os.close(fd)
                raise BusyError(f"{self.what} is in use by another process ({holder}); nothing was written"
                                + (f"; {self.advice}" if self.advice else ""))
            # the holder before us may have removed the file between our open and our lock: then
            # we locked an orphan and must lock the file that is there now
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        info = {"pid": os.getpid(), "started": _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                "command": shlex.join(getattr(sys, "orig_argv", sys.argv))}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # before unlocking: a waiter that opened it re-checks the path (see acquire)
        with contextlib.suppress(OSError):
            _unlock(fd)
        os.close(fd)

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):
        self.release()


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        command = str(info["command"])
        if len(command) > _COMMAND_SHOWN:
            command = command[:_COMMAND_SHOWN - 3] + "..."
        return f"PID {info['pid']}, started {info['started']}: {command}"
    except (OSError, ValueError, KeyError, TypeError):
        return "PID unknown: its lock file is still being written"
