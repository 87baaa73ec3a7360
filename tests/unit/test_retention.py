"""The trim point of a stream: the age cut-off, held back by what a consumer group still needs."""

from __future__ import annotations

from shared.retention import GroupState, StreamId, trim_point

CUTOFF = StreamId(1_000_000, 0)


def test_without_groups_the_cut_off_is_the_trim_point():
    assert trim_point(CUTOFF, []) == trim_point(CUTOFF, ())
    point = trim_point(CUTOFF, [])
    assert (point.min_id, point.held_by) == (CUTOFF, ())


def test_a_group_that_handled_everything_does_not_hold_the_trim():
    done = GroupState("audit", last_delivered_id=StreamId(1_500_000, 3), lag=0)
    point = trim_point(CUTOFF, [done])
    assert (point.min_id, point.held_by) == (CUTOFF, ())


def test_an_old_pending_entry_holds_the_trim_at_itself():
    group = GroupState("structure", StreamId(1_500_000), lag=0, oldest_pending_id=StreamId(400_000, 2))
    point = trim_point(CUTOFF, [group])
    assert (point.min_id, point.held_by) == (StreamId(400_000, 2), ("structure",))


def test_a_pending_entry_newer_than_the_cut_off_does_not_hold_it():
    group = GroupState("structure", StreamId(1_500_000), lag=0, oldest_pending_id=StreamId(1_200_000))
    assert trim_point(CUTOFF, [group]).min_id == CUTOFF


def test_an_unread_entry_holds_the_trim_just_after_the_last_delivered_one():
    behind = GroupState("notify", last_delivered_id=StreamId(300_000, 7), lag=4)
    point = trim_point(CUTOFF, [behind])
    assert (point.min_id, point.held_by) == (StreamId(300_000, 8), ("notify",))


def test_the_last_sequence_of_a_millisecond_is_followed_by_the_next_millisecond():
    assert StreamId(5, 2**64 - 1).next() == StreamId(6, 0)


def test_with_several_groups_the_oldest_need_wins_and_every_holder_is_named():
    groups = [
        GroupState("notify", StreamId(600_000), lag=1),
        GroupState("audit", StreamId(2_000_000), lag=0),
        GroupState("structure", StreamId(900_000), lag=0, oldest_pending_id=StreamId(200_000)),
    ]
    point = trim_point(CUTOFF, groups)
    assert point.min_id == StreamId(200_000)
    assert point.held_by == ("notify", "structure")


def test_stream_ids_read_and_print_as_redis_writes_them():
    assert StreamId.parse("1700000000123-4") == StreamId(1_700_000_000_123, 4)
    assert str(StreamId.at(1_700_000_000.5)) == "1700000000500-0"
    assert StreamId.parse("5-1") < StreamId.parse("5-10") < StreamId.parse("6-0")
