from django.urls import reverse

from tests.factories import PASSWORD


def test_login_page_renders_in_chinese_by_default(client, db):
    response = client.get(reverse("accounts:login"))
    assert response.status_code == 200
    assert response["Content-Language"] == "zh-hans"


def test_owner_logs_in_by_email_and_sees_company_name(client, owner):
    response = client.post(
        reverse("accounts:login"),
        {"username": owner.email.upper(), "password": PASSWORD},
        follow=True,
    )
    assert response.status_code == 200
    assert owner.company.name in response.content.decode()
