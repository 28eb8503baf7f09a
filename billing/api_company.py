"""The read-only company API: invoices, lines, calls, month-to-date, usage.

Authenticated by per-company API keys (``Authorization: Bearer h4c_…``)
that owners create and revoke in the portal. A key sees only its company's
data: any other id is 404. Keys of other kinds (e.g. the agents' CDR push
keys) are left to their own authentication class.
"""

from __future__ import annotations

import datetime as dt

from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import CallRecord, CompanyApiKey, Invoice, InvoiceLine
from billing.models.api_keys_company import KEY_SCHEME, hash_api_key
from billing.selectors import bills as sel
from billing.selectors.month import month_to_date
from billing.selectors.usage import usage_summary

TOUCH_EVERY = dt.timedelta(minutes=1)

# --- authentication -------------------------------------------------------------


class CompanyApiClient:
    """``request.user`` for a request made with a company API key."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, key: CompanyApiKey):
        self.key = key
        self.company = key.company
        self.pk = None

    def __str__(self) -> str:
        return f"api-key:{self.key.prefix}"


class CompanyApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer h4c_<prefix>_<secret>`` (or ``X-Api-Key``)."""

    def authenticate(self, request):
        raw = self._raw_key(request)
        if raw is None:
            return None
        key = (
            CompanyApiKey.objects.select_related("company")
            .filter(key_hash=hash_api_key(raw))
            .first()
        )
        if key is None or key.revoked_at is not None:
            raise AuthenticationFailed(_("Invalid or revoked API key."))
        now = timezone.now()
        if key.last_used_at is None or key.last_used_at < now - TOUCH_EVERY:
            # One write a minute at most, whatever the request rate.
            CompanyApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return CompanyApiClient(key), key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'

    @staticmethod
    def _raw_key(request) -> str | None:
        header = get_authorization_header(request).decode("latin-1").split()
        if len(header) == 2 and header[0].lower() == "bearer":
            raw = header[1]
        else:
            raw = request.META.get("HTTP_X_API_KEY", "")
        if not raw.startswith(KEY_SCHEME + "_"):
            return None
        return raw


class CompanyApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "billing.api_company.CompanyApiKeyAuthentication"
    name = "CompanyApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A company API key (h4c_…), created by the company's "
            "owner in the portal.",
        }


class HasCompanyKey(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, CompanyApiClient)


class CompanyApiView:
    authentication_classes = [CompanyApiKeyAuthentication]
    permission_classes = [HasCompanyKey]

    @property
    def company(self):
        return self.request.user.company


# --- serializers ---------------------------------------------------------------


def _month(value: dt.date | None) -> str | None:
    return f"{value:%Y-%m}" if value else None


class InvoiceSerializer(serializers.ModelSerializer):
    period = serializers.SerializerMethodField()
    paid_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    credited_amount = serializers.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "period",
            "status",
            "total",
            "paid_amount",
            "credited_amount",
            "issued_at",
            "due_date",
            "seller_name",
            "seller_uscc",
            "seller_address",
            "seller_bank",
            "buyer_name",
            "buyer_uscc",
            "buyer_address",
        ]

    def get_period(self, obj) -> str:
        return _month(obj.period)


class LineSerializer(serializers.Serializer):
    """A bill line; the same shape for stored lines and month-to-date lines."""

    number_display = serializers.CharField()
    kind = serializers.CharField()
    description = serializers.CharField()
    usage_period = serializers.SerializerMethodField()
    quantity = serializers.DecimalField(max_digits=14, decimal_places=4)
    unit = serializers.CharField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=4)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    tax_category = serializers.CharField()
    tax_rate = serializers.DecimalField(max_digits=5, decimal_places=4)
    billable_minutes = serializers.IntegerField(allow_null=True)
    pool_minutes = serializers.IntegerField(allow_null=True)
    charged_minutes = serializers.IntegerField(allow_null=True)

    def get_usage_period(self, obj) -> str | None:
        return _month(obj.usage_period)


class InvoiceLineSerializer(LineSerializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()


class VatRowSerializer(serializers.Serializer):
    category = serializers.CharField()
    rate = serializers.DecimalField(max_digits=5, decimal_places=4)
    net = serializers.DecimalField(max_digits=14, decimal_places=2)
    tax = serializers.DecimalField(max_digits=14, decimal_places=2)
    gross = serializers.DecimalField(max_digits=14, decimal_places=2)


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = serializers.SerializerMethodField()
    vat = serializers.SerializerMethodField()

    class Meta(InvoiceSerializer.Meta):
        fields = [*InvoiceSerializer.Meta.fields, "lines", "vat"]

    @extend_schema_field(InvoiceLineSerializer(many=True))
    def get_lines(self, obj):
        return InvoiceLineSerializer(self.context["bill"].lines, many=True).data

    @extend_schema_field(VatRowSerializer(many=True))
    def get_vat(self, obj):
        return VatRowSerializer(self.context["bill"].vat, many=True).data


class CallSerializer(serializers.ModelSerializer):
    caller = serializers.SerializerMethodField()

    class Meta:
        model = CallRecord
        fields = [
            "id",
            "call_id",
            "start_time",
            "caller",
            "caller_area",
            "duration_seconds",
            "direction",
            "status",
            "band",
            "billable_minutes",
            "pool_minutes",
            "charged_minutes",
            "rate",
            "amount",
        ]

    def get_caller(self, obj) -> str:
        """The caller with the middle digits masked (138****8000)."""
        return sel.mask_phone(obj.caller_number)


class PoolSerializer(serializers.Serializer):
    number_display = serializers.CharField()
    plan_name = serializers.CharField()
    is_term = serializers.BooleanField()
    pool_total = serializers.IntegerField()
    used_before = serializers.IntegerField()
    used_this_month = serializers.IntegerField()
    remaining = serializers.IntegerField()
    term_end = serializers.DateField(allow_null=True)


class MonthToDateSerializer(serializers.Serializer):
    period = serializers.SerializerMethodField()
    today = serializers.DateField()
    total_so_far = serializers.DecimalField(max_digits=14, decimal_places=2)
    projected_total = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        help_text="An estimate: fees of the month plus usage so far, plus the "
        "usage of the days to come at the average daily rate so far.",
    )
    lines = LineSerializer(many=True)
    vat = VatRowSerializer(many=True, source="computation.vat")
    pools = PoolSerializer(many=True)

    def get_period(self, obj) -> str:
        return _month(obj.period)


class UsageDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    calls = serializers.IntegerField()
    answered = serializers.IntegerField()
    missed = serializers.IntegerField()
    minutes = serializers.IntegerField()


class UsageAreaSerializer(serializers.Serializer):
    area = serializers.CharField()
    calls = serializers.IntegerField()
    answered = serializers.IntegerField()
    missed = serializers.IntegerField()


class UsageNumberSerializer(serializers.Serializer):
    number = serializers.CharField()
    calls = serializers.IntegerField()
    answered = serializers.IntegerField()
    missed = serializers.IntegerField()
    inbound_minutes = serializers.IntegerField()
    outbound_minutes = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=4)


class UsageSummarySerializer(serializers.Serializer):
    period = serializers.SerializerMethodField()
    calls = serializers.IntegerField()
    answered = serializers.IntegerField()
    missed = serializers.IntegerField()
    miss_rate = serializers.DecimalField(
        max_digits=5, decimal_places=1, allow_null=True, help_text="Percent."
    )
    minutes = serializers.IntegerField()
    days = UsageDaySerializer(many=True)
    areas = UsageAreaSerializer(many=True)
    heat = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="heat[weekday-1][hour]: inbound calls, ISO weekday, Beijing time.",
    )
    numbers = UsageNumberSerializer(many=True)

    def get_period(self, obj) -> str:
        return _month(obj.period)


# --- views -----------------------------------------------------------------------


class InvoiceListView(CompanyApiView, generics.ListAPIView):
    """The company's issued, paid and void invoices, newest first."""

    serializer_class = InvoiceSerializer

    def get_queryset(self):
        return sel.invoices_for(company=self.company)


class InvoiceDetailView(CompanyApiView, generics.RetrieveAPIView):
    """One invoice with its lines and VAT table."""

    serializer_class = InvoiceDetailSerializer
    queryset = Invoice.objects.none()

    def retrieve(self, request, *args, **kwargs):
        invoice = sel.invoice_for(company=self.company, pk=kwargs["pk"])
        bill = sel.invoice_view(company=self.company, invoice=invoice)
        data = InvoiceDetailSerializer(invoice, context={"bill": bill}).data
        return Response(data)


class InvoiceLinesView(CompanyApiView, generics.ListAPIView):
    """The lines of one invoice, in bill order."""

    serializer_class = InvoiceLineSerializer
    pagination_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return InvoiceLine.objects.none()
        invoice = sel.invoice_for(company=self.company, pk=self.kwargs["pk"])
        return sel.invoice_lines_for(company=self.company, invoice=invoice)


class CallCursorPagination(CursorPagination):
    ordering = ("start_time", "call_id")
    page_size = 100
    max_page_size = 1000
    page_size_query_param = "page_size"


class LineCallsView(CompanyApiView, generics.ListAPIView):
    """The calls behind one usage line (cursor-paginated, callers masked)."""

    serializer_class = CallSerializer
    pagination_class = CallCursorPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return CallRecord.objects.none()
        line = sel.line_for(company=self.company, pk=self.kwargs["pk"])
        if not sel.is_usage_line(line):
            raise Http404
        return sel.line_calls(company=self.company, line=line)


class MonthToDateView(CompanyApiView, APIView):
    @extend_schema(
        responses=MonthToDateSerializer,
        description="The running month's bill so far, pools and the projection.",
    )
    def get(self, request):
        data = month_to_date(company=self.company, today=timezone.localdate())
        return Response(MonthToDateSerializer(data).data)


def _period_param(request) -> dt.date:
    raw = request.query_params.get("month")
    if not raw:
        return timezone.localdate().replace(day=1)
    try:
        year, month = raw.split("-")
        return dt.date(int(year), int(month), 1)
    except (TypeError, ValueError):
        raise ValidationError(
            {"month": _("Use the form YYYY-MM, e.g. 2026-03.")}
        ) from None


class UsageSummaryView(CompanyApiView, APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "month",
                OpenApiTypes.STR,
                description="YYYY-MM; the running month when left out.",
            )
        ],
        responses=UsageSummarySerializer,
        description="Calls per day, answered and missed, by area, by hour and "
        "weekday, and minutes by number for one month.",
    )
    def get(self, request):
        summary = usage_summary(company=self.company, period=_period_param(request))
        return Response(UsageSummarySerializer(summary).data)
