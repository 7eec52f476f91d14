"""Subject access export: everything held about one person, as a ZIP written in a stream.

The ZIP holds `data.json` (machine-readable), `index.html` (a readable bundle), the attachments and
raw emails as files, and `manifest.json` (what is in it, with sizes and SHA-256). Rows are read in
batches with Core selects, so neither the session nor the process grows with the history.
"""
import hashlib
import html
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Callable, Optional

from sqlalchemy import String, and_, cast, false, or_, select

from ..audit import audit
from ..errors import ValidationFailed
from ..extensions import db
from ..models import (
    Address, Attachment, AuditLog, Case, CaseEvent, ChatSession, Contact, Conversation, Customer,
    CustomerIdentity, ErasureTombstone, InboundEmail, LegalHold, Message, Open311Request, OutboundEmail,
    ResidentAccount, utcnow,
)
from .family import case_ids, conversation_ids, customer_family, identity_ids, live_customer_for, message_ids

BATCH = 500
MASK = "[redacted]"
# Secrets and internals that are not the person's data: handles, hashes, session stamps.
OMITTED = {"token", "password_hash", "session_stamp", "data", "raw", "dedupe_key"}


@dataclass
class Redaction:
    """What the officer takes out before release: items by kind and id, third-party text, internal notes."""

    exclude: set = field(default_factory=set)  # {"messages:12", "contacts:7"}
    mask: list = field(default_factory=list)  # words or names replaced by [redacted] everywhere
    drop_internal: bool = False

    @classmethod
    def parse(cls, exclude=(), mask=(), drop_internal=False) -> "Redaction":
        """Build from form, API or command-line values, refusing malformed item names."""
        items = set()
        for item in exclude or ():
            item = str(item).strip()
            if not item:
                continue
            kind, _, ident = item.partition(":")
            if kind not in SECTION_KINDS or not ident.isdigit():
                raise ValidationFailed("Exclude items as kind:id", {"exclude": [f"{item!r} is not kind:id"]})
            items.add(f"{kind}:{int(ident)}")
        words = [str(w).strip() for w in (mask or ()) if str(w).strip()]
        if any(len(w) < 2 for w in words):
            raise ValidationFailed("Mask words of at least two characters", {"mask": ["too short"]})
        return cls(items, words, bool(drop_internal))

    def summary(self) -> dict:
        """Describe the redaction for the audit trail without repeating the masked text."""
        return {"excluded": sorted(self.exclude), "masked_terms": len(self.mask), "internal_dropped": self.drop_internal}

    def pattern(self):
        if not self.mask:
            return None
        return re.compile("|".join(re.escape(w) for w in sorted(self.mask, key=len, reverse=True)), re.IGNORECASE)


def _sections(ids: list[int]):
    """Return (kind, table, where, internal) for every kind of record held about the family."""
    cases, conversations = case_ids(ids), conversation_ids(ids)
    str_ids = [str(i) for i in ids]
    about = or_(
        and_(AuditLog.target_type == "customer", AuditLog.target_id.in_(str_ids)),
        and_(AuditLog.target_type == "case", AuditLog.target_id.in_(select(cast(Case.id, String)).where(Case.customer_id.in_(ids)))),
        and_(AuditLog.target_type == "conversation",
             AuditLog.target_id.in_(select(cast(Conversation.id, String)).where(Conversation.customer_id.in_(ids)))),
    )
    return [
        ("customers", Customer, Customer.id.in_(ids), lambda r: ["vulnerability_notes"] if r.get("vulnerability_notes") else []),
        ("identities", CustomerIdentity, CustomerIdentity.customer_id.in_(ids), None),
        ("addresses", Address, Address.customer_id.in_(ids), None),
        ("resident_accounts", ResidentAccount, ResidentAccount.identity_id.in_(identity_ids(ids)), None),
        ("contacts", Contact, Contact.customer_id.in_(ids), lambda r: ["notes"] if r.get("notes") else []),
        ("conversations", Conversation, Conversation.customer_id.in_(ids), None),
        ("messages", Message, Message.conversation_id.in_(conversations), lambda r: ["body"] if r.get("internal") else []),
        ("webchat_sessions", ChatSession, ChatSession.conversation_id.in_(conversations), None),
        ("attachments", Attachment, or_(Attachment.message_id.in_(message_ids(ids)), Attachment.case_id.in_(cases)), None),
        ("inbound_emails", InboundEmail, or_(InboundEmail.customer_id.in_(ids), InboundEmail.conversation_id.in_(conversations)), None),
        ("outbound_emails", OutboundEmail, OutboundEmail.conversation_id.in_(conversations), None),
        ("cases", Case, Case.customer_id.in_(ids), None),
        ("case_events", CaseEvent, CaseEvent.case_id.in_(cases),
         lambda r: ["body"] if r.get("kind") == "note" and not r.get("public") else []),
        ("open311_requests", Open311Request, Open311Request.case_id.in_(cases), None),
        ("legal_holds", LegalHold, or_(LegalHold.customer_id.in_(ids), LegalHold.case_id.in_(cases)), None),
        ("erasure_tombstones", ErasureTombstone, ErasureTombstone.customer_id.in_(ids), None),
        ("audit_entries", AuditLog, about if ids else false(), None),
    ]


