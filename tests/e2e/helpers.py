"""Small helpers shared by the journeys: translated labels, logging in."""

from django.utils import translation

from tests.factories import PASSWORD


def tr(language: str, text: str, **values) -> str:
    """``text`` as the portal shows it in ``language``.

    In Chinese the message must really be translated: a journey that finds the
    English source string on a zh-hans page fails here, so the locators double
    as a check that customer copy is Chinese first.
    """
    with translation.override(language):
        shown = str(translation.gettext(text))
    if language == "zh-hans":
        assert shown != text, f"not translated into Chinese: {text!r}"
    return shown % values if values else shown


def log_in(page, user, *, password: str = PASSWORD) -> None:
    """Log in through the portal's login page and land on the overview."""
    page.goto("/accounts/login/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", password)
    page.locator("form:not(.langswitch) button[type=submit]").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def admin_log_in(page, user, *, password: str = PASSWORD) -> None:
    """Log agent staff into the back office."""
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", password)
    page.locator("#login-form [type=submit]").click()
    page.wait_for_url("**/admin/")


def shown(language: str, value) -> str:
    """A lazy or model label (``obj.get_status_display``) rendered in ``language``."""
    with translation.override(language):
        return str(value() if callable(value) else value)


def go_to(page, label: str) -> None:
    """Follow the main navigation's entry named exactly ``label``."""
    page.locator("nav.mainnav").get_by_role("link", name=label, exact=True).click()


def customer(**fields):
    """The journeys' customer, named as a real one would be (for the pictures)."""
    from tests.factories import AgentFactory, CompanyFactory

    fields.setdefault("name", "深圳市蓝海科技有限公司")
    fields.setdefault(
        "agent",
        AgentFactory(name="华南通信", legal_name="深圳市华南通信服务有限公司"),
    )
    return CompanyFactory(**fields)
