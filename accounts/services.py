"""Writes for agents, companies, users, licences and invitations.

Every function is atomic; emails leave through Celery tasks enqueued with
``transaction.on_commit``, so nothing is sent for a write that rolls back.
"""

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import audit_record, snapshot
from ops.enqueue import enqueue_on_commit

from .models import Agent, BusinessLicence, Company, Invitation, User
from .validators import normalize_cn_phone, normalize_uscc, validate_licence_file

logger = logging.getLogger(__name__)


# --- sign-up and verification ---------------------------------------------------


@dataclass(frozen=True)
class CompanyDetails:
    name: str
    uscc: str
    address: str
    billing_email: str
    contact_phone: str
    language: str = "zh-hans"


def _licence_store(*, company: Company, uploaded, by: User | None) -> BusinessLicence:
    """Save a checked licence file and its row.

    Callers run this last in their transaction and delete ``licence.file``
    themselves if that transaction fails (Django has no on-rollback hook).
    """
    content_type = validate_licence_file(
        uploaded, max_bytes=settings.HOTLINE_LICENCE_MAX_BYTES
    )
    licence = BusinessLicence(
        company=company,
        original_name=(uploaded.name or "licence")[-255:],
        content_type=content_type,
        size=uploaded.size,
        uploaded_by=by,
    )
    licence.file.save("upload", uploaded, save=False)
    try:
        licence.save()
    except Exception:
        licence.file.storage.delete(licence.file.name)
        raise
    return licence


class _StoredFiles:
    """Remove the files saved in a block if the block raises."""

    def __init__(self):
        self.licences: list[BusinessLicence] = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            for licence in self.licences:
                licence.file.storage.delete(licence.file.name)
        return False


def company_register(
    *,
    agent: Agent,
    details: CompanyDetails,
    owner_email: str,
    owner_name: str,
    owner_password: str,
    licence_file,
) -> User:
    """Create a company awaiting verification, its first owner and its licence.

    All or nothing: a bad licence (type by content, size), a taken USCC or
    email raise ValidationError and leave no row and no file behind.
    """
    validate_licence_file(licence_file, max_bytes=settings.HOTLINE_LICENCE_MAX_BYTES)
    email = User.objects.normalize_email(owner_email).strip().lower()
    with _StoredFiles() as stored, transaction.atomic():
        company = Company(
            agent=agent,
            name=details.name.strip(),
            uscc=normalize_uscc(details.uscc),
            address=details.address.strip(),
            billing_email=details.billing_email.strip().lower(),
            contact_phone=normalize_cn_phone(details.contact_phone),
            language=details.language,
            verification_status=Company.Verification.PENDING,
        )
        company.full_clean()
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError(
                {"owner_email": _("An account with this email address already exists.")}
            )
        try:
            with transaction.atomic():
                company.save()
                owner = User.objects.create_user(
                    email,
                    owner_password,
                    full_name=owner_name.strip(),
                    company=company,
                    role=User.Role.OWNER,
                    language=details.language,
                )
        except IntegrityError:
            # Lost a race with a concurrent sign-up of the same code or email.
            raise ValidationError(
                _("This company or email address was registered a moment ago.")
            ) from None
        stored.licences.append(
            _licence_store(company=company, uploaded=licence_file, by=owner)
        )
    logger.info("company %s registered with agent %s", company.pk, agent.pk)
    return owner


def licence_replace(*, company: Company, uploaded, by: User) -> BusinessLicence:
    """A new licence after a rejection (or while pending): back to the queue."""
    if company.is_verified:
        raise ValidationError(_("This company is already verified."))
    with _StoredFiles() as stored, transaction.atomic():
        company = Company.objects.select_for_update().get(pk=company.pk)
        licence = _licence_store(company=company, uploaded=uploaded, by=by)
        stored.licences.append(licence)
        company.verification_status = Company.Verification.PENDING
        company.verification_reason = ""
        company.verified_at = None
        company.verified_by = None
        company.save(
            update_fields=[
                "verification_status",
                "verification_reason",
                "verified_at",
                "verified_by",
            ]
        )
    return licence


def _check_agent_staff(*, company: Company, by: User) -> None:
    if by.is_superuser:
        return
    if not (by.is_active and by.is_agent_staff and by.agent_id == company.agent_id):
        raise PermissionDenied


