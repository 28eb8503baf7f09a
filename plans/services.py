"""Writes for choosing, holding and subscribing to numbers.

Lock order, everywhere: the company row, then the number row, then hold
rows. Every service that can race follows it, so two services never wait on
each other in a cycle. The database constraints (one open hold per number,
one live subscription per number) are the last line of defence behind the
row locks.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Company
from accounts.validators import normalize_cn_phone
from audit.services import audit_record

from .models import (
    AnswerNumber,
    Hold,
    PhoneNumber,
    Plan,
    Subscription,
    SubscriptionPlanPeriod,
    SubscriptionServicePeriod,
    ValueAddedService,
)
from .pricing import first_of_next_month, meets_min_monthly

logger = logging.getLogger(__name__)

OPEN_HOLD = Q(released_at__isnull=True, converted_at__isnull=True)
MAX_ANSWER_NUMBERS = 10


class PlansError(Exception):
    """A refusal the user can act on; ``message`` is already translated."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NumberUnavailable(PlansError):
    pass


class HoldLimitReached(PlansError):
    pass


class HoldNotOpen(PlansError):
    pass


class CompanyNotVerified(PlansError):
    pass


class PlanNotAllowed(PlansError):
    pass


class InvalidAnswerNumbers(PlansError):
    pass


class SubscriptionStateError(PlansError):
    pass


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or timezone.now()


def _today(today: dt.date | None) -> dt.date:
    return today or timezone.localdate()


# --- holds --------------------------------------------------------------------
def _release_expired_hold_of(number: PhoneNumber, *, now: dt.datetime) -> None:
    """Release-on-read: an expired hold never blocks anyone.

    The caller holds the lock on ``number``.
    """
    if number.status != PhoneNumber.Status.HELD:
        return
    expired = Hold.objects.filter(OPEN_HOLD, number=number, expires_at__lte=now)
    if expired.update(released_at=now):
        number.status = PhoneNumber.Status.AVAILABLE
        number.save(update_fields=["status"])


def number_hold(
    *, company: Company, number: PhoneNumber, by, now: dt.datetime | None = None
) -> Hold:
    """Hold ``number`` for ``company`` for HOTLINE_RESERVATION_MINUTES.

    Raises NumberUnavailable when someone else holds or owns it, and
    HoldLimitReached at HOTLINE_MAX_HOLDS_PER_COMPANY open holds.
    """
    now = _now(now)
    today = timezone.localdate(now)
    try:
        with transaction.atomic():
            # The company lock serialises one company's holds, so two tabs
            # cannot both take the last free slot.
            Company.objects.select_for_update().filter(pk=company.pk).first()
            locked = PhoneNumber.objects.select_for_update().get(pk=number.pk)
            _release_expired_hold_of(locked, now=now)
            rested = (
                locked.status == PhoneNumber.Status.QUARANTINE
                and locked.quarantine_until is not None
                and locked.quarantine_until <= today
            )
            if locked.status != PhoneNumber.Status.AVAILABLE and not rested:
                raise NumberUnavailable(
                    _(
                        "%(number)s has just been taken by another customer. "
                        "Please choose another number."
                    )
                    % {"number": locked.display}
                )
            open_holds = Hold.objects.filter(
                OPEN_HOLD, company=company, expires_at__gt=now
            ).count()
            limit = settings.HOTLINE_MAX_HOLDS_PER_COMPANY
            if open_holds >= limit:
                raise HoldLimitReached(
                    _(
                        "Your company already holds %(limit)d numbers, the "
                        "most allowed at once. Check out or cancel one first."
                    )
                    % {"limit": limit}
                )
            hold = Hold.objects.create(
                number=locked,
                company=company,
                created_by=by,
                expires_at=now
                + dt.timedelta(minutes=settings.HOTLINE_RESERVATION_MINUTES),
            )
            locked.status = PhoneNumber.Status.HELD
            locked.quarantine_until = None
            locked.save(update_fields=["status", "quarantine_until"])
    except IntegrityError:
        # Only reachable if a writer skipped the row lock: the constraint
        # still keeps the number single-held.
        raise NumberUnavailable(
            _("%(number)s has just been taken by another customer.")
            % {"number": number.display}
        ) from None
    logger.info("hold %s: %s for company %s", hold.pk, number.number, company.pk)
    return hold


