"""Call detail records (CDRs), their imports and how each call was rated."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Direction(models.TextChoices):
    INBOUND = "inbound", _("Inbound")
    OUTBOUND = "outbound", _("Outbound")


class CallStatus(models.TextChoices):
    ANSWERED = "answered", _("Answered")
    MISSED = "missed", _("Missed")


class Band(models.TextChoices):
    PEAK = "peak", _("Peak")
    OFFPEAK = "offpeak", _("Off-peak")


class CdrImport(models.Model):
    """One carrier file (or API batch) of calls and what became of its rows."""

    class Source(models.TextChoices):
        COMMAND = "command", _("Command line")
        ADMIN = "admin", _("Back-office upload")
        API = "api", _("API")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Done")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Failed")

    agent = models.ForeignKey(
        "accounts.Agent",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cdr_imports",
        verbose_name=_("agent"),
        help_text=_("Empty for imports by a superuser from the command line."),
    )
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    file = models.FileField(_("file"), upload_to="cdr_imports/", blank=True)
    original_name = models.CharField(_("file name"), max_length=255, blank=True)
    encoding = models.CharField(_("encoding"), max_length=32, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    message = models.TextField(_("message"), blank=True)
    total_bytes = models.BigIntegerField(_("size (bytes)"), default=0)
    processed_bytes = models.BigIntegerField(_("bytes read"), default=0)
    rows_read = models.PositiveIntegerField(_("rows read"), default=0)
    imported = models.PositiveIntegerField(_("imported"), default=0)
    duplicates = models.PositiveIntegerField(_("duplicates"), default=0)
    rejected = models.PositiveIntegerField(_("rejected"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    created_at = models.DateTimeField(_("uploaded"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("call import")
        verbose_name_plural = _("call imports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.original_name or f"#{self.pk}"

    @property
    def progress_percent(self) -> int:
        if self.status in (self.Status.DONE, self.Status.REJECTED):
            return 100
        if not self.total_bytes:
            return 0
        return min(99, int(self.processed_bytes * 100 / self.total_bytes))


class CdrImportError(models.Model):
    """A row that was not imported, kept with its line number and reason."""

    cdr_import = models.ForeignKey(
        CdrImport,
        on_delete=models.CASCADE,
        related_name="errors",
        verbose_name=_("call import"),
    )
    line_number = models.PositiveIntegerField(_("line"))
    raw = models.TextField(_("row as received"))
    reason = models.CharField(_("reason"), max_length=300)

    class Meta:
        verbose_name = _("rejected row")
        verbose_name_plural = _("rejected rows")
        ordering = ["cdr_import", "line_number"]

    def __str__(self) -> str:
        return f"{self.line_number}: {self.reason}"


class CallRecord(models.Model):
    """One call, as the carrier reported it and as it was rated.

    The rating columns (band … amount) are filled by the rating engine and
    rewritten when a number's month is re-rated while its invoice is a draft.
    ``amount`` keeps 4 decimals (charged minutes × rate, exact): the invoice
    line rounds the sum once.
    """

    # Unique across all months through CallKey (the table is partitioned by
    # month on PostgreSQL, which enforces uniqueness only within a partition).
    call_id = models.CharField(_("call id"), max_length=64)
    # company, subscription and number lead the composite indexes below, so
    # they need no single-column index of their own (fewer indexes = faster
    # imports). None of the three is a database foreign key: a key check is
    # a trigger per inserted row (4–5 s of a 1,000,000-call import, more
    # than the rating). The import takes them from the subscriptions it
    # validated and locked (company and number are copies of the
    # subscription's); the other side is guarded in the database by a
    # trigger that refuses to delete a subscription, company or number that
    # has calls (migration 0008), and by the ORM (PROTECT).
    company = models.ForeignKey(
        "accounts.Company",
        on_delete=models.PROTECT,
        db_index=False,
        db_constraint=False,
        related_name="calls",
        verbose_name=_("company"),
    )
    subscription = models.ForeignKey(
        "plans.Subscription",
        on_delete=models.PROTECT,
        db_index=False,
        db_constraint=False,
        related_name="calls",
        verbose_name=_("subscription"),
    )
    number = models.ForeignKey(
        "plans.PhoneNumber",
        on_delete=models.PROTECT,
        db_index=False,
        db_constraint=False,
        related_name="calls",
        verbose_name=_("400 number"),
    )
    caller_number = models.CharField(_("caller"), max_length=32, blank=True)
    caller_area = models.CharField(_("caller area"), max_length=64, blank=True)
    answer_number = models.CharField(_("answered by"), max_length=32, blank=True)
    start_time = models.DateTimeField(_("start"))
    # First day of the call's billing month (Asia/Shanghai).
    period = models.DateField(_("billing month"))
    duration_seconds = models.PositiveIntegerField(_("duration (s)"))
    direction = models.CharField(
        _("direction"), max_length=8, choices=Direction.choices
    )
    status = models.CharField(_("result"), max_length=8, choices=CallStatus.choices)

    band = models.CharField(_("band"), max_length=8, choices=Band.choices, blank=True)
    billable_minutes = models.PositiveIntegerField(_("billable minutes"), default=0)
    pool_minutes = models.PositiveIntegerField(_("minutes from the pool"), default=0)
    charged_minutes = models.PositiveIntegerField(_("charged minutes"), default=0)
    rate = models.DecimalField(
        _("rate"), max_digits=8, decimal_places=4, default=Decimal("0")
    )
    amount = models.DecimalField(
        _("amount"), max_digits=14, decimal_places=4, default=Decimal("0")
    )
    rated_at = models.DateTimeField(_("rated"), null=True, blank=True)

    # Set when an issued invoice bills this call. A call whose invoice is
    # issued is frozen: it is never re-rated.
    invoice = models.ForeignKey(
        "billing.Invoice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,  # partial index in Meta: most calls have none
        related_name="calls",
        verbose_name=_("invoice"),
    )
    # Provenance only. Not indexed nor checked by the database: imports are
    # never deleted (the admin refuses it) and no page lists an import's calls.
    cdr_import = models.ForeignKey(
        CdrImport,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_index=False,
        db_constraint=False,
        related_name="calls",
        verbose_name=_("call import"),
    )
    created_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        # On PostgreSQL the table is partitioned by ``period`` (a partition
        # per month, created by billing.partitions; migration 0009).
        ordering = ["start_time", "call_id"]
        indexes = [
            # Rating and the drill-down: a number's calls of a month, in order.
            models.Index(
                fields=["subscription", "period", "start_time", "call_id"],
                name="call_sub_period_order_idx",
            ),
            # A company's month (bills, month-to-date, analytics, exports).
            models.Index(fields=["company", "period"], name="call_company_period_idx"),
            models.Index(
                fields=["invoice"],
                condition=Q(invoice__isnull=False),
                name="call_invoice_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    pool_minutes__lte=models.F("billable_minutes"),
                    charged_minutes__lte=models.F("billable_minutes"),
                ),
                name="call_minutes_within_billable",
            ),
        ]

    def __str__(self) -> str:
        return self.call_id


class CallKey(models.Model):
    """The call id of every stored call, unique across all months.

    The call table is partitioned by month on PostgreSQL, which can enforce
    a unique ``call_id`` only within a partition; this narrow table makes
    imports idempotent across months. Triggers on the call table keep it
    (migration 0009): inserting a call whose id is stored fails like a
    unique constraint would. The import's bulk path, which loads a month
    into a table before attaching it as a partition, fills it itself.
    """

    call_id = models.CharField(_("call id"), max_length=64, primary_key=True)
    period = models.DateField(_("billing month"))

    class Meta:
        verbose_name = _("call id")
        verbose_name_plural = _("call ids")

    def __str__(self) -> str:
        return self.call_id
