from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

# (url name, label, who may see it). Entries whose URL does not exist yet are
# left out, so an app adds its pages by naming them here.
NAV_ITEMS = [
    ("plans:search", _("Choose a number"), "all"),
    ("plans:compare", _("Packages"), "all"),
    ("plans:my_numbers", _("My numbers"), "all"),
    ("billing:month_to_date", _("This month's bill"), "bills"),
    ("billing:invoice_list", _("Bills"), "bills"),
    ("billing:analytics", _("Call analytics"), "bills"),
    ("billing:advisor", _("Plan advisor"), "bills"),
    ("accounts:settings", _("Company settings"), "all"),
]


def _nav(request):
    user = request.user
    current = getattr(request.resolver_match, "view_name", "")
    items = []
    for name, label, audience in NAV_ITEMS:
        if audience == "bills" and not user.can_see_bills:
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        items.append({"url": url, "label": label, "current": current == name})
    return items


def portal(request):
    """What every portal page needs: the user's company, navigation, languages."""
    user = getattr(request, "user", None)
    company = None
    nav = []
    if user is not None and user.is_authenticated and user.company_id:
        company = user.company
        nav = _nav(request)
    return {
        "portal_company": company,
        "portal_nav": nav,
        "portal_languages": settings.LANGUAGES,
    }
