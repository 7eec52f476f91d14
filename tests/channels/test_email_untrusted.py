"""What a sender writes cannot change who the mail is from, point the console at our pages, or name a file badly."""
import base64

from sqlalchemy import select

from crm.channels import email as channel
from crm.channels.email import parse_email, safe_filename, sanitise_html
from crm.extensions import db
from crm.models import Attachment, Conversation, InboundEmail


def message(from_header: str, body: str = "body") -> bytes:
    return (f"From: {from_header}\r\nTo: contact@council.example\r\nSubject: Bins\r\n"
            f"Message-ID: <untrusted-{abs(hash(from_header))}@example.org>\r\n\r\n{body}\r\n").encode()


def encoded(text: bytes) -> str:
    return f"=?utf-8?b?{base64.b64encode(text).decode()}?="


def test_an_encoded_display_name_holding_a_line_break_and_an_address_does_not_change_the_sender():
    parsed = parse_email(message(f"{encoded(b'Jane' + bytes([13, 10]) + b'<evil@attacker.org>')} <jane@example.org>"))
    assert parsed.from_address == "jane@example.org"
    assert "\n" not in parsed.from_name and "\r" not in parsed.from_name


def test_an_encoded_name_alone_is_no_sender_at_all(services):
    result = channel.receive(message(encoded(b"Jane <evil@attacker.org>")), source="smtp")
    assert result.status == "quarantined" and "sender" in result.reason
    assert db.session.scalar(select(InboundEmail.from_address)) is None


def test_an_encoded_name_that_looks_like_an_address_list_keeps_the_real_address():
    parsed = parse_email(message(f"{encoded(b'evil@attacker.org, ')} <jane@example.org>"))
    assert parsed.from_address == "jane@example.org"


def test_email_html_may_point_only_at_files_of_the_same_message():
    html = sanitise_html(
        '<img src="/email/attachments/7"><img src="/email/attachments/../../cases/CAS-000001/close">'
        '<img src="/email/attachments/8"><a href="/admin/users">admin</a><a href="//evil.example/x">x</a>'
        '<a href="https://www.gov.uk/">gov</a><img src="cid:logo">',
        {"logo": "/email/attachments/9"}, ["/email/attachments/7", "/email/attachments/9"])
    assert 'src="/email/attachments/7"' in html and 'src="/email/attachments/9"' in html
    assert "../" not in html and "/email/attachments/8" not in html  # a path out, another message's file
    assert "/admin/users" not in html and "evil.example" not in html
    assert 'href="https://www.gov.uk/"' in html


def test_stored_html_references_only_its_own_attachments(services):
    raw = (b"From: Jane <jane@example.org>\r\nTo: contact@council.example\r\nSubject: Photo\r\n"
           b"Message-ID: <html-own@example.org>\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/related; boundary="b"\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n'
           b'<p>See <img src="cid:pic"> and <img src="/email/attachments/999"></p>\r\n--b\r\n'
           b"Content-Type: image/png\r\nContent-ID: <pic>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           b"iVBORw0KGgo=\r\n--b--\r\n")
    result = channel.receive(raw, source="smtp")
    conversation = db.session.get(Conversation, result.conversation_id)
    stored = [m for m in conversation.messages if m.direction == "inbound"][0]
    own = db.session.scalar(select(Attachment.id).where(Attachment.message_id == stored.id))
    assert f'src="/email/attachments/{own}"' in stored.html
    assert "/email/attachments/999" not in stored.html  # another message's file


def test_attachment_filenames_are_one_safe_line():
    assert safe_filename("evil\r\nContent-Type: text/html.pdf") == "evil_Content-Type: text_html.pdf"
    assert safe_filename("invoice\u202efdp.exe") == "invoice_fdp.exe"
    assert safe_filename("../../etc/passwd") == "etc_passwd"
    assert safe_filename("..", "attachment-2") == "attachment-2"


def test_an_encoded_attachment_name_with_a_line_break_is_stored_safely(services):
    name = encoded(b"report\r\nX-Injected: yes.pdf")
    raw = ("From: Jane <jane@example.org>\r\nTo: contact@council.example\r\nSubject: Report\r\n"
           "Message-ID: <name-crlf@example.org>\r\nMIME-Version: 1.0\r\n"
           'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n'
           f'--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="{name}"\r\n'
           "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n").encode()
    channel.receive(raw, source="smtp")
    filename = db.session.scalar(select(Attachment.filename))
    assert filename == "report_X-Injected: yes.pdf"
