"""The one place that decides what agent staff see in the back office.

Every ModelAdmin in the project derives from one of these:

- ``AgentScopedAdmin``: tenant data. Set ``agent_path`` to the lookup from the
  model to its ``Agent`` (``"agent"``, ``"company__agent"``,
  ``"subscription__company__agent"`` …). Agent staff see, choose in foreign
  keys, and change only rows of their own agent; a row of another agent is a
  404, exactly as if it did not exist. Superusers see everything.
- ``CatalogAdmin``: data shared by all agents (the catalog). Agent staff may
  edit it; it needs no scoping.

Agent staff get their rights from here, not from Django's per-user permission
table: being ``is_staff`` with an ``agent`` is the role. ``staff_actions``
lists what they may do (``view``, ``add``, ``change``, ``delete``).
"""

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist


def is_agent_staff(request) -> bool:
    user = request.user
    return (
        user.is_active
        and user.is_staff
        and not user.is_superuser
        and user.agent_id is not None
    )


class StaffRightsMixin:
    staff_actions: frozenset[str] = frozenset({"view", "add", "change", "delete"})

    def _staff_may(self, request, action: str) -> bool:
        return is_agent_staff(request) and action in self.staff_actions

    def has_module_permission(self, request):
        return self._staff_may(request, "view") or super().has_module_permission(
            request
        )

    def has_view_permission(self, request, obj=None):
        return self._staff_may(request, "view") or super().has_view_permission(
            request, obj
        )

    def has_add_permission(self, request, *args):
        return self._staff_may(request, "add") or super().has_add_permission(
            request, *args
        )

    def has_change_permission(self, request, obj=None):
        return self._staff_may(request, "change") or super().has_change_permission(
            request, obj
        )

    def has_delete_permission(self, request, obj=None):
        return self._staff_may(request, "delete") or super().has_delete_permission(
            request, obj
        )


class AgentScopedMixin(StaffRightsMixin):
    #: Lookup from this model to accounts.Agent; "" means the model *is* Agent.
    agent_path: str = ""

    def scope_queryset(self, request, queryset, path: str | None = None):
        """Limit ``queryset`` to the request's agent (no-op for superusers)."""
        if request.user.is_superuser:
            return queryset
        if not is_agent_staff(request):
            return queryset.none()
        path = self.agent_path if path is None else path
        field = f"{path}_id" if path else "pk"
        if "__" in path:
            field = f"{path}__id"
        return queryset.filter(**{field: request.user.agent_id})

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        self._scope_choice_field(db_field, request, field)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        self._scope_choice_field(db_field, request, field)
        return field

    def _scope_choice_field(self, db_field, request, field) -> None:
        if field is None or request.user.is_superuser:
            return
        path = agent_path_for(db_field.related_model)
        if path is not None and hasattr(field, "queryset"):
            field.queryset = self.scope_queryset(request, field.queryset, path)


def agent_path_for(model) -> str | None:
    """The lookup from ``model`` to Agent, or None when it is shared data."""
    label = model._meta.label
    known = {
        "accounts.Agent": "",
        "accounts.Company": "agent",
        "accounts.User": None,  # scoped specially: company or agent staff
    }
    if label in known:
        return known[label]
    for name in ("company", "agent"):
        try:
            model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        return "agent" if name == "agent" else "company__agent"
    try:
        model._meta.get_field("subscription")
    except FieldDoesNotExist:
        return None
    return "subscription__company__agent"


class AgentScopedAdmin(AgentScopedMixin, admin.ModelAdmin):
    """Tenant data in the back office: see the module docstring."""


class AgentScopedInline(AgentScopedMixin):
    """Mix into TabularInline/StackedInline for tenant data."""


class CatalogAdmin(StaffRightsMixin, admin.ModelAdmin):
    """Shared catalog data that every agent's staff may maintain."""
