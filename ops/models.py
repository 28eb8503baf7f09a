from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class DeferredTask(models.Model):
    """A task that could not be queued because the broker was unreachable.

    Written only by ``ops.enqueue`` and deleted by the sweeper once the task
    is queued. The arguments are what the task would have received through
    the broker (an invitation's token included), so the row lives only as
    long as the broker is down.
    """

    name = models.CharField(_("task"), max_length=200)
    args = models.JSONField(_("arguments"), default=list)
    error = models.CharField(_("error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("recorded"), default=timezone.now)

    class Meta:
        verbose_name = _("deferred task")
        verbose_name_plural = _("deferred tasks")
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.name}{tuple(self.args)}"
