"""Back office of the billing app: CDR imports (upload, progress, error report)
and the carriers' API keys. Invoice admin classes live in billing.admin_invoices.

Agent staff see and create only their own agent's imports and keys
(``AgentScopedAdmin``); an upload imports calls only for numbers of their
agent's companies.
"""

import importlib.util

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.admin_base import AgentScopedAdmin, is_agent_staff
from accounts.models import Agent
from accounts.uploads import limit_upload_size
from billing.csv_export import csv_streaming_response
from billing.models import AgentApiKey, CdrImport
from billing.services.agent_api_keys import agent_api_key_create, agent_api_key_revoke
from billing.services.cdr_import import (
    ASYNC_THRESHOLD_BYTES,
    cdr_import_create,
    cdr_import_run,
)

if importlib.util.find_spec("billing.admin_invoices") is not None:
    from billing import admin_invoices  # noqa: F401

SHOWN_ERRORS = 50


# --- CDR imports ------------------------------------------------------------------


class CdrUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("CDR file"),
        help_text=gettext_lazy(
            "CSV or tab-separated, UTF-8, UTF-16 or GBK, with a header row in "
            "English or Chinese."
        ),
    )
    agent = forms.ModelChoiceField(
        queryset=Agent.objects.all(),
        required=False,
        label=gettext_lazy("Import for agent"),
        help_text=gettext_lazy("Empty: any agent's numbers (superusers only)."),
    )


@admin.register(CdrImport)
class CdrImportAdmin(AgentScopedAdmin):
    agent_path = "agent"
    # Imports are created by the upload page and never edited or deleted.
    staff_actions = frozenset({"view", "add"})
    list_display = (
        "__str__",
        "source",
        "status",
        "progress",
        "imported",
        "duplicates",
        "rejected",
        "created_by",
        "created_at",
    )
    list_filter = ("status", "source")
    search_fields = ("original_name",)
    list_select_related = ("created_by",)
    date_hierarchy = "created_at"

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("progress"))
    def progress(self, obj):
        return f"{obj.progress_percent}%"

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/progress/",
                wrap(self.progress_view),
                name=f"{info[0]}_{info[1]}_progress",
            ),
            path(
                "<int:pk>/errors.csv",
                wrap(self.errors_view),
                name=f"{info[0]}_{info[1]}_errors",
            ),
            *super().get_urls(),
        ]

    def _get(self, request, pk) -> CdrImport:
        if not self.has_view_permission(request):
            raise Http404
        return get_object_or_404(self.get_queryset(request), pk=pk)

    # The add page is the upload form. The size limit stops an oversized file
    # while it is received (before the body is read or stored); CSRF is still
    # checked, after the limit is installed.
    @method_decorator(limit_upload_size("HOTLINE_CDR_UPLOAD_MAX_BYTES"))
    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise Http404
        superuser = request.user.is_superuser
        form = CdrUploadForm(request.POST or None, request.FILES or None)
        if not superuser:
            del form.fields["agent"]
        valid = request.method == "POST" and form.is_valid()
        if request.upload_too_large:
            limit = filesizeformat(settings.HOTLINE_CDR_UPLOAD_MAX_BYTES)
            too_large = _("The file is larger than %(size)s; upload it in parts.")
            form.errors["file"] = form.error_class([too_large % {"size": limit}])
            valid = False
        if valid:
            agent = form.cleaned_data.get("agent") if superuser else request.user.agent
            imp = self._start(request, form.cleaned_data["file"], agent)
            return HttpResponseRedirect(
                reverse("admin:billing_cdrimport_change", args=[imp.pk])
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Upload call records"),
            "opts": self.opts,
            "form": form,
            "adminform": helpers.AdminForm(
                form, [(None, {"fields": list(form.fields)})], {}
            ),
            "threshold_mb": ASYNC_THRESHOLD_BYTES // (1024 * 1024),
        }
        return TemplateResponse(request, "billing/admin/cdr_upload.html", context)

    def _start(self, request, upload, agent) -> CdrImport:
        imp = cdr_import_create(
            source=CdrImport.Source.ADMIN,
            agent=agent,
            created_by=request.user,
            upload=upload,
        )
        if upload.size <= ASYNC_THRESHOLD_BYTES:
            imp = cdr_import_run(cdr_import=imp)
            level = (
                messages.SUCCESS
                if imp.status == CdrImport.Status.DONE
                else messages.ERROR
            )
            self.message_user(request, imp.message, level)
        else:
            from billing.tasks.imports import cdr_import_run_task
            from ops.enqueue import enqueue_on_commit

            # Broker down: the import stays queued and the sweeper starts it.
            enqueue_on_commit(cdr_import_run_task, imp.pk)
            self.message_user(
                request,
                _("The file is being imported in the background."),
                messages.INFO,
            )
        return imp

    # The change page is the import's detail page: progress, summary, errors.
    def change_view(self, request, object_id, form_url="", extra_context=None):
        imp = self._get(request, object_id)
        running = imp.status in (CdrImport.Status.QUEUED, CdrImport.Status.RUNNING)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Call import: %(name)s") % {"name": imp},
            "opts": self.opts,
            "original": imp,
            # The page has no form; an empty one keeps admin tooling uniform.
            "adminform": helpers.AdminForm(forms.Form(), [], {}),
            "imp": imp,
            "running": running,
            "errors": imp.errors.order_by("line_number")[:SHOWN_ERRORS],
            "more_errors": max(0, imp.rejected - SHOWN_ERRORS),
            "progress_url": reverse("admin:billing_cdrimport_progress", args=[imp.pk]),
            "errors_url": reverse("admin:billing_cdrimport_errors", args=[imp.pk]),
        }
        return TemplateResponse(request, "billing/admin/cdr_import.html", context)

    def progress_view(self, request, pk):
        imp = self._get(request, pk)
        return JsonResponse(
            {
                "status": imp.status,
                "status_display": imp.get_status_display(),
                "running": imp.status
                in (CdrImport.Status.QUEUED, CdrImport.Status.RUNNING),
                "percent": imp.progress_percent,
                "processed_bytes": imp.processed_bytes,
                "total_bytes": imp.total_bytes,
                "rows_read": imp.rows_read,
                "imported": imp.imported,
                "duplicates": imp.duplicates,
                "rejected": imp.rejected,
                "message": imp.message,
            }
        )

    def errors_view(self, request, pk):
        imp = self._get(request, pk)
        rows = (
            imp.errors.order_by("line_number")
            .values_list("line_number", "reason", "raw")
            .iterator(chunk_size=2000)
        )
        return csv_streaming_response(
            f"cdr-import-{imp.pk}-rejected-rows.csv",
            [_("line"), _("reason"), _("row as received")],
            rows,
        )


