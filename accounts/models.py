"""Agents (resellers), companies (tenants), their users and documents."""

import uuid

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .validators import validate_cn_phone, validate_uscc


class Agent(models.Model):
    """A reseller (代理商) that manages companies and runs the back office.

    The agent is the seller on its companies' invoices, so it carries the
    seller details that an issued invoice copies.
    """

    name = models.CharField(_("name"), max_length=200, unique=True)
    legal_name = models.CharField(_("legal name"), max_length=200, blank=True)
    uscc = models.CharField(
        _("unified social credit code"),
        max_length=18,
        blank=True,
        validators=[validate_uscc],
    )
    address = models.CharField(_("address"), max_length=300, blank=True)
    bank_name = models.CharField(_("bank"), max_length=200, blank=True)
    bank_account = models.CharField(_("bank account"), max_length=64, blank=True)
    contact_name = models.CharField(_("contact person"), max_length=100, blank=True)
    contact_phone = models.CharField(
        _("contact phone"), max_length=32, blank=True, validators=[validate_cn_phone]
    )
    contact_email = models.EmailField(_("contact email"), blank=True)
    auto_issue_invoices = models.BooleanField(
        _("issue invoices automatically after the monthly close"), default=False
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("agent")
        verbose_name_plural = _("agents")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Company(models.Model):
    """A tenant: the enterprise that owns 400 numbers and receives bills."""

    class Verification(models.TextChoices):
        PENDING = "pending", _("Awaiting verification")
        APPROVED = "approved", _("Verified")
        REJECTED = "rejected", _("Rejected")

    agent = models.ForeignKey(
        Agent,
        on_delete=models.PROTECT,
        related_name="companies",
        verbose_name=_("agent"),
    )
    name = models.CharField(_("company name"), max_length=200)
    uscc = models.CharField(
        _("unified social credit code"),
        max_length=18,
        unique=True,
        validators=[validate_uscc],
        help_text=_("18 characters, as printed on the business licence."),
    )
    address = models.CharField(_("registered address"), max_length=300)
    billing_email = models.EmailField(_("billing email"))
    contact_phone = models.CharField(
        _("contact phone"), max_length=32, validators=[validate_cn_phone]
    )
    language = models.CharField(
        _("language for emails"),
        max_length=10,
        choices=settings.LANGUAGES,
        default="zh-hans",
    )
    verification_status = models.CharField(
        _("verification"),
        max_length=16,
        choices=Verification.choices,
        default=Verification.PENDING,
        db_index=True,
    )
    verification_reason = models.TextField(_("rejection reason"), blank=True)
    verified_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    created_at = models.DateTimeField(_("registered"), auto_now_add=True)

    class Meta:
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_verified(self) -> bool:
        return self.verification_status == self.Verification.APPROVED


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required")
        email = self.normalize_email(email).lower()
        user = self.model(email=email, **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, username):
        return self.get(**{f"{self.model.USERNAME_FIELD}__iexact": username})


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in by email.

    A company user has ``company`` and ``role``; an agent staff member has
    ``agent`` and ``is_staff``. Nobody is both.
    """

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        FINANCE = "finance", _("Finance")
        MEMBER = "member", _("Member (read-only)")

    email = models.EmailField(_("email"), unique=True)
    full_name = models.CharField(_("name"), max_length=100, blank=True)
    phone = models.CharField(
        _("mobile"), max_length=32, blank=True, validators=[validate_cn_phone]
    )
    company = models.ForeignKey(
        Company,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="users",
        verbose_name=_("company"),
    )
    role = models.CharField(
        _("role"), max_length=16, choices=Role.choices, blank=True, default=""
    )
    agent = models.ForeignKey(
        Agent,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="staff",
        verbose_name=_("agent"),
        help_text=_("Set for the agent's back-office staff."),
    )
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, default="zh-hans"
    )
    is_staff = models.BooleanField(
        _("back-office access"),
        default=False,
        help_text=_("Can log into the agents' back office."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["email"]
        constraints = [
            models.CheckConstraint(
                condition=Q(company__isnull=True) | Q(agent__isnull=True),
                name="user_company_or_agent_not_both",
            ),
            models.CheckConstraint(
                condition=Q(company__isnull=True, role="")
                | Q(company__isnull=False, role__in=["owner", "finance", "member"]),
                name="user_role_iff_company",
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name or self.email.split("@")[0]

    @property
    def is_agent_staff(self) -> bool:
        return self.is_staff and self.agent_id is not None

    @property
    def can_see_bills(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.FINANCE)

    @property
    def is_owner(self) -> bool:
        return self.role == self.Role.OWNER


def licence_upload_to(instance, filename: str) -> str:
    # The stored name never reuses the uploader's file name.
    ext = {
        "application/pdf": "pdf",
        "image/png": "png",
        "image/jpeg": "jpg",
    }.get(instance.content_type, "bin")
    return f"licences/{instance.company_id}/{uuid.uuid4().hex}.{ext}"


class BusinessLicence(models.Model):
    """A company's 营业执照, uploaded for real-name verification (实名认证)."""

    class ContentType(models.TextChoices):
        PDF = "application/pdf", "PDF"
        PNG = "image/png", "PNG"
        JPEG = "image/jpeg", "JPEG"

    company = models.ForeignKey(
        Company,
        on_delete=models.CASCADE,
        related_name="licences",
        verbose_name=_("company"),
    )
    file = models.FileField(_("file"), upload_to=licence_upload_to)
    original_name = models.CharField(_("original file name"), max_length=255)
    content_type = models.CharField(
        _("type"), max_length=32, choices=ContentType.choices
    )
    size = models.PositiveIntegerField(_("size (bytes)"))
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    uploaded_at = models.DateTimeField(_("uploaded"), auto_now_add=True)

    class Meta:
        verbose_name = _("business licence")
        verbose_name_plural = _("business licences")
        ordering = ["-uploaded_at"]

    def __str__(self) -> str:
        return self.original_name

    def get_absolute_url(self) -> str:
        return reverse("accounts:licence", kwargs={"pk": self.pk})


class Invitation(models.Model):
    """An owner's invitation of a colleague; the link expires."""

    company = models.ForeignKey(
        Company,
        on_delete=models.CASCADE,
        related_name="invitations",
        verbose_name=_("company"),
    )
    email = models.EmailField(_("email"))
    role = models.CharField(_("role"), max_length=16, choices=User.Role.choices)
    token = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("invited by"),
    )
    created_at = models.DateTimeField(_("sent"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.email

    def is_usable(self, *, now) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and now < self.expires_at
        )
