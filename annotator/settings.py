"""Annotator settings, all read from the environment (see docker/.env.example).

Defaults are the fresh-machine ones: SQLite in the project folder, no broker (Celery runs jobs
in-process), DEBUG off unless asked for. Production sets DATABASE_URL, REDIS_URL, SECRET_KEY and
ALLOWED_HOSTS.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from annotator.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off. Set SECRET_KEY (or SECRET_KEY_FILE), "
            "or DEBUG=true for local development."
        )
    # Development only: a fresh random key per process. Sessions do not survive a restart,
    # which is the price of never shipping a known key.
    SECRET_KEY = secrets.token_urlsafe(50)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "projects.core",
    "projects.documents",
    "projects.assignment",
    "projects.annotations",
    "projects.prelabel",
    "projects.exports",
    "projects.quality",
    "projects.imports",
    "projects.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "annotator.middleware.LazyMessageMiddleware",  # Django's, building its storage on first use
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "annotator.middleware.ContentSecurityPolicyMiddleware",
    "annotator.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "annotator.urls"
WSGI_APPLICATION = "annotator.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
# Health checks: a kept connection is tested before the first query of each request or job reuses
# it, so one broken while the database was away is replaced instead of failing once. On PostgreSQL
# the test asks the socket first and sends SELECT 1 only when something waits on it
# (annotator/postgresql/base.py).
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "annotator.postgresql"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers work while one writer commits; IMMEDIATE transactions take the write
    # lock up front so two writers queue instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": env_str("SQLITE_TEST_NAME", "") or None}
IS_POSTGRES = DATABASES["default"]["ENGINE"] in ("annotator.postgresql", "django.db.backends.postgresql")
# The statements every API request runs are prepared once per connection (annotator/db.py). Turn
# off behind a transaction-mode pooler that does not track prepared statements (PgBouncer < 1.21).
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["projects.core.ratelimit.RateLimitedModelBackend"]
# Failed sign-ins allowed per window before the username or client address is locked out of
# password checks until the window ends; API token failures are limited per address.
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1)
LOGIN_FAILURES_PER_USERNAME = env_int("LOGIN_FAILURES_PER_USERNAME", 10, minimum=1)
LOGIN_FAILURES_PER_IP = env_int("LOGIN_FAILURES_PER_IP", 50, minimum=1)
TOKEN_FAILURES_PER_IP = env_int("TOKEN_FAILURES_PER_IP", 50, minimum=1)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "web-home"
LOGOUT_REDIRECT_URL = "login"

# --- Static and uploaded files --------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Uploads: the import size limit applies to files; request bodies other than files stay small.
IMPORT_MAX_UPLOAD_BYTES = env_int("IMPORT_MAX_UPLOAD_BYTES", 512 * 1024 * 1024, minimum=1)
# Compressed uploads (gzip, zip) may expand to at most this many bytes, and at most this many times.
IMPORT_MAX_UNCOMPRESSED_BYTES = env_int("IMPORT_MAX_UNCOMPRESSED_BYTES", 4 * IMPORT_MAX_UPLOAD_BYTES, minimum=1)
IMPORT_MAX_COMPRESSION_RATIO = env_int("IMPORT_MAX_COMPRESSION_RATIO", 200, minimum=2)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("FILE_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024, minimum=1024)

# --- Security -------------------------------------------------------------------------------
# Django's database sessions, read with a prepared statement (annotator/sessions.py).
SESSION_ENGINE = "annotator.sessions"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the labeling page's fetch() reads it to send X-CSRFToken
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'",
)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading is a hard-to-undo promise to browser vendors, so it is opt-in; the deploy check's
# reminder about it (W021) is silenced unless the operator opts in.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "projects.core.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "annotator.parsers.JSONParser",  # 400 instead of 500 for stack-deep nesting and lone surrogates
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "annotator.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "annotator.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Annotator API",
    "DESCRIPTION": "Annotation projects, tasks, labels, reviews, quality and exports. "
    "Authenticate with `Authorization: Token <key>` (create one on your profile page or with "
    "`manage.py apitoken <username>`).",
    "VERSION": "1.0.0",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "ExportStatusEnum": "projects.exports.models.ExportStatus",
        "DeliveryStatusEnum": "projects.exports.models.DeliveryStatus",
        "ExportAnnotationStatusEnum": "projects.exports.filters.STATUSES",
        "AnnotationStatusEnum": "projects.annotations.models.AnnotationStatus",
        "ImportStatusEnum": "projects.imports.models.ImportStatus",
        "ImportFormatEnum": "projects.imports.models.ImportFormat",
    },
    # Swagger UI and Redoc from our own static files (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

REDIS_URL = env_str("REDIS_URL", "")

# --- Cache (login failure counters) --------------------------------------------------------------
# Redis when configured, so every gunicorn worker sees the same counters; else per-process memory.
# annotator.cache: Django's Redis cache reusing its Redis client (Django builds one per call).
CACHES = {
    "default": {"BACKEND": "annotator.cache.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
}
CACHES["default"]["KEY_PREFIX"] = "annotator"

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL or "memory://"
# Without a broker, jobs run in-process at enqueue time. Chosen here once, at start-up: a
# configured but unreachable Redis fails loudly instead of silently running jobs inline.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes the database connection around every job unless told to reuse
# it; jobs then pay a new PostgreSQL connection (and a cold backend) each. Workers instead keep
# it as web requests do: annotator/celery.py drops it at job boundaries only when broken or older
# than CONN_MAX_AGE, and the fix-up still recycles it every CELERY_DB_REUSE_MAX jobs.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 1800, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 1900, minimum=1)
# Seconds before Redis hands an unacknowledged message (its worker died) to another worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE: dict = {
    # Leases past expiry return to the queue (next-task also expires a project's leases lazily).
    "assignment.expire_leases": {"task": "assignment.expire_leases", "schedule": 60.0},
}
# Stale quality figures are recomputed by this sweep if their debounced job was lost.
# Articles written without their full-text document get it (imports also schedule this themselves).
CELERY_BEAT_SCHEDULE["search.index_articles"] = {"task": "search.index_articles", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["quality.sweep"] = {"task": "quality.sweep", "schedule": 300.0}
# Jobs started while Redis was unreachable wait in the database (PendingJob) until this sends them.
JOB_REDISPATCH_SECONDS = env_int("JOB_REDISPATCH_SECONDS", 30, minimum=1)
CELERY_BEAT_SCHEDULE["core.dispatch_pending"] = {
    "task": "core.dispatch_pending",
    "schedule": float(JOB_REDISPATCH_SECONDS),
}
# An import, snapshot export or pre-label run whose progress (``updated_at``) is older than
# JOB_STALL_SECONDS has lost its worker or its message: the resume_stalled jobs (every
# JOB_STALL_CHECK_SECONDS) send it again; one started more than 1 + JOB_MAX_RESUMES times fails.
JOB_STALL_SECONDS = env_int("JOB_STALL_SECONDS", 300, minimum=1)
JOB_STALL_CHECK_SECONDS = env_int("JOB_STALL_CHECK_SECONDS", 60, minimum=1)
JOB_MAX_RESUMES = env_int("JOB_MAX_RESUMES", 3, minimum=0)
CELERY_BEAT_SCHEDULE["imports.resume_stalled"] = {
    "task": "imports.resume_stalled",
    "schedule": float(JOB_STALL_CHECK_SECONDS),
}
CELERY_BEAT_SCHEDULE["exports.resume_stalled"] = {
    "task": "exports.resume_stalled",
    "schedule": float(JOB_STALL_CHECK_SECONDS),
}
CELERY_BEAT_SCHEDULE["prelabel.resume_stalled"] = {
    "task": "prelabel.resume_stalled",
    "schedule": float(JOB_STALL_CHECK_SECONDS),
}

# --- Annotator ------------------------------------------------------------------------------
DEFAULT_LEASE_MINUTES = env_int("DEFAULT_LEASE_MINUTES", 30, minimum=1)
# Seconds between a submission and the quality recompute it triggers (more submissions in between share it).
QUALITY_RECOMPUTE_DELAY = env_int("QUALITY_RECOMPUTE_DELAY", 30, minimum=0)
ALLOW_PROJECT_CREATION_BY = env_str("ALLOW_PROJECT_CREATION_BY", "staff")  # "staff" or "anyone"
# Hosts or IP addresses that remote labelers and webhooks may reach even though they are internal
# (a model server on localhost, say). Everything internal is refused otherwise (SSRF guard).
OUTBOUND_ALLOWED_HOSTS = env_list("OUTBOUND_ALLOWED_HOSTS", [])
# Pre-labeling: the Celery queue its jobs go to ("" = the default queue) and the chunk size.
PRELABEL_QUEUE = env_str("PRELABEL_QUEUE", "")
PRELABEL_CHUNK_SIZE = env_int("PRELABEL_CHUNK_SIZE", 500, minimum=1)

# --- Misc -----------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
