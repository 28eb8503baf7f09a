from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from . import selectors, services
from .decorators import company_member_required, owner_required
from .forms import (
    CompanyDetailsForm,
    InvitationAcceptForm,
    InvitationForm,
    LicenceUploadForm,
    RoleForm,
    SignupForm,
)
from .models import Agent, BusinessLicence, Invitation, User
from .uploads import limit_upload_size

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


@login_required
def dashboard(request):
    """The company's overview: numbers, holds, this month's bill, latest bills."""
    user = request.user
    if user.is_staff and not user.company_id:
        return redirect("admin:index")
    if not user.company_id:
        return render(request, "accounts/dashboard.html", {})
    # Imported here: the overview reads the other apps' selectors, which
    # import accounts models.
    from billing.selectors.bills import invoices_for
    from billing.selectors.month import month_to_date
    from plans.selectors import company_open_holds, company_subscriptions

    company = user.company
    today = timezone.localdate()
    subscriptions = [
        s
        for s in company_subscriptions(company=company)
        if s.status in ("active", "pending")
    ]
    context = {
        "today": today,
        "subscriptions": subscriptions,
        "active_count": sum(s.status == "active" for s in subscriptions),
        "pending_count": sum(s.status == "pending" for s in subscriptions),
        "holds": list(company_open_holds(company=company)),
    }
    if user.can_see_bills:
        context["latest_invoices"] = list(invoices_for(company=company)[:3])
        if context["active_count"]:
            context["mtd"] = month_to_date(company=company, today=today)
    return render(request, "accounts/dashboard.html", context)


@login_required
def licence_download(request, pk: int):
    """Stream a business licence to its company's owner or to agent staff."""
    user = request.user
    licence = get_object_or_404(
        BusinessLicence.objects.select_related("company"), pk=pk
    )
    allowed = (
        user.is_superuser
        or (user.is_agent_staff and licence.company.agent_id == user.agent_id)
        or (user.company_id == licence.company_id and user.is_owner)
    )
    if not allowed:
        raise Http404
    return FileResponse(
        licence.file.open("rb"),
        content_type=licence.content_type,
        filename=licence.original_name,
        as_attachment=False,
    )


# --- sign-up --------------------------------------------------------------------


def _signup_agent(request) -> Agent | None:
    """The agent from ``?agent=<id>``, else the only agent, else None (a choice)."""
    raw = request.GET.get("agent", "")
    if raw.isdigit():
        agent = Agent.objects.filter(pk=int(raw)).first()
        if agent is not None:
            return agent
    agents = list(selectors.signup_agents()[:2])
    return agents[0] if len(agents) == 1 else None


def _apply_service_errors(form, error: ValidationError) -> None:
    field_map = {"name": "company_name"}
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            target = field_map.get(field, field)
            form.add_error(target if target in form.fields else None, errors)
    else:
        form.add_error(None, error)


