"""A fault-injecting HTTP proxy for drills: forwards to a BSS and answers 500 to every Nth PUT.

``mode="before"``: the failed PUT never reaches BSS (BSS wrote nothing). ``mode="after"``: the PUT is
forwarded and BSS's answer is replaced by 500 (BSS wrote, the client cannot know). ``every=0`` turns
the faults off. ``before_put(n)``, if set, runs before the n-th PUT (from 1) is handled, e.g. to stop
a database under BSS.
"""

from http_proxy import ForwardingProxy

FAULT = (500, [("Content-Type", "text/plain")], b"injected fault\n")


class FaultProxy(ForwardingProxy):
    def __init__(self, upstream_url, every=3, mode="before"):
        self.every, self.mode = every, mode
        self.before_put = None
        self.puts = []  # (body bytes, status the client got, whether BSS received it)
        super().__init__(upstream_url)

    def handle(self, command, path, raw, headers):
        if command != "PUT":
            return self.forward(command, path, raw, headers)
        with self.lock:
            number = len(self.puts) + 1
            fail = bool(self.every) and number % self.every == 0
            if self.before_put is not None:
                self.before_put(number)
        if fail and self.mode == "before":
            self._record(raw, 500, False)
            return FAULT
        answer = self.forward(command, path, raw, headers)
        self._record(raw, 500 if fail else answer[0], True)
        return FAULT if fail else answer

    def _record(self, raw, status, reached):
        with self.lock:
            self.puts.append((raw, status, reached))
