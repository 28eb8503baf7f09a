"""Back office for the plans app.

Holds and subscriptions are in admin_subscriptions.py (imported below);
catalog and inventory admin classes go in this file. The catalog is shared
by every agent (``CatalogAdmin``): agent staff may edit all of it.
"""

import unicodedata
from decimal import ROUND_HALF_UP, Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.admin_base import CatalogAdmin

from . import admin_subscriptions  # noqa: F401  (registers Hold, Subscription)
from .catalog_services import plans_in_use, vanity_grade_save
from .grading import validate_rules
from .inventory_services import number_add, numbers_regrade
from .models import (
    CarrierBlock,
    CatalogSettings,
    Holiday,
    PhoneNumber,
    Plan,
    TaxRate,
    ValueAddedService,
    VanityGrade,
)
from .numbers import InvalidNumber, canonicalize_400, carrier_for, format_400


@admin.register(TaxRate)
class TaxRateAdmin(CatalogAdmin):
    list_display = ("category", "rate")


class CatalogSettingsForm(forms.ModelForm):
    class Meta:
        model = CatalogSettings
        fields = (
            "extra_answer_number_fee",
            "peak_start",
            "peak_end",
            "peak_weekdays",
        )
        help_texts = {
            "peak_weekdays": _(
                "ISO weekdays with peak hours, 1 = Monday … 7 = Sunday, "
                "e.g. [1, 2, 3, 4, 5]."
            )
        }

    def clean_peak_weekdays(self):
        days = self.cleaned_data["peak_weekdays"]
        if not (
            isinstance(days, list)
            and all(isinstance(d, int) and not isinstance(d, bool) for d in days)
            and all(1 <= d <= 7 for d in days)
            and len(set(days)) == len(days)
        ):
            raise forms.ValidationError(
                gettext("Enter a list of different weekdays from 1 to 7.")
            )
        return sorted(days)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("peak_start"), cleaned.get("peak_end")
        if start and end and start >= end:
            self.add_error("peak_end", gettext("Peak hours must end after they start."))
        return cleaned


@admin.register(CatalogSettings)
class CatalogSettingsAdmin(CatalogAdmin):
    form = CatalogSettingsForm
    list_display = ("__str__", "extra_answer_number_fee", "peak_start", "peak_end")
    staff_actions = frozenset({"view", "add", "change"})

    def has_add_permission(self, request, *args):
        # One row (pk=1) holds the catalog-wide values.
        return not CatalogSettings.objects.exists() and super().has_add_permission(
            request, *args
        )

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Holiday)
class HolidayAdmin(CatalogAdmin):
    list_display = ("date", "kind", "name")
    list_filter = ("kind",)
    date_hierarchy = "date"
    search_fields = ("name",)


@admin.register(CarrierBlock)
class CarrierBlockAdmin(CatalogAdmin):
    list_display = ("prefix", "carrier")
    list_filter = ("carrier",)
    search_fields = ("prefix",)


@admin.register(ValueAddedService)
class ValueAddedServiceAdmin(CatalogAdmin):
    list_display = ("code", "name_zh", "name_en", "monthly_fee", "is_active")
    list_filter = ("is_active",)
    search_fields = ("code", "name_zh", "name_en")
    ordering = ("sort_order", "code")


# --- plans ---------------------------------------------------------------------


@admin.action(description=_("Deactivate selected packages"))
def deactivate_plans(modeladmin, request, queryset):
    from django.db import transaction

    from audit.services import audit_record

    with transaction.atomic():
        for plan in queryset.filter(is_active=True):
            audit_record(
                actor=request.user,
                action="catalog.change",
                target=plan,
                before={"is_active": True},
                after={"is_active": False},
            )
        count = queryset.update(is_active=False)
    modeladmin.message_user(
        request,
        ngettext(
            "%(count)d package deactivated.",
            "%(count)d packages deactivated.",
            count,
        )
        % {"count": count},
        messages.SUCCESS,
    )


@admin.action(
    description=_("Delete selected packages (only those nobody subscribed to)"),
    permissions=["delete"],
)
def delete_unused_plans(modeladmin, request, queryset):
    used = plans_in_use(plans=queryset)
    if used:
        modeladmin.message_user(
            request,
            gettext(
                "Nothing was deleted: %(codes)s have subscribers. A package "
                "with subscribers cannot be deleted; deactivate it instead."
            )
            % {"codes": ", ".join(sorted(p.code for p in used))},
            messages.ERROR,
        )
        return None
    return delete_selected(modeladmin, request, queryset)


