from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest

from hoopray import store
from hoopray.roster import Roster, RosterError, TeamRoster, load_roster, parse_roster

GOOD_YAML = """\
teams:
  - name: New York Knicks
    colour: "#006BB6"
    players:
      "23": Robinson
      11: Brunson
      "0": Wright
      00: Double Zero
      07: Seven
  - name: Boston Celtics
    color: "#0A3"
    players:
      "0": Tatum
      "7": Brown
"""


def _data() -> dict[str, Any]:
    return {
        "teams": [
            {"name": "Knicks", "colour": "#006BB6", "players": {"23": "Robinson", 11: "Brunson"}},
            {"name": "Celtics", "colour": "#007a33", "players": {"7": "Brown"}},
        ]
    }


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_roster(tmp_path: Path) -> None:
    roster = load_roster(_write(tmp_path, GOOD_YAML))
    assert roster.names == ("New York Knicks", "Boston Celtics")
    knicks = roster.team("New York Knicks")
    assert knicks == TeamRoster(
        name="New York Knicks",
        colour="#006bb6",
        players={
            "23": "Robinson",
            "11": "Brunson",
            "0": "Wright",
            "00": "Double Zero",
            "7": "Seven",
        },
    )
    assert roster.team("Boston Celtics").colour == "#00aa33"
    assert roster.colour_rgb("New York Knicks") == (0x00, 0x6B, 0xB6)
    assert roster.colour_rgb("Boston Celtics") == (0, 170, 51)


@pytest.mark.parametrize(
    ("team", "number", "expected"),
    [
        ("New York Knicks", "23", "Robinson"),
        ("New York Knicks", "#23.", "Robinson"),
        ("New York Knicks", "00", "Double Zero"),
        ("New York Knicks", "0", "Wright"),
        ("New York Knicks", "07", "Seven"),
        ("New York Knicks", "99", None),
        ("New York Knicks", None, None),
        ("New York Knicks", "", None),
        ("Boston Celtics", "23", None),
        ("Boston Celtics", "7", "Brown"),
    ],
)
def test_player(tmp_path: Path, team: str, number: str | None, expected: str | None) -> None:
    assert load_roster(_write(tmp_path, GOOD_YAML)).player(team, number) == expected


def test_unknown_team() -> None:
    roster = parse_roster(_data(), "test")
    for call in (roster.team, roster.colour_rgb):
        with pytest.raises(KeyError):
            call("Lakers")
    with pytest.raises(KeyError):
        roster.player("Lakers", "23")


def test_parse_roster_normalises() -> None:
    roster = parse_roster(_data(), "test")
    assert isinstance(roster, Roster)
    assert roster.team("Knicks").players == {"23": "Robinson", "11": "Brunson"}
    assert roster.team("Celtics").colour == "#007a33"


def test_empty_players_are_allowed() -> None:
    data = _data()
    data["teams"][1]["players"] = {}
    assert parse_roster(data, "test").team("Celtics").players == {}