def hold_cancel(*, hold: Hold, by, now: dt.datetime | None = None) -> None:
    """Give a held number back to stock now."""
    now = _now(now)
    with transaction.atomic():
        number = PhoneNumber.objects.select_for_update().get(pk=hold.number_id)
        updated = Hold.objects.filter(OPEN_HOLD, pk=hold.pk).update(released_at=now)
        if not updated:
            return
        if number.status == PhoneNumber.Status.HELD:
            number.status = PhoneNumber.Status.AVAILABLE
            number.save(update_fields=["status"])
    hold.released_at = now


def holds_release_expired(*, now: dt.datetime | None = None) -> int:
    """Release every expired open hold; returns how many were released.

    Numbers another transaction holds locked are skipped (it is checking out
    or re-holding them and will decide), and picked up next time.
    """
    now = _now(now)
    with transaction.atomic():
        number_ids = list(
            PhoneNumber.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                pk__in=Hold.objects.filter(OPEN_HOLD, expires_at__lte=now).values(
                    "number_id"
                )
            )
            .values_list("pk", flat=True)
        )
        if not number_ids:
            return 0
        released = Hold.objects.filter(
            OPEN_HOLD, number_id__in=number_ids, expires_at__lte=now
        ).update(released_at=now)
        PhoneNumber.objects.filter(
            pk__in=number_ids, status=PhoneNumber.Status.HELD
        ).update(status=PhoneNumber.Status.AVAILABLE)
    return released


def numbers_release_quarantine(*, today: dt.date | None = None) -> int:
    """Return numbers whose rest after release is over to stock."""
    today = _today(today)
    return PhoneNumber.objects.filter(
        status=PhoneNumber.Status.QUARANTINE, quarantine_until__lte=today
    ).update(status=PhoneNumber.Status.AVAILABLE, quarantine_until=None)


def stock_refresh(*, now: dt.datetime | None = None) -> None:
    """What the beat tasks do, done on read so search never lags behind."""
    now = _now(now)
    holds_release_expired(now=now)
    numbers_release_quarantine(today=timezone.localdate(now))


# --- checkout -----------------------------------------------------------------
def plan_refusal(*, plan: Plan, grade) -> str | None:
    """Why ``plan`` cannot be chosen for a number of ``grade``, or None."""
    if not plan.is_active:
        return _("This package is no longer offered.")
    if grade is not None and not meets_min_monthly(
        plan.price, plan.term_months, grade.min_monthly
    ):
        return _(
            "%(grade)s numbers need a package of at least ¥%(min)s per month; "
            "this one comes to ¥%(per_month)s per month."
        ) % {
            "grade": grade.name,
            "min": f"{grade.min_monthly:,.2f}",
            "per_month": f"{plan.monthly_equivalent:,.2f}",
        }
    return None


def answer_phones_clean(phones: Iterable[str]) -> list[str]:
    """Normalise answering numbers to E.164; refuse bad ones and repeats."""
    cleaned: list[str] = []
    errors: list[str] = []
    for raw in phones:
        raw = (raw or "").strip()
        if not raw:
            continue
        try:
            e164 = normalize_cn_phone(raw)
        except ValidationError:
            errors.append(
                _("“%(value)s” is not a Chinese mobile or landline number.")
                % {"value": raw}
            )
            continue
        if e164 in cleaned:
            errors.append(_("“%(value)s” is listed twice.") % {"value": raw})
            continue
        cleaned.append(e164)
    if errors:
        raise InvalidAnswerNumbers(" ".join(errors))
    if not cleaned:
        raise InvalidAnswerNumbers(_("Add at least one answering number."))
    if len(cleaned) > MAX_ANSWER_NUMBERS:
        raise InvalidAnswerNumbers(
            _("At most %(n)d answering numbers.") % {"n": MAX_ANSWER_NUMBERS}
        )
    return cleaned


