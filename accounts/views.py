from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render

from .models import BusinessLicence


@login_required
def dashboard(request):
    if request.user.is_staff and not request.user.company_id:
        return redirect("admin:index")
    return render(request, "accounts/dashboard.html")


@login_required
def licence_download(request, pk: int):
    """Stream a business licence to its company's owner or to agent staff."""
    user = request.user
    licence = get_object_or_404(
        BusinessLicence.objects.select_related("company"), pk=pk
    )
    allowed = (
        user.is_superuser
        or (user.is_agent_staff and licence.company.agent_id == user.agent_id)
        or (user.company_id == licence.company_id and user.is_owner)
    )
    if not allowed:
        raise Http404
    return FileResponse(
        licence.file.open("rb"),
        content_type=licence.content_type,
        filename=licence.original_name,
        as_attachment=False,
    )
