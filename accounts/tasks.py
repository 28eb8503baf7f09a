"""Celery tasks of the accounts app: they only send emails."""

import logging
import smtplib

from celery import shared_task

from .emails import invitation_email, verification_email
from .models import Company, Invitation
from .selectors import company_owner_emails

logger = logging.getLogger(__name__)

# Talking to SMTP can fail for a while; retry with backoff. Sending twice is
# harmless compared with not sending, so the retry is safe, and so is
# acknowledging late: a worker that dies while sending puts the task back
# (tests/faults/test_account_emails.py) instead of losing the email.
_SMTP_RETRY = {
    "acks_late": True,
    "autoretry_for": (smtplib.SMTPException, OSError),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "max_retries": 6,
}


@shared_task(name="accounts.send_verification_email", **_SMTP_RETRY)
def company_verification_email_task(company_id: int, decision: str, reason: str):
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return
    to = company_owner_emails(company=company)
    if not to:
        logger.warning("company %s has no active owner to email", company_id)
        return
    verification_email(company=company, decision=decision, reason=reason, to=to).send()


@shared_task(name="accounts.send_invitation_email", **_SMTP_RETRY)
def invitation_email_task(invitation_id: int, token: str):
    invitation = (
        Invitation.objects.select_related("company", "invited_by")
        .filter(pk=invitation_id, accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if invitation is None:
        return
    invitation_email(invitation=invitation, token=token).send()


@shared_task(name="accounts.send_password_reset_email", **_SMTP_RETRY)
def password_reset_email_task(email: str):
    """Send the reset link if ``email`` belongs to an active user.

    The view enqueues this for every address, so its response does not depend
    on whether the account exists.
    """
    from .forms import PortalPasswordResetForm

    form = PortalPasswordResetForm(data={"email": email})
    if form.is_valid():
        form.send_now()
