"""Two owners demoting each other at the same moment leave one owner."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from accounts import services
from accounts.models import User
from tests.factories import CompanyFactory, UserFactory


@pytest.mark.django_db(transaction=True)
def test_concurrent_demotions_never_leave_a_company_without_an_owner():
    company = CompanyFactory()
    first = UserFactory(company=company, role=User.Role.OWNER)
    second = UserFactory(company=company, role=User.Role.OWNER)
    barrier = threading.Barrier(2)
    outcomes = []

    def demote(user, by):
        try:
            barrier.wait()
            services.user_change_role(user=user, role=User.Role.MEMBER, by=by)
            outcomes.append("demoted")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=demote, args=(first, second)),
        threading.Thread(target=demote, args=(second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["demoted", "refused"]
    assert company.users.filter(role=User.Role.OWNER, is_active=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_invitation_accepted_twice_at_once_creates_one_user():
    owner = UserFactory(role=User.Role.OWNER)
    _, token = services.invitation_create(
        company=owner.company, by=owner, email="twice@example.cn", role="member"
    )
    barrier = threading.Barrier(2)
    outcomes = []

    def accept():
        try:
            barrier.wait()
            services.invitation_accept(
                token=token, full_name="王五", password="another long pass 77"
            )
            outcomes.append("created")
        except services.InvitationUnusable as problem:
            outcomes.append(problem.reason)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["accepted", "created"]
    assert User.objects.filter(email="twice@example.cn").count() == 1
