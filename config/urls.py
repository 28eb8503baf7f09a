from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.i18n import set_language
from drf_spectacular.views import SpectacularAPIView

from accounts import views as account_views
from config.health import health

admin.site.site_header = _("Hotline400 back office")
admin.site.site_title = _("Hotline400 back office")
admin.site.index_title = _("Agent back office")

urlpatterns = [
    path("", account_views.dashboard, name="dashboard"),
    path("i18n/setlang/", set_language, name="set_language"),
    path("accounts/", include("accounts.urls")),
    path("numbers/", include("plans.urls")),
    path("billing/", include("billing.urls")),
    path("api/", include("billing.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
]
