"""The agents' back office for accounts: agents, companies, users, documents.

Every class derives from accounts.admin_base; the scoping lives there. The
verification decisions go through accounts.services, which email the owners.
"""

import contextlib

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services
from .admin_base import (
    USER_SCOPE,
    AgentScopedAdmin,
    AgentScopedInline,
    AgentScopedMixin,
    SuperuserOnlyMixin,
)
from .models import Agent, BusinessLicence, Company, Invitation, User
from .validators import normalize_cn_phone, normalize_uscc


def _admin_link(obj, label=None):
    if obj is None:
        return "—"
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label or str(obj))


def _changelist_link(model, label, **filters):
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    query = "&".join(f"{key}={value}" for key, value in filters.items())
    return format_html('<a href="{}?{}">{}</a>', url, query, label)


# --- agents -------------------------------------------------------------------------


@admin.register(Agent)
class AgentAdmin(AgentScopedAdmin):
    agent_path = ""
    # Agent staff keep their own agent's details; creating or removing agents
    # is for superusers.
    staff_actions = frozenset({"view", "change"})
    list_display = (
        "name",
        "legal_name",
        "contact_name",
        "contact_phone",
        "companies_link",
        "staff_link",
        "auto_issue_invoices",
    )
    list_filter = ("auto_issue_invoices",)
    search_fields = ("name", "legal_name", "uscc", "contact_email", "contact_name")
    fieldsets = (
        (None, {"fields": ("name", "legal_name", "uscc", "address")}),
        (_("Bank"), {"fields": ("bank_name", "bank_account")}),
        (_("Contact"), {"fields": ("contact_name", "contact_phone", "contact_email")}),
        (_("Invoices"), {"fields": ("auto_issue_invoices",)}),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                company_count=Count("companies", distinct=True),
                staff_count=Count("staff", distinct=True),
            )
        )

    @admin.display(description=_("companies"), ordering="company_count")
    def companies_link(self, obj):
        return _changelist_link(Company, obj.company_count, agent__id__exact=obj.pk)

    @admin.display(description=_("staff"), ordering="staff_count")
    def staff_link(self, obj):
        return _changelist_link(User, obj.staff_count, agent__id__exact=obj.pk)


# --- companies and the verification queue -------------------------------------------


class BusinessLicenceInline(AgentScopedInline, admin.TabularInline):
    model = BusinessLicence
    agent_path = "company__agent"
    extra = 0
    can_delete = False
    staff_actions = frozenset({"view"})
    fields = ("preview", "original_name", "content_type", "size", "uploaded_by")
    readonly_fields = fields
    verbose_name_plural = _("business licences (newest first)")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("licence"))
    def preview(self, obj):
        return licence_preview(obj)


def licence_preview(licence):
    url = reverse("accounts:licence", kwargs={"pk": licence.pk})
    if licence.content_type.startswith("image/"):
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">'
            '<img src="{}" alt="" style="max-height:160px;max-width:240px;"><br>{}</a>',
            url,
            url,
            _("open"),
        )
    return format_html(
        '<a href="{}" target="_blank" rel="noopener">{}</a>', url, _("open the PDF")
    )


class CompanyAdminForm(forms.ModelForm):
    class Meta:
        model = Company
        fields = (
            "agent",
            "name",
            "uscc",
            "address",
            "billing_email",
            "contact_phone",
            "language",
        )

    def clean_uscc(self):
        return normalize_uscc(self.cleaned_data["uscc"])

    def clean_contact_phone(self):
        return normalize_cn_phone(self.cleaned_data["contact_phone"])


class RejectForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for the rejection"),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text=_(
            "The company's owners receive it by email, e.g. 'The licence photo is "
            "unreadable' or 'The name does not match the licence'."
        ),
    )


