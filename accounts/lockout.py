"""Brute-force protection helpers for django-axes."""


def lockout_username(request, credentials=None) -> str:
    """The account a log-in attempt is counted against.

    Emails log in case-insensitively, so attempts are counted on the
    normalised address: changing the case must not buy an attacker more
    guesses.
    """
    raw = ""
    if credentials:
        raw = credentials.get("username") or credentials.get("email") or ""
    elif request is not None:
        data = getattr(request, "data", None) or request.POST
        raw = data.get("username", "")
    return str(raw).strip().lower()
