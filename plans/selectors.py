"""Reads for the number search, holds, checkout and subscriptions.

Selectors that return a company's data take the company and filter on it, so
a view cannot show one tenant another's rows by passing the wrong id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import (
    DecimalField,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    Lookup,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Concat
from django.utils import timezone

from accounts.models import Company

from . import pricing
from .models import (
    AnswerNumber,
    CatalogSettings,
    Hold,
    PhoneNumber,
    Plan,
    Subscription,
    SubscriptionPlanPeriod,
    SubscriptionServicePeriod,
    ValueAddedService,
    VanityGrade,
)
from .numbers import LENGTH
from .search import InvalidSearch, LikePattern, pattern_to_like
from .services import OPEN_HOLD, plan_refusal

PER_PAGE = 20
# Searches page through at most this many matches; narrower criteria find
# the rest. The count stops at COUNT_CAP: "more than 200 numbers match" says
# all a customer needs, and a million-row COUNT(*) per page would cost more
# than the page itself.
MAX_RESULTS = 1000
COUNT_CAP = 200
ORDINARY = "ordinary"
# Use the digit-token index for patterns expected to match at most this
# share of the stock. Denser patterns are found faster by walking the
# covering number index (migration 0005, index-only) until the page and the
# capped count are full: measured at 1M numbers, "ends with 88" (1%) takes
# 7–25 ms walking and 55 ms through the tokens.
TOKEN_MAX_SHARE = 0.002
# "Contains" uses the trigram index from this many digits; fewer digits have
# no trigram to look up.
TRIGRAM_MIN_DIGITS = 3
SORTS = {
    "number": ("number",),
    "fee": ("selection_fee", "number"),
    "-fee": ("-selection_fee", "number"),
}


class Like(Lookup):
    """``number LIKE pattern`` with ``_`` and ``%`` kept as wildcards
    (``contains`` would escape them).

    The column is wrapped (``number || ''``) on purpose: a pattern such as
    ``400*3*2*75`` has no three known digits in a row, and a trigram index
    scan for it reads the whole index. Such patterns are narrowed by the
    digit-token index instead, or found by walking the number index.
    """

    lookup_name = "like"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"({lhs} || '') LIKE {rhs}", [*lhs_params, *rhs_params]


PhoneNumber._meta.get_field("number").register_lookup(Like)


class DigitTokens(Func):
    """``plans_digit_tokens(number)``: see plans.search.digit_tokens."""

    function = "plans_digit_tokens"
    output_field = ArrayField(IntegerField())


# --- number search ------------------------------------------------------------
@dataclass(frozen=True)
class SearchCriteria:
    pattern: LikePattern | None = None
    contains: str = ""
    ends_with: str = ""
    grade: str = ""  # "" any, ORDINARY, or a grade code
    carrier: str = ""
    no_four: bool = False
    max_fee: Decimal | None = None
    sort: str = "number"


@dataclass(frozen=True)
class SearchPage:
    numbers: list[PhoneNumber]
    page: int
    per_page: int
    total: int  # capped at COUNT_CAP + 1
    has_next: bool

    @property
    def total_capped(self) -> bool:
        return self.total > COUNT_CAP

    @property
    def shown_total(self) -> int:
        return min(self.total, COUNT_CAP)

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def pages(self) -> int:
        return max(1, -(-self.shown_total // self.per_page))

    @property
    def start_index(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.numbers else 0


def numbers_in_stock() -> QuerySet[PhoneNumber]:
    """Numbers a company may hold now.

    Numbers whose rest after release is over, and numbers under an expired
    hold, are returned to ``available`` by ``plans.services.stock_refresh``
    (on read) and the beat tasks.
    """
    return PhoneNumber.objects.filter(status=PhoneNumber.Status.AVAILABLE)


def _ends_with_pattern(digits: str) -> LikePattern | None:
    """ "Ends with 8888" is the whole-number pattern ``******8888``."""
    if not digits:
        return None
    try:
        return pattern_to_like("*" * (LENGTH - len(digits)) + digits)
    except InvalidSearch:
        # Ten digits that do not start with 400: no number ends so.
        return LikePattern(like="", whole=True, token_sets=())


def _filter_pattern(qs, pattern: LikePattern):
    if pattern.token_sets is not None and not pattern.token_sets:
        return qs.none()
    qs = qs.filter(number__like=pattern.like)
    if pattern.expected_share <= TOKEN_MAX_SHARE and connection.vendor == "postgresql":
        # Redundant with the LIKE, but answered by the GIN index on
        # plans_digit_tokens(number) (migration 0004). A pattern matching many
        # numbers is found faster by walking the number index.
        narrow = Q()
        for tokens in pattern.token_sets:
            narrow |= Q(tokens__contains=list(tokens))
        qs = qs.alias(tokens=DigitTokens("number")).filter(narrow)
    return qs


def _unindexed(field: str):
    name = field.lstrip("-")
    if name == "number":
        expr = Concat(F("number"), Value(""))
    else:
        expr = ExpressionWrapper(F(name) + 0, output_field=DecimalField())
    return expr.desc() if field.startswith("-") else expr.asc()


def number_search_queryset(criteria: SearchCriteria) -> QuerySet[PhoneNumber]:
    qs = numbers_in_stock()
    for pattern in (criteria.pattern, _ends_with_pattern(criteria.ends_with)):
        if pattern is not None:
            qs = _filter_pattern(qs, pattern)
    sort = SORTS.get(criteria.sort, SORTS["number"])
    trigram = len(criteria.contains) >= TRIGRAM_MIN_DIGITS
    if trigram:
        qs = qs.filter(number__contains=criteria.contains)
    elif criteria.contains:
        qs = qs.filter(number__like=f"%{criteria.contains}%")
    if criteria.grade == ORDINARY:
        qs = qs.filter(grade__isnull=True)
    elif criteria.grade:
        # By id, not by a join on the code, so the planner sees how rare
        # the grade is from the column's statistics.
        grade_id = (
            VanityGrade.objects.filter(code=criteria.grade)
            .values_list("pk", flat=True)
            .first()
        )
        if grade_id is None:
            return qs.none()
        qs = qs.filter(grade_id=grade_id)
    if criteria.grade:
        # Every number of a grade has the grade's fee, so within a grade the
        # fee orders are the number order: say so, and use the grade index.
        sort = SORTS["number"]
    if trigram:
        # Three digits anywhere match under 1% of the stock, but the planner
        # guesses more and would walk the number index past most of the
        # table to reach a deep page. Ordering by expressions no index holds
        # leaves it the trigram bitmap and a small sort.
        return qs.order_by(*(_unindexed(field) for field in sort))
    if criteria.carrier:
        qs = qs.filter(carrier=criteria.carrier)
    if criteria.no_four:
        qs = qs.filter(has_four=False)
    if criteria.max_fee is not None:
        qs = qs.filter(selection_fee__lte=criteria.max_fee)
    return qs.order_by(*sort)


def count_capped(qs: QuerySet) -> int:
    return qs[: COUNT_CAP + 1].count()


def number_search(
    *, criteria: SearchCriteria, page: int = 1, per_page: int = PER_PAGE
) -> SearchPage:
    """One page of numbers in stock matching ``criteria``.

    The count stops at COUNT_CAP + 1 and pages beyond MAX_RESULTS are not
    served: a million-row COUNT(*) per page would cost more than the page.
    """
    last_page = max(1, MAX_RESULTS // per_page)
    page = min(max(1, page), last_page)
    qs = number_search_queryset(criteria)
    offset = (page - 1) * per_page
    rows = list(
        qs.select_related("grade").only(
            "number",
            "carrier",
            "selection_fee",
            "has_four",
            "grade__code",
            "grade__name_zh",
            "grade__name_en",
            "grade__min_monthly",
            "grade__selection_fee",
        )[offset : offset + per_page + 1]
    )
    has_next = len(rows) > per_page and page < last_page
    # Counted in the page's order, so the planner takes the same path (a
    # carrier's numbers sit together: unordered, it may scan the others').
    total = count_capped(qs)
    return SearchPage(
        numbers=rows[:per_page],
        page=page,
        per_page=per_page,
        total=total,
        has_next=has_next,
    )


def search_grades() -> list[VanityGrade]:
    return list(VanityGrade.objects.filter(is_active=True).order_by("-priority"))


def number_for_hold(*, number: str) -> PhoneNumber:
    """The inventory row of a canonical number (any status)."""
    return PhoneNumber.objects.select_related("grade").get(number=number)


# --- holds --------------------------------------------------------------------
def company_open_holds(*, company: Company, now: dt.datetime | None = None):
    now = now or timezone.now()
    return (
        Hold.objects.filter(OPEN_HOLD, company=company, expires_at__gt=now)
        .select_related("number", "number__grade")
        .order_by("expires_at")
    )


def company_hold(*, company: Company, pk: int) -> Hold:
    """A hold of ``company`` (any state); Hold.DoesNotExist for others'."""
    return Hold.objects.select_related("number", "number__grade", "company").get(
        company=company, pk=pk
    )