def subscription_confirm(
    *,
    hold: Hold,
    plan: Plan,
    services: Iterable[ValueAddedService],
    answer_phones: Iterable[str],
    by,
    now: dt.datetime | None = None,
) -> Subscription:
    """Turn an open hold into a subscription awaiting activation.

    The periods are created without dates: activation sets them to the first
    billable day. The grade and selection fee are copied as agreed now.
    """
    now = _now(now)
    company = hold.company
    if not company.is_verified:
        raise CompanyNotVerified(
            _(
                "Your company's real-name verification is not complete yet. "
                "You can keep the number held; you can confirm once the "
                "business licence is approved."
            )
        )
    phones = answer_phones_clean(answer_phones)
    services = list(services)
    with transaction.atomic():
        number = (
            PhoneNumber.objects.select_for_update(of=("self",))
            .select_related("grade")
            .get(pk=hold.number_id)
        )
        locked = Hold.objects.select_for_update().get(pk=hold.pk)
        if (
            locked.company_id != company.pk
            or locked.released_at is not None
            or locked.converted_at is not None
            or locked.expires_at <= now
        ):
            raise HoldNotOpen(
                _(
                    "Your hold on %(number)s has ended. Search for the number "
                    "again to hold it."
                )
                % {"number": number.display}
            )
        grade = number.grade
        refusal = plan_refusal(plan=plan, grade=grade)
        if refusal:
            raise PlanNotAllowed(refusal)
        inactive = [s for s in services if not s.is_active]
        if inactive:
            raise PlanNotAllowed(
                _("%(service)s is no longer offered.") % {"service": inactive[0]}
            )
        subscription = Subscription.objects.create(
            company=company,
            number=number,
            status=Subscription.Status.PENDING,
            selection_fee=grade.selection_fee if grade else 0,
            grade=grade,
            confirmed_by=by,
        )
        SubscriptionPlanPeriod.objects.create(subscription=subscription, plan=plan)
        SubscriptionServicePeriod.objects.bulk_create(
            SubscriptionServicePeriod(subscription=subscription, service=s)
            for s in services
        )
        AnswerNumber.objects.bulk_create(
            AnswerNumber(subscription=subscription, phone=p) for p in phones
        )
        locked.converted_at = now
        locked.save(update_fields=["converted_at"])
        number.status = PhoneNumber.Status.SUBSCRIBED
        number.save(update_fields=["status"])
        audit_record(
            actor=by,
            action="subscription.confirm",
            target=subscription,
            after={
                "number": number.number,
                "plan": plan.code,
                "services": sorted(s.code for s in services),
                "answer_phones": phones,
                "selection_fee": subscription.selection_fee,
            },
        )
    logger.info("subscription %s confirmed for %s", subscription.pk, number.number)
    return subscription


def subscription_activate(*, subscription: Subscription, on: dt.date, by) -> None:
    """Agent staff put a confirmed number in service; ``on`` is the first
    billable day."""
    with transaction.atomic():
        sub = (
            Subscription.objects.select_for_update()
            .select_related("company")
            .get(pk=subscription.pk)
        )
        if sub.status != Subscription.Status.PENDING:
            raise SubscriptionStateError(
                _("%(number)s is not awaiting activation.")
                % {"number": sub.number.display}
            )
        if not sub.company.is_verified:
            raise CompanyNotVerified(
                _("%(company)s is not verified yet.") % {"company": sub.company}
            )
        sub.status = Subscription.Status.ACTIVE
        sub.activated_on = on
        sub.activated_by = by
        sub.save(update_fields=["status", "activated_on", "activated_by"])
        for model in (SubscriptionPlanPeriod, SubscriptionServicePeriod, AnswerNumber):
            model.objects.filter(subscription=sub, start_date__isnull=True).update(
                start_date=on
            )
        PhoneNumber.objects.filter(pk=sub.number_id).update(
            status=PhoneNumber.Status.SUBSCRIBED
        )
        audit_record(
            actor=by,
            action="subscription.activate",
            target=sub,
            before={"status": Subscription.Status.PENDING, "activated_on": None},
            after={"status": sub.status, "activated_on": on},
        )
    subscription.refresh_from_db()


# --- changes from the portal --------------------------------------------------
def _locked_live(subscription: Subscription) -> Subscription:
    sub = Subscription.objects.select_for_update().get(pk=subscription.pk)
    if sub.status not in (Subscription.Status.PENDING, Subscription.Status.ACTIVE):
        raise SubscriptionStateError(_("This number is no longer in service."))
    return sub


def change_effective_date(*, subscription: Subscription, today: dt.date) -> dt.date:
    """Portal changes take effect on the 1st of next month (BILLING-RULES §4),
    or on the activation date when that is later."""
    effective = first_of_next_month(today)
    if subscription.activated_on and subscription.activated_on > effective:
        return subscription.activated_on
    return effective