@admin.register(Company)
class CompanyAdmin(AgentScopedAdmin):
    agent_path = "agent"
    staff_actions = frozenset({"view", "add", "change"})
    form = CompanyAdminForm
    change_form_template = "accounts/admin/company_change_form.html"
    list_display = (
        "name",
        "uscc",
        "agent_link",
        "status_badge",
        "created_at",
        "licence_link",
        "users_link",
        "related_links",
    )
    list_filter = ("verification_status", "agent", "language", "created_at")
    # A company is also found by one of its 400 numbers or invoice numbers.
    search_fields = (
        "name",
        "uscc",
        "billing_email",
        "users__email",
        "subscriptions__number__number",
        "invoices__number",
    )
    date_hierarchy = "created_at"
    ordering = ("verification_status", "-created_at")
    inlines = [BusinessLicenceInline]
    actions = ["approve_selected", "reject_selected"]
    fieldsets = (
        (None, {"fields": ("agent", "name", "uscc", "address")}),
        (_("Contact"), {"fields": ("billing_email", "contact_phone", "language")}),
        (
            _("Verification"),
            {
                "fields": (
                    "verification_status",
                    "verification_reason",
                    "verified_at",
                    "verified_by",
                    "created_at",
                )
            },
        ),
    )
    readonly_fields = (
        "verification_status",
        "verification_reason",
        "verified_at",
        "verified_by",
        "created_at",
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("agent")
            .annotate(user_count=Count("users", distinct=True))
        )

    @admin.display(description=_("agent"), ordering="agent__name")
    def agent_link(self, obj):
        return _admin_link(obj.agent)

    @admin.display(description=_("verification"), ordering="verification_status")
    def status_badge(self, obj):
        colour = {
            Company.Verification.APPROVED: "#1a7f37",
            Company.Verification.REJECTED: "#b42318",
        }.get(obj.verification_status, "#b54708")
        return format_html(
            '<strong style="color:{}">{}</strong>',
            colour,
            obj.get_verification_status_display(),
        )

    @admin.display(description=_("licence"))
    def licence_link(self, obj):
        licence = obj.licences.order_by("-uploaded_at").first()
        if licence is None:
            return "—"
        url = reverse("accounts:licence", kwargs={"pk": licence.pk})
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>',
            url,
            licence.get_content_type_display(),
        )

    @admin.display(description=_("users"), ordering="user_count")
    def users_link(self, obj):
        return _changelist_link(User, obj.user_count, company__id__exact=obj.pk)

    def get_list_display(self, request):
        # Agent staff see only their own agent's companies: no agent column.
        shown = super().get_list_display(request)
        if request.user.is_superuser:
            return shown
        return [name for name in shown if name != "agent_link"]

    def get_search_results(self, request, queryset, search_term):
        # A 400 number finds its company however it is typed (400-810-0001).
        from plans.numbers import InvalidNumber, canonicalize_400

        with contextlib.suppress(InvalidNumber):
            search_term = canonicalize_400(search_term)
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description=_("numbers and bills"))
    def related_links(self, obj):
        from billing.models import Invoice
        from plans.models import Subscription

        return format_html(
            "{} · {}",
            _changelist_link(Subscription, _("numbers"), company__id__exact=obj.pk),
            _changelist_link(Invoice, _("bills"), company__id__exact=obj.pk),
        )

    @admin.action(
        description=_("Approve the verification of the selected companies"),
        permissions=["change"],
    )
    def approve_selected(self, request, queryset):
        done = 0
        for company in queryset.exclude(
            verification_status=Company.Verification.APPROVED
        ):
            services.company_approve(company=company, by=request.user)
            done += 1
        self.message_user(
            request,
            ngettext(
                "%(count)d company approved; its owners are emailed.",
                "%(count)d companies approved; their owners are emailed.",
                done,
            )
            % {"count": done},
            messages.SUCCESS,
        )

    @admin.action(
        description=_("Reject the verification of the selected companies…"),
        permissions=["change"],
    )
    def reject_selected(self, request, queryset):
        if "apply" in request.POST:
            form = RejectForm(request.POST)
            if form.is_valid():
                companies = list(queryset)
                for company in companies:
                    services.company_reject(
                        company=company,
                        by=request.user,
                        reason=form.cleaned_data["reason"],
                    )
                self.message_user(
                    request,
                    ngettext(
                        "%(count)d company rejected; its owners are emailed.",
                        "%(count)d companies rejected; their owners are emailed.",
                        len(companies),
                    )
                    % {"count": len(companies)},
                    messages.WARNING,
                )
                return None
        else:
            form = RejectForm()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Reject the verification"),
            "opts": self.model._meta,
            "companies": queryset,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": "reject_selected",
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(
            request, "accounts/admin/reject_companies.html", context
        )


# --- users ----------------------------------------------------------------------


class UserCreationAdminForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError(
                _("An account with this email address already exists.")
            )
        return email


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        taken = User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError(
                _("An account with this email address already exists.")
            )
        return email


