"""Plan how the live nodes get back into one connected graph without breaking `max_peers`.

A node only knows its own peers, so it cannot see that the network has split in two; a party
that sees the whole topology (the CLI, a host's supervisor) can. This module turns the topology
the live nodes report into steps for them to carry out. It is pure (no sockets, no clock), so a
plan can be checked by simulating it with `apply` before anyone acts on it.

No node may hold more than `max_peers` peers, not even for a moment. So a link is only added
where both ends have a free slot; where none is free, a node *swaps* a peer for another, which
keeps its count; and only links that are not bridges are ever taken away, so no part splits.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import islice

Links = dict[int, list[int]]


@dataclass(frozen=True)
class Introduce:
    """Ask node `at` to link with `peer`.

    It links only if both have a free slot (or they already are peers).
    """

    at: int
    peer: int


@dataclass(frozen=True)
class Swap:
    """Node `at` replaces its peer `old` with `new` in one step (its peer count does not change)."""

    at: int
    old: int
    new: int


@dataclass(frozen=True)
class Drop:
    """Node `at` drops its peer `peer` (it then has a free slot)."""

    at: int
    peer: int


Step = Introduce | Swap | Drop


def parts(links: Mapping[int, Iterable[int]]) -> list[list[int]]:
    """The connected parts of a reported topology, largest first, ties by smallest node.

    A link counts whichever end reports it, and links to nodes that do not report are ignored
    (they are down); the largest part comes first because repair joins the others to it.
    """
    around = _around(links)
    found: list[list[int]] = []
    unseen = set(around)
    while unseen:
        part, frontier = set(), [min(unseen)]
        while frontier:
            node = frontier.pop()
            if node not in part:
                part.add(node)
                frontier.extend(around[node] - part)
        unseen -= part
        found.append(sorted(part))
    return sorted(found, key=lambda part: (-len(part), part[0]))


def bridges(adjacency: Mapping[int, Iterable[int]]) -> set[frozenset[int]]:
    """The links whose loss would split their part (Tarjan's low-link, without recursion).

    `adjacency` must be symmetric and without self-links, as `_around` builds it.
    """
    order: dict[int, int] = {}
    low: dict[int, int] = {}
    found: set[frozenset[int]] = set()
    for root in sorted(adjacency):
        if root in order:
            continue
        order[root] = low[root] = len(order)
        stack = [(root, root, iter(sorted(adjacency[root])))]
        while stack:
            node, parent, rest = stack[-1]
            for nxt in rest:
                if nxt == parent:
                    continue
                if nxt in order:
                    low[node] = min(low[node], order[nxt])
                else:
                    order[nxt] = low[nxt] = len(order)
                    stack.append((nxt, node, iter(sorted(adjacency[nxt]))))
                    break
            else:
                stack.pop()
                if node != root:
                    low[parent] = min(low[parent], low[node])
                    if low[node] > order[parent]:
                        found.add(frozenset((parent, node)))
    return found


def apply(links: Mapping[int, Iterable[int]], steps: Iterable[Step], max_peers: int) -> Links:
    """The topology after the nodes carry out `steps` in order (a new dict; `links` is kept)."""
    state = {node: list(peers) for node, peers in links.items()}
    for step in steps:
        _carry_out(state, step, max_peers)
    return state


def plan_repair(links: Links, max_peers: int, wanted: dict[int, int] | None = None) -> list[Step]:
    """Steps that bring every live node into one connected graph, if `max_peers` allows it.

    First the parts are joined to the largest one, each join planned against the graph the
    earlier steps leave; then nodes below their aim (`wanted[node]`, `max_peers` for every node
    if `wanted` is None, a node's current count if it is missing from `wanted`) are linked in
    pairs, which is what closes a ring after a node has left it. The same input gives the same
    plan, whatever the order of the dict and of the peer lists.
    """
    plan = _Plan(links, max_peers, wanted)
    plan.join_parts()
    plan.pair_short()
    return plan.steps


def _around(links: Mapping[int, Iterable[int]]) -> dict[int, set[int]]:
    """Each live node's neighbours, a link counting whichever end reports it."""
    around: dict[int, set[int]] = {node: set() for node in links}
    for node, peers in links.items():
        for peer in peers:
            if peer in around and peer != node:
                around[node].add(peer)
                around[peer].add(node)
    return around


def _carry_out(state: Links, step: Step, max_peers: int) -> None:
    """Do `step` as node `step.at` would: a step that cannot be done is refused, not forced."""
    peers = state.get(step.at)
    if peers is None:
        return  # a node that is gone does nothing
    match step:
        case Introduce(at, peer):
            if peer == at or peer not in state:
                return
            ends = ((at, peer), (peer, at))
            if all(other in state[node] or len(state[node]) < max_peers for node, other in ends):
                for node, other in ends:
                    if other not in state[node]:
                        state[node].append(other)
                        assert len(state[node]) <= max_peers, f"{node} over {max_peers} peers"
        case Swap(at, old, new):
            if old in peers and new not in peers and new != at:
                peers[peers.index(old)] = new
        case Drop(_, peer):
            if peer in peers:
                peers.remove(peer)


class _Plan:
    """The steps chosen so far and the topology they lead to, so each choice sees its effect."""

    def __init__(self, links: Links, max_peers: int, wanted: dict[int, int] | None) -> None:
        self.state = {node: list(peers) for node, peers in links.items()}
        self.max_peers = max_peers
        self.aims = {
            node: max_peers if wanted is None else wanted.get(node, len(peers))
            for node, peers in links.items()
        }
        self.steps: list[Step] = []

    def do(self, step: Step) -> None:
        self.steps.append(step)
        _carry_out(self.state, step, self.max_peers)

    def free(self, node: int) -> int:
        return max(0, self.max_peers - len(self.state[node]))

    def gone(self, node: int) -> list[int]:
        """The peers `node` still lists although they do not report: each holds a slot."""
        return sorted(peer for peer in self.state[node] if peer not in self.state)

    def room(self, node: int) -> int:
        """Free slots `node` would have after dropping the peers that are gone."""
        return self.max_peers - len(self.state[node]) + len(self.gone(node))

    def short(self, node: int) -> bool:
        return len(self.state[node]) < self.aims[node]

    def linked(self, a: int, b: int) -> bool:
        return b in self.state[a] or a in self.state[b]

    def make_room(self, node: int) -> None:
        """Drop peers that are gone until `node` has a free slot."""
        for peer in self.gone(node):
            if self.free(node):
                return
            self.do(Drop(node, peer))

    def link(self, a: int, b: int) -> None:
        self.make_room(a)
        self.make_room(b)
        self.do(Introduce(a, b))

    def pick(self, group: list[int]) -> int | None:
        """The node of `group` best placed to take a new peer, if any has room.

        Nodes below their aim first, then the ones with the most free slots (dropping a gone
        peer is a step more), then the lowest number, so the plan is deterministic.
        """
        ranked = [
            (not self.short(node), -self.free(node), -self.room(node), node)
            for node in group
            if self.room(node) > 0
        ]
        return min(ranked)[-1] if ranked else None

    def spare_link(self, group: list[int]) -> tuple[int, int] | None:
        """A link (x, y) of `group`, listed by x, that `group` stays connected without.

        Two-way links first: when x swaps y away and y drops x, y is left with a free slot.
        """
        around = _around({node: self.state[node] for node in group})  # no link leaves a part
        cut = bridges(around)
        spare = [
            (x not in self.state[y], x, y)
            for x in group
            for y in self.state[x]
            if y in around[x] and frozenset((x, y)) not in cut
        ]
        return min(spare)[1:] if spare else None

    def can_join(self, group: list[int]) -> bool:
        """Whether `group` can be joined to another part: it needs room or a spare link.

        Any two such parts can be joined (room to room, room to spare, spare to spare); a part
        with neither, say a pair when `max_peers` is 1, cannot be joined to anything.
        """
        return self.pick(group) is not None or self.spare_link(group) is not None

    def join_parts(self) -> None:
        """Join the parts that can be joined, the largest first, until one of them is left."""
        for _ in range(len(self.state)):  # each join leaves one part fewer: never loop forever
            joinable = (group for group in parts(self.state) if self.can_join(group))
            pair = list(islice(joinable, 2))
            if len(pair) < 2 or not self.join(*pair):
                return

    def join(self, body: list[int], part: list[int]) -> bool:
        """Link `part` to `body` by whatever their free slots and spare links allow.

        False, with no step planned, if they allow nothing.
        """
        a, b = self.pick(body), self.pick(part)
        if a is not None and b is not None:
            self.link(a, b)
            return True
        if a is not None:
            return self.splice(a, body, part)
        if b is not None:
            return self.splice(b, part, body)
        return self.cross(body, part)

    def splice(self, a: int, home: list[int], full: list[int]) -> bool:
        """Join `full` (no room anywhere) to `home` through `a`, which has room.

        x swaps a spare peer y for a, y drops x, a links with x (which already lists a): no one
        ever holds more peers than before. y then has a free slot to link back to `home`.
        """
        spare = self.spare_link(full)
        if spare is None:
            return False
        x, y = spare
        self.make_room(a)
        self.do(Swap(x, y, a))
        if x in self.state[y]:
            self.do(Drop(y, x))
        self.do(Introduce(a, x))
        other = self.pick(home)
        if other is not None and self.free(y):
            self.link(other, y)
        return True

    def cross(self, body: list[int], part: list[int]) -> bool:
        """Join two parts that have no room anywhere by crossing a spare link of each.

        Links u1-v1 and u2-v2 become u1-u2 and v1-v2 by swaps alone, so no count changes.
        """
        first, second = self.spare_link(body), self.spare_link(part)
        if first is None or second is None:
            return False
        (u1, v1), (u2, v2) = first, second
        two_way = u1 in self.state[v1] and u2 in self.state[v2]
        self.do(Swap(u1, v1, u2))
        if two_way:
            self.do(Swap(v1, u1, v2))
        self.do(Swap(u2, v2, u1))
        if two_way:
            self.do(Swap(v2, u2, v1))
        else:  # a one-way spare link: its other end just lets go of the swapped node
            for node, lost in ((v1, u1), (v2, u2)):
                if lost in self.state[node]:
                    self.do(Drop(node, lost))
        return True

    def pair_short(self) -> None:
        """Link nodes below their aim in pairs, lowest numbers first.

        This is what closes a ring after a node leaves it: its two former neighbours are each
        one peer short. Each node gets at most as many new peers as it is short of.
        """
        need = {
            node: min(self.aims[node] - len(self.state[node]), self.free(node))
            for node in self.state
        }
        short = sorted(node for node, count in need.items() if count > 0)
        for i, a in enumerate(short):
            for b in short[i + 1 :]:
                if need[a] > 0 and need[b] > 0 and not self.linked(a, b):
                    self.do(Introduce(a, b))
                    need[a] -= 1
                    need[b] -= 1


SPLIT_LOOKS = 2
"""Looks in a row that must find the live nodes split before they are joined: the nodes of
one look answer at slightly different moments, and may show a link half made."""

SHORT_LOOKS = 5
"""Looks in a row that must find nodes short of peers (with a partner free to link) before
they are paired: the nodes' own walks get the first chance."""


@dataclass
class Watch:
    """When the party that sees the whole network steps in: only once what it sees has lasted,
    so it does not fight the nodes' own healing, which mends most losses in well under a
    second. Feed it one look at a time."""

    split_looks: int = 0
    short_looks: int = 0

    def look(self, links: Links, max_peers: int, wanted: dict[int, int]) -> list[Step]:
        """The steps to carry out now, after this look at the reported topology (often none)."""
        steps = plan_repair(links, max_peers, wanted)
        split = len(parts(links)) > 1
        self.split_looks = self.split_looks + 1 if steps and split else 0
        self.short_looks = self.short_looks + 1 if steps and not split else 0
        if self.split_looks >= SPLIT_LOOKS or self.short_looks >= SHORT_LOOKS:
            self.forget()
            return steps
        return []

    def forget(self) -> None:
        """Start counting afresh (another party mends now, or it just mended)."""
        self.split_looks = self.short_looks = 0


def mends_here(answering: Iterable[int], local: set[int]) -> bool:
    """Whether this host mends now: it holds the lowest-numbered node that answers. With
    several hosts, so one party mends at a time; a host cut off mends its own side."""
    first = min(answering, default=None)
    return first is not None and first in local


def contacts(number: int, last: list[int], largest: list[int], most: int) -> list[int]:
    """Whom a rejoining node asks to take it in, in order: its last peers that are in the
    network's largest part, then other nodes of that part, then its other last peers (a
    part of its own would stay apart, but the supervisor joins it). At most ``most`` (its
    max-peers): a node never knows more nodes than it may have peers."""
    body = set(largest)
    first = [p for p in last if p in body]
    others = [n for n in largest if n not in last]
    rest = [p for p in last if p not in body]
    return [n for n in [*first, *others, *rest] if n != number][:most]
