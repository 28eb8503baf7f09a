"""Portal pages: search and hold numbers, check out, manage subscriptions,
compare packages. Thin: parse input, call a service or selector, render."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.decorators import company_member_required, owner_required

from . import pricing, selectors, services
from .forms import (
    AnswerNumbersForm,
    CheckoutForm,
    EndSubscriptionForm,
    HoldForm,
    NumberSearchForm,
    PlanChangeForm,
    ServicesChangeForm,
)
from .models import CatalogSettings, Hold, PhoneNumber, Subscription


def _hold_or_404(request, pk: int) -> Hold:
    try:
        return selectors.company_hold(company=request.user.company, pk=pk)
    except Hold.DoesNotExist:
        raise Http404 from None


def _subscription_or_404(request, pk: int) -> Subscription:
    try:
        return selectors.company_subscription(company=request.user.company, pk=pk)
    except Subscription.DoesNotExist:
        raise Http404 from None


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- search and holds ---------------------------------------------------------
@company_member_required
def search(request):
    services.stock_refresh()
    form = NumberSearchForm(request.GET or None)
    result = None
    if form.is_bound and form.is_valid():
        result = selectors.number_search(
            criteria=form.criteria(), page=form.cleaned_data.get("page") or 1
        )
    elif not form.is_bound:
        result = selectors.number_search(criteria=selectors.SearchCriteria())
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "plans/search.html",
        {
            "form": form,
            "result": result,
            "query": query.urlencode(),
            "max_results": selectors.MAX_RESULTS,
            "count_cap": selectors.COUNT_CAP,
            "open_holds": selectors.company_open_holds(company=request.user.company),
        },
    )


@require_POST
@owner_required
def hold(request):
    form = HoldForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["number"]))
        return redirect("plans:search")
    try:
        number = selectors.number_for_hold(number=form.cleaned_data["number"])
    except PhoneNumber.DoesNotExist:
        messages.error(request, _("This number is not in our inventory."))
        return redirect("plans:search")
    try:
        new_hold = services.number_hold(
            company=request.user.company, number=number, by=request.user
        )
    except services.PlansError as exc:
        messages.error(request, exc.message)
        back = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(
            back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            back = "plans:search"
        return redirect(back)
    messages.success(
        request,
        _("%(number)s is held for you until %(time)s.")
        % {
            "number": number.display,
            "time": timezone.localtime(new_hold.expires_at).strftime("%H:%M"),
        },
    )
    return redirect("plans:checkout", pk=new_hold.pk)


@require_http_methods(["GET", "POST"])
@owner_required
def hold_cancel(request, pk: int):
    """GET asks for confirmation (anyone may take the number next); POST
    releases it."""
    the_hold = _hold_or_404(request, pk)
    if request.method == "GET":
        if the_hold.released_at or the_hold.converted_at:
            messages.info(
                request,
                _("%(number)s is no longer held.")
                % {"number": the_hold.number.display},
            )
            return redirect("plans:my_numbers")
        return render(request, "plans/hold_cancel.html", {"hold": the_hold})
    services.hold_cancel(hold=the_hold, by=request.user)
    messages.success(
        request,
        _("%(number)s is released.") % {"number": the_hold.number.display},
    )
    return redirect("plans:my_numbers")


# --- checkout -----------------------------------------------------------------
@owner_required
def checkout(request, pk: int):
    the_hold = _hold_or_404(request, pk)
    now = timezone.now()
    if the_hold.released_at or the_hold.converted_at or the_hold.expires_at <= now:
        messages.error(
            request,
            _("Your hold on %(number)s has ended. Search for the number again.")
            % {"number": the_hold.number.display},
        )
        return redirect("plans:my_numbers")
    company = request.user.company
    number = the_hold.number
    grade = number.grade
    choices = selectors.plan_choices(grade=grade)
    refusals = {c.plan.pk: c.refusal for c in choices if c.refusal}
    action = request.POST.get("action", "")
    initial = {"answer_phones": company.contact_phone}
    allowed = [c.plan for c in choices if c.allowed]
    if allowed:
        initial["plan"] = allowed[0].pk
    form = CheckoutForm(request.POST or None, refusals=refusals, initial=initial)
    quote = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if action == "confirm":
            try:
                subscription = services.subscription_confirm(
                    hold=the_hold,
                    plan=data["plan"],
                    services=data["services"],
                    answer_phones=data["answer_phones"],
                    by=request.user,
                )
            except services.PlansError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(
                    request,
                    _(
                        "Thank you. %(number)s is confirmed and waits for "
                        "activation by your agent."
                    )
                    % {"number": number.display},
                )
                return redirect("plans:subscription", pk=subscription.pk)
        if action in ("review", "confirm"):
            quote = selectors.checkout_quote(
                plan=data["plan"],
                services=list(data["services"]),
                answer_numbers=len(data["answer_phones"]),
                selection_fee=grade.selection_fee if grade else 0,
                activation=timezone.localdate(),
            )
    catalog = CatalogSettings.load()
    selected_plan = _int_or_none(form["plan"].value())
    selected_services = {
        v for v in (_int_or_none(x) for x in form["services"].value() or []) if v
    }
    return render(
        request,
        "plans/checkout.html",
        {
            "hold": the_hold,
            "number": number,
            "grade": grade,
            "choices": choices,
            "services": selectors.active_services(),
            "form": form,
            "quote": quote,
            "catalog": catalog,
            "chosen_plan": form.cleaned_data.get("plan") if quote else None,
            "chosen_services": form.cleaned_data.get("services") if quote else None,
            "chosen_phones": form.cleaned_data.get("answer_phones") if quote else None,
            "can_confirm": company.is_verified,
            "selected_plan": selected_plan,
            "selected_services": selected_services,
        },
    )


# --- my numbers and subscriptions ---------------------------------------------
@company_member_required
def my_numbers(request):
    company = request.user.company
    return render(
        request,
        "plans/my_numbers.html",
        {
            "holds": selectors.company_open_holds(company=company),
            "subscriptions": selectors.company_subscriptions(company=company),
            "today": timezone.localdate(),
        },
    )


def _subscription_context(request, subscription: Subscription) -> dict:
    company = request.user.company
    today = timezone.localdate()
    period = selectors.plan_period_on(subscription=subscription, on=today)
    plan = period.plan if period else None
    return {
        "subscription": subscription,
        "today": today,
        "period": period,
        "plan": plan,
        "scheduled": selectors.scheduled_plan_period(
            subscription=subscription, today=today
        ),
        "services": selectors.subscription_services(
            subscription=subscription, today=today, plan=plan
        ),
        "answer_numbers": selectors.subscription_answer_numbers(
            subscription=subscription, today=today
        ),
        "pool": selectors.subscription_pool(
            company=company, subscription=subscription, on=today
        ),
        "effective": services.change_effective_date(
            subscription=subscription, today=today
        ),
        "is_live": subscription.status in selectors.LIVE,
        "extra_fee": selectors.extra_answer_number_fee(),
    }


@company_member_required
def subscription_detail(request, pk: int):
    subscription = _subscription_or_404(request, pk)
    return render(
        request,
        "plans/subscription_detail.html",
        _subscription_context(request, subscription),
    )


def _change_or_error(request, subscription, change, done: str):
    """Run ``change()`` (a service call); on success say ``done`` and return
    the redirect to the number's page, else show the refusal and return None."""
    try:
        change()
    except services.PlansError as exc:
        messages.error(request, exc.message)
        return None
    messages.success(request, done)
    return redirect("plans:subscription", pk=subscription.pk)


