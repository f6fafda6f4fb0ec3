"""webpop settings. Everything comes from the environment (see README.md)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet

from .env import (
    env_bool,
    env_int,
    env_list,
    env_str,
    generate_secret_key,
    parse_database_url,
    secret_from_env_or_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("WEBPOP_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)  # holds mail and keys

SECRET_KEY = secret_from_env_or_file("SECRET_KEY", DATA_DIR / "secret_key", generate_secret_key)
# Comma-separated Fernet keys, newest first; older keys still decrypt (rotation).
WEBPOP_ENCRYPTION_KEYS = [
    key.strip()
    for key in secret_from_env_or_file(
        "WEBPOP_ENCRYPTION_KEYS", DATA_DIR / "encryption_keys", lambda: Fernet.generate_key().decode()
    ).split(",")
    if key.strip()
]

DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "accounts.apps.AccountsConfig",
    "mailbox.apps.MailboxConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.middleware.FirstRunMiddleware",
    "accounts.middleware.TimeZoneMiddleware",
]

ROOT_URLCONF = "webpop.urls"
WSGI_APPLICATION = "webpop.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": parse_database_url(env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'webpop.sqlite3'}") or "", BASE_DIR)
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "mailbox:inbox"
LOGOUT_REDIRECT_URL = "login"

# Languages: the one chosen in Preferences (django.views.i18n.set_language stores it in a
# cookie), else the browser's Accept-Language, else LANGUAGE_CODE. Catalogues live in locale/.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request otherwise
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    # Raw messages and attachments. The default is a folder under WEBPOP_DATA_DIR with
    # fsync + atomic rename; any Django storage (e.g. S3-compatible) can be named here.
    "webpop_mail": {"BACKEND": env_str("WEBPOP_MAIL_STORAGE", "mailbox.store.MailStorage")},
}

# Security headers and cookies. HTTPS-only flags follow WEBPOP_HTTPS so a
# plain-HTTP `make run` on localhost still works.
WEBPOP_HTTPS = env_bool("WEBPOP_HTTPS", False)
SESSION_COOKIE_SECURE = WEBPOP_HTTPS
CSRF_COOKIE_SECURE = WEBPOP_HTTPS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if WEBPOP_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)

# Mail fetching.
WEBPOP_MAIL_DIR = DATA_DIR / "mail"
WEBPOP_POP3_CA_FILE = env_str("WEBPOP_POP3_CA_FILE", None) or None
if WEBPOP_POP3_CA_FILE and not Path(WEBPOP_POP3_CA_FILE).is_file():
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"WEBPOP_POP3_CA_FILE={WEBPOP_POP3_CA_FILE!r} is not a readable file.")
WEBPOP_POP3_ALLOW_PRIVATE = env_bool("WEBPOP_POP3_ALLOW_PRIVATE", False)
# Name servers for autoconfig lookups (host or host:port), instead of the system's.
WEBPOP_DNS_NAMESERVERS = env_list("WEBPOP_DNS_NAMESERVERS", [])
WEBPOP_POP3_TIMEOUT = env_int("WEBPOP_POP3_TIMEOUT", 60, minimum=1, maximum=3600)
WEBPOP_SYNC_LEASE_SECONDS = env_int("WEBPOP_SYNC_LEASE_SECONDS", 900, minimum=30)
WEBPOP_MAX_MESSAGE_BYTES = env_int("WEBPOP_MAX_MESSAGE_BYTES", 100 * 1024 * 1024, minimum=1024)
# Largest upload of .eml / .mbox files to import at once (streamed to temp files, never held in memory).
WEBPOP_IMPORT_MAX_BYTES = env_int("WEBPOP_IMPORT_MAX_BYTES", 200 * 1024 * 1024, minimum=1024)
# A first sync of a huge mailbox proceeds in sessions of at most this much.
WEBPOP_SYNC_MAX_MESSAGES = env_int("WEBPOP_SYNC_MAX_MESSAGES", 1000, minimum=1)
WEBPOP_SYNC_MAX_BYTES = env_int("WEBPOP_SYNC_MAX_BYTES", 512 * 1024 * 1024, minimum=1024)
WEBPOP_QUARANTINE_AFTER = env_int("WEBPOP_QUARANTINE_AFTER", 3, minimum=1)
WEBPOP_DEFAULT_QUOTA_MB = env_int("WEBPOP_DEFAULT_QUOTA_MB", 0, minimum=0)  # 0: unlimited

# Celery: Redis when REDIS_URL is set, else kombu's filesystem transport so a
# single machine needs no broker service.
REDIS_URL = env_str("REDIS_URL", None) or None
CELERY_BROKER_DIR = DATA_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
else:
    (CELERY_BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)
    (CELERY_BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "poll-due-accounts": {
        "task": "mailbox.tasks.poll_due_accounts",
        "schedule": timedelta(seconds=env_int("WEBPOP_POLL_TICK_SECONDS", 30, minimum=1)),
    },
    "expire-trash": {"task": "mailbox.tasks.expire_trash", "schedule": timedelta(hours=1)},
}
# Days a message stays in the trash before it is deleted for good (and, under
# the mirror policy, from the server).
WEBPOP_TRASH_DAYS = env_int("WEBPOP_TRASH_DAYS", 30, minimum=1)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django": {"level": "INFO"}},
}

# HTML mail rendering (mailbox/sanitize.py, mailbox/views_html.py, mailbox/imageproxy.py).
# Test-only switch: off serves mail HTML unsanitized, to prove the sandbox and CSP hold alone.
WEBPOP_SANITIZE_HTML = env_bool("WEBPOP_SANITIZE_HTML", True)
# Lifetime of the signed URLs a message's frame loads its cid: and proxied images through.
WEBPOP_HTML_ASSET_MAX_AGE = env_int("WEBPOP_HTML_ASSET_MAX_AGE", 600, minimum=10, maximum=86400)
WEBPOP_IMAGE_PROXY_MAX_BYTES = env_int("WEBPOP_IMAGE_PROXY_MAX_BYTES", 5 * 1024 * 1024, minimum=1024)
WEBPOP_IMAGE_PROXY_TIMEOUT = env_int("WEBPOP_IMAGE_PROXY_TIMEOUT", 10, minimum=1, maximum=120)
# Let the image proxy fetch from private/loopback/link-local addresses (tests only; never in production).
WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE = env_bool("WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE", False)
