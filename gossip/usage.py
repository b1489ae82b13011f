"""Why docopt refused a command line, in one line: the part that is wrong, then the right
form. docopt only says that the line does not fit; a user who gave an option twice, or
two that exclude each other, should not have to find which in a usage line of forty words.

No I/O: reads the help text it is given and the arguments.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

REPEATABLE = frozenset({"-p", "-t"})
"""Options counted by repeating them (``-pp``): given more than once is their point."""

_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
_NUMBER = re.compile(r"-\d")
_COUNTED = re.compile(r"-(\w)\1+")


@dataclass(frozen=True)
class Usage:
    """What the help says: each command's usage lines, and what its options are."""

    patterns: list[str]
    """Each usage line, joined where it wraps (``gossip <command> ...``)."""
    long_names: dict[str, str]
    """Each option's name as written (``-n``) to its long name (``--nodes``), if it has one."""
    takes_value: frozenset[str]
    """The long names (or short, for options without one) followed by a value."""

    @classmethod
    def of(cls, doc: str) -> Usage:
        usage = doc.split("Usage:")[1].split("\n\n")[0]
        patterns: list[str] = []
        for line in usage.strip().splitlines():
            if line.strip().startswith("gossip "):
                patterns.append(line.strip())
            else:
                patterns[-1] += " " + line.strip()
        long_names: dict[str, str] = {}
        takes_value: set[str] = set()
        options = doc.split("Options:")[1] if "Options:" in doc else ""
        for line in options.splitlines():
            words = line.strip().split("  ")[0]  # the option and its value, before the help
            if not words.startswith("-"):
                continue
            names = _OPTION.findall(words)
            name = next((n for n in names if n.startswith("--")), names[0])
            for alias in names:
                long_names[alias] = name
            if re.search(r"-[\w-]+[ =][A-Z]", words):
                takes_value.add(name)
        return cls(patterns, long_names, frozenset(takes_value))

    def name(self, option: str) -> str:
        return self.long_names.get(option, option)

    def options_of(self, pattern: str) -> set[str]:
        """The options a usage line (or part of one) names, by long name; ``-pp`` is ``-p``."""
        return {self.name(o[:2] if _COUNTED.fullmatch(o) else o) for o in _OPTION.findall(pattern)}