@admin.register(User)
class UserAdmin(AgentScopedMixin, auth_admin.UserAdmin):
    agent_path = USER_SCOPE
    staff_actions = frozenset({"view", "add", "change"})
    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    list_display = (
        "email",
        "full_name",
        "company_link",
        "role",
        "agent_link",
        "is_staff",
        "is_active",
        "last_login",
    )
    list_filter = ("is_active", "is_staff", "role", "agent", "company")
    search_fields = ("email", "full_name", "phone", "company__name", "company__uscc")
    ordering = ("email",)
    readonly_fields = ("last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Person"), {"fields": ("full_name", "phone", "language")}),
        (
            _("Company user or agent staff"),
            {
                "fields": ("company", "role", "agent", "is_staff"),
                "description": _(
                    "A company user has a company and a role; back-office staff "
                    "have an agent and back-office access. Never both."
                ),
            },
        ),
        (_("Status"), {"fields": ("is_active", "last_login", "date_joined")}),
        (
            _("Superuser permissions"),
            {"fields": ("is_superuser", "groups", "user_permissions")},
        ),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": (
                    "email",
                    "full_name",
                    "company",
                    "role",
                    "agent",
                    "is_staff",
                    "usable_password",
                    "password1",
                    "password2",
                ),
            },
        ),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("company", "agent")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        # Agent staff never grant superuser rights or Django permissions.
        return [fs for fs in fieldsets if "is_superuser" not in fs[1]["fields"]]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if request.user.is_superuser:
            return form

        class AgentStaffUserForm(form):
            def clean(self):
                cleaned = super().clean()
                if not cleaned.get("company") and not cleaned.get("agent"):
                    raise ValidationError(
                        _(
                            "Choose the user's company, or your agent for "
                            "back-office staff."
                        )
                    )
                return cleaned

        return AgentStaffUserForm

    @admin.display(description=_("company"), ordering="company__name")
    def company_link(self, obj):
        return _admin_link(obj.company) if obj.company_id else "—"

    @admin.display(description=_("agent"), ordering="agent__name")
    def agent_link(self, obj):
        return _admin_link(obj.agent) if obj.agent_id else "—"


# --- documents and invitations ------------------------------------------------------


@admin.register(BusinessLicence)
class BusinessLicenceAdmin(AgentScopedAdmin):
    agent_path = "company__agent"
    # Licences come from the companies themselves; nobody edits them here.
    staff_actions = frozenset({"view"})
    list_display = (
        "original_name",
        "company_link",
        "content_type",
        "size",
        "uploaded_at",
        "view_link",
    )
    list_filter = ("content_type", "company__verification_status", "uploaded_at")
    search_fields = ("original_name", "company__name", "company__uscc")
    date_hierarchy = "uploaded_at"
    fields = (
        "company",
        "preview",
        "original_name",
        "content_type",
        "size",
        "uploaded_by",
        "uploaded_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("company")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("company"), ordering="company__name")
    def company_link(self, obj):
        return _admin_link(obj.company)

    @admin.display(description=_("licence"))
    def view_link(self, obj):
        url = reverse("accounts:licence", kwargs={"pk": obj.pk})
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>', url, _("open")
        )

    @admin.display(description=_("licence"))
    def preview(self, obj):
        return licence_preview(obj)


@admin.register(Invitation)
class InvitationAdmin(AgentScopedAdmin):
    agent_path = "company__agent"
    # Owners invite from the portal; the back office may look and withdraw.
    staff_actions = frozenset({"view", "change"})
    list_display = (
        "email",
        "company_link",
        "role",
        "state",
        "created_at",
        "expires_at",
        "invited_by",
    )
    list_filter = ("role", "created_at")
    search_fields = ("email", "company__name")
    date_hierarchy = "created_at"
    actions = ["revoke_selected"]
    readonly_fields = (
        "company",
        "email",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    )
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("company", "invited_by")

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("company"), ordering="company__name")
    def company_link(self, obj):
        return _admin_link(obj.company)

    @admin.display(description=_("state"))
    def state(self, obj):
        labels = {
            "ok": _("open"),
            "expired": _("expired"),
            "accepted": _("accepted"),
            "revoked": _("withdrawn"),
        }
        return labels[services.invitation_state(obj, now=timezone.now())]

    @admin.action(
        description=_("Withdraw the selected invitations"), permissions=["change"]
    )
    def revoke_selected(self, request, queryset):
        count = 0
        for invitation in queryset.filter(
            accepted_at__isnull=True, revoked_at__isnull=True
        ):
            services.invitation_revoke(invitation=invitation, by=request.user)
            count += 1
        self.message_user(
            request,
            ngettext(
                "%(count)d invitation withdrawn.",
                "%(count)d invitations withdrawn.",
                count,
            )
            % {"count": count},
        )


# --- data only superusers see ---------------------------------------------------------


def _superuser_only(model) -> None:
    """Re-register a third-party admin so only superusers reach it."""
    current = admin.site._registry.get(model)
    if current is None or isinstance(current, SuperuserOnlyMixin):
        return
    admin_class = type(current)
    admin.site.unregister(model)
    admin.site.register(
        model,
        type(
            f"SuperuserOnly{admin_class.__name__}",
            (SuperuserOnlyMixin, admin_class),
            {},
        ),
    )


_superuser_only(Group)
try:
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
except ImportError:  # pragma: no cover - axes is a hard dependency
    pass
else:
    for _model in (AccessAttempt, AccessLog, AccessFailureLog):
        _superuser_only(_model)
