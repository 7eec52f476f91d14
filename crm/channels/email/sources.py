"""Read messages from a file, an mbox or a Maildir one at a time (never the whole mailbox at once)."""
import os
import re
from email.utils import parsedate_to_datetime
from typing import Iterator

_ESCAPED_FROM = re.compile(rb"^>+From ")


class NotAMailbox(Exception):
    """The path is neither a message file, an mbox nor a Maildir."""


def iter_messages(path: str) -> Iterator[bytes]:
    """Yield the raw bytes of each message at path: a single message, an mbox or a Maildir."""
    if os.path.isdir(path):
        yield from iter_maildir(path)
        return
    with open(path, "rb") as handle:
        start = handle.read(5)
    if start == b"From ":
        yield from iter_mbox(path)
    else:
        with open(path, "rb") as handle:
            yield handle.read()


def iter_maildir(path: str) -> Iterator[bytes]:
    """Yield each message of a Maildir (new/ and cur/) in delivery order, reading one file at a time.

    Delivery order is the timestamp that starts each file name (the Maildir convention), then
    the Date header for files delivered in the same second, then the name: the directory's own
    order is whatever the filesystem keeps. Only the names (and, for ties, the headers) are held.
    """
    subdirs = [os.path.join(path, name) for name in ("new", "cur")]
    if not any(os.path.isdir(d) for d in subdirs):
        raise NotAMailbox(f"{path} is a directory but not a Maildir (no new/ or cur/)")
    files = []
    for subdir in subdirs:
        if not os.path.isdir(subdir):
            continue
        with os.scandir(subdir) as entries:
            files.extend((_delivered_at(entry.name), entry.name, entry.path) for entry in entries
                         if entry.is_file() and not entry.name.startswith("."))
    for _, _, file_path in _maildir_order(files):
        with open(file_path, "rb") as handle:
            yield handle.read()


def _maildir_order(files: list) -> list:
    """Sort (timestamp, name, path) by timestamp, then Date header within a second, then name."""
    files.sort(key=lambda item: (item[0], item[1]))
    ordered, start = [], 0
    while start < len(files):
        end = start
        while end + 1 < len(files) and files[end + 1][0] == files[start][0]:
            end += 1
        group = files[start:end + 1]
        if len(group) > 1:
            group.sort(key=lambda item: (_date_header(item[2]), item[1]))
        ordered.extend(group)
        start = end + 1
    return ordered


_NAME_TIME = re.compile(r"^(\d+)(?:\.(\d+))?")
_UNDATED = float("inf")


def _delivered_at(name: str) -> float:
    """Return the delivery time a Maildir file name starts with (unknown ones sort last)."""
    match = _NAME_TIME.match(name)
    return float(match.group(1)) if match else _UNDATED


def _date_header(file_path: str) -> float:
    """Return the Date header of a message file as a timestamp (undated ones last)."""
    with open(file_path, "rb") as handle:
        head = handle.read(64 * 1024)
    end = head.find(b"\n\n")
    match = re.search(rb"^date:[ \t]*(.*(?:\r?\n[ \t].*)*)", head[: end if end >= 0 else len(head)],
                      re.IGNORECASE | re.MULTILINE)
    if not match:
        return _UNDATED
    try:
        date = parsedate_to_datetime(match.group(1).decode("latin-1").replace("\r", "").replace("\n", " ").strip())
    except (TypeError, ValueError, IndexError):
        return _UNDATED
    return date.timestamp() if date.tzinfo is not None else _UNDATED


def iter_mbox(path: str) -> Iterator[bytes]:
    """Yield each message of an mbox, streaming line by line (mboxrd ">From " unescaped)."""
    lines: list = []
    previous_blank = True
    with open(path, "rb") as handle:
        for line in handle:
            if line.startswith(b"From ") and previous_blank:
                if lines:
                    yield _finish(lines)
                lines = []
                previous_blank = False
                continue
            if _ESCAPED_FROM.match(line):
                line = line[1:]
            lines.append(line)
            previous_blank = line in (b"\n", b"\r\n")
    if lines:
        yield _finish(lines)


def _finish(lines: list) -> bytes:
    # The blank line before the next "From " separator belongs to the mbox, not the message.
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(lines)