@admin.register(Plan)
class PlanAdmin(CatalogAdmin):
    list_display = (
        "code",
        "name_zh",
        "term_months",
        "price",
        "included_minutes",
        "rate_inbound_peak",
        "rate_inbound_offpeak",
        "rate_outbound",
        "monthly_equivalent_display",
        "subscriber_count",
        "is_active",
    )
    list_filter = ("is_active", "term_months")
    search_fields = ("code", "name_zh", "name_en")
    filter_horizontal = ("included_services",)
    actions = [deactivate_plans, delete_unused_plans]
    readonly_fields = ("subscriber_count",)
    fieldsets = (
        (None, {"fields": ("code", "name_zh", "name_en", "is_active", "sort_order")}),
        (
            _("Price and minutes"),
            {"fields": ("term_months", "price", "included_minutes")},
        ),
        (
            _("Rates beyond the included minutes"),
            {"fields": ("rate_inbound_peak", "rate_inbound_offpeak", "rate_outbound")},
        ),
        (
            _("Included"),
            {"fields": ("included_answer_numbers", "included_services")},
        ),
        (_("Description"), {"fields": ("description_zh", "description_en")}),
        (_("Use"), {"fields": ("subscriber_count",)}),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _subscribers=Count("subscription_periods__subscription", distinct=True)
            )
        )

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Replaced by delete_unused_plans, which explains the refusal.
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description=_("per month"))
    def monthly_equivalent_display(self, obj):
        return obj.monthly_equivalent.quantize(Decimal("0.01"), ROUND_HALF_UP)

    @admin.display(description=_("subscriptions"), ordering="_subscribers")
    def subscriber_count(self, obj):
        count = getattr(obj, "_subscribers", None)
        if count is None:
            count = obj.subscription_periods.values("subscription").distinct().count()
        return count

    def delete_view(self, request, object_id, extra_context=None):
        plan = self.get_object(request, object_id)
        if plan is not None and plans_in_use(plans=Plan.objects.filter(pk=plan.pk)):
            self.message_user(
                request,
                gettext(
                    "The package %(plan)s has subscribers and cannot be deleted. "
                    "Untick “active” to stop offering it; existing subscribers "
                    "keep it."
                )
                % {"plan": plan.code},
                messages.ERROR,
            )
            opts = self.opts
            return HttpResponseRedirect(
                reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_change",
                    args=[plan.pk],
                    current_app=self.admin_site.name,
                )
            )
        return super().delete_view(request, object_id, extra_context)


# --- vanity grades -------------------------------------------------------------


class VanityGradeForm(forms.ModelForm):
    class Meta:
        model = VanityGrade
        fields = (
            "code",
            "name_zh",
            "name_en",
            "selection_fee",
            "min_monthly",
            "priority",
            "rules",
            "is_active",
        )
        help_texts = {
            "rules": _(
                'A JSON list of rules, e.g. [{"type": "repeat", "length": 4}, '
                '{"type": "lucky_ending", "endings": ["88", "168"]}]. '
                "See docs/catalog.md."
            )
        }

    def clean_rules(self):
        rules = self.cleaned_data["rules"]
        errors = validate_rules(rules)
        if errors:
            raise forms.ValidationError(errors)
        return rules


@admin.register(VanityGrade)
class VanityGradeAdmin(CatalogAdmin):
    form = VanityGradeForm
    list_display = (
        "code",
        "name_zh",
        "priority",
        "selection_fee",
        "min_monthly",
        "is_active",
        "number_count",
    )
    list_filter = ("is_active",)
    search_fields = ("code", "name_zh", "name_en")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_numbers=Count("numbers"))

    @admin.display(description=_("numbers"), ordering="_numbers")
    def number_count(self, obj):
        return getattr(obj, "_numbers", None)

    def save_model(self, request, obj, form, change):
        rules_changed = vanity_grade_save(grade=obj)
        if (
            rules_changed
            or "is_active" in form.changed_data
            or "priority" in (form.changed_data)
        ):
            self.message_user(
                request,
                gettext(
                    "The grading changed. Run “manage.py regrade_numbers” (or the "
                    "“Grade again” action on the 400 numbers) to apply it to the "
                    "numbers in stock."
                ),
                messages.WARNING,
            )