# --- checkout -----------------------------------------------------------------
@dataclass(frozen=True)
class PlanChoice:
    plan: Plan
    refusal: str | None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def active_plans() -> QuerySet[Plan]:
    return Plan.objects.filter(is_active=True).prefetch_related(
        Prefetch(
            "included_services",
            queryset=ValueAddedService.objects.order_by("sort_order", "code"),
        )
    )


def plan_choices(*, grade: VanityGrade | None) -> list[PlanChoice]:
    """Every active plan, with why it cannot be chosen for this grade."""
    return [
        PlanChoice(plan=p, refusal=plan_refusal(plan=p, grade=grade))
        for p in active_plans()
    ]


def active_services() -> QuerySet[ValueAddedService]:
    return ValueAddedService.objects.filter(is_active=True)


def plan_terms(plan: Plan) -> pricing.PlanTerms:
    return pricing.PlanTerms(
        name=plan.name,
        term_months=plan.term_months,
        price=plan.price,
        included_minutes=plan.included_minutes,
        rate_inbound_peak=plan.rate_inbound_peak,
        rate_inbound_offpeak=plan.rate_inbound_offpeak,
        rate_outbound=plan.rate_outbound,
        included_answer_numbers=plan.included_answer_numbers,
        included_service_codes=frozenset(s.code for s in plan.included_services.all()),
    )


