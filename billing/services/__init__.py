"""Writes of the billing app, one module per topic (rating, cdr_import, invoices …)."""
