"""Invoices, their lines, credit notes, payments and email deliveries.

An invoice is built as a draft (no number, regenerated freely), then issued:
it gets a gap-free yearly number, its lines are frozen and the buyer's and
seller's details are copied onto it. An issued invoice never changes; the only
corrections are voiding it and credit notes.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

MONEY = {"max_digits": 14, "decimal_places": 2}

# What may still change on an issued invoice: the status moving on to paid or
# void, and the fields that record a voiding. Everything else is frozen (the
# model layer below and, on PostgreSQL, a trigger enforce it).
TRANSITION_FIELDS = frozenset({"status", "voided_at", "void_reason"})
ALLOWED_TRANSITIONS = {("issued", "paid"), ("issued", "void")}


class FrozenInvoiceError(Exception):
    """An issued invoice (or one of its lines) was about to be changed."""


class InvoiceQuerySet(models.QuerySet):
    def update(self, **kwargs):
        frozen = self.exclude(status="draft")
        if frozen.exists():
            if set(kwargs) - TRANSITION_FIELDS:
                raise FrozenInvoiceError("issued invoices cannot be changed")
            new = kwargs.get("status")
            if new is not None and (
                new not in ("paid", "void") or frozen.exclude(status="issued").exists()
            ):
                raise FrozenInvoiceError(f"an issued invoice cannot become {new}")
        return super().update(**kwargs)

    update.queryset_only = True

    def delete(self):
        if self.exclude(status="draft").exists():
            raise FrozenInvoiceError("issued invoices cannot be deleted")
        return super().delete()

    delete.queryset_only = True


class InvoiceLineQuerySet(models.QuerySet):
    def _refuse_frozen(self, what: str) -> None:
        if self.exclude(invoice__status="draft").exists():
            raise FrozenInvoiceError(f"lines of an issued invoice cannot be {what}")

    def update(self, **kwargs):
        self._refuse_frozen("changed")
        return super().update(**kwargs)

    update.queryset_only = True

    def delete(self):
        self._refuse_frozen("deleted")
        return super().delete()

    delete.queryset_only = True

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        ids = {o.invoice_id for o in objs}
        if ids and Invoice.objects.filter(pk__in=ids).exclude(status="draft").exists():
            raise FrozenInvoiceError("lines cannot be added to an issued invoice")
        return super().bulk_create(objs, *args, **kwargs)


class DocumentSequence(models.Model):
    """The last number used per document kind and year (row-locked to issue)."""

    kind = models.CharField(max_length=8)  # "HL" invoices, "CN" credit notes
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("document sequence")
        verbose_name_plural = _("document sequences")
        constraints = [
            models.UniqueConstraint(fields=["kind", "year"], name="docseq_kind_year")
        ]

    def __str__(self) -> str:
        return f"{self.kind}-{self.year}: {self.last}"


class Invoice(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ISSUED = "issued", _("Issued")
        PAID = "paid", _("Paid")
        VOID = "void", _("Void")

    company = models.ForeignKey(
        "accounts.Company",
        on_delete=models.PROTECT,
        related_name="invoices",
        verbose_name=_("company"),
    )
    # First day of the billing month (Asia/Shanghai).
    period = models.DateField(_("billing month"))
    status = models.CharField(
        _("status"),
        max_length=8,
        choices=Status.choices,
        default=Status.DRAFT,
        db_index=True,
    )
    number = models.CharField(
        _("invoice number"), max_length=20, unique=True, null=True, blank=True
    )
    total = models.DecimalField(_("total"), default=Decimal("0"), **MONEY)
    # Why a draft was held back from issuing (sanity bound), for agent staff.
    warning = models.CharField(_("warning"), max_length=300, blank=True)
    generated_at = models.DateTimeField(_("generated"), null=True, blank=True)
    issued_at = models.DateTimeField(_("issued"), null=True, blank=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("issued by"),
    )
    due_date = models.DateField(_("due"), null=True, blank=True)
    voided_at = models.DateTimeField(_("voided"), null=True, blank=True)
    void_reason = models.CharField(_("reason for voiding"), max_length=300, blank=True)

    # Copied on issue; an issued invoice never reads them live.
    seller_name = models.CharField(_("seller"), max_length=200, blank=True)
    seller_uscc = models.CharField(_("seller tax id"), max_length=18, blank=True)
    seller_address = models.CharField(_("seller address"), max_length=300, blank=True)
    seller_bank = models.CharField(_("seller bank"), max_length=300, blank=True)
    buyer_name = models.CharField(_("buyer"), max_length=200, blank=True)
    buyer_uscc = models.CharField(_("buyer tax id"), max_length=18, blank=True)
    buyer_address = models.CharField(_("buyer address"), max_length=300, blank=True)
    buyer_email = models.EmailField(_("billing email"), blank=True)
    language = models.CharField(_("language"), max_length=10, blank=True)

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-period", "company"]
        base_manager_name = "objects"
        constraints = [
            # A voided invoice steps aside: the month can be billed again.
            models.UniqueConstraint(
                fields=["company", "period"],
                condition=~Q(status="void"),
                name="invoice_one_live_per_company_month",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(number__isnull=False),
                name="invoice_issued_has_number",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"{self.company} {self.period:%Y-%m}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            self._refuse_frozen_change(kwargs.get("update_fields"))
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        try:
            return reverse("billing:invoice_detail", kwargs={"pk": self.pk})
        except NoReverseMatch:  # the bill pages are not wired (yet)
            return f"/billing/invoices/{self.pk}/"

    def delete(self, *args, **kwargs):
        stored = Invoice.objects.filter(pk=self.pk).values_list("status", flat=True)
        if any(s != self.Status.DRAFT for s in stored):
            raise FrozenInvoiceError("issued invoices cannot be deleted")
        return super().delete(*args, **kwargs)

    @property
    def is_frozen(self) -> bool:
        return self.status != self.Status.DRAFT

    def _refuse_frozen_change(self, update_fields) -> None:
        stored = (
            Invoice.objects.filter(pk=self.pk)
            .values("status", *[f.attname for f in self._meta.concrete_fields])
            .first()
        )
        if stored is None or stored["status"] == self.Status.DRAFT:
            return
        changed = {
            f.name
            for f in self._meta.concrete_fields
            if getattr(self, f.attname) != stored[f.attname]
            and (update_fields is None or f.name in update_fields)
        }
        if changed - TRANSITION_FIELDS:
            raise FrozenInvoiceError(
                "issued invoices cannot be changed: " + ", ".join(sorted(changed))
            )
        if "status" in changed and (
            (stored["status"], self.status) not in ALLOWED_TRANSITIONS
        ):
            raise FrozenInvoiceError(
                f"an invoice cannot go from {stored['status']} to {self.status}"
            )


class InvoiceLine(models.Model):
    """One line: ``amount = round_half_up(quantity × unit_price, 0.01)``."""

    class Kind(models.TextChoices):
        PLAN_FEE = "plan_fee", _("Package fee")
        TERM_PRICE = "term_price", _("Term package price")
        SERVICE = "service", _("Value-added service")
        EXTRA_ANSWER = "extra_answer", _("Extra answering numbers")
        SELECTION_FEE = "selection_fee", _("Vanity number selection fee")
        INBOUND_PEAK = "inbound_peak", _("Inbound calls, peak")
        INBOUND_OFFPEAK = "inbound_offpeak", _("Inbound calls, off-peak")
        OUTBOUND = "outbound", _("Outbound calls")

    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.CASCADE,
        related_name="lines",
        verbose_name=_("invoice"),
    )
    subscription = models.ForeignKey(
        "plans.Subscription",
        on_delete=models.PROTECT,
        related_name="invoice_lines",
        verbose_name=_("subscription"),
    )
    number_display = models.CharField(_("400 number"), max_length=12)
    position = models.PositiveIntegerField(_("position"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    # The month whose usage this line bills: the invoice's month, or an earlier
    # one for late calls ("late calls from YYYY-MM").
    usage_period = models.DateField(_("usage month"), null=True, blank=True)
    description = models.CharField(_("description"), max_length=300)
    tax_category = models.CharField(_("tax category"), max_length=16)
    tax_rate = models.DecimalField(_("tax rate"), max_digits=5, decimal_places=4)
    quantity = models.DecimalField(_("quantity"), max_digits=14, decimal_places=4)
    unit = models.CharField(_("unit"), max_length=20)
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=4)
    amount = models.DecimalField(_("amount"), **MONEY)
    # Usage lines: the arithmetic the customer can follow.
    billable_minutes = models.PositiveIntegerField(
        _("billable minutes"), null=True, blank=True
    )
    pool_minutes = models.PositiveIntegerField(
        _("minutes from the pool"), null=True, blank=True
    )
    charged_minutes = models.PositiveIntegerField(
        _("charged minutes"), null=True, blank=True
    )
    period_start = models.DateField(_("from"), null=True, blank=True)
    period_end = models.DateField(_("until"), null=True, blank=True)

    objects = InvoiceLineQuerySet.as_manager()

    class Meta:
        verbose_name = _("invoice line")
        verbose_name_plural = _("invoice lines")
        ordering = ["invoice", "position"]
        base_manager_name = "objects"
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "position"], name="invoiceline_position"
            )
        ]

    def __str__(self) -> str:
        return self.description

    def save(self, *args, **kwargs):
        self._refuse_if_frozen("changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._refuse_if_frozen("deleted")
        return super().delete(*args, **kwargs)

    def _refuse_if_frozen(self, what: str) -> None:
        ids = {self.invoice_id}
        if self.pk is not None:
            # A line moved to another invoice counts for both.
            ids |= set(
                InvoiceLine.objects.filter(pk=self.pk).values_list(
                    "invoice_id", flat=True
                )
            )
        if Invoice.objects.filter(pk__in=ids).exclude(status="draft").exists():
            raise FrozenInvoiceError(f"lines of an issued invoice cannot be {what}")


class CreditNote(models.Model):
    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        related_name="credit_notes",
        verbose_name=_("invoice"),
    )
    number = models.CharField(_("credit note number"), max_length=20, unique=True)
    amount = models.DecimalField(_("amount"), **MONEY)
    reason = models.CharField(_("reason"), max_length=300)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("created by"),
    )

    class Meta:
        verbose_name = _("credit note")
        verbose_name_plural = _("credit notes")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="creditnote_amount_positive"
            )
        ]

    def __str__(self) -> str:
        return self.number


class Payment(models.Model):
    class Method(models.TextChoices):
        BANK_TRANSFER = "bank_transfer", _("Bank transfer (对公转账)")
        ALIPAY = "alipay", _("Alipay")
        WECHAT = "wechat", _("WeChat Pay")
        OTHER = "other", _("Other")

    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        related_name="payments",
        verbose_name=_("invoice"),
    )
    paid_on = models.DateField(_("paid on"))
    method = models.CharField(_("method"), max_length=16, choices=Method.choices)
    reference = models.CharField(_("reference"), max_length=100, blank=True)
    amount = models.DecimalField(_("amount"), **MONEY)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    recorded_at = models.DateTimeField(_("recorded"), auto_now_add=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-paid_on"]

    def __str__(self) -> str:
        return f"{self.invoice} {self.amount}"


class InvoiceEmail(models.Model):
    """One sending of an issued invoice; each attempt is kept."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to send")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed, will retry")

    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        related_name="emails",
        verbose_name=_("invoice"),
    )
    # "initial" for the one automatic sending; "resend-<n>" when staff resend.
    purpose = models.CharField(_("purpose"), max_length=20, default="initial")
    to = models.EmailField(_("to"))
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.JSONField(_("attempts"), default=list)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    # Set by the worker that claimed the sending (a conditional update), so
    # two deliveries of the task never send twice.
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )

    class Meta:
        verbose_name = _("invoice email")
        verbose_name_plural = _("invoice emails")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "purpose"], name="invoiceemail_once_per_purpose"
            )
        ]

    def __str__(self) -> str:
        return f"{self.invoice} → {self.to}"