VERIFICATION_FIELDS = [
    "verification_status",
    "verification_reason",
    "verified_at",
    "verified_by",
]


def _decide(*, company: Company, by: User, status: str, reason: str) -> Company:
    from .tasks import company_verification_email_task

    _check_agent_staff(company=company, by=by)
    with transaction.atomic():
        company = Company.objects.select_for_update().get(pk=company.pk)
        before = snapshot(company, VERIFICATION_FIELDS)
        company.verification_status = status
        company.verification_reason = reason
        company.verified_at = timezone.now()
        company.verified_by = by
        company.save(update_fields=VERIFICATION_FIELDS)
        audit_record(
            actor=by,
            action=f"company.verification.{status}",
            target=company,
            before=before,
            after=snapshot(company, VERIFICATION_FIELDS),
        )
        company_id = company.pk
        # Broker down: recorded for the sweeper (ops.enqueue), never a 500.
        enqueue_on_commit(company_verification_email_task, company_id, status, reason)
    return company


def company_approve(*, company: Company, by: User) -> Company:
    """Approve a company's real-name verification and email its owners."""
    return _decide(
        company=company, by=by, status=Company.Verification.APPROVED, reason=""
    )


def company_reject(*, company: Company, by: User, reason: str) -> Company:
    """Reject a company's verification with a reason and email its owners."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("Give the reason for the rejection."), code="reason")
    return _decide(
        company=company, by=by, status=Company.Verification.REJECTED, reason=reason
    )


# --- company settings -----------------------------------------------------------

#: What an owner may change; the name and USCC only before verification.
COMPANY_EDITABLE = ("address", "billing_email", "contact_phone", "language")
COMPANY_EDITABLE_UNVERIFIED = ("name", "uscc")


def _require_owner(*, company: Company | None, by: User) -> None:
    if company is None or not (
        by.is_active and by.company_id == company.pk and by.is_owner
    ):
        raise PermissionDenied


def company_update(*, company: Company, by: User, **changes) -> Company:
    """Change a company's details as its owner."""
    _require_owner(company=company, by=by)
    with transaction.atomic():
        company = Company.objects.select_for_update().get(pk=company.pk)
        allowed = set(COMPANY_EDITABLE)
        if not company.is_verified:
            allowed |= set(COMPANY_EDITABLE_UNVERIFIED)
        refused = set(changes) - allowed
        if refused:
            raise ValidationError(
                _("These details cannot be changed: %(fields)s"),
                params={"fields": ", ".join(sorted(refused))},
            )
        if "contact_phone" in changes:
            changes["contact_phone"] = normalize_cn_phone(changes["contact_phone"])
        if "uscc" in changes:
            changes["uscc"] = normalize_uscc(changes["uscc"])
        if "billing_email" in changes:
            changes["billing_email"] = changes["billing_email"].strip().lower()
        for name, value in changes.items():
            setattr(company, name, value)
        company.full_clean()
        company.save(update_fields=list(changes) or None)
    return company


# --- users and roles ------------------------------------------------------------


