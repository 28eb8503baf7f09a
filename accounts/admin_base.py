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

- ``SuperuserOnlyAdmin`` (or ``SuperuserOnlyMixin`` over a third-party
  ModelAdmin): data only superusers may see (permissions, login attempts).

Foreign-key choices, related list filters and the rows themselves are scoped;
users (``accounts.User``) belong to an agent either as its staff or through
their company, see ``USER_SCOPE``.
"""

from django.contrib import admin
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db.models import Q

#: The ``agent_path`` of accounts.User: staff of the agent, or users of its
#: companies. Not a lookup; ``agent_q`` knows what it means.
USER_SCOPE = "<user>"


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
        path = self.get_agent_path() if path is None else path
        return queryset.filter(agent_q(path, request.user.agent_id))

    def get_agent_path(self) -> str:
        """``agent_path``, or the one inferred for the model when left empty.

        An empty ``agent_path`` on anything but Agent itself (typically an
        inline that forgot to set it) would compare the row's id with the
        agent's id; infer the path from the model's fields instead.
        """
        if self.agent_path or self.model._meta.label == "accounts.Agent":
            return self.agent_path
        inferred = agent_path_for(self.model)
        if inferred is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__}: set agent_path, the lookup from "
                f"{self.model._meta.label} to accounts.Agent"
            )
        return inferred

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

    def get_list_filter(self, request):
        """Related-object filters list only what the user may see.

        Django's plain RelatedFieldListFilter offers every row of the related
        model (every company of every agent); for agent staff it becomes a
        RelatedOnlyFieldListFilter, whose choices come from the scoped rows.
        """
        filters = super().get_list_filter(request)
        if request.user.is_superuser:
            return filters
        return [self._scoped_list_filter(item) for item in filters]

    def _scoped_list_filter(self, item):
        name, filter_class = item if isinstance(item, (tuple, list)) else (item, None)
        if not isinstance(name, str):
            return item  # a SimpleListFilter class: its own business
        if filter_class not in (None, admin.RelatedFieldListFilter):
            return item
        try:
            field = get_fields_from_path(self.model, name)[-1]
        except (FieldDoesNotExist, NotRelationField):
            return item
        if field.is_relation:
            return (name, admin.RelatedOnlyFieldListFilter)
        return item


def agent_q(path: str, agent_id) -> Q:
    """The filter limiting rows reached by ``path`` to agent ``agent_id``."""
    if path == USER_SCOPE:
        return Q(agent_id=agent_id) | Q(company__agent_id=agent_id)
    if not path:
        return Q(pk=agent_id)
    if "__" in path:
        return Q(**{f"{path}__id": agent_id})
    return Q(**{f"{path}_id": agent_id})


def agent_path_for(model) -> str | None:
    """The lookup from ``model`` to Agent, or None when it is shared data."""
    label = model._meta.label
    known = {
        "accounts.Agent": "",
        "accounts.Company": "agent",
        "accounts.User": USER_SCOPE,  # staff of the agent or its companies' users
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


class CatalogAuditMixin:
    """Every add, change and delete of catalog data goes to the audit trail.

    Hooked on the admin's ``log_*`` calls rather than ``save_model``: they run
    in the same transaction as the save for every path (subclasses that
    override ``save_model``, list-editable changes, the delete action), after
    the many-to-many fields are saved. The "before" is taken when the admin
    loads the object, before the form touches it.
    """

    def get_object(self, request, object_id, from_field=None):
        from audit.services import model_snapshot

        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            befores = request.__dict__.setdefault("_audit_before", {})
            befores[(obj._meta.label, str(obj.pk))] = model_snapshot(obj)
        return obj

    def _audit(self, request, obj, action, *, before, after) -> None:
        from audit.services import audit_record, changed_only

        before, after = changed_only(before, after)
        audit_record(
            actor=request.user,
            action=f"catalog.{action}",
            target=obj,
            # Shared data: filed under the editor's agent, so they see it too.
            agent=getattr(request.user, "agent", None),
            before=before,
            after=after,
        )

    def log_addition(self, request, obj, message):
        from audit.services import model_snapshot

        self._audit(request, obj, "add", before=None, after=model_snapshot(obj))
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        from audit.services import model_snapshot

        befores = getattr(request, "_audit_before", {})
        # None for a list-editable change (the changelist loads its rows).
        before = befores.get((obj._meta.label, str(obj.pk)))
        self._audit(request, obj, "change", before=before, after=model_snapshot(obj))
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        from audit.services import model_snapshot

        for obj in queryset:
            self._audit(request, obj, "delete", before=model_snapshot(obj), after=None)
        return super().log_deletions(request, queryset)


class CatalogAdmin(CatalogAuditMixin, StaffRightsMixin, admin.ModelAdmin):
    """Shared catalog data that every agent's staff may maintain (audited)."""


class SuperuserOnlyMixin:
    """Only superusers see or change these rows, whatever Django's permissions."""

    def _is_superuser(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request):
        return self._is_superuser(request)

    def has_view_permission(self, request, obj=None):
        return self._is_superuser(request)

    def has_add_permission(self, request, *args):
        return self._is_superuser(request)

    def has_change_permission(self, request, obj=None):
        return self._is_superuser(request)

    def has_delete_permission(self, request, obj=None):
        return self._is_superuser(request)


class SuperuserOnlyAdmin(SuperuserOnlyMixin, admin.ModelAdmin):
    """Data only superusers manage."""
