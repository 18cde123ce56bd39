# Two sans-IO machines wired back to back (h11's ConnectionPair idea), for core tests on both
# runtimes. Nothing here touches sockets or clocks.


class MachinePair:
    """Moves data_to_send() of each side into receive() of the other until both are quiet.

    `chunk` > 0 cuts every transfer into pieces of that size, to exercise partial input."""

    def __init__(self, a, b, chunk=0):
        self.a = a
        self.b = b
        self.chunk = chunk
        self.events_a = []  # everything a reported, in order
        self.events_b = []

    def _feed(self, machine, data):
        events = []
        if not self.chunk:
            events.extend(machine.receive(data))
        else:
            for i in range(0, len(data), self.chunk):
                events.extend(machine.receive(data[i:i + self.chunk]))
        return events

    def pump(self, max_rounds=10000):
        """Returns (new events of a, new events of b)."""
        new_a = []
        new_b = []
        for _ in range(max_rounds):
            da = self.a.data_to_send()
            db = self.b.data_to_send()
            if not da and not db:
                break
            if da:
                ev = self._feed(self.b, da)
                new_b.extend(ev)
                self.on_events(self.b, ev)
            if db:
                ev = self._feed(self.a, db)
                new_a.extend(ev)
                self.on_events(self.a, ev)
        else:
            raise AssertionError("pair did not settle")
        self.events_a.extend(new_a)
        self.events_b.extend(new_b)
        return new_a, new_b

    def on_events(self, machine, events):
        pass


class YamuxPair(MachinePair):
    """Two yamux Sessions (a = client, b = server). Collects stream data per side; with
    auto_consume the application takes every byte at once (so windows refill)."""

    def __init__(self, a, b, chunk=0, auto_consume=True):
        MachinePair.__init__(self, a, b, chunk)
        self.auto_consume = auto_consume
        self.data_a = {}  # sid -> bytearray received by a
        self.data_b = {}
        self.sink = None  # callable(machine, sid, bytes): takes data instead of storing it

    def on_events(self, machine, events):
        store = self.data_a if machine is self.a else self.data_b
        for ev in events:
            if ev[0] == "data":
                sid = ev[1]
                if self.sink is not None:
                    self.sink(machine, sid, ev[2])
                else:
                    if sid not in store:
                        store[sid] = bytearray()
                    store[sid] += ev[2]
                if self.auto_consume:
                    machine.consumed(sid, len(ev[2]))


def names(events):
    return [e[0] for e in events]


def merge_data(events):
    """Events with consecutive ('data', sid, bytes) of one stream merged (payload may arrive
    in any number of pieces; everything else must match exactly)."""
    out = []
    for ev in events:
        if ev[0] == "data" and out and out[-1][0] == "data" and out[-1][1] == ev[1]:
            out[-1] = ("data", ev[1], out[-1][2] + ev[2])
        else:
            out.append(ev)
    return out


def raises(exc_type, fn, *args):
    """Call fn(*args) and return the exception it must raise (portable pytest.raises)."""
    try:
        fn(*args)
    except exc_type as e:
        return e
    raise AssertionError("%s not raised" % exc_type.__name__)
