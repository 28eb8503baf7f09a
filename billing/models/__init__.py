from .calls import CallRecord, CdrImport, CdrImportError

__all__ = ["CallRecord", "CdrImport", "CdrImportError"]
