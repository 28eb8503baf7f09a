"""Access rules for portal views: who belongs to a company, and in which role."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404

from .models import User


def company_member_required(view):
    """Any user of a company (owner, finance, member). Others get 404."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.company_id:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def company_role_required(*roles: str):
    """Users of a company whose role is one of ``roles``. Others get 404.

    404 rather than 403: a page a role may not use looks like one that does
    not exist, as for another company's objects.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.company_id or request.user.role not in roles:
                raise Http404
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


owner_required = company_role_required(User.Role.OWNER)
bills_required = company_role_required(User.Role.OWNER, User.Role.FINANCE)
