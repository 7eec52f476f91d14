"""Read messages from a file, an mbox or a Maildir one at a time (never the whole mailbox at once)."""
import os
import re
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
    """Yield each message of a Maildir (new/ then cur/), reading one file at a time."""
    subdirs = [os.path.join(path, name) for name in ("new", "cur")]
    if not any(os.path.isdir(d) for d in subdirs):
        raise NotAMailbox(f"{path} is a directory but not a Maildir (no new/ or cur/)")
    for subdir in subdirs:
        if not os.path.isdir(subdir):
            continue
        with os.scandir(subdir) as entries:
            for entry in entries:
                if entry.is_file() and not entry.name.startswith("."):
                    with open(entry.path, "rb") as handle:
                        yield handle.read()


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
