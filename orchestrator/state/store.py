"""Every write of workspace state goes through here: temp file in the same directory, fsync, rename.

A crash or ``kill -9`` at any moment leaves either the old file or the new one, never a mix.
(Documents with frontmatter are composed and read in ``documents``; master_plan.md's own rewrite,
which must not lose a person's edit made meanwhile, is ``planfile``.)
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator.state.procs import pid_alive, started_at

TEMP_PREFIX = ".tmp-"  # a temp file's name: .tmp-NAME.PID.N (``write_temp``)


def fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_LIBC_SYNCFS: list[Any] = []  # [syncfs] once looked up; [None] where there is none


def _syncfs(fd: int) -> bool:
    """Linux ``syncfs(2)`` on the file system holding ``fd``; ``False`` where it is not to be had,
    ``OSError`` (naming no file) where it reports that written data could not be flushed.
    ctypes is loaded on first use only (a few milliseconds a command that never syncs need not pay)."""
    if not _LIBC_SYNCFS:
        function = None
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError, ImportError):
                import ctypes

                function = ctypes.CDLL(None, use_errno=True).syncfs
                function.argtypes = [ctypes.c_int]
                function.restype = ctypes.c_int
        _LIBC_SYNCFS.append(function)
    function = _LIBC_SYNCFS[0]
    if function is None:
        return False
    if function(fd) == 0:
        return True
    import ctypes
    import errno

    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL):  # no syncfs in this kernel: the global sync will do
        return False
    # A write-back error (EIO, ENOSPC): what was written is not safe, and a global sync would not
    # say so. The caller must not go on to rename temp files over good ones.
    raise OSError(code, os.strerror(code))


def sync_filesystems(directories: Iterable[Path]) -> None:
    """Flush every file written to the file systems holding ``directories``: one journal commit
    each, however many files. Linux's ``syncfs`` touches only those file systems; a global
    ``sync`` (the fallback elsewhere) would wait on every disk and mount of the machine, for a
    long time behind someone else's big write and for ever behind a dead network mount."""
    done: set[int] = set()
    for directory in directories:
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # gone, and what was written in it with it
            continue
        except OSError:
            os.sync()
            return
        try:
            device = os.fstat(fd).st_dev
            if device in done:
                continue
            try:
                synced = _syncfs(fd)
            except OSError as exc:
                raise named_error(exc, directory) from exc
            if not synced:
                os.sync()
                return
            done.add(device)
        finally:
            os.close(fd)


class Pieces:
    """What a file is to hold, in pieces written one after the other (``write_temp``)."""

    __slots__ = ("parts",)

    def __init__(self, *parts: bytes | bytearray | memoryview) -> None:
        self.parts = parts


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once, at import: os.umask can only be read by setting it.
_NEW_FILE_MODE = 0o666 & ~_umask()


_TEMP_NUMBERS = itertools.count()
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
_PID = [os.getpid()]  # for temp names; a forked child takes its own
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))


def write_temp(
    path: Path, data: bytes | bytearray | Pieces, *, sync: bool, parent_exists: bool = False, exists: bool = True
) -> str:
    """A new temp file beside ``path`` holding ``data`` (or its ``Pieces`` one after the other:
    a header before a large body, never joined into a copy of it); its name is returned.
    ``exists=False`` says the caller knows ``path`` is not there (no permissions to carry over).

    Plain syscalls rather than ``mkstemp`` and a file object: rendering writes 10,000 of these.
    """
    if not parent_exists:
        path.parent.mkdir(parents=True, exist_ok=True)
    target = os.fspath(path)
    mode: int | None = None
    if exists:  # the replacement keeps the file's permissions; a new file gets the usual ones, not 0600
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(os.stat(target).st_mode)
    # pid and a counter make the name unique among live writers; O_EXCL skips a dead one's leftover.
    stem = os.path.join(os.path.dirname(target), f"{TEMP_PREFIX}{path.name}.{_PID[0]}.")
    for _ in range(100):
        temp = stem + str(next(_TEMP_NUMBERS))
        try:
            fd = os.open(temp, _TEMP_FLAGS, _NEW_FILE_MODE)  # the umask, applied again, changes nothing
            break
        except FileExistsError:
            continue
        except FileNotFoundError:
            if not parent_exists:
                raise
            path.parent.mkdir(parents=True, exist_ok=True)  # it was, but somebody removed it
            parent_exists = False
    else:
        raise FileExistsError(f"{stem}*: no free temp file name")
    try:
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            for piece in data.parts if isinstance(data, Pieces) else (data,):
                write_all(fd, piece)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError) and exc.filename is None:
            raise named_error(exc, temp) from exc  # a full disk: say which file could not be written
        raise
    return temp


def named_error(exc: OSError, path: str | os.PathLike[str]) -> OSError:
    """``exc`` naming ``path``: ``os.write`` and ``os.fsync`` fail (a full disk, a quota, an I/O
    error) with no file named, and the CLI turns only an error that names one into a single line."""
    return OSError(exc.errno, exc.strerror, os.fspath(path))


