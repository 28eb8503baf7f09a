"""Back office for invoices and the monthly close (imported by billing/admin.py).

Agent staff see their own agent's invoices only (``AgentScopedAdmin``). An
invoice is never edited here: drafts are rebuilt by the close, issued ones are
frozen. The corrections are actions that call the services: issue, void (with
a reason), mark paid, credit note, resend the email.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Q
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin_base import AgentScopedAdmin, AgentScopedInline, is_agent_staff
from accounts.models import Agent
from billing.models import (
    CloseRun,
    CreditNote,
    Invoice,
    InvoiceEmail,
    InvoiceLine,
    Payment,
)
from billing.services import invoices as services


def _admin_link(obj, text=None):
    if obj is None:
        return "—"
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text or str(obj))


# --- forms of the actions -----------------------------------------------------


class VoidForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for voiding"), max_length=300, widget=forms.Textarea
    )


class PaymentForm(forms.Form):
    paid_on = forms.DateField(label=_("Paid on"), initial=timezone.localdate)
    method = forms.ChoiceField(label=_("Method"), choices=Payment.Method.choices)
    reference = forms.CharField(label=_("Reference"), max_length=100, required=False)
    amount = forms.DecimalField(
        label=_("Amount"),
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        help_text=_("Leave empty for the whole amount due."),
    )


class CreditNoteForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount"), max_digits=14, decimal_places=2, min_value=Decimal("0.01")
    )
    reason = forms.CharField(label=_("Reason"), max_length=300, widget=forms.Textarea)


class CloseForm(forms.Form):
    period = forms.DateField(
        label=_("Billing month"),
        input_formats=["%Y-%m"],
        help_text=_("As YYYY-MM, e.g. 2026-03."),
        widget=forms.DateInput(format="%Y-%m", attrs={"placeholder": "2026-03"}),
    )
    agent = forms.ModelChoiceField(
        label=_("Agent"), queryset=Agent.objects.all(), required=False
    )
    issue = forms.BooleanField(
        label=_("Issue each invoice that passes the sanity check"), required=False
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None and not user.is_superuser:
            del self.fields["agent"]
        else:
            self.fields["agent"].required = True


# --- invoices -----------------------------------------------------------------


class _InvoiceRecordInline(AgentScopedInline, admin.TabularInline):
    """What an invoice carries (lines, credit notes, payments, emails): shown,
    never edited here — each has its own action."""

    agent_path = "invoice__company__agent"
    staff_actions = frozenset({"view"})
    can_delete = False
    extra = 0
    max_num = 0

    def get_readonly_fields(self, request, obj=None):
        return self.fields


class InvoiceLineInline(_InvoiceRecordInline):
    model = InvoiceLine
    fields = (
        "position",
        "number_display",
        "kind",
        "description",
        "quantity",
        "unit_price",
        "amount",
        "tax_rate",
        "billable_minutes",
        "pool_minutes",
        "charged_minutes",
    )
    ordering = ("position",)

    def has_change_permission(self, request, obj=None):
        return False


class CreditNoteInline(_InvoiceRecordInline):
    model = CreditNote
    fields = ("number", "amount", "reason", "created_at", "created_by")


class PaymentInline(_InvoiceRecordInline):
    model = Payment
    fields = ("paid_on", "method", "reference", "amount", "recorded_by")


class InvoiceEmailInline(_InvoiceRecordInline):
    model = InvoiceEmail
    fields = ("purpose", "to", "status", "sent_at", "attempt_log")

    @admin.display(description=_("attempts"))
    def attempt_log(self, obj):
        return "; ".join(
            f"{a.get('at', '')[:19]} {a.get('result', '')} {a.get('error', '')}".strip()
            for a in obj.attempts
        )


class EmailStateFilter(admin.SimpleListFilter):
    """Which invoices have an email that failed (to resend) or is not sent yet."""

    title = _("email")
    parameter_name = "email"

    def lookups(self, request, model_admin):
        return [
            ("failed", _("Failed")),
            ("unsent", _("Not sent yet")),
        ]

    def queryset(self, request, queryset):
        states = {
            "failed": [InvoiceEmail.Status.FAILED],
            "unsent": [InvoiceEmail.Status.PENDING, InvoiceEmail.Status.SENDING],
        }.get(self.value())
        if states is None:
            return queryset
        return queryset.filter(
            Exists(
                InvoiceEmail.objects.filter(invoice=OuterRef("pk"), status__in=states)
            )
        )


class InvoiceAdmin(AgentScopedAdmin):
    agent_path = "company__agent"
    staff_actions = frozenset({"view", "change"})
    list_display = (
        "__str__",
        "company_link",
        "period_month",
        "status",
        "total",
        "due_date",
        "warning",
    )
    list_filter = ("status", "period", EmailStateFilter)
    search_fields = (
        "company__name",
        "number",
        "lines__number_display",
        "lines__subscription__number__number",
    )
    list_select_related = ("company",)
    ordering = ("-period", "company__name")
    inlines = [InvoiceLineInline, CreditNoteInline, PaymentInline, InvoiceEmailInline]
    actions = [
        "issue_selected",
        "issue_selected_anyway",
        "void_selected",
        "mark_paid",
        "create_credit_note",
        "resend_email",
    ]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "company_link",
                    "period",
                    "status",
                    "number",
                    "total",
                    "remaining",
                    "warning",
                    "pdf_link",
                )
            },
        ),
        (
            _("Dates"),
            {
                "fields": (
                    "generated_at",
                    "issued_at",
                    "issued_by",
                    "due_date",
                    "voided_at",
                    "void_reason",
                )
            },
        ),
        (
            _("Seller and buyer (copied on issue)"),
            {
                "fields": (
                    "seller_name",
                    "seller_uscc",
                    "seller_address",
                    "seller_bank",
                    "buyer_name",
                    "buyer_uscc",
                    "buyer_address",
                    "buyer_email",
                    "language",
                )
            },
        ),
    )
    readonly_fields = (
        "company_link",
        "period",
        "status",
        "number",
        "total",
        "remaining",
        "warning",
        "pdf_link",
        "generated_at",
        "issued_at",
        "issued_by",
        "due_date",
        "voided_at",
        "void_reason",
        "seller_name",
        "seller_uscc",
        "seller_address",
        "seller_bank",
        "buyer_name",
        "buyer_uscc",
        "buyer_address",
        "buyer_email",
        "language",
    )

    def get_search_results(self, request, queryset, search_term):
        # A 400 number finds its bills however it is typed (400-810-0001).
        from plans.numbers import InvalidNumber, canonicalize_400

        with contextlib.suppress(InvalidNumber):
            search_term = canonicalize_400(search_term)
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request, *args):
        return False  # invoices come from the close

    def has_change_permission(self, request, obj=None):
        # The page of an invoice is read-only; actions act on the list.
        if obj is not None:
            return False
        return super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False  # drafts are rebuilt, issued invoices are kept

    def get_urls(self):
        return [
            path(
                "<int:pk>/pdf/",
                self.admin_site.admin_view(self.pdf_view),
                name="billing_invoice_pdf",
            ),
            *super().get_urls(),
        ]

    def pdf_view(self, request, pk):
        from billing.pdf import invoice_pdf, invoice_pdf_filename

        invoice = self.get_queryset(request).filter(pk=pk).first()
        if invoice is None or not self.has_view_permission(request, invoice):
            raise Http404
        response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
        response["Content-Disposition"] = (
            f'inline; filename="{invoice_pdf_filename(invoice)}"'
        )
        return response

    @admin.display(description=_("company"), ordering="company__name")
    def company_link(self, obj):
        return _admin_link(obj.company)

    @admin.display(description=_("billing month"), ordering="period")
    def period_month(self, obj):
        return f"{obj.period:%Y-%m}"

    @admin.display(description=_("remaining after credit notes"))
    def remaining(self, obj):
        return services.invoice_remaining(obj)

    @admin.display(description=_("PDF"))
    def pdf_link(self, obj):
        url = reverse("admin:billing_invoice_pdf", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download the PDF"))

    # -- actions ---------------------------------------------------------------

    def _issue(self, request, queryset, *, force: bool):
        issued, held, skipped = 0, [], 0
        for invoice in queryset.order_by("pk"):
            if invoice.status != Invoice.Status.DRAFT:
                skipped += 1
                continue
            result = services.invoice_issue(
                invoice=invoice, by=request.user, force=force
            )
            if result.status == Invoice.Status.DRAFT:
                held.append(result)
            else:
                issued += 1
        if issued:
            self.message_user(
                request,
                ngettext(
                    "%(count)d invoice issued; it is emailed to the company.",
                    "%(count)d invoices issued; they are emailed to the companies.",
                    issued,
                )
                % {"count": issued},
                messages.SUCCESS,
            )
        for invoice in held:
            self.message_user(
                request,
                _("%(invoice)s is held: %(warning)s")
                % {"invoice": invoice, "warning": invoice.warning},
                messages.WARNING,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d invoice was not a draft and was left alone.",
                    "%(count)d invoices were not drafts and were left alone.",
                    skipped,
                )
                % {"count": skipped},
                messages.INFO,
            )

    @admin.action(description=_("Issue the selected drafts"), permissions=["change"])
    def issue_selected(self, request, queryset):
        self._issue(request, queryset, force=False)

    @admin.action(
        description=_("Issue the selected drafts even if held (checked by me)"),
        permissions=["change"],
    )
    def issue_selected_anyway(self, request, queryset):
        self._issue(request, queryset, force=True)

    def _form_action(self, request, queryset, *, action, form_class, title, button):
        """An action that asks for a form first (an intermediate page)."""
        if "apply" in request.POST:
            form = form_class(request.POST)
            if form.is_valid():
                return form
        else:
            form = form_class()
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "invoices": queryset,
            "form": form,
            "button": button,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": action,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "billing/admin/invoice_action.html", context)

    def _each(self, request, queryset, apply, done_message):
        done = 0
        for invoice in queryset.order_by("pk"):
            try:
                apply(invoice)
            except services.InvoiceError as exc:
                self.message_user(request, f"{invoice}: {exc}", messages.ERROR)
                continue
            done += 1
        if done:
            self.message_user(request, done_message % {"count": done}, messages.SUCCESS)

    @admin.action(description=_("Void the selected invoices…"), permissions=["change"])
    def void_selected(self, request, queryset):
        form = self._form_action(
            request,
            queryset,
            action="void_selected",
            form_class=VoidForm,
            title=_("Void invoices"),
            button=_("Void"),
        )
        if not isinstance(form, forms.Form):
            return form
        self._each(
            request,
            queryset,
            lambda inv: services.invoice_void(
                invoice=inv, reason=form.cleaned_data["reason"], by=request.user
            ),
            _("%(count)d invoices voided."),
        )
        return None

    @admin.action(
        description=_("Mark the selected invoices paid…"), permissions=["change"]
    )
    def mark_paid(self, request, queryset):
        form = self._form_action(
            request,
            queryset,
            action="mark_paid",
            form_class=PaymentForm,
            title=_("Record a payment"),
            button=_("Record the payment"),
        )
        if not isinstance(form, forms.Form):
            return form
        data = form.cleaned_data
        self._each(
            request,
            queryset,
            lambda inv: services.payment_record(
                invoice=inv,
                paid_on=data["paid_on"],
                method=data["method"],
                reference=data["reference"],
                amount=data["amount"],
                by=request.user,
            ),
            _("%(count)d payments recorded."),
        )
        return None

    @admin.action(description=_("Create a credit note…"), permissions=["change"])
    def create_credit_note(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(
                request,
                _("Select exactly one invoice for a credit note."),
                messages.ERROR,
            )
            return None
        form = self._form_action(
            request,
            queryset,
            action="create_credit_note",
            form_class=CreditNoteForm,
            title=_("Credit note"),
            button=_("Create the credit note"),
        )
        if not isinstance(form, forms.Form):
            return form
        data = form.cleaned_data
        notes = []
        self._each(
            request,
            queryset,
            lambda inv: notes.append(
                services.credit_note_create(
                    invoice=inv,
                    amount=data["amount"],
                    reason=data["reason"],
                    by=request.user,
                )
            ),
            _("%(count)d credit notes created."),
        )
        return None

    @admin.action(
        description=_("Email the selected invoices again"), permissions=["change"]
    )
    def resend_email(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda inv: services.invoice_resend(invoice=inv, by=request.user),
            _("%(count)d invoices queued for sending again."),
        )


# --- the monthly close ----------------------------------------------------------


class CloseRunAdmin(AgentScopedAdmin):
    agent_path = "agent"
    staff_actions = frozenset({"view", "add"})
    list_display = (
        "period_month",
        "agent",
        "status",
        "progress",
        "issue",
        "started_by",
        "started_at",
        "finished_at",
    )
    list_filter = ("status", "period")
    list_select_related = ("agent", "started_by")
    change_list_template = "billing/admin/close_change_list.html"
    readonly_fields = (
        "period",
        "agent",
        "status",
        "progress",
        "issue",
        "companies_total",
        "started_by",
        "started_at",
        "finished_at",
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                done=Count("items", filter=~Q(items__status="pending")),
            )
        )

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "start/",
                self.admin_site.admin_view(self.start_view),
                name="billing_closerun_start",
            ),
            path(
                "<int:pk>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="billing_closerun_progress",
            ),
            path(
                "<int:pk>/progress.json",
                self.admin_site.admin_view(self.progress_json),
                name="billing_closerun_progress_json",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        return redirect("admin:billing_closerun_start")

    @admin.display(description=_("billing month"), ordering="period")
    def period_month(self, obj):
        return f"{obj.period:%Y-%m}"

    @admin.display(description=_("progress"))
    def progress(self, obj):
        url = reverse("admin:billing_closerun_progress", args=[obj.pk])
        return format_html(
            '<a href="{}">{} / {}</a>',
            url,
            getattr(obj, "done", 0),
            obj.companies_total,
        )

    def _run(self, request, pk) -> CloseRun:
        run = self.get_queryset(request).filter(pk=pk).first()
        if run is None:
            raise Http404
        return run

    def start_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = CloseForm(request.POST, user=request.user)
            if form.is_valid():
                agent = form.cleaned_data.get("agent")
                if is_agent_staff(request):
                    agent = request.user.agent
                run = services.close_run_start(
                    agent=agent,
                    period=form.cleaned_data["period"],
                    started_by=request.user,
                    issue=form.cleaned_data["issue"],
                )
                return redirect("admin:billing_closerun_progress", pk=run.pk)
        else:
            agent = getattr(request.user, "agent", None)
            form = CloseForm(
                user=request.user,
                initial={
                    "period": services.previous_month(timezone.localdate()),
                    "issue": bool(agent and agent.auto_issue_invoices),
                },
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Run the monthly close"),
            "opts": self.model._meta,
            "form": form,
        }
        return TemplateResponse(request, "billing/admin/close_start.html", context)

    def progress_view(self, request, pk):
        run = self._run(request, pk)
        attention = run.items.filter(status__in=["held", "failed"]).select_related(
            "company", "invoice"
        )[:200]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Monthly close %(month)s — %(agent)s")
            % {"month": f"{run.period:%Y-%m}", "agent": run.agent},
            "opts": self.model._meta,
            "run": run,
            "progress": services.close_run_progress(run),
            "attention": attention,
            "json_url": reverse("admin:billing_closerun_progress_json", args=[run.pk]),
            "invoices_url": reverse("admin:billing_invoice_changelist")
            + f"?period__exact={run.period.isoformat()}",
        }
        return TemplateResponse(request, "billing/admin/close_progress.html", context)

    def progress_json(self, request, pk):
        return JsonResponse(services.close_run_progress(self._run(request, pk)))


def register(site) -> None:
    site.register(Invoice, InvoiceAdmin)
    site.register(CloseRun, CloseRunAdmin)


register(admin.site)