def _live_or_redirect(request, subscription):
    if subscription.status not in selectors.LIVE:
        messages.error(request, _("This number is no longer in service."))
        return redirect("plans:subscription", pk=subscription.pk)
    return None


@owner_required
def change_plan(request, pk: int):
    subscription = _subscription_or_404(request, pk)
    if response := _live_or_redirect(request, subscription):
        return response
    context = _subscription_context(request, subscription)
    choices = selectors.plan_choices(grade=subscription.grade)
    refusals = {c.plan.pk: c.refusal for c in choices if c.refusal}
    current = context["scheduled"] or context["period"]
    form = PlanChangeForm(
        request.POST or None,
        refusals=refusals,
        initial={"plan": current.plan_id if current else None},
    )
    if request.method == "POST" and form.is_valid():
        done = _change_or_error(
            request,
            subscription,
            lambda: services.subscription_change_plan(
                subscription=subscription,
                plan=form.cleaned_data["plan"],
                by=request.user,
            ),
            _("Your package change is scheduled."),
        )
        if done:
            return done
    forfeiture = None
    if subscription.activated_on:
        forfeiture = selectors.term_forfeiture(
            company=request.user.company,
            subscription=subscription,
            leave_on=context["effective"] - pricing.ONE_DAY,
            today=context["today"],
        )
    context.update({"form": form, "choices": choices, "forfeiture": forfeiture})
    return render(request, "plans/change_plan.html", context)


