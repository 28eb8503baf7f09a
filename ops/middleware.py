from django.contrib import messages
from django.utils.translation import gettext as _

from ops.enqueue import deferred_end, deferred_start


class DeferredWorkMiddleware:
    """Tells the user when the work they asked for could not be queued yet.

    The work is recorded (``ops.enqueue``), so nothing is lost; the message
    says it will start by itself. Listed after MessageMiddleware, so the
    message is stored with the response (shown on the next page).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = deferred_start()
        try:
            response = self.get_response(request)
        finally:
            deferred = deferred_end(token)
        if deferred and hasattr(request, "_messages"):
            messages.warning(
                request,
                _(
                    "The task queue cannot be reached right now. Your request "
                    "is saved and will be processed automatically within a "
                    "few minutes."
                ),
            )
        return response