class CloseRun(models.Model):
    """One monthly close of an agent's companies (beat, admin or command).

    Every company of the run has a ``CloseRunItem``; the progress page counts
    them. A company's task is idempotent, so a redelivered task only rewrites
    its own item.
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")

    period = models.DateField(_("billing month"))
    agent = models.ForeignKey(
        "accounts.Agent",
        on_delete=models.CASCADE,
        related_name="close_runs",
        verbose_name=_("agent"),
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("started by"),
        help_text=_("Empty when the monthly schedule started it."),
    )
    issue = models.BooleanField(
        _("issue automatically"),
        default=False,
        help_text=_("Issue each invoice that passes the sanity check."),
    )
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.RUNNING
    )
    companies_total = models.PositiveIntegerField(_("companies"), default=0)
    started_at = models.DateTimeField(_("started"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("monthly close")
        verbose_name_plural = _("monthly closes")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.agent} {self.period:%Y-%m}"


class CloseRunItem(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        DRAFT = "draft", _("Draft built")
        ISSUED = "issued", _("Issued")
        HELD = "held", _("Held for review")
        SKIPPED = "skipped", _("Nothing to bill")
        FAILED = "failed", _("Failed")

    run = models.ForeignKey(
        CloseRun,
        on_delete=models.CASCADE,
        related_name="items",
        verbose_name=_("monthly close"),
    )
    company = models.ForeignKey(
        "accounts.Company",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("company"),
    )
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.PENDING
    )
    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("invoice"),
    )
    error = models.CharField(_("error"), max_length=300, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("company in a close")
        verbose_name_plural = _("companies in a close")
        ordering = ["run", "company"]
        constraints = [
            models.UniqueConstraint(fields=["run", "company"], name="closeitem_once")
        ]
        indexes = [models.Index(fields=["run", "status"], name="closeitem_run_status")]

    def __str__(self) -> str:
        return f"{self.run}: {self.company}"
