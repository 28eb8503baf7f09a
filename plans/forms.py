"""Forms for the number search, checkout and subscription changes.

Forms only parse and check input; the rules live in plans.services.
"""

import re
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Carrier, Plan, ValueAddedService
from .numbers import InvalidNumber, canonicalize_400
from .search import InvalidSearch, clean_digits, pattern_to_like
from .selectors import ORDINARY, SearchCriteria, search_grades
from .services import PlansError, answer_phones_clean


class NumberSearchForm(forms.Form):
    pattern = forms.CharField(
        label=_("Pattern"),
        required=False,
        max_length=40,
        help_text=_("* stands for any digit, e.g. 400*8*8888 or 8*8*8."),
        widget=forms.TextInput(
            attrs={"placeholder": "400*8*8888", "inputmode": "numeric"}
        ),
    )
    contains = forms.CharField(
        label=_("Contains"),
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"placeholder": "520", "inputmode": "numeric"}),
    )
    ends_with = forms.CharField(
        label=_("Ends with"),
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"placeholder": "8888", "inputmode": "numeric"}),
    )
    grade = forms.ChoiceField(label=_("Vanity grade"), required=False)
    carrier = forms.ChoiceField(
        label=_("Carrier"),
        required=False,
        choices=[("", _("Any carrier")), *Carrier.choices],
    )
    max_fee = forms.DecimalField(
        label=_("Selection fee up to (¥)"),
        required=False,
        min_value=Decimal("0"),
        max_digits=12,
        decimal_places=2,
    )
    no_four = forms.BooleanField(label=_("No digit 4 (无4)"), required=False)
    sort = forms.ChoiceField(
        label=_("Sort by"),
        required=False,
        choices=[
            ("number", _("Number")),
            ("fee", _("Selection fee, lowest first")),
            ("-fee", _("Selection fee, highest first")),
        ],
    )
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["grade"].choices = [
            ("", _("Any grade")),
            (ORDINARY, _("Ordinary (no selection fee)")),
            *[(g.code, g.name) for g in search_grades()],
        ]

    def clean_pattern(self):
        value = self.cleaned_data["pattern"].strip()
        if not value:
            return None
        try:
            return pattern_to_like(value)
        except InvalidSearch as exc:
            raise forms.ValidationError(exc.message) from None

    def _digits(self, name: str, max_length: int):
        value = self.cleaned_data[name].strip()
        if not value:
            return ""
        try:
            return clean_digits(
                value, max_length=max_length, label=str(self.fields[name].label)
            )
        except InvalidSearch as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_contains(self):
        return self._digits("contains", 10)

    def clean_ends_with(self):
        return self._digits("ends_with", 10)

    def criteria(self) -> SearchCriteria:
        data = self.cleaned_data
        return SearchCriteria(
            pattern=data.get("pattern"),
            contains=data.get("contains") or "",
            ends_with=data.get("ends_with") or "",
            grade=data.get("grade") or "",
            carrier=data.get("carrier") or "",
            no_four=bool(data.get("no_four")),
            max_fee=data.get("max_fee"),
            sort=data.get("sort") or "number",
        )


class HoldForm(forms.Form):
    number = forms.CharField(max_length=40)

    def clean_number(self):
        try:
            return canonicalize_400(self.cleaned_data["number"])
        except InvalidNumber as exc:
            raise forms.ValidationError(exc.message) from None


_SPLIT = re.compile(r"[\n\r,;，；、]+")


class AnswerPhonesField(forms.CharField):
    """Chinese mobile or landline numbers, one per line (or separated by
    commas) → a list of E.164."""

    widget = forms.Textarea(attrs={"rows": 3})

    def clean(self, value):
        value = super().clean(value)
        try:
            return answer_phones_clean(_SPLIT.split(value))
        except PlansError as exc:
            raise forms.ValidationError(exc.message) from None


class CheckoutForm(forms.Form):
    plan = forms.ModelChoiceField(
        label=_("Package"),
        queryset=Plan.objects.filter(is_active=True),
        widget=forms.RadioSelect,
        empty_label=None,
    )
    services = forms.ModelMultipleChoiceField(
        label=_("Value-added services"),
        queryset=ValueAddedService.objects.filter(is_active=True),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    answer_phones = AnswerPhonesField(
        label=_("Answering numbers"),
        help_text=_(
            "Mobile or landline numbers that ring when someone calls your 400 "
            "number, one per line, e.g. 13800138000 or 010-12345678."
        ),
    )

    def __init__(self, *args, refusals: dict[int, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.refusals = refusals or {}

    def clean_plan(self):
        plan = self.cleaned_data["plan"]
        refusal = self.refusals.get(plan.pk)
        if refusal:
            raise forms.ValidationError(refusal)
        return plan


class PlanChangeForm(forms.Form):
    plan = forms.ModelChoiceField(
        label=_("New package"),
        queryset=Plan.objects.filter(is_active=True),
        widget=forms.RadioSelect,
        empty_label=None,
    )

    def __init__(self, *args, refusals: dict[int, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.refusals = refusals or {}

    def clean_plan(self):
        plan = self.cleaned_data["plan"]
        refusal = self.refusals.get(plan.pk)
        if refusal:
            raise forms.ValidationError(refusal)
        return plan


class ServicesChangeForm(forms.Form):
    services = forms.ModelMultipleChoiceField(
        label=_("Value-added services"),
        queryset=ValueAddedService.objects.filter(is_active=True),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )


class AnswerNumbersForm(forms.Form):
    answer_phones = AnswerPhonesField(
        label=_("Answering numbers"),
        help_text=_(
            "Mobile or landline numbers that ring when someone calls your 400 "
            "number, one per line, e.g. 13800138000 or 010-12345678."
        ),
    )


class EndSubscriptionForm(forms.Form):
    confirm = forms.BooleanField(
        label=_(
            "I understand that the number leaves my company and cannot be taken back."
        ),
    )


class ActivationForm(forms.Form):
    """Back office: the first billable day of confirmed numbers."""

    activated_on = forms.DateField(
        label=_("Activation date (first billable day)"),
        # ISO: a browser's date input ignores the localised 2026/11/22.
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
