"""Building the accounts emails: HTML and text, in the recipient's language."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation


def absolute_url(path: str) -> str:
    return settings.HOTLINE_BASE_URL.rstrip("/") + path


def build_email(
    *, template: str, to: list[str], language: str, context: dict
) -> EmailMultiAlternatives:
    """Render ``accounts/email/<template>_{subject,body}.txt`` and ``.html``."""
    with translation.override(language):
        context = {"base_url": settings.HOTLINE_BASE_URL, **context}
        subject = render_to_string(
            f"accounts/email/{template}_subject.txt", context
        ).strip()
        subject = " ".join(subject.splitlines())
        text = render_to_string(f"accounts/email/{template}.txt", context)
        html = render_to_string(f"accounts/email/{template}.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=to)
    message.attach_alternative(html, "text/html")
    return message


def verification_email(*, company, decision: str, reason: str, to: list[str]):
    template = (
        "verification_approved"
        if decision == company.Verification.APPROVED
        else "verification_rejected"
    )
    return build_email(
        template=template,
        to=to,
        language=company.language,
        context={
            "company": company,
            "reason": reason,
            "portal_url": absolute_url(reverse("dashboard")),
            "upload_url": absolute_url(reverse("accounts:licence_upload")),
        },
    )


def invitation_email(*, invitation, token: str):
    return build_email(
        template="invitation",
        to=[invitation.email],
        language=invitation.company.language,
        context={
            "invitation": invitation,
            "company": invitation.company,
            "inviter": invitation.invited_by,
            "role": invitation.get_role_display,
            "accept_url": absolute_url(
                reverse("accounts:invitation_accept", kwargs={"token": token})
            ),
        },
    )
