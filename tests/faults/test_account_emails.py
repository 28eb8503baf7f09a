"""Account emails (invitations, verification decisions, password resets)
survive a worker killed while sending: the task is acknowledged late, so the
worker rejects it back to the queue when its pool process dies and another
process sends the email.
"""

import asyncio

import pytest

from accounts.services import invitation_create
from tests.conftest import SmtpServer, wait_for
from tests.factories import CompanyFactory, UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


class StallingSmtpServer(SmtpServer):
    """Accepts connections but stalls the first message's data for a minute:
    the sending worker is stuck in the middle of the SMTP conversation."""

    def __init__(self, port: int):
        super().__init__(port)
        self.stalled = 0

    async def handle_DATA(self, server, session, envelope):
        self.stalled += 1
        if self.stalled == 1:
            await asyncio.sleep(60)
            return "451 Too late"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def stalling_smtp(smtp_port):
    server = StallingSmtpServer(smtp_port)
    server.start()
    yield server
    server.stop()


def test_an_invitation_is_sent_even_if_the_worker_dies_while_sending(
    start_worker, fault_broker, stalling_smtp
):
    # given a worker whose broker would redeliver a lost task only after two
    # hours (so only the worker itself can put the task back)
    fault_broker.transport_options["visibility_timeout"] = 2 * 60 * 60
    worker = start_worker()
    owner = UserFactory(company=CompanyFactory(), role="owner")

    # when an owner invites a colleague and the worker's pool process is
    # killed while it is handing the email to the SMTP server
    invitation_create(
        company=owner.company, by=owner, email="colleague@example.cn", role="member"
    )
    wait_for(lambda: stalling_smtp.stalled == 1, timeout=60, interval=0.05)
    assert worker.kill_pool_processes()

    # then the task goes back to the queue and the invitation arrives once
    wait_for(lambda: stalling_smtp.messages, timeout=60)
    (envelope, _msg), *others = stalling_smtp.messages
    assert envelope.rcpt_tos == ["colleague@example.cn"]
    assert others == []
    assert "WorkerLostError" in worker.output()
