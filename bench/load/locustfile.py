"""Locust users of the load test (bench/load/run.py starts this file).

Each user logs in through the login form (CSRF token from the page), then
mixes the bill page, the calls drill-down, the number search, the
month-to-date bill and API reads with the company's key. The plan (ids,
logins, keys) comes from the JSON file named by LOAD_PLAN.

Production cookies are ``Secure``; the run is plain HTTP on loopback, so the
client keeps the cookies itself and sends them in a Cookie header.
"""

import itertools
import json
import os
import random
import re

from locust import HttpUser, between, task

PLAN = json.loads(open(os.environ["LOAD_PLAN"], encoding="utf-8").read())  # noqa: SIM115
_SEQ = itertools.count()
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SEARCHES = ["", "?contains=888", "?ends_with=8888", "?no_four=on", "?pattern=400*8*8*"]


class PortalUser(HttpUser):
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.company = PLAN["companies"][next(_SEQ) % len(PLAN["companies"])]
        self.jar = {}
        self.rng = random.Random(next(_SEQ))
        page = self._get("/accounts/login/", name="login form")
        token = CSRF.search(page.text)[1]
        self._post(
            "/accounts/login/",
            {
                "username": self.company["email"],
                "password": PLAN["password"],
                "csrfmiddlewaretoken": token,
            },
            name="login",
        )

    def _cookies(self) -> dict:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.jar.items())}

    def _keep(self, response):
        for cookie in response.cookies:
            self.jar[cookie.name] = cookie.value
        return response

    def _get(self, url, *, name=None):
        return self._keep(self.client.get(url, headers=self._cookies(), name=name))

    def _post(self, url, data, *, name=None):
        response = self.client.post(
            url, data, headers=self._cookies(), name=name, allow_redirects=False
        )
        if response.status_code != 302:
            response.failure(f"login answered {response.status_code}")
        return self._keep(response)

    def _api(self, url, *, name):
        headers = {"Authorization": f"Bearer {self.company['api_key']}"}
        return self.client.get(url, headers=headers, name=name)

    @task(4)
    def bill_page(self):
        self._get(f"/billing/invoices/{self.company['invoice']}/", name="bill page")

    @task(3)
    def calls_drilldown(self):
        line = self.rng.choice(self.company["usage_lines"])
        self._get(f"/billing/lines/{line}/calls/", name="calls drill-down")

    @task(3)
    def number_search(self):
        self._get("/numbers/" + self.rng.choice(SEARCHES), name="number search")

    @task(2)
    def month_to_date(self):
        self._get("/billing/this-month/", name="month-to-date")

    @task(2)
    def api_invoices(self):
        self._api("/api/v1/invoices/", name="API invoices")

    @task(1)
    def api_invoice(self):
        self._api(f"/api/v1/invoices/{self.company['invoice']}/", name="API invoice")

    @task(1)
    def api_month_to_date(self):
        self._api("/api/v1/month-to-date/", name="API month-to-date")
