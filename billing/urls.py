from django.urls import path

from .views import bills, keys, usage

app_name = "billing"

urlpatterns = [
    path("invoices/", bills.invoice_list, name="invoice_list"),
    path("invoices/<int:pk>/", bills.invoice_detail, name="invoice_detail"),
    path("invoices/<int:pk>/pdf/", bills.invoice_pdf, name="invoice_pdf"),
    path(
        "invoices/<int:pk>/lines.csv", bills.invoice_lines_csv, name="invoice_lines_csv"
    ),
    path(
        "invoices/<int:pk>/calls.csv", bills.invoice_calls_csv, name="invoice_calls_csv"
    ),
    path("lines/<int:pk>/calls/", bills.line_calls, name="line_calls"),
    path("lines/<int:pk>/calls.csv", bills.line_calls_csv, name="line_calls_csv"),
    path("this-month/", usage.month_to_date, name="month_to_date"),
    path("analytics/", usage.analytics, name="analytics"),
    path("advisor/", usage.advisor, name="advisor"),
    path("api-keys/", keys.api_keys, name="api_keys"),
    path("api-keys/<int:pk>/revoke/", keys.api_key_revoke, name="api_key_revoke"),
]
