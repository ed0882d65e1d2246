"""Game rosters: which player wears which number in each of the two teams.

``roster.yaml``::

    teams:
      - name: New York Knicks
        colour: "#006BB6"          # quote it: an unquoted # starts a YAML comment
        players:
          "23": Robinson
          11: Brunson              # plain ints are fine
          "00": Someone            # "00" may be quoted or not; see below
      - name: Boston Celtics
        colour: "#007A33"
        players: {...}

Rules (each broken one raises :class:`RosterError` naming the file and the problem):

- exactly two teams, with distinct names (compared case-insensitively);
- ``colour`` (or ``color``) is ``#rrggbb`` or ``#rgb``, any case, stored as lowercase
  ``#rrggbb``;
- ``players`` maps a number to a non-empty name; numbers are normalised by
  :func:`hoopray.numbers.normalise_number` and must be 0..99 or "00"; two keys that
  normalise alike ("7" and "07", or a key written twice) are an error;
- no other keys inside a team (a typo such as ``player:`` is caught); other top-level
  keys are ignored.

YAML 1.1 reads plain ``00`` and ``07`` as the ints 0 and 7, which would make "00" a
"0". :func:`load_roster` keeps the text of plain numeric keys instead, so ``00:`` stays
"00" and ``07:`` becomes "7". :func:`parse_roster` on already-loaded data cannot see the
text: an int key 0 there means "0".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import yaml

from hoopray import store
from hoopray.numbers import normalise_number

_COLOUR = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")
_TEAM_KEYS = {"name", "colour", "color", "players"}
_INT_TAG = "tag:yaml.org,2002:int"


class RosterError(ValueError):
    """A roster that cannot be used; the message names its source and the problem."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"roster {source}: {problem}")
        self.source = source
        self.problem = problem


@dataclass(frozen=True)
class TeamRoster:
    """One team: its name, its colour ``#rrggbb`` (lowercase) and number -> player name."""

    name: str
    colour: str
    players: dict[str, str]


@dataclass(frozen=True)
class Roster:
    teams: tuple[TeamRoster, TeamRoster]

    @property
    def names(self) -> tuple[str, str]:
        return (self.teams[0].name, self.teams[1].name)

    def team(self, name: str) -> TeamRoster:
        """The team called ``name`` (exact match).

        Raises:
            KeyError: if no team has that name.
        """
        for team in self.teams:
            if team.name == name:
                return team
        raise KeyError(f"no team {name!r} in roster; teams are {list(self.names)}")

    def player(self, team_name: str, number: str | None) -> str | None:
        """Name of the player wearing ``number`` (normalised first) in a team, or None."""
        key = normalise_number(number)
        if key is None:
            return None
        return self.team(team_name).players.get(key)

    def colour_rgb(self, team_name: str) -> tuple[int, int, int]:
        """A team's colour as ``(r, g, b)`` ints in 0..255.

        Raises:
            KeyError: if no team has that name.
            RosterError: if the colour (of a directly built roster) is not a hex colour.
        """
        team = self.team(team_name)
        colour = _parse_colour(team.colour, f"team {team.name!r}", "<in memory>")
        return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


class _RosterLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and keeps plain int keys as their text."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping, found {node.id}", node.start_mark
            )
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _INT_TAG:
                key: Any = key_node.value
            else:
                key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError as err:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found an unhashable key",
                    key_node.start_mark,
                ) from err
            if key in mapping:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_RosterLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _RosterLoader.construct_mapping
)


def load_roster(location: str | os.PathLike[str]) -> Roster:
    """Read and validate a ``roster.yaml`` at any :mod:`hoopray.store` location (a local
    path or a URI such as ``s3://bucket/game/roster.yaml``).

    Raises:
        RosterError: if the file is missing, unreadable, not YAML, or breaks a rule.
    """
    source = os.fspath(location)
    try:
        text = store.read_text(source)
    except (OSError, UnicodeDecodeError) as err:
        raise RosterError(source, f"cannot read the file ({err})") from err
    try:
        data = yaml.load(text, Loader=_RosterLoader)
    except yaml.YAMLError as err:
        raise RosterError(source, f"YAML problem: {err}") from err
    return parse_roster(data, source)