def _broken(change: str) -> dict[str, Any]:
    data = copy.deepcopy(_data())
    team = data["teams"][0]
    if change == "duplicate normalised number":
        team["players"]["07"] = "A"
        team["players"]["7"] = "B"
    elif change == "int and str key":
        team["players"][23] = "Other"
    elif change == "bad colour":
        team["colour"] = "blue"
    elif change == "colour without hash":
        team["colour"] = "006BB6"
    elif change == "missing colour":
        del team["colour"]
    elif change == "both spellings":
        team["color"] = "#000000"
    elif change == "number too big":
        team["players"]["100"] = "X"
    elif change == "negative number":
        team["players"][-1] = "X"
    elif change == "word number":
        team["players"]["seven"] = "X"
    elif change == "empty name":
        team["players"]["5"] = " "
    elif change == "non-string name":
        team["players"]["5"] = True
    elif change == "missing players":
        del team["players"]
    elif change == "players not a mapping":
        team["players"] = ["Robinson"]
    elif change == "missing team name":
        del team["name"]
    elif change == "unknown team key":
        team["player"] = {}
    elif change == "team not a mapping":
        data["teams"][0] = "Knicks"
    elif change == "same team twice":
        data["teams"][1]["name"] = " knicks "
    elif change == "one team":
        data["teams"].pop()
    elif change == "three teams":
        data["teams"].append(copy.deepcopy(team) | {"name": "Nets"})
    elif change == "no teams key":
        data = {"team": data["teams"]}
    elif change == "teams not a list":
        data["teams"] = {"Knicks": team}
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("duplicate normalised number", "number '7' twice"),
        ("int and str key", "number '23' twice"),
        ("bad colour", "'blue' is not"),
        ("colour without hash", "is not"),
        ("missing colour", "quote"),
        ("both spellings", "both 'colour' and 'color'"),
        ("number too big", "'100' is not a jersey number"),
        ("negative number", "-1 is not a jersey number"),
        ("word number", "'seven' is not a jersey number"),
        ("empty name", "needs a player name"),
        ("non-string name", "needs a player name"),
        ("missing players", "no 'players'"),
        ("players not a mapping", "must map numbers"),
        ("missing team name", "non-empty 'name'"),
        ("unknown team key", "unknown key"),
        ("team not a mapping", "team 1 must be a mapping"),
        ("same team twice", "both teams are called"),
        ("one team", "exactly two teams; found 1"),
        ("three teams", "exactly two teams; found 3"),
        ("no teams key", "no 'teams' key"),
        ("teams not a list", "must be a list"),
    ],
)
def test_parse_roster_errors(change: str, message: str) -> None:
    with pytest.raises(RosterError, match="roster my-source: ") as info:
        parse_roster(_broken(change), "my-source")
    assert message in str(info.value)
    assert info.value.source == "my-source"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("# only a comment\n", "is empty"),
        ("- a\n- b\n", "must be a mapping"),
        ("just text", "must be a mapping"),
        ("teams: [\n", "YAML problem"),
        ("teams: []\nteams: []\n", "duplicate key 'teams'"),
        (GOOD_YAML.replace('"0": Tatum', '"7": Tatum'), "duplicate key '7'"),
        (GOOD_YAML.replace('"0": Tatum', "7: Tatum"), "duplicate key '7'"),
        (GOOD_YAML.replace('"0": Wright', "23: Wright"), "duplicate key '23'"),
        (GOOD_YAML.replace('"0": Wright', '"7": Wright'), "number '7' twice"),
        (GOOD_YAML.replace('"0": Wright', '"07": Wright'), "duplicate key '07'"),
        (GOOD_YAML.replace('"0": Wright', "0: Wright\n      000: Triple"), "'000'"),
        (GOOD_YAML.replace('"0": Wright', "1_0: Ten"), "'1_0'"),
        (GOOD_YAML.replace('"0": Wright', "0x1F: Hex"), "'0x1F'"),
        (GOOD_YAML.replace('colour: "#006BB6"', "colour: #006BB6"), "quote"),
        (GOOD_YAML.replace('23": Robinson', '23": no'), "needs a player name"),
    ],
)
def test_load_roster_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(RosterError) as info:
        load_roster(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_load_roster_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(RosterError, match="cannot read"):
        load_roster(path)


def test_load_roster_is_safe(tmp_path: Path) -> None:
    path = _write(tmp_path, "teams: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(RosterError, match="YAML problem"):
        load_roster(path)


def test_load_roster_plain_zero_zero_is_not_zero(tmp_path: Path) -> None:
    text = GOOD_YAML.replace('"0": Wright', "0: Wright")
    assert "\n      0: Wright\n      00: Double Zero\n" in text
    roster = load_roster(_write(tmp_path, text))
    assert roster.player("New York Knicks", "00") == "Double Zero"
    assert roster.player("New York Knicks", "0") == "Wright"


@pytest.mark.parametrize(
    ("colour", "expected"), [("#ABC", (170, 187, 204)), ("#00FF80", (0, 255, 128)), ("red", None)]
)
def test_colour_rgb_of_a_directly_built_roster(
    colour: str, expected: tuple[int, int, int] | None
) -> None:
    roster = Roster((TeamRoster("A", colour, {}), TeamRoster("B", "#000000", {})))
    if expected is None:
        with pytest.raises(RosterError):
            roster.colour_rgb("A")
    else:
        assert roster.colour_rgb("A") == expected


def test_load_roster_from_a_uri_and_a_str() -> None:
    import fsspec

    store.register_filesystem("mem", fsspec.filesystem("memory"))
    root = f"mem://bucket/{uuid.uuid4().hex}"
    try:
        location = store.write_text(store.join(root, "game", "roster.yaml"), GOOD_YAML)
        roster = load_roster(location)
        assert roster.player("New York Knicks", "00") == "Double Zero"
        with pytest.raises(RosterError, match="cannot read") as info:
            load_roster(store.join(root, "nope.yaml"))
        assert root in str(info.value)
    finally:
        store.delete_tree(root)


def test_load_roster_accepts_str_and_path(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD_YAML)
    assert load_roster(str(path)) == load_roster(path)
