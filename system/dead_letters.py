"""`python -m system.dead_letters` (`make dead-letters`): list the dead letters, replay them.

A dead letter is an entry that a consumer group could not handle `EVENT_MAX_DELIVERIES` times
(shared/bus.py copied it to the `dead-letters` stream with the reason, and acknowledged it so
that its stream flows on). Once the cause is fixed, `replay` puts the original event back on its
stream and removes the dead letter, both in one transaction.

The listing never prints the event's data (it holds personal data): only where it was, which
event it is (id, type, subject = registration id) and why it failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import redis

from shared.bus import DEAD_LETTERS, SEEN_TTL_SECONDS
from shared.events import Event, InvalidEvent, stream_for
from shared.settings import Settings, SettingsError
from shared.store import connect, describe
from shared.timestamps import iso_utc

REPLAYED = "replayed"
ALREADY_REPLAYED = "already-replayed"
REFUSED = "refused"
MISSING = "missing"


@dataclass
class DeadLetter:
    id: str
    stream: str
    group: str
    entry_id: str
    consumer: str
    reason: str
    deliveries: int | None
    failed_at: str | None
    event_id: str | None
    event_type: str | None
    subject: str | None
    # Why `replay` would refuse it (None: it can be replayed).
    not_replayable: str | None


@dataclass
class Outcome:
    id: str
    result: str  # REPLAYED, ALREADY_REPLAYED, REFUSED or MISSING
    detail: str = ""
    stream: str = ""
    new_entry_id: str | None = None


def _iso(timestamp: str | None) -> str | None:
    try:
        return iso_utc(float(timestamp or ""))
    except (ValueError, OverflowError, OSError):
        return None


def _check(fields: dict[str, str]) -> tuple[Event | None, str | None]:
    """The event a dead letter holds, or why it cannot go back to its stream."""
    raw = fields.get("event") or ""
    if not raw:
        return None, "l'entrée avait disparu du flux : il n'y a pas d'événement à relire"
    try:
        event = Event.from_json(raw)
    except InvalidEvent as exc:
        return None, f"événement invalide ({exc}) : le relire le renverrait ici"
    if fields.get("stream") != stream_for(event.type):
        return event, f"un événement {event.type} n'appartient pas au flux {fields.get('stream')!r}"
    return event, None


def read_letter(entry_id: str, fields: dict[str, str]) -> DeadLetter:
    """One `dead-letters` entry as a DeadLetter (never its event's data)."""
    event, problem = _check(fields)
    deliveries = fields.get("deliveries", "")
    return DeadLetter(
        id=entry_id,
        stream=fields.get("stream", ""),
        group=fields.get("group", ""),
        entry_id=fields.get("entry_id", ""),
        consumer=fields.get("consumer", ""),
        reason=fields.get("reason", ""),
        deliveries=int(deliveries) if deliveries.isdigit() else None,
        failed_at=_iso(fields.get("failed_at")),
        event_id=event.id if event else None,
        event_type=event.type if event else None,
        subject=event.subject if event else None,
        not_replayable=problem,
    )


def dead_letters(client: redis.Redis, limit: int | None = None) -> list[DeadLetter]:
    """The dead letters, oldest first (`limit`: at most that many). `client` decodes responses."""
    return [read_letter(entry_id, fields) for entry_id, fields in client.xrange(DEAD_LETTERS, count=limit)]


def replay(client: redis.Redis, ids: Iterable[str], stream_maxlen: int) -> list[Outcome]:
    """Put each dead letter's event back on its stream and delete the dead letter, atomically.

    Several dead letters of one event (two groups failed on the same entry) give one new entry:
    every group of the stream receives it, and a group that already handled it skips it.
    """
    outcomes = []
    done: dict[tuple[str, str], str] = {}  # (stream, event id) → the new entry of this run
    for entry_id in ids:
        outcomes.append(_replay_one(client, entry_id, stream_maxlen, done))
    return outcomes


def _replay_one(
    client: redis.Redis, entry_id: str, stream_maxlen: int, done: dict[tuple[str, str], str]
) -> Outcome:
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(DEAD_LETTERS)  # a concurrent replay of the same letter aborts this one
                entries = pipe.xrange(DEAD_LETTERS, min=entry_id, max=entry_id)
                if not entries:
                    return Outcome(entry_id, MISSING, "aucune lettre morte ne porte cet identifiant")
                fields = entries[0][1]
                event, problem = _check(fields)
                if problem or event is None:
                    return Outcome(entry_id, REFUSED, problem or "", fields.get("stream", ""))
                stream = fields["stream"]
                already = done.get((stream, event.id))
                pipe.multi()
                if already is None:
                    pipe.xadd(stream, {"event": fields["event"]}, maxlen=stream_maxlen, approximate=True)
                pipe.xdel(DEAD_LETTERS, entry_id)
                results = pipe.execute()
            except redis.WatchError:
                continue
            if already is not None:
                return Outcome(entry_id, ALREADY_REPLAYED, f"même événement déjà remis ({already})", stream)
            done[(stream, event.id)] = results[0]
            return Outcome(entry_id, REPLAYED, "", stream, results[0])


def drop(client: redis.Redis, ids: Iterable[str]) -> list[Outcome]:
    """Delete dead letters without replaying them (garbage that no fix will make valid)."""
    outcomes = []
    for entry_id in ids:
        removed = client.xdel(DEAD_LETTERS, entry_id)
        outcomes.append(Outcome(entry_id, "dropped" if removed else MISSING))
    return outcomes


def render_list(letters: Sequence[DeadLetter], total: int) -> str:
    if not letters:
        return f"Aucune lettre morte ({DEAD_LETTERS} est vide)."
    lines = [
        f"{total} lettre(s) morte(s) dans {DEAD_LETTERS}"
        + (f", {len(letters)} montrée(s)" if len(letters) < total else "")
    ]
    for letter in letters:
        deliveries = "?" if letter.deliveries is None else str(letter.deliveries)
        lines.append("")
        lines.append(
            f"{letter.id}  {letter.failed_at or '?'}  groupe {letter.group}  {deliveries} livraison(s)"
        )
        lines.append(f"  entrée    {letter.stream} {letter.entry_id} (consommateur {letter.consumer or '?'})")
        if letter.event_id:
            lines.append(f"  événement {letter.event_type} {letter.event_id}  sujet {letter.subject or '-'}")
        lines.append(f"  raison    {letter.reason}")
        if letter.not_replayable:
            lines.append(f"  non relisible : {letter.not_replayable}")
    return "\n".join(lines)


def render_outcomes(outcomes: Sequence[Outcome]) -> str:
    words = {
        REPLAYED: "remise dans",
        ALREADY_REPLAYED: "retirée (événement déjà remis)",
        REFUSED: "refusée",
        MISSING: "introuvable",
        "dropped": "supprimée",
    }
    lines = []
    for o in outcomes:
        where = f" {o.stream} (nouvelle entrée {o.new_entry_id})" if o.result == REPLAYED else ""
        detail = f" : {o.detail}" if o.detail and o.result != REPLAYED else ""
        lines.append(f"{o.id}  {words.get(o.result, o.result)}{where}{detail}")
    return "\n".join(lines) if lines else "Aucune lettre morte à traiter."


HELP = f"""\
Les lettres mortes sont les entrées qu'un groupe de consommateurs n'a pas pu traiter après
EVENT_MAX_DELIVERIES livraisons : elles ont été copiées dans le flux « {DEAD_LETTERS} » avec la
raison de l'échec, et le flux d'origine a continué.

  list    les montre (jamais les données de l'événement, qui sont personnelles)
  replay  remet l'événement d'origine dans son flux et supprime la lettre morte, en une transaction
  drop    supprime une lettre morte sans la relire

La relecture remet le même événement (même identifiant CloudEvents) dans son flux : chaque
groupe qui lit ce flux le reçoit de nouveau, mais un groupe qui l'avait déjà traité le reconnaît
à sa marque « vu » (gardée {SEEN_TTL_SECONDS // 86400} jours) et l'ignore ; seul le groupe qui
avait échoué le traite. Corrigez d'abord la cause, sinon l'événement repartira dans les lettres
mortes après EVENT_MAX_DELIVERIES nouveaux essais. Un événement invalide (contrat non respecté,
entrée disparue du flux) n'est pas relu : supprimez-le avec drop.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m system.dead_letters",
        description="Lister et relire les lettres mortes des flux d'événements (REDIS_URL).",
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{list,replay,drop}")
    listing = commands.add_parser("list", help="montrer les lettres mortes, les plus anciennes d'abord")
    listing.add_argument("--json", action="store_true", help="la même liste, en JSON")
    listing.add_argument("--limit", type=int, default=None, metavar="N", help="au plus N lettres")
    replaying = commands.add_parser(
        "replay",
        help="remettre l'événement dans son flux (même id : qui l'a déjà traité l'ignore)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replaying.add_argument("ids", nargs="*", metavar="ENTRY_ID", help="identifiant(s) de lettre morte")
    replaying.add_argument("--all", action="store_true", help="toutes les lettres mortes")
    replaying.add_argument("--json", action="store_true", help="le résultat en JSON")
    dropping = commands.add_parser("drop", help="supprimer des lettres mortes sans les relire")
    dropping.add_argument("ids", nargs="+", metavar="ENTRY_ID")
    dropping.add_argument("--json", action="store_true", help="le résultat en JSON")
    args = parser.parse_args(argv)
    if args.command == "replay" and args.all == bool(args.ids):
        replaying.error("donnez soit ENTRY_ID…, soit --all")

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"Configuration invalide : {exc}", file=sys.stderr)
        return 1
    client = connect(settings)
    try:
        if args.command == "list":
            letters = dead_letters(client, args.limit)
            total = client.xlen(DEAD_LETTERS)
            if args.json:
                print(json.dumps([asdict(letter) for letter in letters], ensure_ascii=False, indent=2))
            else:
                print(render_list(letters, total))
            return 0
        if args.command == "replay":
            ids = [letter.id for letter in dead_letters(client)] if args.all else args.ids
            outcomes = replay(client, ids, settings.event_stream_maxlen)
        else:
            outcomes = drop(client, args.ids)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        print(f"Redis injoignable ({describe(settings)}) : {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    if args.json:
        print(json.dumps([asdict(o) for o in outcomes], ensure_ascii=False, indent=2))
    else:
        print(render_outcomes(outcomes))
    return 1 if any(o.result in (REFUSED, MISSING) for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