def problem(usage: Usage, argv: list[str], commands: list[str]) -> str:
    """One line saying what is wrong with ``argv``, which docopt refused."""
    read = _read(usage, argv)
    command = next((w for w in read.words if w in commands), None)
    if command is None or read.words[0] != command:
        if read.words:
            return (
                f"unknown command {read.words[0]!r}: choose one of {', '.join(commands)} "
                "(see gossip --help)"
            )
        return "no command given: see gossip --help"
    patterns = [p for p in usage.patterns if p.split()[1] == command]
    given = read.given
    first = next(iter(given), None)

    def fit(pattern: str) -> tuple[int, bool]:
        """How well ``pattern`` fits what was given: the options it takes, less those it
        needs that were not given (``--resume``), then whether it takes the first."""
        options = usage.options_of(pattern)
        missing = usage.options_of(_outside_groups(pattern)) - given.keys()
        return len(options & given.keys()) - len(missing), first in options

    pattern = max(patterns, key=fit)
    form = f"usage is {pattern}"
    known = set().union(*(usage.options_of(p) for p in patterns))
    for option in given:
        if option not in known:
            text = "; text that starts with - goes after --" if "[--]" in pattern else ""
            return f"{command} takes no option {read.typed[option]}{text}: {form}"
    for option, count in given.items():
        most = _most(pattern, option)
        if count > most:
            times = "twice" if count == 2 else f"{count} times"
            if most == 1:
                return f"{option} given {times}: give it once; {form}"
            return f"{option} given {times}: at most -{option[1] * most}; {form}"
    pairs = _exclusive(usage, pattern) + _apart(usage, patterns)
    order = list(given)  # as the user gave them
    for pair in pairs:
        if pair[0] in given and pair[1] in given:
            one, other = sorted(pair, key=order.index)
            return f"{one} and {other} do not go together: give one of them; {form}"
    takes = usage.options_of(pattern)
    stray = next((o for o in given if o not in takes), None)
    along = next((o for o in given if o in takes), None)
    if stray is not None and along is not None:  # another form of the command takes it
        one, other = sorted((stray, along), key=order.index)
        return f"{one} and {other} do not go together: give one of them; {form}"
    required = usage.options_of(_outside_groups(pattern)) - given.keys()
    if given and required:
        needed = min(required)
        return f"{read.typed[order[0]]} needs {needed} as well; {form}"
    for choices in _choices(pattern):
        chosen = [w for w in read.words if w in choices]
        if len(chosen) > 1 and chosen[0] == chosen[1]:
            return f"{chosen[0]} given twice: give it once; {form}"
        if len(chosen) > 1:
            return f"{chosen[0]} and {chosen[1]} do not go together: give one of them; {form}"
    after = argv[argv.index("--") + 1 :] if "--" in argv else []
    if "<message>" in pattern:
        if any(w.startswith("-") for w in after[1:]):
            return f"options go before --: after it comes the message alone; {form}"
        if len(read.words) + len(after) > 3:  # the command, the node, the message
            return f'a message of several words goes in quotes, as in "Hello World"; {form}'
    slots = re.findall(r"<\w+>", _outside_groups(pattern))
    simple = slots == re.findall(r"<\w+>", pattern)  # no word inside a choice
    words = read.words[1:] + after  # after the command: its slots, then a word of each choice
    if simple and len(words) < len(slots):
        return f"{slots[len(words)]} is missing; {form}"
    if simple and "..." not in pattern and "<message>" not in pattern:
        choices = _choices(pattern)
        for word in words[len(slots) :]:
            if not any(word in c for c in choices):
                return f"{word!r} is one word too many; {form}"
    return f"invalid arguments: {form}"


def command_help(doc: str, usage: Usage, argv: list[str], commands: list[str]) -> str:
    """The help of the command ``argv`` names: its usage lines, what it does, and the
    options it takes; the whole ``doc`` if it names none."""
    command = next((w for w in _read(usage, argv).words if w in commands), None)
    if command is None:
        return doc
    patterns = [p for p in usage.patterns if p.split()[1] == command]
    takes = set().union(*(usage.options_of(p) for p in patterns)) | {"--help"}
    shown: list[str] = []  # its usage lines as the help wraps them
    ours = False
    for line in doc.split("Usage:")[1].split("\n\n")[0].splitlines():
        if line.strip().startswith("gossip "):
            ours = line.split()[1] == command
        if ours:
            shown.append(line)
    about = _entries(doc.split("Commands:")[1].split("\n\n")[0]).get(command, [])
    options = [
        lines
        for lines in _entries(doc.split("Options:")[1]).values()
        if usage.options_of(lines[0].strip().split("  ")[0]) & takes
    ]
    return "\n".join(
        [
            "Usage:",
            *shown,
            "",
            *(f"  {line.strip()}" for line in about),
            "",
            "Options:",
            *(line for lines in options for line in lines),
            "",
            "Every command: gossip --help",
        ]
    )


def _entries(section: str) -> dict[str, list[str]]:
    """A help section's entries (``  name  text``, then lines indented further), by the
    entry's first word, each as its lines (the first without its name, for commands)."""
    entries: dict[str, list[str]] = {}
    last: list[str] = []
    for line in section.splitlines():
        if not line.strip():
            continue
        if line.startswith("  ") and not line.startswith("   "):
            name, _, text = line.strip().partition(" ")
            last = entries[name] = [line if name.startswith("-") else text]
        elif last:
            last.append(line)
    return entries


def asks_help(usage: Usage, argv: list[str]) -> bool:
    """Whether ``argv`` gives ``-h`` or ``--help`` as an option of its own: not as the
    value of another (``draw --message -h``), nor inside a cluster (``-dash``), nor
    after a lone ``--``."""
    return "--help" in _read(usage, argv).given