# --- carrier API keys ---------------------------------------------------------------


class AgentApiKeyForm(forms.ModelForm):
    class Meta:
        model = AgentApiKey
        fields = ("agent", "name")


@admin.register(AgentApiKey)
class AgentApiKeyAdmin(AgentScopedAdmin):
    agent_path = "agent"
    # "change" only to revoke (every field is read-only on an existing key).
    staff_actions = frozenset({"view", "add", "change"})
    form = AgentApiKeyForm
    list_display = ("name", "key_start", "agent", "created_at", "last_used_at", "state")
    list_filter = ("revoked_at",)
    actions = ["revoke_selected"]

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name",) if is_agent_staff(request) else ("agent", "name")
        return (
            "name",
            "key_start",
            "agent",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return self.get_fields(request, obj)

    @admin.display(description=gettext_lazy("key starts with"))
    def key_start(self, obj):
        return f"h4a_{obj.prefix}_…"

    @admin.display(description=gettext_lazy("state"))
    def state(self, obj):
        if obj.revoked_at:
            return format_html('<span class="badge">{}</span>', _("Revoked"))
        return _("Active")

    def save_model(self, request, obj, form, change):
        if change:
            return
        agent = request.user.agent if is_agent_staff(request) else obj.agent
        key, raw = agent_api_key_create(agent=agent, name=obj.name, by=request.user)
        obj.pk = key.pk
        obj.agent = key.agent
        obj.prefix = key.prefix
        obj.key_hash = key.key_hash
        obj.created_at = key.created_at
        obj._state.adding = False
        self.message_user(
            request,
            format_html(
                "{} <code>{}</code> {}",
                _("Copy the new key now, it will not be shown again:"),
                raw,
                _("Send it as “Authorization: Bearer <key>” to POST /api/cdrs/."),
            ),
            messages.WARNING,
        )

    @admin.action(
        description=gettext_lazy("Revoke the selected keys"), permissions=["change"]
    )
    def revoke_selected(self, request, queryset):
        count = 0
        for key in queryset.filter(revoked_at__isnull=True):
            agent_api_key_revoke(key=key, by=request.user)
            count += 1
        self.message_user(
            request,
            _("%(count)d keys revoked.") % {"count": count},
            messages.SUCCESS,
        )
