"""Build raw RFC 5322 messages for tests."""
import itertools

_counter = itertools.count(1)


def raw_email(*, sender="Jane Resident <jane@example.org>", to="contact@council.example", subject="Pothole",
              body="There is a pothole on Main Street.", message_id=None, in_reply_to=None,
              references=None, headers=None, date="Tue, 24 Nov 2026 10:00:00 +0000") -> bytes:
    """Return a simple plain-text message as bytes (CRLF line ends, as on the wire)."""
    message_id = message_id or f"test-{next(_counter)}@example.org"
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Message-ID: <{message_id}>",
             f"Date: {date}", "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
    if in_reply_to:
        lines.append(f"In-Reply-To: <{in_reply_to}>")
    if references:
        lines.append("References: " + " ".join(f"<{r}>" for r in references))
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n") + "\r\n").encode("utf-8")