@dataclass
class Given:
    """What a command line gave, up to a lone ``--``."""

    given: Counter[str]
    """How many times each option was given, by long name (``-ppp`` counts 3)."""
    typed: dict[str, str]
    """Each option as the user first typed it (``-dash``, not ``-d``)."""
    words: list[str]
    """The other words (not the options' values)."""


def _read(usage: Usage, argv: list[str]) -> Given:
    """``argv`` read as docopt would, without its verdict: options (with a value where
    they take one), counted short options (``-ppp``), and the words between."""
    read = Given(Counter(), {}, [])
    value_next = False
    for word in argv:
        if value_next:
            value_next = False
            continue
        if word == "--":
            break
        if not word.startswith("-") or word == "-" or _NUMBER.match(word):
            read.words.append(word)
            continue
        if word.startswith("--"):
            name = usage.name(word.partition("=")[0])
            value_next = name in usage.takes_value and "=" not in word
            count = 1
        else:
            name = usage.name(word[:2])
            counted = name in REPEATABLE and word[1:] == word[1] * (len(word) - 1)
            value_next = name in usage.takes_value and len(word) == 2
            count = len(word) - 1 if counted else 1
        read.given[name] += count
        read.typed.setdefault(name, word)
    return read


def _most(pattern: str, option: str) -> int:
    """How many times ``pattern`` lets ``option`` be given: its longest ``-ppp`` form."""
    if option not in REPEATABLE:
        return 1
    forms = re.findall(rf"(?<![\w-])-({option[1]}+)(?![\w-])", pattern)
    return max(map(len, forms), default=1)


def _outside_groups(pattern: str) -> str:
    """``pattern`` without its bracketed groups: what must be given."""
    depth, kept = 0, []
    for char in pattern:
        depth += char in "(["
        if depth == 0:
            kept.append(char)
        depth -= char in ")]"
    return "".join(kept)


def _choices(pattern: str) -> list[set[str]]:
    """The groups of ``pattern`` whose sides are bare words (``[unread | read | all]``)."""
    found = []
    for group in _groups(pattern):
        sides = [side.strip() for side in _split_top(group)]
        if len(sides) > 1 and all(re.fullmatch(r"[a-z][a-z-]*", side) for side in sides):
            found.append(set(sides))
    return found


def _exclusive(usage: Usage, pattern: str) -> list[tuple[str, str]]:
    """Pairs of options that ``pattern`` puts on either side of a ``|``."""
    pairs: list[tuple[str, str]] = []
    for group in _groups(pattern):
        sides = [usage.options_of(side) for side in _split_top(group)]
        for i, side in enumerate(sides):
            for other in sides[i + 1 :]:
                pairs += [(a, b) for a in sorted(side) for b in sorted(other) if a != b]
    return pairs


def _apart(usage: Usage, patterns: list[str]) -> list[tuple[str, str]]:
    """Pairs of a command's options that none of its usage lines has both of."""
    every = sorted(set().union(*(usage.options_of(p) for p in patterns)))
    lines = [usage.options_of(p) for p in patterns]
    return [
        (a, b)
        for i, a in enumerate(every)
        for b in every[i + 1 :]
        if not any(a in line and b in line for line in lines)
    ]


def _groups(pattern: str) -> list[str]:
    """The inside of every bracketed group, nested ones too."""
    groups, opened = [], []
    for i, char in enumerate(pattern):
        if char in "([":
            opened.append(i)
        elif char in ")]" and opened:
            groups.append(pattern[opened.pop() + 1 : i])
    return groups


def _split_top(group: str) -> list[str]:
    """``group`` split at the ``|``s outside its own nested groups."""
    sides, depth, start = [], 0, 0
    for i, char in enumerate(group):
        depth += char in "(["
        depth -= char in ")]"
        if char == "|" and depth == 0:
            sides.append(group[start:i])
            start = i + 1
    return [*sides, group[start:]]
