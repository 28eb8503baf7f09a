"""Agent staff see nothing of another agent anywhere in the back office.

Walks every ModelAdmin registered in ``django.contrib.admin.site``, including
the ones other apps add later. For an agent-scoped model it needs a sample
builder in tests/admin_samples.py.
"""

import pytest
from django import forms
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.urls import NoReverseMatch, reverse

from accounts.admin_base import (
    USER_SCOPE,
    AgentScopedMixin,
    CatalogAdmin,
    SuperuserOnlyMixin,
    agent_path_for,
    agent_q,
)
from accounts.models import Agent, User
from tests.admin_samples import SAMPLE_BUILDERS
from tests.factories import AgentFactory, AgentStaffFactory, UserFactory

pytestmark = pytest.mark.django_db

REGISTERED = [
    pytest.param(model, model_admin, id=model._meta.label)
    for model, model_admin in sorted(
        admin.site._registry.items(), key=lambda kv: kv[0]._meta.label
    )
]
SCOPED = [p for p in REGISTERED if isinstance(p.values[1], AgentScopedMixin)]
SUPERUSER_ONLY = [p for p in REGISTERED if isinstance(p.values[1], SuperuserOnlyMixin)]


def _url(model, view, *args):
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def _build(model, agent):
    label = model._meta.label
    builder = SAMPLE_BUILDERS.get(label)
    if builder is None:
        pytest.fail(
            f"{label} is registered in the admin as agent-scoped but "
            f"tests/admin_samples.py has no sample builder for it. Add one:\n\n"
            f'    @sample("{label}")\n'
            f"    def _{model._meta.model_name}(agent):\n"
            f"        return <a saved {model.__name__} belonging to agent>\n"
        )
    return builder(agent)


def _belongs_to(model, pks, agent) -> bool:
    """Whether any of ``pks`` of ``model`` belongs to ``agent``."""
    path = agent_path_for(model)
    if path is None:
        return False
    return (
        model._default_manager.filter(pk__in=list(pks))
        .filter(agent_q(path, agent.pk))
        .exists()
    )


def _path_reaches_agent(model, path) -> bool:
    if path == USER_SCOPE:
        return model is User
    if path == "":
        return model is Agent
    return get_fields_from_path(model, path)[-1].related_model is Agent


@pytest.mark.parametrize(("model", "model_admin"), REGISTERED)
def test_every_model_admin_derives_from_the_shared_base(model, model_admin):
    assert isinstance(
        model_admin, (AgentScopedMixin, CatalogAdmin, SuperuserOnlyMixin)
    ), (
        f"{model._meta.label} is registered with {type(model_admin).__name__}: "
        "derive it from AgentScopedAdmin (tenant data), CatalogAdmin (shared "
        "catalog) or SuperuserOnlyAdmin (accounts/admin_base.py)."
    )


@pytest.mark.parametrize(("model", "model_admin"), SCOPED)
def test_the_agent_path_of_every_scoped_admin_and_inline_leads_to_the_agent(
    model, model_admin
):
    path = model_admin.get_agent_path()
    assert _path_reaches_agent(model, path), (
        f"{type(model_admin).__name__}: agent_path {path!r} does not lead to "
        "accounts.Agent"
    )
    for inline_class in model_admin.inlines:
        assert issubclass(inline_class, AgentScopedMixin), (
            f"{inline_class.__name__} must mix in AgentScopedInline"
        )
        inline = inline_class(model, admin.site)
        path = inline.get_agent_path()
        assert _path_reaches_agent(inline.model, path), (
            f"{inline_class.__name__}: agent_path {path!r} does not lead to "
            "accounts.Agent"
        )


@pytest.mark.parametrize(("model", "model_admin"), SUPERUSER_ONLY)
def test_superuser_only_admins_refuse_agent_staff(client, model, model_admin):
    client.force_login(AgentStaffFactory())

    response = client.get(_url(model, "changelist"))

    assert response.status_code in (302, 403)


