"""Shared fixtures. The suite runs on the real stack: PostgreSQL and Redis."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import check_stack


def pytest_sessionstart(session):
    errors = check_stack.problems()
    if errors:
        pytest.exit("\n".join(errors), returncode=3)


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Every test writes uploads to its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def agent(db):
    from tests.factories import AgentFactory

    return AgentFactory()


@pytest.fixture
def company(agent):
    from tests.factories import CompanyFactory

    return CompanyFactory(agent=agent)


@pytest.fixture
def owner(company):
    from tests.factories import UserFactory

    return UserFactory(company=company, role="owner")


@pytest.fixture
def agent_staff(agent):
    from tests.factories import AgentStaffFactory

    return AgentStaffFactory(agent=agent)
