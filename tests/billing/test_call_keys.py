"""The call table's keys to its subscription, company and number.

They are not database foreign keys (a key check per inserted call is the
single largest cost of a CDR import), so the parent side must refuse the
deletes a foreign key would have refused.
"""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from plans.models import Subscription
from tests.factories import CallRecordFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_the_database_refuses_to_delete_a_subscription_with_calls():
    call = CallRecordFactory()
    sql = "DELETE FROM plans_subscription WHERE id = %s"
    with (
        pytest.raises(IntegrityError),
        transaction.atomic(),
        connection.cursor() as cur,
    ):
        cur.execute(sql, [call.subscription_id])
    assert Subscription.objects.filter(pk=call.subscription_id).exists()


def test_the_orm_refuses_it_too():
    call = CallRecordFactory()
    with pytest.raises(ProtectedError):
        call.subscription.delete()


def test_a_subscription_without_calls_can_still_be_deleted():
    CallRecordFactory()  # another subscription's call
    lonely = SubscriptionFactory()
    lonely.plan_periods.all().delete()
    with connection.cursor() as cur:
        cur.execute("DELETE FROM plans_subscription WHERE id = %s", [lonely.pk])
    assert not Subscription.objects.filter(pk=lonely.pk).exists()


@pytest.mark.parametrize("table", ["accounts_company", "plans_phonenumber"])
def test_nor_can_the_company_or_number_of_a_call_be_deleted(table):
    call = CallRecordFactory()
    key = call.company_id if table == "accounts_company" else call.number_id
    with (
        pytest.raises(IntegrityError),
        transaction.atomic(),
        connection.cursor() as cur,
    ):
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute(f"DELETE FROM {table} WHERE id = %s", [key])  # noqa: S608
