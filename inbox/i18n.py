"""Locale and time zone per request; relative times for the inbox."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from flask import Flask, current_app, g, has_request_context, request
from babel.dates import format_timedelta, get_date_format, get_datetime_format, get_time_format, parse_pattern
from babel.numbers import format_percent
from jinja2 import pass_eval_context
from markupsafe import Markup
from flask_babel import format_date, format_datetime, get_locale, get_timezone, get_translations
from flask_babel import gettext as _
from flask_login import current_user

from .extensions import babel
from .models import utcnow


def select_locale() -> str:
    supported = current_app.config["SUPPORTED_LOCALES"]
    if not has_request_context():  # jobs, CLI, seed
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    if current_user and current_user.is_authenticated:
        if current_user.locale in supported:
            return current_user.locale
        return current_user.workspace.default_locale
    return request.accept_languages.best_match(supported) or current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone() -> str:
    if not has_request_context():
        return "UTC"
    if current_user and current_user.is_authenticated:
        return current_user.workspace.timezone
    return "Europe/Paris"


def relative_time(value: datetime | None) -> str:
    """ "il y a 5 min" / "5 min ago"."""
    if value is None:
        return ""
    delta = value - utcnow()
    if abs(delta.total_seconds()) < 45:
        return _("just now")
    return format_timedelta(delta, add_direction=True, format="short", threshold=1.1,
                            locale=get_locale())


def _translations():
    """flask_babel's translations for the current locale, looked up once per locale and request.

    Templates call gettext hundreds of times a page (~560 for the inbox list); flask_babel's own
    lookup walks the context, the domain and the locale's string form each time (~15 µs, a fifth
    of the inbox list's render)."""
    return translated_once("translations", get_translations)


def translated_once(key: str, build):
    """build()'s result (translations, labels in the reader's language), made once per request
    and locale.

    Kept on flask_babel's per-request namespace next to the locale object it was made for:
    force_locale() (mails in the customer's language) sets another locale object, so the memo
    follows it in and out. The hit path reads `g` once (each read of the proxy costs)."""
    try:
        ctx = g._flask_babel
        locale, memo = ctx.coccinelle_memo
        if locale is ctx.babel_locale:
            return memo[key]
    except (AttributeError, RuntimeError, KeyError):  # first call, another locale, no app context
        pass
    value = build()
    memo = _locale_memo()
    if memo is not None:
        memo[key] = value
    return value


def _locale_memo() -> dict | None:
    """This request's memo for the locale in force (None before a locale is known or outside a
    request)."""
    ctx = g.get("_flask_babel") if g else None
    locale = getattr(ctx, "babel_locale", None)
    if locale is None:
        return None
    held = getattr(ctx, "coccinelle_memo", None)
    if held is None or held[0] is not locale:
        held = ctx.coccinelle_memo = (locale, {})
    return held[1]


_FAST_DATETIME_FORMATS = ("short", "medium")


def format_user_datetime(value: datetime | None, fmt: str = "short") -> str:
    """A date and time in the user's locale and time zone, as flask_babel's format_datetime writes it.

    A thread shows 50 times; flask_babel resolves the locale, the time zone and three patterns on
    every call (~130 µs each). Here the patterns are parsed once per request, locale and time zone
    (kept on flask_babel's per-request namespace, like the translations above), then applied the
    way babel does for a named format: the time and the date formatted apart, then put in the
    locale's "{1} {0}" frame. A list's rows and a thread's messages mostly share a few days: each
    day's date is written once per request."""
    if not value:
        return ""
    ctx = g.get("_flask_babel") if g else None
    if fmt not in _FAST_DATETIME_FORMATS or ctx is None or babel.date_formats.get(f"datetime.{fmt}"):
        return format_datetime(value, fmt)
    cache = getattr(ctx, "coccinelle_datetime_patterns", None)
    if cache is None:
        cache = ctx.coccinelle_datetime_patterns = {}
    entry = cache.get(fmt)
    # force_locale() swaps the locale object: the entry made for another one is made again.
    if entry is None or entry[0] is not getattr(ctx, "babel_locale", None) \
            or entry[1] is not getattr(ctx, "babel_tzinfo", None):
        locale, tzinfo = get_locale(), get_timezone()
        entry = cache[fmt] = (locale, tzinfo, get_datetime_format(fmt, locale=locale).replace("'", ""),
                              parse_pattern(get_time_format(fmt, locale=locale)),
                              parse_pattern(get_date_format(fmt, locale=locale)), {})
    locale, tzinfo, frame, time_pattern, date_pattern, dates = entry
    local = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(tzinfo)
    day = local.date()
    date_text = dates.get(day)
    if date_text is None:
        date_text = dates[day] = date_pattern.apply(local, locale)
    return frame.replace("{0}", time_pattern.apply(local, locale)).replace("{1}", date_text)


@pass_eval_context
def _template_gettext(eval_ctx, string: str, **variables) -> str:
    """`_()` and `gettext()` in templates, as Jinja's newstyle gettext behaves (escaped when the
    template autoescapes, always a format string) in one call instead of three.

    Jinja's own wraps the translation function twice (the `_` alias resolving `gettext`, which
    calls the function through the context): ~24 µs a call, and a conversation page makes ~250
    (labels, buttons, badges). A string without "%" formats to itself: the `%` is skipped then."""
    rv = _translations().ugettext(string)
    if eval_ctx.autoescape:
        rv = Markup(rv)
    return rv % variables if variables or "%" in rv else rv


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
        newstyle=True)
    app.jinja_env.globals.update(_=_template_gettext, gettext=_template_gettext)
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.filters["ago"] = relative_time
    app.jinja_env.filters["datetime"] = format_user_datetime
    app.jinja_env.filters["date"] = lambda v, fmt="medium": format_date(v, fmt) if v else ""  # 1 mars 2026 / 1 Mar 2026
    # "75,8 %" / "75.8%": a value already in percent (a budget's use), its decimals kept.
    app.jinja_env.filters["percent"] = lambda v: format_percent(Decimal(str(v or 0)) / 100, locale=get_locale(),
                                                                decimal_quantization=False)