@owner_required
def change_services(request, pk: int):
    subscription = _subscription_or_404(request, pk)
    if response := _live_or_redirect(request, subscription):
        return response
    context = _subscription_context(request, subscription)
    wanted = selectors.services_from(subscription=subscription, on=context["effective"])
    form = ServicesChangeForm(request.POST or None, initial={"services": list(wanted)})
    if request.method == "POST" and form.is_valid():
        done = _change_or_error(
            request,
            subscription,
            lambda: services.subscription_change_services(
                subscription=subscription,
                services=form.cleaned_data["services"],
                by=request.user,
            ),
            _("Your value-added services are updated."),
        )
        if done:
            return done
    plan = context["plan"]
    context.update(
        {
            "form": form,
            "all_services": selectors.active_services(),
            "included_ids": set(plan.included_services.values_list("pk", flat=True))
            if plan
            else set(),
        }
    )
    return render(request, "plans/change_services.html", context)


@owner_required
def change_answer_numbers(request, pk: int):
    subscription = _subscription_or_404(request, pk)
    if response := _live_or_redirect(request, subscription):
        return response
    context = _subscription_context(request, subscription)
    current = "\n".join(a.phone for a in context["answer_numbers"])
    form = AnswerNumbersForm(request.POST or None, initial={"answer_phones": current})
    if request.method == "POST" and form.is_valid():
        done = _change_or_error(
            request,
            subscription,
            lambda: services.subscription_change_answer_numbers(
                subscription=subscription,
                phones=form.cleaned_data["answer_phones"],
                by=request.user,
            ),
            _("Calls to %(number)s now ring the numbers you saved.")
            % {"number": subscription.number.display},
        )
        if done:
            return done
    context["form"] = form
    return render(request, "plans/change_answer_numbers.html", context)


@owner_required
def end_subscription(request, pk: int):
    subscription = _subscription_or_404(request, pk)
    if response := _live_or_redirect(request, subscription):
        return response
    context = _subscription_context(request, subscription)
    form = EndSubscriptionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ended = services.subscription_end(subscription=subscription, by=request.user)
        if ended.status == Subscription.Status.CANCELLED:
            messages.success(
                request,
                _("%(number)s is cancelled.") % {"number": ended.number.display},
            )
        else:
            messages.success(
                request,
                _("Service of %(number)s ended today.")
                % {"number": ended.number.display},
            )
        return redirect("plans:my_numbers")
    forfeiture = None
    if subscription.activated_on and subscription.activated_on <= context["today"]:
        forfeiture = selectors.term_forfeiture(
            company=request.user.company,
            subscription=subscription,
            leave_on=context["today"],
            today=context["today"],
        )
    context.update({"form": form, "forfeiture": forfeiture})
    return render(request, "plans/end_subscription.html", context)


# --- packages -----------------------------------------------------------------
def compare(request):
    """Every active package side by side (open to visitors too)."""
    rows = [
        {
            "plan": plan,
            "monthly_equivalent": pricing.round_money(plan.monthly_equivalent),
            "per_minute": pricing.cost_per_minute(plan.price, plan.included_minutes),
            "services": list(plan.included_services.all()),
        }
        for plan in selectors.active_plans()
    ]
    return render(
        request,
        "plans/compare.html",
        {
            "rows": rows,
            "catalog": CatalogSettings.load(),
        },
    )
