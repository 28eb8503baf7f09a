"""Forms of the accounts pages. They check input; services do the writing."""

from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import PasswordResetForm
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from ops.enqueue import enqueue_on_commit

from .models import Agent, Company, User
from .validators import (
    licence_too_large_error,
    normalize_cn_phone,
    normalize_uscc,
    validate_licence_file,
    validate_uscc,
)


def _licence_field():
    return forms.FileField(
        label=_("Business licence (营业执照)"),
        help_text=_("A scan or photo: JPEG, PNG or PDF, at most 5 MB."),
        widget=forms.ClearableFileInput(
            attrs={"accept": "application/pdf,image/png,image/jpeg"}
        ),
    )


class LicenceFieldMixin:
    """Checks the ``licence`` file by content and size.

    ``upload_too_large`` is set by the view when the upload handler stopped
    the file while it was being received (it is then missing from FILES).
    """

    def __init__(self, *args, upload_too_large: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.upload_too_large = upload_too_large
        if upload_too_large:
            # The file never arrived because it was too big: say that, not
            # "this field is required".
            self.fields["licence"].required = False

    def clean_licence(self):
        if self.upload_too_large:
            raise licence_too_large_error(settings.HOTLINE_LICENCE_MAX_BYTES)
        uploaded = self.cleaned_data.get("licence")
        if uploaded:
            validate_licence_file(
                uploaded, max_bytes=settings.HOTLINE_LICENCE_MAX_BYTES
            )
        return uploaded


class PasswordPairMixin:
    def clean_password2(self):
        first = self.cleaned_data.get("password1")
        second = self.cleaned_data.get("password2")
        if first and second and first != second:
            raise forms.ValidationError(
                _("The two passwords do not match."), code="password_mismatch"
            )
        return second

    def _check_password(self, *, email: str, full_name: str) -> None:
        password = self.cleaned_data.get("password2")
        if not password:
            return
        try:
            password_validation.validate_password(
                password, User(email=email or "", full_name=full_name or "")
            )
        except forms.ValidationError as error:
            self.add_error("password2", error)


def _password_fields():
    return (
        forms.CharField(
            label=_("Password"),
            strip=False,
            widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
            help_text=_("At least 10 characters; not only digits, not a common one."),
        ),
        forms.CharField(
            label=_("Password again"),
            strip=False,
            widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        ),
    )


class SignupForm(PasswordPairMixin, LicenceFieldMixin, forms.Form):
    """A company's registration. The file comes last: see accounts.uploads."""

    agent = forms.ModelChoiceField(
        label=_("Your agent (代理商)"),
        queryset=Agent.objects.none(),
        empty_label=_("Choose the agent that serves you"),
    )
    company_name = forms.CharField(label=_("Company name"), max_length=200)
    uscc = forms.CharField(
        label=_("Unified social credit code"),
        max_length=24,
        help_text=_("18 characters, as printed on the business licence."),
    )
    address = forms.CharField(label=_("Registered address"), max_length=300)
    billing_email = forms.EmailField(
        label=_("Billing email"), help_text=_("Bills are sent to this address.")
    )
    contact_phone = forms.CharField(
        label=_("Contact phone"),
        max_length=32,
        help_text=_("Mobile or landline, e.g. 13800138000 or 010-12345678."),
    )
    owner_name = forms.CharField(label=_("Your name"), max_length=100)
    owner_email = forms.EmailField(
        label=_("Your email"), help_text=_("You log in with this address.")
    )
    password1, password2 = _password_fields()
    licence = _licence_field()

    def __init__(self, *args, agent: Agent | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fixed_agent = agent
        if agent is not None:
            # The agent is known (only one, or from the link): not a choice.
            del self.fields["agent"]
        else:
            self.fields["agent"].queryset = Agent.objects.order_by("name")

    def clean_uscc(self):
        value = normalize_uscc(self.cleaned_data["uscc"])
        validate_uscc(value)
        if Company.objects.filter(uscc=value).exists():
            raise forms.ValidationError(
                _("A company with this unified social credit code is registered."),
                code="uscc_taken",
            )
        return value

    def clean_contact_phone(self):
        return normalize_cn_phone(self.cleaned_data["contact_phone"])

    def clean_billing_email(self):
        return self.cleaned_data["billing_email"].strip().lower()

    def clean_owner_email(self):
        email = self.cleaned_data["owner_email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(
                _(
                    "An account with this email address already exists. "
                    "Log in, or reset your password."
                ),
                code="email_taken",
            )
        return email

    def clean(self):
        cleaned = super().clean()
        self._check_password(
            email=cleaned.get("owner_email", ""),
            full_name=cleaned.get("owner_name", ""),
        )
        return cleaned

    @property
    def chosen_agent(self) -> Agent | None:
        return self.fixed_agent or self.cleaned_data.get("agent")


class LicenceUploadForm(LicenceFieldMixin, forms.Form):
    licence = _licence_field()


class CompanyDetailsForm(forms.Form):
    """What an owner may change; name and USCC only before verification."""

    name = forms.CharField(label=_("Company name"), max_length=200)
    uscc = forms.CharField(label=_("Unified social credit code"), max_length=24)
    address = forms.CharField(label=_("Registered address"), max_length=300)
    billing_email = forms.EmailField(label=_("Billing email"))
    contact_phone = forms.CharField(label=_("Contact phone"), max_length=32)
    language = forms.ChoiceField(
        label=_("Language for emails"), choices=settings.LANGUAGES
    )

    def __init__(self, *args, company: Company, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "name": company.name,
                "uscc": company.uscc,
                "address": company.address,
                "billing_email": company.billing_email,
                "contact_phone": company.contact_phone,
                "language": company.language,
            },
        )
        super().__init__(*args, **kwargs)
        self.company = company
        if company.is_verified:
            for name in ("name", "uscc"):
                self.fields[name].disabled = True
                self.fields[name].help_text = _(
                    "Fixed after verification. Ask your agent to change it."
                )

    def clean_uscc(self):
        value = normalize_uscc(self.cleaned_data["uscc"])
        validate_uscc(value)
        taken = Company.objects.filter(uscc=value).exclude(pk=self.company.pk)
        if taken.exists():
            raise forms.ValidationError(
                _("A company with this unified social credit code is registered."),
                code="uscc_taken",
            )
        return value

    def clean_contact_phone(self):
        return normalize_cn_phone(self.cleaned_data["contact_phone"])

    def changes(self) -> dict:
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if not self.fields[name].disabled
        }


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Email of your colleague"))
    role = forms.ChoiceField(
        label=_("Role"), choices=User.Role.choices, initial=User.Role.MEMBER
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=User.Role.choices)