# --- 400 numbers ---------------------------------------------------------------


class PhoneNumberAddForm(forms.ModelForm):
    number = forms.CharField(
        label=_("400 number"),
        max_length=40,
        help_text=_("Any format: 400-810-8888, 4008108888 or 400 810 8888."),
    )

    class Meta:
        model = PhoneNumber
        fields = ("number",)

    def clean_number(self):
        try:
            number = canonicalize_400(self.cleaned_data["number"])
        except InvalidNumber as exc:
            raise forms.ValidationError(str(exc)) from exc
        if PhoneNumber.objects.filter(number=number).exists():
            raise forms.ValidationError(
                gettext("%(number)s is already in stock.")
                % {"number": format_400(number)}
            )
        blocks = dict(CarrierBlock.objects.values_list("prefix", "carrier"))
        if carrier_for(number, blocks) is None:
            raise forms.ValidationError(
                gettext(
                    "No carrier block covers %(number)s: add the block under "
                    "“carrier blocks” first."
                )
                % {"number": format_400(number)}
            )
        return number


@admin.action(description=_("Grade again (available numbers only)"))
def regrade_selected(modeladmin, request, queryset):
    report = numbers_regrade(pks=list(queryset.values_list("pk", flat=True)))
    modeladmin.message_user(
        request,
        gettext("Checked %(checked)s available numbers; %(changed)s changed.")
        % {"checked": report.checked, "changed": report.changed},
        messages.SUCCESS,
    )


@admin.action(
    description=_("Delete selected numbers (only those in stock)"),
    permissions=["delete"],
)
def delete_numbers_in_stock(modeladmin, request, queryset):
    available = queryset.filter(status=PhoneNumber.Status.AVAILABLE)
    kept = queryset.count() - available.count()
    if kept and "post" not in request.POST:
        modeladmin.message_user(
            request,
            ngettext(
                "%(count)d number was kept: it is held, in service or resting.",
                "%(count)d numbers were kept: they are held, in service or resting.",
                kept,
            )
            % {"count": kept},
            messages.WARNING,
        )
    if not available.exists():
        return None
    return delete_selected(modeladmin, request, available)


@admin.register(PhoneNumber)
class PhoneNumberAdmin(CatalogAdmin):
    list_display = (
        "display_number",
        "carrier",
        "grade",
        "grade_reason",
        "selection_fee",
        "status",
        "quarantine_until",
    )
    list_filter = ("status", "grade", "carrier", "has_four")
    list_select_related = ("grade",)
    search_fields = ("number",)
    search_help_text = _(
        "A number in any format (400-810-8888, 4008108888), or some of its digits."
    )
    # A number's state changes only through holds, checkout and subscriptions
    # (plans.services), and its grade only through the grading rules.
    readonly_fields = (
        "number",
        "carrier",
        "grade",
        "grade_reason",
        "selection_fee",
        "has_four",
        "status",
        "quarantine_until",
        "created_at",
    )
    fields = (
        "number",
        "carrier",
        "grade",
        "grade_reason",
        "selection_fee",
        "has_four",
        "status",
        "quarantine_until",
        "created_at",
    )
    actions = [regrade_selected]
    show_full_result_count = False
    list_per_page = 50

    @admin.display(description=_("400 number"), ordering="number")
    def display_number(self, obj):
        return obj.display

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = PhoneNumberAddForm
            kwargs["fields"] = ("number",)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ("number",) if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        # Only a number in stock may go: a held, sold or resting one has a
        # company attached to it.
        if obj is not None and obj.status != PhoneNumber.Status.AVAILABLE:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            # Same name, so Django's confirmation page posts back to it.
            actions["delete_selected"] = (
                delete_numbers_in_stock,
                "delete_selected",
                delete_numbers_in_stock.short_description,
            )
        return actions

    def delete_queryset(self, request, queryset):
        super().delete_queryset(
            request, queryset.filter(status=PhoneNumber.Status.AVAILABLE)
        )

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        added = number_add(number=form.cleaned_data["number"])
        obj.pk = added.pk
        obj.refresh_from_db()

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(number=canonicalize_400(term)), False
        except InvalidNumber:
            pass
        digits = "".join(
            ch for ch in unicodedata.normalize("NFKC", term) if "0" <= ch <= "9"
        )
        if not digits:
            return queryset.none(), False
        return queryset.filter(number__contains=digits), False