def checkout_quote(
    *,
    plan: Plan,
    services: list[ValueAddedService],
    answer_numbers: int,
    selection_fee: Decimal,
    activation: dt.date,
) -> pricing.Quote:
    catalog = CatalogSettings.load()
    return pricing.quote(
        plan=plan_terms(plan),
        services=[
            pricing.ServiceTerms(code=s.code, name=s.name, monthly_fee=s.monthly_fee)
            for s in services
        ],
        answer_numbers=answer_numbers,
        extra_answer_fee=catalog.extra_answer_number_fee,
        selection_fee=selection_fee,
        activation=activation,
    )


def extra_answer_number_fee() -> Decimal:
    return CatalogSettings.load().extra_answer_number_fee


# --- subscriptions ------------------------------------------------------------
LIVE = (Subscription.Status.PENDING, Subscription.Status.ACTIVE)


def company_subscriptions(*, company: Company) -> QuerySet[Subscription]:
    return (
        Subscription.objects.filter(company=company)
        .select_related("number", "grade")
        .prefetch_related(
            Prefetch(
                "plan_periods",
                queryset=SubscriptionPlanPeriod.objects.select_related("plan"),
            )
        )
        .order_by("status", "-confirmed_at")
    )


def company_subscription(*, company: Company, pk: int) -> Subscription:
    """A subscription of ``company``; Subscription.DoesNotExist for others'."""
    return Subscription.objects.select_related("number", "grade", "company").get(
        company=company, pk=pk
    )


def plan_period_on(
    *, subscription: Subscription, on: dt.date
) -> SubscriptionPlanPeriod | None:
    """The plan period in force on ``on``; before activation, the chosen one."""
    periods = SubscriptionPlanPeriod.objects.filter(
        subscription=subscription
    ).select_related("plan")
    if subscription.activated_on is None:
        return periods.filter(start_date__isnull=True).first()
    if on < subscription.activated_on:
        on = subscription.activated_on
    return (
        periods.filter(start_date__lte=on)
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=on))
        .order_by("-start_date")
        .first()
    )


def scheduled_plan_period(
    *, subscription: Subscription, today: dt.date
) -> SubscriptionPlanPeriod | None:
    """A plan change waiting for the 1st of next month, if any."""
    return (
        SubscriptionPlanPeriod.objects.filter(
            subscription=subscription, start_date__gt=today
        )
        .select_related("plan")
        .order_by("start_date")
        .first()
    )


@dataclass(frozen=True)
class ServiceLine:
    service: ValueAddedService
    start_date: dt.date | None
    end_date: dt.date | None
    included: bool
    scheduled: bool  # starts after today