SECTION_KINDS = ("customers", "identities", "addresses", "resident_accounts", "contacts", "conversations", "messages",
                 "webchat_sessions", "attachments", "inbound_emails", "outbound_emails", "cases", "case_events",
                 "open311_requests", "legal_holds", "erasure_tombstones", "audit_entries")


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, memoryview)):
        return f"<{len(value)} bytes>"
    return value


def _rows(kind, model, where, flagger, redaction: Redaction, pattern):
    """Yield the section's rows as JSON-ready dicts, redacted, in batches of BATCH."""
    table = model.__table__
    columns = [c for c in table.c if c.name not in OMITTED]
    order = list(table.primary_key.columns)
    stmt = select(*columns).where(where).order_by(*order).execution_options(yield_per=BATCH)
    for row in db.session.execute(stmt):
        data = {k: _plain(v) for k, v in row._mapping.items()}
        key = data.get("id", data.get("conversation_id"))
        if f"{kind}:{key}" in redaction.exclude:
            continue
        internal = flagger(data) if flagger else []
        if internal:
            if redaction.drop_internal:
                continue
            data["internal_fields"] = internal
        if pattern is not None:
            data = {k: pattern.sub(MASK, v) if isinstance(v, str) else
                    (json.loads(pattern.sub(MASK, json.dumps(v))) if isinstance(v, (dict, list)) else v)
                    for k, v in data.items()}
        yield data


class _HashingWriter:
    """Write text into a ZIP member, keeping its size and SHA-256 for the manifest."""

    def __init__(self, raw):
        self.raw, self.sha, self.size = raw, hashlib.sha256(), 0

    def write(self, text: str):
        data = text.encode("utf-8")
        self.sha.update(data)
        self.size += len(data)
        self.raw.write(data)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name or "file")[:100] or "file"


def write_subject_access(customer_id: int, out, actor, request_reference: Optional[str] = None,
                         redaction: Optional[Redaction] = None,
                         progress: Optional[Callable[[str, int], None]] = None) -> dict:
    """Write the export ZIP of a customer (and every record merged into it) to `out`; audited, not committed."""
    redaction = redaction or Redaction()
    pattern = redaction.pattern()
    main = live_customer_for(customer_id)
    ids = customer_family(main.id)
    sections = _sections(ids)
    items, files = {}, []
    generated_at = utcnow()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        with archive.open("data.json", "w", force_zip64=True) as raw:
            writer = _HashingWriter(raw)
            writer.write(json.dumps({"format": "crm-subject-access/1", "customer_id": main.id,
                                     "generated_at": generated_at.isoformat(),
                                     "request_reference": request_reference})[:-1] + ', "sections": {')
            for n, (kind, model, where, flagger) in enumerate(sections):
                writer.write(("," if n else "") + f"\n{json.dumps(kind)}: [")
                count = 0
                for data in _rows(kind, model, where, flagger, redaction, pattern):
                    writer.write(("," if count else "") + "\n" + json.dumps(data, ensure_ascii=False, default=str))
                    count += 1
                    if progress and count % 1000 == 0:
                        progress(kind, count)
                writer.write("]")
                items[kind] = count
                if progress:
                    progress(kind, count)
            writer.write("\n}}\n")
        files.append({"name": "data.json", "size": writer.size, "sha256": writer.sha.hexdigest()})
        with archive.open("index.html", "w", force_zip64=True) as raw:
            writer = _HashingWriter(raw)
            _write_html(writer, main, sections, redaction, pattern, items, generated_at, request_reference)
        files.append({"name": "index.html", "size": writer.size, "sha256": writer.sha.hexdigest()})
        files.extend(_write_files(archive, ids, redaction, progress))
        manifest = {"customer_id": main.id, "merged_customer_ids": ids[1:], "generated_at": generated_at.isoformat(),
                    "generated_by": getattr(actor, "email", None), "request_reference": request_reference,
                    "items": items, "redaction": redaction.summary(), "files": files,
                    "notes": "Entries with internal_fields are staff-written (internal notes): review before release."}
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
    audit(actor, "records.subject_access", "customer", main.id, request_reference=request_reference,
          items=items, files=len(files), redaction=redaction.summary())
    return {"customer_id": main.id, "items": items, "files": len(files)}


