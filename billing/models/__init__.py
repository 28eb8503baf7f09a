from .api_keys import AgentApiKey
from .api_keys_company import CompanyApiKey
from .calls import (
    Band,
    CallKey,
    CallRecord,
    CallStatus,
    CdrImport,
    CdrImportError,
    Direction,
)
from .invoices import (
    CloseRun,
    CloseRunItem,
    CreditNote,
    DocumentSequence,
    FrozenInvoiceError,
    Invoice,
    InvoiceEmail,
    InvoiceLine,
    Payment,
)

__all__ = [
    "AgentApiKey",
    "Band",
    "CallKey",
    "CallRecord",
    "CallStatus",
    "CdrImport",
    "CdrImportError",
    "CloseRun",
    "CloseRunItem",
    "CompanyApiKey",
    "CreditNote",
    "Direction",
    "DocumentSequence",
    "FrozenInvoiceError",
    "Invoice",
    "InvoiceEmail",
    "InvoiceLine",
    "Payment",
]
