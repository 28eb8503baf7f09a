"""Reads for the accounts pages. Tenant reads take the company and filter on it."""

from django.shortcuts import get_object_or_404

from .models import Agent, BusinessLicence, Company, Invitation, User


def signup_agents():
    return Agent.objects.order_by("name")


def company_users(*, company: Company):
    return User.objects.filter(company=company).order_by("-is_active", "role", "email")


def company_user_get(*, company: Company, pk: int) -> User:
    """A user of ``company``; any other id is a 404."""
    return get_object_or_404(User, company=company, pk=pk)


def company_invitations(*, company: Company, now):
    """Invitations still waiting for an answer, newest first."""
    return Invitation.objects.filter(
        company=company,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=now,
    ).select_related("invited_by")


def company_invitation_get(*, company: Company, pk: int) -> Invitation:
    return get_object_or_404(Invitation, company=company, pk=pk)


def company_licences(*, company: Company):
    return BusinessLicence.objects.filter(company=company).order_by("-uploaded_at")


def company_latest_licence(*, company: Company) -> BusinessLicence | None:
    return company_licences(company=company).first()


def company_owner_emails(*, company: Company) -> list[str]:
    return list(
        User.objects.filter(
            company=company, role=User.Role.OWNER, is_active=True
        ).values_list("email", flat=True)
    )
