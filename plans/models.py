"""The catalog (plans, services, vanity grades, holidays), the number
inventory, holds and subscriptions.

Prices are VAT-inclusive CNY. Amounts keep 2 decimals, per-minute rates 4.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

MONEY = {"max_digits": 12, "decimal_places": 2}
RATE = {"max_digits": 8, "decimal_places": 4}


class LocalizedNameMixin:
    """Catalog rows carry a Chinese and an English name; show the active one."""

    name_zh: str
    name_en: str

    @property
    def name(self) -> str:
        lang = get_language() or "zh-hans"
        if lang.startswith("en") and self.name_en:
            return self.name_en
        return self.name_zh or self.name_en


class TaxCategory(models.TextChoices):
    BASIC = "basic", _("Basic telecom services")
    VALUE_ADDED = "value_added", _("Value-added telecom services")


class TaxRate(models.Model):
    """VAT rate per tax category; a change of law is a data change."""

    category = models.CharField(
        _("category"), max_length=16, choices=TaxCategory.choices, unique=True
    )
    rate = models.DecimalField(
        _("rate"),
        max_digits=5,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("e.g. 0.0900 for 9%"),
    )

    class Meta:
        verbose_name = _("tax rate")
        verbose_name_plural = _("tax rates")

    def __str__(self) -> str:
        return f"{self.get_category_display()} {self.rate:%}"


class CatalogSettings(models.Model):
    """Catalog-wide values: one row (pk=1)."""

    extra_answer_number_fee = models.DecimalField(
        _("monthly fee per extra answering number"), default=Decimal("0"), **MONEY
    )
    peak_start = models.TimeField(_("peak starts"), default="08:00")
    peak_end = models.TimeField(_("peak ends"), default="20:00")
    # ISO weekdays (1 = Monday … 7 = Sunday) that have peak hours.
    peak_weekdays = models.JSONField(_("peak weekdays"), default=list)

    class Meta:
        verbose_name = _("catalog settings")
        verbose_name_plural = _("catalog settings")

    def __str__(self) -> str:
        return str(_("Catalog settings"))

    @classmethod
    def load(cls) -> "CatalogSettings":
        obj, _created = cls.objects.get_or_create(
            pk=1, defaults={"peak_weekdays": [1, 2, 3, 4, 5]}
        )
        return obj


class Holiday(models.Model):
    """A day that overrides the weekday: 法定节假日 or 调休上班日."""

    class Kind(models.TextChoices):
        HOLIDAY = "holiday", _("Statutory holiday (off-peak all day)")
        WORKDAY = "workday", _("Make-up working day (a weekday)")

    date = models.DateField(_("date"), unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("holiday")
        verbose_name_plural = _("holiday calendar")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class ValueAddedService(LocalizedNameMixin, models.Model):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    description_zh = models.TextField(_("description (Chinese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    monthly_fee = models.DecimalField(
        _("monthly fee"), validators=[MinValueValidator(Decimal("0"))], **MONEY
    )
    is_active = models.BooleanField(_("active"), default=True)
    sort_order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("value-added service")
        verbose_name_plural = _("value-added services")
        ordering = ["sort_order", "code"]

    def __str__(self) -> str:
        return self.name


class Plan(LocalizedNameMixin, models.Model):
    """A package (套餐): monthly (T = 1) or prepaid for a term (T = 12/24/36)."""

    class Term(models.IntegerChoices):
        MONTHLY = 1, _("Monthly")
        ONE_YEAR = 12, _("1 year")
        TWO_YEARS = 24, _("2 years")
        THREE_YEARS = 36, _("3 years")

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    description_zh = models.TextField(_("description (Chinese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    term_months = models.PositiveSmallIntegerField(
        _("term (months)"), choices=Term.choices
    )
    price = models.DecimalField(
        _("price per term"), validators=[MinValueValidator(Decimal("0"))], **MONEY
    )
    included_minutes = models.PositiveIntegerField(_("included minutes for the term"))
    rate_inbound_peak = models.DecimalField(
        _("inbound peak rate (per minute)"),
        validators=[MinValueValidator(Decimal("0"))],
        **RATE,
    )
    rate_inbound_offpeak = models.DecimalField(
        _("inbound off-peak rate (per minute)"),
        validators=[MinValueValidator(Decimal("0"))],
        **RATE,
    )
    rate_outbound = models.DecimalField(
        _("outbound rate (per minute)"),
        validators=[MinValueValidator(Decimal("0"))],
        **RATE,
    )
    included_answer_numbers = models.PositiveSmallIntegerField(
        _("included answering numbers"), default=1
    )
    included_services = models.ManyToManyField(
        ValueAddedService,
        blank=True,
        related_name="included_in_plans",
        verbose_name=_("included value-added services"),
    )
    is_active = models.BooleanField(_("active"), default=True)
    sort_order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("package")
        verbose_name_plural = _("packages")
        ordering = ["sort_order", "term_months", "price"]
        constraints = [
            models.CheckConstraint(
                condition=Q(term_months__in=[1, 12, 24, 36]),
                name="plan_term_months_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_term_plan(self) -> bool:
        return self.term_months > 1

    @property
    def monthly_equivalent(self) -> Decimal:
        """P / T, unrounded: compared with a vanity grade's ``min_monthly``."""
        return self.price / self.term_months


