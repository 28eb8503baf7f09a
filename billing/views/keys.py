"""Owners create and revoke their company's API keys."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.decorators import owner_required
from billing.forms import ApiKeyForm
from billing.selectors.api_keys import api_keys_for
from billing.services.company_api_keys import api_key_create
from billing.services.company_api_keys import api_key_revoke as revoke_key

NEW_KEY_SESSION = "billing_new_api_key"


@require_http_methods(["GET", "POST"])
@owner_required
def api_keys(request):
    company = request.user.company
    # Post/redirect/get: reloading the page must not create a second key, so
    # the new key waits in the session for the one page that shows it.
    new_key = request.session.pop(NEW_KEY_SESSION, None)
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        key, raw = api_key_create(
            company=company, name=form.cleaned_data["name"], by=request.user
        )
        request.session[NEW_KEY_SESSION] = raw
        messages.success(
            request,
            _("Key “%(name)s” created. Copy it now: it is shown only once.")
            % {"name": key.name},
        )
        return redirect("billing:api_keys")
    return render(
        request,
        "billing/api_keys.html",
        {"form": form, "keys": api_keys_for(company=company), "new_key": new_key},
    )


@require_http_methods(["GET", "POST"])
@owner_required
def api_key_revoke(request, pk: int):
    """GET asks for confirmation (systems using the key stop at once); POST
    revokes."""
    company = request.user.company
    if request.method == "GET":
        key = api_keys_for(company=company).filter(pk=pk, revoked_at=None).first()
        if key is None:
            raise Http404
        return render(request, "billing/api_key_revoke.html", {"key": key})
    key = revoke_key(company=company, pk=pk, by=request.user)
    if key is None:
        raise Http404
    messages.success(
        request, _("Key “%(name)s” revoked; it no longer works.") % {"name": key.name}
    )
    return redirect("billing:api_keys")