@pytest.mark.parametrize(("model", "model_admin"), SCOPED)
def test_agent_staff_see_nothing_of_another_agent(client, model, model_admin):
    agent_x, agent_y = AgentFactory(), AgentFactory()
    theirs = _build(model, agent_x)
    ours = _build(model, agent_y)
    staff_y = AgentStaffFactory(agent=agent_y)
    client.force_login(staff_y)

    changelist = client.get(_url(model, "changelist"))
    searched = client.get(_url(model, "changelist"), {"q": str(theirs)[:20]})

    assert changelist.status_code == 200
    shown = set(changelist.context["cl"].queryset.values_list("pk", flat=True))
    assert ours.pk in shown, "the sample builder must build for the given agent"
    assert theirs.pk not in shown
    assert theirs.pk not in {o.pk for o in searched.context["cl"].queryset}
    assert _url(model, "change", theirs.pk) not in changelist.content.decode()
    for spec in changelist.context["cl"].filter_specs:
        related = getattr(getattr(spec, "field", None), "related_model", None)
        if related is None or not hasattr(spec, "lookup_choices"):
            continue
        choices = [pk for pk, _ in spec.lookup_choices]
        assert not _belongs_to(related, choices, agent_x), (
            f"the list filter {spec.title} offers objects of another agent"
        )

    for view in ("change", "delete", "history"):
        try:
            url = _url(model, view, theirs.pk)
        except NoReverseMatch:
            continue
        response = client.get(url)
        assert response.status_code in (302, 403, 404), (view, response.status_code)
        if response.status_code == 302:
            assert response["Location"] != url


@pytest.mark.parametrize(("model", "model_admin"), SCOPED)
def test_choices_in_forms_offer_nothing_of_another_agent(client, model, model_admin):
    agent_x, agent_y = AgentFactory(), AgentFactory()
    _build(model, agent_x)
    ours = _build(model, agent_y)
    client.force_login(AgentStaffFactory(agent=agent_y))
    pages = [_url(model, "change", ours.pk), _url(model, "add")]

    for url in pages:
        response = client.get(url)
        if response.status_code != 200 or response.context is None:
            continue
        forms_on_page = [response.context["adminform"].form]
        for formset in response.context.get("inline_admin_formsets", []):
            forms_on_page.extend(formset.formset.forms)
        for form in forms_on_page:
            for name, field in form.fields.items():
                # A hidden field (a formset's row id) offers no choices.
                if not isinstance(field, forms.ModelChoiceField) or (
                    field.widget.is_hidden
                ):
                    continue
                pks = field.queryset.values_list("pk", flat=True)
                assert not _belongs_to(field.queryset.model, pks, agent_x), (
                    f"{url}: the field {name} offers objects of another agent"
                )


@pytest.mark.parametrize(("model", "model_admin"), SCOPED)
def test_a_superuser_sees_every_agents_objects(client, model, model_admin):
    first = _build(model, AgentFactory())
    second = _build(model, AgentFactory())
    client.force_login(
        UserFactory(company=None, role="", is_staff=True, is_superuser=True)
    )

    changelist = client.get(_url(model, "changelist"))
    change = client.get(_url(model, "change", first.pk))

    shown = set(changelist.context["cl"].queryset.values_list("pk", flat=True))
    assert {first.pk, second.pk} <= shown
    assert change.status_code == 200


def test_agent_staff_cannot_make_anyone_a_superuser(client, agent, agent_staff):
    user = UserFactory(company__agent=agent, role="member")
    client.force_login(agent_staff)

    page = client.get(_url(User, "change", user.pk))

    assert "is_superuser" not in page.context["adminform"].form.fields
    assert "user_permissions" not in page.context["adminform"].form.fields


def test_agent_staff_see_their_agents_staff_and_their_companies_users_only(
    client, agent, agent_staff
):
    colleague = AgentStaffFactory(agent=agent)
    customer = UserFactory(company__agent=agent)
    outsider = UserFactory()
    superuser = UserFactory(company=None, role="", is_staff=True, is_superuser=True)
    client.force_login(agent_staff)

    shown = set(
        client.get(_url(User, "changelist"))
        .context["cl"]
        .queryset.values_list("pk", flat=True)
    )

    assert {agent_staff.pk, colleague.pk, customer.pk} <= shown
    assert outsider.pk not in shown
    assert superuser.pk not in shown