def subscription_services(
    *, subscription: Subscription, today: dt.date, plan: Plan | None
) -> list[ServiceLine]:
    """Services in force today or scheduled to start, with included ones marked."""
    included = (
        set(plan.included_services.values_list("pk", flat=True)) if plan else set()
    )
    periods = (
        SubscriptionServicePeriod.objects.filter(subscription=subscription)
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=today))
        .select_related("service")
        .order_by("service__sort_order", "service__code", "start_date")
    )
    return [
        ServiceLine(
            service=p.service,
            start_date=p.start_date,
            end_date=p.end_date,
            included=p.service_id in included,
            scheduled=p.start_date is not None and p.start_date > today,
        )
        for p in periods
    ]


def services_from(*, subscription: Subscription, on: dt.date) -> set[int]:
    """Ids of the services the subscription will have on ``on``."""
    periods = SubscriptionServicePeriod.objects.filter(subscription=subscription)
    if subscription.activated_on is None:
        return set(periods.values_list("service_id", flat=True))
    return set(
        periods.filter(Q(start_date__isnull=True) | Q(start_date__lte=on))
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=on))
        .values_list("service_id", flat=True)
    )


def subscription_answer_numbers(*, subscription: Subscription, today: dt.date):
    return AnswerNumber.objects.filter(subscription=subscription).filter(
        Q(end_date__isnull=True) | Q(end_date__gte=today)
    )


def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


@dataclass(frozen=True)
class PoolStatus:
    """The minute pool serving ``on``: a calendar month or a plan's term."""

    plan: Plan
    is_term: bool
    start: dt.date
    end: dt.date
    included: int
    used: int

    @property
    def remaining(self) -> int:
        return max(0, self.included - self.used)


def pool_minutes_used(
    *, company: Company, subscription: Subscription, start: dt.date, end: dt.date
) -> int:
    """Minutes taken from the pool by calls started from ``start`` to ``end``."""
    from billing.models import CallRecord

    total = CallRecord.objects.filter(
        company=company,
        subscription=subscription,
        start_time__gte=_local_midnight(start),
        start_time__lt=_local_midnight(end + dt.timedelta(days=1)),
    ).aggregate(total=Sum("pool_minutes"))["total"]
    return int(total or 0)


def subscription_pool(
    *, company: Company, subscription: Subscription, on: dt.date
) -> PoolStatus | None:
    """The pool in force on ``on``, and how much of it calls have used.

    A term plan's pool serves its whole term (BILLING-RULES §4); a monthly
    plan's serves the calendar month, prorated in a partly active month.
    """
    if subscription.company_id != company.pk or subscription.activated_on is None:
        return None
    if on < subscription.activated_on:
        return None
    period = plan_period_on(subscription=subscription, on=on)
    if period is None or period.start_date is None:
        return None
    plan = period.plan
    if plan.is_term_plan:
        start, end = pricing.term_bounds(period.start_date, plan.term_months, on)
        included = plan.included_minutes
    else:
        month_start = on.replace(day=1)
        month_end = pricing.last_day_of_month(on)
        start = max(month_start, subscription.activated_on, period.start_date)
        end = month_end
        if subscription.ended_on:
            end = min(end, subscription.ended_on)
        active = (end - start).days + 1
        included = pricing.prorated_pool(
            plan.included_minutes, active, pricing.days_in_month(on)
        )
    used = pool_minutes_used(
        company=company, subscription=subscription, start=start, end=end
    )
    return PoolStatus(
        plan=plan,
        is_term=plan.is_term_plan,
        start=start,
        end=end,
        included=included,
        used=used,
    )


@dataclass(frozen=True)
class Forfeiture:
    minutes: int
    term_end: dt.date
    leave_on: dt.date  # the last day under the term plan


def term_forfeiture(
    *, company: Company, subscription: Subscription, leave_on: dt.date, today: dt.date
) -> Forfeiture | None:
    """Minutes of a term plan's pool lost by leaving it after ``leave_on``.

    BILLING-RULES §4: leaving a term plan before its end forfeits the
    remaining pool. The figure is the pool left today; calls until
    ``leave_on`` draw on it first. None when no term pool is cut short.
    """
    if subscription.activated_on is None:
        return None
    period = plan_period_on(subscription=subscription, on=leave_on)
    if period is None or not period.plan.is_term_plan or period.start_date is None:
        return None
    start, end = pricing.term_bounds(
        period.start_date, period.plan.term_months, max(leave_on, period.start_date)
    )
    if end <= leave_on:
        return None
    used = pool_minutes_used(
        company=company, subscription=subscription, start=start, end=max(start, today)
    )
    return Forfeiture(
        minutes=pricing.forfeited_minutes(period.plan.included_minutes, used),
        term_end=end,
        leave_on=leave_on,
    )
