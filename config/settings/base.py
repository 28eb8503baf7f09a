"""Settings shared by every environment.

Each environment module (local, test, production) imports ``*`` from here and
overrides what differs. Every value that varies between deployments is read
from the environment through the single ``env`` below; ``.env.example`` lists
them all.
"""

from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False)

# Runtime data (uploads, written emails, SQLite) lives outside the code and
# outside any web root.
VAR_DIR = Path(env.str("HOTLINE_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

# ---------------------------------------------------------------------------
# Applications
# ---------------------------------------------------------------------------
DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "drf_spectacular",
    "axes",
    "csp",
]
LOCAL_APPS = [
    "accounts",
    "plans",
    "billing",
    "audit",
    "ops",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Tells the user when work could not be queued (kept for the sweeper).
    "ops.middleware.DeferredWorkMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Axes must be last: it turns a lockout into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.portal",
            ],
        },
    },
]

# ---------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------
DATABASES = {
    "default": env.db(
        "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'hotline400.sqlite3'}"
    ),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Axes first: it refuses locked-out credentials before a password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60)
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Brute-force protection: a lockout is per account *and* IP, so an attacker
# who guesses at someone's email cannot lock that person out from elsewhere.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"
# Count attempts on the lower-cased email: case changes buy no extra guesses.
AXES_USERNAME_CALLABLE = "accounts.lockout.lockout_username"
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0)

# ---------------------------------------------------------------------------
# Internationalisation: Chinese first, English second; business days are
# Asia/Shanghai.
# ---------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True
LANGUAGE_COOKIE_NAME = "hotline400_language"
LANGUAGE_COOKIE_SAMESITE = "Lax"

# ---------------------------------------------------------------------------
# Static and uploaded files
# ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploads (business licences, CDR files) are private: never served by URL,
# only streamed by views that check who is asking.
MEDIA_ROOT = VAR_DIR / "media"
# No URL pattern serves this prefix: it only keeps Django from building
# media URLs; files are streamed by permission-checked views.
MEDIA_URL = "/private-media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FILE_UPLOAD_PERMISSIONS = 0o640
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# ---------------------------------------------------------------------------
# Email
# ---------------------------------------------------------------------------
DEFAULT_FROM_EMAIL = env.str(
    "DEFAULT_FROM_EMAIL", default="Hotline400 <billing@hotline400.example.cn>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
if env.str("EMAIL_URL", default=""):
    # e.g. smtp+tls://user:password@smtp.example.cn:587
    vars().update(env.email_url("EMAIL_URL"))
else:
    # Embedded default: every email is written as a file to var/mail/.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "mail"

# ---------------------------------------------------------------------------
# Cache (also the lock service for reservations and closes in production)
# ---------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# ---------------------------------------------------------------------------
# Celery: at-least-once delivery. Tasks are idempotent, so a task redelivered
# after a lost worker does no harm; acks_late is set per task where proven.
# ---------------------------------------------------------------------------
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL", default=REDIS_URL or "memory://localhost/"
)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = 60 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 55 * 60
# Longer than the longest task (the hard time limit) and than the longest
# retry countdown (emails: 1 h backoff), so a live task is not redelivered;
# a task of a dead worker is redelivered after it (tests/faults).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
# A publish to a dead broker fails within about a second instead of hanging
# the request; the caller records the work for the sweeper (ops.enqueue).
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE: dict = {}
# Holds expire after HOTLINE_RESERVATION_MINUTES; rested numbers return hourly.
CELERY_BEAT_SCHEDULE["plans.release_expired_holds"] = {
    "task": "plans.release_expired_holds",
    "schedule": 60.0,
    "options": {"expires": 55},
}
CELERY_BEAT_SCHEDULE["plans.release_quarantined_numbers"] = {
    "task": "plans.release_quarantined_numbers",
    "schedule": 60.0 * 60,
    "options": {"expires": 50 * 60},
}
# The monthly close: the 1st at 02:00 (CELERY_TIMEZONE, Asia/Shanghai) builds
# every company's invoice for the previous month, one task per company.
CELERY_BEAT_SCHEDULE["billing.close_month"] = {
    "task": "billing.close_month",
    "schedule": crontab(minute=0, hour=2, day_of_month=1),
    "options": {"expires": 6 * 60 * 60},
}
# Re-enqueues work whose enqueue was lost or whose worker died (ops/sweep.py).
CELERY_BEAT_SCHEDULE["ops.sweep"] = {
    "task": "ops.sweep",
    "schedule": 5 * 60.0,
    "options": {"expires": 4 * 60},
}
# Companies per task of the monthly close (billing.services.invoices).
HOTLINE_CLOSE_BATCH = env.int("HOTLINE_CLOSE_BATCH", default=50)
# Work with no progress for this long is taken as lost and enqueued again.
HOTLINE_SWEEP_STALE_MINUTES = env.int("HOTLINE_SWEEP_STALE_MINUTES", default=15)

# ---------------------------------------------------------------------------
# REST API
# ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Hotline400 API",
    "DESCRIPTION": "Read-only billing API for companies and the CDR push API "
    "for carriers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Several models have a "status": name their enums apart.
    "ENUM_NAME_OVERRIDES": {
        "InvoiceStatusEnum": "billing.models.invoices.Invoice.Status",
        "CallStatusEnum": "billing.models.calls.CallStatus",
    },
}

# ---------------------------------------------------------------------------
# Security headers (tightened further in production)
# ---------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# ---------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# ---------------------------------------------------------------------------
# Hotline400 business settings
# ---------------------------------------------------------------------------
# Minutes a number stays held for a company before it returns to stock.
HOTLINE_RESERVATION_MINUTES = env.int("HOTLINE_RESERVATION_MINUTES", default=30)
HOTLINE_MAX_HOLDS_PER_COMPANY = env.int("HOTLINE_MAX_HOLDS_PER_COMPANY", default=3)
# Days an ended number rests before it can be sold again.
HOTLINE_QUARANTINE_DAYS = env.int("HOTLINE_QUARANTINE_DAYS", default=90)
HOTLINE_INVITATION_DAYS = env.int("HOTLINE_INVITATION_DAYS", default=7)
HOTLINE_LICENCE_MAX_BYTES = 5 * 1024 * 1024
# CDR files uploaded in the back office; stopped while received when larger.
HOTLINE_CDR_UPLOAD_MAX_BYTES = env.int(
    "HOTLINE_CDR_UPLOAD_MAX_BYTES", default=200 * 1024 * 1024
)
HOTLINE_INVOICE_DUE_DAYS = env.int("HOTLINE_INVOICE_DUE_DAYS", default=15)
# Absolute base URL used in emails (links to bill pages).
HOTLINE_BASE_URL = env.str("HOTLINE_BASE_URL", default="http://127.0.0.1:8000")