@limit_upload_size("HOTLINE_LICENCE_MAX_BYTES")
def signup(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    agent = _signup_agent(request)
    if request.method == "POST":
        form = SignupForm(
            request.POST,
            request.FILES,
            agent=agent,
            upload_too_large=request.upload_too_large,
        )
        if form.is_valid():
            data = form.cleaned_data
            try:
                owner = services.company_register(
                    agent=form.chosen_agent,
                    details=services.CompanyDetails(
                        name=data["company_name"],
                        uscc=data["uscc"],
                        address=data["address"],
                        billing_email=data["billing_email"],
                        contact_phone=data["contact_phone"],
                        language=request.LANGUAGE_CODE
                        if request.LANGUAGE_CODE in dict(settings.LANGUAGES)
                        else settings.LANGUAGE_CODE,
                    ),
                    owner_email=data["owner_email"],
                    owner_name=data["owner_name"],
                    owner_password=data["password2"],
                    licence_file=data["licence"],
                )
            except ValidationError as error:
                _apply_service_errors(form, error)
            else:
                login(request, owner, backend=MODEL_BACKEND)
                messages.success(
                    request,
                    _(
                        "Your company is registered. Your agent will check your "
                        "business licence for real-name verification (实名认证); "
                        "until then you can browse numbers but not activate them."
                    ),
                )
                return redirect("dashboard")
    else:
        form = SignupForm(agent=agent)
    return render(request, "accounts/signup.html", {"form": form, "agent": agent})


@owner_required
@limit_upload_size("HOTLINE_LICENCE_MAX_BYTES")
def licence_upload(request):
    company = request.user.company
    if company.is_verified:
        messages.info(request, _("Your company is already verified."))
        return redirect("accounts:settings")
    if request.method == "POST":
        form = LicenceUploadForm(
            request.POST, request.FILES, upload_too_large=request.upload_too_large
        )
        if form.is_valid():
            try:
                services.licence_replace(
                    company=company,
                    uploaded=form.cleaned_data["licence"],
                    by=request.user,
                )
            except ValidationError as error:
                form.add_error("licence", error)
            else:
                messages.success(
                    request,
                    _("Thank you. Your agent will check the new business licence."),
                )
                return redirect("accounts:settings")
    else:
        form = LicenceUploadForm()
    return render(
        request,
        "accounts/licence_upload.html",
        {
            "form": form,
            "company": company,
            "latest": selectors.company_latest_licence(company=company),
        },
    )


# --- company settings -------------------------------------------------------------


@company_member_required
def company_settings(request):
    company = request.user.company
    user = request.user
    context = {
        "company": company,
        "latest_licence": selectors.company_latest_licence(company=company)
        if user.is_owner
        else None,
    }
    if user.can_see_bills:
        context["team"] = selectors.company_users(company=company)
    if user.is_owner:
        context["invitations"] = selectors.company_invitations(
            company=company, now=timezone.now()
        )
        context["invite_form"] = InvitationForm()
        context["roles"] = User.Role.choices
    return render(request, "accounts/settings.html", context)


@owner_required
def company_edit(request):
    company = request.user.company
    if request.method == "POST":
        form = CompanyDetailsForm(request.POST, company=company)
        if form.is_valid():
            try:
                services.company_update(
                    company=company, by=request.user, **form.changes()
                )
            except ValidationError as error:
                _apply_service_errors(form, error)
            else:
                messages.success(request, _("The company details are saved."))
                return redirect("accounts:settings")
    else:
        form = CompanyDetailsForm(company=company)
    return render(
        request, "accounts/company_edit.html", {"form": form, "company": company}
    )


@owner_required
@require_POST
def invite(request):
    company = request.user.company
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            services.invitation_create(
                company=company,
                by=request.user,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
        else:
            messages.success(
                request,
                _("Invitation sent to %(email)s. The link is valid for %(days)s days.")
                % {
                    "email": form.cleaned_data["email"],
                    "days": settings.HOTLINE_INVITATION_DAYS,
                },
            )
    else:
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
    return redirect("accounts:settings")


@owner_required
@require_POST
def invitation_revoke(request, pk: int):
    invitation = selectors.company_invitation_get(company=request.user.company, pk=pk)
    services.invitation_revoke(invitation=invitation, by=request.user)
    messages.success(request, _("The invitation is withdrawn."))
    return redirect("accounts:settings")


@owner_required
@require_POST
def user_role(request, pk: int):
    member = selectors.company_user_get(company=request.user.company, pk=pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a role."))
        return redirect("accounts:settings")
    try:
        services.user_change_role(
            user=member, role=form.cleaned_data["role"], by=request.user
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, _("The role of %(name)s is changed.") % {"name": member}
        )
    return redirect("accounts:settings")


@owner_required
@require_POST
def user_active(request, pk: int):
    member = selectors.company_user_get(company=request.user.company, pk=pk)
    active = request.POST.get("active") == "1"
    try:
        services.user_set_active(user=member, active=active, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        text = (
            _("%(name)s can log in again.")
            if active
            else _("%(name)s can no longer log in.")
        )
        messages.success(request, text % {"name": member})
    return redirect("accounts:settings")


# --- invitations ------------------------------------------------------------------

INVITATION_PROBLEMS = {
    "unknown": gettext_lazy(
        "This invitation link is not valid. Check that you copied it whole."
    ),
    "expired": gettext_lazy(
        "This invitation has expired. Ask the person who invited you for a new one."
    ),
    "accepted": gettext_lazy(
        "This invitation has already been used. Log in with your email."
    ),
    "revoked": gettext_lazy("This invitation was withdrawn by your company."),
}


def invitation_accept(request, token: str):
    now = timezone.now()
    invitation = (
        Invitation.objects.select_related("company", "invited_by")
        .filter(token=services.invitation_token_hash(token))
        .first()
    )
    state = services.invitation_state(invitation, now=now)
    if state != "ok":
        return render(
            request,
            "accounts/invitation_problem.html",
            {"problem": str(INVITATION_PROBLEMS[state]), "state": state},
            status=410 if state in ("expired", "revoked", "accepted") else 404,
        )
    if request.method == "POST":
        form = InvitationAcceptForm(request.POST, email=invitation.email)
        if form.is_valid():
            try:
                user = services.invitation_accept(
                    token=token,
                    full_name=form.cleaned_data["full_name"],
                    password=form.cleaned_data["password2"],
                )
            except services.InvitationUnusable as problem:
                return render(
                    request,
                    "accounts/invitation_problem.html",
                    {"problem": str(INVITATION_PROBLEMS[problem.reason])},
                    status=410,
                )
            login(request, user, backend=MODEL_BACKEND)
            messages.success(
                request,
                _("Welcome to %(company)s on Hotline400.")
                % {"company": user.company.name},
            )
            return redirect("dashboard")
    else:
        form = InvitationAcceptForm(email=invitation.email)
    return render(
        request,
        "accounts/invitation_accept.html",
        {"form": form, "invitation": invitation},
    )