class InvitationAcceptForm(PasswordPairMixin, forms.Form):
    full_name = forms.CharField(label=_("Your name"), max_length=100)
    password1, password2 = _password_fields()

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        cleaned = super().clean()
        self._check_password(email=self.email, full_name=cleaned.get("full_name", ""))
        return cleaned


class PortalPasswordResetForm(PasswordResetForm):
    """Hands the work to a task, so the response is the same for any address.

    Whether the address has an account only shows in the task, never in the
    view's response or its timing.
    """

    subject_template = "accounts/email/password_reset_subject.txt"
    text_template = "accounts/email/password_reset.txt"
    html_template = "accounts/email/password_reset.html"

    def save(self, *args, **kwargs):
        from .tasks import password_reset_email_task

        email = self.cleaned_data["email"]
        enqueue_on_commit(password_reset_email_task, email)

    def send_now(self) -> None:
        base = urlsplit(settings.HOTLINE_BASE_URL)
        super().save(
            domain_override=base.netloc,
            use_https=base.scheme == "https",
            subject_template_name=self.subject_template,
            email_template_name=self.text_template,
            html_email_template_name=self.html_template,
        )

    def send_mail(self, *args, **kwargs):
        context = args[2] if len(args) > 2 else kwargs["context"]
        with translation.override(context["user"].language):
            super().send_mail(*args, **kwargs)
