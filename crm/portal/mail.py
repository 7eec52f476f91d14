"""Mail for resident accounts: one-time sign-in links, sent straight by the mail transport.

They do not go through the email channel's send_to_customer on purpose: that keeps the
message on the customer's timeline, where staff would read a link that signs in as the resident.
"""
from ..channels.email.transport import plain_message, send_mail
from ..jobs import job


@job(retries=3, retry_delay=30)
def send_account_mail(to: str, subject: str, body: str) -> None:
    """Send one account email (retried when the relay is down)."""
    send_mail(plain_message(to, subject, body))


def sign_in_link_body(name: str, url: str, already_registered: bool = False) -> str:
    """Return the text of a sign-in link email."""
    opening = ("Someone (we hope you) asked to create an account with this email address, but you "
               "already have one." if already_registered else "Use this link to sign in to your council account.")
    return "\n".join([
        f"Dear {name},", "", opening, "", url, "",
        "The link works once, within an hour. If you did not ask for it, you can ignore this email:",
        "nobody can sign in without the link.",
    ])


def send_sign_in_link(account, url: str, already_registered: bool = False) -> None:
    """Owe the sign-in link email in this transaction: the outbox sends it after the commit, retried."""
    from ..outbox import enqueue_after_commit  # noqa: PLC0415

    enqueue_after_commit(send_account_mail, account.email, "Your sign-in link",
                         sign_in_link_body(account.name, url, already_registered))
