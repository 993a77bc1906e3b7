"""Test-only TLS + SASL/PLAIN front for a plaintext Kafka broker (tansu has neither PLAIN nor TLS).

It terminates TLS with the given certificate, answers SaslHandshake (PLAIN) and SaslAuthenticate
itself, checking the user name and the password (exact match), and forwards every other Kafka
frame to the plaintext broker. The broker must advertise this front's port so metadata points back
here. Shape of the Event Hubs Kafka endpoint: SASL_SSL, PLAIN, user `$ConnectionString`, password =
the connection string. Only non-flexible SaslHandshake/SaslAuthenticate v0/v1 are handled (what
librdkafka 2.x sends); responses stay in order because librdkafka does not pipeline during auth.
See ../../../../shared/reference/infra.md Appendix B (origin of this script).

usage: sasl_plain_tls_proxy.py LISTEN_PORT UPSTREAM_PORT CERT KEY USER PASSWORD
"""
import asyncio
import ssl
import struct
import sys

LISTEN_PORT, UPSTREAM_PORT = int(sys.argv[1]), int(sys.argv[2])
CERT, KEY = sys.argv[3], sys.argv[4]
EXPECT_USER, EXPECT_PASS = sys.argv[5], sys.argv[6]


async def read_frame(r):
    n = struct.unpack(">i", await r.readexactly(4))[0]
    return await r.readexactly(n)


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


async def handle(cr, cw):
    try:
        ur, uw = await asyncio.open_connection("127.0.0.1", UPSTREAM_PORT)
    except OSError:
        cw.close()
        return
    authed = False

    async def pump():
        try:
            while True:
                f = await read_frame(ur)
                cw.write(struct.pack(">i", len(f)) + f)
                await cw.drain()
        except Exception:
            cw.close()

    t = asyncio.create_task(pump())
    try:
        while True:
            f = await read_frame(cr)
            key, ver, corr = struct.unpack(">hhi", f[:8])
            if key == 17:  # SaslHandshake v0/v1
                mlen = struct.unpack(">h", f[8:10])[0]
                off = 10 + max(mlen, 0)  # skip client_id
                mech = f[off + 2: off + 2 + struct.unpack(">h", f[off:off + 2])[0]].decode()
                err = 0 if mech == "PLAIN" else 33
                body = struct.pack(">ih", corr, err) + struct.pack(">i", 1) + kstr("PLAIN")
                cw.write(struct.pack(">i", len(body)) + body)
                await cw.drain()
            elif key == 36:  # SaslAuthenticate v0/v1
                mlen = struct.unpack(">h", f[8:10])[0]
                off = 10 + max(mlen, 0)
                alen = struct.unpack(">i", f[off:off + 4])[0]
                auth = f[off + 4: off + 4 + alen]
                _, user, pw = auth.split(b"\0", 2)
                ok = user.decode() == EXPECT_USER and pw.decode() == EXPECT_PASS
                err = 0 if ok else 58  # SASL_AUTHENTICATION_FAILED
                body = struct.pack(">ih", corr, err)
                body += struct.pack(">h", -1) if ok else kstr("bad credentials")
                body += struct.pack(">i", 0)
                if ver >= 1:
                    body += struct.pack(">q", 0)
                cw.write(struct.pack(">i", len(body)) + body)
                await cw.drain()
                authed = ok
                if not ok:
                    break
            else:
                if not authed and key != 18:  # only ApiVersions before auth
                    break
                uw.write(struct.pack(">i", len(f)) + f)
                await uw.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, ValueError):
        pass
    finally:
        t.cancel()
        uw.close()
        cw.close()


async def main():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(CERT, KEY)
    srv = await asyncio.start_server(handle, "127.0.0.1", LISTEN_PORT, ssl=ctx)
    print(f"listening on {LISTEN_PORT}", flush=True)
    await srv.serve_forever()


asyncio.run(main())
