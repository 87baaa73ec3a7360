"""French wording shared by the pages and the emails, so both promise the same thing."""

from __future__ import annotations


def plural(count: int, singular: str, plural_form: str) -> str:
    return f"{count} {singular if count == 1 else plural_form}"


def validity_in_words(ttl_seconds: int) -> str:
    """`3600` → "60 minutes", `7200` → "2 heures", `5400` → "1 heure et 30 minutes".

    Up to an hour the validity is told in minutes, as the portal does ("60 minutes"); below a
    minute in seconds; up to two days in hours and minutes; beyond in days and hours. Leftover
    seconds are dropped: nothing promises more time than the link has.
    """
    seconds = max(0, int(ttl_seconds))
    if seconds < 60:
        return plural(seconds, "seconde", "secondes")
    if seconds <= 3600:
        return plural(seconds // 60, "minute", "minutes")
    if seconds < 2 * 86400:
        hours, minutes = seconds // 3600, seconds % 3600 // 60
        words = plural(hours, "heure", "heures")
        return f"{words} et {plural(minutes, 'minute', 'minutes')}" if minutes else words
    days, hours = seconds // 86400, seconds % 86400 // 3600
    words = plural(days, "jour", "jours")
    return f"{words} et {plural(hours, 'heure', 'heures')}" if hours else words