def _write_files(archive, ids, redaction: Redaction, progress) -> list[dict]:
    """Copy every attachment and raw email into the ZIP, one row in memory at a time."""
    written = []
    where = or_(Attachment.message_id.in_(message_ids(ids)), Attachment.case_id.in_(case_ids(ids)))
    meta = db.session.execute(select(Attachment.id, Attachment.filename).where(where).order_by(Attachment.id)).all()
    for ident, filename in meta:
        if f"attachments:{ident}" in redaction.exclude:
            continue
        data = db.session.execute(select(Attachment.data).where(Attachment.id == ident)).scalar_one()
        name = f"attachments/{ident}-{_safe_name(filename)}"
        archive.writestr(name, data)
        written.append({"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    where = or_(InboundEmail.customer_id.in_(ids), InboundEmail.conversation_id.in_(conversation_ids(ids)))
    for (ident,) in db.session.execute(select(InboundEmail.id).where(where).order_by(InboundEmail.id)).all():
        if f"inbound_emails:{ident}" in redaction.exclude:
            continue
        data = db.session.execute(select(InboundEmail.raw).where(InboundEmail.id == ident)).scalar_one()
        if not data:
            continue  # raw bytes already removed under the retention schedule
        name = f"emails/{ident}.eml"
        archive.writestr(name, data)
        written.append({"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    if progress:
        progress("files", len(written))
    return written


TITLES = {"customers": "Customer records", "identities": "Email addresses, phone numbers and other identities",
          "addresses": "Addresses", "resident_accounts": "Online account", "contacts": "Contacts on every channel",
          "conversations": "Email and webchat conversations", "messages": "Messages",
          "webchat_sessions": "Webchat sessions and ratings", "attachments": "Attachments",
          "inbound_emails": "Emails received", "outbound_emails": "Emails sent", "cases": "Cases",
          "case_events": "Case history (updates and internal notes)", "open311_requests": "Reports from apps (Open311)",
          "legal_holds": "Legal holds", "erasure_tombstones": "Erasures", "audit_entries": "Audit entries about this person"}


def _write_html(writer, main, sections, redaction, pattern, items, generated_at, request_reference):
    """Write the readable bundle: one table per kind of record, internal notes marked."""
    e = html.escape
    writer.write("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Subject access export</title>"
                 "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;font-size:90%}"
                 "td,th{border:1px solid #999;padding:.2em .4em;vertical-align:top;text-align:left}"
                 ".internal{background:#fff3cd}</style></head><body>")
    writer.write(f"<h1>Information held about customer {main.id}</h1><p>Generated {e(generated_at.isoformat())}"
                 f"{' for request ' + e(request_reference) if request_reference else ''}. Rows shaded and marked "
                 "INTERNAL are staff notes: review them before release.</p><ul>")
    for kind, *_ in sections:
        writer.write(f"<li><a href=\"#{kind}\">{e(TITLES[kind])}</a>: {items.get(kind, 0)}</li>")
    writer.write("</ul>")
    for kind, model, where, flagger in sections:
        writer.write(f"<h2 id=\"{kind}\">{e(TITLES[kind])}</h2>")
        header = None
        for data in _rows(kind, model, where, flagger, redaction, pattern):
            if header is None:
                header = [k for k in data if k != "internal_fields"]
                writer.write("<table><thead><tr><th></th>" + "".join(f"<th>{e(k)}</th>" for k in header) + "</tr></thead><tbody>")
            internal = data.get("internal_fields")
            cells = "".join(f"<td>{e('' if data.get(k) is None else str(data.get(k)))}</td>" for k in header)
            marker = ' class="internal"><td>INTERNAL</td>' if internal else "><td></td>"
            writer.write(f"<tr{marker}{cells}</tr>")
        writer.write("</tbody></table>" if header else "<p>None held.</p>")
    writer.write("</body></html>\n")
