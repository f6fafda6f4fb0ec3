from django import template
from django.utils import timezone

from ..snooze_times import Choice, choices

register = template.Library()


@register.simple_tag
def snooze_choices() -> tuple[Choice, ...]:
    """The snooze menu's times, now, in the active time zone (the user's); a tuple: a {% once %} key."""
    return tuple(choices(timezone.now(), timezone.get_current_timezone()))
