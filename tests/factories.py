"""factory-boy factories shared by the whole suite."""

import factory
from stdnum.cn import uscc

from accounts.models import Agent, Company, User

PASSWORD = "correct horse battery 400"


def make_uscc(n: int) -> str:
    """A valid 统一社会信用代码 derived from a sequence number."""
    body = f"91440300MA{n:07d}"
    return body + uscc.calc_check_digit(body)


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    name = factory.Sequence(lambda n: f"代理商{n}")
    legal_name = factory.LazyAttribute(lambda o: f"{o.name}通信服务有限公司")
    uscc = factory.Sequence(lambda n: make_uscc(5_000_000 + n))
    address = "广东省深圳市南山区科技园"


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    agent = factory.SubFactory(AgentFactory)
    name = factory.Sequence(lambda n: f"测试企业{n}有限公司")
    uscc = factory.Sequence(make_uscc)
    address = "广东省深圳市福田区深南大道1号"
    billing_email = factory.Sequence(lambda n: f"billing{n}@company.example.cn")
    contact_phone = "+8613800138000"
    verification_status = Company.Verification.APPROVED


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@company.example.cn")
    full_name = factory.Sequence(lambda n: f"用户{n}")
    company = factory.SubFactory(CompanyFactory)
    role = User.Role.OWNER
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class AgentStaffFactory(UserFactory):
    company = None
    role = ""
    agent = factory.SubFactory(AgentFactory)
    is_staff = True
