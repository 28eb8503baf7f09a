"""One sample object per agent-scoped admin model, for the admin isolation test.

tests/accounts/test_admin_isolation.py walks every ModelAdmin registered in
``django.contrib.admin.site``. For each agent-scoped one it builds a sample
object under agent X and one under agent Y, logs in as Y's staff and checks
that nothing of X shows. It fails for a scoped model without a builder here.

When you register an ``AgentScopedAdmin`` for a new model, add a builder:

    @sample("billing.Invoice")
    def _invoice(agent):
        return InvoiceFactory(company=CompanyFactory(agent=agent))

A builder takes an ``accounts.Agent`` and returns a saved object that belongs
to that agent (through its company, subscription …). Keep it small: it runs
twice per test.
"""

from collections.abc import Callable

from django.core.files.base import ContentFile
from django.db.models import Model

SampleBuilder = Callable[..., Model]

SAMPLE_BUILDERS: dict[str, SampleBuilder] = {}


def sample(label: str):
    """Register the builder of model ``label`` (``"app_label.ModelName"``)."""

    def register(builder: SampleBuilder) -> SampleBuilder:
        if label in SAMPLE_BUILDERS:
            raise ValueError(f"two sample builders for {label}")
        SAMPLE_BUILDERS[label] = builder
        return builder

    return register


# --- accounts ---------------------------------------------------------------


@sample("accounts.Agent")
def _agent(agent):
    return agent


@sample("accounts.Company")
def _company(agent):
    from tests.factories import CompanyFactory

    return CompanyFactory(agent=agent)


@sample("accounts.User")
def _user(agent):
    from tests.factories import CompanyFactory, UserFactory

    return UserFactory(company=CompanyFactory(agent=agent), role="finance")


@sample("accounts.BusinessLicence")
def _licence(agent):
    from accounts.models import BusinessLicence
    from tests.factories import CompanyFactory

    licence = BusinessLicence(
        company=CompanyFactory(agent=agent),
        original_name="licence.pdf",
        content_type=BusinessLicence.ContentType.PDF,
        size=9,
    )
    licence.file.save("licence.pdf", ContentFile(b"%PDF-1.4\n"), save=True)
    return licence


@sample("accounts.Invitation")
def _invitation(agent):
    import datetime as dt

    from django.utils import timezone

    from accounts.models import Invitation
    from tests.factories import CompanyFactory

    company = CompanyFactory(agent=agent)
    return Invitation.objects.create(
        company=company,
        email=f"invitee-{company.pk}@example.cn",
        role="member",
        token=f"sample-{company.pk}",
        expires_at=timezone.now() + dt.timedelta(days=7),
    )


# --- audit ------------------------------------------------------------------


@sample("audit.AuditEvent")
def _auditevent(agent):
    from audit.services import audit_record
    from tests.factories import CompanyFactory

    return audit_record(
        actor=None, action="company.update", target=CompanyFactory(agent=agent)
    )


# --- billing: invoices and the monthly close (slot 6) -----------------------


@sample("billing.Invoice")
def _invoice(agent):
    import datetime as dt

    from billing.services.invoices import invoice_generate
    from tests.factories import CompanyFactory, SubscriptionFactory

    sub = SubscriptionFactory(
        company=CompanyFactory(agent=agent), activated_on=dt.date(2026, 3, 1)
    )
    return invoice_generate(company=sub.company, period=dt.date(2026, 3, 1))


@sample("billing.CloseRun")
def _closerun(agent):
    import datetime as dt

    from billing.services.invoices import close_run_start

    return close_run_start(agent=agent, period=dt.date(2026, 3, 1), fan_out=False)


# --- billing: CDR imports and carrier API keys (slot 5) ---------------------


@sample("billing.CdrImport")
def _cdrimport(agent):
    from billing.models import CdrImport

    return CdrImport.objects.create(
        source="admin", agent=agent, original_name="cdrs.csv", status="done"
    )


@sample("billing.AgentApiKey")
def _agentapikey(agent):
    from billing.services.agent_api_keys import agent_api_key_create

    return agent_api_key_create(agent=agent, name="carrier")[0]


# --- plans: holds and subscriptions (slot 3) ---------------------------------


@sample("plans.Hold")
def _hold(agent):
    import datetime as dt

    from django.utils import timezone

    from plans.models import Hold
    from tests.factories import CompanyFactory, PhoneNumberFactory

    return Hold.objects.create(
        number=PhoneNumberFactory(status="held"),
        company=CompanyFactory(agent=agent),
        expires_at=timezone.now() + dt.timedelta(minutes=30),
    )


@sample("plans.Subscription")
def _subscription(agent):
    from tests.factories import CompanyFactory, SubscriptionFactory

    return SubscriptionFactory(company=CompanyFactory(agent=agent))
