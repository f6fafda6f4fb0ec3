"""webpop settings. Everything comes from the environment (see README.md)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from webpop.lib import datadir
from webpop.lib.env import (
    env_bool,
    env_choice,
    env_http_url,
    env_int,
    env_list,
    env_str,
    parse_database_url,
    read_secret_file,
    url_with_port,
)
from webpop.security import APP_DIRECTIVES

BASE_DIR = Path(__file__).resolve().parent.parent
# Mail, keys, and (the embedded setup) the SQLite database and the folder queue. `manage.py initdata` creates
# its folders and keys; nothing here writes.
DATA_DIR = Path(env_str("WEBPOP_DATA_DIR", str(BASE_DIR / "var"))).resolve()

SECRET_KEY = env_str("SECRET_KEY", "") or read_secret_file(DATA_DIR / "secret_key") or ""
# Comma-separated Fernet keys, newest first; older keys still decrypt (rotation).
_encryption_keys = env_str("WEBPOP_ENCRYPTION_KEYS", "") or read_secret_file(DATA_DIR / "encryption_keys") or ""
WEBPOP_ENCRYPTION_KEYS = [key.strip() for key in _encryption_keys.split(",") if key.strip()]
if not (SECRET_KEY and WEBPOP_ENCRYPTION_KEYS) and not datadir.running_initdata():
    from django.core.exceptions import ImproperlyConfigured

    _missing = " and ".join(
        name
        for name, value in [("SECRET_KEY", SECRET_KEY), ("WEBPOP_ENCRYPTION_KEYS", WEBPOP_ENCRYPTION_KEYS)]
        if not value
    )
    raise ImproperlyConfigured(
        f"{_missing} not set and not in {DATA_DIR}: run `{datadir.COMMAND}` once to create them "
        "(or set them in the environment)."
    )

DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "webpop.errors.csrf_failure"  # the app's look and the user's language

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
    "oauth.apps.OAuthConfig",
    "webpop.apps.WebpopConfig",  # checks of webpop's own settings (webpop/checks.py), rate-limit counters
    "ops.apps.OpsConfig",
    "outgoing.apps.OutgoingConfig",
    "unsubscribe.apps.UnsubscribeConfig",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "users.apps.UsersConfig",
    "push.apps.PushConfig",
    "contacts.apps.ContactsConfig",
    "spam.apps.SpamConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "webpop.security.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "users.middleware.SessionMiddleware",  # Django's, plus who/where for the sessions page
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "users.middleware.AuditContextMiddleware",
    "users.middleware.AdminTwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.middleware.FirstRunMiddleware",
    "accounts.middleware.TimeZoneMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the locked-out page
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
                "mailbox.sidebar.context",  # the sidebar, for pages whose view gives none (lazy)
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

# Users (users/): sign-up, e-mail, two-factor, sessions, brute-force lockout, quotas.
WEBPOP_SIGNUP = env_choice("WEBPOP_SIGNUP", "closed", ("closed", "invite", "open"))
# E-mails (sign-up, verification, password reset) one client (IPv6: its /64) may ask for per hour,
# and one e-mail address may be sent per hour (webpop/lib/ratelimit.py).
WEBPOP_EMAIL_RATE_PER_HOUR = env_int("WEBPOP_EMAIL_RATE_PER_HOUR", 5, minimum=1)
# Days the audit log keeps events (older ones are pruned daily).
WEBPOP_AUDIT_DAYS = env_int("WEBPOP_AUDIT_DAYS", 365, minimum=1)
WEBPOP_INVITATION_DAYS = env_int("WEBPOP_INVITATION_DAYS", 7, minimum=1, maximum=365)
WEBPOP_MAX_ACCOUNTS = env_int("WEBPOP_MAX_ACCOUNTS", 0, minimum=0)  # POP3 accounts per user; 0: unlimited
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out username+address pairs
    "users.backends.CachedModelBackend",  # Django's model backend; request.user from the cache
]
SESSION_ENGINE = "users.sessions"  # cached_db sessions whose rows know their user, address and browser
AXES_FAILURE_LIMIT = env_int("WEBPOP_LOGIN_FAILURE_LIMIT", 5, minimum=1)
# Hours a lockout lasts; 0: until an administrator unlocks it (admin: Axes > Access attempts).
_axes_hours = env_int("WEBPOP_LOGIN_LOCKOUT_HOURS", 1, minimum=0)
AXES_COOLOFF_TIME = timedelta(hours=_axes_hours) if _axes_hours else None
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "users/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "webpop.lib.netaddr.client_ip"
AXES_SENSITIVE_PARAMETERS = ["password"]
AXES_VERBOSE = False
OTP_TOTP_ISSUER = env_str("WEBPOP_OTP_ISSUER", "webpop")
# Staff never see anyone's authenticator secret or backup codes (the admin's device pages and QR codes).
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Outgoing mail for verification links and password resets: SMTP when WEBPOP_EMAIL_HOST is set,
# else printed on the console (what `make run` shows).
EMAIL_HOST = env_str("WEBPOP_EMAIL_HOST", "") or ""
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    _email_security = env_choice("WEBPOP_EMAIL_SECURITY", "starttls", ("ssl", "starttls", "none"))
    EMAIL_PORT = env_int("WEBPOP_EMAIL_PORT", 465 if _email_security == "ssl" else 587, minimum=1, maximum=65535)
    EMAIL_HOST_USER = env_str("WEBPOP_EMAIL_USER", "") or ""
    EMAIL_HOST_PASSWORD = env_str("WEBPOP_EMAIL_PASSWORD", "") or ""
    EMAIL_USE_SSL = _email_security == "ssl"
    EMAIL_USE_TLS = _email_security == "starttls"
    EMAIL_TIMEOUT = env_int("WEBPOP_EMAIL_TIMEOUT", 30, minimum=1)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = SERVER_EMAIL = env_str("WEBPOP_EMAIL_FROM", "webpop@localhost")
PASSWORD_RESET_TIMEOUT = 3 * 24 * 3600  # also how long an e-mail verification link works

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
STATIC_ROOT = DATA_DIR / "staticfiles"  # created by initdata (whitenoise warns on every request without it)
# Files browsers ask for at the site's root (/favicon.ico, /apple-touch-icon.png), served by whitenoise.
WHITENOISE_ROOT = BASE_DIR / "webpop" / "public"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    # Raw messages and attachments. The default is a folder under WEBPOP_DATA_DIR with
    # fsync + atomic rename; any Django storage (e.g. S3-compatible) can be named here.
    "webpop_mail": {"BACKEND": env_str("WEBPOP_MAIL_STORAGE", "mailbox.store.MailStorage")},
}
# WEBPOP_STORAGE=s3 keeps mail in an S3-compatible bucket (django-storages), shared by every
# machine; "local" (the default) is the folder above, or a shared volume mounted there.
WEBPOP_STORAGE = env_str("WEBPOP_STORAGE", "local")
if WEBPOP_STORAGE == "s3":
    from .storage import s3_storage_options

    STORAGES["webpop_mail"] = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": s3_storage_options()}
elif WEBPOP_STORAGE != "local":
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"WEBPOP_STORAGE={WEBPOP_STORAGE!r} is not supported (use local or s3).")

# Content-Security-Policy (django-csp): the app's pages; views that answer files or the sandboxed message
# body declare their own (webpop/security.py, webpop/lib/cspolicy.py).
CONTENT_SECURITY_POLICY = {"DIRECTIVES": APP_DIRECTIVES}
# Security headers and cookies. HTTPS-only
# flags follow WEBPOP_HTTPS so a plain-HTTP `make run` on localhost still works;
# `manage.py check --deploy` is clean with WEBPOP_HTTPS=true and DEBUG off.
WEBPOP_HTTPS = env_bool("WEBPOP_HTTPS", False)
SESSION_COOKIE_SECURE = WEBPOP_HTTPS
CSRF_COOKIE_SECURE = WEBPOP_HTTPS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if WEBPOP_HTTPS:
    # The TLS proxy in front must set (not pass on) X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # load balancers probe over plain HTTP
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    # Sub-domains of the webmail's own host name (not its siblings).
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    # Preloading is a promise about a whole registered domain, made by its owner: opt-in.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

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
# A worker stopping (SIGTERM) gives running syncs and checks this long to end at a safe point (webpop/lib/shutdown.py).
WEBPOP_SHUTDOWN_GRACE = env_int("WEBPOP_SHUTDOWN_GRACE", 30, minimum=1, maximum=3600)
# How long beat's claim on a due account lasts: an account whose check or sync task was lost is polled again after it.
WEBPOP_POLL_CLAIM_SECONDS = env_int("WEBPOP_POLL_CLAIM_SECONDS", 300, minimum=5)
WEBPOP_MAX_MESSAGE_BYTES = env_int("WEBPOP_MAX_MESSAGE_BYTES", 100 * 1024 * 1024, minimum=1024)
# Largest upload of .eml / .mbox files to import at once (streamed to temp files, never held in memory).
WEBPOP_IMPORT_MAX_BYTES = env_int("WEBPOP_IMPORT_MAX_BYTES", 200 * 1024 * 1024, minimum=1024)
# How long a worker's claim on an import lasts without renewal (renewed every few seconds while it runs).
WEBPOP_IMPORT_LEASE_SECONDS = env_int("WEBPOP_IMPORT_LEASE_SECONDS", 300, minimum=30)
# A worker's hold on an action over a whole folder or search ("Select all N", mailbox/bulkjobs.py), renewed per batch.
WEBPOP_BULK_LEASE_SECONDS = env_int("WEBPOP_BULK_LEASE_SECONDS", 120, minimum=10)
# A first sync of a huge mailbox proceeds in sessions of at most this much.
WEBPOP_SYNC_MAX_MESSAGES = env_int("WEBPOP_SYNC_MAX_MESSAGES", 1000, minimum=1)
WEBPOP_SYNC_MAX_BYTES = env_int("WEBPOP_SYNC_MAX_BYTES", 512 * 1024 * 1024, minimum=1024)
# The no-change check (mailbox/sync/check.py): due accounts per task, sessions in flight per worker process,
# at most this many of them on one server (providers throttle many logins from one address), and the
# time one account's check may take before it counts as failed.
WEBPOP_CHECK_BATCH = env_int("WEBPOP_CHECK_BATCH", 200, minimum=1, maximum=10000)
WEBPOP_CHECK_CONCURRENCY = env_int("WEBPOP_CHECK_CONCURRENCY", 200, minimum=1, maximum=10000)
WEBPOP_CHECK_PER_HOST = env_int("WEBPOP_CHECK_PER_HOST", 20, minimum=1, maximum=10000)
WEBPOP_CHECK_DEADLINE = env_int("WEBPOP_CHECK_DEADLINE", 30, minimum=1, maximum=3600)
WEBPOP_QUARANTINE_AFTER = env_int("WEBPOP_QUARANTINE_AFTER", 3, minimum=1)
# The dashboard and /metrics warn when the mail store's or the temp folder's file system has
# less free space than this share of its size, or than this many megabytes (ops/disk.py).
WEBPOP_DISK_ALERT_FREE_PERCENT = env_int("WEBPOP_DISK_ALERT_FREE_PERCENT", 10, minimum=0, maximum=100)
WEBPOP_DISK_ALERT_FREE_MB = env_int("WEBPOP_DISK_ALERT_FREE_MB", 2048, minimum=0)
WEBPOP_DEFAULT_QUOTA_MB = env_int("WEBPOP_DEFAULT_QUOTA_MB", 0, minimum=0)  # 0: unlimited

# OAuth2 sign-in for providers that no longer take passwords (oauth/). A provider's
# button appears only when its client id and secret are set. Endpoints and servers
# may be overridden per provider in WEBPOP_OAUTH_PROVIDERS (see oauth/providers.py).
WEBPOP_OAUTH_GOOGLE_CLIENT_ID = env_str("WEBPOP_OAUTH_GOOGLE_CLIENT_ID", "")
WEBPOP_OAUTH_GOOGLE_CLIENT_SECRET = env_str("WEBPOP_OAUTH_GOOGLE_CLIENT_SECRET", "")
WEBPOP_OAUTH_MICROSOFT_CLIENT_ID = env_str("WEBPOP_OAUTH_MICROSOFT_CLIENT_ID", "")
WEBPOP_OAUTH_MICROSOFT_CLIENT_SECRET = env_str("WEBPOP_OAUTH_MICROSOFT_CLIENT_SECRET", "")
WEBPOP_OAUTH_MICROSOFT_TENANT = env_str("WEBPOP_OAUTH_MICROSOFT_TENANT", "common")
WEBPOP_OAUTH_PROVIDERS: dict[str, dict] = {"google": {}, "microsoft": {}}  # per-provider overrides
for _name, _id, _secret in (
    ("GOOGLE", WEBPOP_OAUTH_GOOGLE_CLIENT_ID, WEBPOP_OAUTH_GOOGLE_CLIENT_SECRET),
    ("MICROSOFT", WEBPOP_OAUTH_MICROSOFT_CLIENT_ID, WEBPOP_OAUTH_MICROSOFT_CLIENT_SECRET),
):
    if bool(_id) != bool(_secret):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"Set both WEBPOP_OAUTH_{_name}_CLIENT_ID and _CLIENT_SECRET, or neither.")
# Extra CA bundle trusted for the token endpoints (system CAs always are).
WEBPOP_OAUTH_CA_FILE = env_str("WEBPOP_OAUTH_CA_FILE", None) or None
if WEBPOP_OAUTH_CA_FILE and not Path(WEBPOP_OAUTH_CA_FILE).is_file():
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"WEBPOP_OAUTH_CA_FILE={WEBPOP_OAUTH_CA_FILE!r} is not a readable file.")
WEBPOP_OAUTH_TIMEOUT = env_int("WEBPOP_OAUTH_TIMEOUT", 30, minimum=1, maximum=300)
# Sending mail (outgoing/). SMTP connections use WEBPOP_POP3_CA_FILE and WEBPOP_POP3_ALLOW_PRIVATE too.
WEBPOP_SEND_RATE_PER_HOUR = env_int(
    "WEBPOP_SEND_RATE_PER_HOUR", 200, minimum=0
)  # per user (0: none); a Profile quota overrides
WEBPOP_MAX_SEND_BYTES = env_int("WEBPOP_MAX_SEND_BYTES", 25 * 1024 * 1024, minimum=1024)
WEBPOP_SMTP_TIMEOUT = env_int("WEBPOP_SMTP_TIMEOUT", 60, minimum=1, maximum=3600)
WEBPOP_SEND_MAX_RECIPIENTS = env_int("WEBPOP_SEND_MAX_RECIPIENTS", 100, minimum=1)
# A send task published this long after its message fell due and not started counts as lost (a worker
# killed holding it, a broker restart): beat's sweep publishes it again. The claim keeps it sent once.
WEBPOP_SEND_REDISPATCH_SECONDS = env_int("WEBPOP_SEND_REDISPATCH_SECONDS", 600, minimum=1)

# Celery: Redis when REDIS_URL is set, else kombu's filesystem transport so a
# single machine needs no broker service.
REDIS_URL = env_str("REDIS_URL", None) or None
CELERY_BROKER_DIR = DATA_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Redis may go away (a restart, a failover, a cut network; docs/deployment.md, "Redis outage"); every
    # process then reconnects by itself. kombu's defaults wait forever on a connection whose far end vanished
    # without closing it: a publish would hang, so bound each command (socket_timeout, above the 1 s BRPOP
    # poll), the connect, and keep health checks on the long-lived BRPOP connection. No retry_on_timeout:
    # redis-py would send a publish that timed out a second time (and kombu then cannot batch publishes);
    # Celery's own reconnect covers it.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
        "visibility_timeout": 3600,
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "health_check_interval": 25,
        "retry_on_timeout": False,
    }
else:
    # The folder queue deletes a message as a worker receives it (no redelivery, and a countdown lives
    # only in that worker's memory): like Redis, it only wakes workers; the work is found again from
    # database rows by beat's sweeps. initdata creates its folders.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "store_processed": False,
        # Exchange bindings; kombu's default is ./control, in whatever directory a worker starts.
        "control_folder": str(CELERY_BROKER_DIR / "control"),
    }
# Django's cache holds cached session data and users (users/sessions.py, users/backends.py) and
# rendered pages (webpop/lib/pagecache.py): Redis when REDIS_URL is set, shared by every web
# process; else files under the data dir. Rate-limit counters are rows (webpop/lib/ratelimit.py).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "webpop",
            # A Redis that is down or cut off answers within a second rather than hanging each page. No
            # IGNORE_EXCEPTIONS: each caller chooses (reads and page writes fall back to the database,
            # dropping a session or user raises; webpop/errors.py turns that into a 503).
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 20000},
        }
    }
# Rate limits per user per minute (each client address gets three times as many: people share NATs).
WEBPOP_RATELIMIT_TEST_CONNECTION = env_int("WEBPOP_RATELIMIT_TEST_CONNECTION", 10, minimum=1)
WEBPOP_RATELIMIT_SUGGEST = env_int("WEBPOP_RATELIMIT_SUGGEST", 30, minimum=1)
# Confirmed unsubscribe requests per user per hour (each makes the server contact a host a message names).
WEBPOP_RATELIMIT_UNSUBSCRIBE = env_int("WEBPOP_RATELIMIT_UNSUBSCRIBE", 30, minimum=1)
# Reverse proxies in front of webpop that append to X-Forwarded-For (0: clients connect directly).
WEBPOP_PROXY_HOPS = env_int("WEBPOP_PROXY_HOPS", 0, minimum=0, maximum=5)

CELERY_TASK_IGNORE_RESULT = True
# A task's message is acknowledged when it starts. Work is found again from database rows (claims,
# leases, beat's sweeps), not from redelivered messages; and an acknowledgement due after a task that
# outlived its broker connection is one kombu 5.7 fails on, ending the worker (tests/test_chaos.py).
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker that lost the broker retries for as long as it takes (the default gives up after 100 tries,
# about 50 minutes, and exits): it holds no work, and needs no restart when Redis is back. Beat publishes
# through WebpopTask, which drops a task it cannot publish: its next tick publishes again.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A task running when the broker connection drops keeps running (Celery 6 will cancel it by default): a
# sync cut off only because Redis blinked would redo its POP3 session. A second run of any task is
# harmless anyway (the account lease, (account, uidl) unique, claims on rows).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Every tick beat's sweeps find due work from database rows and publish its tasks: the broker only wakes
# workers up, so a lost message (or a worker that dies holding one) delays work, never loses it.
_BEAT_TICK = timedelta(seconds=env_int("WEBPOP_POLL_TICK_SECONDS", 30, minimum=1))
CELERY_BEAT_SCHEDULE = {
    "poll-due-accounts": {"task": "mailbox.tasks.poll_due_accounts", "schedule": _BEAT_TICK},
    # Each sync enqueues indexing of what it stored; this sweep builds whatever is still missing.
    "index-search": {"task": "mailbox.tasks.index_search", "schedule": _BEAT_TICK},
    # Snoozed mail whose time has come goes back to the Inbox (Message.snoozed_until is the only record).
    "wake-snoozed": {"task": "mailbox.tasks.wake_snoozed", "schedule": _BEAT_TICK},
    # Messages to send whose (next) try is due, and those whose task or worker was lost.
    "dispatch-due-sends": {"task": "outgoing.tasks.dispatch_due_sends", "schedule": _BEAT_TICK},
    "expire-trash": {"task": "mailbox.tasks.expire_trash", "schedule": timedelta(hours=1)},
    # Imports whose task was lost or whose worker stopped continue where they were.
    "resume-imports": {"task": "mailbox.tasks.resume_imports", "schedule": timedelta(minutes=1)},
    # Actions on a whole folder or search ("Select all N") whose task was lost or whose worker stopped.
    "resume-bulk-jobs": {"task": "mailbox.tasks.resume_bulk_jobs", "schedule": _BEAT_TICK},
    # Mail stored before Inbox tabs existed is sorted into them while a mailbox.TabBackfill row says so.
    "sort-into-tabs": {"task": "mailbox.tasks.sort_into_tabs", "schedule": timedelta(minutes=1)},
    "users-cleanup": {"task": "users.tasks.cleanup", "schedule": timedelta(hours=24)},
    # Files released by deletions (rows in mailbox.FileToFree), whether or not a worker was woken for them.
    "free-released-files": {"task": "mailbox.tasks.free_released_files", "schedule": timedelta(minutes=10)},
    # The whole mail store against every row that references a file.
    "collect-garbage": {"task": "mailbox.tasks.collect_garbage", "schedule": timedelta(hours=24)},
    "prune-rate-counters": {"task": "webpop.tasks.prune_rate_counters", "schedule": timedelta(hours=1)},
}
# New-mail notifications by Web Push (push/): delivery tasks and new mail whose task was lost.
CELERY_BEAT_SCHEDULE["push-sweep"] = {"task": "push.tasks.sweep", "schedule": _BEAT_TICK}
# Days a message stays in the trash before it is deleted for good (and, under
# the mirror policy, from the server).
WEBPOP_TRASH_DAYS = env_int("WEBPOP_TRASH_DAYS", 30, minimum=1)
# Host-wide jobs (storage totals, garbage collection) rest this long between their slices (webpop/lib/walks.py).
WEBPOP_WALK_PAUSE_MS = env_int("WEBPOP_WALK_PAUSE_MS", 25, minimum=0, maximum=10_000)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# Operations (ops/): one beat enqueues (a lease in the database), worker heartbeats, /metrics.
CELERY_BEAT_SCHEDULER = "ops.beat:GuardedScheduler"
WEBPOP_BEAT_LEASE_SECONDS = env_int("WEBPOP_BEAT_LEASE_SECONDS", 60, minimum=3, maximum=3600)
WEBPOP_HEARTBEAT_SECONDS = env_int("WEBPOP_HEARTBEAT_SECONDS", 30, minimum=1, maximum=3600)
# Bearer token for Prometheus scraping /metrics; unset: sessions with the ops.view_metrics permission only.
WEBPOP_METRICS_TOKEN = env_str("WEBPOP_METRICS_TOKEN", None) or None
# Days of per-sync history (SyncRun) kept; the dashboard shows 7. /metrics totals keep counting.
WEBPOP_SYNC_HISTORY_DAYS = env_int("WEBPOP_SYNC_HISTORY_DAYS", 30, minimum=8)
CELERY_BEAT_SCHEDULE["fold-sync-totals"] = {"task": "ops.tasks.fold_sync_totals", "schedule": timedelta(minutes=1)}
CELERY_BEAT_SCHEDULE["prune-sync-history"] = {"task": "ops.tasks.prune_sync_history", "schedule": timedelta(hours=1)}
# Every user's stored mail, counted in slices for the dashboard and /metrics (ops/storage.py).
WEBPOP_STORAGE_TOTALS_MINUTES = env_int("WEBPOP_STORAGE_TOTALS_MINUTES", 15, minimum=1)
CELERY_BEAT_SCHEDULE["count-storage"] = {
    "task": "ops.tasks.count_storage",
    "schedule": timedelta(minutes=WEBPOP_STORAGE_TOTALS_MINUTES),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django": {"level": "INFO"}, "axes": {"level": "WARNING"}},  # axes: lockouts only
}

# HTML mail rendering (mailbox/sanitize.py, mailbox/views_html.py, mailbox/imageproxy.py).
# Test-only switch: off serves mail HTML unsanitized, to prove the sandbox and CSP hold alone.
WEBPOP_SANITIZE_HTML = env_bool("WEBPOP_SANITIZE_HTML", True)
# Lifetime of the signed URLs a message's frame loads its cid: and proxied images through.
WEBPOP_HTML_ASSET_MAX_AGE = env_int("WEBPOP_HTML_ASSET_MAX_AGE", 600, minimum=10, maximum=86400)
WEBPOP_IMAGE_PROXY_MAX_BYTES = env_int("WEBPOP_IMAGE_PROXY_MAX_BYTES", 5 * 1024 * 1024, minimum=1024)
WEBPOP_IMAGE_PROXY_TIMEOUT = env_int("WEBPOP_IMAGE_PROXY_TIMEOUT", 10, minimum=1, maximum=120)
# Let the image proxy and one-click unsubscribe reach private/loopback/link-local addresses (tests only;
# never in production). One-click unsubscribe (unsubscribe/oneclick.py) uses the proxy's timeout too.
WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE = env_bool("WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE", False)
# Extra CA bundle trusted for one-click unsubscribe requests (system CAs always are).
WEBPOP_UNSUBSCRIBE_CA_FILE = env_str("WEBPOP_UNSUBSCRIBE_CA_FILE", None) or None
if WEBPOP_UNSUBSCRIBE_CA_FILE and not Path(WEBPOP_UNSUBSCRIBE_CA_FILE).is_file():
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"WEBPOP_UNSUBSCRIBE_CA_FILE={WEBPOP_UNSUBSCRIBE_CA_FILE!r} is not a readable file.")
# One-click unsubscribe requests whose (next) try is due, and those whose task or worker was lost.
CELERY_BEAT_SCHEDULE["resume-unsubscribes"] = {"task": "unsubscribe.tasks.resume_unsubscribes", "schedule": _BEAT_TICK}

# Web Push (push/): VAPID keys from the environment, or the private key in <data dir>/vapid_private_key
# that `manage.py vapidkeys` writes (nothing is generated here). Without keys push is off and
# notifications show only while webpop is open in a tab.
WEBPOP_VAPID_PRIVATE_KEY = (
    env_str("WEBPOP_VAPID_PRIVATE_KEY", "") or read_secret_file(DATA_DIR / "vapid_private_key") or ""
).strip()
WEBPOP_VAPID_PUBLIC_KEY = (env_str("WEBPOP_VAPID_PUBLIC_KEY", "") or "").strip().rstrip("=")
if WEBPOP_VAPID_PRIVATE_KEY or WEBPOP_VAPID_PUBLIC_KEY:
    from django.core.exceptions import ImproperlyConfigured

    from push.vapid import VapidKeyError, public_key_of

    if not WEBPOP_VAPID_PRIVATE_KEY:
        raise ImproperlyConfigured("WEBPOP_VAPID_PUBLIC_KEY is set without WEBPOP_VAPID_PRIVATE_KEY.")
    try:
        _vapid_public = public_key_of(WEBPOP_VAPID_PRIVATE_KEY)
    except VapidKeyError as exc:
        raise ImproperlyConfigured(f"WEBPOP_VAPID_PRIVATE_KEY: {exc}.") from None
    if WEBPOP_VAPID_PUBLIC_KEY and _vapid_public != WEBPOP_VAPID_PUBLIC_KEY:
        raise ImproperlyConfigured("WEBPOP_VAPID_PUBLIC_KEY is not the public key of WEBPOP_VAPID_PRIVATE_KEY.")
    WEBPOP_VAPID_PUBLIC_KEY = _vapid_public
# Whom push services may contact about our pushes: a mailto: or https: URL.
WEBPOP_VAPID_SUBJECT = env_str("WEBPOP_VAPID_SUBJECT", f"mailto:{DEFAULT_FROM_EMAIL}") or ""
if not WEBPOP_VAPID_SUBJECT.startswith(("mailto:", "https://")):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"WEBPOP_VAPID_SUBJECT={WEBPOP_VAPID_SUBJECT!r} is not a mailto: or https: URL.")
WEBPOP_PUSH_TIMEOUT = env_int("WEBPOP_PUSH_TIMEOUT", 10, minimum=1, maximum=60)
# Let push go to endpoints on private/loopback addresses, and over plain http (tests only; never in production).
WEBPOP_PUSH_ALLOW_PRIVATE = env_bool("WEBPOP_PUSH_ALLOW_PRIVATE", False)

# Spam filtering with rspamd (spam/): each new message is scanned after it is stored, and "Spam" / "Not
# spam" train rspamd's Bayes per user. Unset: no rspamd; an account may trust its provider's verdict.
# WEBPOP_RSPAMD_URL is the normal worker (scanning, port 11333); training goes to the controller (port 11334
# of the same host unless WEBPOP_RSPAMD_CONTROLLER_URL says otherwise), with WEBPOP_RSPAMD_PASSWORD (or _FILE).
# Both are the operator's own services: the network guard lets them be on loopback or a private network.
WEBPOP_RSPAMD_URL = env_http_url("WEBPOP_RSPAMD_URL")
WEBPOP_RSPAMD_CONTROLLER_URL = env_http_url("WEBPOP_RSPAMD_CONTROLLER_URL") or url_with_port(WEBPOP_RSPAMD_URL, 11334)
WEBPOP_RSPAMD_PASSWORD = (env_str("WEBPOP_RSPAMD_PASSWORD", "") or "").strip()
WEBPOP_RSPAMD_TIMEOUT = env_int("WEBPOP_RSPAMD_TIMEOUT", 20, minimum=1, maximum=300)
# Messages one worker has scanned at once (rspamd's normal workers scan them in parallel).
WEBPOP_RSPAMD_CONCURRENCY = env_int("WEBPOP_RSPAMD_CONCURRENCY", 4, minimum=1, maximum=64)
# Larger messages are not scanned (spam is small; rspamd's own limit is 50 MB).
WEBPOP_RSPAMD_MAX_BYTES = env_int("WEBPOP_RSPAMD_MAX_BYTES", 20 * 1024 * 1024, minimum=1024)
# Scans and training still to do (rows in spam.PendingScan / spam.PendingLearn), whether or not a worker was woken.
CELERY_BEAT_SCHEDULE["scan-spam"] = {"task": "spam.tasks.scan_pending", "schedule": _BEAT_TICK}
CELERY_BEAT_SCHEDULE["learn-spam"] = {"task": "spam.tasks.learn_pending", "schedule": _BEAT_TICK}
