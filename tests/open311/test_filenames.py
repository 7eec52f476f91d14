"""Stored file names are safe everywhere: a CR/LF or bidi name from Open311 cannot break or spoof the download."""
from sqlalchemy import update

from crm.models import Attachment
from crm.security import clean_filename, content_disposition
from tests.open311.test_open311 import PNG, setup  # noqa: F401  (the fixture)

BOUNDARY = "crmtestboundary"


def _multipart(fields: dict, file_header: str, data: bytes) -> bytes:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f"--{BOUNDARY}\r\n{file_header}\r\nContent-Type: image/png\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def test_an_open311_upload_named_with_crlf_is_stored_clean_and_downloads(client, setup, db, auth):  # noqa: F811
    header = ("Content-Disposition: form-data; name=\"media\"; "
              "filename*=UTF-8''evil%0D%0ASet-Cookie%3A%20x%3D1%0A%E2%80%AEgnp.exe.png")
    body = _multipart({"api_key": setup["key"], "service_code": "pothole", "lat": "54.6", "long": "-3.1",
                       "attribute[size]": "Small", "email": "someone@example.org"}, header, PNG)
    response = client.post("/open311/v2/requests.json", data=body,
                           content_type=f"multipart/form-data; boundary={BOUNDARY}")
    assert response.status_code == 200, response.data
    stored = db.session.query(Attachment).one()
    assert "\r" not in stored.filename and "\n" not in stored.filename and "\u202e" not in stored.filename
    auth.login(setup["officer"])
    download = client.get(f"/email/attachments/{stored.id}?download=1")
    assert download.status_code == 200
    assert "Set-Cookie" not in download.headers or "x=1" not in download.headers["Set-Cookie"]
    assert download.headers["Content-Disposition"].startswith("attachment; filename=")


def test_a_row_stored_before_names_were_cleaned_still_downloads(client, setup, db, auth):  # noqa: F811
    header = 'Content-Disposition: form-data; name="media"; filename="plain.png"'
    body = _multipart({"api_key": setup["key"], "service_code": "pothole", "lat": "54.6", "long": "-3.1",
                       "attribute[size]": "Small", "email": "someone@example.org"}, header, PNG)
    assert client.post("/open311/v2/requests.json", data=body,
                       content_type=f"multipart/form-data; boundary={BOUNDARY}").status_code == 200
    raw = "old\r\nrow \u0444\u043e\u0442\u043e \"quoted\".png"
    item = db.session.query(Attachment).one()
    db.session.execute(update(Attachment).where(Attachment.id == item.id).values(filename=raw))
    db.session.commit()
    auth.login(setup["officer"])
    download = client.get(f"/email/attachments/{item.id}?download=1")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == content_disposition("attachment", raw)
    assert "\r" not in download.headers["Content-Disposition"]


def test_clean_filename_keeps_the_name_and_drops_what_is_dangerous():
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("C:\\Users\\me\\photo.jpg") == "photo.jpg"
    assert clean_filename("a\r\nb.jpg") == "a b.jpg"
    assert clean_filename("\u202egnp.exe") == "gnp.exe"
    assert clean_filename("") == "attachment"
    long = clean_filename("x" * 300 + ".jpeg")
    assert len(long) == 200 and long.endswith(".jpeg")