def _lock_owners(company_id: int) -> list[int]:
    """Lock the company's active owners so two demotions cannot race."""
    return list(
        User.objects.select_for_update()
        .filter(company_id=company_id, role=User.Role.OWNER, is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _refuse_last_owner(*, user: User, owners: list[int]) -> None:
    if owners == [user.pk]:
        raise ValidationError(
            _("A company needs at least one active owner."), code="last_owner"
        )


def user_change_role(*, user: User, role: str, by: User) -> User:
    """An owner changes the role of a user of the same company."""
    if role not in User.Role.values:
        raise ValidationError(_("Unknown role."), code="role")
    _require_owner(company=user.company, by=by)
    with transaction.atomic():
        owners = _lock_owners(user.company_id)
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.role == role:
            return user
        if user.role == User.Role.OWNER and user.is_active:
            _refuse_last_owner(user=user, owners=owners)
        before = user.role
        user.role = role
        user.save(update_fields=["role"])
        audit_record(
            actor=by,
            action="user.role",
            target=user,
            before={"role": before},
            after={"role": role},
        )
    return user


def user_set_active(*, user: User, active: bool, by: User) -> User:
    """An owner deactivates (or reactivates) a user of the same company.

    A deactivated user can no longer log in; their sessions end at the next
    request because ``is_active`` is checked on every request.
    """
    _require_owner(company=user.company, by=by)
    with transaction.atomic():
        owners = _lock_owners(user.company_id)
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.is_active == active:
            return user
        if not active and user.role == User.Role.OWNER:
            _refuse_last_owner(user=user, owners=owners)
        user.is_active = active
        user.save(update_fields=["is_active"])
        if not active:
            user_sessions_end(user=user)
        audit_record(
            actor=by,
            action="user.activate" if active else "user.deactivate",
            target=user,
            before={"is_active": not active},
            after={"is_active": active},
        )
    return user


def user_sessions_end(*, user: User) -> int:
    """Delete every stored session of ``user``; returns how many ended.

    ``is_active`` is checked on each request too, but a deactivated account
    should leave nothing behind that a later reactivation would revive.
    """
    from django.contrib.auth import SESSION_KEY
    from django.contrib.sessions.models import Session

    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get(SESSION_KEY) == str(user.pk):
            session.delete()
            ended += 1
    return ended


# --- invitations ----------------------------------------------------------------


def invitation_token_hash(token: str) -> str:
    """Only the hash of an invitation token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_create(
    *, company: Company, by: User, email: str, role: str, now: dt.datetime | None = None
) -> tuple[Invitation, str]:
    """Invite a colleague; returns the invitation and the secret token.

    The token is emailed (after commit) and never stored in clear. An earlier
    pending invitation of the same address to the same company is revoked.
    """
    from .tasks import invitation_email_task

    _require_owner(company=company, by=by)
    if role not in User.Role.values:
        raise ValidationError(_("Unknown role."), code="role")
    now = now or timezone.now()
    email = User.objects.normalize_email(email).strip().lower()
    # An address that already has an account is invited like any other: the
    # owner must not learn who has an account (no account enumeration). The
    # link then says "already used, log in" to the person who owns the address.
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        Invitation.objects.filter(
            company=company,
            email__iexact=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        ).update(revoked_at=now)
        invitation = Invitation.objects.create(
            company=company,
            email=email,
            role=role,
            token=invitation_token_hash(token),
            invited_by=by,
            expires_at=now + dt.timedelta(days=settings.HOTLINE_INVITATION_DAYS),
        )
        audit_record(
            actor=by,
            action="invitation.create",
            target=invitation,
            after=snapshot(invitation, ["email", "role", "expires_at"]),
        )
        invitation_id = invitation.pk
        enqueue_on_commit(invitation_email_task, invitation_id, token)
    return invitation, token


def invitation_revoke(*, invitation: Invitation, by: User, now=None) -> Invitation:
    """Withdraw an open invitation: by an owner, or by the agent's staff."""
    company = invitation.company
    if not (by.is_superuser or (by.is_agent_staff and by.agent_id == company.agent_id)):
        _require_owner(company=company, by=by)
    now = now or timezone.now()
    with transaction.atomic():
        revoked = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now)
        invitation.refresh_from_db()
        if revoked:
            audit_record(
                actor=by,
                action="invitation.revoke",
                target=invitation,
                before={"revoked_at": None},
                after={"revoked_at": now},
            )
    return invitation


class InvitationUnusable(Exception):
    """Raised with ``reason`` in {"unknown", "expired", "accepted", "revoked"}."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def invitation_state(invitation: Invitation | None, *, now) -> str:
    """Why an invitation can or cannot be used: "ok" or the reason."""
    if invitation is None:
        return "unknown"
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    if now >= invitation.expires_at:
        return "expired"
    return "ok"


def invitation_accept(
    *, token: str, full_name: str, password: str, now: dt.datetime | None = None
) -> User:
    """Create the invited user with the invitation's role and company.

    Raises InvitationUnusable when the link is unknown, expired, used or
    revoked; a concurrent second acceptance finds it used.
    """
    now = now or timezone.now()
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("company")
            .filter(token=invitation_token_hash(token))
            .first()
        )
        state = invitation_state(invitation, now=now)
        if state != "ok":
            raise InvitationUnusable(state)
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise InvitationUnusable("accepted")
        user = User.objects.create_user(
            invitation.email,
            password,
            full_name=full_name.strip(),
            company=invitation.company,
            role=invitation.role,
            language=invitation.company.language,
        )
        invitation.accepted_at = now
        invitation.save(update_fields=["accepted_at"])
    return user
