"""Back office for holds and subscriptions (agent staff, scoped to their agent).

Imported by plans/admin.py. Activation goes through
``plans.services.subscription_activate``: agent staff choose the activation
date, the first billable day.
"""

import contextlib

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin_base import AgentScopedAdmin, AgentScopedInline

from . import services
from .forms import ActivationForm
from .models import (
    AnswerNumber,
    Hold,
    Subscription,
    SubscriptionPlanPeriod,
    SubscriptionServicePeriod,
)
from .numbers import InvalidNumber, canonicalize_400


class _NumberSearchMixin:
    """Find a number however it is typed: 400-810-8888, 400 810 8888…"""

    def get_search_results(self, request, queryset, search_term):
        with contextlib.suppress(InvalidNumber):
            search_term = canonicalize_400(search_term)
        return super().get_search_results(request, queryset, search_term)


class PlanPeriodInline(AgentScopedInline, admin.TabularInline):
    model = SubscriptionPlanPeriod
    agent_path = "subscription__company__agent"
    extra = 0
    fields = ("plan", "start_date", "end_date")


class ServicePeriodInline(AgentScopedInline, admin.TabularInline):
    model = SubscriptionServicePeriod
    agent_path = "subscription__company__agent"
    extra = 0
    fields = ("service", "start_date", "end_date")


class AnswerNumberInline(AgentScopedInline, admin.TabularInline):
    model = AnswerNumber
    agent_path = "subscription__company__agent"
    extra = 0
    fields = ("phone", "start_date", "end_date")


@admin.register(Subscription)
class SubscriptionAdmin(_NumberSearchMixin, AgentScopedAdmin):
    agent_path = "company__agent"
    # Subscriptions are created by customers at checkout and ended from the
    # portal; the back office activates and corrects them.
    staff_actions = frozenset({"view", "change"})
    list_display = (
        "number",
        "company_link",
        "status",
        "grade",
        "selection_fee",
        "confirmed_at",
        "activated_on",
        "ended_on",
        "bills_link",
    )
    list_filter = ("status", "grade", "activated_on", "confirmed_at")
    search_fields = ("number__number", "company__name", "company__uscc")
    list_select_related = ("number", "company", "grade")
    date_hierarchy = "confirmed_at"
    raw_id_fields = ("company", "number")
    readonly_fields = (
        "company",
        "number",
        "status",
        "grade",
        "selection_fee",
        "confirmed_at",
        "confirmed_by",
        "activated_on",
        "activated_by",
        "ended_on",
    )
    inlines = [PlanPeriodInline, ServicePeriodInline, AnswerNumberInline]
    actions = ["activate_selected"]
    change_form_template = "plans/admin/subscription_change_form.html"

    @admin.display(description=_("company"), ordering="company__name")
    def company_link(self, obj):
        url = reverse("admin:accounts_company_change", args=[obj.company_id])
        return format_html('<a href="{}">{}</a>', url, obj.company)

    @admin.display(description=_("bills"))
    def bills_link(self, obj):
        url = reverse("admin:billing_invoice_changelist")
        return format_html(
            '<a href="{}?{}">{}</a>',
            url,
            urlencode({"q": obj.number.number}),
            _("bills"),
        )

    def get_urls(self):
        urls = super().get_urls()
        custom = [
            path(
                "<int:pk>/activate/",
                self.admin_site.admin_view(self.activate_view),
                name="plans_subscription_activate",
            ),
        ]
        return custom + urls

    def _activate(self, request, queryset, on) -> None:
        done = 0
        for subscription in queryset.select_related("number", "company"):
            try:
                services.subscription_activate(
                    subscription=subscription, on=on, by=request.user
                )
            except services.PlansError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(
                request,
                gettext("%(n)d number(s) activated from %(day)s.")
                % {"n": done, "day": on.isoformat()},
                messages.SUCCESS,
            )

    def _activation_page(self, request, queryset, form, *, action: bool):
        context = {
            **self.admin_site.each_context(request),
            "title": _("Activate numbers"),
            "opts": self.model._meta,
            "subscriptions": queryset.select_related("number", "company"),
            "form": form,
            "is_action": action,
        }
        return TemplateResponse(request, "plans/admin/activate.html", context)

    @admin.action(description=_("Activate the selected numbers…"))
    def activate_selected(self, request, queryset):
        if not self.has_change_permission(request):
            raise PermissionDenied
        if "apply" in request.POST:
            form = ActivationForm(request.POST)
            if form.is_valid():
                self._activate(request, queryset, form.cleaned_data["activated_on"])
                return None
        else:
            form = ActivationForm(initial={"activated_on": timezone.localdate()})
        return self._activation_page(request, queryset, form, action=True)

    def activate_view(self, request, pk: int):
        queryset = self.get_queryset(request).filter(pk=pk)
        subscription = get_object_or_404(queryset)
        if not self.has_change_permission(request, subscription):
            raise PermissionDenied
        if request.method == "POST":
            form = ActivationForm(request.POST)
            if form.is_valid():
                self._activate(request, queryset, form.cleaned_data["activated_on"])
                return redirect(
                    reverse("admin:plans_subscription_change", args=[subscription.pk])
                )
        else:
            form = ActivationForm(initial={"activated_on": timezone.localdate()})
        return self._activation_page(request, queryset, form, action=False)


@admin.register(Hold)
class HoldAdmin(_NumberSearchMixin, AgentScopedAdmin):
    agent_path = "company__agent"
    staff_actions = frozenset({"view"})
    list_display = (
        "number",
        "company",
        "created_by",
        "created_at",
        "expires_at",
        "released_at",
        "converted_at",
    )
    list_filter = ("created_at", "expires_at")
    search_fields = ("number__number", "company__name")
    list_select_related = ("number", "company", "created_by")
    actions = ["release_selected"]

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Release the selected holds"))
    def release_selected(self, request, queryset):
        for hold in queryset:
            services.hold_cancel(hold=hold, by=request.user)
        self.message_user(request, gettext("Released."), messages.SUCCESS)
