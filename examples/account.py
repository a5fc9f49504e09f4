"""Share memory by communicating: a bank account owned by one goroutine.

SimpleAccount is plain, unsynchronised state. ConcurrentAccount wraps it so
that only one goroutine - the one serve() runs in - ever touches it; every
other goroutine asks over channels (deposit, withdraw, balance) and waits
for the answer. No lock is needed because nothing is shared: requests are
handled one at a time, in the order serve() receives them.

Unlike the lecture's version, a withdrawal that would overdraw the account
is refused with an exception raised in the caller (the Go version panics in
the serving goroutine, killing the service), and close() stops the serving
goroutine: never start a goroutine without knowing how it will stop.
"""

import time

from pygoro import chan, errgroup, go, runtime, select


class InsufficientFunds(Exception):
    pass


class SimpleAccount:
    """Not safe for concurrent use: only ever used by one goroutine."""

    def __init__(self, balance):
        self.balance = balance

    def deposit(self, amount):
        self.balance += amount

    def withdraw(self, amount):
        if self.balance < amount:
            raise InsufficientFunds(f"balance {self.balance}, asked for {amount}")
        self.balance -= amount


class ConcurrentAccount:
    """Safe for any number of goroutines and threads."""

    def __init__(self, balance):
        self._account = SimpleAccount(balance)
        self._deposits = chan()
        self._withdrawals = chan()  # (amount, reply channel)
        self._balances = chan()  # reply channels
        self._quit = chan()
        self._stopped = chan()
        go(self._serve)

    def deposit(self, amount):
        self._deposits.send(amount)

    def withdraw(self, amount):
        reply = chan(1)
        self._withdrawals.send((amount, reply))
        err = reply.recv()
        if err is not None:
            raise err

    def balance(self):
        reply = chan(1)
        self._balances.send(reply)
        return reply.recv()

    def close(self):
        """Stop the serving goroutine and wait until it has."""
        self._quit.close()
        self._stopped.recv()

    def _serve(self):
        acc = self._account
        try:
            while True:
                i, v, _ = select(
                    self._deposits.recv_case(),
                    self._withdrawals.recv_case(),
                    self._balances.recv_case(),
                    self._quit.recv_case(),
                )
                if i == 0:
                    acc.deposit(v)
                elif i == 1:
                    amount, reply = v
                    try:
                        acc.withdraw(amount)
                        reply.send(None)
                    except InsufficientFunds as e:
                        reply.send(e)
                elif i == 2:
                    v.send(acc.balance)
                else:
                    return
        finally:
            self._stopped.close()


def goroutines_after(start, wait=1.0):
    """num_goroutine() once goroutines started since `start` have had `wait`
    seconds to finish (a goroutine that signalled "done" may still be on its
    way out)."""
    deadline = time.monotonic() + wait
    while runtime.num_goroutine() > start and time.monotonic() < deadline:
        time.sleep(0.01)
    return runtime.num_goroutine()


def main():
    start = runtime.num_goroutine()
    acc = ConcurrentAccount(100)

    def customer():
        for _ in range(10):
            acc.deposit(10)
            acc.withdraw(5)

    g = errgroup.Group()
    for _ in range(100):
        g.go(customer)
    g.wait()
    print("balance after 100 customers x 10 x (+10, -5):", acc.balance())

    try:
        acc.withdraw(1_000_000)
    except InsufficientFunds as e:
        print("withdraw 1000000 refused:", e)
    print("balance unchanged:", acc.balance())

    acc.close()
    print("goroutines left:", goroutines_after(start) - start)


if __name__ == "__main__":
    main()