class Carrier(models.TextChoices):
    UNICOM = "unicom", _("China Unicom")
    MOBILE = "mobile", _("China Mobile")
    TELECOM = "telecom", _("China Telecom")


class CarrierBlock(models.Model):
    """Which carrier runs a block of 400 numbers, e.g. 4008 → China Telecom."""

    prefix = models.CharField(
        _("prefix"),
        max_length=10,
        unique=True,
        validators=[
            RegexValidator(
                r"^400[0-9]{0,7}$",
                _("A block prefix is 3 to 10 digits starting with 400."),
            )
        ],
    )
    carrier = models.CharField(_("carrier"), max_length=16, choices=Carrier.choices)

    class Meta:
        verbose_name = _("carrier block")
        verbose_name_plural = _("carrier blocks")
        ordering = ["prefix"]

    def __str__(self) -> str:
        return f"{self.prefix} → {self.get_carrier_display()}"


class VanityGrade(LocalizedNameMixin, models.Model):
    """A tier of premium numbers (靓号). Grading rules are data (``rules``)."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    selection_fee = models.DecimalField(
        _("selection fee"), validators=[MinValueValidator(Decimal("0"))], **MONEY
    )
    min_monthly = models.DecimalField(
        _("minimum plan per month"),
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("The plan's price divided by its term must be at least this."),
        **MONEY,
    )
    priority = models.PositiveIntegerField(
        _("priority"), help_text=_("The highest-priority matching grade wins.")
    )
    rules = models.JSONField(_("rules"), default=list)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("vanity grade")
        verbose_name_plural = _("vanity grades")
        ordering = ["-priority"]

    def __str__(self) -> str:
        return self.name


class PhoneNumber(models.Model):
    """A 400 number in the inventory. ``number`` is the canonical 10 digits."""

    class Status(models.TextChoices):
        AVAILABLE = "available", _("Available")
        HELD = "held", _("Held")
        SUBSCRIBED = "subscribed", _("In service")
        QUARANTINE = "quarantine", _("Resting after release")

    number = models.CharField(_("400 number"), max_length=10, unique=True)
    carrier = models.CharField(_("carrier"), max_length=16, choices=Carrier.choices)
    grade = models.ForeignKey(
        VanityGrade,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="numbers",
        verbose_name=_("vanity grade"),
    )
    grade_reason = models.CharField(_("why this grade"), max_length=200, blank=True)
    # Copied from the grade (0 for ordinary numbers) so search can filter and
    # sort by fee on one indexed table; kept in step by the grading services.
    selection_fee = models.DecimalField(
        _("selection fee"), default=Decimal("0"), **MONEY
    )
    # True when one of the 7 digits after 400 is a 4 (the 无4 search filter).
    has_four = models.BooleanField(_("has a 4"), default=False)
    # Indexed only where it is selective (see Meta): nearly every row is
    # available, and a plain index on status costs every bulk import.
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=Status.choices,
        default=Status.AVAILABLE,
    )
    quarantine_until = models.DateField(_("resting until"), null=True, blank=True)
    created_at = models.DateTimeField(_("added"), auto_now_add=True)

    class Meta:
        verbose_name = _("400 number")
        verbose_name_plural = _("400 numbers")
        ordering = ["number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(number__regex=r"^400[0-9]{7}$"),
                name="phonenumber_canonical_400",
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "selection_fee", "number"],
                name="phonenumber_status_fee_idx",
            ),
            # Held, sold and resting numbers: a small share of the stock.
            models.Index(
                fields=["status", "quarantine_until"],
                condition=~Q(status="available"),
                name="phonenumber_not_in_stock_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.display

    @property
    def display(self) -> str:
        n = self.number
        return f"{n[:3]}-{n[3:6]}-{n[6:]}"


class Hold(models.Model):
    """A company's reservation of a number for a limited time."""

    number = models.ForeignKey(
        PhoneNumber,
        on_delete=models.CASCADE,
        related_name="holds",
        verbose_name=_("400 number"),
    )
    company = models.ForeignKey(
        "accounts.Company",
        on_delete=models.CASCADE,
        related_name="holds",
        verbose_name=_("company"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("held by"),
    )
    created_at = models.DateTimeField(_("held at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    # A hold ends by being released (expiry, cancel) or turned into a
    # subscription; an open hold has neither.
    released_at = models.DateTimeField(_("released"), null=True, blank=True)
    converted_at = models.DateTimeField(_("confirmed"), null=True, blank=True)

    class Meta:
        verbose_name = _("hold")
        verbose_name_plural = _("holds")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["number"],
                condition=Q(released_at__isnull=True, converted_at__isnull=True),
                name="hold_one_open_per_number",
            ),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=Q(released_at__isnull=True, converted_at__isnull=True),
                name="hold_open_expiry_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} → {self.company}"


class Subscription(models.Model):
    """A company's 400 number in service under a plan.

    The plan, services and answering numbers in force on a day are kept as
    dated periods (``plan_periods``, ``service_periods``, ``answer_numbers``),
    so any month can be billed again exactly as it was.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting activation")
        ACTIVE = "active", _("Active")
        ENDED = "ended", _("Ended")
        CANCELLED = "cancelled", _("Cancelled before activation")

    company = models.ForeignKey(
        "accounts.Company",
        on_delete=models.PROTECT,
        related_name="subscriptions",
        verbose_name=_("company"),
    )
    number = models.ForeignKey(
        PhoneNumber,
        on_delete=models.PROTECT,
        related_name="subscriptions",
        verbose_name=_("400 number"),
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=Status.choices,
        default=Status.PENDING,
        db_index=True,
    )
    # The vanity selection fee agreed at checkout, billed once on activation.
    selection_fee = models.DecimalField(
        _("selection fee"), default=Decimal("0"), **MONEY
    )
    grade = models.ForeignKey(
        VanityGrade,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("vanity grade at checkout"),
    )
    confirmed_at = models.DateTimeField(_("confirmed"), auto_now_add=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("confirmed by"),
    )
    activated_on = models.DateField(
        _("activation date"),
        null=True,
        blank=True,
        help_text=_("The first billable day."),
    )
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("activated by"),
    )
    ended_on = models.DateField(_("last day of service"), null=True, blank=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-confirmed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["number"],
                condition=Q(status__in=["pending", "active"]),
                name="subscription_one_live_per_number",
            ),
            models.CheckConstraint(
                condition=Q(ended_on__isnull=True)
                | Q(activated_on__isnull=False, ended_on__gte=models.F("activated_on")),
                name="subscription_ends_after_activation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.company})"


class SubscriptionPlanPeriod(models.Model):
    """The plan in force from ``start_date`` to ``end_date`` (inclusive).

    The first period starts on the activation date; a plan change ends the
    current period on the last day of a month and starts the next one on the
    1st. A term plan's terms run back to back from ``start_date``.
    """

    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.CASCADE,
        related_name="plan_periods",
        verbose_name=_("subscription"),
    )
    plan = models.ForeignKey(
        Plan,
        on_delete=models.PROTECT,
        related_name="subscription_periods",
        verbose_name=_("package"),
    )
    start_date = models.DateField(_("from"), null=True, blank=True)
    end_date = models.DateField(_("until"), null=True, blank=True)
    created_at = models.DateTimeField(_("chosen at"), auto_now_add=True)

    class Meta:
        verbose_name = _("package period")
        verbose_name_plural = _("package periods")
        ordering = ["subscription", "start_date"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True)
                | Q(start_date__isnull=False, end_date__gte=models.F("start_date")),
                name="planperiod_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan} {self.start_date}–{self.end_date or ''}"


class SubscriptionServicePeriod(models.Model):
    """A value-added service switched on for a subscription, with dates."""

    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.CASCADE,
        related_name="service_periods",
        verbose_name=_("subscription"),
    )
    service = models.ForeignKey(
        ValueAddedService,
        on_delete=models.PROTECT,
        related_name="subscription_periods",
        verbose_name=_("value-added service"),
    )
    start_date = models.DateField(_("from"), null=True, blank=True)
    end_date = models.DateField(_("until"), null=True, blank=True)

    class Meta:
        verbose_name = _("service period")
        verbose_name_plural = _("service periods")
        ordering = ["subscription", "service", "start_date"]

    def __str__(self) -> str:
        return f"{self.service} {self.start_date}–{self.end_date or ''}"


class AnswerNumber(models.Model):
    """A phone bound to the 400 number (接听号码), in E.164."""

    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.CASCADE,
        related_name="answer_numbers",
        verbose_name=_("subscription"),
    )
    phone = models.CharField(_("answering number"), max_length=32)
    start_date = models.DateField(_("from"), null=True, blank=True)
    end_date = models.DateField(_("until"), null=True, blank=True)

    class Meta:
        verbose_name = _("answering number")
        verbose_name_plural = _("answering numbers")
        ordering = ["subscription", "start_date", "pk"]

    def __str__(self) -> str:
        return self.phone
