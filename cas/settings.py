"""OpenCAS settings: everything comes from environment variables.

With nothing set, OpenCAS runs embedded: a SQLite file, Celery tasks run inline,
files in ./media and development signing keys made on first use under ./var/keys.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str = "False") -> bool:
    return os.environ.get(name, default).strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: str) -> int:
    return int(os.environ.get(name, default))


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", "False")
# The development fallback is only ever used when SECRET_KEY is unset, i.e. embedded mode.
SECRET_KEY = os.environ.get("SECRET_KEY", "opencas-development-only-not-secret")  # noqa: S105
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
# The public address printed on certificates and in QR codes.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
if "SECRET_KEY" in os.environ and not os.environ.get("SITE_URL", "").strip():
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "SITE_URL is required in production (SECRET_KEY is set): it is the address printed "
        "on every certificate and in its QR code, e.g. SITE_URL=https://cas.example.org"
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rules.apps.AutodiscoverRulesConfig",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "cas",
    "evidence",
    "labs",
    "certificates",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "cas.middleware.RequestIdMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "cas.urls"
WSGI_APPLICATION = "cas.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "certificates.views.site_context",
                "cas.views.roles_context",
            ],
        },
    },
]

if "DATABASE_URL" not in os.environ:
    (BASE_DIR / "var").mkdir(exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
        conn_max_age=envint("DB_CONN_MAX_AGE", "0"),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
# Any Django storage backend (e.g. S3 through django-storages) is a settings change here.
STORAGES = {
    "default": {
        "BACKEND": os.environ.get(
            "FILE_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"
        )
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", "26214400")

# Celery: with no broker configured tasks run inline, so the embedded mode needs no server.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Scheduled jobs (run by `celery -A cas beat`); each app adds its own entries here.
CELERY_BEAT_SCHEDULE: dict = {}
# labs: accreditation expiry warnings (60/30/7 days) and flags on lapsed labs, daily.
CELERY_BEAT_SCHEDULE["labs-check-accreditations"] = {
    "task": "labs.tasks.check_accreditations",
    "schedule": 6 * 60 * 60,  # every 6 hours: idempotent, each warning is sent once
}

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "OpenCAS <no-reply@opencas.example>")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", "25")
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "0")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Refusals from the services (cas.errors) answer {"detail": message} with their status.
    "EXCEPTION_HANDLER": "cas.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OpenCAS API",
    "DESCRIPTION": "IHE conformity assessment cases, certificates and verification.",
    "VERSION": "0.1.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Swagger UI would otherwise fetch a badge from validator.swagger.io for each schema.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# --- The certification scheme ---
SCHEME_NAME = os.environ.get("SCHEME_NAME", "IHE Conformity Assessment Scheme")
SCHEME_VERSION = os.environ.get("SCHEME_VERSION", "2.0")
CERTIFICATE_NUMBER_PREFIX = os.environ.get("CERTIFICATE_NUMBER_PREFIX", "CAS")
CERTIFICATE_VALIDITY_DAYS = envint("CERTIFICATE_VALIDITY_DAYS", "1095")
# Evidence rule: every claimed AIPO needs a passing Connectathon result this recent.
EVIDENCE_MAX_AGE_YEARS = envint("EVIDENCE_MAX_AGE_YEARS", "3")
# How long a vendor has to appeal a refusal.
APPEAL_WINDOW_DAYS = envint("APPEAL_WINDOW_DAYS", "30")

# --- Signing keys ---
# Development keys (a P-256 CA for PDF signatures, an Ed25519 key for the QR JWS) are
# generated here on first use; production points this at a mounted secret volume.
SIGNING_KEY_DIR = Path(os.environ.get("SIGNING_KEY_DIR", BASE_DIR / "var" / "keys"))

# --- Certificates: key encryption, time-stamping, lifecycle, status list (issue 6) ---
# Private keys are encrypted at rest under this passphrase (or the file's content). With
# neither set, embedded mode generates one into var/; production (SECRET_KEY set) must set one.
SIGNING_KEY_PASSPHRASE = os.environ.get("OPENCAS_KEY_PASSPHRASE", "")
SIGNING_KEY_PASSPHRASE_FILE = os.environ.get("OPENCAS_KEY_PASSPHRASE_FILE", "")
SIGNING_KEY_PASSPHRASE_GENERATE = envbool(
    "OPENCAS_KEY_PASSPHRASE_GENERATE", "False" if "SECRET_KEY" in os.environ else "True"
)
# An RFC 3161 time-stamp authority: PDF signatures are PAdES B-T with it, B-B without.
CERTIFICATE_TSA_URL = os.environ.get("CERTIFICATE_TSA_URL", "")
# PEM bundle of the roots of time-stamp authorities whose times the verify page vouches for.
CERTIFICATE_TSA_ROOTS_FILE = os.environ.get("CERTIFICATE_TSA_ROOTS_FILE", "")
# A suspension not lifted within this many days becomes a withdrawal; the vendor is warned
# this many days before.
CERTIFICATE_SUSPENSION_MAX_DAYS = envint("CERTIFICATE_SUSPENSION_MAX_DAYS", "90")
CERTIFICATE_SUSPENSION_WARNING_DAYS = envint("CERTIFICATE_SUSPENSION_WARNING_DAYS", "14")
# The signed status list is valid this long; beat re-signs it at half that interval.
CERTIFICATE_STATUS_LIST_VALIDITY_HOURS = envint("CERTIFICATE_STATUS_LIST_VALIDITY_HOURS", "24")
# Buyers following a certificate by e-mail (certificates/subscriptions.py).
CERTIFICATE_SUBSCRIPTION_CONFIRMATION_DAYS = envint(
    "CERTIFICATE_SUBSCRIPTION_CONFIRMATION_DAYS", "7"
)
CERTIFICATE_SUBSCRIPTION_MAX_PER_ADDRESS_PER_DAY = envint(
    "CERTIFICATE_SUBSCRIPTION_MAX_PER_ADDRESS_PER_DAY", "5"
)
CERTIFICATE_SUBSCRIPTION_MAX_PER_CERTIFICATE_PER_DAY = envint(
    "CERTIFICATE_SUBSCRIPTION_MAX_PER_CERTIFICATE_PER_DAY", "200"
)
CELERY_BEAT_SCHEDULE.update(
    {
        "certificates-expire": {
            "task": "certificates.tasks.expire_certificates",
            "schedule": 3600.0,
        },
        "certificates-overdue-suspensions": {
            "task": "certificates.tasks.withdraw_overdue_suspensions",
            "schedule": 3600.0,
        },
        "certificates-status-list": {
            "task": "certificates.tasks.publish_status_list",
            "schedule": CERTIFICATE_STATUS_LIST_VALIDITY_HOURS * 1800.0,
        },
        "certificates-finish-pending": {
            "task": "certificates.tasks.finish_pending_certificates",
            "schedule": 900.0,
        },
    }
)

# --- Cache and rate limits (verification, issue 7) ---
# The rate limiter counts in this cache: with CACHE_URL (or REDIS_URL) set, every web
# process shares the counts; the default local-memory cache counts per process.
CACHE_URL = os.environ.get("CACHE_URL") or os.environ.get("REDIS_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# Verification requests (page, API, QR status fetch) per client address: "60/minute",
# "1000/hour"; "off" lifts the limit (the bench does). Certificate numbers cannot be
# enumerated faster than this.
VERIFY_RATE = os.environ.get("OPENCAS_VERIFY_RATE", "60/minute")
# API token requests (POST /api/auth/token/) per client address and, separately, per
# username: password guessing is bounded either way. Over it: 429 with Retry-After.
TOKEN_RATE = os.environ.get("OPENCAS_TOKEN_RATE", "10/minute")
# How many reverse proxies in front of OpenCAS append to X-Forwarded-For. 0 (default): the
# header is ignored and the limit is per REMOTE_ADDR, since a client can send any header.
RATE_LIMIT_TRUSTED_PROXIES = envint("OPENCAS_TRUSTED_PROXIES", "0")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "opencas": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    },
}

if not DEBUG and "SECRET_KEY" in os.environ:
    SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", "True")
    CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", "True")

# --- Evidence uploads (evidence/) ---
EVIDENCE_MAX_UPLOAD_BYTES = envint("EVIDENCE_MAX_UPLOAD_BYTES", str(20 * 1024 * 1024))
EVIDENCE_ZIP_MAX_ENTRIES = envint("EVIDENCE_ZIP_MAX_ENTRIES", "2000")
EVIDENCE_ZIP_MAX_TOTAL_BYTES = envint("EVIDENCE_ZIP_MAX_TOTAL_BYTES", str(200 * 1024 * 1024))
EVIDENCE_ZIP_MAX_RATIO = envint("EVIDENCE_ZIP_MAX_RATIO", "100")