def subscription_change_plan(
    *, subscription: Subscription, plan: Plan, by, today: dt.date | None = None
) -> SubscriptionPlanPeriod:
    """Switch to ``plan`` from the 1st of next month.

    The plan in force ends on the last day of this month. A change already
    scheduled for that day is replaced. Before activation the chosen plan is
    simply swapped.
    """
    today = _today(today)
    with transaction.atomic():
        sub = _locked_live(subscription)
        refusal = plan_refusal(plan=plan, grade=sub.grade)
        if refusal:
            raise PlanNotAllowed(refusal)
        before = _plan_periods(sub)
        period = _change_plan(sub, plan, today)
        audit_record(
            actor=by,
            action="subscription.change_plan",
            target=sub,
            before={"plan_periods": before},
            after={"plan_periods": _plan_periods(sub)},
        )
        return period


def _plan_periods(sub: Subscription) -> list[list]:
    return [
        [code, start, end]
        for code, start, end in SubscriptionPlanPeriod.objects.filter(subscription=sub)
        .order_by("start_date", "pk")
        .values_list("plan__code", "start_date", "end_date")
    ]


def _change_plan(sub: Subscription, plan: Plan, today: dt.date):
    """The body of subscription_change_plan, run under its lock."""
    periods = SubscriptionPlanPeriod.objects.filter(subscription=sub)
    if sub.status == Subscription.Status.PENDING:
        period = periods.get(start_date__isnull=True)
        period.plan = plan
        period.save(update_fields=["plan"])
        return period
    effective = change_effective_date(subscription=sub, today=today)
    periods.filter(start_date__gte=effective).delete()
    current = periods.filter(start_date__lt=effective).order_by("-start_date").first()
    if current is not None and current.plan_id == plan.pk:
        # Back to the plan in force: cancel the scheduled change.
        current.end_date = None
        current.save(update_fields=["end_date"])
        return current
    if current is not None:
        current.end_date = effective - dt.timedelta(days=1)
        current.save(update_fields=["end_date"])
    return SubscriptionPlanPeriod.objects.create(
        subscription=sub, plan=plan, start_date=effective
    )


def subscription_change_services(
    *,
    subscription: Subscription,
    services: Iterable[ValueAddedService],
    by,
    today: dt.date | None = None,
) -> None:
    """Make ``services`` the value-added services from the 1st of next month."""
    today = _today(today)
    wanted = {s.pk: s for s in services}
    with transaction.atomic():
        sub = _locked_live(subscription)
        before = _service_periods(sub)
        _change_services(sub, wanted, today)
        audit_record(
            actor=by,
            action="subscription.change_services",
            target=sub,
            before={"service_periods": before},
            after={"service_periods": _service_periods(sub)},
        )


def _service_periods(sub: Subscription) -> list[list]:
    return [
        [code, start, end]
        for code, start, end in SubscriptionServicePeriod.objects.filter(
            subscription=sub
        )
        .order_by("service__code", "start_date", "pk")
        .values_list("service__code", "start_date", "end_date")
    ]


def _change_services(sub: Subscription, wanted: dict, today: dt.date) -> None:
    """The body of subscription_change_services, run under its lock."""
    periods = SubscriptionServicePeriod.objects.filter(subscription=sub)
    if sub.status == Subscription.Status.PENDING:
        periods.exclude(service_id__in=wanted).delete()
        have = set(periods.values_list("service_id", flat=True))
        SubscriptionServicePeriod.objects.bulk_create(
            SubscriptionServicePeriod(subscription=sub, service=s)
            for pk, s in wanted.items()
            if pk not in have
        )
        return
    effective = change_effective_date(subscription=sub, today=today)
    last_day = effective - dt.timedelta(days=1)
    # Additions scheduled earlier that are no longer wanted.
    periods.filter(start_date__gte=effective).exclude(service_id__in=wanted).delete()
    in_force = periods.filter(start_date__lt=effective).filter(
        Q(end_date__isnull=True) | Q(end_date__gte=last_day)
    )
    for period in in_force:
        end = None if period.service_id in wanted else last_day
        if period.end_date != end:
            period.end_date = end
            period.save(update_fields=["end_date"])
    have = set(in_force.values_list("service_id", flat=True)) | set(
        periods.filter(start_date__gte=effective).values_list("service_id", flat=True)
    )
    SubscriptionServicePeriod.objects.bulk_create(
        SubscriptionServicePeriod(subscription=sub, service=s, start_date=effective)
        for pk, s in wanted.items()
        if pk not in have
    )


