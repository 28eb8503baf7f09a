from django.contrib import admin

from accounts.admin_base import AgentScopedAdmin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(AgentScopedAdmin):
    agent_path = "agent"
    staff_actions = frozenset({"view"})
    list_display = ["at", "actor_label", "action", "target_label", "company"]
    list_filter = ["action", "at"]
    search_fields = ["actor_label", "action", "target_label", "target_id"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
    list_select_related = ["company"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
