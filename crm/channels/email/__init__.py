"""The email channel: parse what arrived, thread it, recognise automatic mail, send what goes out.

parse (raw message → ParsedEmail) → automatic (auto-replies, bounces, loops) → ingest (store first,
then process in batches) → threads (which conversation a message continues) and routing (where a new
enquiry goes); outbound stores and queues what we send, delivery sends it over SMTP. Only the names
code outside the package uses are re-exported here.
"""
from .delivery import deliver, requeue_stalled, retry_send
from .ingest import (
    ATTACHMENT_URL, Arrival, IngestResult, dedupe_key, receive, receive_many, reprocess, sweep_unprocessed,
)
from .outbound import deliverable_address, queue_email, send_to_customer, subject_for
from .parse import parse_email, safe_filename
from .text import sanitise_html, trim_reply
from .routing import CHANNEL, email_queue_for, route_email
from .threads import new_conversation
from .transport import plain_message, send_mail

__all__ = [
    "ATTACHMENT_URL", "CHANNEL", "Arrival", "IngestResult", "dedupe_key", "deliver", "deliverable_address",
    "email_queue_for", "new_conversation", "parse_email", "queue_email", "receive", "receive_many",
    "reprocess", "requeue_stalled", "retry_send", "route_email",
    "safe_filename", "sanitise_html", "plain_message", "send_mail", "send_to_customer", "subject_for", "sweep_unprocessed",
    "trim_reply",
]
