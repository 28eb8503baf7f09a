from django.urls import path

from billing import api_cdrs, api_company

app_name = "api"

urlpatterns: list = []

# The read-only company API (per-company keys), slot 7.
urlpatterns += [
    path("v1/invoices/", api_company.InvoiceListView.as_view(), name="invoices"),
    path(
        "v1/invoices/<int:pk>/",
        api_company.InvoiceDetailView.as_view(),
        name="invoice",
    ),
    path(
        "v1/invoices/<int:pk>/lines/",
        api_company.InvoiceLinesView.as_view(),
        name="invoice-lines",
    ),
    path(
        "v1/lines/<int:pk>/calls/",
        api_company.LineCallsView.as_view(),
        name="line-calls",
    ),
    path(
        "v1/month-to-date/",
        api_company.MonthToDateView.as_view(),
        name="month-to-date",
    ),
    path("v1/usage/", api_company.UsageSummaryView.as_view(), name="usage"),
]

# The carrier push API (per-agent keys), slot 5.
urlpatterns += [
    path("cdrs/", api_cdrs.CdrPushView.as_view(), name="cdrs"),
]
