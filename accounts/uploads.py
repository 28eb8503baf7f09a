"""Refuse an oversized licence while it is still being received.

Django's parser would otherwise read the whole body and store the file before
a form could look at its size. ``SizeLimitUploadHandler`` runs first, counts
the bytes of each uploaded file and stops the upload as soon as a file passes
the limit: the rest of the body is never read, nothing is written to disk, and
the fields that came before the file (the form puts the file last) are kept so
the page can show them again.

Install it before ``request.POST`` or ``request.FILES`` is touched, which
means the view must be ``csrf_exempt`` and check CSRF itself afterwards (see
``accounts.views.limit_upload_size``).
"""

from functools import wraps

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.views.decorators.csrf import csrf_exempt, csrf_protect


class SizeLimitUploadHandler(FileUploadHandler):
    def __init__(self, request, *, max_bytes: int):
        super().__init__(request)
        self.max_bytes = max_bytes
        self.received = 0

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            self.request.upload_too_large = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None


def limit_upload_size(max_bytes_setting: str):
    """Decorate a view so its uploads stop at ``settings.<max_bytes_setting>``.

    The view sees ``request.upload_too_large`` (True when a file was cut off)
    and is still CSRF-protected.
    """

    def decorator(view):
        protected = csrf_protect(view)

        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            request.upload_too_large = False
            if request.method == "POST":
                request.upload_handlers.insert(
                    0,
                    SizeLimitUploadHandler(
                        request, max_bytes=getattr(settings, max_bytes_setting)
                    ),
                )
            return protected(request, *args, **kwargs)

        return wrapper

    return decorator