def subscription_change_answer_numbers(
    *,
    subscription: Subscription,
    phones: Iterable[str],
    by,
    today: dt.date | None = None,
) -> list[str]:
    """Make ``phones`` the numbers that ring, from today; returns them (E.164).

    Where calls ring changes at once, not from the 1st like a package: a
    number kept keeps its period, a number dropped stops ringing after
    yesterday (or disappears if it was added today), a new number rings from
    today. Extra
    answering numbers are billed by the day they are bound (BILLING-RULES),
    so a change costs only the days it is in force.
    """
    today = _today(today)
    phones = answer_phones_clean(phones)
    with transaction.atomic():
        sub = _locked_live(subscription)
        before = _answer_periods(sub)
        _change_answer_numbers(sub, phones, today)
        audit_record(
            actor=by,
            action="subscription.change_answer_numbers",
            target=sub,
            before={"answer_numbers": before},
            after={"answer_numbers": _answer_periods(sub)},
        )
    return phones


def _answer_periods(sub: Subscription) -> list[list]:
    return [
        [phone, start, end]
        for phone, start, end in AnswerNumber.objects.filter(subscription=sub)
        .order_by("start_date", "pk")
        .values_list("phone", "start_date", "end_date")
    ]


def _change_answer_numbers(sub: Subscription, phones: list[str], today: dt.date):
    """The body of subscription_change_answer_numbers, run under its lock."""
    rows = AnswerNumber.objects.filter(subscription=sub)
    if sub.status == Subscription.Status.PENDING:
        # Not switched on yet: no dates, the list is simply replaced.
        rows.exclude(phone__in=phones).delete()
        have = set(rows.values_list("phone", flat=True))
        AnswerNumber.objects.bulk_create(
            AnswerNumber(subscription=sub, phone=p) for p in phones if p not in have
        )
        return
    start = max(today, sub.activated_on or today)
    # Numbers added today (or for later) and no longer wanted never rang.
    rows.filter(start_date__gte=start).exclude(phone__in=phones).delete()
    in_force = rows.filter(Q(end_date__isnull=True) | Q(end_date__gte=start))
    for row in in_force:
        end = None if row.phone in phones else start - dt.timedelta(days=1)
        if row.end_date != end:
            row.end_date = end
            row.save(update_fields=["end_date"])
    have = set(
        rows.filter(Q(end_date__isnull=True) | Q(end_date__gte=start)).values_list(
            "phone", flat=True
        )
    )
    AnswerNumber.objects.bulk_create(
        AnswerNumber(subscription=sub, phone=p, start_date=start)
        for p in phones
        if p not in have
    )


def subscription_end(
    *, subscription: Subscription, by, today: dt.date | None = None
) -> Subscription:
    """End service today; the number rests for HOTLINE_QUARANTINE_DAYS.

    A subscription not yet in service is cancelled instead, and its number
    goes straight back to stock.
    """
    today = _today(today)
    with transaction.atomic():
        sub = _locked_live(subscription)
        before = {"status": sub.status, "ended_on": sub.ended_on}
        sub = _end(sub, today)
        audit_record(
            actor=by,
            action="subscription.end",
            target=sub,
            before=before,
            after={"status": sub.status, "ended_on": sub.ended_on},
        )
    logger.info("subscription %s ended on %s (%s)", sub.pk, today, sub.status)
    return sub


def _end(sub: Subscription, today: dt.date) -> Subscription:
    """The body of subscription_end, run under its lock."""
    number = PhoneNumber.objects.select_for_update().get(pk=sub.number_id)
    if sub.status == Subscription.Status.PENDING or (
        sub.activated_on and sub.activated_on > today
    ):
        sub.status = Subscription.Status.CANCELLED
        sub.save(update_fields=["status"])
        number.status = PhoneNumber.Status.AVAILABLE
        number.quarantine_until = None
        number.save(update_fields=["status", "quarantine_until"])
        return sub
    sub.status = Subscription.Status.ENDED
    sub.ended_on = today
    sub.save(update_fields=["status", "ended_on"])
    for model in (SubscriptionPlanPeriod, SubscriptionServicePeriod, AnswerNumber):
        rows = model.objects.filter(subscription=sub)
        rows.filter(start_date__gt=today).delete()
        rows.filter(Q(end_date__isnull=True) | Q(end_date__gt=today)).update(
            end_date=today
        )
    number.status = PhoneNumber.Status.QUARANTINE
    number.quarantine_until = today + dt.timedelta(
        days=settings.HOTLINE_QUARANTINE_DAYS
    )
    number.save(update_fields=["status", "quarantine_until"])
    return sub