def write_all(fd: int, data: bytes | bytearray | memoryview, path: str | os.PathLike[str] | None = None) -> None:
    """Write all of ``data`` to ``fd``; an error names ``path`` (``os.write`` names no file)."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        if path is None or exc.filename is not None:
            raise
        raise named_error(exc, path) from exc


_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


def append(path: Path, data: bytes, *, create: bool = False, sync: bool = False) -> None:
    """Append ``data`` to ``path`` in one ``write()`` with ``O_APPEND`` (whole lines from writers
    at once never tear one another), through no symlink; ``create``: make the file if it is not
    there; ``sync``: fsync it before returning."""
    fd = os.open(path, _APPEND_FLAGS | (os.O_CREAT if create else 0), 0o666)
    try:
        write_all(fd, data, path)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def write_text(
    path: Path, text: str, *, durable: bool = True, parent_exists: bool = False, exists: bool = True
) -> None:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    write_bytes(path, text.encode("utf-8"), durable=durable, parent_exists=parent_exists, exists=exists)


def write_bytes(
    path: Path,
    data: bytes | bytearray | Pieces,
    *,
    durable: bool = True,
    parent_exists: bool = False,
    exists: bool = True,
) -> None:
    """Atomically replace ``path`` with ``data``.

    Atomic either way: a killed process leaves the old file or the new one. ``durable`` adds the
    fsyncs that make the new one survive a power cut too; a caller that writes many files may
    skip them and ``sync_files`` later in one go (the runner does, once a second).
    ``parent_exists`` and ``exists=False`` spare a syscall each for a caller that knows.
    """
    temp = write_temp(path, data, sync=durable, parent_exists=parent_exists, exists=exists)
    replace(Path(temp), path, durable=durable)


def replace(temp: Path, path: Path, *, durable: bool = True) -> None:
    """Rename ``temp`` (made by ``write_temp``) over ``path``; ``temp`` is gone either way."""
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if durable:
        fsync_directory(path.parent)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100
_LIBC_RENAMEAT2: list[Any] = []  # [renameat2] once looked up; [None] where there is none


def exchange(first: Path, second: Path) -> bool:
    """Swap two files in one step (Linux ``renameat2(RENAME_EXCHANGE)``): each name then holds
    what the other held, with no moment at which either is missing or a write to either is lost.
    ``False``, with nothing done, where the system or the file system cannot do it."""
    if not _LIBC_RENAMEAT2:
        function = None
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError, ImportError):
                import ctypes

                function = ctypes.CDLL(None, use_errno=True).renameat2
                function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
                function.restype = ctypes.c_int
        _LIBC_RENAMEAT2.append(function)
    function = _LIBC_RENAMEAT2[0]
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    import ctypes
    import errno

    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(second))


def sync_files(paths: Iterable[Path]) -> None:
    """Make files written with ``durable=False`` durable, renames included.

    Each fsync forces a journal commit, and while one runs every file creation on the filesystem
    waits: a few hundred fsyncs a second made the runner's own file creations ten times slower.
    Past a handful of files one ``syncfs`` (one commit) does the same job.
    """
    paths = list(paths)
    if len(paths) > 8:
        sync_filesystems({path.parent for path in paths})
        return
    directories: set[Path] = set()
    for path in paths:
        directories.add(path.parent)
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for directory in directories:
        fsync_directory(directory)


def write_many(
    items: Iterable[tuple[Path, str | bytes]], *, listed: Mapping[Path, set[str]] | None = None, whole: bool = False
) -> int:
    """Atomically replace many files: write every temp file, one ``syncfs``, then the renames.

    One syncfs for the batch instead of one fsync per file keeps rendering 10,000 briefs fast while
    each file is still either wholly old or wholly new. ``whole``: files that all go to one
    directory that is missing or empty (a first render) are written into a new directory beside
    it that then replaces it (``_write_new_directory``); a killed writer may leave that new
    directory behind, for ``clean_temp_files`` of the parent to remove, so only a caller that
    cleans there asks for this. ``listed``: the names in a directory, for a caller that has
    just listed it (it is not listed again). A text given as ``str`` is written as UTF-8.
    """
    items = list(items)
    parents = {path.parent for path, _ in items}
    if whole and len(parents) == 1:
        (directory,) = parents
        known = (listed or {}).get(directory)
        if not (known if known is not None else _names(directory)) and _write_new_directory(directory, items):
            return len(items)
    temps: list[tuple[str, Path]] = []
    directories: set[Path] = set()  # written to
    names = dict(listed or {})  # each directory's names: no stat for a file not there
    try:
        for path, text in items:
            parent = path.parent
            if parent not in directories:  # once a directory, not once a file
                parent.mkdir(parents=True, exist_ok=True)
                directories.add(parent)
                if parent not in names:
                    names[parent] = set(os.listdir(parent))
            exists = path.name in names[parent]
            temps.append((write_temp(path, _utf8(text), sync=False, parent_exists=True, exists=exists), path))
        if temps:
            sync_filesystems(directories)
        for temp, path in temps:
            os.replace(temp, path)
    except BaseException:
        for temp, _ in temps:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise
    for directory in directories:
        fsync_directory(directory)
    return len(temps)


def _names(directory: Path) -> set[str]:
    try:
        return set(os.listdir(directory))
    except FileNotFoundError:
        return set()


def _utf8(text: str | bytes) -> bytes:
    return text.encode("utf-8") if isinstance(text, str) else text


def _write_new_directory(directory: Path, items: list[tuple[Path, str | bytes]]) -> bool:
    """Write ``items``, all in ``directory``, which is missing or empty: into a new directory
    beside it, one ``syncfs``, then that directory renamed onto ``directory``. The files appear
    all at once, and each without a temp file and a rename of its own (a fifth of a first
    render's time). ``False``, with nothing left behind, where this cannot be done (no such
    directory may be made there, ``directory`` is a symlink or a mount point, or it is not
    empty any more): the caller writes the files one by one then."""
    try:
        found = os.lstat(directory)
        if not stat.S_ISDIR(found.st_mode):  # a symlink to a directory stays one
            return False
        mode: int | None = stat.S_IMODE(found.st_mode)
    except FileNotFoundError:
        mode = None
    except OSError:
        return False
    staging = directory.parent / f"{TEMP_PREFIX}{directory.name}.{_PID[0]}.{next(_TEMP_NUMBERS)}"
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(staging)
    except OSError:
        return False
    try:
        if mode is not None:
            os.chmod(staging, mode)
        for path, text in items:
            fd = os.open(staging / path.name, _TEMP_FLAGS, _NEW_FILE_MODE)
            try:
                write_all(fd, _utf8(text))
            finally:
                os.close(fd)
        sync_filesystems([staging])
        os.replace(staging, directory)  # onto a missing or an empty directory, atomically
    except BaseException as exc:
        import shutil  # not at import: it brings in bz2 and lzma

        shutil.rmtree(staging, ignore_errors=True)  # (gone already if a cleaner took it)
        if isinstance(exc, OSError):
            return False
        raise
    fsync_directory(directory.parent)
    return True


def remove(path: Path, *, durable: bool = True) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    if durable:
        fsync_directory(path.parent)
    return True


def clean_temp_files(directory: Path) -> None:
    """Remove the temp files a writer that is gone left behind (``leftovers``): they never
    replaced anything. A runner cleans at its start, while a command that takes no lock
    (``serve`` taking a webhook delivery, ``approve``) may be writing there."""
    for leftover in leftovers(directory):
        remove_leftover(leftover)


def leftovers(directory: Path) -> list[Path]:
    """The temp files in ``directory`` (``.tmp-NAME.PID.N``) and the new directories ``write_many``
    had not renamed into place yet whose writer is gone: a killed ``add``'s plan, a runner's
    results. One of a writer still alive (its pid in the name) is its, mid-write, and stays."""
    if not directory.is_dir():
        return []
    return sorted(found for found in directory.glob(TEMP_PREFIX + "*") if not _writer_alive(found))


def remove_leftover(leftover: Path) -> None:
    """A temp file or new directory ``leftovers`` found, removed."""
    if leftover.is_dir() and not leftover.is_symlink():
        _remove_staging(leftover)
        return
    with contextlib.suppress(OSError):
        leftover.unlink()


def _writer_alive(path: Path) -> bool:
    """Whether the process that named this temp file (``.tmp-NAME.PID.N``, or a staging
    directory being removed, ``....PID.N.gone``) is another live process: its pid alive, and
    given to that process before the file was last written (a pid the kernel gave a process
    started since, to within the second the boot's time is known to, is somebody else's)."""
    parts = path.name.removesuffix(".gone").rsplit(".", 2)
    if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):
        return False
    pid = int(parts[1])
    if pid == _PID[0] or pid <= 0 or not pid_alive(pid):
        return False  # (ours: none is mid-write while we clean)
    started = started_at(pid)
    try:
        written = path.lstat().st_mtime
    except OSError:
        return False
    return started is None or started <= written + 1.0


def _remove_staging(staging: Path) -> None:
    """Remove a new directory ``write_many`` left. It is renamed first, and removed only if that
    worked: a writer still at work (``render`` takes no lock) then cannot rename it into place
    while it is being emptied; it finds it gone and writes its files one by one instead."""
    import shutil  # not at import: it brings in bz2 and lzma

    doomed = staging.with_name(f"{staging.name}.{_PID[0]}.{next(_TEMP_NUMBERS)}.gone")
    try:
        os.rename(staging, doomed)
    except OSError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def iter_files(directory: Path, pattern: str) -> Iterator[Path]:
    if directory.is_dir():
        yield from sorted(p for p in directory.glob(pattern) if not p.name.startswith(TEMP_PREFIX))
