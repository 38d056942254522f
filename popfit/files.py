"""Files written atomically and read safely (the file half of `popfit.io`).

`atomic_write_text` writes to a temporary file in the same folder and
renames it over the destination, so a reader never sees a partial file and a
killed save leaves the old file intact; `read_regular_file` reads a bounded
number of bytes from a regular file only, without ever blocking. Both name
the path in every error. The policy for links, FIFOs and hard links is in
`atomic_write_text`'s docstring and the README's file-format section.
"""

import errno
import glob
import os
import secrets
import stat
import time

from .exceptions import FitFileError, PopfitTypeError, PopfitValueError

STALE_TMP_SECONDS = 3600.0
"""Temporary files of a save killed at least this long ago are removed by the next save."""
_TMP_INFIX = ".popfit-tmp-"
_TMP_RANDOM = 8  # hex digits in a temporary file's name


def _fail(source, msg):
    raise FitFileError(msg if source is None else f"{source}: {msg}")


def check_path(path):
    """``path`` as a non-empty str (a file name) without NUL bytes."""
    if isinstance(path, (str, bytes, os.PathLike)):
        path = os.fsdecode(os.fspath(path))
        if path and "\0" not in path:
            return path
        if path:
            raise PopfitValueError(f"path must be a file name without NUL bytes (got {path!r}); "
                                   "no file name can hold one: remove it")
    raise (PopfitValueError if path == "" else PopfitTypeError)(
        f"path must be a non-empty file name (str or os.PathLike) (got {path!r})")


def file_kind(mode):
    """What a non-regular file is, for messages."""
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return what
    return "not a regular file"


def check_destination(path):
    """The file ``save`` replaces for ``path`` (symbolic links resolved), or an error.

    Refused, before anything is written: a path naming a directory (ending in a
    separator, or an existing one), an existing non-regular file (FIFO, device,
    socket: a save would replace it with a regular file), and a symbolic link
    that another user made or whose target another user owns (a link planted
    in a shared folder would make the save replace that user's, or the
    system's, file).
    """
    seps = os.sep + (os.altsep or "")
    base = os.path.basename(path.rstrip(seps)) if path.rstrip(seps) else ""
    if path.endswith(tuple(seps)) or base in ("", ".", ".."):
        raise IsADirectoryError(
            errno.EISDIR, "this path names a directory (it ends in a separator, '.' or "
            "'..'); give a file name, e.g. " + repr(os.path.join(path, "fit.json")), path)
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(
            errno.EISDIR, "this path is a directory; give a file name inside it, e.g. "
            + repr(os.path.join(path, "fit.json")), path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise PopfitValueError(
            f"path {path!r} is {file_kind(st.st_mode)}, not a regular file; a save would "
            "replace it with a regular file, so popfit refuses: choose another file name "
            "or remove it first")
    if os.path.islink(path) and hasattr(os, "geteuid"):
        me = os.geteuid()
        link_owner = os.lstat(path).st_uid
        if st is not None:
            target_owner, what = st.st_uid, "its target"
        else:
            target_owner, what = os.stat(os.path.dirname(real)).st_uid, "its target's folder"
        for owner, whose in ((link_owner, "the link"), (target_owner, what)):
            if owner != me:
                raise PopfitValueError(
                    f"path {path!r} is a symbolic link to {real!r}, and {whose} belongs to "
                    f"another user (uid {owner}, you are uid {me}); popfit writes through a "
                    "link only when you own the link and its target, so that a link "
                    "planted in a shared folder cannot make it replace someone else's file: "
                    "save to the target's path itself if you mean to replace it, or remove "
                    "the link")
    return real


def _temp_pattern(folder, name):
    return os.path.join(glob.escape(folder), glob.escape(f".{name}{_TMP_INFIX}")
                        + "[0-9a-f]" * _TMP_RANDOM)


def atomic_write_text(path, text):
    """Write ``text`` (UTF-8) to the file ``path``, atomically.

    The text goes to a temporary file beside the destination, named
    ``.<name>.popfit-tmp-<8 hex digits>`` (safe to delete), which then replaces
    it with one rename: a reader sees the old file or the new one, never a mix.
    As editors do, a symbolic link at ``path`` is written through (its target is
    replaced, the link stays), but only if the current user owns both the link
    and its target (or, for a new target, its folder); an existing file keeps
    its permission bits (not its owner, nor its other hard links: they keep
    the old content); a new file gets the permissions ``open()`` would give it
    (0666 less the umask). Temporary files left by a save killed more than
    `STALE_TMP_SECONDS` ago are removed.

    Raises
    ------
    IsADirectoryError
        If ``path`` names a directory (an existing one, or a path ending in a
        separator); the message gives a file name to use instead.
    PopfitValueError
        If ``path`` holds a NUL byte, is an existing FIFO, device or socket
        (which the rename would replace by a regular file), or is a symbolic
        link that another user made or whose target another user owns.
    OSError
        As ``open()`` would, naming ``path`` (not the temporary file).
    """
    path = check_path(path)
    tmp = None
    try:
        real = check_destination(path)
        folder, name = os.path.split(real)
        try:
            mode = stat.S_IMODE(os.stat(real).st_mode)
        except FileNotFoundError:
            mode = None
        fd, tmp = _create_temporary(folder, name)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            if mode is not None:
                os.chmod(tmp, mode)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, real)
        tmp = None
    except OSError as err:
        if err.errno is None:
            raise
        raise type(err)(err.errno, err.strerror, path) from err
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    _remove_stale_temporaries(folder, name)


def _create_temporary(folder, name):
    """Create ``folder/.name.popfit-tmp-<hex>``; return its descriptor and path."""
    for _ in range(100):
        tmp = os.path.join(folder, f".{name}{_TMP_INFIX}{secrets.token_hex(_TMP_RANDOM // 2)}")
        try:  # the umask applies to 0o666, exactly as for open(path, "w")
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name beside it", name)


def _remove_stale_temporaries(folder, name):
    cutoff = time.time() - STALE_TMP_SECONDS
    for old in glob.glob(_temp_pattern(folder, name)):
        try:
            if os.stat(old).st_mtime < cutoff:
                os.unlink(old)
        except OSError:
            pass  # another save removed it, or it is not ours to remove


def read_regular_file(path, max_bytes):
    """Up to ``max_bytes + 1`` bytes of the regular file ``path``; never blocks.

    Anything that is not a regular file (a FIFO, a device, a directory) is
    refused before it is opened, and again on the open file, so a read can
    never wait for a writer; read errors name the path.
    """
    try:
        st = os.stat(path)
    except OSError as err:
        raise type(err)(err.errno, err.strerror, path) from None
    if not stat.S_ISREG(st.st_mode):
        _fail(path, f"is {file_kind(st.st_mode)}, not a regular file; a popfit fit is a JSON file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise type(err)(err.errno, err.strerror, path) from None
    try:
        with os.fdopen(fd, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):  # replaced since the stat above
                _fail(path, f"is {file_kind(mode)}, not a regular file; a popfit fit is a JSON file")
            return f.read(max_bytes + 1)
    except OSError as err:
        _fail(path, f"cannot read the file: {err.strerror or err} (errno {err.errno})")