def parse_roster(data: Any, source: str = "<data>") -> Roster:
    """Validate loaded roster data (a mapping with ``teams``) and build a :class:`Roster`.

    Raises:
        RosterError: on the first broken rule (see the module docstring).
    """
    if data is None:
        raise RosterError(source, "is empty")
    if not isinstance(data, dict):
        raise RosterError(source, f"must be a mapping with 'teams'; got {type(data).__name__}")
    if "teams" not in data:
        raise RosterError(source, "has no 'teams' key")
    teams = data["teams"]
    if not isinstance(teams, list):
        raise RosterError(source, f"'teams' must be a list; got {type(teams).__name__}")
    if len(teams) != 2:
        raise RosterError(source, f"must list exactly two teams; found {len(teams)}")
    parsed = tuple(_parse_team(team, index, source) for index, team in enumerate(teams))
    if parsed[0].name.casefold() == parsed[1].name.casefold():
        raise RosterError(source, f"both teams are called {parsed[0].name!r}")
    return Roster(teams=(parsed[0], parsed[1]))


def _parse_team(data: Any, index: int, source: str) -> TeamRoster:
    where = f"team {index + 1}"
    if not isinstance(data, dict):
        raise RosterError(source, f"{where} must be a mapping; got {type(data).__name__}")
    unknown = sorted(str(key) for key in data if key not in _TEAM_KEYS)
    if unknown:
        raise RosterError(
            source, f"{where} has unknown key(s) {unknown}; expected name, colour, players"
        )
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RosterError(source, f"{where} needs a non-empty 'name'; got {name!r}")
    name = name.strip()
    where = f"team {name!r}"
    if "colour" in data and "color" in data:
        raise RosterError(source, f"{where} gives both 'colour' and 'color'")
    colour = data.get("colour", data.get("color"))
    return TeamRoster(
        name=name,
        colour=_parse_colour(colour, where, source),
        players=_parse_players(data.get("players"), where, source),
    )


def _parse_colour(colour: Any, where: str, source: str) -> str:
    if colour is None:
        raise RosterError(
            source,
            f'{where} has no colour; write it quoted, e.g. colour: "#006BB6" '
            "(an unquoted # starts a YAML comment)",
        )
    if not isinstance(colour, str) or not _COLOUR.fullmatch(colour.strip()):
        raise RosterError(source, f"{where} colour {colour!r} is not '#rrggbb' or '#rgb'")
    digits = colour.strip()[1:].lower()
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)
    return f"#{digits}"


def _parse_players(players: Any, where: str, source: str) -> dict[str, str]:
    if players is None:
        raise RosterError(source, f"{where} has no 'players' mapping (number: name)")
    if not isinstance(players, dict):
        raise RosterError(
            source, f"{where} 'players' must map numbers to names; got {type(players).__name__}"
        )
    parsed: dict[str, str] = {}
    written: dict[str, Any] = {}
    for raw_number, player in players.items():
        number = normalise_number(raw_number)
        if number is None:
            raise RosterError(
                source, f'{where} number {raw_number!r} is not a jersey number (0-99 or "00")'
            )
        if number in parsed:
            raise RosterError(
                source,
                f"{where} has number {number!r} twice (written {written[number]!r} "
                f"and {raw_number!r})",
            )
        if not isinstance(player, str) or not player.strip():
            raise RosterError(
                source,
                f"{where} number {number!r} needs a player name (a non-empty string; "
                f"quote names YAML reads otherwise, such as yes/no); got {player!r}",
            )
        parsed[number] = player.strip()
        written[number] = raw_number
    return parsed
