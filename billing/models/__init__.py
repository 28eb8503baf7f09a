from .api_keys_company import CompanyApiKey
from .calls import Band, CallRecord, CallStatus, CdrImport, CdrImportError, Direction
from .invoices import (
    CreditNote,
    DocumentSequence,
    Invoice,
    InvoiceEmail,
    InvoiceLine,
    Payment,
)

__all__ = [
    "Band",
    "CallRecord",
    "CallStatus",
    "CdrImport",
    "CdrImportError",
    "CompanyApiKey",
    "CreditNote",
    "Direction",
    "DocumentSequence",
    "Invoice",
    "InvoiceEmail",
    "InvoiceLine",
    "Payment",
]
