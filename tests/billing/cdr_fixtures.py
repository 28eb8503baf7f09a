"""Shared set-up of the CDR import tests: two agents, their numbers, the files."""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.factories import (
    AgentFactory,
    AgentStaffFactory,
    CompanyFactory,
    PhoneNumberFactory,
    PlanFactory,
    SubscriptionFactory,
)

FILES = Path(__file__).resolve().parent / "files"


@dataclass
class CdrWorld:
    agent: object
    other_agent: object
    staff: object
    other_staff: object
    sub_a1: object  # 400-810-0001, agent A, active from 2026-03-01
    sub_a2: object  # 400-810-0002, agent A, active from 2026-03-10
    sub_b1: object  # 400-820-0001, agent B, active from 2026-03-01


@pytest.fixture
def cdr_world(db) -> CdrWorld:
    agent = AgentFactory()
    other = AgentFactory()
    plan = PlanFactory(included_minutes=100)
    ca1 = CompanyFactory(agent=agent)
    ca2 = CompanyFactory(agent=agent)
    cb = CompanyFactory(agent=other)
    sub_a1 = SubscriptionFactory(
        company=ca1,
        number=PhoneNumberFactory(number="4008100001", status="subscribed"),
        activated_on=dt.date(2026, 3, 1),
        plan=plan,
    )
    sub_a2 = SubscriptionFactory(
        company=ca2,
        number=PhoneNumberFactory(number="4008100002", status="subscribed"),
        activated_on=dt.date(2026, 3, 10),
        plan=plan,
    )
    sub_b1 = SubscriptionFactory(
        company=cb,
        number=PhoneNumberFactory(number="4008200001", status="subscribed"),
        activated_on=dt.date(2026, 3, 1),
        plan=plan,
    )
    PhoneNumberFactory(number="4008300001")  # in stock, never subscribed
    return CdrWorld(
        agent=agent,
        other_agent=other,
        staff=AgentStaffFactory(agent=agent),
        other_staff=AgentStaffFactory(agent=other),
        sub_a1=sub_a1,
        sub_a2=sub_a2,
        sub_b1=sub_b1,
    )
